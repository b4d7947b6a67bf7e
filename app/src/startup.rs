//! Building the application on a listener. Tests build it on port 0 with a fresh database.
//!
//! This sits above `api`, `app` and `server` because it is the one place that joins them: the router
//! mounts the pages (`app`) and the JSON API (`api::v1`), and those use the server's state, CSRF and
//! request helpers. Inside `server/` it closed a circle (server → api → server); up here every folder
//! depends only on those below it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use console_sessions::accounts::Accounts;
use console_sessions::geo::{GeoIp, GeoIpError};
use console_sessions::mail::{MailError, Outbox};
use console_sessions::{Database, DbError, SessionEngine, SessionLayer};
use leptos::prelude::*;
use leptos_axum::{
    generate_route_list_with_exclusions_and_ssg_and_context, AxumRouteListing, LeptosRoutes,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::app::{shell, App};
use crate::server::config::Settings;
use crate::server::csrf::{self, CsrfSettings};
use crate::server::embed;
use crate::server::forward_auth;
use crate::server::links;
use crate::server::mail::Mailer;
use crate::server::metrics::{self as metrics_endpoint, MetricsEndpoint};
use crate::server::request;
use crate::server::serve::serve;
use crate::server::state::AppState;
use crate::server::telemetry::{self, REQUEST_ID};

/// How long the rest of a shutdown may take once the requests are done or cut off: the alert task
/// and the mail worker finishing what they hold, then closing the database pool. Connections
/// still held then (by requests cut off at the shutdown deadline, whose statements the driver is
/// still finishing) are left to the process exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long sent mail stays listed (for staff, at /admin/mail) before the sweeper deletes it.
const MAIL_KEPT_SENT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long failed mail stays listed, for staff to see and send again.
const MAIL_KEPT_FAILED: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the server could not start; printed as one line before a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The address is taken or not ours to bind.
    #[error("cannot listen on {addr}: {source}. Stop whatever uses it, or pass --addr / LEPTOS_SITE_ADDR with another port")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The GeoIP database could not be opened.
    #[error("GEOIP_PATH: {0}")]
    GeoIp(#[from] GeoIpError),
    /// An account could not be created or changed.
    #[error("{0}")]
    Accounts(String),
    /// A session operation failed.
    #[error("sessions: {0}")]
    Sessions(String),
    /// Mail is misconfigured (`MAIL_URL`, `MAIL_FROM`, or a public origin links cannot be made on).
    #[error("mail: {0}")]
    Mail(#[from] MailError),
}

/// A built application: database open and migrated, listeners bound, router ready.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The separate `/metrics` listener (`METRICS_ADDR`), with its router.
    metrics: Option<(TcpListener, SocketAddr, Router)>,
    state: AppState,
    router: Router,
    shutdown_timeout: Duration,
    /// How long a request head may take to arrive (see [`serve`]).
    head_timeout: Duration,
    /// Set to `true` when the shutdown deadline passes: requests still running are then cut off.
    deadline: watch::Sender<bool>,
}

impl Application {
    /// Opens and migrates the database, binds the listener and builds the router.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        // Before Leptos spawns its first task, so that page data loaders keep the request's span.
        telemetry::init_executor();
        let db = Database::connect_with(&settings.database_url, &settings.pool_settings()).await?;
        db.migrate().await?;
        let (listener, local_addr) = bind(settings.addr).await?;
        let leptos_options = LeptosOptions::builder()
            .output_name("console-sessions")
            .site_root(settings.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .build();
        let geoip = match &settings.geoip_path {
            Some(path) => GeoIp::open(path)?,
            None => GeoIp::disabled(),
        };
        if let Some(warning) = settings.plain_http_warning() {
            tracing::warn!("{warning}");
        }
        let session_config = settings.session_config();
        let mut csrf = CsrfSettings::new(settings.public_origin.clone(), session_config.secure);
        csrf.base_path = settings.base_path.clone();
        let sessions = SessionEngine::with_geoip(db.clone(), session_config, geoip);
        let accounts = Accounts::new(db.clone(), sessions.clone(), settings.accounts_config());
        let outbox = Outbox::new(db.clone(), settings.mail_config()?)?;
        let mail = Mailer::new(outbox, settings.mail_origin(local_addr)?);
        if settings.public_origin.is_none() {
            tracing::info!(
                origin = %mail.origin(),
                "PUBLIC_ORIGIN is not set: links in mail lead to the address listened on"
            );
        }
        let state = AppState {
            leptos_options,
            db,
            sessions,
            accounts,
            mail,
            csrf: Arc::new(csrf),
            site: Arc::new(settings.site()),
            jobs: Default::default(),
        };
        // Metrics are recorded only where someone may read them.
        let exposed = settings.metrics_token.is_some() || settings.metrics_addr.is_some();
        let endpoint = if exposed {
            MetricsEndpoint::new(settings.metrics_token.as_deref(), state.db.clone())
        } else {
            None
        };
        let (deadline, cut_off) = watch::channel(false);
        let (metrics, on_main) = match (settings.metrics_addr, endpoint) {
            (Some(addr), Some(endpoint)) => {
                let (listener, local) = bind(addr).await?;
                let router = metrics_router(endpoint, cut_off.clone());
                (Some((listener, local, router)), None)
            }
            (_, endpoint) => (None, endpoint),
        };
        let app_router = router_with(state.clone(), cut_off, on_main);
        Ok(Self {
            listener,
            local_addr,
            metrics,
            state,
            router: app_router,
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout),
            head_timeout: Duration::from_secs(settings.request_head_timeout),
            deadline,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the separate `/metrics` listener, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr, _)| *addr)
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting connections, gives the requests in
    /// flight the shutdown timeout to finish (those still running then are answered 503), and closes
    /// the pool. Expired sessions are swept every `clear_expired_every` (none when zero). Under
    /// `cached_db` on PostgreSQL, the cache listens for the sessions other nodes end (and evicts
    /// them) while the server runs.
    ///
    /// Nothing else is pending at shutdown: a session's last activity is written while its request
    /// is answered (the session layer commits before the response leaves), and the `cached_db`
    /// cache holds nothing the database does not.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        clear_expired_every: Duration,
    ) -> Result<(), StartupError> {
        // Several nodes may share a PostgreSQL database: hear which sessions the others end.
        let evictions = self.state.sessions.spawn_eviction_listener();
        // Mail queued before a crash, or while the mail server was down, goes out now.
        let mail_worker = self.state.mail.outbox().spawn_worker();
        // New sign-in contexts are recorded either way; SIGN_IN_ALERTS says whether they are mailed.
        let alerts = {
            let mail = self.state.mail.clone();
            let geoip = self.state.sessions.geoip().clone();
            self.state.accounts.spawn_sign_in_alerts(move |alert| {
                let mail = mail.clone();
                let geoip = geoip.clone();
                async move {
                    if let Err(error) = mail.sign_in_alert(&alert, &geoip).await {
                        tracing::error!(%error, user_id = alert.user.id, "cannot queue a sign-in alert");
                    }
                }
            })
        };
        let mut sweepers = Vec::new();
        if !clear_expired_every.is_zero() {
            sweepers.push(
                self.state
                    .sessions
                    .spawn_expiry_sweeper(clear_expired_every),
            );
            let accounts = self.state.accounts.clone();
            let outbox = self.state.mail.outbox().clone();
            // Sign-in activity is kept as long as the history of ended sessions.
            let activity_kept = self.state.sessions.config().history_retention;
            sweepers.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(clear_expired_every);
                loop {
                    ticks.tick().await;
                    if let Err(error) = accounts.clear_stale_attempts().await {
                        tracing::warn!(%error, "could not clear old sign-in attempts");
                    }
                    let before = console_sessions::sessions::now().saturating_sub(
                        time::Duration::try_from(activity_kept).unwrap_or(time::Duration::MAX),
                    );
                    if let Err(error) = accounts.forget_sign_in_activity(before).await {
                        tracing::warn!(%error, "could not forget old sign-in activity");
                    }
                    match accounts.age_addresses(500).await {
                        Ok(0) => {}
                        Ok(count) => {
                            tracing::info!(count, "old addresses of sign-ins cut or forgotten")
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not cut old addresses of sign-ins")
                        }
                    }
                    if let Err(error) = outbox.purge(MAIL_KEPT_SENT, MAIL_KEPT_FAILED).await {
                        tracing::warn!(%error, "could not purge old mail");
                    }
                }
            }));
        }
        // Every listener stops accepting when the signal comes.
        let (stopping, stop) = watch::channel(false);
        let signalled = tokio::spawn(async move {
            shutdown.await;
            stopping.send_replace(true);
        });
        let head_timeout = self.head_timeout;
        let main = serve(
            self.listener,
            self.router,
            head_timeout,
            stopped(stop.clone()),
        );
        let metrics = {
            let stop = stop.clone();
            async move {
                if let Some((listener, _, router)) = self.metrics {
                    serve(listener, router, head_timeout, stopped(stop)).await;
                }
            }
        };
        let served = async {
            tokio::join!(main, metrics);
        };
        let deadline = self.deadline;
        let timeout = self.shutdown_timeout;
        let bounded = async move {
            stopped(stop).await;
            tracing::info!(
                timeout_secs = timeout.as_secs(),
                "no longer accepting connections; finishing the requests in flight"
            );
            tokio::time::sleep(timeout).await;
            tracing::warn!(
                "shutdown timeout reached: answering the requests still running with 503"
            );
            deadline.send_replace(true);
            // Their responses need a moment to be written; then the connections are dropped.
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        tokio::select! {
            () = served => {}
            () = bounded => {}
        }
        signalled.abort();
        for sweeper in sweepers {
            sweeper.abort();
        }
        // One budget for what is left: the sign-ins of the requests served are looked at and
        // their alerts queued, the message in hand (if any) is finished, then the pool closes. A
        // database that does not answer must not hold the exit: what is cut off here is queued
        // already, and a message a worker held is sent again once its lease runs out.
        let closing = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        let background = async {
            alerts.stop().await;
            mail_worker.stop().await;
        };
        if tokio::time::timeout_at(closing, background).await.is_ok() {
            tracing::info!("mail worker stopped");
        } else {
            tracing::warn!("sign-in alerts and mail still busy at exit; left to the next start");
        }
        if let Some(evictions) = evictions {
            evictions.stop();
            tracing::info!("stopped listening for session evictions");
        }
        if tokio::time::timeout_at(closing, self.state.db.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "database connections still busy at exit; closing them with the process"
            );
        } else {
            tracing::info!("database pool closed");
        }
        Ok(())
    }
}

/// Resolves once `stop` says `true` (or its sender is gone, which also means stop).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, local))
}

/// The separate metrics listener: `/metrics` only.
fn metrics_router(endpoint: MetricsEndpoint, cut_off: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint::scrape))
        .with_state(endpoint)
        .layer(axum::middleware::from_fn_with_state(
            cut_off,
            cut_off_at_deadline,
        ))
}

/// The whole HTTP surface: pages, server functions, health check, static files; no `/metrics`, and
/// no shutdown deadline.
pub fn router(state: AppState) -> Router {
    // A receiver whose sender is gone never sees the deadline.
    let (_, never) = watch::channel(false);
    router_with(state, never, None)
}

/// [`router`], with `/metrics` when `metrics` is given; requests still running when `cut_off`
/// turns `true` (the shutdown deadline) are answered 503. Under a base path, everything is served
/// under it (see [`mount`]).
pub fn router_with(
    state: AppState,
    cut_off: watch::Receiver<bool>,
    metrics: Option<MetricsEndpoint>,
) -> Router {
    // The app sees the state while its routes are listed: their paths carry the base path.
    let (routes, _) = generate_route_list_with_exclusions_and_ssg_and_context(App, None, {
        let state = state.clone();
        move || state.provide()
    });
    let base_path = state.site.base_path.clone();
    let routes = with_home_slash(routes, &base_path);
    let bench_routes = state.site.bench_routes;
    let verify_state = forward_auth::VerifyState::new(&state);
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::api::v1::router());
    if state.site.bench_routes {
        router = router.route("/bench/baseline", get(forward_auth::baseline));
    }
    if let Some(endpoint) = metrics {
        router = router.route(
            "/metrics",
            get(metrics_endpoint::scrape).with_state(endpoint),
        );
    }
    let router: Router = router
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || {
                    state.provide();
                    // After leptos_axum's own, which it replaces (see `page_redirect`).
                    leptos_router::components::provide_server_redirect(request::page_redirect);
                }
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        // The not-found page renders the app too: it needs the base path beside the state the
        // handler provides itself.
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            {
                let base = crate::paths::BasePath(base_path.clone());
                move || provide_context(base.clone())
            },
            shell,
        ))
        // Each layer wraps those above it. The session layer gives the CSRF check the client's
        // https flag; the deadline cut-off drops the whole request, session commit included; the
        // metrics see every answer, the trace span covers everything, and the request id exists
        // before the span is made. A mail link's token leaves the address bar before any page
        // sees it (the request logs never show a query).
        .layer(axum::middleware::from_fn_with_state(
            links::Landing {
                base_path: state.site.base_path.clone(),
                secure_cookies: state.sessions.config().secure,
            },
            links::land,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.csrf.clone(),
            csrf::protect,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.site.clone(),
            embed::headers,
        ))
        .layer(SessionLayer::new(state.sessions.clone()))
        .layer(axum::middleware::from_fn_with_state(
            cut_off,
            cut_off_at_deadline,
        ))
        .layer(axum::middleware::from_fn(metrics_endpoint::track))
        .layer(telemetry::trace_layer())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(telemetry::drop_unsafe_request_id))
        .with_state(state)
        // Outside every layer: a proxy asks this on every request it passes, so it has none of
        // the pages' costs (request span and log line, request id, CSRF and embedding headers).
        // It reads its session itself, counts its answers itself, and logs only failures.
        .route(
            "/auth/verify",
            get(forward_auth::verify).with_state(verify_state),
        );
    let router = if bench_routes {
        // Outside every layer too: the floor /auth/verify is compared with.
        router.route("/bench/bare", get(forward_auth::baseline))
    } else {
        router
    };
    mount(router, &base_path)
}

/// Under a base path the home page is listed at `/sso` only: it is served at `/sso/` too, the
/// address the app links to (and where a proxy's `location /sso/` sends it).
fn with_home_slash(mut routes: Vec<AxumRouteListing>, base_path: &str) -> Vec<AxumRouteListing> {
    if base_path.is_empty() {
        return routes;
    }
    let slash = format!("{base_path}/");
    let home = routes.iter().find(|route| route.path() == base_path);
    if let Some(home) = home {
        if !routes.iter().any(|route| route.path() == slash) {
            let listing =
                AxumRouteListing::new(slash, home.mode().clone(), home.methods(), Vec::new());
            routes.push(listing);
        }
    }
    routes
}

/// Serves `router` under `base_path` (such as `/sso`), for a proxy that passes the prefix on.
///
/// The pages are routed under the base path already (the route list is made with it). Everything
/// else is routed at its own path, so the prefix is taken off before routing: server functions
/// (`/sso/api/…`), the built assets (`/sso/pkg/…`) and public files (`/sso/favicon.svg`), and the
/// answers for machines (`/sso/auth/verify`, `/sso/healthz`, `/sso/metrics`, `/sso/bench/…`).
/// Those also still answer without the prefix: load balancers probe nodes directly. A page asked
/// for without the prefix is not found.
pub fn mount(router: Router, base_path: &str) -> Router {
    if base_path.is_empty() {
        return router;
    }
    let base: Arc<str> = base_path.into();
    // An axum router's own layers run after routing: the URI is rewritten by a router around it.
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn_with_state(base, strip_base))
}

/// Middleware of [`mount`]: takes the base path off the URI of what is routed without it.
async fn strip_base(State(base): State<Arc<str>>, mut request: Request, next: Next) -> Response {
    let rewritten = unprefixed(&base, request.uri().path()).and_then(|rest| {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest.to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = path_and_query.parse().ok();
        axum::http::Uri::from_parts(parts).ok()
    });
    if let Some(uri) = rewritten {
        *request.uri_mut() = uri;
    }
    next.run(request).await
}

/// `path` without `base`, when it is under `base` and is not a page: a server function, an asset
/// or public file (one segment with a dot), or an answer for machines.
fn unprefixed<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(base)?;
    let name = rest.strip_prefix('/')?;
    let routed_without_base = rest.starts_with("/api/")
        || rest == "/api/v1"
        || rest.starts_with("/pkg/")
        || crate::server::site::is_machine_path(rest)
        || (!name.contains('/') && name.contains('.'));
    routed_without_base.then_some(rest)
}

/// Middleware: runs the request unless the shutdown deadline passes first; then the request is
/// dropped (whatever it was doing, its session commit included, is abandoned) and answered 503.
async fn cut_off_at_deadline(
    State(mut cut_off): State<watch::Receiver<bool>>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = async move {
        if cut_off.wait_for(|passed| *passed).await.is_err() {
            // The application was dropped without a shutdown: no deadline will ever come.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = next.run(request) => response,
        () = deadline => {
            tracing::warn!("request cut off by the shutdown deadline");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (RETRY_AFTER, "5"),
                    (CONNECTION, "close"),
                ],
                "The server is restarting and could not finish this request. Please try again.\n",
            )
                .into_response()
        }
    }
}

/// `GET /healthz`: 200 `{"status":"ok","database":"ok"}`, or 503 with `"database":"unavailable"`
/// when the database does not answer (or, on SQLite, will not take a write) within the database
/// timeout.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.check().await {
        Ok(()) => Json(serde_json::json!({"status": "ok", "database": "ok"})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": "unavailable"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unprefixed;

    #[test]
    fn only_what_is_not_a_page_loses_the_base_path() {
        assert_eq!(
            unprefixed("/sso", "/sso/api/account/sign-in"),
            Some("/api/account/sign-in")
        );
        assert_eq!(
            unprefixed("/sso", "/sso/pkg/console-sessions.css"),
            Some("/pkg/console-sessions.css")
        );
        assert_eq!(unprefixed("/sso", "/sso/favicon.svg"), Some("/favicon.svg"));
        assert_eq!(unprefixed("/sso", "/sso/healthz"), Some("/healthz"));
        assert_eq!(unprefixed("/sso", "/sso/auth/verify"), Some("/auth/verify"));
        assert_eq!(unprefixed("/a/b", "/a/b/metrics"), Some("/metrics"));
        for page in [
            "/sso",
            "/sso/",
            "/sso/sign-in",
            "/sso/admin/sessions/abc.def",
            "/ssox/api/x",
            "/api/account/viewer",
            "/sign-in",
        ] {
            assert_eq!(unprefixed("/sso", page), None, "{page}");
        }
    }
}
