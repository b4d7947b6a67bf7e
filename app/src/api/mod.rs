//! Server functions, grouped by area, and (`v1`, server only) the JSON API over the same
//! operations. Each is a thin call into the `console_sessions` library.

pub mod account;
pub mod admin;
pub mod factors;
pub mod passkeys;
pub mod recovery;
pub mod security;
pub mod sessions;
#[cfg(feature = "ssr")]
pub mod shown;
pub mod system;
#[cfg(feature = "ssr")]
pub mod v1;
