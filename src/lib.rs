//! console-sessions: server-side `db` and `cached_db` sessions that know their user, IP, user agent,
//! times and location — the Rust counterpart of django-qsessions.
//!
//! This crate is the library. It has no web framework of its own beyond a tower layer, so any axum
//! service can use it; the Leptos application in `app/` is built on top of it.

pub mod accounts;
pub mod admin;
mod clock;
pub mod db;
pub mod device;
pub mod geo;
pub mod metrics;
pub mod seed;
pub mod sessions;
pub mod testing;

pub use db::{Backend, Database, DbError};
pub use sessions::{
    Session, SessionBackend, SessionConfig, SessionEngine, SessionLayer, SessionRecord,
    SessionStore,
};
