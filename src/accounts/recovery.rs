//! Account recovery by mail: a forgotten password, the email address verified, the email address
//! changed. Each step hands back the one-time token (see `tokens.rs`) and the facts the app's mail
//! needs; the library sends nothing.
//!
//! A reset, and a password staff set, end every session of the user through the engine
//! ([`EndCause::PasswordChanged`]): whoever made the reset necessary may hold one of them.

use super::alerts::{record_event, NewEvent, SecurityEventKind};
use super::tokens::{consume_token, insert_token, TokenPurpose, VOID_TOKENS};
use super::*;

/// A password reset to mail: the account and the link's token.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    /// The account (its email address is where the link goes; it always has one).
    pub user: User,
    /// The token for [`Accounts::reset_password`]; earlier unused ones of the user no longer work.
    pub token: IssuedToken,
}

/// A password replaced: by a reset link, or by staff.
#[derive(Debug, Clone)]
pub struct PasswordResetDone {
    /// The account, as it is now.
    pub user: User,
    /// How many of its sessions ended (all of them).
    pub sessions_ended: usize,
}

/// An email address to verify: where to send the link, and its token.
#[derive(Debug, Clone)]
pub struct EmailVerification {
    /// The account.
    pub user: User,
    /// The address the link goes to (the user's current one).
    pub email: String,
    /// The token for [`Accounts::verify_email`]; earlier unused ones of the user no longer work.
    pub token: IssuedToken,
}

/// A change of email address asked for: the link goes to the new address; the old one (in
/// [`EmailChange::user`], if there is one) should be told that a change was asked for.
#[derive(Debug, Clone)]
pub struct EmailChange {
    /// The account, still with its old address.
    pub user: User,
    /// The old address, to notify (the same as `user.email`).
    pub old_email: Option<String>,
    /// The new address, where the link goes.
    pub new_email: String,
    /// The token for [`Accounts::confirm_email_change`]; earlier unused ones of the user no longer
    /// work.
    pub token: IssuedToken,
}

/// Checks that no other user has this email address, ignoring ASCII case (`$1` the address, `$2`
/// the user who may have it).
const EMAIL_TAKEN: &str = "\
    SELECT id FROM users WHERE LOWER(email) = LOWER($1) AND id <> $2 LIMIT 1";

impl Accounts {
    /// Asks for a password reset link for an account, by username or email address, from
    /// `client_ip`. Returns the account and a token to mail to its address when exactly one
    /// active account with an email address matches, and `None` otherwise (no such account, an
    /// inactive one, one without an address, or an address several accounts share), so the app
    /// can give the same answer either way. A new token voids the account's earlier unused ones.
    ///
    /// Every request is counted, whether or not an account matches, per name typed (a keyed hash
    /// of it folded) and per client network ([`AccountsConfig::reset_limits`]); over either limit
    /// it is refused with [`AccountRefusal::Throttled`]. A blank name is `None` without counting.
    ///
    /// A match costs a few more writes than no match: to keep that from showing in how long the
    /// page takes, answer first and hand the mail to a queue (the outbox) rather than send it
    /// while the person waits.
    pub async fn request_password_reset(
        &self,
        login_or_email: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<PasswordReset>, AccountError> {
        let login = login_or_email.trim();
        if login.is_empty() {
            return Ok(None);
        }
        let limits = &self.inner.config.reset_limits;
        let ip = client_ip.map(ip_subject);
        let typed = self.account_subject(&username_key(login)).await?;
        let counts = [
            (throttle::RESET_IP, ip.as_deref(), limits.per_ip),
            (
                throttle::RESET_LOGIN,
                Some(typed.as_str()),
                limits.per_login,
            ),
        ];
        self.count_in_windows(&counts, limits.window, "password reset requests throttled")
            .await?;
        let Some(user) = self.reset_candidate(login).await? else {
            return Ok(None);
        };
        let token = self.issue_password_reset(&user, client_ip, true).await?;
        tracing::info!(user_id = user.id, "password reset requested");
        Ok(Some(PasswordReset { user, token }))
    }

    /// The one active account with an address that `login` names: by username, else by email
    /// address when no username matches.
    async fn reset_candidate(&self, login: &str) -> Result<Option<User>, AccountError> {
        if validate::too_long(login, MAX_USERNAME_CHARS.max(MAX_EMAIL_CHARS)) {
            return Ok(None);
        }
        if let Some(user) = self.user_by_username(login).await? {
            return Ok((user.is_active && user.email.is_some()).then_some(user));
        }
        if !login.contains('@') {
            return Ok(None);
        }
        let rows: Vec<UserRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE LOWER(email) = LOWER($1) AND is_active = TRUE LIMIT 2"
        ))
        .bind(login)
        .fetch_all(pool)
        .await)?;
        // Several accounts share the address: which one is meant cannot be told.
        let mut rows = rows.into_iter();
        Ok(match (rows.next(), rows.next()) {
            (Some(row), None) => Some(row.into_user()),
            _ => None,
        })
    }

    /// Staff's "send reset link": a password reset token for a user, as
    /// [`Accounts::request_password_reset`] gives one but without its throttle (voiding the user's
    /// earlier unused ones; recorded in their security activity). [`AccountError::UserNotFound`]
    /// for no such user or an inactive one (a reset would not open the account; activate it
    /// first), [`AccountRefusal::EmailRequired`] for one without an address.
    pub async fn password_reset_for(&self, user_id: i64) -> Result<PasswordReset, AccountError> {
        let user = self
            .user(user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AccountError::UserNotFound)?;
        if user.email.is_none() {
            return Err(AccountRefusal::EmailRequired.into());
        }
        let token = self.issue_password_reset(&user, None, true).await?;
        tracing::info!(user_id, "password reset link issued by staff");
        Ok(PasswordReset { user, token })
    }

    /// The user a password reset token would let choose a new password, without using the token:
    /// for the page that asks for it. `None` for a token [`Accounts::reset_password`] would refuse
    /// (malformed, unknown, used, expired, for something else, or of an inactive user).
    pub async fn password_reset_user(&self, token: &str) -> Result<Option<User>, AccountError> {
        let Some((_, claim)) = self.peek_token(token, TokenPurpose::PasswordReset).await? else {
            return Ok(None);
        };
        Ok(self
            .user(claim.user_id)
            .await?
            .filter(|user| user.is_active))
    }

    /// Makes a password reset token for `user`, voiding their earlier unused ones; `requested`
    /// records the request (from `client_ip`) in the security activity.
    pub(super) async fn issue_password_reset(
        &self,
        user: &User,
        client_ip: Option<IpAddr>,
        requested: bool,
    ) -> Result<IssuedToken, AccountError> {
        let created_at = now();
        let at = to_millis(created_at);
        let (issued, stored) =
            self.new_token(TokenPurpose::PasswordReset, user.id, None, None, created_at);
        let event = NewEvent::of(user.id, SecurityEventKind::PasswordResetRequested)
            .with_ip(self.kept_ip(client_ip));
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(VOID_TOKENS)
                .bind(at)
                .bind(user.id)
                .bind(TokenPurpose::PasswordReset.as_str())
                .execute(&mut *tx)
                .await?;
            insert_token!(&mut *tx, &stored)?;
            if requested {
                record_event!(&mut *tx, &event, at)?;
            }
            tx.commit().await
        })?;
        Ok(issued)
    }

    /// Sets a new password with a reset token: checked like a sign-up's password, then set; the
    /// token and every other unused reset token of the user stop working, every session of the
    /// user ends (database and cache), the account's sign-in throttling counts are forgotten, and
    /// the reset is recorded in the security activity.
    ///
    /// A malformed, unknown, used or expired token, one for another purpose, or one of an inactive
    /// user gives [`AccountRefusal::InvalidToken`]; a password the rules refuse gives their error and
    /// leaves the token usable.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
    ) -> Result<PasswordResetDone, AccountError> {
        // Looked at before hashing, so that made-up tokens cost no argon2 work.
        let Some((hash, claim)) = self.peek_token(token, TokenPurpose::PasswordReset).await? else {
            return Err(AccountError::Refused(AccountRefusal::InvalidToken));
        };
        let row = match self.credentials(claim.user_id).await {
            Ok(row) if row.user.is_active => row,
            Ok(_) | Err(AccountError::UserNotFound) => {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken))
            }
            Err(error) => return Err(error),
        };
        validate_new_password(
            &row.user.username,
            new_password,
            self.inner.config.min_password_chars,
        )?;
        let password_hash = self.hash_new_password(new_password).await?;
        let sessions_ended = self
            .replace_password(
                claim.user_id,
                &password_hash,
                Some(&hash),
                SecurityEventKind::PasswordReset,
            )
            .await?;
        self.reset_throttle(&row.user.username).await?;
        let user = self
            .user(claim.user_id)
            .await?
            .ok_or(AccountError::Refused(AccountRefusal::InvalidToken))?;
        tracing::info!(user_id = user.id, sessions_ended, "password reset");
        Ok(PasswordResetDone {
            user,
            sessions_ended,
        })
    }

    /// Stores a new password hash for an active user (accepting `token`, a reset token, in the same
    /// transaction when given), voids the user's unused reset tokens, records `kind`, and then ends
    /// every session of the user; returns how many ended. [`AccountRefusal::InvalidToken`] when the
    /// token is not accepted or the user is not active (or, without a token, gone:
    /// [`AccountError::UserNotFound`]).
    pub(super) async fn replace_password(
        &self,
        user_id: i64,
        password_hash: &str,
        token: Option<&TokenHash>,
        kind: SecurityEventKind,
    ) -> Result<usize, AccountError> {
        let at = to_millis(now());
        let event = NewEvent::of(user_id, kind);
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            if let Some(token) = token {
                let claim = consume_token!(&mut *tx, token, TokenPurpose::PasswordReset, at)?;
                if claim.is_none_or(|claim| claim.user_id != user_id) {
                    return Err(AccountError::Refused(AccountRefusal::InvalidToken));
                }
            }
            // A reset opens only an active account; staff may set any account's password.
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND (is_active OR NOT $3)",
            )
            .bind(password_hash)
            .bind(user_id)
            .bind(token.is_some())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(if token.is_some() {
                    AccountError::Refused(AccountRefusal::InvalidToken)
                } else {
                    AccountError::UserNotFound
                });
            }
            sqlx::query(VOID_TOKENS)
                .bind(at)
                .bind(user_id)
                .bind(TokenPurpose::PasswordReset.as_str())
                .execute(&mut *tx)
                .await?;
            record_event!(&mut *tx, &event, at)?;
            tx.commit().await?;
            Ok::<_, AccountError>(())
        })?;
        let ended = self
            .inner
            .engine
            .end_all_of(user_id, EndCause::PasswordChanged)
            .await?;
        Ok(ended.len())
    }

    /// Makes a token to verify a user's current email address, voiding their earlier unused ones;
    /// the app mails it to [`EmailVerification::email`]. [`AccountRefusal::EmailRequired`] when the
    /// user has no address.
    pub async fn start_email_verification(
        &self,
        user_id: i64,
    ) -> Result<EmailVerification, AccountError> {
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let Some(email) = user.email.clone() else {
            return Err(AccountError::Refused(AccountRefusal::EmailRequired));
        };
        let created_at = now();
        let at = to_millis(created_at);
        let (token, stored) = self.new_token(
            TokenPurpose::EmailVerification,
            user.id,
            Some(&email),
            None,
            created_at,
        );
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(VOID_TOKENS)
                .bind(at)
                .bind(user.id)
                .bind(TokenPurpose::EmailVerification.as_str())
                .execute(&mut *tx)
                .await?;
            insert_token!(&mut *tx, &stored)?;
            tx.commit().await
        })?;
        Ok(EmailVerification { user, email, token })
    }

    /// Marks a user's email address verified with the token mailed to it, and returns the user.
    /// [`AccountRefusal::InvalidToken`] for a token not accepted, and for one sent to an address
    /// that is no longer the user's.
    pub async fn verify_email(&self, token: &str) -> Result<User, AccountError> {
        let Some(hash) = OneTimeToken::hash_of(token) else {
            return Err(AccountError::Refused(AccountRefusal::InvalidToken));
        };
        let at = to_millis(now());
        let user_id = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let Some(claim) = consume_token!(&mut *tx, &hash, TokenPurpose::EmailVerification, at)?
            else {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            };
            let updated =
                sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email = $3")
                    .bind(at)
                    .bind(claim.user_id)
                    .bind(claim.email.as_deref().unwrap_or_default())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if updated != 1 || claim.email.is_none() {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            }
            let event = NewEvent::of(claim.user_id, SecurityEventKind::EmailVerified);
            record_event!(&mut *tx, &event, at)?;
            tx.commit().await?;
            Ok::<_, AccountError>(claim.user_id)
        })?;
        tracing::info!(user_id, "email address verified");
        self.user(user_id)
            .await?
            .ok_or(AccountError::Refused(AccountRefusal::InvalidToken))
    }

    /// Asks to change a user's email address: checks the new address
    /// ([`AccountRefusal::EmailInvalid`], or [`AccountRefusal::EmailTaken`] when another account has it,
    /// ignoring case) and makes a token to mail to it, voiding the user's earlier unused ones.
    /// Nothing changes until [`Accounts::confirm_email_change`]; the app should tell the old
    /// address ([`EmailChange::old_email`]) that a change was asked for.
    pub async fn request_email_change(
        &self,
        user_id: i64,
        new_email: &str,
    ) -> Result<EmailChange, AccountError> {
        let Some(new_email) = validate_email(Some(new_email))? else {
            return Err(AccountError::Refused(AccountRefusal::EmailInvalid));
        };
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let taken: Option<(i64,)> = with_pool!(self.db(), |pool| sqlx::query_as(EMAIL_TAKEN)
            .bind(new_email)
            .bind(user.id)
            .fetch_optional(pool)
            .await)?;
        if taken.is_some() {
            return Err(AccountError::Refused(AccountRefusal::EmailTaken));
        }
        let created_at = now();
        let at = to_millis(created_at);
        let (token, stored) = self.new_token(
            TokenPurpose::EmailChange,
            user.id,
            Some(new_email),
            None,
            created_at,
        );
        let detail = format!("to {new_email}");
        let event = NewEvent::of(user.id, SecurityEventKind::EmailChangeRequested).detail(&detail);
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(VOID_TOKENS)
                .bind(at)
                .bind(user.id)
                .bind(TokenPurpose::EmailChange.as_str())
                .execute(&mut *tx)
                .await?;
            insert_token!(&mut *tx, &stored)?;
            record_event!(&mut *tx, &event, at)?;
            tx.commit().await
        })?;
        tracing::info!(user_id, "email change requested");
        Ok(EmailChange {
            old_email: user.email.clone(),
            user,
            new_email: new_email.to_owned(),
            token,
        })
    }

    /// Changes a user's email address to the one the token was mailed to, marks it verified, and
    /// returns the user as now and their old address (to tell it the change was made). Unused
    /// verification and change tokens of the user stop working. [`AccountRefusal::InvalidToken`] for
    /// a token not accepted; [`AccountRefusal::EmailTaken`] when another account took the address
    /// meanwhile (the token then still works, should that account let it go).
    pub async fn confirm_email_change(
        &self,
        token: &str,
    ) -> Result<(User, Option<String>), AccountError> {
        let Some(hash) = OneTimeToken::hash_of(token) else {
            return Err(AccountError::Refused(AccountRefusal::InvalidToken));
        };
        let at = to_millis(now());
        let (user_id, old_email) = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let Some(claim) = consume_token!(&mut *tx, &hash, TokenPurpose::EmailChange, at)?
            else {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            };
            let Some(new_email) = claim.email.as_deref() else {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            };
            let old: Option<(String,)> = sqlx::query_as("SELECT email FROM users WHERE id = $1")
                .bind(claim.user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((old_email,)) = old else {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            };
            let updated = sqlx::query(&format!(
                "UPDATE users SET email = $1, email_verified_at = $2 \
                 WHERE id = $3 AND NOT EXISTS ({})",
                EMAIL_TAKEN.replace("$2", "$3")
            ))
            .bind(new_email)
            .bind(at)
            .bind(claim.user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(AccountError::Refused(AccountRefusal::EmailTaken));
            }
            for purpose in [TokenPurpose::EmailChange, TokenPurpose::EmailVerification] {
                sqlx::query(VOID_TOKENS)
                    .bind(at)
                    .bind(claim.user_id)
                    .bind(purpose.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            let shown_old = if old_email.is_empty() {
                "(none)"
            } else {
                old_email.as_str()
            };
            let detail = format!("from {shown_old} to {new_email}");
            let event =
                NewEvent::of(claim.user_id, SecurityEventKind::EmailChanged).detail(&detail);
            record_event!(&mut *tx, &event, at)?;
            tx.commit().await?;
            Ok::<_, AccountError>((claim.user_id, (!old_email.is_empty()).then_some(old_email)))
        })?;
        // Remembered identities carry the address (other nodes hear of it from the database).
        self.inner.identities.forget(Some(&[user_id]));
        tracing::info!(user_id, "email address changed");
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::Refused(AccountRefusal::InvalidToken))?;
        Ok((user, old_email))
    }
}
