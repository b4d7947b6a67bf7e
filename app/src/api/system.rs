//! The state of the service itself.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What the home page shows about the running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Whether the database answered just now.
    pub database_ok: bool,
}

/// Asks the database whether it answers, and which engine it is.
#[server(prefix = "/api", endpoint = "system/status")]
pub async fn system_status() -> Result<ServiceStatus, AppError> {
    let state = crate::server::state::AppState::from_context()?;
    let database_ok = state.db.ping().await.is_ok();
    Ok(ServiceStatus {
        backend: state.db.backend().to_string(),
        database_ok,
    })
}
