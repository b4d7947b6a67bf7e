//! How a session proved who its user is: the method it signed in with, the assurance level that
//! gives (NIST SP 800-63B's AAL1 and AAL2), and when the user last proved themselves in it (signing
//! in, or confirming access before a sensitive action). Stored on the session row.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How a session was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A password alone.
    Password,
    /// A password, then a code from an authenticator app (TOTP).
    PasswordTotp,
    /// A password, then a passkey as the second factor.
    PasswordPasskey,
    /// A password, then a single-use recovery code in place of the second factor.
    PasswordRecoveryCode,
    /// A passkey alone (it proves possession and, with user verification, the person).
    Passkey,
    /// Carried over from another system's session (a Django import).
    Imported,
    /// Set by the service some other way ([`Session::set_user_id`](super::Session::set_user_id)),
    /// or a method this version does not know.
    Other,
}

impl AuthMethod {
    /// Every method, for pickers and tests.
    pub const ALL: [AuthMethod; 7] = [
        AuthMethod::Password,
        AuthMethod::PasswordTotp,
        AuthMethod::PasswordPasskey,
        AuthMethod::PasswordRecoveryCode,
        AuthMethod::Passkey,
        AuthMethod::Imported,
        AuthMethod::Other,
    ];

    /// The name stored and shown in the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PasswordTotp => "password_totp",
            AuthMethod::PasswordPasskey => "password_passkey",
            AuthMethod::PasswordRecoveryCode => "password_recovery_code",
            AuthMethod::Passkey => "passkey",
            AuthMethod::Imported => "imported",
            AuthMethod::Other => "other",
        }
    }

    /// The method a stored name stands for; a name this version does not know is
    /// [`AuthMethod::Other`].
    ///
    /// ```
    /// use console_sessions::sessions::AuthMethod;
    /// assert_eq!(AuthMethod::parse("password_totp"), AuthMethod::PasswordTotp);
    /// assert_eq!(AuthMethod::parse("carrier pigeon"), AuthMethod::Other);
    /// ```
    pub fn parse(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|method| method.as_str() == name)
            .unwrap_or(AuthMethod::Other)
    }

    /// The assurance level this method gives: two factors (or a passkey, which verifies its user)
    /// are [`Aal::Aal2`]; one is [`Aal::Aal1`].
    pub fn level(self) -> Aal {
        match self {
            AuthMethod::PasswordTotp
            | AuthMethod::PasswordPasskey
            | AuthMethod::PasswordRecoveryCode
            | AuthMethod::Passkey => Aal::Aal2,
            AuthMethod::Password | AuthMethod::Imported | AuthMethod::Other => Aal::Aal1,
        }
    }

    /// Words for people: "Password + authenticator app", "Passkey", …
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Password => "Password",
            AuthMethod::PasswordTotp => "Password + authenticator app",
            AuthMethod::PasswordPasskey => "Password + passkey",
            AuthMethod::PasswordRecoveryCode => "Password + recovery code",
            AuthMethod::Passkey => "Passkey",
            AuthMethod::Imported => "Imported",
            AuthMethod::Other => "Other",
        }
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticator assurance level (NIST SP 800-63B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aal {
    /// One factor.
    Aal1,
    /// Two factors, or a passkey.
    Aal2,
}

impl Aal {
    /// `aal1` or `aal2`, as the `X-Auth-AAL` header and the JSON API say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
        }
    }

    /// The number stored in the `aal` column.
    pub fn number(self) -> i16 {
        match self {
            Aal::Aal1 => 1,
            Aal::Aal2 => 2,
        }
    }

    /// The level a stored number stands for (anything above 1 is [`Aal::Aal2`], anything else
    /// [`Aal::Aal1`]).
    pub fn from_number(number: i16) -> Self {
        if number >= 2 {
            Aal::Aal2
        } else {
            Aal::Aal1
        }
    }

    /// `aal1` or `aal2`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "aal1" => Some(Aal::Aal1),
            "aal2" => Some(Aal::Aal2),
            _ => None,
        }
    }
}

/// How a signed-in session proved itself, and when last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assurance {
    /// How it signed in.
    pub method: AuthMethod,
    /// The highest level it has shown: its method's, or a second factor's given later to confirm
    /// access.
    pub level: Aal,
    /// When the user last proved themselves in it: the sign-in, or the latest confirmed access.
    pub authenticated_at: OffsetDateTime,
}

impl Assurance {
    /// What a sign-in by `method` at `at` gives.
    pub fn signed_in(method: AuthMethod, at: OffsetDateTime) -> Self {
        Self {
            method,
            level: method.level(),
            authenticated_at: at,
        }
    }

    /// Whether the user proved themselves within `window` before `now` (and not in the future).
    ///
    /// ```
    /// use console_sessions::sessions::{Assurance, AuthMethod};
    /// use std::time::Duration;
    /// let at = time::OffsetDateTime::UNIX_EPOCH;
    /// let assurance = Assurance::signed_in(AuthMethod::Password, at);
    /// assert!(assurance.within(Duration::from_secs(600), at + time::Duration::minutes(9)));
    /// assert!(!assurance.within(Duration::from_secs(600), at + time::Duration::minutes(11)));
    /// ```
    pub fn within(&self, window: std::time::Duration, now: OffsetDateTime) -> bool {
        let age = now - self.authenticated_at;
        !age.is_negative() && age.unsigned_abs() <= window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_survives_its_stored_name() {
        for method in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(method.as_str()), method);
            let json = serde_json::to_string(&method).expect("serialises");
            assert_eq!(json, format!("\"{}\"", method.as_str()));
        }
    }

    #[test]
    fn two_factors_or_a_passkey_are_aal2_and_the_rest_aal1() {
        let aal2: Vec<_> = AuthMethod::ALL
            .into_iter()
            .filter(|method| method.level() == Aal::Aal2)
            .collect();
        assert_eq!(
            aal2,
            [
                AuthMethod::PasswordTotp,
                AuthMethod::PasswordPasskey,
                AuthMethod::PasswordRecoveryCode,
                AuthMethod::Passkey
            ]
        );
        assert_eq!(Aal::from_number(Aal::Aal2.number()), Aal::Aal2);
        assert_eq!(Aal::from_number(0), Aal::Aal1);
        assert_eq!(Aal::parse("aal2"), Some(Aal::Aal2));
        assert_eq!(Aal::parse("AAL2"), None);
    }

    #[test]
    fn an_authentication_time_in_the_future_is_not_recent() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let assurance = Assurance::signed_in(AuthMethod::PasswordTotp, at);
        assert!(!assurance.within(
            std::time::Duration::from_secs(600),
            at - time::Duration::seconds(1)
        ));
        assert!(assurance.within(std::time::Duration::from_secs(600), at));
    }
}
