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
