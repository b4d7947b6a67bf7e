//! The server side of the application: settings, command line, router, shared state, metrics and
//! logs.

pub mod cli;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod embed;
pub mod forward_auth;
pub mod metrics;
pub mod request;
pub mod serve;
pub mod site;
pub mod startup;
pub mod state;
pub mod telemetry;
