//! The session row every staff view shows (changelist, confirmation, details), and how it is made
//! from the library's row, in one place so the three agree.

use serde::{Deserialize, Serialize};

/// A session row of the changelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminSession {
    /// Public id.
    pub public_id: String,
    /// Owner id.
    pub user_id: Option<i64>,
    /// Owner username.
    pub username: Option<String>,
    /// Last address.
    pub ip: Option<String>,
    /// "London, GB".
    pub location: String,
    /// ISO country code.
    pub country_code: Option<String>,
    /// "Chrome 131 on macOS".
    pub device: String,
    /// Device category key.
    pub category: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_activity_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Not yet expired.
    pub active: bool,
    /// How it signed in (`password`, `password_totp`, `passkey`…), when recorded.
    #[serde(default)]
    pub auth_method: Option<String>,
    /// The same in words: "Password + authenticator app".
    #[serde(default)]
    pub auth_label: Option<String>,
    /// `aal1` or `aal2`, when recorded.
    #[serde(default)]
    pub aal: Option<String>,
    /// When its user last proved themselves in it, Unix ms.
    #[serde(default)]
    pub authenticated_at: Option<i64>,
    /// The name its owner gave it ("Work laptop").
    #[serde(default)]
    pub label: Option<String>,
}

#[cfg(feature = "ssr")]
pub(super) use crate::api::shown::stored_place as place_label;

#[cfg(feature = "ssr")]
pub(super) fn admin_session(
    row: &console_sessions::admin::AdminRow,
    shown: &crate::api::shown::Shown<'_>,
) -> AdminSession {
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::to_millis;
    let record = &row.record;
    let device = DeviceSummary::from_request(
        record.user_agent.as_deref(),
        &record.client_hints.clone().unwrap_or_default(),
    );
    let expires_at = to_millis(record.expires_at);
    AdminSession {
        public_id: record.public_id.to_string(),
        user_id: record.user_id,
        username: row.username.clone(),
        ip: shown.ip(record.ip, record.last_activity_at),
        location: place_label(&record.place),
        country_code: record.place.country_code.clone(),
        device: device.summary,
        category: row.category.as_str().to_owned(),
        created_at: to_millis(record.created_at),
        last_activity_at: to_millis(record.last_activity_at),
        expires_at,
        active: expires_at > shown.now_ms(),
        auth_method: record.assurance.map(|a| a.method.as_str().to_owned()),
        auth_label: record.assurance.map(|a| a.method.label().to_owned()),
        aal: record.assurance.map(|a| a.level.as_str().to_owned()),
        authenticated_at: record.assurance.map(|a| to_millis(a.authenticated_at)),
        label: record.label.clone(),
    }
}
