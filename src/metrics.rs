//! What the library counts, through the [`metrics`] facade.
//!
//! The counters are bumped where the events happen (the engine, the cache, sign-in). Without a
//! recorder installed — library users who do not want metrics, the library's own tests — every call
//! is a no-op. An application that wants them installs a recorder (the console-sessions app installs
//! a Prometheus one) and may call [`describe`] for the help texts, and calls [`publish`] before each
//! scrape for the counters kept outside the recorder.
//!
//! A leaf: it takes plain values (a reason, a count, an outcome) and knows none of the library's
//! other types, so every module can count without importing the others through it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counter: sessions stored for the first time.
pub const SESSIONS_CREATED: &str = "console_sessions_sessions_created_total";
/// Counter, label `reason`: sessions ended before their time — `signed_out` (the session itself was
/// flushed or emptied), `revoked` (ended from another session, by its user or by staff),
/// `user_deleted`, `password_changed` (a password reset, or set by staff).
pub const SESSIONS_REVOKED: &str = "console_sessions_sessions_revoked_total";
/// Counter: expired sessions deleted by a sweep.
pub const SESSIONS_EXPIRED: &str = "console_sessions_sessions_expired_total";
/// Counter: `cached_db` loads answered from memory.
pub const CACHE_HITS: &str = "console_sessions_session_cache_hits_total";
/// Counter: `cached_db` loads that went to the database.
pub const CACHE_MISSES: &str = "console_sessions_session_cache_misses_total";
/// Counter, label `result`: sign-in attempts — `success`, `failure` (wrong username or password,
/// inactive account) or `throttled` (refused without checking, after too many failures). Malformed
/// input and database failures are not attempts and are not counted.
pub const SIGN_INS: &str = "console_sessions_sign_ins_total";
/// Counter: messages the mail outbox delivered (accepted by the SMTP server, or written to a file).
pub const MAIL_SENT: &str = "console_sessions_mail_sent_total";
/// Counter: failed delivery attempts of the mail outbox that will be tried again.
pub const MAIL_RETRIED: &str = "console_sessions_mail_retried_total";
/// Counter: messages the mail outbox gave up on (out of attempts, or too old), now `failed`.
pub const MAIL_FAILED: &str = "console_sessions_mail_failed_total";

/// Registers the help text of every metric above with the installed recorder.
pub fn describe() {
    use ::metrics::{describe_counter, Unit};
    describe_counter!(
        SESSIONS_CREATED,
        Unit::Count,
        "Sessions stored for the first time."
    );
    describe_counter!(
        SESSIONS_REVOKED,
        Unit::Count,
        "Sessions ended before their expiry, by reason (signed_out, revoked, not_me, staff, user_deleted, password_changed, deactivated, session_limit)."
    );
    describe_counter!(
        SESSIONS_EXPIRED,
        Unit::Count,
        "Expired sessions deleted by a sweep."
    );
    describe_counter!(
        CACHE_HITS,
        Unit::Count,
        "Session loads answered by the cached_db cache."
    );
    describe_counter!(
        CACHE_MISSES,
        Unit::Count,
        "Session loads the cached_db cache passed to the database."
    );
    describe_counter!(
        SIGN_INS,
        Unit::Count,
        "Sign-in attempts by result (success, failure, throttled)."
    );
    describe_counter!(
        MAIL_SENT,
        Unit::Count,
        "Messages the mail outbox delivered."
    );
    describe_counter!(
        MAIL_RETRIED,
        Unit::Count,
        "Failed mail delivery attempts that will be tried again."
    );
    describe_counter!(
        MAIL_FAILED,
        Unit::Count,
        "Messages the mail outbox gave up on (failed)."
    );
}

pub(crate) fn session_created() {
    ::metrics::counter!(SESSIONS_CREATED).increment(1);
}

/// `reason` is the name of an `EndCause` (`sessions::EndCause::as_str`).
pub(crate) fn sessions_ended(reason: &'static str, count: usize) {
    if count > 0 {
        ::metrics::counter!(SESSIONS_REVOKED, "reason" => reason).increment(count as u64);
    }
}

pub(crate) fn sessions_expired(count: usize) {
    if count > 0 {
        ::metrics::counter!(SESSIONS_EXPIRED).increment(count as u64);
    }
}

/// Cache hits and misses of every `cached_db` store in this process. A hit comes with nearly
/// every request, so it is one relaxed add here rather than a lookup in the recorder's registry;
/// [`publish`] hands the totals to the recorder when it is read.
static CACHE_HIT_COUNT: AtomicU64 = AtomicU64::new(0);
static CACHE_MISS_COUNT: AtomicU64 = AtomicU64::new(0);

pub(crate) fn cache_hit() {
    CACHE_HIT_COUNT.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn cache_miss() {
    CACHE_MISS_COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Brings the counters the library keeps itself ([`CACHE_HITS`], [`CACHE_MISSES`]) up to date in
/// the installed recorder: call it just before rendering a scrape.
pub fn publish() {
    ::metrics::counter!(CACHE_HITS).absolute(CACHE_HIT_COUNT.load(Ordering::Relaxed));
    ::metrics::counter!(CACHE_MISSES).absolute(CACHE_MISS_COUNT.load(Ordering::Relaxed));
}

/// How a sign-in attempt ended, the `result` label of [`SIGN_INS`].
#[cfg(feature = "accounts")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInOutcome {
    Success,
    /// Wrong username or password, or an inactive account.
    Failure,
    /// Refused without checking, after too many failures.
    Throttled,
}

#[cfg(feature = "accounts")]
impl SignInOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Throttled => "throttled",
        }
    }
}

#[cfg(feature = "accounts")]
pub(crate) fn sign_in(outcome: SignInOutcome) {
    ::metrics::counter!(SIGN_INS, "result" => outcome.label()).increment(1);
}

#[cfg(feature = "mail")]
pub(crate) fn mail_sent() {
    ::metrics::counter!(MAIL_SENT).increment(1);
}

#[cfg(feature = "mail")]
pub(crate) fn mail_retried() {
    ::metrics::counter!(MAIL_RETRIED).increment(1);
}

#[cfg(feature = "mail")]
pub(crate) fn mail_failed() {
    ::metrics::counter!(MAIL_FAILED).increment(1);
}
