//! Second factors: an authenticator app (TOTP, RFC 6238) and single-use recovery codes, the second
//! step of a sign-in, and what a session needs to confirm access with one.
//!
//! - Setting up an app ([`Accounts::start_totp`]) gives a fresh 160-bit secret, its `otpauth://`
//!   URL and a QR code (SVG); it counts only once a code from the app confirms it
//!   ([`Accounts::confirm_totp`]), within [`TOTP_SETUP_LIFETIME`].
//! - A code is good for its 30-second step and one step either side (clock skew), once: the latest
//!   step accepted is stored, and a code of that step or an earlier one is refused, by the same
//!   statement that accepts it, so two requests cannot both use one code.
//! - [`RECOVERY_CODE_COUNT`] recovery codes of 80 random bits each, kept only as SHA-256, each
//!   accepted once; made when the first factor is set up, and again on request (voiding the old).
//! - Every check of a code ([`Accounts::verify_second_factor`]) is throttled per user and per
//!   client address like a password, and a sign-in waiting for its second step is a flag in the
//!   session ([`SecondStep`]), never a signed-in session.

use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::alerts::{record_event, NewEvent};
use super::*;
use crate::sessions::{AuthMethod, Session, SessionError};

/// How long a started authenticator-app setup waits for its first code.
pub const TOTP_SETUP_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How many recovery codes a user gets at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// How long a sign-in waits for its second step after the password.
pub const SECOND_STEP_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Seconds per TOTP step (RFC 6238's default, what every app uses).
const TOTP_STEP_SECS: u64 = 30;

/// The letters of recovery codes: Crockford's base 32 (no i, l, o or u), lower case.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters in a recovery code (5 bits each: 80 bits).
const RECOVERY_CODE_CHARS: usize = 16;

/// An authenticator app being set up: what to show the user once.
#[derive(Clone)]
pub struct TotpSetup {
    /// The secret in base 32, for typing into an app by hand.
    pub secret_base32: String,
    /// The `otpauth://totp/…` URL the QR code holds.
    pub otpauth_url: String,
    /// The QR code of [`TotpSetup::otpauth_url`], as an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetup").finish_non_exhaustive()
    }
}

/// The second factors a user has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecondFactors {
    /// When the authenticator app was set up, if one is.
    pub totp_since: Option<OffsetDateTime>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    /// Recovery codes made at the last (re)generation.
    pub recovery_codes_total: u32,
    /// Passkeys registered.
    pub passkeys: u32,
}

impl SecondFactors {
    /// Whether signing in asks for a second step.
    pub fn any(&self) -> bool {
        self.totp_since.is_some() || self.passkeys > 0
    }

    /// How many second factors there are (the app, and each passkey): removing the last one
    /// leaves the password alone.
    pub fn count(&self) -> u32 {
        u32::from(self.totp_since.is_some()) + self.passkeys
    }
}

/// Fresh recovery codes, to show once: only their hashes are kept.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

/// A sign-in whose password was right, waiting in the session for its second step. The session
/// has no user meanwhile: nothing that needs one is open to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondStep {
    /// Who is signing in.
    pub user_id: i64,
    /// When the password was checked (Unix ms).
    pub started_at: i64,
    /// Whether "keep me signed in" was ticked: unticked, the session [`finish`](Self::finish)
    /// signs in ends with the browser ([`Expiry::BrowserClose`](crate::sessions::Expiry)).
    #[serde(default = "keep_signed_in")]
    pub remember: bool,
}

fn keep_signed_in() -> bool {
    true
}

impl SecondStep {
    /// The session key it is kept under.
    pub const KEY: &'static str = "_second_step";

    /// Puts the session in the middle of a sign-in of `user_id`, under a new token: a session
    /// planted in the browser before the password was typed is worthless. `remember`: whether
    /// the session is to outlive the browser.
    pub async fn begin(
        session: &Session,
        user_id: i64,
        remember: bool,
    ) -> Result<(), SessionError> {
        session.cycle_key().await?;
        session
            .insert(
                Self::KEY,
                SecondStep {
                    user_id,
                    started_at: to_millis(now()),
                    remember,
                },
            )
            .await
    }

    /// The sign-in waiting in this session, if one is and it is not older than
    /// [`SECOND_STEP_LIFETIME`] (an older one is removed).
    pub async fn pending(session: &Session) -> Result<Option<SecondStep>, SessionError> {
        // Unreadable state is as good as none: the person signs in again.
        let step = session.get::<SecondStep>(Self::KEY).await.unwrap_or(None);
        let now = to_millis(now());
        match step {
            Some(step)
                if step.started_at <= now
                    && now - step.started_at <= millis(SECOND_STEP_LIFETIME) =>
            {
                Ok(Some(step))
            }
            Some(_) => {
                session.remove::<serde_json::Value>(Self::KEY).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Ends the wait and signs the session in as its user, by `method`.
    pub async fn finish(self, session: &Session, method: AuthMethod) -> Result<(), SessionError> {
        session.remove::<serde_json::Value>(Self::KEY).await?;
        session.sign_in(self.user_id, method).await?;
        if !self.remember {
            session
                .set_expiry(crate::sessions::Expiry::BrowserClose)
                .await?;
        }
        Ok(())
    }

    /// Ends the wait without signing in.
    pub async fn cancel(session: &Session) -> Result<(), SessionError> {
        session
            .remove::<serde_json::Value>(Self::KEY)
            .await
            .map(drop)
    }
}

/// The subjects a failed code counts toward once [`Accounts::reserve_attempt`] has counted the
/// user's: the client address's.
pub(super) fn address_subjects(subjects: &[(Kind, String)]) -> &[(Kind, String)] {
    match subjects.iter().position(|(kind, _)| *kind == Kind::Ip) {
        Some(at) => subjects.get(at..).unwrap_or_default(),
        None => &[],
    }
}

/// What a typed code is: six digits from an app, or a recovery code.
enum Code {
    Totp(String),
    Recovery(String),
}

impl Code {
    /// Spaces and dashes are ignored; recovery codes are read case-insensitively, with Crockford's
    /// look-alikes (i and l for 1, o for 0).
    fn parse(typed: &str) -> Option<Code> {
        let compact: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Code::Totp(compact));
        }
        let recovery: String = compact
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                other => other,
            })
            .collect();
        (recovery.len() == RECOVERY_CODE_CHARS
            && recovery.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(Code::Recovery(recovery))
    }
}

fn recovery_hash(normalised: &str) -> [u8; 32] {
    Sha256::digest(normalised.as_bytes()).into()
}

/// `xxxx-xxxx-xxxx-xxxx`, 80 random bits.
fn new_recovery_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut code = String::with_capacity(RECOVERY_CODE_CHARS + 3);
    for n in 0..RECOVERY_CODE_CHARS {
        if n > 0 && n % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(RECOVERY_ALPHABET[rng.gen_range(0..32)]));
    }
    code
}

/// The TOTP of a secret, as every app computes it: SHA-1, 6 digits, 30-second steps, one step of
/// skew either way.
fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<totp_rs::Totp, AccountError> {
    // Neither part of an otpauth label may hold a colon.
    let label = |text: &str| text.replace(':', " ");
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_skew(1)
        .with_step_duration(TOTP_STEP_SECS)
        .with_issuer(Some(label(issuer)))
        .with_account_name(label(account))
        .build()
        .map_err(|e| AccountError::internal(format!("TOTP setup: {e}")))
}

fn unix_secs(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

/// New recovery codes, and the hashes to store.
pub(super) fn fresh_recovery_codes() -> (RecoveryCodes, Vec<[u8; 32]>) {
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code())
        .collect();
    let hashes = codes
        .iter()
        .filter_map(|code| match Code::parse(code)? {
            Code::Recovery(normalised) => Some(recovery_hash(&normalised)),
            Code::Totp(_) => None,
        })
        .collect();
    (RecoveryCodes(codes), hashes)
}

/// Replaces a user's recovery codes with these hashes, in a transaction of either backend.
macro_rules! replace_recovery_codes {
    ($tx:expr, $user_id:expr, $hashes:expr, $at:expr) => {{
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
        for hash in $hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind($user_id)
            .bind(hash.as_slice())
            .bind($at)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(super) use replace_recovery_codes;

/// In a transaction of either backend: makes the user's recovery codes when they have no unused
/// ones (their first second factor), giving them to show once (`None` when they had some).
macro_rules! fresh_recovery_codes_in {
    ($tx:expr, $user_id:expr, $at:expr) => {{
        let (unused,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind($user_id)
        .fetch_one(&mut *$tx)
        .await?;
        if unused == 0 {
            let (codes, hashes) = $crate::accounts::factors::fresh_recovery_codes();
            $crate::accounts::factors::replace_recovery_codes!($tx, $user_id, &hashes, $at);
            Some(codes)
        } else {
            None
        }
    }};
}
pub(super) use fresh_recovery_codes_in;

/// In a transaction of either backend, first thing: takes the user's row for writing (a row lock
/// on PostgreSQL, the write lock on SQLite), so that removals of two factors at once follow each
/// other and the second sees that the first is gone.
macro_rules! lock_factors_of {
    ($tx:expr, $user_id:expr) => {{
        sqlx::query("UPDATE users SET id = id WHERE id = $1")
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(super) use lock_factors_of;

/// In a transaction of either backend, after `$rows` rows of a factor were deleted (under
/// [`lock_factors_of`]): `None` when none were; else the security event `$kind` is recorded, and
/// whether it was the last factor is answered ([`FactorRemoved`]); the user's recovery codes then
/// go too (they stand in for a second factor; with none they mean nothing).
macro_rules! factor_removed {
    ($tx:expr, $user_id:expr, $rows:expr, $kind:expr, $client_ip:expr, $at:expr) => {{
        if $rows == 0 {
            None
        } else {
            let (left,): (i64,) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM totp_credentials \
                         WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
                      + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1)",
            )
            .bind($user_id)
            .fetch_one(&mut *$tx)
            .await?;
            if left == 0 {
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind($user_id)
                    .execute(&mut *$tx)
                    .await?;
            }
            record_event!(
                &mut *$tx,
                &NewEvent::of($user_id, $kind).with_ip($client_ip),
                $at
            )?;
            Some($crate::accounts::FactorRemoved { last: left == 0 })
        }
    }};
}
pub(super) use factor_removed;

/// A second factor removed ([`Accounts::remove_totp`], [`Accounts::remove_passkey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorRemoved {
    /// It was the user's last second factor: two-step sign-in is off and the recovery codes are
    /// gone. Decided in the removal's own transaction, so two removals at once cannot both miss it.
    pub last: bool,
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    secret: Vec<u8>,
    created_at: i64,
    confirmed_at: Option<i64>,
}

impl Accounts {
    /// The second factors of a user.
    pub async fn second_factors(&self, user_id: i64) -> Result<SecondFactors, AccountError> {
        let (totp, (left, total), (passkeys,)): (Option<(i64,)>, (i64, i64), (i64,)) =
            with_pool!(self.db(), |pool| {
                let totp = sqlx::query_as(
                    "SELECT confirmed_at FROM totp_credentials \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL",
                )
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
                let codes = sqlx::query_as(
                    "SELECT COUNT(*) FILTER (WHERE used_at IS NULL), COUNT(*) FROM recovery_codes \
                 WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_one(pool)
                .await?;
                let passkeys = sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(pool)
                    .await?;
                Ok::<_, sqlx::Error>((totp, codes, passkeys))
            })?;
        Ok(SecondFactors {
            totp_since: totp.map(|(at,)| from_millis(at)),
            recovery_codes_left: u32::try_from(left).unwrap_or(0),
            recovery_codes_total: u32::try_from(total).unwrap_or(0),
            passkeys: u32::try_from(passkeys).unwrap_or(0),
        })
    }

    /// The authenticator app a user is setting up, to show again (a reload of the setup page):
    /// `None` when no setup waits, or it is older than [`TOTP_SETUP_LIFETIME`].
    pub async fn pending_totp(&self, user_id: i64) -> Result<Option<TotpSetup>, AccountError> {
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let row: Option<TotpRow> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT secret, created_at, confirmed_at FROM totp_credentials \
             WHERE user_id = $1 AND confirmed_at IS NULL"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        match row {
            Some(row)
                if to_millis(now()).saturating_sub(row.created_at)
                    <= millis(TOTP_SETUP_LIFETIME) =>
            {
                self.totp_setup(row.secret, &user.username).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn totp_setup(&self, secret: Vec<u8>, username: &str) -> Result<TotpSetup, AccountError> {
        let app = totp(secret, &self.inner.config.totp_issuer, username)?;
        let otpauth_url = app
            .to_url()
            .map_err(|e| AccountError::internal(format!("TOTP URL: {e}")))?;
        let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
            .map_err(|e| AccountError::internal(format!("QR code: {e}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        Ok(TotpSetup {
            secret_base32: app.secret().to_base32(),
            otpauth_url,
            qr_svg,
        })
    }

    /// Starts setting up an authenticator app for a user: a new secret, replacing any setup not
    /// confirmed yet. [`AccountRefusal::TotpAlreadyEnabled`] when one is set up already.
    pub async fn start_totp(&self, user_id: i64) -> Result<TotpSetup, AccountError> {
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let mut secret = vec![0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let now = to_millis(now());
        let written = with_pool!(self.db(), |pool| sqlx::query(
            "INSERT INTO totp_credentials (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                 created_at = excluded.created_at, last_step = 0 \
             WHERE totp_credentials.confirmed_at IS NULL"
        )
        .bind(user_id)
        .bind(secret.as_slice())
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if written == 0 {
            return Err(AccountRefusal::TotpAlreadyEnabled.into());
        }
        self.totp_setup(secret, &user.username)
    }

    /// Confirms the authenticator app being set up with a code from it. The first second factor
    /// of a user also makes their recovery codes, returned to show once (`None` when they have
    /// some already). Throttled as [`Accounts::verify_second_factor`].
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<RecoveryCodes>, AccountError> {
        let subjects = self.factor_subjects(user_id, client_ip);
        self.refuse_if_locked(&subjects).await?;
        let row: Option<TotpRow> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT secret, created_at, confirmed_at FROM totp_credentials WHERE user_id = $1"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        let now = now();
        let row = match row {
            Some(row) if row.confirmed_at.is_some() => {
                return Err(AccountRefusal::TotpAlreadyEnabled.into())
            }
            Some(row)
                if to_millis(now).saturating_sub(row.created_at) <= millis(TOTP_SETUP_LIFETIME) =>
            {
                row
            }
            _ => return Err(AccountRefusal::TotpSetupExpired.into()),
        };
        if code.trim().is_empty() {
            return Err(AccountRefusal::CodeRequired.into());
        }
        self.take_attempt(&subjects).await?;
        let step = match Code::parse(code) {
            Some(Code::Totp(digits)) => totp(row.secret, "-", "-")?.check(&digits, unix_secs(now)),
            _ => None,
        };
        let Some(step) = step else {
            self.record_failure(address_subjects(&subjects)).await?;
            return Err(AccountRefusal::InvalidCode.into());
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let at = to_millis(now);
        let codes = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let confirmed = sqlx::query(
                "UPDATE totp_credentials SET confirmed_at = $1, last_step = $2 \
                 WHERE user_id = $3 AND confirmed_at IS NULL AND created_at = $4",
            )
            .bind(at)
            .bind(step)
            .bind(user_id)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed != 1 {
                return Err(AccountRefusal::TotpSetupExpired.into());
            }
            let codes = fresh_recovery_codes_in!(tx, user_id, at);
            record_event!(
                &mut *tx,
                &NewEvent::of(user_id, SecurityEventKind::TotpEnabled)
                    .with_ip(self.kept_ip(client_ip)),
                at
            )?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(codes)
        })?;
        self.clear_failures(&subjects).await?;
        tracing::info!(user_id, "authenticator app set up");
        Ok(codes)
    }

    /// Removes a user's authenticator app (and a setup in progress); `None` when there was none.
    /// Their recovery codes go too when no other second factor (a passkey) is left.
    pub async fn remove_totp(
        &self,
        user_id: i64,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<FactorRemoved>, AccountError> {
        let at = to_millis(now());
        let removed = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            lock_factors_of!(tx, user_id);
            let removed = sqlx::query(
                "DELETE FROM totp_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let removed = factor_removed!(
                tx,
                user_id,
                removed,
                SecurityEventKind::TotpRemoved,
                self.kept_ip(client_ip),
                at
            );
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        })?;
        if removed.is_some() {
            tracing::info!(user_id, "authenticator app removed");
        }
        Ok(removed)
    }

    /// New recovery codes for a user who has a second factor, voiding the old ones; returned to
    /// show once.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: i64,
        client_ip: Option<IpAddr>,
    ) -> Result<RecoveryCodes, AccountError> {
        if !self.second_factors(user_id).await?.any() {
            return Err(AccountError::UserNotFound);
        }
        let at = to_millis(now());
        let codes = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let (codes, hashes) = fresh_recovery_codes();
            replace_recovery_codes!(tx, user_id, &hashes, at);
            record_event!(
                &mut *tx,
                &NewEvent::of(user_id, SecurityEventKind::RecoveryCodesRenewed)
                    .with_ip(self.kept_ip(client_ip)),
                at
            )?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(codes)
        })?;
        tracing::info!(user_id, "recovery codes renewed");
        Ok(codes)
    }

    /// Checks a code from the user's authenticator app, or one of their recovery codes (spaces and
    /// dashes ignored), for the second step of a sign-in or to confirm access; the answer says
    /// which it was ([`AuthMethod::PasswordTotp`] or [`AuthMethod::PasswordRecoveryCode`]).
    ///
    /// A code is accepted once: an app's code of a step no later than the last one accepted, and
    /// a used recovery code, are [`AccountRefusal::InvalidCode`], as are wrong codes. Failures
    /// count toward a lock per user and per client address, as failed passwords do
    /// ([`AccountsConfig::second_factor_throttle`], [`AccountsConfig::ip_throttle`]); while locked the
    /// answer is [`AccountRefusal::Throttled`] without looking at the code.
    pub async fn verify_second_factor(
        &self,
        user_id: i64,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<AuthMethod, AccountError> {
        let client = crate::sessions::ClientInfo {
            ip: client_ip,
            ..Default::default()
        };
        self.verify_second_factor_from(user_id, code, &client).await
    }

    /// [`Accounts::verify_second_factor`] from this client, whose user agent a wrong code's line
    /// in the sign-in activity shows.
    pub async fn verify_second_factor_from(
        &self,
        user_id: i64,
        code: &str,
        client: &crate::sessions::ClientInfo,
    ) -> Result<AuthMethod, AccountError> {
        let client_ip = client.ip;
        if code.trim().is_empty() {
            return Err(AccountRefusal::CodeRequired.into());
        }
        let subjects = self.factor_subjects(user_id, client_ip);
        self.refuse_if_locked(&subjects).await?;
        self.take_attempt(&subjects).await?;
        let accepted = match Code::parse(code) {
            Some(Code::Totp(digits)) => self.accept_totp(user_id, &digits).await?,
            Some(Code::Recovery(normalised)) => {
                self.accept_recovery_code(user_id, &normalised, client_ip)
                    .await?
            }
            None => None,
        };
        match accepted {
            Some(method) => {
                self.clear_failures(&subjects).await?;
                Ok(method)
            }
            None => {
                // The user's count took this attempt already; the address's counts failures.
                self.record_failure(address_subjects(&subjects)).await?;
                self.record_sign_in_attempt(
                    user_id,
                    false,
                    super::activity::FAILED_SECOND_FACTOR,
                    client,
                    None,
                )
                .await;
                Err(AccountRefusal::InvalidCode.into())
            }
        }
    }

    async fn accept_totp(
        &self,
        user_id: i64,
        digits: &str,
    ) -> Result<Option<AuthMethod>, AccountError> {
        let row: Option<(Vec<u8>,)> = with_pool!(self.db(), |pool| {
            sqlx::query_as(
            "SELECT secret FROM totp_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await
        })?;
        let Some((secret,)) = row else {
            return Ok(None);
        };
        let Some(step) = totp(secret, "-", "-")?.check(digits, unix_secs(now())) else {
            return Ok(None);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        // One statement decides: a step no later than the last accepted is a replay.
        let accepted = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE totp_credentials SET last_step = $1 \
             WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1"
        )
        .bind(step)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if accepted == 0 {
            tracing::warn!(user_id, "authenticator code refused: used already");
        }
        Ok((accepted == 1).then_some(AuthMethod::PasswordTotp))
    }

    async fn accept_recovery_code(
        &self,
        user_id: i64,
        normalised: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<AuthMethod>, AccountError> {
        let at = to_millis(now());
        let used = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let used = sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 \
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(at)
            .bind(user_id)
            .bind(recovery_hash(normalised).as_slice())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used == 1 {
                record_event!(
                    &mut *tx,
                    &NewEvent::of(user_id, SecurityEventKind::RecoveryCodeUsed)
                        .with_ip(self.kept_ip(client_ip)),
                    at
                )?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(used == 1)
        })?;
        if used {
            tracing::info!(user_id, "recovery code used");
        }
        Ok(used.then_some(AuthMethod::PasswordRecoveryCode))
    }

    /// Counts this check toward the user's lock before the code is looked at
    /// ([`Accounts::reserve_attempt`]), so checks sent together cannot outrun the lock;
    /// [`AccountRefusal::Throttled`] when the user is locked.
    pub(super) async fn take_attempt(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<(), AccountError> {
        let user = subjects
            .iter()
            .filter(|(kind, _)| *kind == Kind::SecondFactor)
            .cloned()
            .collect::<Vec<_>>();
        for subject in &user {
            if !self.reserve_attempt(subject).await? {
                self.refuse_if_locked(&user).await?;
                // Locked a moment ago, unlocked now: refuse this once rather than check it
                // unthrottled.
                return Err(AccountRefusal::throttled(Duration::from_secs(1)).into());
            }
        }
        Ok(())
    }

    /// What failed codes are counted by: the user, and the client address.
    pub(super) fn factor_subjects(
        &self,
        user_id: i64,
        client_ip: Option<IpAddr>,
    ) -> Vec<(Kind, String)> {
        let mut subjects = vec![(Kind::SecondFactor, user_id.to_string())];
        subjects.extend(client_ip.map(|ip| (Kind::Ip, ip_subject(ip))));
        subjects
    }

    /// Forgets the user's count after a code was accepted (the address's count stays: it counts
    /// failures on every account).
    pub(super) async fn clear_failures(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<(), AccountError> {
        for (kind, subject) in subjects.iter().filter(|(kind, _)| *kind != Kind::Ip) {
            with_pool!(self.db(), |pool| sqlx::query(throttle::CLEAR)
                .bind(kind.as_str())
                .bind(subject.as_str())
                .execute(pool)
                .await
                .map(drop))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_sixteen_letters_in_four_groups_and_read_back_loosely() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        let Some(Code::Recovery(normalised)) = Code::parse(&code) else {
            panic!("a fresh code parses")
        };
        let loose = format!(" {} ", code.to_uppercase().replace('-', " "));
        let Some(Code::Recovery(again)) = Code::parse(&loose) else {
            panic!("upper case and spaces are fine")
        };
        assert_eq!(again, normalised);
        assert!(matches!(Code::parse("123 456"), Some(Code::Totp(d)) if d == "123456"));
        assert!(Code::parse("12345").is_none());
        assert!(Code::parse("uuuu-uuuu-uuuu-uuuu").is_none());
        assert!(matches!(
            Code::parse("oooo-llll-iiii-0000"),
            Some(Code::Recovery(c)) if c == "0000111111110000"
        ));
    }

    #[test]
    fn fresh_recovery_codes_differ() {
        let codes: std::collections::HashSet<String> =
            (0..100).map(|_| new_recovery_code()).collect();
        assert_eq!(codes.len(), 100);
    }
}
