//! The server side of the application: settings, shared state, CSRF, request helpers, security
//! headers, metrics and logs. It depends on nothing above it (`api`, `app`, `pages`, `components`):
//! they build on it, and `startup`, at the top of the crate, puts them all together.

pub mod config;
pub mod cookies;
pub mod csrf;
pub mod embed;
pub mod forward_auth;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod request;
pub mod serve;
pub mod site;
pub mod state;
pub mod telemetry;
