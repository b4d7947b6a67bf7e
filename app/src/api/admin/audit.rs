//! The audit log of staff actions.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// Unix ms.
    pub at: i64,
    /// Staff username.
    pub actor: String,
    /// Their address.
    pub actor_ip: Option<String>,
    /// What.
    pub action: String,
    /// Which user.
    pub target: Option<String>,
    /// Sessions ended.
    pub session_ids: Vec<String>,
    /// In words.
    pub detail: String,
}

/// The newest audit entries.
#[server(prefix = "/api", endpoint = "admin/audit", input = GetUrl)]
pub async fn list_audit_log(
    /// 1-based page of 100 entries (default 1, at most 100,000).
    page: Option<u32>,
) -> Result<Vec<AuditLine>, AppError> {
    use crate::server::request;
    use console_sessions::sessions::to_millis;
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let page = page.unwrap_or(1).clamp(1, 100_000) - 1;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    Ok(admin
        .audit_log(100, u64::from(page) * 100)
        .await?
        .into_iter()
        .map(|e| AuditLine {
            at: to_millis(e.at),
            actor: e.actor_username,
            actor_ip: e.actor_ip,
            action: e.action,
            target: e.target_username,
            session_ids: e.session_ids,
            detail: e.detail,
        })
        .collect())
}
