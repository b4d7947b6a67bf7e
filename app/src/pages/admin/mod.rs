//! The staff admin: the sessions changelist (filters, search, sort, pages, selection), the sign-out
//! confirmation, session details, users, mail, and the audit log. Every page works without JavaScript:
//! filters and sorting are links, search and selection are GET forms, changes are POST forms.

mod audit;
mod confirm;
mod detail;
mod frame;
mod history;
mod mail;
mod matching;
mod sessions;
mod users;

pub use audit::AdminAuditPage;
pub use confirm::AdminConfirmPage;
pub use detail::AdminSessionPage;
pub use history::AdminHistoryPage;
pub use mail::AdminMailPage;
pub use matching::{AdminJobPage, AdminSignOutMatchingPage};
pub use sessions::AdminSessionsPage;
pub use users::AdminUsersPage;

/// `path` with the parameters that have a value as its query (under the base path): the links
/// of the changelist and the history, which carry their whole query so pages work without
/// JavaScript.
fn href_with(path: &str, pairs: &[(&str, &Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencoding::encode(v)))
        })
        .collect();
    if query.is_empty() {
        crate::components::base::url(path)
    } else {
        crate::components::base::url(&format!("{path}?{}", query.join("&")))
    }
}
