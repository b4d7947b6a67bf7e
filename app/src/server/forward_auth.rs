//! `GET /auth/verify`: forward authentication for the services behind a reverse proxy (nginx
//! `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth`).
//!
//! The proxy sends each request's headers (its cookies among them) here before letting it through:
//! - a live session of an active user: **200**, with `X-Auth-User` (username), `X-Auth-User-Id` and
//!   `X-Auth-Email` (empty when the user has none) and `X-Auth-AAL` (`aal1`, or `aal2` for a
//!   session signed in with two factors or a passkey) for the proxy to pass on, and the same as
//!   JSON;
//! - anything else: **401**, with `X-Auth-Sign-In` holding our sign-in page's URL, whose `next`
//!   brings the person back to where they were going (read from `X-Original-URL`, or from Traefik's
//!   `X-Forwarded-Proto`/`-Host`/`-Uri`). With `?redirect=1` the answer is a 302 to that page
//!   instead, for proxies that hand our response to the browser (Traefik).
//!
//! Last activity is touched as for any request, at most once per `SESSION_ACTIVITY_INTERVAL`; the
//! session comes from the `cached_db` cache and the user from [`Accounts::identity`]'s, so a
//! verified request costs no database round trip at all.
//!
//! [`Accounts::identity`]: console_sessions::accounts::Accounts::identity

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CACHE_CONTROL, HOST, LOCATION, VARY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use console_sessions::accounts::{Accounts, Identity};
use console_sessions::sessions::{cookie_value, Aal, ClientInfo};
use console_sessions::{Session, SessionEngine};
use metrics::Counter;
use serde::{Deserialize, Serialize};

use super::metrics::FORWARD_AUTH;
use super::site::SiteSettings;
use super::state::AppState;
use crate::error::api::ApiError;
use crate::error::AppError;

/// What `/auth/verify` needs: the engine, the accounts, the site settings, and its counters. Taken
/// on every request a proxy lets through, so one shared allocation whose clone is one count.
#[derive(Clone)]
pub struct VerifyState {
    inner: Arc<VerifyInner>,
}

struct VerifyInner {
    sessions: SessionEngine,
    accounts: Accounts,
    site: Arc<SiteSettings>,
    /// [`FORWARD_AUTH`] by result, looked up once rather than on every answer.
    verified: Counter,
    refused: Counter,
    failed: Counter,
}

impl VerifyState {
    /// The state of `/auth/verify` in this application. Its counters go to the metrics recorder
    /// installed now (none yet: they count nothing).
    pub fn new(state: &AppState) -> Self {
        let counter = |result: &'static str| ::metrics::counter!(FORWARD_AUTH, "result" => result);
        Self {
            inner: Arc::new(VerifyInner {
                sessions: state.sessions.clone(),
                accounts: state.accounts.clone(),
                site: state.site.clone(),
                verified: counter("verified"),
                refused: counter("refused"),
                failed: counter("unavailable"),
            }),
        }
    }
}

/// The username of the signed-in user.
pub const X_AUTH_USER: HeaderName = HeaderName::from_static("x-auth-user");
/// The user's database id.
pub const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
/// The user's email address, empty when they have none.
pub const X_AUTH_EMAIL: HeaderName = HeaderName::from_static("x-auth-email");
/// `aal1` (one factor) or `aal2` (two factors, or a passkey): how strongly the session signed in,
/// for upstreams that ask more of some pages.
pub const X_AUTH_AAL: HeaderName = HeaderName::from_static("x-auth-aal");
/// On a 401: where to send the browser to sign in.
pub const X_AUTH_SIGN_IN: HeaderName = HeaderName::from_static("x-auth-sign-in");

/// The longest original URL carried into `next`; a longer one sends the person to the devices page.
const MAX_NEXT_CHARS: usize = 2048;

/// What `/auth/verify` says about a verified user (the body; the headers say the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedUser {
    /// Database id.
    pub user_id: i64,
    /// Username.
    pub username: String,
    /// Email address, if any.
    pub email: Option<String>,
    /// `aal1` or `aal2`, as `X-Auth-AAL` says.
    #[serde(default)]
    pub aal: Option<String>,
}

/// `GET /auth/verify`, served outside the application's middleware (see the router): a proxy asks
/// it on every request it lets through, so the verified path does no more than it must.
///
/// A session the `cached_db` cache can answer for alone (live, signed in, not due a last-activity
/// touch, same client) is verified from memory: one cache entry read, nothing copied, nothing
/// written. Everything else — no cookie, a cache miss, a touch due, `db` backend — goes the full
/// way, as through the session layer: load, check, commit, cookie.
pub async fn verify(State(state): State<VerifyState>, request: Request) -> Response {
    let inner = &*state.inner;
    let engine = &inner.sessions;
    let headers = request.headers();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let client = engine.client_of(headers, peer);
    if let Some(value) = cookie_value(headers, &engine.config().cookie_name) {
        if let Some((user_id, level)) = engine.cached_sign_in(value, &client) {
            if let Some(identity) = inner.accounts.cached_identity(user_id) {
                inner.verified.increment(1);
                return verified(&identity, level);
            }
        }
    }
    // Boxed: its future (database reads, the commit) is many times the size of the one above,
    // and would otherwise be allocated and moved on every request, verified from memory or not.
    Box::pin(verify_fully(state, client, request)).await
}

/// `/auth/verify` the full way, as through the session layer: load, check, commit, cookie.
async fn verify_fully(state: VerifyState, client: ClientInfo, request: Request) -> Response {
    let state = &*state.inner;
    let engine = &state.sessions;
    let headers = request.headers();
    let cookie = cookie_value(headers, &engine.config().cookie_name);
    tracing::debug!(
        cookie = cookie.is_some(),
        "forward auth answered the full way"
    );
    let session = engine.session(cookie, client);
    let response = match verified_identity(state, &session).await {
        Ok(Some((identity, level))) => {
            state.verified.increment(1);
            verified(&identity, level)
        }
        Ok(None) => {
            state.refused.increment(1);
            refused(
                &state.site,
                headers,
                session.client().https,
                wants_redirect(request.uri().query()),
            )
        }
        Err(error) => {
            state.failed.increment(1);
            let mut response = ApiError::from(error).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    };
    engine.finish_response(&session, response).await
}

/// The active user the session belongs to, and how strongly it signed in; a session of a user who
/// is gone or inactive ends here.
async fn verified_identity(
    state: &VerifyInner,
    session: &Session,
) -> Result<Option<(Arc<Identity>, Aal)>, AppError> {
    let Some(user_id) = session.user_id().await? else {
        return Ok(None);
    };
    match state.accounts.identity(user_id).await? {
        Some(identity) => {
            let level = session.assurance().await?.map_or(Aal::Aal1, |a| a.level);
            Ok(Some((identity, level)))
        }
        None => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// The 200 answer: headers for the proxy to pass on, and the same as JSON.
pub fn verified(identity: &Identity, level: Aal) -> Response {
    /// [`VerifiedUser`], borrowed: the answer is written without copying the identity.
    #[derive(Serialize)]
    struct Body<'a> {
        user_id: i64,
        username: &'a str,
        email: Option<&'a str>,
        aal: &'static str,
    }
    let mut response = Json(Body {
        user_id: identity.id,
        username: &identity.username,
        email: identity.email.as_deref(),
        aal: level.as_str(),
    })
    .into_response();
    let headers = response.headers_mut();
    // Room for all of them at once, rather than growing the map while adding them.
    headers.reserve(8);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_AUTH_USER_ID, HeaderValue::from(identity.id));
    headers.insert(X_AUTH_AAL, HeaderValue::from_static(level.as_str()));
    // Usernames and addresses are checked for control characters when made, so their UTF-8 bytes
    // are a valid header value; anything that still is not becomes an empty header, never an error.
    headers.insert(X_AUTH_USER, header_text(&identity.username));
    headers.insert(
        X_AUTH_EMAIL,
        header_text(identity.email.as_deref().unwrap_or_default()),
    );
    response
}

fn header_text(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `?redirect=1` (or `true`, `yes`): answer a refusal with a 302 to the sign-in page.
fn wants_redirect(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| matches!(pair, "redirect=1" | "redirect=true" | "redirect=yes"))
    })
}

/// The 401 (or 302) answer, pointing at the sign-in page.
fn refused(site: &SiteSettings, headers: &HeaderMap, https: bool, redirect: bool) -> Response {
    let sign_in = sign_in_url(site, headers, https);
    let mut response = if redirect {
        (StatusCode::FOUND, ()).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            // The API's error shape, and where to sign in.
            Json(serde_json::json!({
                "error": ApiError::from(AppError::SignInRequired).detail(),
                "sign_in_url": sign_in,
            })),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&sign_in) {
        if redirect {
            headers.insert(LOCATION, value.clone());
        }
        headers.insert(X_AUTH_SIGN_IN, value);
    }
    response
}

/// Our sign-in page, absolute (the proxy sends the browser there from another host), with `next`
/// set to the URL the person asked the proxy for, when the proxy said which.
///
/// Set `PUBLIC_ORIGIN` for forward authentication: without it the origin is guessed from the
/// `Host` the proxy addressed us by (often an internal name) and `https` from a trusted proxy.
pub fn sign_in_url(site: &SiteSettings, headers: &HeaderMap, https: bool) -> String {
    let origin = match &site.public_origin {
        Some(origin) => origin.clone(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .unwrap_or("localhost");
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    let mut url = format!("{origin}{}/sign-in", site.base_path);
    if let Some(next) = original_url(headers) {
        url.push_str("?next=");
        url.push_str(&urlencoding::encode(&next));
    }
    url
}

/// The URL the person asked the proxy for: `X-Original-URL` (nginx, by convention), else Traefik's
/// `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri`.
fn original_url(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let url = match text("x-original-url") {
        Some(url) => url.to_owned(),
        None => {
            let proto = text("x-forwarded-proto").unwrap_or("https");
            let host = text("x-forwarded-host")?;
            let uri = text("x-forwarded-uri").unwrap_or("/");
            format!("{proto}://{host}{uri}")
        }
    };
    (url.len() <= MAX_NEXT_CHARS && url.bytes().all(|b| b.is_ascii_graphic())).then_some(url)
}

/// `GET /bench/baseline` and `/bench/bare` (only with `BENCH_BASELINE_ROUTE`): the answer
/// `/auth/verify` gives a verified user, for a fixed user and without looking at any session. The
/// load bench compares `/auth/verify` with the first (same router and middleware, so the difference
/// is the cost of verifying) and with the second (no middleware at all).
pub async fn baseline() -> Response {
    verified(
        &Identity {
            id: 1,
            username: "admin".to_owned(),
            email: Some("admin@example.com".to_owned()),
            is_staff: true,
        },
        Aal::Aal1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_original_url_comes_from_nginx_or_traefik_headers() {
        assert_eq!(
            original_url(&headers(&[(
                "x-original-url",
                "https://app.example.com/a?b=c"
            )])),
            Some("https://app.example.com/a?b=c".to_owned())
        );
        assert_eq!(
            original_url(&headers(&[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app:8080"),
                ("x-forwarded-uri", "/x/y?z=1"),
            ])),
            Some("http://app:8080/x/y?z=1".to_owned())
        );
        assert_eq!(original_url(&headers(&[])), None);
        assert_eq!(
            original_url(&headers(&[("x-original-url", "https://a/b c")])),
            None
        );
    }
}
