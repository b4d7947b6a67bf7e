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
//!
//! [`Accounts`] is the service the pages and the command line call.

mod error;
mod keys;
mod password;
mod throttle;
mod validate;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

pub use error::AccountError;
pub use password::{
    hash_password, needs_rehash, validate_new_password, verify_password, ARGON2_M_COST_KIB,
    ARGON2_P_COST, ARGON2_T_COST, DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS, PARAMS,
};
pub use throttle::{ip_subject, SignUpLimits, ThrottleLimits};
pub use validate::{
    username_key, validate_email, validate_username, MAX_EMAIL_CHARS, MAX_USERNAME_CHARS,
};

use crate::clock::{from_millis, now, to_millis};
use crate::db::{escape_like, is_unique_violation, Database};
use crate::metrics::SignInOutcome;
use crate::sessions::{SessionEngine, SessionToken, StoreError, UserDirectory};
use crate::with_pool;
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
    /// Throttle of failed sign-ins per device cookie (default [`ThrottleLimits::per_device`]).
    pub device_throttle: ThrottleLimits,
    /// Throttle of failed sign-ins per client address (default [`ThrottleLimits::per_ip`]).
    pub ip_throttle: ThrottleLimits,
    /// Self-service sign-ups per client address and in all (default [`SignUpLimits::default`]).
    pub signup_limits: SignUpLimits,
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
            device_throttle: ThrottleLimits::per_device(),
            ip_throttle: ThrottleLimits::per_ip(),
            signup_limits: SignUpLimits::default(),
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

/// A successful [`Accounts::sign_in`].
#[derive(Debug)]
pub struct SignedIn {
    /// The user signed in.
    pub user: User,
    /// The browser's new device cookie for this account: give it back as a long-lived HttpOnly
    /// cookie (see [`DEVICE_LIFETIME`]). The one it presented, if any, no longer counts.
    pub device_token: DeviceToken,
}

/// Who a new user's staff flag comes from.
#[derive(Debug, Clone, Copy)]
enum Staff {
    /// The caller's choice (staff and the command line), or `false` for self-service.
    Given(bool),
    /// Staff exactly when no user exists yet; once one does, refused unless `open`.
    FirstOrOpen { open: bool },
}

/// Binds: username, key, email, password hash, created_at, is_staff.
const INSERT_USER: &str = "\
    INSERT INTO users (username, username_key, email, password_hash, is_staff, is_active, created_at) \
    VALUES ($1, $2, $3, $4, $6, TRUE, $5) RETURNING id, is_staff";

/// Binds as [`INSERT_USER`], then whether sign-up is open instead of the staff flag: the user is
/// staff when there is no other, and is not inserted at all when there is one and sign-up is closed.
const INSERT_FIRST_OR_OPEN: &str = "\
    INSERT INTO users (username, username_key, email, password_hash, is_staff, is_active, created_at) \
    SELECT $1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users), TRUE, $5 \
    WHERE $6 OR NOT EXISTS (SELECT 1 FROM users) \
    RETURNING id, is_staff";

/// The PostgreSQL advisory lock sign-ups that may make the first account queue on ("cs-first").
const FIRST_ACCOUNT_LOCK: i64 = 0x6373_2d66_6972_7374;

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
    /// Argon2 hashes and verifications computed: see [`Accounts::argon2_operations`].
    argon2_operations: AtomicU64,
    /// The key of the usernames' hashes in `login_attempts`, read from the database on first use.
    throttle_key: OnceCell<[u8; 32]>,
    /// Identities by user id, each with when it goes stale ([`IDENTITY_CACHE_TTL`] after it was
    /// read): [`Accounts::identity`]'s memory. A quick_cache rather than moka: forward
    /// authentication reads it on every request, and it is a fraction of moka's cost per read (no
    /// read log, no clock); the age is checked on read.
    identities: Arc<Identities>,
}

/// The identity cache, and a generation bumped by every forgetting: a read of the database that
/// began before a user was changed does not put the old identity back afterwards (the same guard
/// as the session cache's).
struct Identities {
    cache: quick_cache::sync::Cache<i64, (Arc<Identity>, Instant)>,
    generation: std::sync::atomic::AtomicU64,
}

impl Identities {
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets these users (`None`: everyone); any read under way keeps nothing.
    fn forget(&self, user_ids: Option<&[i64]>) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match user_ids {
            Some(ids) => {
                for id in ids {
                    self.cache.remove(id);
                }
            }
            None => self.cache.clear(),
        }
    }

    /// Keeps an identity read when the generation was `generation`, unless a user was forgotten
    /// since (it may be this one, read before the change).
    fn keep(&self, identity: Arc<Identity>, generation: u64) {
        if self.generation() != generation {
            return;
        }
        let id = identity.id;
        self.cache
            .insert(id, (identity, Instant::now() + IDENTITY_CACHE_TTL));
        // A forgetting that began after the check above has removed it or will; one that began
        // before it is caught here.
        if self.generation() != generation {
            self.cache.remove(&id);
        }
    }
}

/// What the session engine asks of accounts (see [`UserDirectory`]): registered by
/// [`Accounts::new`]. Holds the database and the identity cache, not the service, so the engine
/// and the service do not keep each other alive.
struct Directory {
    db: Database,
    identities: Arc<Identities>,
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
        self.identities.forget(user_ids);
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
        let identities = Arc::new(Identities {
            cache: quick_cache::sync::Cache::new(IDENTITY_CACHE_CAPACITY),
            generation: std::sync::atomic::AtomicU64::new(0),
        });
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

    /// Checks a username, email address and password as [`Accounts::create_user`] would, without
    /// writing anything (for a form to report every problem before hashing).
    pub fn validate_new_user(&self, new: &NewUser) -> Result<(), AccountError> {
        self.checked_new_user(new).map(drop)
    }

    /// The trimmed username and email address (empty for none) of a valid new user.
    fn checked_new_user<'a>(&self, new: &'a NewUser) -> Result<(&'a str, &'a str), AccountError> {
        let username = validate_username(&new.username)?;
        let email = validate_email(new.email.as_deref())?.unwrap_or_default();
        validate_new_password(
            username,
            &new.password,
            self.inner.config.min_password_chars,
        )?;
        Ok((username, email))
    }

    /// Creates a user (for staff and the command line: works whether or not sign-up is open).
    ///
    /// Errors: the validation errors of usernames, emails and passwords, and
    /// [`AccountError::UsernameTaken`] when another user has the same username ignoring case — only
    /// after hashing the password, as for a new account, so that how long the answer takes does not
    /// tell a taken username apart.
    pub async fn create_user(&self, new: NewUser) -> Result<User, AccountError> {
        let (username, email) = self.checked_new_user(&new)?;
        let hash = self.hash_new_password(&new.password).await?;
        self.insert_user(username, email, &hash, Staff::Given(new.is_staff))
            .await
    }

    async fn hash_new_password(&self, password: &str) -> Result<String, AccountError> {
        let _permit = self.hashing_permit().await?;
        self.hash(password).await
    }

    /// Inserts a user whose password is hashed already. The unique index on `username_key` is what
    /// finds a taken username: there is no earlier check that would answer sooner.
    async fn insert_user(
        &self,
        username: &str,
        email: &str,
        hash: &str,
        staff: Staff,
    ) -> Result<User, AccountError> {
        let key = username_key(username);
        let created_at = now();
        let (sql, flag) = match staff {
            Staff::Given(is_staff) => (INSERT_USER, is_staff),
            Staff::FirstOrOpen { open } => (INSERT_FIRST_OR_OPEN, open),
        };
        // SQLite runs a writing statement under the database's write lock from its start, so
        // INSERT_FIRST_OR_OPEN reads and inserts atomically there. PostgreSQL reads a snapshot:
        // there, sign-ups that may make the first account queue on a lock of their own, and each
        // sees what the one before it committed.
        let queue = matches!(staff, Staff::FirstOrOpen { .. })
            && self.db().backend() == crate::Backend::Postgres;
        // An async block, so that `?` stops there: a unique violation is an answer, not a failure.
        let inserted: Result<Option<(i64, bool)>, sqlx::Error> =
            with_pool!(self.db(), |pool| async {
                let mut tx = pool.begin().await?;
                if queue {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(FIRST_ACCOUNT_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query_as(sql)
                    .bind(username)
                    .bind(&key)
                    .bind(email)
                    .bind(hash)
                    .bind(to_millis(created_at))
                    .bind(flag)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row)
            }
            .await);
        let (id, is_staff) = match inserted {
            Ok(Some(row)) => row,
            // Closed, and another account was first.
            Ok(None) => return Err(AccountError::SignUpClosed),
            Err(e) if is_unique_violation(&e) => return Err(AccountError::UsernameTaken),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user_id = id, is_staff, "user created");
        Ok(User {
            id,
            username: username.to_owned(),
            email: (!email.is_empty()).then(|| email.to_owned()),
            is_staff,
            is_active: true,
            created_at,
            last_login_at: None,
        })
    }

    /// Self-service sign-up: a non-staff user, refused with [`AccountError::SignUpClosed`] unless
    /// [`AccountsConfig::signup_open`], and with [`AccountError::Throttled`] beyond
    /// [`AccountsConfig::signup_limits`] (every attempt with valid input counts, a taken username
    /// too). A taken username is answered after the same password hash as a new account.
    pub async fn sign_up(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        if !self.inner.config.signup_open {
            return Err(AccountError::SignUpClosed);
        }
        self.self_service_sign_up(username, email, password, client_ip, Staff::Given(false))
            .await
    }

    /// [`Accounts::sign_up`], except that while no user exists the account is made staff, whether or
    /// not sign-up is open: the sign-up page's first run. However many arrive at once, exactly one
    /// becomes that first staff account (decided by one statement in the database); with sign-up
    /// closed the others get [`AccountError::SignUpClosed`], with it open they become ordinary
    /// users.
    pub async fn sign_up_first_or_open(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let open = self.inner.config.signup_open;
        // Refused at once when there is no first account to make; the insert decides the races.
        if !open && self.has_users().await? {
            return Err(AccountError::SignUpClosed);
        }
        self.self_service_sign_up(
            username,
            email,
            password,
            client_ip,
            Staff::FirstOrOpen { open },
        )
        .await
    }

    async fn self_service_sign_up(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
        staff: Staff,
    ) -> Result<User, AccountError> {
        let new = NewUser {
            username: username.to_owned(),
            email: email.map(str::to_owned),
            password: password.to_owned(),
            is_staff: false,
        };
        let (username, email) = self.checked_new_user(&new)?;
        self.count_sign_up(client_ip).await?;
        let hash = self.hash_new_password(password).await?;
        self.insert_user(username, email, &hash, staff).await
    }

    /// Counts a sign-up for its client network, then for everyone; refuses it once either count is
    /// over its limit in the current window. A sign-up refused for its network is not counted for
    /// everyone, so one client cannot close sign-up for the rest.
    async fn count_sign_up(&self, client_ip: Option<IpAddr>) -> Result<(), AccountError> {
        let limits = &self.inner.config.signup_limits;
        let ip = client_ip.map(ip_subject);
        let counts = [
            (throttle::SIGN_UP_IP, ip.as_deref(), limits.per_ip),
            (throttle::SIGN_UP_ALL, Some("*"), limits.total),
        ];
        for (kind, subject, limit) in counts {
            let Some(subject) = subject.filter(|_| limit > 0) else {
                continue;
            };
            let now = to_millis(now());
            let (count, window_end): (i64, i64) =
                with_pool!(self.db(), |pool| sqlx::query_as(throttle::COUNT_SIGN_UP)
                    .bind(kind)
                    .bind(subject)
                    .bind(now)
                    .bind(now.saturating_add(millis(limits.window)))
                    .fetch_one(pool)
                    .await)?;
            if count > i64::from(limit) {
                let client = (kind == throttle::SIGN_UP_IP).then_some(subject);
                tracing::warn!(kind, client, count, "sign-ups throttled");
                let left = u64::try_from(window_end.saturating_sub(now)).unwrap_or(0);
                return Err(AccountError::Throttled {
                    retry_after: Duration::from_millis(left.max(1)),
                });
            }
        }
        Ok(())
    }

    /// Signs a user in: checks the password, records the time of the sign-in, and issues the
    /// browser a new device cookie value for this account ([`SignedIn::device_token`]).
    ///
    /// Unknown username, wrong password and inactive account all give
    /// [`AccountError::InvalidCredentials`] after the same work (one argon2 verification).
    ///
    /// `device_cookie` is the device cookie the browser presented, if any. When it is one this
    /// account issued (and not expired), failures are counted for that device, and only the device's
    /// own lock and the address's lock refuse it: the owner's known browser gets in while others'
    /// failures lock the account. Otherwise failures are counted for the account, for the account
    /// from this client address, and for the address. While any count that applies is locked, the
    /// answer is [`AccountError::Throttled`] without checking the password. A success forgets the
    /// counts of the account it was checked against (the device's, or the account's and the
    /// address's on it), voids the presented device cookie, and upgrades a hash made with older
    /// parameters.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, AccountError> {
        let result = self
            .check_credentials(username, password, client_ip, device_cookie)
            .await;
        // Malformed input and database failures are not attempts, so they are not counted.
        let outcome = match &result {
            Ok(_) => Some(SignInOutcome::Success),
            Err(AccountError::InvalidCredentials) => Some(SignInOutcome::Failure),
            Err(AccountError::Throttled { .. }) => Some(SignInOutcome::Throttled),
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            crate::metrics::sign_in(outcome);
        }
        result
    }

    /// [`Accounts::sign_in`] for a client that keeps no device cookie (the command line, scripts):
    /// throttled as a browser without one.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        self.sign_in(username, password, client_ip, None)
            .await
            .map(|signed_in| signed_in.user)
    }

    async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, AccountError> {
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
        let device = match device_cookie.and_then(DeviceToken::hash_of) {
            Some(hash) => self.known_device(&key, &hash).await?,
            None => None,
        };
        let subjects = self.sign_in_subjects(&key, client_ip, device).await?;
        // Refuse at once while locked; then again once a hashing slot is ours, since attempts queued
        // behind the slot may have locked the account meanwhile.
        self.refuse_if_locked(&subjects).await?;
        let permit = self.hashing_permit().await?;
        self.refuse_if_locked(&subjects).await?;

        let row: Option<CredentialRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1"
        ))
        .bind(&key)
        .fetch_optional(pool)
        .await)?;
        let hash = row
            .as_ref()
            .map_or(password::DUMMY_HASH, |row| row.password_hash.as_str());
        let matches = self.verify(password, hash).await?;
        let row = match row {
            Some(row) if matches && row.user.is_active => row,
            _ => {
                drop(permit);
                self.record_failure(&subjects).await?;
                return Err(AccountError::InvalidCredentials);
            }
        };
        let rehash = if needs_rehash(&row.password_hash) {
            Some(self.hash(password).await?)
        } else {
            None
        };
        drop(permit);

        let signed_in_at = now();
        let device_token = DeviceToken::generate();
        let device_expires_at = to_millis(signed_in_at).saturating_add(millis(DEVICE_LIFETIME));
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
            // The per-address count stays: it counts failures on every account.
            for (kind, subject) in subjects.iter().filter(|(kind, _)| *kind != Kind::Ip) {
                sqlx::query(throttle::CLEAR)
                    .bind(kind.as_str())
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(device) = device {
                sqlx::query("DELETE FROM known_devices WHERE id = $1")
                    .bind(device)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO known_devices (token_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(device_token.hash().as_bytes().as_slice())
            .bind(row.user.id)
            .bind(to_millis(signed_in_at))
            .bind(device_expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM known_devices WHERE user_id = $1 AND id NOT IN \
                 (SELECT id FROM known_devices WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(row.user.id)
            .bind(MAX_DEVICES_PER_USER)
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
        Ok(SignedIn { user, device_token })
    }

    /// The id of the known device with this token hash, when it belongs to the account with this
    /// folded username and has not expired.
    async fn known_device(
        &self,
        username_key: &str,
        token_hash: &crate::sessions::TokenHash,
    ) -> Result<Option<i64>, AccountError> {
        let device: Option<(i64,)> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT known_devices.id FROM known_devices \
             JOIN users ON users.id = known_devices.user_id \
             WHERE known_devices.token_hash = $1 AND users.username_key = $2 \
               AND known_devices.expires_at > $3"
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(username_key)
        .bind(to_millis(now()))
        .fetch_optional(pool)
        .await)?;
        Ok(device.map(|(id,)| id))
    }

    /// What a sign-in's failures are counted by (see [`Accounts::sign_in`]).
    async fn sign_in_subjects(
        &self,
        username_key: &str,
        client_ip: Option<IpAddr>,
        device: Option<i64>,
    ) -> Result<Vec<(Kind, String)>, AccountError> {
        let ip = client_ip.map(ip_subject);
        let mut subjects = match device {
            Some(device) => vec![(Kind::Device, device.to_string())],
            None => {
                let account = self.account_subject(username_key).await?;
                let mut subjects = Vec::with_capacity(3);
                if let Some(ip) = &ip {
                    subjects.push((Kind::AccountIp, account_ip_subject(&account, ip)));
                }
                subjects.push((Kind::Account, account));
                subjects
            }
        };
        subjects.extend(ip.map(|ip| (Kind::Ip, ip)));
        Ok(subjects)
    }

    /// How long sign-ins for this username from this address, by a browser without the account's
    /// device cookie, are still refused (`None`: not at all).
    pub async fn throttle_delay(
        &self,
        username: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<Duration>, AccountError> {
        let subjects = self
            .sign_in_subjects(&username_key(username), client_ip, None)
            .await?;
        self.lock_remaining(&subjects).await
    }

    /// Forgets the failed sign-ins of this username by browsers without a device cookie, from every
    /// address (for staff helping someone locked out).
    pub async fn reset_throttle(&self, username: &str) -> Result<(), AccountError> {
        let account = self.account_subject(&username_key(username)).await?;
        let prefix = account_ip_subject(&account, "");
        with_pool!(self.db(), |pool| sqlx::query(throttle::CLEAR_ACCOUNT)
            .bind(&account)
            .bind(&prefix)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Deletes the throttling counts that are forgotten anyway, and the device cookies that have
    /// expired (run it with the session sweeper); returns how many counts.
    pub async fn clear_stale_attempts(&self) -> Result<u64, AccountError> {
        let now = to_millis(now());
        let done = with_pool!(self.db(), |pool| {
            sqlx::query("DELETE FROM known_devices WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(throttle::SWEEP)
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    async fn refuse_if_locked(&self, subjects: &[(Kind, String)]) -> Result<(), AccountError> {
        match self.lock_remaining(subjects).await? {
            Some(retry_after) => Err(AccountError::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    fn limits(&self, kind: Kind) -> &ThrottleLimits {
        let config = &self.inner.config;
        match kind {
            Kind::Account => &config.account_throttle,
            Kind::AccountIp => &config.account_ip_throttle,
            Kind::Device => &config.device_throttle,
            Kind::Ip => &config.ip_throttle,
        }
    }

    async fn lock_remaining(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<Option<Duration>, AccountError> {
        if subjects.is_empty() {
            return Ok(None);
        }
        let now = to_millis(now());
        let locks: Vec<(String, i64)> = with_pool!(self.db(), |pool| {
            let mut query = QueryBuilder::new(
                "SELECT kind, locked_until FROM login_attempts WHERE locked_until > ",
            );
            query.push_bind(now).push(" AND (");
            for (n, (kind, subject)) in subjects.iter().enumerate() {
                if n > 0 {
                    query.push(" OR ");
                }
                query
                    .push("(kind = ")
                    .push_bind(kind.as_str())
                    .push(" AND subject = ")
                    .push_bind(subject.as_str())
                    .push(")");
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(locks
            .into_iter()
            .filter_map(|(kind, locked_until)| {
                let limits = self.limits(Kind::parse(&kind)?);
                let left = u64::try_from(locked_until.saturating_sub(now)).ok()?;
                // A lock never outlasts the configured longest delay, even one written under
                // older, stricter settings.
                limits
                    .is_enabled()
                    .then(|| Duration::from_millis(left).min(limits.max_delay))
            })
            .max())
    }

    /// Counts a failure for every subject whose throttle is on, in one transaction.
    async fn record_failure(&self, subjects: &[(Kind, String)]) -> Result<(), AccountError> {
        let subjects: Vec<&(Kind, String)> = subjects
            .iter()
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
                    .bind(subject.as_str())
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
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?;
                if let Some(delay) = delay {
                    // Only the address is logged: no username, not even hashed.
                    let client = (*kind == Kind::Ip).then_some(subject.as_str());
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
            return Err(AccountError::WrongCurrentPassword);
        }
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
        let hash = self.hash_new_password(new).await?;
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
        let (identity, stale_at) = self.inner.identities.cache.get(&user_id)?;
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
        let generation = self.inner.identities.generation();
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
            self.inner.identities.keep(identity.clone(), generation);
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
        self.inner.identities.forget(Some(&[user_id]));
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
        self.inner.identities.forget(Some(&[user_id]));
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
