//! Accounts: sign-up, sign-in, password changes and staff users, safe by default.
//!
//! - Usernames are unique by a folded key (NFKC + Unicode lower case, see [`username_key`]), so
//!   `"Åsa"` and `"åsa"` are one account.
//! - Passwords are hashed with argon2id (OWASP parameters, see [`PARAMS`]) on the blocking thread
//!   pool, at most [`AccountsConfig::max_concurrent_hashes`] at a time. Input longer than
//!   [`MAX_PASSWORD_CHARS`] is refused before any hashing.
//! - Signing in with an unknown username costs one verification against a dummy hash, and unknown
//!   username, wrong password and inactive account all give [`AccountRefusal::InvalidCredentials`]:
//!   nothing tells which accounts exist.
//! - Failed sign-ins are throttled in the database per account and client address, per account for
//!   browsers without a device cookie, per device cookie, and per client address (see `throttle.rs`
//!   and [`ThrottleLimits`]); every lock ends by itself, and a browser that signed in to the account
//!   before (its device cookie, [`SignedIn::device_token`]) is not locked out by others' failures.
//!   The counts hold keyed hashes of usernames, never the names typed.
//! - Self-service sign-ups are throttled per client address and in all ([`SignUpLimits`]), and a
//!   taken username costs the same password hash as a new account.
//! - While no user exists, exactly one self-service sign-up becomes staff
//!   ([`Accounts::sign_up_first_or_open`]), decided in the database.
//! - Deactivating or deleting a user ends their sessions through the [`SessionEngine`], so the
//!   `cached_db` cache forgets them too.
//! - Account recovery (`recovery.rs`): forgotten passwords ([`Accounts::request_password_reset`],
//!   throttled per login and per client network, the same answer for every name), email
//!   verification and changes, all by one-time tokens sent by mail ([`OneTimeToken`]: random, kept
//!   only as SHA-256, bound to a purpose, single use, short-lived; see `tokens.rs`). A reset or a
//!   password set by staff ends every session of the user ([`EndCause::PasswordChanged`]).
//! - New sign-in alerts (`alerts.rs`): a sign-in from a browser, system or country the user has
//!   not signed in from before gives an [`Alert`] to mail, answered "it was me" or "this wasn't
//!   me" ([`Accounts::answer_alert`]); what happened is kept for the account pages
//!   ([`Accounts::security_activity`]).
//!
//! This library sends no mail: each of these answers the tokens and facts a mail needs.
//!
//! [`Accounts`] is the service the pages and the command line call.

mod activity;
mod alerts;
mod error;
mod factors;
mod identity;
mod keys;
mod passkeys;
mod password;
mod recovery;
mod sign_in;
mod sign_up;
mod throttle;
mod tokens;
mod validate;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

pub use crate::refusal::AccountRefusal;
pub use activity::{SignInAttempt, FAILED_PASSWORD, FAILED_SECOND_FACTOR};
pub use alerts::{
    Alert, AlertAnswer, AlertAnswered, SecurityEvent, SecurityEventKind, SignInAlerts,
    SignInDevice, MAX_ACTIVITY_PAGE,
};
pub use error::AccountError;
pub use factors::{
    FactorRemoved, RecoveryCodes, SecondFactors, SecondStep, TotpSetup, RECOVERY_CODE_COUNT,
    SECOND_STEP_LIFETIME, TOTP_SETUP_LIFETIME,
};
use identity::{Directory, Identities, IDENTITY_CACHE_CAPACITY};
pub use identity::{Identity, IDENTITY_CACHE_TTL};
pub use passkeys::{
    PasskeyInfo, CEREMONY_KEY, CEREMONY_LIFETIME, MAX_PASSKEYS_PER_USER, PASSKEY_NAME_MAX_CHARS,
};
pub use password::{
    hash_password, needs_rehash, validate_new_password, verify_password, ARGON2_M_COST_KIB,
    ARGON2_P_COST, ARGON2_T_COST, DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS, PARAMS,
};
pub use recovery::{EmailChange, EmailVerification, PasswordReset, PasswordResetDone};
pub use throttle::{ip_subject, ResetLimits, SignUpLimits, ThrottleLimits};
pub use tokens::{
    IssuedToken, OneTimeToken, TokenLifetimes, TokenPurpose, ALERT_ANSWER_LIFETIME,
    EMAIL_TOKEN_LIFETIME, PASSWORD_RESET_LIFETIME,
};
pub use validate::{
    username_key, username_pattern, validate_email, validate_username, MAX_EMAIL_CHARS,
    MAX_USERNAME_CHARS,
};

use crate::clock::{from_millis, now, to_millis};
use crate::db::with_pool;
use crate::db::{escape_like, is_unique_violation, Database};
use crate::metrics::SignInOutcome;
use crate::sessions::{
    EndCause, PublicId, SessionEngine, SessionToken, StoreError, TokenHash, UserDirectory,
};
use throttle::{account_ip_subject, millis, Kind};

/// A device cookie's value: a random 256-bit token, of which the database keeps only the SHA-256.
pub type DeviceToken = SessionToken;

/// How long a device cookie is honoured after the sign-in that issued it.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most known devices kept per user; the oldest are forgotten first.
pub const MAX_DEVICES_PER_USER: i64 = 50;

/// Most users one [`Accounts::list_users`] page returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Every setting of the account service, with safe defaults.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// Whether anyone may create an account with [`Accounts::sign_up`] (default: open).
    /// [`Accounts::create_user`], for staff and the command line, works either way.
    pub signup_open: bool,
    /// Fewest characters of a new password (default [`DEFAULT_MIN_PASSWORD_CHARS`]; at most
    /// [`MAX_PASSWORD_CHARS`]).
    pub min_password_chars: usize,
    /// Throttle of failed sign-ins per account, shared by every browser without the account's device
    /// cookie (default [`ThrottleLimits::per_account`]).
    pub account_throttle: ThrottleLimits,
    /// Throttle of failed sign-ins per account and client address, for browsers without the
    /// account's device cookie (default [`ThrottleLimits::per_account_and_ip`]).
    pub account_ip_throttle: ThrottleLimits,
    /// Throttle of wrong codes of a second factor per user (default
    /// [`ThrottleLimits::per_second_factor`]).
    pub second_factor_throttle: ThrottleLimits,
    /// Throttle of failed sign-ins per device cookie (default [`ThrottleLimits::per_device`]).
    pub device_throttle: ThrottleLimits,
    /// Throttle of failed sign-ins per client address (default [`ThrottleLimits::per_ip`]).
    pub ip_throttle: ThrottleLimits,
    /// Self-service sign-ups per client address and in all (default [`SignUpLimits::default`]).
    pub signup_limits: SignUpLimits,
    /// Password reset requests per username or email address typed and per client address
    /// (default [`ResetLimits::default`]).
    pub reset_limits: ResetLimits,
    /// How long each kind of [`OneTimeToken`] is good for (default [`TokenLifetimes::default`]).
    pub token_lifetimes: TokenLifetimes,
    /// Whether an account must have a verified email address to sign in (default: no). When set,
    /// self-service sign-up needs an address ([`AccountRefusal::EmailRequired`]), and the right
    /// password to an account whose address is not verified gives
    /// [`AccountRefusal::EmailNotVerified`] (not counted as a failure, and no sign-in recorded):
    /// the app then sends a verification link ([`Accounts::start_email_verification`]). Sessions
    /// signed in before it was set are left alone.
    pub require_verified_email: bool,
    /// Whether new sign-in alerts are made at all (default: yes; `SIGN_IN_ALERTS`). Off, new
    /// sign-in contexts are still recorded in the security activity, with no alert and no answer
    /// tokens; each user can also turn their own off ([`Accounts::set_sign_in_alerts`]).
    pub sign_in_alerts: bool,
    /// The name authenticator apps show beside the username (default `console-sessions`), and
    /// the site's name in a browser's passkey prompts.
    pub totp_issuer: String,
    /// The site's origin as people reach it (`https://id.example.com`): passkeys are bound to its
    /// host name, their relying party id. `None` (the default), or an IP address, which browsers
    /// refuse, turns passkeys off ([`Accounts::passkeys_available`]).
    pub passkey_origin: Option<String>,
    /// Password hashes computed at once, each taking 19 MiB (default: the number of CPUs). More
    /// sign-ins wait their turn instead of exhausting memory.
    pub max_concurrent_hashes: usize,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            signup_open: true,
            min_password_chars: DEFAULT_MIN_PASSWORD_CHARS,
            account_throttle: ThrottleLimits::per_account(),
            account_ip_throttle: ThrottleLimits::per_account_and_ip(),
            second_factor_throttle: ThrottleLimits::per_second_factor(),
            device_throttle: ThrottleLimits::per_device(),
            ip_throttle: ThrottleLimits::per_ip(),
            signup_limits: SignUpLimits::default(),
            reset_limits: ResetLimits::default(),
            token_lifetimes: TokenLifetimes::default(),
            require_verified_email: false,
            sign_in_alerts: true,
            totp_issuer: "console-sessions".to_owned(),
            passkey_origin: None,
            max_concurrent_hashes: std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(2),
        }
    }
}

/// A user as pages see it. The password hash never leaves this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Database id (what sessions record).
    pub id: i64,
    /// The username as chosen (trimmed), for display.
    pub username: String,
    /// The email address, if one was given.
    pub email: Option<String>,
    /// Whether the user may use the staff pages.
    pub is_staff: bool,
    /// Whether the user may sign in. Deactivating ends every session of theirs.
    pub is_active: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the user last signed in, if ever.
    pub last_login_at: Option<OffsetDateTime>,
    /// When the current email address was verified ([`Accounts::verify_email`],
    /// [`Accounts::confirm_email_change`]); `None` if never, or if it changed since.
    pub email_verified_at: Option<OffsetDateTime>,
    /// Whether sign-ins from a new browser, system or country are mailed to the user (default on;
    /// [`Accounts::set_sign_in_alerts`]).
    pub sign_in_alerts: bool,
}

/// What creating a user takes.
#[derive(Clone, Default)]
pub struct NewUser {
    /// 1 to [`MAX_USERNAME_CHARS`] characters as sent (then trimmed); unique ignoring case.
    pub username: String,
    /// Optional; `None` or blank for none.
    pub email: Option<String>,
    /// The password in clear; only its hash is stored.
    pub password: String,
    /// Whether the user is staff.
    pub is_staff: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &"***")
            .field("is_staff", &self.is_staff)
            .finish()
    }
}

/// A user in the staff list, with how many sessions they have open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The user.
    pub user: User,
    /// Their sessions that have not expired.
    pub active_sessions: u64,
}

/// One page of [`Accounts::list_users`].
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users of this page, by username (ignoring case).
    pub users: Vec<UserSummary>,
    /// How many users match in all.
    pub total: u64,
}

/// A successful [`Accounts::sign_in`].
#[derive(Debug)]
pub struct SignedIn {
    /// The user signed in.
    pub user: User,
    /// The browser's new device cookie for this account: give it back as a long-lived HttpOnly
    /// cookie (see [`DEVICE_LIFETIME`]). The one it presented, if any, no longer counts.
    pub device_token: DeviceToken,
}

const USER_COLUMNS: &str = "id, username, email, is_staff, is_active, created_at, last_login_at, \
                            email_verified_at, sign_in_alerts";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    created_at: i64,
    last_login_at: Option<i64>,
    email_verified_at: Option<i64>,
    sign_in_alerts: bool,
}

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            email: (!self.email.is_empty()).then_some(self.email),
            is_staff: self.is_staff,
            is_active: self.is_active,
            created_at: from_millis(self.created_at),
            last_login_at: self.last_login_at.map(from_millis),
            email_verified_at: self.email_verified_at.map(from_millis),
            sign_in_alerts: self.sign_in_alerts,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    user: UserRow,
    active_sessions: i64,
}

/// The account service: users, passwords, sign-in throttling. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    engine: SessionEngine,
    config: AccountsConfig,
    hashing: Semaphore,
    /// Argon2 hashes and verifications computed: see [`Accounts::argon2_operations`].
    argon2_operations: AtomicU64,
    /// The key of the usernames' hashes in `login_attempts`, read from the database on first use.
    throttle_key: OnceCell<[u8; 32]>,
    /// Identities by user id, each with when it goes stale ([`IDENTITY_CACHE_TTL`] after it was
    /// read): [`Accounts::identity`]'s memory. A quick_cache rather than moka: forward
    /// authentication reads it on every request, and it is a fraction of moka's cost per read (no
    /// read log, no clock); the age is checked on read.
    identities: Arc<Identities>,
    /// The passkey relying party, when [`AccountsConfig::passkey_origin`] allows one.
    webauthn: Option<Arc<webauthn_rs::prelude::Webauthn>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("backend", &self.inner.db.backend())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// The service over this database, ending sessions through `engine`.
    ///
    /// It registers itself as the engine's [`UserDirectory`]: a session signed in for a user who
    /// is (by then) inactive or deleted is undone when it is written, and on PostgreSQL the
    /// engine's eviction listener tells it of users changed on other nodes.
    pub fn new(db: Database, engine: SessionEngine, config: AccountsConfig) -> Self {
        let permits = config
            .max_concurrent_hashes
            .clamp(1, Semaphore::MAX_PERMITS);
        let identities = Arc::new(Identities {
            cache: quick_cache::sync::Cache::new(IDENTITY_CACHE_CAPACITY),
            generation: std::sync::atomic::AtomicU64::new(0),
        });
        engine.set_user_directory(Arc::new(Directory {
            db: db.clone(),
            identities: identities.clone(),
        }));
        let webauthn = config
            .passkey_origin
            .as_deref()
            .and_then(|origin| passkeys::relying_party(origin, &config.totp_issuer))
            .map(Arc::new);
        Self {
            inner: Arc::new(Inner {
                webauthn,
                db,
                engine,
                config,
                hashing: Semaphore::new(permits),
                argon2_operations: AtomicU64::new(0),
                throttle_key: OnceCell::new(),
                identities,
            }),
        }
    }

    /// Whether identities may be answered from memory: only while the session cache is serving
    /// too. With PostgreSQL that means its node is hearing the changes other nodes publish; the
    /// `db` backend caches nothing, identities included.
    fn remembers_identities(&self) -> bool {
        self.inner
            .engine
            .cache()
            .is_some_and(|cache| cache.is_caching())
    }

    /// The settings.
    pub fn config(&self) -> &AccountsConfig {
        &self.inner.config
    }

    /// The session engine this service ends sessions through.
    pub fn engine(&self) -> &SessionEngine {
        &self.inner.engine
    }

    /// What of a client address this service may write (`IP_RETENTION`, the engine's
    /// [`SessionConfig::ip_retention`](crate::sessions::SessionConfig::ip_retention)).
    pub(crate) fn kept_ip(&self, ip: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
        self.engine().config().ip_retention.keep(ip)
    }

    fn db(&self) -> &Database {
        &self.inner.db
    }

    async fn hashing_permit(&self) -> Result<SemaphorePermit<'_>, AccountError> {
        self.inner
            .hashing
            .acquire()
            .await
            .map_err(|_| AccountError::internal("the password hashing semaphore is closed"))
    }

    /// How many argon2 hashes and verifications this service has computed. Every answer about a
    /// password or a new username costs one, refusals included: tests read this to check that a
    /// refusal was not given before that work (rather than timing it).
    pub fn argon2_operations(&self) -> u64 {
        self.inner.argon2_operations.load(Ordering::Relaxed)
    }

    async fn hash(&self, password: &str) -> Result<String, AccountError> {
        self.inner.argon2_operations.fetch_add(1, Ordering::Relaxed);
        hash_password(password).await
    }

    async fn verify(&self, password: &str, hash: &str) -> Result<bool, AccountError> {
        self.inner.argon2_operations.fetch_add(1, Ordering::Relaxed);
        verify_password(password, hash).await
    }

    /// The subject an account's failures are counted by: a keyed hash of its folded username.
    async fn account_subject(&self, username_key: &str) -> Result<String, AccountError> {
        let key = self
            .inner
            .throttle_key
            .get_or_try_init(|| keys::throttle_key(self.db()))
            .await?;
        keys::account_subject(key, username_key)
    }

    async fn credentials(&self, user_id: i64) -> Result<CredentialRow, AccountError> {
        let row: Option<CredentialRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = $1"
        ))
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        row.ok_or(AccountError::UserNotFound)
    }

    /// Checks a signed-in user's current password before a sensitive change (their email address,
    /// say): [`AccountRefusal::WrongCurrentPassword`] when it is wrong, counted toward the
    /// account's throttle as [`Accounts::change_password`] counts it, so a stolen session cannot
    /// be used to guess it.
    pub async fn confirm_password(&self, user_id: i64, current: &str) -> Result<(), AccountError> {
        let row = self.credentials(user_id).await?;
        let (_, permit) = self.check_current_password(&row, current).await?;
        drop(permit);
        Ok(())
    }

    /// The current password against the stored hash, under the account's throttle; on success,
    /// the throttle subjects (to clear) and the hashing permit (for more hashing work).
    async fn check_current_password(
        &self,
        row: &CredentialRow,
        current: &str,
    ) -> Result<([(Kind, String); 1], tokio::sync::SemaphorePermit<'_>), AccountError> {
        if current.is_empty() || validate::too_long(current, MAX_PASSWORD_CHARS) {
            return Err(AccountRefusal::WrongCurrentPassword.into());
        }
        let account = self
            .account_subject(&username_key(&row.user.username))
            .await?;
        let subjects = [(Kind::Account, account)];
        self.refuse_if_locked(&subjects).await?;
        let permit = self.hashing_permit().await?;
        self.refuse_if_locked(&subjects).await?;
        if !self.verify(current, &row.password_hash).await? {
            drop(permit);
            self.record_failure(&subjects).await?;
            return Err(AccountRefusal::WrongCurrentPassword.into());
        }
        Ok((subjects, permit))
    }

    /// Changes a user's own password, given the current one.
    ///
    /// A wrong current password gives [`AccountRefusal::WrongCurrentPassword`], writes nothing but a
    /// throttling count, and counts toward the account's throttle (so a stolen session cannot be used
    /// to guess the password). Other sessions are left alone: the caller ends them with
    /// [`SessionEngine::revoke_others`] if it wishes. The change is recorded in the user's
    /// security activity.
    pub async fn change_password(
        &self,
        user_id: i64,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let row = self.credentials(user_id).await?;
        validate_new_password(
            &row.user.username,
            new,
            self.inner.config.min_password_chars,
        )?;
        let (subjects, permit) = self.check_current_password(&row, current).await?;
        let hash = self.hash(new).await?;
        drop(permit);
        let updated = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            // Only over the hash that was checked: a change made meanwhile is not overwritten.
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
            )
            .bind(&hash)
            .bind(user_id)
            .bind(&row.password_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let [(kind, subject)] = &subjects;
            sqlx::query(throttle::CLEAR)
                .bind(kind.as_str())
                .bind(subject.as_str())
                .execute(&mut *tx)
                .await?;
            if updated == 1 {
                let event = alerts::NewEvent::of(user_id, SecurityEventKind::PasswordChanged);
                alerts::record_event!(&mut *tx, &event, to_millis(now()))?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(updated)
        })?;
        if updated != 1 {
            return Err(AccountError::Refused(AccountRefusal::WrongCurrentPassword));
        }
        tracing::info!(user_id, "password changed");
        Ok(())
    }

    /// Sets a user's password without the current one (staff, the command line), checked like a
    /// sign-up's. As after a reset, every session of the user ends (database and cache; heard as
    /// [`EndCause::PasswordChanged`]), their unused reset tokens stop working, and the change is
    /// recorded in their security activity; returns how many sessions ended.
    pub async fn set_password(&self, user_id: i64, new: &str) -> Result<usize, AccountError> {
        let row = self.credentials(user_id).await?;
        validate_new_password(
            &row.user.username,
            new,
            self.inner.config.min_password_chars,
        )?;
        let hash = self.hash_new_password(new).await?;
        let ended = self
            .replace_password(user_id, &hash, None, SecurityEventKind::PasswordSetByStaff)
            .await?;
        tracing::info!(user_id, sessions_ended = ended, "password set");
        Ok(ended)
    }

    /// One user by id.
    pub async fn user(&self, user_id: i64) -> Result<Option<User>, AccountError> {
        let row: Option<UserRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        ))
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(UserRow::into_user))
    }

    /// One user by username, ignoring case (`None` also for a name no user could have).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, AccountError> {
        let Ok(username) = validate_username(username) else {
            return Ok(None);
        };
        let row: Option<UserRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"
        ))
        .bind(username_key(username))
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(UserRow::into_user))
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<u64, AccountError> {
        let (count,): (i64,) = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT COUNT(*) FROM users"
        )
        .fetch_one(pool)
        .await)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Whether any user exists (to offer creating the first staff user).
    pub async fn has_users(&self) -> Result<bool, AccountError> {
        let any: Option<(i64,)> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT id FROM users LIMIT 1"
        )
        .fetch_optional(pool)
        .await)?;
        Ok(any.is_some())
    }

    /// Users by username (ignoring case), with their active session counts, for staff.
    ///
    /// `search` keeps users whose username or email contains it, ignoring case; `limit` is capped
    /// at [`MAX_PAGE_SIZE`].
    pub async fn list_users(
        &self,
        search: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<UserPage, AccountError> {
        let pattern = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", escape_like(&validate::fold(s))));
        let now = to_millis(now());
        let limit = i64::from(limit.min(MAX_PAGE_SIZE));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (rows, total): (Vec<SummaryRow>, i64) = with_pool!(self.db(), |pool| {
            let mut page = QueryBuilder::new(format!(
                "SELECT {USER_COLUMNS}, (SELECT COUNT(*) FROM sessions \
                 WHERE sessions.user_id = users.id AND sessions.expires_at > "
            ));
            page.push_bind(now).push(") AS active_sessions FROM users");
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM users");
            if let Some(pattern) = &pattern {
                for builder in [&mut page, &mut count] {
                    builder
                        .push(" WHERE username_key LIKE ")
                        .push_bind(pattern.as_str())
                        .push(" ESCAPE '\\' OR LOWER(email) LIKE ")
                        .push_bind(pattern.as_str())
                        .push(" ESCAPE '\\'");
                }
            }
            page.push(" ORDER BY username_key, id LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
            let rows = page.build_query_as().fetch_all(pool).await?;
            let (total,): (i64,) = count.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((rows, total))
        })?;
        Ok(UserPage {
            users: rows
                .into_iter()
                .map(|row| UserSummary {
                    active_sessions: u64::try_from(row.active_sessions).unwrap_or(0),
                    user: row.user.into_user(),
                })
                .collect(),
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Activates or deactivates a user. Deactivating ends every session of theirs (database and
    /// cache) and returns how many. Repeating the call is harmless: if ending the sessions fails, the
    /// user is already inactive (cannot sign in) and calling again ends them.
    pub async fn set_active(&self, user_id: i64, active: bool) -> Result<usize, AccountError> {
        let updated = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE users SET is_active = $1 WHERE id = $2"
        )
        .bind(active)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        self.inner.identities.forget(Some(&[user_id]));
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        if active {
            tracing::info!(user_id, "user activated");
            return Ok(0);
        }
        let ended = self
            .inner
            .engine
            .end_all_of(user_id, EndCause::Deactivated)
            .await?
            .len();
        tracing::info!(user_id, sessions_ended = ended, "user deactivated");
        Ok(ended)
    }

    /// Makes a user staff or not.
    pub async fn set_staff(&self, user_id: i64, is_staff: bool) -> Result<(), AccountError> {
        let updated = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE users SET is_staff = $1 WHERE id = $2"
        )
        .bind(is_staff)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        self.inner.identities.forget(Some(&[user_id]));
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        tracing::info!(user_id, is_staff, "staff status changed");
        Ok(())
    }

    /// Deletes a user and every session of theirs (database and cache); returns how many
    /// sessions ended.
    ///
    /// The user is deactivated first, then their sessions end (each heard as
    /// [`EndCause::UserDeleted`]), then the row goes. A sign-in racing with the delete is either
    /// ended with the others or, written after the deactivation, undone by the engine (it asks
    /// [`UserDirectory::may_sign_in`] once it has written a signed-in session). The database's
    /// own rule (the foreign key's cascade, on both databases) takes whatever row is left.
    pub async fn delete_user(&self, user_id: i64) -> Result<usize, AccountError> {
        let deactivated = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE users SET is_active = FALSE WHERE id = $1"
        )
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        self.inner.identities.forget(Some(&[user_id]));
        if deactivated == 0 {
            return Err(AccountError::UserNotFound);
        }
        let ended = self
            .inner
            .engine
            .end_all_of(user_id, EndCause::UserDeleted)
            .await?
            .len();
        // The history's user_id is a plain column (the engine's own table knows no users): the
        // person's ended sessions go with them here.
        with_pool!(self.db(), |pool| sqlx::query(
            "DELETE FROM session_history WHERE user_id = $1"
        )
        .bind(user_id)
        .execute(pool)
        .await
        .map(drop))?;
        with_pool!(self.db(), |pool| sqlx::query(
            "DELETE FROM users WHERE id = $1"
        )
        .bind(user_id)
        .execute(pool)
        .await
        .map(drop))?;
        self.inner.identities.forget(Some(&[user_id]));
        tracing::info!(user_id, sessions_ended = ended, "user deleted");
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }

    #[test]
    fn new_users_do_not_show_their_password() {
        let new = NewUser {
            username: "alice".into(),
            password: "correct horse".into(),
            ..NewUser::default()
        };
        let shown = format!("{new:?}");
        assert!(!shown.contains("correct horse") && shown.contains("***"));
    }
}
