//! The server side of the application: settings, command line, router and shared state.

pub mod cli;
pub mod config;
pub mod csrf;
pub mod request;
pub mod startup;
pub mod state;
