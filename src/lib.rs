//! console-sessions: server-side `db` and `cached_db` sessions that know their user, IP, user agent,
//! times and location — the Rust counterpart of django-qsessions.
//!
//! This crate is the library. It has no web framework of its own beyond a tower layer, so any axum
//! service can use it; the Leptos application in `app/` is built on top of it.
//!
//! A service adopts it in a few lines: a database, an engine, a layer; handlers take a
//! [`Session`]. Sessions load on first use, are written only when changed, and know their client.
//!
//! ```
//! use axum::{routing::get, Router};
//! use console_sessions::sessions::SessionError;
//! use console_sessions::{Database, Session, SessionConfig, SessionEngine, SessionLayer};
//!
//! async fn visits(session: Session) -> Result<String, SessionError> {
//!     let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", visits).await?;
//!     Ok(format!("visit {visits}"))
//! }
//!
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let url = format!("sqlite://{}/app.db", dir.path().display());
//! let db = Database::connect(&url).await?; // sqlite://app.db or postgres://…
//! db.migrate_sessions().await?; // the sessions table alone
//! let engine = SessionEngine::new(db, SessionConfig::default());
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(engine));
//! // Serve it with the client's address, so sessions know where they are:
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # use tower::ServiceExt;
//! # let response = app.oneshot(axum::http::Request::new(axum::body::Body::empty())).await?;
//! # assert_eq!(response.status(), 200);
//! # assert!(response.headers()["set-cookie"].to_str()?.contains("HttpOnly"));
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new()?.block_on(doc())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/counter.rs` is a whole service: sign-in with [`accounts::Accounts`], a visit
//! counter, and the list of a user's sessions.

#[cfg(all(feature = "accounts", not(sql)))]
compile_error!("the `accounts` feature keeps users in a database: enable `sqlite` or `postgres`");
#[cfg(all(feature = "mail", not(sql)))]
compile_error!("the `mail` feature keeps its outbox in a database: enable `sqlite` or `postgres`");
#[cfg(all(feature = "testing", not(sql)))]
compile_error!("the `testing` feature makes test databases: enable `sqlite` or `postgres`");

#[cfg(all(feature = "accounts", sql))]
pub mod accounts;
#[cfg(all(feature = "admin", sql))]
pub mod admin;
#[cfg(feature = "engine")]
mod clock;
#[cfg(sql)]
pub mod db;
#[cfg(feature = "engine")]
pub mod device;
#[cfg(all(fuzzing, feature = "engine"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "engine")]
pub mod geo;
#[cfg(all(feature = "mail", sql))]
pub mod mail;
#[cfg(feature = "engine")]
pub mod metrics;
pub mod redirect;
pub mod refusal;
#[cfg(all(feature = "admin", sql))]
pub mod seed;
#[cfg(feature = "engine")]
pub mod sessions;
#[cfg(all(feature = "testing", sql))]
pub mod testing;

#[cfg(sql)]
pub use db::{Backend, Database, DbError};
#[cfg(feature = "engine")]
pub use sessions::{
    Session, SessionBackend, SessionConfig, SessionEngine, SessionLayer, SessionRecord,
    SessionStore,
};
