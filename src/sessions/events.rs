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
    /// Who ended it, when somebody did from elsewhere.
    pub by: Option<EndedBy>,
}

/// Why a session ended: what its history shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// It was signed out from itself (or emptied).
    SignedOut,
    /// Its user signed it out from another of their sessions ([`EndedBy::Session`] says which).
    Revoked,
    /// Its user answered a new sign-in alert with "this wasn't me".
    NotMe,
    /// Staff ended it ([`EndedBy::Staff`] says who).
    Staff,
    /// Its user was deleted.
    UserDeleted,
    /// Its user's password was changed, reset or set by staff: any session of theirs may be the
    /// one that made the change necessary.
    PasswordChanged,
    /// Its user was deactivated.
    Deactivated,
    /// It went unused past its idle timeout, and was swept.
    IdleTimeout,
    /// It reached its absolute lifetime, however active, and was swept.
    AbsoluteLifetime,
    /// Its user signed in once more than the sessions allowed them
    /// ([`SessionEngine::enforce_session_limit`](super::SessionEngine::enforce_session_limit)),
    /// and it was the least recently active.
    SessionLimit,
}

impl EndCause {
    /// Every cause, in the order pages list them.
    pub const ALL: [Self; 10] = [
        Self::SignedOut,
        Self::Revoked,
        Self::NotMe,
        Self::Staff,
        Self::UserDeleted,
        Self::PasswordChanged,
        Self::Deactivated,
        Self::IdleTimeout,
        Self::AbsoluteLifetime,
        Self::SessionLimit,
    ];

    /// The name stored and sent in JSON (`signed_out`, `idle_timeout`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::Revoked => "revoked",
            Self::NotMe => "not_me",
            Self::Staff => "staff",
            Self::UserDeleted => "user_deleted",
            Self::PasswordChanged => "password_changed",
            Self::Deactivated => "deactivated",
            Self::IdleTimeout => "idle_timeout",
            Self::AbsoluteLifetime => "absolute_lifetime",
            Self::SessionLimit => "session_limit",
        }
    }

    /// The cause [`EndCause::as_str`] names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|cause| cause.as_str() == name)
    }

    /// What happened, in words a person reads on their devices page ("Signed out by an
    /// administrator").
    pub fn label(self) -> &'static str {
        match self {
            Self::SignedOut => "Signed out",
            Self::Revoked => "Signed out from another device",
            Self::NotMe => "Signed out: reported as not you",
            Self::Staff => "Signed out by an administrator",
            Self::UserDeleted => "Account deleted",
            Self::PasswordChanged => "Signed out when the password changed",
            Self::Deactivated => "Signed out when the account was deactivated",
            Self::IdleTimeout => "Expired after a time unused",
            Self::AbsoluteLifetime => "Expired at its maximum lifetime",
            Self::SessionLimit => "Signed out: too many devices signed in",
        }
    }

    /// Whether the session ran out rather than being ended by somebody.
    pub fn is_expiry(self) -> bool {
        matches!(self, Self::IdleTimeout | Self::AbsoluteLifetime)
    }
}

/// Who ended a session from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedBy {
    /// Another session of the same user, by its public id.
    Session(PublicId),
    /// A staff member, by user id.
    Staff(i64),
}

/// Why and by whom sessions are being ended: what the engine's operations that end sessions are
/// told, and what their history records. An [`EndCause`] alone converts into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Why.
    pub cause: EndCause,
    /// Who, when somebody did from elsewhere.
    pub by: Option<EndedBy>,
}

impl Ending {
    /// Signed out by their user from another of their sessions, `from`.
    pub fn from_session(from: &PublicId) -> Self {
        Self {
            cause: EndCause::Revoked,
            by: Some(EndedBy::Session(from.clone())),
        }
    }

    /// Ended by the staff member with this user id.
    pub fn by_staff(staff_user_id: i64) -> Self {
        Self {
            cause: EndCause::Staff,
            by: Some(EndedBy::Staff(staff_user_id)),
        }
    }
}

impl From<EndCause> for Ending {
    fn from(cause: EndCause) -> Self {
        Self { cause, by: None }
    }
}
