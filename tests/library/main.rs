//! The library's tests, one module per area, linked into one test binary (one link of the library
//! and its dependencies instead of one per file).
//!
//! Tests are run by area with a filter: `cargo test -p console-sessions --test library sessions::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Runs each named `async fn(Ctx)` of the invoking module once per case, as the test
/// `<case>::<name>`, on the context `Ctx::new(<the case's arguments>)` makes:
///
/// - `suite!(on_every_database: a, b)`: `Ctx::new(Backend)`, cases `sqlite` and `postgres`;
/// - `suite!(on_every_database_and_store: a, b)`: `Ctx::new(Backend, SessionBackend)`, cases
///   `sqlite_db`, `sqlite_cached_db`, `postgres_db` and `postgres_cached_db`;
/// - `suite!(on_every_store: a, b)`: `Ctx::on(Stores)`, those four cases and two that keep
///   sessions in a [`MemoryStore`](console_sessions::sessions::MemoryStore), a store the engine
///   knows only through [`SessionEngine::with_store`](console_sessions::SessionEngine::with_store):
///   `memory` (alone) and `memory_cached` (with a cache composed in front), and two on a database
///   with the sessions table alone: `sqlite_sessions_only_db` and `postgres_sessions_only_cached_db`.
///
/// Defined before the modules, so that every module after it can invoke it.
macro_rules! suite {
    (on_every_database: $($test:ident),* $(,)?) => {
        suite!(@cases [
            sqlite (::console_sessions::Backend::Sqlite),
            postgres (::console_sessions::Backend::Postgres),
        ] $($test),*);
    };
    (on_every_database_and_store: $($test:ident),* $(,)?) => {
        suite!(@cases [
            sqlite_db (
                ::console_sessions::Backend::Sqlite,
                ::console_sessions::SessionBackend::Db
            ),
            sqlite_cached_db (
                ::console_sessions::Backend::Sqlite,
                ::console_sessions::SessionBackend::CachedDb
            ),
            postgres_db (
                ::console_sessions::Backend::Postgres,
                ::console_sessions::SessionBackend::Db
            ),
            postgres_cached_db (
                ::console_sessions::Backend::Postgres,
                ::console_sessions::SessionBackend::CachedDb
            ),
        ] $($test),*);
    };
    (on_every_store: $($test:ident),* $(,)?) => {
        suite!(@on [
            sqlite_db (crate::Stores::Database(
                ::console_sessions::Backend::Sqlite,
                ::console_sessions::SessionBackend::Db
            )),
            sqlite_cached_db (crate::Stores::Database(
                ::console_sessions::Backend::Sqlite,
                ::console_sessions::SessionBackend::CachedDb
            )),
            postgres_db (crate::Stores::Database(
                ::console_sessions::Backend::Postgres,
                ::console_sessions::SessionBackend::Db
            )),
            postgres_cached_db (crate::Stores::Database(
                ::console_sessions::Backend::Postgres,
                ::console_sessions::SessionBackend::CachedDb
            )),
            sqlite_sessions_only_db (crate::Stores::SessionsOnly(
                ::console_sessions::Backend::Sqlite,
                ::console_sessions::SessionBackend::Db
            )),
            postgres_sessions_only_cached_db (crate::Stores::SessionsOnly(
                ::console_sessions::Backend::Postgres,
                ::console_sessions::SessionBackend::CachedDb
            )),
            memory (crate::Stores::Memory(::console_sessions::SessionBackend::Db)),
            memory_cached (crate::Stores::Memory(::console_sessions::SessionBackend::CachedDb)),
        ] $($test),*);
    };
    (@on [] $($test:ident),*) => {};
    (@on [$case:ident $args:tt $(, $($more:tt)*)?] $($test:ident),*) => {
        mod $case {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test(Ctx::on $args.await).await } )*
        }
        suite!(@on [$($($more)*)?] $($test),*);
    };
    // One case at a time: a case's arguments cannot repeat inside the repetition of the tests.
    (@cases [] $($test:ident),*) => {};
    (@cases [$case:ident $args:tt $(, $($more:tt)*)?] $($test:ident),*) => {
        mod $case {
            use super::*;
            $( #[tokio::test] async fn $test() { super::$test(Ctx::new $args.await).await } )*
        }
        suite!(@cases [$($($more)*)?] $($test),*);
    };
}

/// Where a case of `suite!(on_every_store: …)` keeps its sessions.
#[derive(Debug, Clone, Copy)]
pub enum Stores {
    /// In this database, through the engine's own `db` or `cached_db` store.
    Database(console_sessions::Backend, console_sessions::SessionBackend),
    /// In this database with the session engine's table alone (`Database::migrate_sessions`, no
    /// users table), through the engine's own store.
    SessionsOnly(console_sessions::Backend, console_sessions::SessionBackend),
    /// In a `MemoryStore` handed to `SessionEngine::with_store`, alone (`Db`) or behind a cache
    /// (`CachedDb`).
    Memory(console_sessions::SessionBackend),
}

/// Small GeoIP databases built at run time (shared with the benches, hence outside this directory).
#[path = "../support/geo_fixture.rs"]
mod geo_fixture;

/// A real SMTP server (aiosmtpd) as a child process, for the mail tests.
#[path = "../support/smtp.rs"]
mod smtp;

mod accounts;
mod admin;
mod cluster;
mod device;
mod events;
mod factors;
mod geo;
mod layer;
mod mail;
mod passkeys;
mod recovery;
mod sessions;
