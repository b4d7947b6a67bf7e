//! The application's tests, one module per area, linked into one test binary: one binary per file
//! linked the whole application and its dependencies again for each (150 MB apiece in debug).
//! Only `metrics.rs` is a binary of its own: its tests compare counters of the process-wide
//! metrics recorder, which the traffic of every other test here would also move.
//!
//! Tests are run by area with a filter: `cargo test -p console-sessions-app --test app sso::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// First: the `on_every_database!` macro of `common` is visible only to the modules after it.
#[macro_use]
#[path = "../common/mod.rs"]
mod common;

#[path = "../../../tests/support/smtp.rs"]
mod smtp;

mod accounts;
mod admin;
mod api;
mod base_path;
mod cli;
mod cluster;
mod crash;
mod devices;
mod factors;
mod health;
mod logs;
mod outage;
mod passkeys;
mod recovery;
mod sso;
mod statuses;
