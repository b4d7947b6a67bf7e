//! [`AccountRefusal`]: why the account service refused what a person asked — input to fix, wrong
//! credentials, too many attempts, a dead link — with the words a page shows, a short code for a
//! URL, an HTTP status and the form field it is about.
//!
//! This module needs no feature and no dependency beyond serde and thiserror: a browser (WebAssembly) build of an
//! application can depend on the crate with `default-features = false` and read, show and turn
//! back from codes the very refusals the server's [`AccountError`](crate::accounts::AccountError)
//! carries, so the two are one definition.
//!
//! ```
//! use console_sessions::refusal::AccountRefusal;
//!
//! let refusal = AccountRefusal::PasswordTooShort { min: 10 };
//! assert_eq!(refusal.to_string(), "The password must have at least 10 characters.");
//! assert_eq!(refusal.code(), "password_too_short.10");
//! assert_eq!(AccountRefusal::from_code("password_too_short.10"), Some(refusal));
//! assert_eq!((refusal.status_code(), refusal.field()), (400, Some("password")));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An account operation refused for a reason the person can act on.
///
/// Its `Display` text is fit to show as it is; it never names an account that may not exist (a
/// wrong username and a wrong password read the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum AccountRefusal {
    /// Signing in failed: unknown username, wrong password or inactive account — deliberately the
    /// same refusal for all three.
    #[error("The username or password is incorrect.")]
    InvalidCredentials,
    /// Too many failed attempts for this account or from this address.
    #[error("Too many failed attempts. Try again in {}.", wait_text(*retry_after_secs))]
    Throttled {
        /// Seconds until the next attempt is accepted, rounded up.
        retry_after_secs: u64,
    },
    /// Sign-up is closed by configuration.
    #[error("Sign-up is closed. Ask an administrator for an account.")]
    SignUpClosed,
    /// Changing a password: the current password given is wrong. Nothing was changed.
    #[error("The current password is incorrect.")]
    WrongCurrentPassword,
    /// The username is empty (or only spaces).
    #[error("Enter a username.")]
    UsernameRequired,
    /// The username is longer than allowed.
    #[error("A username can have at most {max} characters.")]
    UsernameTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The username contains control or invisible formatting characters.
    #[error("A username cannot contain control characters or invisible formatting characters.")]
    UsernameInvalidCharacters,
    /// Another account has this username, ignoring case.
    #[error("This username is already taken.")]
    UsernameTaken,
    /// The email address does not look like one.
    #[error("Enter a valid email address (or leave it empty).")]
    EmailInvalid,
    /// Another account has this email address, ignoring case.
    #[error("Another account uses this email address.")]
    EmailTaken,
    /// The account has no email address to send a link to.
    #[error("This account has no email address.")]
    EmailRequired,
    /// Signing in with the right password to an account whose email address is not verified yet,
    /// while verified addresses are required.
    #[error(
        "Confirm your email address first: open the link we sent to it. A new link is on its way."
    )]
    EmailNotVerified,
    /// A link's one-time token is malformed, unknown, used, expired, or for something else.
    #[error("This link is invalid, has expired or has been used already.")]
    InvalidToken,
    /// The password is empty.
    #[error("Enter a password.")]
    PasswordRequired,
    /// The new password is shorter than allowed.
    #[error("The password must have at least {min} characters.")]
    PasswordTooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// The password is longer than allowed (it was not hashed).
    #[error("The password can have at most {max} characters.")]
    PasswordTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The new password is the username.
    #[error("The password cannot be the same as the username.")]
    PasswordEqualsUsername,
    /// No code was typed where an authenticator app's code or a recovery code was asked for.
    #[error("Enter the code.")]
    CodeRequired,
    /// The code of an authenticator app or a recovery code is wrong, expired or used already.
    #[error("The code is incorrect, has expired or has been used already.")]
    InvalidCode,
    /// An authenticator app is set up already: remove it before setting up another.
    #[error("An authenticator app is already set up. Remove it first to set up another.")]
    TotpAlreadyEnabled,
    /// Confirming an authenticator app that was not being set up (or whose setup is too old).
    #[error("The setup of the authenticator app has expired. Start again.")]
    TotpSetupExpired,
    /// The second step of a sign-in came too late, or without a first.
    #[error("The sign-in took too long. Sign in again.")]
    SignInExpired,
    /// A passkey's answer did not check out: an unknown or removed passkey, a cancelled or stale
    /// request, or a browser that sent none (passkeys need JavaScript).
    #[error("The passkey could not be used. Try again, or sign in another way.")]
    PasskeyFailed,
    /// Passkeys need the site's public address (`PUBLIC_ORIGIN`, a name rather than an IP address).
    #[error("Passkeys are not available at this address of the site.")]
    PasskeysUnavailable,
    /// The account has as many passkeys as it may: remove one first.
    #[error("You have {max} passkeys, the most an account can have. Remove one first.")]
    TooManyPasskeys {
        /// The most passkeys an account may have.
        max: usize,
    },
    /// A passkey's name is too long.
    #[error("A passkey's name can be at most {max} characters.")]
    PasskeyNameTooLong {
        /// The longest name allowed, in characters.
        max: usize,
    },
}

impl AccountRefusal {
    /// [`AccountRefusal::Throttled`] for a wait, rounded up to whole seconds (at least one).
    pub fn throttled(retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::Throttled {
            retry_after_secs: seconds.max(1),
        }
    }

    /// A short code naming the refusal, for a URL (`?error=password_too_short.10`): it names a
    /// variant and at most one number, never words, so a crafted link cannot put text on a page.
    pub fn code(&self) -> String {
        match self {
            Self::Throttled { retry_after_secs } => format!("throttled.{retry_after_secs}"),
            Self::UsernameTooLong { max } => format!("username_too_long.{max}"),
            Self::PasswordTooShort { min } => format!("password_too_short.{min}"),
            Self::PasswordTooLong { max } => format!("password_too_long.{max}"),
            Self::InvalidCredentials => "invalid_credentials".into(),
            Self::SignUpClosed => "sign_up_closed".into(),
            Self::WrongCurrentPassword => "wrong_current_password".into(),
            Self::UsernameRequired => "username_required".into(),
            Self::UsernameInvalidCharacters => "username_invalid_characters".into(),
            Self::UsernameTaken => "username_taken".into(),
            Self::EmailInvalid => "email_invalid".into(),
            Self::EmailTaken => "email_taken".into(),
            Self::EmailRequired => "email_required".into(),
            Self::EmailNotVerified => "email_not_verified".into(),
            Self::InvalidToken => "invalid_token".into(),
            Self::PasswordRequired => "password_required".into(),
            Self::PasswordEqualsUsername => "password_equals_username".into(),
            Self::CodeRequired => "code_required".into(),
            Self::InvalidCode => "invalid_code".into(),
            Self::TotpAlreadyEnabled => "totp_already_enabled".into(),
            Self::TotpSetupExpired => "totp_setup_expired".into(),
            Self::SignInExpired => "sign_in_expired".into(),
            Self::PasskeyFailed => "passkey_failed".into(),
            Self::PasskeysUnavailable => "passkeys_unavailable".into(),
            Self::PasskeyNameTooLong { max } => format!("passkey_name_too_long.{max}"),
            Self::TooManyPasskeys { max } => format!("too_many_passkeys.{max}"),
        }
    }

    /// The refusal a [`code`](Self::code) names; `None` for anything else. Numbers are kept to
    /// what a server could have sent (a wait of at most a day), whatever the URL says.
    pub fn from_code(code: &str) -> Option<Self> {
        let (name, number) = match code.split_once('.') {
            Some((name, number)) => (name, Some(number.parse::<u64>().ok()?)),
            None => (code, None),
        };
        let small = |n: u64| usize::try_from(n.min(100_000)).ok();
        Some(match (name, number) {
            ("throttled", Some(n)) => Self::Throttled {
                retry_after_secs: n.min(86_400),
            },
            ("username_too_long", Some(n)) => Self::UsernameTooLong { max: small(n)? },
            ("password_too_short", Some(n)) => Self::PasswordTooShort { min: small(n)? },
            ("password_too_long", Some(n)) => Self::PasswordTooLong { max: small(n)? },
            ("passkey_name_too_long", Some(n)) => Self::PasskeyNameTooLong { max: small(n)? },
            ("too_many_passkeys", Some(n)) => Self::TooManyPasskeys { max: small(n)? },
            (_, Some(_)) => return None,
            ("invalid_credentials", None) => Self::InvalidCredentials,
            ("sign_up_closed", None) => Self::SignUpClosed,
            ("wrong_current_password", None) => Self::WrongCurrentPassword,
            ("username_required", None) => Self::UsernameRequired,
            ("username_invalid_characters", None) => Self::UsernameInvalidCharacters,
            ("username_taken", None) => Self::UsernameTaken,
            ("email_invalid", None) => Self::EmailInvalid,
            ("email_taken", None) => Self::EmailTaken,
            ("email_required", None) => Self::EmailRequired,
            ("email_not_verified", None) => Self::EmailNotVerified,
            ("invalid_token", None) => Self::InvalidToken,
            ("password_required", None) => Self::PasswordRequired,
            ("password_equals_username", None) => Self::PasswordEqualsUsername,
            ("code_required", None) => Self::CodeRequired,
            ("invalid_code", None) => Self::InvalidCode,
            ("totp_already_enabled", None) => Self::TotpAlreadyEnabled,
            ("totp_setup_expired", None) => Self::TotpSetupExpired,
            ("sign_in_expired", None) => Self::SignInExpired,
            ("passkey_failed", None) => Self::PasskeyFailed,
            ("passkeys_unavailable", None) => Self::PasskeysUnavailable,
            _ => return None,
        })
    }

    /// The HTTP status to answer with: 401 for wrong credentials or a wrong code, 403 when sign-up is closed or the
    /// email address is not verified yet, 429 when throttled, 400 for input to fix (a dead link
    /// included).
    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidCredentials | Self::InvalidCode | Self::PasskeyFailed => 401,
            Self::SignUpClosed | Self::EmailNotVerified => 403,
            Self::Throttled { .. } => 429,
            Self::WrongCurrentPassword
            | Self::UsernameRequired
            | Self::UsernameTooLong { .. }
            | Self::UsernameInvalidCharacters
            | Self::UsernameTaken
            | Self::EmailInvalid
            | Self::EmailTaken
            | Self::EmailRequired
            | Self::InvalidToken
            | Self::PasswordRequired
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordEqualsUsername
            | Self::CodeRequired
            | Self::TotpAlreadyEnabled
            | Self::TotpSetupExpired
            | Self::SignInExpired
            | Self::PasskeysUnavailable
            | Self::TooManyPasskeys { .. }
            | Self::PasskeyNameTooLong { .. } => 400,
        }
    }

    /// The form field the refusal is about (`username`, `email`, `current_password`, `password`,
    /// `code`),
    /// so a page can mark it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UsernameRequired
            | Self::UsernameTooLong { .. }
            | Self::UsernameInvalidCharacters
            | Self::UsernameTaken => Some("username"),
            Self::EmailInvalid | Self::EmailTaken | Self::EmailRequired => Some("email"),
            Self::WrongCurrentPassword => Some("current_password"),
            Self::PasswordRequired
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordEqualsUsername => Some("password"),
            Self::CodeRequired | Self::InvalidCode => Some("code"),
            Self::PasskeyNameTooLong { .. } => Some("name"),
            Self::TotpAlreadyEnabled
            | Self::TotpSetupExpired
            | Self::SignInExpired
            | Self::PasskeyFailed
            | Self::TooManyPasskeys { .. }
            | Self::PasskeysUnavailable => None,
            Self::InvalidCredentials
            | Self::Throttled { .. }
            | Self::SignUpClosed
            | Self::EmailNotVerified
            | Self::InvalidToken => None,
        }
    }

    /// Every refusal once (with sample numbers), for tests that must cover them all.
    #[doc(hidden)]
    pub fn samples() -> [Self; 26] {
        // Not compiled into anything: a new variant stops the build here until it is listed
        // below too.
        let _every_variant_is_listed = |refusal: Self| match refusal {
            Self::InvalidCredentials
            | Self::Throttled { .. }
            | Self::SignUpClosed
            | Self::WrongCurrentPassword
            | Self::UsernameRequired
            | Self::UsernameTooLong { .. }
            | Self::UsernameInvalidCharacters
            | Self::UsernameTaken
            | Self::EmailInvalid
            | Self::EmailTaken
            | Self::EmailRequired
            | Self::EmailNotVerified
            | Self::InvalidToken
            | Self::PasswordRequired
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordEqualsUsername
            | Self::CodeRequired
            | Self::InvalidCode
            | Self::TotpAlreadyEnabled
            | Self::TotpSetupExpired
            | Self::SignInExpired
            | Self::PasskeyFailed
            | Self::PasskeysUnavailable
            | Self::TooManyPasskeys { .. }
            | Self::PasskeyNameTooLong { .. } => (),
        };
        [
            Self::InvalidCredentials,
            Self::Throttled {
                retry_after_secs: 90,
            },
            Self::SignUpClosed,
            Self::WrongCurrentPassword,
            Self::UsernameRequired,
            Self::UsernameTooLong { max: 150 },
            Self::UsernameInvalidCharacters,
            Self::UsernameTaken,
            Self::EmailInvalid,
            Self::EmailTaken,
            Self::EmailRequired,
            Self::EmailNotVerified,
            Self::InvalidToken,
            Self::PasswordRequired,
            Self::PasswordTooShort { min: 10 },
            Self::PasswordTooLong { max: 1024 },
            Self::PasswordEqualsUsername,
            Self::CodeRequired,
            Self::InvalidCode,
            Self::TotpAlreadyEnabled,
            Self::TotpSetupExpired,
            Self::SignInExpired,
            Self::PasskeyFailed,
            Self::PasskeysUnavailable,
            Self::PasskeyNameTooLong { max: 64 },
            Self::TooManyPasskeys { max: 20 },
        ]
    }
}

/// "1 second", "40 seconds", "3 minutes": a wait in words.
fn wait_text(seconds: u64) -> String {
    let (count, unit) = match seconds.max(1) {
        s if s < 60 => (s, "second"),
        s => (s.div_ceil(60), "minute"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_the_same_refusal() {
        for refusal in AccountRefusal::samples() {
            assert_eq!(AccountRefusal::from_code(&refusal.code()), Some(refusal));
        }
    }

    #[test]
    fn crafted_codes_are_ignored_and_numbers_bounded() {
        for code in [
            "",
            "nope",
            "throttled",
            "throttled.x",
            "invalid_token.3",
            "<b>hi</b>",
        ] {
            assert_eq!(AccountRefusal::from_code(code), None, "{code}");
        }
        assert_eq!(
            AccountRefusal::from_code("throttled.99999999999").map(|r| r.to_string()),
            Some("Too many failed attempts. Try again in 1440 minutes.".into())
        );
    }

    #[test]
    fn throttling_says_how_long_to_wait_rounded_up() {
        let message = |ms| AccountRefusal::throttled(Duration::from_millis(ms)).to_string();
        assert_eq!(
            message(0),
            "Too many failed attempts. Try again in 1 second."
        );
        assert_eq!(
            message(10),
            "Too many failed attempts. Try again in 1 second."
        );
        assert_eq!(
            message(29_001),
            "Too many failed attempts. Try again in 30 seconds."
        );
        assert_eq!(
            message(60_000),
            "Too many failed attempts. Try again in 1 minute."
        );
        assert_eq!(
            message(61_000),
            "Too many failed attempts. Try again in 2 minutes."
        );
        assert_eq!(
            message(900_000),
            "Too many failed attempts. Try again in 15 minutes."
        );
    }
}
