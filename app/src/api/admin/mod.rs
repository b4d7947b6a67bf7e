//! Staff only: the sessions changelist, session details, audited sign-outs, users, mail and the
//! audit log.
//! Every function checks that the caller is active staff first (403 otherwise), and every one that
//! changes state checks the form token.

mod audit;
mod history;
mod mail;
mod matching;
mod row;
mod search;
mod sessions;
mod users;

// Whole modules, so that every public item keeps the path it had when this was one file: the types,
// the server functions, and the struct `#[server]` makes for each (`ServerAction::<AdminSetActive>`).
pub use audit::*;
pub use history::*;
pub use mail::*;
pub use matching::*;
pub use row::*;
pub use search::*;
pub use sessions::*;
pub use users::*;
