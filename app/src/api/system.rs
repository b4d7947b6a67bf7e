//! The state of the service itself.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What the home page shows about the running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `sqlite` or `postgres`, for staff only: anyone else is not told which database runs, which
    /// would only help an attacker pick their tools.
    pub backend: Option<String>,
    /// Whether the database answered just now.
    pub database_ok: bool,
}

/// Asks the database whether it answers; staff also learn which engine it is.
#[server(prefix = "/api", endpoint = "system/status")]
pub async fn system_status() -> Result<ServiceStatus, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    let database_ok = state.db.ping().await.is_ok();
    // A database that does not answer cannot say who is staff: then nobody is.
    let staff = crate::server::request::signed_in_user(&state, &session)
        .await
        .ok()
        .flatten()
        .is_some_and(|user| user.is_staff);
    Ok(ServiceStatus {
        backend: staff.then(|| state.db.backend().to_string()),
        database_ok,
    })
}
