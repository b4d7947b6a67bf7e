//! One-time tokens sent by mail: a password reset, an email address to verify or to change to, the
//! answers to a new sign-in alert.
//!
//! A token is made like a session cookie ([`SessionToken::generate`]: 256 bits from the operating
//! system, 43 characters of base64url) and the database keeps only its SHA-256, so a leaked table
//! opens nothing. Each token is good for one [`TokenPurpose`] (a verification token cannot reset
//! a password), once, until it expires ([`TokenLifetimes`]). It is accepted by one statement that
//! marks it used only where it is still unused and unexpired, so of two uses, concurrent or not,
//! exactly one succeeds. Tokens are never logged: [`OneTimeToken`]'s `Debug` shows `***`.
//!
//! Expired and used tokens are deleted by [`Accounts::clear_stale_attempts`].

use super::*;

/// A token a mail carries, in a link: made and shown like a [`SessionToken`] (one definition of
/// how secrets are made), kept by the database only as its SHA-256.
pub type OneTimeToken = SessionToken;

/// How long a password reset link works by default: 30 minutes, since it opens the account.
pub const PASSWORD_RESET_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long email verification and email change links work by default: 24 hours, since mail can
/// be slow to be read, and such a link proves an address rather than opening the account.
pub const EMAIL_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long the answers of a new sign-in alert work by default: 7 days, so that someone back from
/// a trip can still say "this wasn't me".
pub const ALERT_ANSWER_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long each kind of token works, from when it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// Password reset tokens (default [`PASSWORD_RESET_LIFETIME`]).
    pub password_reset: Duration,
    /// Email verification and email change tokens (default [`EMAIL_TOKEN_LIFETIME`]).
    pub email: Duration,
    /// The answers of a new sign-in alert (default [`ALERT_ANSWER_LIFETIME`]).
    pub alert_answer: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            password_reset: PASSWORD_RESET_LIFETIME,
            email: EMAIL_TOKEN_LIFETIME,
            alert_answer: ALERT_ANSWER_LIFETIME,
        }
    }
}

/// What a token is good for: it is accepted for that and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Setting a new password without the old one ([`Accounts::reset_password`]).
    PasswordReset,
    /// Showing that the user's email address is theirs ([`Accounts::verify_email`]).
    EmailVerification,
    /// Showing that a new email address is the user's, which then replaces the old one
    /// ([`Accounts::confirm_email_change`]).
    EmailChange,
    /// "It was me", the answer to a new sign-in alert.
    AlertConfirm,
    /// "This wasn't me", the answer to a new sign-in alert.
    AlertDeny,
}

impl TokenPurpose {
    /// The name the database keeps: `password_reset`, `email_verification`, `email_change`,
    /// `alert_confirm` or `alert_deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
            Self::AlertConfirm => "alert_confirm",
            Self::AlertDeny => "alert_deny",
        }
    }
}

/// A token made for a mail, and until when it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token: put [`OneTimeToken::expose`] in the link. Never log it.
    pub token: OneTimeToken,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// What an accepted token was about.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Claim {
    pub(super) user_id: i64,
    pub(super) email: Option<String>,
    pub(super) session_public_id: Option<String>,
}

/// A token to store: its hash, what for, and what about.
pub(super) struct NewToken {
    pub(super) hash: TokenHash,
    pub(super) purpose: TokenPurpose,
    pub(super) user_id: i64,
    pub(super) email: Option<String>,
    pub(super) session_public_id: Option<String>,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
}

/// Binds: the fields of [`NewToken`] in order.
pub(super) const INSERT_TOKEN: &str = "\
    INSERT INTO account_tokens \
        (token_hash, purpose, user_id, email, session_public_id, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Marks every unused token of a user for one purpose used (`$1` now, `$2` the user, `$3` the
/// purpose): a newer one replaces them.
pub(super) const VOID_TOKENS: &str = "\
    UPDATE account_tokens SET used_at = $1 \
    WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL";

/// Accepts a token (`$1` now, `$2` its hash, `$3` the purpose): marks it used, only if it is
/// unused and unexpired, and returns what it was about. One statement, so that of two uses only one
/// finds it unused: PostgreSQL makes the second wait for the first's row lock and checks again,
/// SQLite runs writing statements one at a time.
pub(super) const CONSUME_TOKEN: &str = "\
    UPDATE account_tokens SET used_at = $1 \
    WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
    RETURNING user_id, email, session_public_id";

/// What a token is about, if it would be accepted now (`$1` its hash, `$2` the purpose, `$3` now),
/// without using it.
const PEEK_TOKEN: &str = "\
    SELECT user_id, email, session_public_id FROM account_tokens \
    WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3";

/// Runs [`INSERT_TOKEN`] for a [`NewToken`] on an executor (a pool or a transaction) of either
/// backend: a macro, since the two backends' executors have different types.
macro_rules! insert_token {
    ($executor:expr, $token:expr) => {{
        let token: &$crate::accounts::tokens::NewToken = $token;
        sqlx::query($crate::accounts::tokens::INSERT_TOKEN)
            .bind(token.hash.as_bytes().as_slice())
            .bind(token.purpose.as_str())
            .bind(token.user_id)
            .bind(token.email.as_deref())
            .bind(token.session_public_id.as_deref())
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute($executor)
            .await
    }};
}
pub(super) use insert_token;

/// Runs [`CONSUME_TOKEN`] on an executor of either backend, answering the [`Claim`] if the token
/// was accepted.
macro_rules! consume_token {
    ($executor:expr, $hash:expr, $purpose:expr, $now:expr) => {{
        let hash: &$crate::sessions::TokenHash = $hash;
        let purpose: $crate::accounts::tokens::TokenPurpose = $purpose;
        sqlx::query_as::<_, $crate::accounts::tokens::Claim>(
            $crate::accounts::tokens::CONSUME_TOKEN,
        )
        .bind($now)
        .bind(hash.as_bytes().as_slice())
        .bind(purpose.as_str())
        .fetch_optional($executor)
        .await
    }};
}
pub(super) use consume_token;

impl Accounts {
    /// How long a token for this purpose works.
    pub(super) fn token_lifetime(&self, purpose: TokenPurpose) -> Duration {
        let lifetimes = &self.inner.config.token_lifetimes;
        match purpose {
            TokenPurpose::PasswordReset => lifetimes.password_reset,
            TokenPurpose::EmailVerification | TokenPurpose::EmailChange => lifetimes.email,
            TokenPurpose::AlertConfirm | TokenPurpose::AlertDeny => lifetimes.alert_answer,
        }
    }

    /// A fresh token for this purpose, made at `created_at`: what the mail gets, and what the
    /// database gets.
    pub(super) fn new_token(
        &self,
        purpose: TokenPurpose,
        user_id: i64,
        email: Option<&str>,
        session_public_id: Option<&PublicId>,
        created_at: OffsetDateTime,
    ) -> (IssuedToken, NewToken) {
        let token = OneTimeToken::generate();
        let created = to_millis(created_at);
        let expires = created.saturating_add(millis(self.token_lifetime(purpose)));
        let stored = NewToken {
            hash: token.hash(),
            purpose,
            user_id,
            email: email.map(str::to_owned),
            session_public_id: session_public_id.map(|id| id.as_str().to_owned()),
            created_at: created,
            expires_at: expires,
        };
        let issued = IssuedToken {
            token,
            expires_at: from_millis(expires),
        };
        (issued, stored)
    }

    /// Whether `token` would be accepted for `purpose` now (well-formed, issued for that, unused,
    /// unexpired), without using it: for a page that offers the button that will.
    pub async fn token_is_live(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<bool, AccountError> {
        Ok(self.peek_token(token, purpose).await?.is_some())
    }

    /// What a token given back in a link would be accepted as now, without using it (`None`:
    /// malformed, unknown, used, expired, or for another purpose). For refusing cheaply before
    /// expensive work; the work itself then accepts it with [`CONSUME_TOKEN`].
    pub(super) async fn peek_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<Option<(TokenHash, Claim)>, AccountError> {
        let Some(hash) = OneTimeToken::hash_of(token) else {
            return Ok(None);
        };
        let claim: Option<Claim> = with_pool!(self.db(), |pool| sqlx::query_as(PEEK_TOKEN)
            .bind(hash.as_bytes().as_slice())
            .bind(purpose.as_str())
            .bind(to_millis(now()))
            .fetch_optional(pool)
            .await)?;
        Ok(claim.map(|claim| (hash, claim)))
    }
}
