//! Server functions, grouped by area. Each is a thin call into the `console_sessions` library.

pub mod account;
pub mod admin;
pub mod sessions;
pub mod system;
#[cfg(feature = "ssr")]
pub mod v1;
