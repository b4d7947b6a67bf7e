//! Building the application on a listener. Tests build it on port 0 with a fresh database.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use console_sessions::accounts::Accounts;
use console_sessions::geo::{GeoIp, GeoIpError};
use console_sessions::{Database, DbError, SessionEngine, SessionLayer};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;

use super::config::Settings;
use super::csrf::{self, CsrfSettings};
use super::state::AppState;
use crate::app::{shell, App};

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
    /// The server stopped with an I/O error.
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// A built application: database open and migrated, listener bound, router ready.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    router: Router,
}

impl Application {
    /// Opens and migrates the database, binds the listener and builds the router.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let db = Database::connect(&settings.database_url).await?;
        db.migrate().await?;
        let listener =
            TcpListener::bind(settings.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.addr,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.addr,
            source,
        })?;
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
        let session_config = settings.session_config();
        let csrf = CsrfSettings::new(settings.public_origin.clone(), session_config.secure);
        let sessions = SessionEngine::with_geoip(db.clone(), session_config, geoip);
        let accounts = Accounts::new(db.clone(), sessions.clone(), settings.accounts_config());
        let state = AppState {
            leptos_options,
            db,
            sessions,
            accounts,
            csrf: Arc::new(csrf),
        };
        let router = router(state.clone());
        Ok(Self {
            listener,
            local_addr,
            state,
            router,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight and closes the pool.
    /// Expired sessions are swept every `clear_expired_every` (none when zero).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        clear_expired_every: Duration,
    ) -> Result<(), StartupError> {
        let mut sweepers = Vec::new();
        if !clear_expired_every.is_zero() {
            sweepers.push(
                self.state
                    .sessions
                    .spawn_expiry_sweeper(clear_expired_every),
            );
            let accounts = self.state.accounts.clone();
            sweepers.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(clear_expired_every);
                loop {
                    ticks.tick().await;
                    if let Err(error) = accounts.clear_stale_attempts().await {
                        tracing::warn!(%error, "could not clear old sign-in attempts");
                    }
                }
            }));
        }
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        for sweeper in sweepers {
            sweeper.abort();
        }
        self.state.db.close().await;
        result.map_err(StartupError::Serve)
    }
}

/// The whole HTTP surface: pages, server functions, health check, static files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .route("/healthz", get(healthz))
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let state = state.clone();
                move || provide_context(state.clone())
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Outermost first: the session layer gives the CSRF check the client's https flag.
        .layer(axum::middleware::from_fn_with_state(
            state.csrf.clone(),
            csrf::protect,
        ))
        .layer(SessionLayer::new(state.sessions.clone()))
        .with_state(state)
}

/// `GET /healthz`: 200 `{"status":"ok","database":"ok"}`, or 503 with `"database":"unavailable"`.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
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
