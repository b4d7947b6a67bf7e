//! One typed set of settings, from command-line flags with environment fallbacks (and a `.env` file,
//! loaded before parsing). `console-sessions --help` is the reference.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use console_sessions::accounts::{AccountsConfig, SignUpLimits};
use console_sessions::db::PoolSettings;
use console_sessions::mail::{MailConfig, MailError, PublicOrigin};
use console_sessions::sessions::{CacheSettings, IpRetention, ProxyHeader};
use console_sessions::{SessionBackend, SessionConfig};
use ipnet::IpNet;

use super::site::SiteSettings;

/// The command line of the `console-sessions` binary.
#[derive(Debug, Parser)]
#[command(
    name = "console-sessions",
    version,
    about = "Server-side sessions you can see: review devices, sign them out, administer every session."
)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the web application (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Delete expired sessions (in batches, evicting them from the cache) and exit.
    Clearsessions {
        /// Rows deleted per statement.
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
    /// Fill the database with demo users and sessions, for benches and demos only.
    Seed {
        /// Sessions to create.
        #[arg(long, default_value_t = 10_000)]
        sessions: u64,
        /// Users to create (the sessions are spread over them).
        #[arg(long, default_value_t = 100)]
        users: u64,
    },
    /// Create a staff user. The password is asked for on the terminal, or read from
    /// CONSOLE_SESSIONS_SUPERUSER_PASSWORD (for scripts).
    Createsuperuser {
        /// The new user's username.
        #[arg(long)]
        username: String,
        /// The new user's email address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's password, as Django's `changepassword`: asked for twice on the terminal, or
    /// read from CONSOLE_SESSIONS_PASSWORD (for scripts). Every session of the user ends.
    Changepassword {
        /// The user whose password to set.
        username: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of the application.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database to use: sqlite://path/to/file.db (created when missing) or postgres://user:pass@host/db.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/console-sessions.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Address to listen on (cargo-leptos' own variable).
    #[arg(
        long = "addr",
        env = "LEPTOS_SITE_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub addr: SocketAddr,

    /// Folder holding the built site: the `pkg/` folder with the wasm, JS and CSS, and public files.
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        global = true
    )]
    pub site_root: String,

    /// Session backend: `db` (database only) or `cached_db` (database with an in-process cache).
    #[arg(
        long,
        env = "SESSION_BACKEND",
        default_value = "cached_db",
        global = true
    )]
    pub session_backend: SessionBackend,

    /// Name of the session cookie [default: __Host-session when cookies are secure, else session].
    #[arg(long, env = "SESSION_COOKIE_NAME", global = true)]
    pub session_cookie_name: Option<String>,

    /// Domain of the session cookie, such as example.com, so that every subdomain receives it: what
    /// forward authentication needs when the protected services live on sibling subdomains. Unset:
    /// the cookie is host-only. With it, the secure default name is __Secure-session.
    #[arg(long, env = "SESSION_COOKIE_DOMAIN", value_parser = parse_domain, global = true)]
    pub session_cookie_domain: Option<String>,

    /// Mark the session and form cookies Secure, with the __Host- prefix. On by itself when
    /// PUBLIC_ORIGIN is https://; needed only for HTTPS without a public origin. Behind a trusted
    /// proxy that says X-Forwarded-Proto: https, the session cookie is Secure anyway.
    #[arg(long, env = "SESSION_COOKIE_SECURE", global = true)]
    pub secure_cookies: bool,

    /// Seconds without activity after which a session expires (default: 14 days).
    #[arg(long, env = "SESSION_IDLE_TIMEOUT", default_value_t = 14 * 24 * 3600, global = true)]
    pub session_idle_timeout: u64,

    /// Seconds without activity after which a browser session ("keep me signed in" unticked: the
    /// cookie ends with the browser) expires (default: 12 hours; never more than the idle timeout).
    #[arg(long, env = "BROWSER_SESSION_IDLE_TIMEOUT", default_value_t = 12 * 3600, global = true)]
    pub browser_session_idle_timeout: u64,

    /// Days an ended session stays in its history ("Recently ended", the admin's history; default:
    /// 90). 0 keeps no history.
    #[arg(
        long,
        env = "SESSION_HISTORY_DAYS",
        default_value_t = 90,
        global = true
    )]
    pub session_history_days: u64,

    /// How long client addresses are kept whole in sessions, their history, sign-in activity and
    /// security events: full (as seen), truncate (cut to the /24 or /48 network after
    /// IP_TRUNCATE_AFTER_DAYS) or none (never written; those written before are forgotten). The
    /// place looked up from an address is kept either way.
    #[arg(long, env = "IP_RETENTION", default_value = "full", global = true)]
    pub ip_retention: IpRetention,

    /// Under IP_RETENTION=truncate, days an address is kept whole after it was last seen (0: cut
    /// before it is written).
    #[arg(
        long,
        env = "IP_TRUNCATE_AFTER_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub ip_truncate_after_days: u64,

    /// Seconds after creation after which a session expires, whatever its activity (default: 30 days).
    #[arg(long, env = "SESSION_ABSOLUTE_LIFETIME", default_value_t = 30 * 24 * 3600, global = true)]
    pub session_absolute_lifetime: u64,

    /// Last activity is written at most once per this many seconds.
    #[arg(
        long,
        env = "SESSION_ACTIVITY_INTERVAL",
        default_value_t = 60,
        global = true
    )]
    pub session_activity_interval: u64,

    /// Most sessions the cached_db cache keeps.
    #[arg(
        long,
        env = "SESSION_CACHE_CAPACITY",
        default_value_t = 100_000,
        global = true
    )]
    pub session_cache_capacity: u64,

    /// Seconds a cached session is served before it is read again from the database: the last guard
    /// against a change the cache missed. On PostgreSQL every node also drops the sessions other nodes
    /// end the moment they end (LISTEN/NOTIFY), so this bounds only what that could miss.
    #[arg(
        long,
        env = "SESSION_CACHE_MAX_AGE",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub session_cache_max_age: u64,

    /// Networks of reverse proxies whose client-address header (TRUSTED_PROXY_HEADER) and
    /// X-Forwarded-Proto are believed, comma separated (e.g. 10.0.0.0/8,::1/128). Empty: the socket
    /// address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<IpNet>,

    /// The one header the trusted proxies give the client address in: x-forwarded-for, forwarded
    /// (RFC 7239) or x-real-ip. The two others are ignored, since proxies pass on what clients send
    /// in them; the proxy in front must set (not append to) this one.
    #[arg(
        long,
        env = "TRUSTED_PROXY_HEADER",
        default_value = "x-forwarded-for",
        global = true
    )]
    pub trusted_proxy_header: ProxyHeader,

    /// GeoIP database: a GeoLite2/GeoIP2 City or Country `.mmdb` file, or a folder holding one.
    /// Without it every location reads "Unknown location". A replaced file is picked up live.
    #[arg(long, env = "GEOIP_PATH", global = true)]
    pub geoip_path: Option<std::path::PathBuf>,

    /// Seconds between sweeps of expired sessions while serving; 0 turns the sweeper off.
    #[arg(
        long,
        env = "CLEAR_EXPIRED_EVERY",
        default_value_t = 3600,
        global = true
    )]
    pub clear_expired_every: u64,

    /// Whether anyone may create an account at /sign-up. While there are no users at all, the first
    /// account (a staff account) can be created either way.
    #[arg(long, env = "SIGNUP_OPEN", default_value_t = true, action = ArgAction::Set, global = true)]
    pub signup_open: bool,

    /// Sign-ups one client address (an IPv4 address or an IPv6 /64) may try per hour, counted in
    /// the database across nodes, taken usernames included; 0: no limit. Behind a proxy, set
    /// TRUSTED_PROXIES, or every client shares the proxy's address.
    #[arg(long, env = "SIGNUP_LIMIT_PER_IP", default_value_t = 10, global = true)]
    pub signup_limit_per_ip: u32,

    /// Sign-ups everyone together may try per hour (a flood from many addresses); 0: no limit.
    #[arg(long, env = "SIGNUP_LIMIT_TOTAL", default_value_t = 500, global = true)]
    pub signup_limit_total: u32,

    /// The origin people reach the service at, such as https://sessions.example.com. Requests that
    /// change state from any other origin are refused. Unset: the request's own Host.
    #[arg(long, env = "PUBLIC_ORIGIN", value_parser = parse_origin, global = true)]
    pub public_origin: Option<String>,

    /// The path the whole site is served under, behind a reverse proxy that passes it on unchanged
    /// (such as /sso for https://app.example.com/sso/...): pages, forms, server functions and
    /// assets all live under it. Empty (the default): the site is at the root. /healthz,
    /// /auth/verify and /metrics also answer without it.
    #[arg(long, env = "BASE_PATH", default_value = "", value_parser = parse_base_path, global = true)]
    pub base_path: String,

    /// Origins of the services behind forward authentication (GET /auth/verify), comma separated:
    /// after signing in, `next` may send the browser back to them. Any other `next` outside this
    /// site leads to the devices page, so the sign-in page is never an open redirect.
    #[arg(long, env = "REDIRECT_ORIGINS", value_delimiter = ',', value_parser = parse_origin, global = true)]
    pub redirect_origins: Vec<String>,

    /// Origins of the sites that may show our pages in a frame (embed mode), comma separated, such
    /// as https://app.example.com. Framed pages get a minimal layout. See the README on cookies.
    #[arg(long, env = "EMBED_ORIGINS", value_delimiter = ',', value_parser = parse_origin, global = true)]
    pub embed_origins: Vec<String>,

    /// Serve GET /bench/baseline (through the same middleware as every route) and GET /bench/bare
    /// (through none): what /auth/verify answers, for a fixed user. Only for the load bench.
    #[arg(long, env = "BENCH_BASELINE_ROUTE", hide = true, global = true)]
    pub bench_baseline_route: bool,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Seconds a request waits for the database (a pooled connection; on SQLite, a lock held by
    /// another process) before it gets a 503.
    #[arg(long, env = "DATABASE_TIMEOUT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub database_timeout: u64,

    /// Seconds the requests in flight get to finish after SIGTERM or SIGINT; those still running
    /// then are answered 503 and their connections closed.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value_t = 30, global = true)]
    pub shutdown_timeout: u64,

    /// Seconds a connection may wait for a request's whole head (request line and headers) after
    /// it opened or after its last response, idle time included; then it is closed, so none can be
    /// held open by a head that never ends. Keep it above the upstream keep-alive timeout of the
    /// proxy in front (nginx: 60 s), so that the proxy closes idle connections first.
    #[arg(long, env = "REQUEST_HEAD_TIMEOUT", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub request_head_timeout: u64,

    /// Bearer token that opens GET /metrics (Prometheus text). Without it and without
    /// --metrics-addr, /metrics does not exist.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true, value_parser = parse_token, global = true)]
    pub metrics_token: Option<String>,

    /// Serve GET /metrics on this separate address (such as 127.0.0.1:9100) instead of the main
    /// one; with METRICS_TOKEN set, the token is required there too.
    #[arg(long, env = "METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,

    /// Where mail goes: smtp://user:pass@host[:port] (STARTTLS, port 587 by default),
    /// smtps://user:pass@host[:port] (TLS, 465), smtp://127.0.0.1:2525?tls=none (plain, a local
    /// test server), or file://folder (each message an .eml file there, its path logged). Mail is
    /// queued in the database and sent by a background worker, with retries.
    #[arg(
        long,
        env = "MAIL_URL",
        default_value = "file://data/mail",
        hide_env_values = true,
        global = true
    )]
    pub mail_url: String,

    /// Who mail is from: an address, or a name and an address ("Accounts <no-reply@example.com>").
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "console-sessions <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// Seconds before a failed delivery is tried again; each later wait is twice the one before,
    /// at most an hour. After 10 attempts, or 24 hours after it was queued, a message is marked
    /// failed (staff see it at /admin/mail and can send it again).
    #[arg(long, env = "MAIL_RETRY_DELAY", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub mail_retry_delay: u64,

    /// Whether an account needs a verified email address to sign in: sign-up then asks for an
    /// address, and signing in to an account whose address is unverified sends a new link instead.
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value_t = false, action = ArgAction::Set, global = true)]
    pub require_verified_email: bool,

    /// Whether a sign-in from a browser, system or country an account has not used before is
    /// mailed to its owner, with "Yes, it was me" and "This wasn't me" (each user can also turn
    /// theirs off). Off, such sign-ins are still listed in each user's security activity.
    #[arg(long, env = "SIGN_IN_ALERTS", default_value_t = true, action = ArgAction::Set, global = true)]
    pub sign_in_alerts: bool,

    /// Seconds after a sign-in or a confirmation during which sensitive actions (signing out every
    /// other device, second factors, every staff action) are done without asking for the password
    /// or a code again. At least a second (0 would refuse every action, even just after confirming).
    #[arg(long, env = "STEP_UP_WINDOW", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub step_up_window: u64,

    /// Whether staff must have a second factor: without one they are sent to set one up before
    /// any admin page.
    #[arg(long, env = "REQUIRE_SECOND_FACTOR_FOR_STAFF", default_value_t = false, action = ArgAction::Set, global = true)]
    pub require_second_factor_for_staff: bool,

    /// The most sessions one user may have at once (0: no limit). A sign-in beyond it signs out
    /// the user's least recently active session, and the page says so.
    #[arg(
        long,
        env = "MAX_SESSIONS_PER_USER",
        default_value_t = 0,
        global = true
    )]
    pub max_sessions_per_user: usize,

    /// Seconds unused after which a staff member's session expires (default: 30 minutes, as OWASP
    /// ASVS level 2 asks; never more than everyone's). 0 with the next: staff get everyone's.
    #[arg(
        long,
        env = "STAFF_SESSION_IDLE_TIMEOUT",
        default_value_t = 1800,
        global = true
    )]
    pub staff_session_idle_timeout: u64,

    /// Seconds after sign-in after which a staff member's session expires, however active
    /// (default: 12 hours; never more than everyone's).
    #[arg(long, env = "STAFF_SESSION_ABSOLUTE_LIFETIME", default_value_t = 12 * 3600, global = true)]
    pub staff_session_absolute_lifetime: u64,
}

impl Settings {
    /// Settings for tests and embedding: defaults, with this database and an ephemeral port.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            site_root: "target/site".to_owned(),
            log_format: LogFormat::Text,
            session_backend: SessionBackend::CachedDb,
            session_cookie_name: None,
            session_cookie_domain: None,
            secure_cookies: false,
            session_idle_timeout: 14 * 24 * 3600,
            browser_session_idle_timeout: 12 * 3600,
            session_history_days: 90,
            ip_retention: IpRetention::Full,
            ip_truncate_after_days: 30,
            session_absolute_lifetime: 30 * 24 * 3600,
            session_activity_interval: 60,
            session_cache_capacity: 100_000,
            session_cache_max_age: 60,
            trusted_proxies: Vec::new(),
            trusted_proxy_header: ProxyHeader::XForwardedFor,
            geoip_path: None,
            clear_expired_every: 0,
            signup_open: true,
            signup_limit_per_ip: 10,
            signup_limit_total: 500,
            public_origin: None,
            base_path: String::new(),
            redirect_origins: Vec::new(),
            embed_origins: Vec::new(),
            bench_baseline_route: false,
            database_timeout: 5,
            shutdown_timeout: 30,
            request_head_timeout: 75,
            metrics_token: None,
            metrics_addr: None,
            // Tests that read mail start an SMTP server and set their own.
            mail_url: format!(
                "file://{}",
                std::env::temp_dir()
                    .join("console-sessions-test-mail")
                    .display()
            ),
            mail_from: "console-sessions <no-reply@localhost>".to_owned(),
            mail_retry_delay: 30,
            require_verified_email: false,
            sign_in_alerts: true,
            step_up_window: 600,
            require_second_factor_for_staff: false,
            max_sessions_per_user: 0,
            staff_session_idle_timeout: 1800,
            staff_session_absolute_lifetime: 12 * 3600,
        }
    }

    /// Where the site lives and which services it works with.
    pub fn site(&self) -> SiteSettings {
        SiteSettings {
            public_origin: self.public_origin.clone(),
            base_path: self.base_path.clone(),
            redirect_origins: self.redirect_origins.clone(),
            embed_origins: self.embed_origins.clone(),
            bench_routes: self.bench_baseline_route,
            step_up_window: Duration::from_secs(self.step_up_window),
            require_second_factor_for_staff: self.require_second_factor_for_staff,
            max_sessions_per_user: self.max_sessions_per_user,
            staff_lifetimes: match (
                self.staff_session_idle_timeout
                    .min(self.session_idle_timeout),
                self.staff_session_absolute_lifetime
                    .min(self.session_absolute_lifetime),
            ) {
                (0, 0) => None,
                // One of them 0: that one is everyone's.
                (0, absolute) => Some((self.session_idle_timeout, absolute)),
                (idle, 0) => Some((idle, self.session_absolute_lifetime)),
                (idle, absolute) => Some((idle, absolute)),
            }
            .map(|(idle, absolute)| (Duration::from_secs(idle), Duration::from_secs(absolute))),
        }
    }

    /// The database pool's settings.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            acquire_timeout: Duration::from_secs(self.database_timeout),
            ..PoolSettings::default()
        }
    }

    /// The account service's settings.
    pub fn accounts_config(&self) -> AccountsConfig {
        AccountsConfig {
            signup_open: self.signup_open,
            signup_limits: SignUpLimits {
                per_ip: self.signup_limit_per_ip,
                total: self.signup_limit_total,
                window: Duration::from_secs(3600),
            },
            require_verified_email: self.require_verified_email,
            sign_in_alerts: self.sign_in_alerts,
            passkey_origin: self.passkey_origin(),
            ..AccountsConfig::default()
        }
    }

    /// The origin passkeys are bound to: `PUBLIC_ORIGIN`, else, when listening on loopback,
    /// `http://localhost:PORT` (browsers allow passkeys there without HTTPS, never on an IP
    /// address: open the site at that address to use them). `None` turns passkeys off.
    pub fn passkey_origin(&self) -> Option<String> {
        match &self.public_origin {
            Some(origin) => Some(origin.clone()),
            None if self.addr.ip().is_loopback() && self.addr.port() != 0 => {
                Some(format!("http://localhost:{}", self.addr.port()))
            }
            None => None,
        }
    }

    /// The mail outbox's settings (`MAIL_URL`, `MAIL_FROM`).
    pub fn mail_config(&self) -> Result<MailConfig, MailError> {
        let mut config = MailConfig::new(&self.mail_url, &self.mail_from)?;
        config.retry.first_delay = Duration::from_secs(self.mail_retry_delay);
        Ok(config)
    }

    /// Where the links in mail lead: the public origin (else `http://` and the address listened
    /// on, which only this machine may reach), and the base path. `listening` is the address
    /// actually bound.
    pub fn mail_origin(&self, listening: SocketAddr) -> Result<PublicOrigin, MailError> {
        let origin = match &self.public_origin {
            Some(origin) => origin.clone(),
            None => format!("http://{listening}"),
        };
        PublicOrigin::parse(&format!("{origin}{}", self.base_path))
    }

    /// Whether the public origin is `https://…`.
    fn public_origin_is_https(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(super::site::is_https)
    }

    /// Whether the session and form cookies are `Secure` (and named `__Host-`): asked for with
    /// `--secure-cookies`, or implied by an `https://` public origin, since people then reach the
    /// site over HTTPS only and nothing else needs setting for the cookies never to travel in the
    /// clear.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies || self.public_origin_is_https()
    }

    /// Why serving with these settings risks cookies and passwords in the clear, if it does: the
    /// public origin is not `https://` (or unset) while the server listens beyond this machine. On
    /// loopback a proxy on the same host is assumed to be in front; elsewhere nothing says HTTPS is.
    pub fn plain_http_warning(&self) -> Option<String> {
        if self.addr.ip().is_loopback() || self.public_origin_is_https() {
            return None;
        }
        let origin = match &self.public_origin {
            Some(origin) => format!("PUBLIC_ORIGIN is {origin}"),
            None => "PUBLIC_ORIGIN is not set".to_owned(),
        };
        Some(format!(
            "{origin} while listening on {}, beyond this machine: unless the site is served over \
             HTTPS, sign-in passwords and session cookies travel in the clear. Serve it over HTTPS \
             and set PUBLIC_ORIGIN=https://…, which also makes the cookies Secure",
            self.addr
        ))
    }

    /// The session engine's settings.
    pub fn session_config(&self) -> SessionConfig {
        let secure = self.cookies_secure();
        SessionConfig {
            backend: self.session_backend,
            cookie_name: self.session_cookie_name.clone().unwrap_or_else(|| {
                match (&self.session_cookie_domain, secure) {
                    // `__Host-` forbids a Domain; `__Secure-` still promises Secure.
                    (Some(_), true) => "__Secure-session".to_owned(),
                    _ => SessionConfig::default_cookie_name(secure).to_owned(),
                }
            }),
            secure,
            idle_timeout: Duration::from_secs(self.session_idle_timeout),
            absolute_lifetime: Duration::from_secs(self.session_absolute_lifetime),
            browser_idle_timeout: Duration::from_secs(self.browser_session_idle_timeout),
            history_retention: Duration::from_secs(
                self.session_history_days.saturating_mul(24 * 3600),
            ),
            ip_retention: match self.ip_retention {
                IpRetention::Truncate { .. } => IpRetention::Truncate {
                    after: Duration::from_secs(self.ip_truncate_after_days.saturating_mul(86_400)),
                },
                other => other,
            },
            activity_interval: Duration::from_secs(self.session_activity_interval),
            cache: CacheSettings {
                max_capacity: self.session_cache_capacity,
                max_age: Duration::from_secs(self.session_cache_max_age),
            },
            trusted_proxies: self.trusted_proxies.clone(),
            trusted_proxy_header: self.trusted_proxy_header,
            cookie_domain: self.session_cookie_domain.clone(),
        }
    }
}

/// A metrics token: long enough not to be guessed, and sendable in an `Authorization` header.
fn parse_token(value: &str) -> Result<String, String> {
    if value.len() < 16 {
        return Err("must have at least 16 characters".into());
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(value.to_owned())
}

/// A base path: empty, or `/seg[/seg…]` with no trailing slash and only `A-Z a-z 0-9 . _ ~ -` in
/// its segments.
fn parse_base_path(value: &str) -> Result<String, String> {
    let value = value.trim();
    if crate::paths::is_valid(value) {
        Ok(value.to_owned())
    } else {
        Err(
            "must be empty or a path such as /sso or /account/v2: a leading slash, no trailing \
             slash, and only letters, digits and . _ ~ - in each segment"
                .into(),
        )
    }
}

/// A cookie domain: a host name (no scheme, port or path), lower-cased, without a leading dot.
fn parse_domain(value: &str) -> Result<String, String> {
    let domain = value.trim().trim_start_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(domain)
    } else {
        Err("must be a host name such as example.com (no scheme, port or path)".into())
    }
}

/// `scheme://host[:port]`, lower-cased, without a trailing slash: the form browsers send in `Origin`.
fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    // Host name or IP literal and port only: the value goes into headers (a CSP among them).
    let plain = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if rest.is_empty() || !plain {
        return Err(
            "must be scheme://host[:port] with no path, such as https://sessions.example.com"
                .into(),
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::{parse_base_path, parse_domain, parse_origin, parse_token, Settings};

    fn settings(addr: &str, public_origin: Option<&str>) -> Settings {
        let mut settings = Settings::for_tests("sqlite::memory:");
        settings.addr = addr.parse().unwrap();
        settings.public_origin = public_origin.map(str::to_owned);
        settings
    }

    #[test]
    fn an_https_public_origin_makes_cookies_secure_by_itself() {
        let secure = settings("127.0.0.1:3000", Some("https://sessions.example.com"));
        assert!(secure.cookies_secure());
        let config = secure.session_config();
        assert!(config.secure);
        assert_eq!(config.cookie_name, "__Host-session");
        for plain in [None, Some("http://127.0.0.1:3000")] {
            let settings = settings("127.0.0.1:3000", plain);
            assert!(!settings.cookies_secure(), "{plain:?}");
            assert_eq!(settings.session_config().cookie_name, "session");
        }
        let mut asked = settings("127.0.0.1:3000", None);
        asked.secure_cookies = true;
        assert!(asked.cookies_secure());
    }

    #[test]
    fn plain_http_beyond_loopback_is_warned_about() {
        for (addr, origin) in [
            ("0.0.0.0:3000", None),
            ("0.0.0.0:3000", Some("http://sessions.example.com")),
            ("192.0.2.10:3000", None),
            ("[::]:3000", Some("http://[2001:db8::1]:3000")),
        ] {
            let warning = settings(addr, origin).plain_http_warning();
            assert!(
                warning.as_deref().is_some_and(|w| w.contains("HTTPS")),
                "{addr} {origin:?}"
            );
        }
        for (addr, origin) in [
            ("127.0.0.1:3000", None),
            ("[::1]:3000", Some("http://localhost:3000")),
            ("0.0.0.0:3000", Some("https://sessions.example.com")),
            ("[::]:443", Some("https://sessions.example.com")),
        ] {
            assert_eq!(
                settings(addr, origin).plain_http_warning(),
                None,
                "{addr} {origin:?}"
            );
        }
    }

    #[test]
    fn base_paths_are_validated() {
        assert_eq!(parse_base_path("").as_deref(), Ok(""));
        assert_eq!(parse_base_path(" /sso ").as_deref(), Ok("/sso"));
        assert_eq!(parse_base_path("/a/b-c").as_deref(), Ok("/a/b-c"));
        for bad in [
            "/",
            "sso",
            "/sso/",
            "/a b",
            "/sso?x=1",
            "https://x/sso",
            "/a//b",
        ] {
            assert!(parse_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_domains_are_plain_host_names() {
        assert_eq!(parse_domain(".Example.COM").as_deref(), Ok("example.com"));
        assert_eq!(
            parse_domain("sso.example.com").as_deref(),
            Ok("sso.example.com")
        );
        for bad in [
            "",
            ".",
            "https://example.com",
            "example.com:443",
            "a..b",
            "ex ample.com",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metrics_tokens_must_be_long_and_plain() {
        assert!(parse_token("0123456789abcdef").is_ok());
        assert!(parse_token("short").is_err());
        assert!(parse_token("0123456789 abcdef").is_err());
        assert!(parse_token("0123456789abcdé").is_err());
    }

    #[test]
    fn origins_are_normalised_and_paths_refused() {
        assert_eq!(
            parse_origin("HTTPS://Sessions.Example.com/").as_deref(),
            Ok("https://sessions.example.com")
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:3000").as_deref(),
            Ok("http://127.0.0.1:3000")
        );
        for bad in [
            "sessions.example.com",
            "https://",
            "https://a/b",
            "ftp://a",
            "https://u@a",
            "https://a; script-src *",
            "https://*.example.com",
            "https://'self'",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
