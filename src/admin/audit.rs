//! The audit log: who did what to which sessions, and from where.

use std::net::IpAddr;

use time::OffsetDateTime;

/// Who did an admin action, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The staff user's id.
    pub user_id: i64,
    /// Their username at the time.
    pub username: String,
    /// The address they acted from.
    pub ip: Option<IpAddr>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id, increasing.
    pub id: i64,
    /// When.
    pub at: OffsetDateTime,
    /// The staff user's id (they may since have been deleted).
    pub actor_user_id: Option<i64>,
    /// The staff user's username at the time.
    pub actor_username: String,
    /// Where they acted from.
    pub actor_ip: Option<String>,
    /// `sessions.sign_out`, `user.sign_out_all`, `user.deactivate` or `user.activate`.
    pub action: String,
    /// The user acted on, if any.
    pub target_user_id: Option<i64>,
    /// Their username at the time.
    pub target_username: Option<String>,
    /// Public ids of the sessions ended.
    pub session_ids: Vec<String>,
    /// Free text, for people.
    pub detail: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    pub(super) id: i64,
    pub(super) at: i64,
    pub(super) actor_user_id: Option<i64>,
    pub(super) actor_username: String,
    pub(super) actor_ip: Option<String>,
    pub(super) action: String,
    pub(super) target_user_id: Option<i64>,
    pub(super) target_username: Option<String>,
    pub(super) session_ids: String,
    pub(super) detail: String,
}
