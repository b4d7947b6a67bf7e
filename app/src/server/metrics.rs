//! `GET /metrics` in Prometheus text format, and the request metrics.
//!
//! The library counts sessions, cache hits and sign-ins through the `metrics` facade; this module
//! installs the Prometheus recorder those counts go to, counts requests by route and status, times
//! them, and samples the database pool when scraped.
//!
//! `/metrics` is not public by default: it exists only with `METRICS_TOKEN` (a bearer token, compared
//! as a SHA-256 digest in constant time) or `METRICS_ADDR` (a separate listener, typically on a
//! private address).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use console_sessions::Database;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Counter, labels `method`, `route`, `status`: requests answered.
pub const HTTP_REQUESTS: &str = "console_sessions_http_requests_total";
/// Histogram, labels `method`, `route`: seconds from the request to its response's headers.
pub const HTTP_DURATION: &str = "console_sessions_http_request_duration_seconds";
/// Counter, label `result` (`verified`, `refused`, `unavailable`): `/auth/verify` answers. Forward
/// authentication is asked on every request a proxy passes, so it is served outside the request
/// middleware and counted here rather than in [`HTTP_REQUESTS`].
pub const FORWARD_AUTH: &str = "console_sessions_forward_auth_total";
/// Gauge, label `state` (`in_use`, `idle`): database pool connections, sampled at each scrape.
pub const DB_POOL_CONNECTIONS: &str = "console_sessions_db_pool_connections";
/// Gauge: the most connections the pool opens.
pub const DB_POOL_MAX: &str = "console_sessions_db_pool_max_connections";

/// The `route` label of requests no route matched: static files and unknown paths. One fixed value,
/// so that scanning random paths cannot create new time series.
pub const UNMATCHED_ROUTE: &str = "fallback";

/// Latency buckets, in seconds: a millisecond to ten seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's Prometheus recorder, installed on first use.
///
/// A `metrics` recorder is global to the process and can be installed only once, so every
/// application built in this process (tests build many) shares it. `None` when another recorder was
/// installed first, by whoever embeds the application.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), DURATION_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    console_sessions::metrics::describe();
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by method, route and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request to its response, by method and route."
    );
    describe_counter!(
        FORWARD_AUTH,
        Unit::Count,
        "Forward-authentication answers of /auth/verify, by result (verified, refused, unavailable)."
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        Unit::Count,
        "Database pool connections, in use and idle."
    );
    describe_gauge!(
        DB_POOL_MAX,
        Unit::Count,
        "The most connections the database pool opens."
    );
}

/// A bearer token, kept only as its SHA-256 digest, which a presented token's digest is compared
/// with in constant time.
///
/// Comparing the tokens themselves, even in constant time, refuses one of another length at once,
/// and so tells by its timing how long the token is. Digests have one length, whatever is presented.
#[derive(Clone)]
struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token (by digest, in constant time).
    fn matches(&self, presented: &str) -> bool {
        bool::from(Self::of(presented).0[..].ct_eq(&self.0[..]))
    }
}

/// What the `/metrics` handler needs.
#[derive(Clone)]
pub struct MetricsEndpoint {
    handle: &'static PrometheusHandle,
    token: Option<TokenDigest>,
    db: Database,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl MetricsEndpoint {
    /// The endpoint, guarded by `token` when one is given; `None` when no recorder could be
    /// installed.
    pub fn new(token: Option<&str>, db: Database) -> Option<Self> {
        Some(Self {
            handle: recorder()?,
            token: token.map(TokenDigest::of),
            db,
        })
    }
}

/// `GET /metrics`: the Prometheus text exposition, or 401 without the right bearer token.
pub async fn scrape(State(endpoint): State<MetricsEndpoint>, request: Request) -> Response {
    if let Some(expected) = &endpoint.token {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !expected.matches(presented) {
            return (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                "A valid metrics token is required.\n",
            )
                .into_response();
        }
    }
    console_sessions::metrics::publish();
    let (open, idle) = endpoint.db.pool_usage();
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    ::metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use")
        .set(f64::from(open.saturating_sub(idle)));
    ::metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    ::metrics::gauge!(DB_POOL_MAX).set(f64::from(endpoint.db.max_connections()));
    // Histograms are kept in buckets that only upkeep folds in; scraping is the natural moment.
    endpoint.handle.run_upkeep();
    (
        [
            (CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        endpoint.handle.render(),
    )
        .into_response()
}

/// Middleware: counts and times every request by method, matched route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || UNMATCHED_ROUTE.to_owned(),
        |path| path.as_str().to_owned(),
    );
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    ::metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: one of the standard ones, else `other` (methods are free text).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::TokenDigest;

    #[test]
    fn a_token_of_another_length_is_refused_by_its_digest() {
        let token = "0123456789abcdef";
        let expected = TokenDigest::of(token);
        assert!(expected.matches(token));
        let longer = token.repeat(64);
        for wrong in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeF",
            longer.as_str(),
        ] {
            assert!(!expected.matches(wrong), "{wrong:?}");
            // What is compared is a digest of one length, however long the presented token.
            assert_eq!(TokenDigest::of(wrong).0.len(), expected.0.len());
        }
    }
}
