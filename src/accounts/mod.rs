//! Accounts: sign-up, sign-in, password changes and staff users, safe by default.
//!
//! - Usernames are unique by a folded key (NFKC + Unicode lower case, see [`username_key`]), so
//!   `"Åsa"` and `"åsa"` are one account.
//! - Passwords are hashed with argon2id (OWASP parameters, see [`PARAMS`]) on the blocking thread
//!   pool, at most [`AccountsConfig::max_concurrent_hashes`] at a time. Input longer than
//!   [`MAX_PASSWORD_CHARS`] is refused before any hashing.
//! - Signing in with an unknown username costs one verification against a dummy hash, and unknown
//!   username, wrong password and inactive account all give [`AccountError::InvalidCredentials`]:
//!   nothing tells which accounts exist.
//! - Failed sign-ins are throttled per account and per client address in the database (see
//!   [`ThrottleLimits`]); every lock ends by itself.
//! - Deactivating or deleting a user ends their sessions through the [`SessionEngine`], so the
//!   `cached_db` cache forgets them too.
//!
//! [`Accounts`] is the service the pages and the command line call.

mod error;
mod password;
mod throttle;
mod validate;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, SemaphorePermit};

pub use error::AccountError;
pub use password::{
    hash_password, needs_rehash, validate_new_password, verify_password, ARGON2_M_COST_KIB,
    ARGON2_P_COST, ARGON2_T_COST, DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS, PARAMS,
};
pub use throttle::{ip_subject, ThrottleLimits};
pub use validate::{
    username_key, validate_email, validate_username, MAX_EMAIL_CHARS, MAX_USERNAME_CHARS,
};

use crate::db::{escape_like, is_unique_violation, Database};
use crate::sessions::{from_millis, now, to_millis, SessionEngine, StoreError, UserDirectory};
use crate::with_pool;
use throttle::{millis, Kind};

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
    /// Throttle of failed sign-ins per account (default [`ThrottleLimits::per_account`]).
    pub account_throttle: ThrottleLimits,
    /// Throttle of failed sign-ins per client address (default [`ThrottleLimits::per_ip`]).
    pub ip_throttle: ThrottleLimits,
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
            ip_throttle: ThrottleLimits::per_ip(),
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
}

/// What creating a user takes.
#[derive(Clone, Default)]
pub struct NewUser {
    /// 1 to [`MAX_USERNAME_CHARS`] characters after trimming; unique ignoring case.
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

const USER_COLUMNS: &str = "id, username, email, is_staff, is_active, created_at, last_login_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    created_at: i64,
    last_login_at: Option<i64>,
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
    /// Identities by user id, each with when it goes stale ([`IDENTITY_CACHE_TTL`] after it was
    /// read): [`Accounts::identity`]'s memory. A quick_cache rather than moka: forward
    /// authentication reads it on every request, and it is a fraction of moka's cost per read (no
    /// read log, no clock); the age is checked on read.
    identities: Arc<IdentityCache>,
}

type IdentityCache = quick_cache::sync::Cache<i64, (Arc<Identity>, Instant)>;

/// What the session engine asks of accounts (see [`UserDirectory`]): registered by
/// [`Accounts::new`]. Holds the database and the identity cache, not the service, so the engine
/// and the service do not keep each other alive.
struct Directory {
    db: Database,
    identities: Arc<IdentityCache>,
}

#[async_trait::async_trait]
impl UserDirectory for Directory {
    async fn may_sign_in(&self, user_id: i64) -> Result<bool, StoreError> {
        let active: Option<(bool,)> = with_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT is_active FROM users WHERE id = $1"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(active.is_some_and(|(active,)| active))
    }

    fn forget(&self, user_ids: Option<&[i64]>) {
        match user_ids {
            Some(ids) => {
                for id in ids {
                    self.identities.remove(id);
                }
            }
            None => self.identities.clear(),
        }
    }
}

/// How long [`Accounts::identity`] may answer from memory. Usernames and email addresses never
/// change once an account exists, and deactivating or deleting a user ends their sessions (on every
/// node), so a cached identity can only be behind on the staff flag, and by at most this long.
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(30);

/// The most identities [`Accounts::identity`] keeps in memory.
const IDENTITY_CACHE_CAPACITY: usize = 100_000;

/// Who an active user is, as forward authentication tells other services: cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Database id.
    pub id: i64,
    /// The username as chosen.
    pub username: String,
    /// The email address, if one was given.
    pub email: Option<String>,
    /// Whether the user is staff.
    pub is_staff: bool,
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
        let identities = Arc::new(quick_cache::sync::Cache::new(IDENTITY_CACHE_CAPACITY));
        engine.set_user_directory(Arc::new(Directory {
            db: db.clone(),
            identities: identities.clone(),
        }));
        Self {
            inner: Arc::new(Inner {
                db,
                engine,
                config,
                hashing: Semaphore::new(permits),
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

    /// Checks a username, email address and password as [`Accounts::create_user`] would, without
    /// writing anything (for a form to report every problem before hashing).
    pub fn validate_new_user(&self, new: &NewUser) -> Result<(), AccountError> {
        let username = validate_username(&new.username)?;
        validate_email(new.email.as_deref())?;
        validate_new_password(
            username,
            &new.password,
            self.inner.config.min_password_chars,
        )
    }

    /// Creates a user (for staff and the command line: works whether or not sign-up is open).
    ///
    /// Errors: the validation errors of usernames, emails and passwords, and
    /// [`AccountError::UsernameTaken`] when another user has the same username ignoring case.
    pub async fn create_user(&self, new: NewUser) -> Result<User, AccountError> {
        let username = validate_username(&new.username)?;
        let email = validate_email(new.email.as_deref())?.unwrap_or_default();
        validate_new_password(
            username,
            &new.password,
            self.inner.config.min_password_chars,
        )?;
        let key = username_key(username);
        // Answer "taken" before spending a hash; the unique index still decides races.
        let taken: Option<(i64,)> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT id FROM users WHERE username_key = $1"
        )
        .bind(&key)
        .fetch_optional(pool)
        .await)?;
        if taken.is_some() {
            return Err(AccountError::UsernameTaken);
        }
        let hash = {
            let _permit = self.hashing_permit().await?;
            hash_password(&new.password).await?
        };
        let created_at = now();
        let inserted: Result<(i64,), sqlx::Error> = with_pool!(self.db(), |pool| {
            sqlx::query_as(
            "INSERT INTO users (username, username_key, email, password_hash, is_staff, is_active, \
             created_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6) RETURNING id"
        )
        .bind(username)
        .bind(&key)
        .bind(email)
        .bind(&hash)
        .bind(new.is_staff)
        .bind(to_millis(created_at))
        .fetch_one(pool)
        .await
        });
        let (id,) = match inserted {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e) => return Err(AccountError::UsernameTaken),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user_id = id, is_staff = new.is_staff, "user created");
        Ok(User {
            id,
            username: username.to_owned(),
            email: (!email.is_empty()).then(|| email.to_owned()),
            is_staff: new.is_staff,
            is_active: true,
            created_at,
            last_login_at: None,
        })
    }

    /// Self-service sign-up: a non-staff user, refused with [`AccountError::SignUpClosed`] unless
    /// [`AccountsConfig::signup_open`].
    pub async fn sign_up(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
    ) -> Result<User, AccountError> {
        if !self.inner.config.signup_open {
            return Err(AccountError::SignUpClosed);
        }
        self.create_user(NewUser {
            username: username.to_owned(),
            email: email.map(str::to_owned),
            password: password.to_owned(),
            is_staff: false,
        })
        .await
    }

    /// Signs a user in: checks the password and records the time of the sign-in.
    ///
    /// Unknown username, wrong password and inactive account all give
    /// [`AccountError::InvalidCredentials`] after the same work (one argon2 verification), and
    /// count as a failure for the account and for `client_ip`. While either is locked, the answer is
    /// [`AccountError::Throttled`] without checking the password. A success forgets the account's
    /// failures and upgrades a hash made with older parameters.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let result = self.check_credentials(username, password, client_ip).await;
        crate::metrics::sign_in(&result);
        result
    }

    async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let username = validate_username(username)?;
        if password.is_empty() {
            return Err(AccountError::PasswordRequired);
        }
        if validate::too_long(password, MAX_PASSWORD_CHARS) {
            return Err(AccountError::PasswordTooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        let key = username_key(username);
        let ip = client_ip.map(ip_subject);
        // Refuse at once while locked; then again once a hashing slot is ours, since attempts queued
        // behind the slot may have locked the account meanwhile.
        self.refuse_if_locked(Some(&key), ip.as_deref()).await?;
        let permit = self.hashing_permit().await?;
        self.refuse_if_locked(Some(&key), ip.as_deref()).await?;

        let row: Option<CredentialRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1"
        ))
        .bind(&key)
        .fetch_optional(pool)
        .await)?;
        let hash = row
            .as_ref()
            .map_or(password::DUMMY_HASH, |row| row.password_hash.as_str());
        let matches = verify_password(password, hash).await?;
        let row = match row {
            Some(row) if matches && row.user.is_active => row,
            _ => {
                drop(permit);
                self.record_failure(Some(&key), ip.as_deref()).await?;
                return Err(AccountError::InvalidCredentials);
            }
        };
        let rehash = if needs_rehash(&row.password_hash) {
            Some(hash_password(password).await?)
        } else {
            None
        };
        drop(permit);

        let signed_in_at = now();
        let updated = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let mut update = QueryBuilder::new("UPDATE users SET last_login_at = ");
            update.push_bind(to_millis(signed_in_at));
            if let Some(hash) = &rehash {
                update.push(", password_hash = ").push_bind(hash.as_str());
            }
            update
                .push(" WHERE id = ")
                .push_bind(row.user.id)
                .push(" AND is_active = TRUE");
            let updated = update.build().execute(&mut *tx).await?.rows_affected();
            sqlx::query(throttle::CLEAR)
                .bind(Kind::Account.as_str())
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            if updated == 1 {
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(updated)
        })?;
        if updated != 1 {
            // Deleted or deactivated between the check and now.
            return Err(AccountError::InvalidCredentials);
        }
        if rehash.is_some() {
            tracing::info!(user_id = row.user.id, "password hash upgraded");
        }
        let mut user = row.user.into_user();
        user.last_login_at = Some(signed_in_at);
        Ok(user)
    }

    /// How long sign-ins for this username, or from this address, are still refused (`None`: not
    /// at all).
    pub async fn throttle_delay(
        &self,
        username: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<Duration>, AccountError> {
        let key = username_key(username);
        let ip = client_ip.map(ip_subject);
        self.lock_remaining(Some(&key), ip.as_deref()).await
    }

    /// Forgets the failed sign-ins of this username (for staff helping someone locked out).
    pub async fn reset_throttle(&self, username: &str) -> Result<(), AccountError> {
        let key = username_key(username);
        with_pool!(self.db(), |pool| sqlx::query(throttle::CLEAR)
            .bind(Kind::Account.as_str())
            .bind(&key)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Deletes the throttling counts that are forgotten anyway (run it with the session sweeper);
    /// returns how many.
    pub async fn clear_stale_attempts(&self) -> Result<u64, AccountError> {
        let done = with_pool!(self.db(), |pool| sqlx::query(throttle::SWEEP)
            .bind(to_millis(now()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done)
    }

    async fn refuse_if_locked(
        &self,
        account_key: Option<&str>,
        ip: Option<&str>,
    ) -> Result<(), AccountError> {
        match self.lock_remaining(account_key, ip).await? {
            Some(retry_after) => Err(AccountError::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    fn limits(&self, kind: Kind) -> &ThrottleLimits {
        match kind {
            Kind::Account => &self.inner.config.account_throttle,
            Kind::Ip => &self.inner.config.ip_throttle,
        }
    }

    async fn lock_remaining(
        &self,
        account_key: Option<&str>,
        ip: Option<&str>,
    ) -> Result<Option<Duration>, AccountError> {
        let now = to_millis(now());
        let locks: Vec<(String, i64)> =
            with_pool!(self.db(), |pool| sqlx::query_as(throttle::LOCKS)
                .bind(account_key)
                .bind(ip)
                .bind(now)
                .fetch_all(pool)
                .await)?;
        Ok(locks
            .into_iter()
            .filter_map(|(kind, locked_until)| {
                let kind = if kind == Kind::Ip.as_str() {
                    Kind::Ip
                } else {
                    Kind::Account
                };
                let limits = self.limits(kind);
                let left = u64::try_from(locked_until.saturating_sub(now)).ok()?;
                // A lock never outlasts the configured longest delay, even one written under
                // older, stricter settings.
                limits
                    .is_enabled()
                    .then(|| Duration::from_millis(left).min(limits.max_delay))
            })
            .max())
    }

    /// Counts a failure for the account and the address, in one transaction.
    async fn record_failure(
        &self,
        account_key: Option<&str>,
        ip: Option<&str>,
    ) -> Result<(), AccountError> {
        let subjects: Vec<(Kind, &str)> = [(Kind::Account, account_key), (Kind::Ip, ip)]
            .into_iter()
            .filter_map(|(kind, subject)| Some((kind, subject?)))
            .filter(|(kind, _)| self.limits(*kind).is_enabled())
            .collect();
        if subjects.is_empty() {
            return Ok(());
        }
        let now = to_millis(now());
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for (kind, subject) in &subjects {
                let limits = self.limits(*kind);
                let window = millis(limits.window);
                let (failures,): (i64,) = sqlx::query_as(throttle::COUNT_FAILURE)
                    .bind(kind.as_str())
                    .bind(*subject)
                    .bind(now)
                    .bind(now.saturating_add(window))
                    .fetch_one(&mut *tx)
                    .await?;
                let delay = limits.delay_after(u64::try_from(failures).unwrap_or(0));
                let locked_until = delay.map_or(0, |delay| now.saturating_add(millis(delay)));
                let forget_at = locked_until.max(now).saturating_add(window);
                sqlx::query(throttle::SET_LOCK)
                    .bind(locked_until)
                    .bind(forget_at)
                    .bind(kind.as_str())
                    .bind(*subject)
                    .execute(&mut *tx)
                    .await?;
                if let Some(delay) = delay {
                    // The account key is not logged: people type passwords into the username field.
                    let client = (*kind == Kind::Ip).then_some(*subject);
                    tracing::warn!(
                        kind = kind.as_str(),
                        client,
                        failures,
                        delay_secs = delay.as_secs(),
                        "failed sign-ins throttled"
                    );
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
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

    /// Changes a user's own password, given the current one.
    ///
    /// A wrong current password gives [`AccountError::WrongCurrentPassword`], writes nothing but a
    /// throttling count, and counts toward the account's throttle (so a stolen session cannot be used
    /// to guess the password). Other sessions are left alone: the caller ends them with
    /// [`SessionEngine::revoke_others`] if it wishes.
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
        if current.is_empty() || validate::too_long(current, MAX_PASSWORD_CHARS) {
            return Err(AccountError::WrongCurrentPassword);
        }
        let key = username_key(&row.user.username);
        self.refuse_if_locked(Some(&key), None).await?;
        let permit = self.hashing_permit().await?;
        self.refuse_if_locked(Some(&key), None).await?;
        if !verify_password(current, &row.password_hash).await? {
            drop(permit);
            self.record_failure(Some(&key), None).await?;
            return Err(AccountError::WrongCurrentPassword);
        }
        let hash = hash_password(new).await?;
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
            sqlx::query(throttle::CLEAR)
                .bind(Kind::Account.as_str())
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            if updated == 1 {
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(updated)
        })?;
        if updated != 1 {
            return Err(AccountError::WrongCurrentPassword);
        }
        tracing::info!(user_id, "password changed");
        Ok(())
    }

    /// Sets a user's password without the current one (staff, the command line). Sessions are left
    /// alone; end them with [`SessionEngine::revoke_all`] if needed.
    pub async fn set_password(&self, user_id: i64, new: &str) -> Result<(), AccountError> {
        let row = self.credentials(user_id).await?;
        validate_new_password(
            &row.user.username,
            new,
            self.inner.config.min_password_chars,
        )?;
        let hash = {
            let _permit = self.hashing_permit().await?;
            hash_password(new).await?
        };
        let updated = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2"
        )
        .bind(&hash)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        tracing::info!(user_id, "password set");
        Ok(())
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

    /// [`Accounts::identity`] when memory can answer it, else `None` (ask that, then). Not async:
    /// a caller on a hot path keeps its future small by awaiting the database only when it must.
    pub fn cached_identity(&self, user_id: i64) -> Option<Arc<Identity>> {
        if !self.remembers_identities() {
            return None;
        }
        let (identity, stale_at) = self.inner.identities.get(&user_id)?;
        // A comparison of two instants, not `elapsed()`: no duration is worked out per request.
        (Instant::now() < stale_at).then_some(identity)
    }

    /// The identity of an active user, answered from memory for up to [`IDENTITY_CACHE_TTL`]:
    /// the question every request through a forward-authenticating proxy asks. `None` for a user
    /// who does not exist or is inactive (those are never cached).
    pub async fn identity(&self, user_id: i64) -> Result<Option<Arc<Identity>>, AccountError> {
        if let Some(identity) = self.cached_identity(user_id) {
            return Ok(Some(identity));
        }
        let Some(user) = self.user(user_id).await?.filter(|user| user.is_active) else {
            return Ok(None);
        };
        let identity = Arc::new(Identity {
            id: user.id,
            username: user.username,
            email: user.email,
            is_staff: user.is_staff,
        });
        if self.remembers_identities() {
            self.inner.identities.insert(
                user_id,
                (identity.clone(), Instant::now() + IDENTITY_CACHE_TTL),
            );
        }
        Ok(Some(identity))
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
        self.inner.identities.remove(&user_id);
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        if active {
            tracing::info!(user_id, "user activated");
            return Ok(0);
        }
        let ended = self.inner.engine.revoke_all(user_id).await?;
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
        self.inner.identities.remove(&user_id);
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        tracing::info!(user_id, is_staff, "staff status changed");
        Ok(())
    }

    /// Deletes a user and every session of theirs (database and cache, in one transaction through
    /// [`SessionEngine::delete_user`]); returns how many sessions ended.
    pub async fn delete_user(&self, user_id: i64) -> Result<usize, AccountError> {
        if self.user(user_id).await?.is_none() {
            return Err(AccountError::UserNotFound);
        }
        let ended = self.inner.engine.delete_user(user_id).await?;
        self.inner.identities.remove(&user_id);
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
