//! What happens to sessions, for whoever wants to know: a sign-in, a session ended and why. The
//! engine sends a [`SessionEvent`] once the change is stored, on a broadcast channel
//! ([`SessionEngine::subscribe`](super::SessionEngine::subscribe)): new sign-in alerts, session
//! history and limits hook here rather than into the pages that sign people in.
//!
//! Delivery is best effort, as a broadcast is: a subscriber that falls more than
//! [`EVENT_BUFFER`] events behind loses the oldest ones (and is told so by its receiver), and
//! events sent while nobody listens are dropped. What must never be missed belongs in the
//! database, in the same transaction as the change.

use super::assurance::AuthMethod;
use super::client::ClientInfo;
use super::record::PublicId;

/// How many events a subscriber may fall behind before it loses the oldest.
pub const EVENT_BUFFER: usize = 1024;

/// Something that happened to a session, sent after it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A session was signed in (stored with a user it did not have when the request began).
    SignedIn(SignedIn),
    /// A session ended before its client let it go on.
    Ended(Ended),
}

/// A sign-in, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user signed in.
    pub user_id: i64,
    /// The session, under its public id (never its token).
    pub public_id: PublicId,
    /// How: what [`Session::sign_in`](super::Session::sign_in) was told, or
    /// [`AuthMethod::Other`] for a user set some other way.
    pub method: AuthMethod,
    /// Who signed in: address, user agent, client hints.
    pub client: ClientInfo,
}

/// A session that ended, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The session, under its public id.
    pub public_id: PublicId,
    /// The user it was signed in as, if any.
    pub user_id: Option<i64>,
    /// Why it ended.
    pub reason: EndCause,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// It was signed out from itself (or emptied).
    SignedOut,
    /// It was ended from elsewhere: another session of its user, or staff.
    Revoked,
    /// Its user was deleted.
    UserDeleted,
    /// Its user's password was reset or set by staff: every session of theirs ends, since any of
    /// them may be the one that made the reset necessary.
    PasswordChanged,
    /// It expired and was swept.
    Expired,
    /// Its user signed in once more than the sessions allowed them
    /// ([`SessionEngine::enforce_session_limit`](super::SessionEngine::enforce_session_limit)),
    /// and it was the least recently active.
    SessionLimit,
}
