//! Throttling of failed sign-ins and of sign-ups, kept in the database (`login_attempts`) so it holds
//! across nodes.
//!
//! Failed sign-ins are counted in the ways OWASP recommends, so that nobody can lock an account
//! for its owner:
//!
//! - per client network and account ([`Kind::AccountIp`]): one client guessing one account is
//!   stopped first, and nobody else is;
//! - per account ([`Kind::Account`]), for every browser without the account's device cookie: guesses
//!   spread over many addresses are stopped too, at a higher count;
//! - per device cookie ([`Kind::Device`]) instead of the two above, for a browser that signed in to
//!   the account successfully before: the owner's known browser still gets in while strangers are
//!   locked out, and a stolen device cookie still cannot be used to guess;
//! - per client network ([`Kind::Ip`]), across accounts: a password spray.
//!
//! Accounts are counted by a keyed hash of the folded username (HMAC-SHA256 under a key the server
//! keeps in the database, see `keys.rs`), whether or not such a user exists, so the table neither
//! holds what people typed (often a password, in the wrong field) nor tells which usernames are
//! taken. A client network is an IPv4 address, or the /64 of an IPv6 address, since one IPv6 client
//! owns a whole /64.
//!
//! The first [`ThrottleLimits::max_failures`] failures cost nothing. From then on every failure
//! locks further attempts for a delay that starts at [`ThrottleLimits::base_delay`] and doubles with
//! each further failure, up to [`ThrottleLimits::max_delay`]. Attempts made while locked are refused
//! without being counted, so a lock always ends by itself, never later than `max_delay` after the
//! last counted failure. The count is forgotten [`ThrottleLimits::window`] after the last failure or
//! the end of its lock, whichever is later; a successful sign-in forgets the counts it was checked
//! against at once.
//!
//! Sign-ups are counted per client network and in all ([`SignUpLimits`]) in fixed windows: every
//! attempt that gets as far as checking the username counts, taken or not. Password reset requests
//! are counted the same way per name typed and per client network ([`ResetLimits`]).

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// Limits for one kind of throttle (per account, or per client address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failures allowed before delays begin; `0` turns this throttle off.
    pub max_failures: u32,
    /// Failures are forgotten this long after the last one (or after its lock ended).
    pub window: Duration,
    /// The delay after failure number `max_failures`; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest delay. No lock lasts longer.
    pub max_delay: Duration,
}

impl ThrottleLimits {
    /// Per account and client network: 10 failures per 15 minutes, then delays from 30 seconds
    /// doubling up to 15 minutes.
    pub fn per_account_and_ip() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
        }
    }

    /// Per account, shared by every browser without the account's device cookie: 20 failures per 15
    /// minutes (more than one client network may fail alone, so locking everyone out takes guesses
    /// from several), then delays as [`ThrottleLimits::per_account_and_ip`].
    pub fn per_account() -> Self {
        Self {
            max_failures: 20,
            ..Self::per_account_and_ip()
        }
    }

    /// Per user, for codes of a second factor: 5 failures per 15 minutes, then delays as
    /// [`ThrottleLimits::per_account_and_ip`]: about 100 guesses a day at most. A six-digit code
    /// has a million values, three of which are good at any moment (one step of skew either way).
    pub fn per_second_factor() -> Self {
        Self {
            max_failures: 5,
            ..Self::per_account_and_ip()
        }
    }

    /// Per device cookie: as [`ThrottleLimits::per_account_and_ip`].
    pub fn per_device() -> Self {
        Self::per_account_and_ip()
    }

    /// Per client address: 50 failures per 15 minutes (an office or a carrier NAT shares one
    /// address), then delays from 30 seconds doubling up to 15 minutes.
    pub fn per_ip() -> Self {
        Self {
            max_failures: 50,
            ..Self::per_account_and_ip()
        }
    }

    /// No throttling (for example per address behind a proxy that is not in the trusted proxies, where
    /// every client seems to come from the proxy).
    pub fn disabled() -> Self {
        Self {
            max_failures: 0,
            ..Self::per_account_and_ip()
        }
    }

    /// Whether this throttle counts anything.
    pub fn is_enabled(&self) -> bool {
        self.max_failures > 0
    }

    /// How long attempts are refused after the `failures`-th failure in a row (`None`: not at all).
    pub fn delay_after(&self, failures: u64) -> Option<Duration> {
        let max_failures = u64::from(self.max_failures);
        if !self.is_enabled() || failures < max_failures {
            return None;
        }
        // 2^31 times any delay is beyond every sensible cap; saturate rather than overflow.
        let doublings = u32::try_from(failures - max_failures)
            .unwrap_or(u32::MAX)
            .min(31);
        Some(
            self.base_delay
                .saturating_mul(1u32 << doublings)
                .min(self.max_delay),
        )
    }
}

/// Limits of self-service sign-ups, counted in fixed windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUpLimits {
    /// Sign-ups one client network may try per window; `0`: no limit.
    pub per_ip: u32,
    /// Sign-ups everyone together may try per window (a flood from many addresses); `0`: no limit.
    pub total: u32,
    /// The length of a window.
    pub window: Duration,
}

impl Default for SignUpLimits {
    /// 10 per client network and 500 in all per hour.
    fn default() -> Self {
        Self {
            per_ip: 10,
            total: 500,
            window: Duration::from_secs(3600),
        }
    }
}

/// Limits of password reset requests, counted in fixed windows like sign-ups. Every request counts,
/// whether or not an account matches, so the count tells nothing about which accounts exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetLimits {
    /// Requests per username or email address typed (folded, as a keyed hash) per window: how many
    /// mails one account can be sent; `0`: no limit.
    pub per_login: u32,
    /// Requests one client network may make per window, for any name; `0`: no limit.
    pub per_ip: u32,
    /// The length of a window.
    pub window: Duration,
}

impl Default for ResetLimits {
    /// 5 per username or address and 20 per client network per hour.
    fn default() -> Self {
        Self {
            per_login: 5,
            per_ip: 20,
            window: Duration::from_secs(3600),
        }
    }
}

/// What failed sign-ins are counted by in `login_attempts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The keyed hash of the folded username: failures of browsers without a device cookie.
    Account,
    /// The keyed hash of the folded username, `@`, the client network.
    AccountIp,
    /// A known device's id.
    Device,
    /// The client network.
    Ip,
    /// A user id: failed codes of a second factor (see `factors.rs`).
    SecondFactor,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::AccountIp => "account_ip",
            Kind::Device => "device",
            Kind::Ip => "ip",
            Kind::SecondFactor => "second_factor",
        }
    }

    /// The kind a row of `login_attempts` names, if it counts failed sign-ins.
    pub(crate) fn parse(kind: &str) -> Option<Self> {
        [
            Kind::Account,
            Kind::AccountIp,
            Kind::Device,
            Kind::Ip,
            Kind::SecondFactor,
        ]
        .into_iter()
        .find(|known| known.as_str() == kind)
    }
}

/// The kind of the sign-ups of one client network (its subject: [`ip_subject`]).
pub(crate) const SIGN_UP_IP: &str = "signup_ip";
/// The kind of every sign-up together (its subject: `*`).
pub(crate) const SIGN_UP_ALL: &str = "signup";
/// The kind of the password reset requests for one username or email address (its subject: the
/// keyed hash of the folded text, as for [`Kind::Account`]).
pub(crate) const RESET_LOGIN: &str = "reset";
/// The kind of the password reset requests of one client network (its subject: [`ip_subject`]).
pub(crate) const RESET_IP: &str = "reset_ip";

/// The subject of [`Kind::AccountIp`]: the account's subject and the client network. The account
/// comes first, so every count of one account shares the prefix `account@`.
pub(crate) fn account_ip_subject(account: &str, ip: &str) -> String {
    format!("{account}@{ip}")
}

/// The key a client address is counted by: an IPv4 address as such (also when mapped into IPv6), an
/// IPv6 address by its /64.
pub fn ip_subject(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Counts one failure (resetting a forgotten count); returns the new count.
pub(crate) const COUNT_FAILURE: &str = "\
    INSERT INTO login_attempts (kind, subject, failures, last_failure_at, locked_until, forget_at) \
    VALUES ($1, $2, 1, $3, 0, $4) \
    ON CONFLICT (kind, subject) DO UPDATE SET \
        failures = CASE WHEN login_attempts.forget_at <= $3 THEN 1 \
                        ELSE login_attempts.failures + 1 END, \
        last_failure_at = $3 \
    RETURNING failures";

/// [`COUNT_FAILURE`] only while `$1`/`$2` is not locked at `$3`: an attempt counted before it is
/// made. No row comes back when it is locked. Run in one transaction with [`SET_LOCK`], so that of
/// attempts arriving together, those past the limit find the lock the earlier ones set.
pub(crate) const RESERVE_ATTEMPT: &str = "\
    INSERT INTO login_attempts (kind, subject, failures, last_failure_at, locked_until, forget_at) \
    VALUES ($1, $2, 1, $3, 0, $4) \
    ON CONFLICT (kind, subject) DO UPDATE SET \
        failures = CASE WHEN login_attempts.forget_at <= $3 THEN 1 \
                        ELSE login_attempts.failures + 1 END, \
        last_failure_at = $3 \
    WHERE login_attempts.locked_until <= $3 \
    RETURNING failures";

/// Sets the lock and the forgetting time that follow from the new count.
pub(crate) const SET_LOCK: &str = "\
    UPDATE login_attempts SET locked_until = $1, forget_at = $2 WHERE kind = $3 AND subject = $4";

/// Counts one sign-up (or password reset request) in the current fixed window of `$1`/`$2` (starting a new window, ending at
/// `$4`, when the last one is over at `$3`); returns the count and the end of the window.
pub(crate) const COUNT_SIGN_UP: &str = "\
    INSERT INTO login_attempts (kind, subject, failures, last_failure_at, locked_until, forget_at) \
    VALUES ($1, $2, 1, $3, 0, $4) \
    ON CONFLICT (kind, subject) DO UPDATE SET \
        failures = CASE WHEN login_attempts.forget_at <= $3 THEN 1 \
                        ELSE login_attempts.failures + 1 END, \
        forget_at = CASE WHEN login_attempts.forget_at <= $3 THEN $4 \
                         ELSE login_attempts.forget_at END, \
        last_failure_at = $3 \
    RETURNING failures, forget_at";

/// Forgets every count of one account from browsers without a device cookie: `$1` its subject, `$2`
/// the prefix of its per-network subjects (`subject@`, no LIKE wildcard in it).
pub(crate) const CLEAR_ACCOUNT: &str = "\
    DELETE FROM login_attempts WHERE (kind = 'account' AND subject = $1) \
        OR (kind = 'account_ip' AND subject LIKE $2 || '%')";

/// Forgets one subject's count.
pub(crate) const CLEAR: &str = "DELETE FROM login_attempts WHERE kind = $1 AND subject = $2";

/// Deletes every forgotten count.
pub(crate) const SWEEP: &str = "DELETE FROM login_attempts WHERE forget_at <= $1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_at_the_limit_double_and_are_capped() {
        let limits = ThrottleLimits::per_account_and_ip();
        assert_eq!(limits.delay_after(9), None);
        assert_eq!(limits.delay_after(10), Some(Duration::from_secs(30)));
        assert_eq!(limits.delay_after(11), Some(Duration::from_secs(60)));
        assert_eq!(limits.delay_after(14), Some(Duration::from_secs(480)));
        assert_eq!(limits.delay_after(15), Some(Duration::from_secs(900)));
        assert_eq!(limits.delay_after(u64::MAX), Some(Duration::from_secs(900)));
        assert_eq!(ThrottleLimits::disabled().delay_after(1000), None);
    }

    #[test]
    fn addresses_are_counted_by_ipv4_address_or_ipv6_slash_64() {
        let subject = |ip: &str| ip_subject(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(subject("203.0.113.5"), "203.0.113.5");
        assert_eq!(subject("::ffff:203.0.113.5"), "203.0.113.5");
        assert_eq!(subject("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            subject("2001:db8:1:2:ffff::9"),
            subject("2001:db8:1:2:aaaa::1")
        );
        assert_ne!(subject("2001:db8:1:3::1"), subject("2001:db8:1:2::1"));
    }
}
