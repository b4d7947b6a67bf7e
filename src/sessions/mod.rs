//! The session engine: Django's `db` and `cached_db` session backends, made strict.
//!
//! - [`SessionStore`] is what a store must do (create, load, save, delete, delete expired);
//!   [`UserSessionStore`] what a store that keeps sessions by user can do besides (list and sign
//!   out a user's sessions). `DbStore` keeps sessions in SQLite or PostgreSQL, [`MemoryStore`] in
//!   memory, and [`CachedDbStore`] puts a moka cache in front of any store.
//! - [`SessionEngine`] owns the store and the settings, and offers what pages and admins need:
//!   list, revoke, sweep (staff search is the admin's, over the database).
//! - [`SessionLayer`] ties a session to each request through a cookie; handlers take a [`Session`].
//! - [`EvictionListener`] keeps a node's cache in step with the other nodes on one PostgreSQL
//!   database.

mod assurance;
mod cached_db;
mod client;
#[cfg(feature = "postgres")]
mod cluster;
#[cfg(sql)]
pub(crate) mod db_store;
mod events;
pub(crate) mod history;
mod layer;
mod memory;
mod record;
pub(crate) mod retention;
mod session;
mod store;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
#[cfg(sql)]
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use time::OffsetDateTime;

pub use assurance::{Aal, Assurance, AuthMethod};
pub use cached_db::{CacheSettings, CachedDbStore};
pub use client::{user_agent, ClientInfo, ProxyHeader};
#[cfg(feature = "postgres")]
pub use cluster::{Eviction, EvictionListener, EVICTION_CHANNEL};
#[cfg(sql)]
pub use db_store::DbStore;
pub use events::{EndCause, Ended, EndedBy, Ending, SessionEvent, SignedIn, EVENT_BUFFER};
pub use history::{EndedSession, SessionHistory};
pub use layer::{cookie_value, SessionLayer, SessionService};
pub use memory::MemoryStore;
// The time helpers live in `crate::clock` (below accounts and admin too); kept here for callers
// that found them in this module.
pub use crate::clock::{from_millis, now, to_millis};
pub use record::{
    ip_key, is_base64url, truncate_user_agent, Expiry, PublicId, SessionRecord, SessionToken,
    TokenHash, MAX_LABEL_CHARS, MAX_USER_AGENT_CHARS, PUBLIC_ID_LENGTH, TOKEN_LENGTH,
};
pub use retention::{
    ip_text, is_cut, parse_stored_ip, truncate_ip, truncated_text, AddressAging, IpRetention,
    IPV4_KEPT_BITS, IPV6_KEPT_BITS,
};
pub use session::{Session, SessionError};
pub use store::{Deleted, SessionStore, StoreError, UserSessionStore};

#[cfg(sql)]
use crate::db::Database;
#[cfg(feature = "geo")]
use crate::geo::GeoIp;
use crate::geo::Place;
use crate::metrics as counters;

/// Which backend keeps sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionBackend {
    /// The database only (Django's `db`).
    Db,
    /// The database with an in-process cache in front (Django's `cached_db`).
    #[default]
    CachedDb,
}

impl FromStr for SessionBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "db" => Ok(Self::Db),
            "cached_db" => Ok(Self::CachedDb),
            other => Err(format!(
                "unknown session backend {other:?}: use db or cached_db"
            )),
        }
    }
}

impl std::fmt::Display for SessionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Db => "db",
            Self::CachedDb => "cached_db",
        })
    }
}

/// Every setting of the engine, with documented defaults.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `db` or `cached_db` (default).
    pub backend: SessionBackend,
    /// Cookie name; default `__Host-session` when `secure`, else `session`.
    pub cookie_name: String,
    /// Mark the cookie `Secure` (always, not only behind an HTTPS proxy).
    pub secure: bool,
    /// A session unused this long expires (default 14 days, Django's `SESSION_COOKIE_AGE`).
    pub idle_timeout: Duration,
    /// No session lives longer than this from its creation, whatever its activity (default 30 days).
    pub absolute_lifetime: Duration,
    /// A browser session ([`Expiry::BrowserClose`]: "keep me signed in" left unticked) unused this
    /// long expires (default 12 hours, and never longer than `idle_timeout`): its cookie ends with
    /// the browser, but a shared computer's browser may never be closed.
    pub browser_idle_timeout: Duration,
    /// Last activity is written at most this often (default 60 s).
    pub activity_interval: Duration,
    /// How long ended sessions are kept in their history ([`EndedSession`]; default 90 days,
    /// `SESSION_HISTORY_DAYS`). Zero keeps none: sessions then end without a trace.
    pub history_retention: Duration,
    /// How long client addresses are kept whole, in sessions and their history (default
    /// [`IpRetention::Full`], `IP_RETENTION`). An account system keeping addresses of its own
    /// (sign-in activity) follows it too.
    pub ip_retention: IpRetention,
    /// The `cached_db` cache.
    pub cache: CacheSettings,
    /// Peers whose proxy header (`trusted_proxy_header`) and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The one header trusted proxies report the client address in (default `X-Forwarded-For`);
    /// the others are ignored. See [`ClientInfo::from_headers`].
    pub trusted_proxy_header: ProxyHeader,
    /// The cookie's `Domain` (`example.com`: sent to every subdomain too, as single sign-on across
    /// subdomains needs), or `None` for a host-only cookie. A `__Host-` cookie never has one.
    pub cookie_domain: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            backend: SessionBackend::default(),
            cookie_name: Self::default_cookie_name(false).to_owned(),
            secure: false,
            idle_timeout: Duration::from_secs(14 * 24 * 3600),
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            browser_idle_timeout: Duration::from_secs(12 * 3600),
            activity_interval: Duration::from_secs(60),
            history_retention: Duration::from_secs(90 * 24 * 3600),
            ip_retention: IpRetention::Full,
            cache: CacheSettings::default(),
            trusted_proxies: Vec::new(),
            trusted_proxy_header: ProxyHeader::default(),
            cookie_domain: None,
        }
    }
}

impl SessionConfig {
    /// The default cookie name: the `__Host-` prefix (Secure, Path=/, no Domain) when secure.
    pub fn default_cookie_name(secure: bool) -> &'static str {
        if secure {
            "__Host-session"
        } else {
            "session"
        }
    }
}

/// The engine: the store chosen by the configuration, and every operation on sessions.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct SessionEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    config: SessionConfig,
    #[cfg(feature = "geo")]
    geoip: GeoIp,
    /// The account system, once one registers (see [`UserDirectory`]); shared with the eviction
    /// listener, which looks it up on each notification (it may register after the listener).
    users: Directory,
    /// Where [`SessionEvent`]s go (see [`SessionEngine::subscribe`]).
    events: tokio::sync::broadcast::Sender<SessionEvent>,
    store: Arc<dyn SessionStore>,
    /// The database store, when the engine was made over a database (see [`SessionEngine::new`]).
    #[cfg(sql)]
    db_store: Option<DbStore>,
    /// The cache the engine made in front of it (`cached_db`), which forward authentication reads
    /// directly and the eviction listener keeps in step.
    #[cfg(sql)]
    cache: Option<CachedDbStore<DbStore>>,
}

impl std::fmt::Debug for SessionEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEngine")
            .field("backend", &self.inner.config.backend)
            .finish_non_exhaustive()
    }
}

/// What the engine asks of the account system its sessions belong to. An account system
/// registers one with [`SessionEngine::set_user_directory`] (the library's
/// [`Accounts`](crate::accounts::Accounts) does so itself).
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// Whether this user exists and may be signed in now. Asked once a session signed in during a
    /// request has been written: a user deactivated while signing in is then not left with a live
    /// session (deactivating writes the flag before it ends the user's sessions, and this reads
    /// it after the session is written, so one of the two sees the other).
    async fn may_sign_in(&self, user_id: i64) -> Result<bool, StoreError>;

    /// Another node changed or deleted these users (or, with `None`, this node may have missed
    /// such news): forget whatever is remembered of them.
    fn forget(&self, user_ids: Option<&[i64]>);
}

/// The GeoIP database an engine is made with: none (every place unknown) by default, and no
/// field at all without the `geo` feature.
/// The database store and the cache an engine made over a database (none for an engine over a
/// store of its own, and no fields at all without SQLite or PostgreSQL).
#[derive(Default)]
struct DatabaseStores {
    #[cfg(sql)]
    db_store: Option<DbStore>,
    #[cfg(sql)]
    cache: Option<CachedDbStore<DbStore>>,
}

struct Locator {
    #[cfg(feature = "geo")]
    geoip: GeoIp,
}

#[cfg_attr(not(feature = "geo"), allow(clippy::derivable_impls))]
impl Default for Locator {
    fn default() -> Self {
        Self {
            #[cfg(feature = "geo")]
            geoip: GeoIp::disabled(),
        }
    }
}

#[cfg(feature = "geo")]
impl From<GeoIp> for Locator {
    fn from(geoip: GeoIp) -> Self {
        Self { geoip }
    }
}

/// Where the registered [`UserDirectory`] is kept.
pub(crate) type Directory = Arc<std::sync::OnceLock<Arc<dyn UserDirectory>>>;

/// What committing a session asks of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieAction {
    /// Leave the cookie alone.
    Keep,
    /// Set the cookie to this token; `max_age` `None` means a browser-session cookie.
    Set {
        /// The token to send.
        token: SessionToken,
        /// How long the browser keeps it.
        max_age: Option<time::Duration>,
    },
    /// Tell the browser to drop the cookie.
    Remove,
}

/// The result of committing a session at the end of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// What to do with the cookie.
    pub cookie: CookieAction,
    /// Whether the session was used (the response then varies by cookie).
    pub accessed: bool,
}

impl SessionEngine {
    /// An engine over this database, with the backend the configuration names (`db` or
    /// `cached_db`) and no GeoIP.
    #[cfg(sql)]
    pub fn new(db: Database, config: SessionConfig) -> Self {
        let (store, databases) = Self::database_stores(db, &config);
        Self::build(store, databases, config, Locator::default())
    }

    /// An engine that also records where each session is, with this GeoIP database.
    #[cfg(all(sql, feature = "geo"))]
    pub fn with_geoip(db: Database, config: SessionConfig, geoip: GeoIp) -> Self {
        let (store, databases) = Self::database_stores(db, &config);
        Self::build(store, databases, config, Locator::from(geoip))
    }

    #[cfg(sql)]
    fn database_stores(
        db: Database,
        config: &SessionConfig,
    ) -> (Arc<dyn SessionStore>, DatabaseStores) {
        let db_store = DbStore::new(db);
        let cache = match config.backend {
            SessionBackend::Db => None,
            SessionBackend::CachedDb => Some(CachedDbStore::new(db_store.clone(), &config.cache)),
        };
        let store: Arc<dyn SessionStore> = match &cache {
            Some(cache) => Arc::new(cache.clone()),
            None => Arc::new(db_store.clone()),
        };
        let databases = DatabaseStores {
            db_store: Some(db_store),
            cache,
        };
        (store, databases)
    }

    /// An engine over any [`SessionStore`]: yours, a [`MemoryStore`], or one composed with a
    /// [`CachedDbStore`] in front. `config.backend` is not read: the store is what it is.
    ///
    /// Listing and revoking a user's sessions need a store that keeps them by user
    /// ([`SessionStore::by_user`]); with any other store they answer [`StoreError::Unsupported`].
    ///
    /// ```
    /// use console_sessions::sessions::{CacheSettings, CachedDbStore, MemoryStore};
    /// use console_sessions::{SessionConfig, SessionEngine};
    ///
    /// let cached = CachedDbStore::new(MemoryStore::new(), &CacheSettings::default());
    /// let engine = SessionEngine::with_store(cached, SessionConfig::default());
    /// # drop(engine);
    /// ```
    pub fn with_store(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::build(
            Arc::new(store),
            DatabaseStores::default(),
            config,
            Locator::default(),
        )
    }

    /// [`SessionEngine::with_store`], recording where each session is with this GeoIP database.
    #[cfg(feature = "geo")]
    pub fn with_store_and_geoip(
        store: impl SessionStore,
        config: SessionConfig,
        geoip: GeoIp,
    ) -> Self {
        Self::build(
            Arc::new(store),
            DatabaseStores::default(),
            config,
            Locator::from(geoip),
        )
    }

    #[cfg_attr(not(sql), allow(unused_variables))]
    #[cfg_attr(not(feature = "geo"), allow(unused_variables))]
    fn build(
        store: Arc<dyn SessionStore>,
        databases: DatabaseStores,
        config: SessionConfig,
        locator: Locator,
    ) -> Self {
        Self {
            inner: Arc::new(EngineInner {
                config,
                #[cfg(feature = "geo")]
                geoip: locator.geoip,
                users: Directory::default(),
                events: tokio::sync::broadcast::Sender::new(EVENT_BUFFER),
                store,
                #[cfg(sql)]
                db_store: databases.db_store,
                #[cfg(sql)]
                cache: databases.cache,
            }),
        }
    }

    /// Registers the account system sessions belong to (once; a later call is refused with
    /// `false` and logged: one engine serves one account system).
    pub fn set_user_directory(&self, users: Arc<dyn UserDirectory>) -> bool {
        let registered = self.inner.users.set(users).is_ok();
        if !registered {
            tracing::error!("a second account system was refused: this engine has one already");
        }
        registered
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The GeoIP database (disabled when none is configured).
    #[cfg(feature = "geo")]
    pub fn geoip(&self) -> &GeoIp {
        &self.inner.geoip
    }

    /// Where the address is, as a session row keeps it (nothing without the `geo` feature).
    pub(crate) fn place(&self, ip: std::net::IpAddr) -> Place {
        #[cfg(feature = "geo")]
        return self.inner.geoip.place(ip);
        #[cfg(not(feature = "geo"))]
        {
            let _ = ip;
            Place::default()
        }
    }

    /// The store every operation goes through (the cache, under `cached_db`).
    pub fn store(&self) -> &dyn SessionStore {
        self.inner.store.as_ref()
    }

    /// The database store underneath, when the engine was made over a database (for its query
    /// counter, and for staff queries that read the sessions table directly).
    #[cfg(sql)]
    pub fn db_store(&self) -> Option<&DbStore> {
        self.inner.db_store.as_ref()
    }

    fn by_user(&self, what: &'static str) -> Result<&dyn UserSessionStore, StoreError> {
        store::by_user(self.store(), what)
    }

    /// The cache, under `cached_db`.
    #[cfg(sql)]
    pub fn cache(&self) -> Option<&CachedDbStore<DbStore>> {
        self.inner.cache.as_ref()
    }

    /// A session handle for a request carrying this cookie value (if any) from this client.
    /// Malformed cookie values are treated as no session.
    pub fn session(&self, cookie_value: Option<&str>, client: ClientInfo) -> Session {
        let token = cookie_value.and_then(SessionToken::parse);
        if cookie_value.is_some() && token.is_none() {
            tracing::debug!("malformed session cookie ignored");
        }
        Session::new(self.clone(), token, cookie_value.is_some(), client)
    }

    /// The signed-in user of the session this cookie value names, when the `cached_db` cache can
    /// answer alone: the session is in memory and live, belongs to a user, its last activity is
    /// within the activity interval, and `client` is the one the row records — so nothing about it
    /// would be written. `None` means "ask the full way" ([`SessionEngine::session`]): no cache, a
    /// miss, a malformed or unknown cookie, a session without a user, or one due a write.
    ///
    /// For answers asked of every request through a proxy (forward authentication): it reads one
    /// cache entry and copies nothing. Not async: nothing in it waits.
    pub fn cached_user(&self, cookie_value: &str, client: &ClientInfo) -> Option<i64> {
        self.cached_sign_in(cookie_value, client)
            .map(|(user_id, _)| user_id)
    }

    /// [`SessionEngine::cached_user`] with the session's assurance level ([`Aal::Aal1`] for a
    /// session signed in before levels were recorded).
    pub fn cached_sign_in(&self, cookie_value: &str, client: &ClientInfo) -> Option<(i64, Aal)> {
        // Only an engine over a database makes a cache of its own to read.
        #[cfg(not(sql))]
        {
            let _ = (cookie_value, client);
            None
        }
        #[cfg(sql)]
        {
            let cache = self.cache()?;
            let token_hash = SessionToken::hash_of(cookie_value)?;
            // The clock as Unix nanoseconds, compared with the row's times as such (see
            // `activity_due_at_unix_nanos`). Not rounded to the stored milliseconds like `now()`:
            // only compared, never stored.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_nanos();
            let now = i128::try_from(now).ok()?;
            let record = cache.peek(&token_hash, now)?;
            let quiet = !session::activity_due_at_unix_nanos(self, &record, now)
                && !session::client_differs(self, client, &record);
            let level = record.assurance.map_or(Aal::Aal1, |a| a.level);
            quiet
                .then_some(record.user_id)
                .flatten()
                .map(|user_id| (user_id, level))
        }
    }

    /// When a session with this policy, created at `created_at`, expires if saved at `now`.
    pub fn expires_at(
        &self,
        expiry: Expiry,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let config = &self.inner.config;
        let chosen = match expiry {
            Expiry::Default => now + config.idle_timeout,
            Expiry::BrowserClose => now + config.browser_idle_timeout.min(config.idle_timeout),
            Expiry::IdleSeconds(seconds) => now + time::Duration::seconds(seconds),
            Expiry::AtMillis(millis) => from_millis(millis),
            Expiry::Limited {
                idle_seconds,
                browser,
                ..
            } => {
                let idle =
                    (now + time::Duration::seconds(idle_seconds)).min(now + config.idle_timeout);
                if browser {
                    idle.min(now + config.browser_idle_timeout)
                } else {
                    idle
                }
            }
        };
        chosen.min(self.absolute_end(expiry, created_at))
    }

    /// When a session with this policy, created at `created_at`, expires however active: the
    /// configured absolute lifetime, or its own shorter one.
    fn absolute_end(&self, expiry: Expiry, created_at: OffsetDateTime) -> OffsetDateTime {
        let absolute = created_at + self.inner.config.absolute_lifetime;
        match expiry {
            Expiry::Limited {
                absolute_seconds, ..
            } => absolute.min(created_at + time::Duration::seconds(absolute_seconds)),
            _ => absolute,
        }
    }

    /// Writes what the request did to its session, and says what the cookie must become.
    ///
    /// Nothing is written for an untouched session; a new session is stored only once it holds
    /// something; a session deleted meanwhile is never brought back.
    pub async fn commit(&self, session: &Session) -> Result<Commit, StoreError> {
        let store = self.store();
        let mut state = session.lock().await;
        if !state.loaded {
            return Ok(Commit {
                cookie: CookieAction::Keep,
                accessed: false,
            });
        }
        let now = now();
        if let Some(flushed) = state.flushed.take() {
            if store.delete(&flushed.token_hash).await? {
                self.ended(&EndCause::SignedOut.into(), &[Deleted::of(&flushed)])
                    .await;
            }
        }
        let dirty = state.modified || state.activity_due || state.client_changed || state.cycle;
        if state.record.is_some() && !dirty {
            // The common read-only request: nothing to write, and no record to copy.
            return Ok(Commit {
                cookie: CookieAction::Keep,
                accessed: state.accessed,
            });
        }
        let empty = state.data.is_empty() && state.user_id.is_none();
        let client = session.client();
        let cookie = match state.record.clone() {
            None if empty => {
                if session.cookie_present() {
                    CookieAction::Remove
                } else {
                    CookieAction::Keep
                }
            }
            None => {
                let (record, token) = self.new_record(&state, client, now);
                self.create_with_retry(record, token)
                    .await
                    .map(|(record, token)| {
                        let action = self.set_cookie(record.expiry, token, record.expires_at, now);
                        state.record = Some(record);
                        action
                    })?
            }
            Some(current) if empty && state.modified => {
                if store.delete(&current.token_hash).await? {
                    self.ended(&EndCause::SignedOut.into(), &[Deleted::of(&current)])
                        .await;
                }
                state.record = None;
                CookieAction::Remove
            }
            Some(current) => {
                let mut record = current.clone();
                record.data = state.data.clone();
                record.user_id = state.user_id;
                record.assurance = state.assurance;
                record.expiry = state.expiry;
                if let Some(ip) = client.ip {
                    let kept = self.inner.config.ip_retention.kept(ip);
                    if record.ip != kept || kept.is_none() {
                        record.place = self.place(ip);
                    }
                    record.ip = kept;
                }
                if client.user_agent.is_some() {
                    record.user_agent = client.user_agent.clone();
                }
                if !client.hints.is_empty() {
                    record.client_hints = Some(client.hints.clone());
                }
                record.updated_at = now;
                record.last_activity_at = now;
                record.expires_at = self.expires_at(record.expiry, record.created_at, now);
                let token = state.cycle.then(SessionToken::generate);
                if let Some(token) = &token {
                    record.token_hash = token.hash();
                }
                if store.save(&record, &current.token_hash).await? {
                    let action = match token {
                        Some(token) => {
                            self.set_cookie(record.expiry, token, record.expires_at, now)
                        }
                        None if record.expires_at != current.expires_at => {
                            match session.cookie_token() {
                                Some(token) => {
                                    self.set_cookie(record.expiry, token, record.expires_at, now)
                                }
                                None => CookieAction::Keep,
                            }
                        }
                        None => CookieAction::Keep,
                    };
                    state.record = Some(record);
                    action
                } else if let Some(token) = token {
                    // The row was deleted meanwhile, yet the request asked for a new token (a sign-in):
                    // give it a new session rather than resurrect the old one.
                    let (mut record, _) = self.new_record(&state, client, now);
                    record.token_hash = token.hash();
                    let (record, token) = self.create_with_retry(record, token).await?;
                    let action = self.set_cookie(record.expiry, token, record.expires_at, now);
                    state.record = Some(record);
                    action
                } else {
                    tracing::info!(
                        public_id = %current.public_id,
                        "session ended elsewhere during the request; not saved"
                    );
                    state.record = None;
                    CookieAction::Keep
                }
            }
        };
        // A session signed in by this request, as written (nothing is copied for other writes).
        let signed_in = state
            .user_id
            .filter(|_| state.user_id != state.loaded_user_id)
            .and_then(|user_id| {
                let record = state.record.as_ref()?;
                Some((user_id, record.token_hash, record.public_id.clone()))
            });
        let cookie = match (signed_in, self.inner.users.get()) {
            (Some((user_id, token_hash, public_id)), Some(users))
                if !users.may_sign_in(user_id).await? =>
            {
                // Deactivated (or deleted) while signing in: undo the session just written.
                if store.delete(&token_hash).await? {
                    counters::sessions_ended(EndCause::Deactivated.as_str(), 1);
                }
                tracing::warn!(
                    user_id,
                    public_id = %public_id,
                    "sign-in of a user who may not sign in undone"
                );
                state.record = None;
                state.user_id = None;
                state.data.clear();
                if session.cookie_present() {
                    CookieAction::Remove
                } else {
                    CookieAction::Keep
                }
            }
            (Some((user_id, _, public_id)), _) => {
                let method = state
                    .assurance
                    .map_or(AuthMethod::Other, |assurance| assurance.method);
                self.emit(SessionEvent::SignedIn(SignedIn {
                    user_id,
                    public_id,
                    method,
                    client: client.clone(),
                }));
                cookie
            }
            (None, _) => cookie,
        };
        state.loaded_user_id = state.user_id;
        state.modified = false;
        state.cycle = false;
        state.activity_due = false;
        state.client_changed = false;
        Ok(Commit {
            cookie,
            accessed: state.accessed,
        })
    }

    /// Hands out every [`SessionEvent`] from now on. See [`events`](self::SessionEvent) for what
    /// delivery promises.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    fn emit(&self, event: SessionEvent) {
        // An error only means nobody listens now.
        let _ = self.inner.events.send(event);
    }

    /// Counts sessions that ended, keeps their history, and tells the subscribers, one event
    /// each. Never fails: the sessions are gone whatever happens here, so a history that cannot
    /// be written is logged rather than turned into a failed sign-out.
    async fn ended(&self, ending: &Ending, deleted: &[Deleted]) {
        if deleted.is_empty() {
            return;
        }
        if ending.cause.is_expiry() {
            counters::sessions_expired(deleted.len());
        } else {
            counters::sessions_ended(ending.cause.as_str(), deleted.len());
        }
        self.keep_history(ending, deleted).await;
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        for session in deleted {
            self.emit(SessionEvent::Ended(Ended {
                public_id: session.record.public_id.clone(),
                user_id: session.record.user_id,
                reason: ending.cause,
                by: ending.by.clone(),
            }));
        }
    }

    async fn keep_history(&self, ending: &Ending, deleted: &[Deleted]) {
        let Some(history) = self.store().history() else {
            return;
        };
        if self.inner.config.history_retention.is_zero() {
            return;
        }
        let now = now();
        let ended: Vec<EndedSession> = deleted
            .iter()
            .filter_map(|session| {
                // An expired session ended when it expired, not when the sweep found it.
                let at = if ending.cause.is_expiry() {
                    session.record.expires_at.min(now)
                } else {
                    now
                };
                EndedSession::of(&session.record, ending, at)
            })
            .collect();
        if ended.is_empty() {
            return;
        }
        if let Err(error) = history.record(&ended).await {
            tracing::error!(%error, count = ended.len(), "the history of ended sessions was not written");
        }
    }

    /// Why an expired session expired: its absolute lifetime when that is what its expiry was
    /// held to, else its idle timeout.
    fn expiry_cause(&self, record: &SessionRecord) -> EndCause {
        if record.expires_at >= self.absolute_end(record.expiry, record.created_at) {
            EndCause::AbsoluteLifetime
        } else {
            EndCause::IdleTimeout
        }
    }

    fn new_record(
        &self,
        state: &session::State,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> (SessionRecord, SessionToken) {
        let token = SessionToken::generate();
        let place = client.ip.map(|ip| self.place(ip)).unwrap_or_default();
        let kept_ip = self.inner.config.ip_retention.keep(client.ip);
        let record = SessionRecord {
            public_id: PublicId::generate(),
            token_hash: token.hash(),
            user_id: state.user_id,
            label: None,
            assurance: state.assurance,
            data: state.data.clone(),
            ip: kept_ip,
            user_agent: client.user_agent.clone(),
            client_hints: (!client.hints.is_empty()).then(|| client.hints.clone()),
            first_ip: kept_ip,
            first_place: place.clone(),
            place,
            expiry: state.expiry,
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            expires_at: self.expires_at(state.expiry, now, now),
        };
        (record, token)
    }

    /// Creates the row; on the (astronomically unlikely) collision of a random key, tries fresh keys.
    async fn create_with_retry(
        &self,
        mut record: SessionRecord,
        mut token: SessionToken,
    ) -> Result<(SessionRecord, SessionToken), StoreError> {
        for _ in 0..3 {
            match self.store().create(&record).await {
                Ok(()) => {
                    counters::session_created();
                    return Ok((record, token));
                }
                Err(StoreError::Duplicate) => {
                    token = SessionToken::generate();
                    record.token_hash = token.hash();
                    record.public_id = PublicId::generate();
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Duplicate)
    }

    fn set_cookie(
        &self,
        expiry: Expiry,
        token: SessionToken,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> CookieAction {
        let max_age = if expiry.ends_with_browser() {
            None
        } else {
            Some((expires_at - now).max(time::Duration::ZERO))
        };
        CookieAction::Set { token, max_age }
    }

    /// A user's active sessions, most recent activity first.
    pub async fn list_for_user(&self, user_id: i64) -> Result<Vec<SessionRecord>, StoreError> {
        self.by_user("list a user's sessions")?
            .list_for_user(user_id, now())
            .await
    }

    /// Ends one session of a user, for this reason (signed out from another of their sessions:
    /// [`Ending::from_session`]). A public id of another user's session is "not found"
    /// (`false`), never an end.
    pub async fn end_session(
        &self,
        user_id: i64,
        public_id: &PublicId,
        ending: impl Into<Ending>,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .by_user("sign out a session by its public id")?
            .delete_by_public_ids(std::slice::from_ref(public_id), Some(user_id))
            .await?;
        self.ended(&ending.into(), &deleted).await;
        Ok(!deleted.is_empty())
    }

    /// Signs out one session of a user from elsewhere, not saying where ([`EndCause::Revoked`];
    /// [`SessionEngine::end_session`] says more). A public id of another user's session is "not
    /// found" (`false`), never a revoke.
    pub async fn revoke(&self, user_id: i64, public_id: &PublicId) -> Result<bool, StoreError> {
        self.end_session(user_id, public_id, EndCause::Revoked)
            .await
    }

    /// Signs out every session of a user except `keep`, the one doing it; returns how many ended.
    pub async fn revoke_others(&self, user_id: i64, keep: &PublicId) -> Result<usize, StoreError> {
        self.end_others(user_id, keep, EndCause::Revoked).await
    }

    /// Ends every session of a user except `keep`, the one doing it, for this reason (a password
    /// change says [`EndCause::PasswordChanged`]); returns how many ended.
    pub async fn end_others(
        &self,
        user_id: i64,
        keep: &PublicId,
        cause: EndCause,
    ) -> Result<usize, StoreError> {
        let deleted = self
            .by_user("sign out a user's other sessions")?
            .delete_for_user(user_id, Some(keep))
            .await?;
        let ending = Ending {
            cause,
            by: Some(EndedBy::Session(keep.clone())),
        };
        self.ended(&ending, &deleted).await;
        Ok(deleted.len())
    }

    /// Signs out every session of a user; returns how many ended.
    pub async fn revoke_all(&self, user_id: i64) -> Result<usize, StoreError> {
        Ok(self.end_all_of(user_id, EndCause::Revoked).await?.len())
    }

    /// Ends every session of a user for this reason (an account system deleting the user says
    /// [`EndCause::UserDeleted`], staff [`Ending::by_staff`]), answering which sessions ended.
    pub async fn end_all_of(
        &self,
        user_id: i64,
        ending: impl Into<Ending>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let deleted = self
            .by_user("sign out all of a user's sessions")?
            .delete_for_user(user_id, None)
            .await?;
        self.ended(&ending.into(), &deleted).await;
        Ok(deleted)
    }

    /// Names one of a user's sessions ("Work laptop"): the name is trimmed, stripped of control
    /// characters and cut to [`MAX_LABEL_CHARS`]; an empty one forgets the name. `false` when
    /// the user has no such session.
    pub async fn rename(
        &self,
        user_id: i64,
        public_id: &PublicId,
        label: &str,
    ) -> Result<bool, StoreError> {
        let cleaned: String = label
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .trim()
            .chars()
            .take(MAX_LABEL_CHARS)
            .collect();
        let label = (!cleaned.is_empty()).then_some(cleaned.trim_end());
        self.by_user("rename a session")?
            .rename(user_id, public_id, label)
            .await
    }

    /// A user's ended sessions, most recently ended first, at most `limit` (none from a store
    /// that keeps no history).
    pub async fn ended_sessions(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<Vec<EndedSession>, StoreError> {
        match self.store().history() {
            Some(history) => history.ended_for_user(user_id, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Keeps a user to `max` sessions (0: no limit) as they sign in once more: ends the least
    /// recently active of their other sessions so that, with the one signing in (`keep`, when it
    /// is stored already; a new one is not), at most `max` are left, with
    /// [`EndCause::SessionLimit`]; answers which ended.
    pub async fn enforce_session_limit(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
        max: usize,
    ) -> Result<Vec<Deleted>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // Most recent activity first: what is past the first `max - 1` others goes.
        let excess: Vec<PublicId> = self
            .list_for_user(user_id)
            .await?
            .into_iter()
            .filter(|session| Some(&session.public_id) != keep)
            .skip(max - 1)
            .map(|session| session.public_id)
            .collect();
        if excess.is_empty() {
            return Ok(Vec::new());
        }
        let deleted = self
            .by_user("end a user's sessions beyond their limit")?
            .delete_by_public_ids(&excess, Some(user_id))
            .await?;
        self.ended(&EndCause::SessionLimit.into(), &deleted).await;
        Ok(deleted)
    }

    /// Deletes these sessions, whoever owns them, for this reason (staff:
    /// [`Ending::by_staff`]).
    pub async fn delete_many(
        &self,
        public_ids: &[PublicId],
        ending: impl Into<Ending>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let deleted = self
            .by_user("sign out sessions by public id")?
            .delete_by_public_ids(public_ids, None)
            .await?;
        self.ended(&ending.into(), &deleted).await;
        Ok(deleted)
    }

    /// Deletes every expired session, `batch` rows per statement (so a large sweep never holds a long
    /// lock), evicting each from the cache. Returns how many were deleted.
    pub async fn clear_expired(&self, batch: u32) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut total = 0u64;
        loop {
            let deleted = self.store().delete_expired(now(), batch).await?;
            let swept = deleted.len();
            let (absolute, idle): (Vec<Deleted>, Vec<Deleted>) =
                deleted.into_iter().partition(|session| {
                    self.expiry_cause(&session.record) == EndCause::AbsoluteLifetime
                });
            self.ended(&EndCause::AbsoluteLifetime.into(), &absolute)
                .await;
            self.ended(&EndCause::IdleTimeout.into(), &idle).await;
            total += swept as u64;
            if swept < batch as usize {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Forgets the ended sessions older than
    /// [`SessionConfig::history_retention`]; answers how many.
    pub async fn purge_history(&self) -> Result<u64, StoreError> {
        let Some(history) = self.store().history() else {
            return Ok(0);
        };
        let keep = time::Duration::try_from(self.inner.config.history_retention)
            .unwrap_or(time::Duration::MAX);
        history.purge(now().saturating_sub(keep)).await
    }

    /// Applies [`SessionConfig::ip_retention`] to what is stored: cuts to their network, or
    /// forgets, the addresses of live and ended sessions seen before its cutoff, `batch` rows per
    /// statement; answers how many addresses changed. Nothing to do under [`IpRetention::Full`].
    ///
    /// A live session's last address counts from its last activity, its first from its
    /// creation. A cached copy of a session idle that long is not touched: the cache forgets it
    /// first (its idle time is far shorter), and the session used again is seen afresh anyway.
    pub async fn age_addresses(&self, batch: u32) -> Result<u64, StoreError> {
        let Some((aging, before)) = self.inner.config.ip_retention.aging(now()) else {
            return Ok(0);
        };
        let mut total = 0;
        if let Some(live) = self.store().by_user() {
            total += live.age_addresses(aging, before, batch).await?;
        }
        if let Some(history) = self.store().history() {
            total += history.age_addresses(aging, before, batch).await?;
        }
        Ok(total)
    }

    /// Under `cached_db` on PostgreSQL, starts the task that drops from this node's cache the
    /// sessions other nodes end (see [`EvictionListener`]); caching is paused until it listens, and
    /// whenever it cannot. `None` with SQLite (a single node) or the `db` backend (no cache).
    #[cfg(feature = "postgres")]
    pub fn spawn_eviction_listener(&self) -> Option<EvictionListener> {
        let cache = self.inner.cache.as_ref()?;
        match self.inner.db_store.as_ref()?.database() {
            Database::Postgres(pool) => Some(EvictionListener::spawn(
                cache.clone(),
                pool,
                self.inner.users.clone(),
            )),
            #[cfg(feature = "sqlite")]
            Database::Sqlite(_) => None,
        }
    }

    /// Runs [`SessionEngine::clear_expired`], [`SessionEngine::purge_history`] and
    /// [`SessionEngine::age_addresses`] every `every`,
    /// logging failures, until the task is aborted.
    pub fn spawn_expiry_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match engine.clear_expired(1000).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "expired sessions cleared"),
                    Err(error) => tracing::warn!(%error, "clearing expired sessions failed"),
                }
                match engine.purge_history().await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "old session history forgotten"),
                    Err(error) => tracing::warn!(%error, "forgetting old session history failed"),
                }
                match engine.age_addresses(500).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "old client addresses cut or forgotten"),
                    Err(error) => tracing::warn!(%error, "cutting old client addresses failed"),
                }
            }
        })
    }
}
