//! The one error type that crosses the server-function boundary. Internal causes are logged on the
//! server; the browser only ever sees the short, safe message of a variant.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a page can show to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The database did not answer in time; the request changed nothing.
    #[error(
        "The database is unavailable right now. Nothing was changed; please try again in a moment."
    )]
    DatabaseUnavailable,
    /// Something failed on the server; details are in the server log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request could not be carried to or from the server function.
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<console_sessions::DbError> for AppError {
    fn from(error: console_sessions::DbError) -> Self {
        tracing::error!(%error, "database error in a server function");
        AppError::DatabaseUnavailable
    }
}
