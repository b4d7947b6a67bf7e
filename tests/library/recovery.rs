//! Account recovery and new sign-in alerts against every database: one-time tokens (single use,
//! expiry, stored hashed, bound to a purpose), forgotten passwords, email verification and changes,
//! new sign-in alerts and their answers, the security activity — each case on SQLite and on
//! PostgreSQL, with the `cached_db` session engine and a small GeoIP database.

use std::net::IpAddr;
use std::time::Duration;

use console_sessions::accounts::{
    AccountError, AccountRefusal, Accounts, AccountsConfig, Alert, AlertAnswer, IssuedToken,
    NewUser, ResetLimits, SecurityEventKind, SignInDevice, TokenPurpose, User,
    PASSWORD_RESET_LIFETIME,
};
use console_sessions::geo::{GeoIp, Place};
use console_sessions::sessions::{
    now, AuthMethod, ClientInfo, CookieAction, EndCause, PublicId, SessionEvent, SessionToken,
    SignedIn,
};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, SessionBackend, SessionConfig, SessionEngine};
use tokio::sync::broadcast::Receiver;

use crate::geo_fixture;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new passphrase";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                            Chrome/131.0.0.0 Safari/537.36";
/// In the GeoIP fixture: London, United Kingdom.
const LONDON: &str = "81.2.69.1";
/// In the GeoIP fixture: Sweden.
const SWEDEN: &str = "89.160.20.113";

struct Ctx {
    backend: Backend,
    accounts: Accounts,
    engine: SessionEngine,
    test_db: TestDatabase,
    _geo_dir: tempfile::TempDir,
}

/// Reset requests: 2 per name typed and 3 per client address per hour.
fn test_config() -> AccountsConfig {
    AccountsConfig {
        reset_limits: ResetLimits {
            per_login: 2,
            per_ip: 3,
            window: Duration::from_secs(3600),
        },
        ..AccountsConfig::default()
    }
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

fn client(address: &str, user_agent: &str) -> ClientInfo {
    ClientInfo {
        ip: ip(address),
        user_agent: Some(user_agent.to_owned()),
        ..ClientInfo::default()
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, AccountError>) {
    assert!(
        matches!(
            result,
            Err(AccountError::Refused(AccountRefusal::InvalidToken))
        ),
        "expected an invalid token, got {result:?}"
    );
}

impl Ctx {
    async fn new(backend: Backend) -> Self {
        let test_db = TestDatabase::new(backend)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
        let geo_dir = tempfile::tempdir().unwrap();
        let geo_path = geo_dir.path().join("GeoLite2-City.mmdb");
        geo_fixture::write_city(&geo_path);
        let engine = SessionEngine::with_geoip(
            test_db.db.clone(),
            SessionConfig {
                backend: SessionBackend::CachedDb,
                ..SessionConfig::default()
            },
            GeoIp::open(&geo_path).unwrap(),
        );
        let accounts = Accounts::new(test_db.db.clone(), engine.clone(), test_config());
        Self {
            backend,
            accounts,
            engine,
            test_db,
            _geo_dir: geo_dir,
        }
    }

    /// A user with this email address (none for `None`).
    async fn create(&self, username: &str, email: Option<&str>) -> User {
        self.accounts
            .create_user(NewUser {
                username: username.to_owned(),
                email: email.map(str::to_owned),
                password: PASSWORD.to_owned(),
                is_staff: false,
            })
            .await
            .unwrap()
    }

    async fn reset_token(&self, login: &str) -> IssuedToken {
        self.accounts
            .request_password_reset(login, ip("198.51.100.1"))
            .await
            .unwrap()
            .expect("an account matches")
            .token
    }

    /// Signs `user_id` in through the engine as a request would; returns the session's cookie and
    /// the sign-in the engine reported.
    async fn sign_in_session(&self, user_id: i64, client: ClientInfo) -> (SessionToken, SignedIn) {
        let mut events = self.engine.subscribe();
        let session = self.engine.session(None, client);
        session
            .sign_in(user_id, AuthMethod::Password)
            .await
            .unwrap();
        let token = match self.engine.commit(&session).await.unwrap().cookie {
            CookieAction::Set { token, .. } => token,
            other => panic!("expected a cookie, got {other:?}"),
        };
        loop {
            if let SessionEvent::SignedIn(signed_in) = next_event(&mut events).await {
                return (token, signed_in);
            }
        }
    }

    /// A sign-in event of `user_id` (for a session that need not exist).
    fn event(&self, user_id: i64, client: ClientInfo) -> SignedIn {
        SignedIn {
            user_id,
            public_id: PublicId::generate(),
            method: AuthMethod::Password,
            client,
        }
    }

    async fn note(&self, user_id: i64, address: &str, user_agent: &str) -> Option<Alert> {
        let event = self.event(user_id, client(address, user_agent));
        self.accounts.note_sign_in_event(&event).await.unwrap()
    }

    async fn loads(&self, token: &SessionToken) -> bool {
        self.engine
            .store()
            .load(&token.hash(), now())
            .await
            .unwrap()
            .is_some()
    }

    fn is_cached(&self, token: &SessionToken) -> bool {
        self.engine.cache().unwrap().is_cached(&token.hash())
    }

    /// How many rows of `table` match `condition` (an UPDATE that changes nothing counts the rows
    /// it matches, on both backends).
    async fn rows(&self, table: &str, condition: &str) -> u64 {
        self.test_db
            .execute(&format!(
                "UPDATE {table} SET user_id = user_id WHERE {condition}"
            ))
            .await
            .unwrap()
    }

    /// A byte string literal of this backend.
    fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("decode('{hex}', 'hex')"),
        }
    }

    /// Moves every token's times `seconds` into the past: time passes without sleeping.
    async fn let_time_pass(&self, seconds: i64) {
        let ms = seconds * 1000;
        self.test_db
            .execute(&format!(
                "UPDATE account_tokens SET created_at = created_at - {ms}, \
                 expires_at = expires_at - {ms}"
            ))
            .await
            .unwrap();
    }

    async fn activity(&self, user_id: i64) -> Vec<SecurityEventKind> {
        self.accounts
            .security_activity(user_id, 100, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }
}

async fn next_event(events: &mut Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 seconds")
        .unwrap()
}

// ---- One-time tokens ----

async fn a_token_works_once_and_the_database_keeps_only_its_hash(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let token = ctx.reset_token("alice").await;
    let raw = token.token.expose();
    assert_eq!(raw.len(), 43);
    assert!(
        !format!("{token:?}").contains(raw),
        "tokens are never shown"
    );

    let hashed = ctx.bytes_literal(token.token.hash().as_bytes());
    let as_typed = ctx.bytes_literal(raw.as_bytes());
    assert_eq!(
        ctx.rows("account_tokens", &format!("token_hash = {hashed}"))
            .await,
        1
    );
    assert_eq!(
        ctx.rows("account_tokens", &format!("token_hash = {as_typed}"))
            .await,
        0
    );
    let anywhere = format!("email = '{raw}' OR session_public_id = '{raw}' OR purpose = '{raw}'");
    assert_eq!(ctx.rows("account_tokens", &anywhere).await, 0);

    let done = ctx
        .accounts
        .reset_password(raw, NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(done.user.id, alice.id);
    invalid(
        ctx.accounts
            .reset_password(raw, "yet another passphrase")
            .await,
    );
    // The second use changed nothing.
    ctx.accounts
        .authenticate("alice", NEW_PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap();
    // Malformed tokens are refused without a query's worth of fuss.
    for bad in [
        "",
        "short",
        "x".repeat(43).as_str(),
        format!("{raw}x").as_str(),
    ] {
        invalid(ctx.accounts.reset_password(bad, NEW_PASSWORD).await);
        invalid(ctx.accounts.verify_email(bad).await);
    }
}

async fn of_concurrent_uses_of_one_token_exactly_one_wins(ctx: Ctx) {
    ctx.create("alice", Some("alice@example.test")).await;
    let alice = ctx
        .accounts
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let verification = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    let raw = verification.token.token.expose();
    let uses = (0..8).map(|_| {
        let accounts = ctx.accounts.clone();
        let raw = raw.to_owned();
        tokio::spawn(async move { accounts.verify_email(&raw).await })
    });
    let mut won = 0;
    for done in futures_join(uses).await {
        match done {
            Ok(user) => {
                won += 1;
                assert!(user.email_verified_at.is_some());
            }
            Err(AccountError::Refused(AccountRefusal::InvalidToken)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);

    // Two resets with one token, each hashing its password: one password is set.
    let raw = ctx.reset_token("alice").await.token.expose().to_owned();
    let (first, second) = tokio::join!(
        ctx.accounts.reset_password(&raw, "first new passphrase"),
        ctx.accounts.reset_password(&raw, "second new passphrase"),
    );
    assert_eq!(
        u8::from(first.is_ok()) + u8::from(second.is_ok()),
        1,
        "{first:?} {second:?}"
    );
    let winner = if first.is_ok() {
        invalid(second);
        "first new passphrase"
    } else {
        invalid(first);
        "second new passphrase"
    };
    ctx.accounts
        .authenticate("alice", winner, ip("203.0.113.5"))
        .await
        .unwrap();
}

/// Awaits every spawned task, in order.
async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

async fn tokens_expire_after_their_lifetime(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let before = now();
    let reset = ctx.reset_token("alice").await;
    let lifetime = reset.expires_at - before;
    assert!(
        lifetime >= PASSWORD_RESET_LIFETIME
            && lifetime < PASSWORD_RESET_LIFETIME + Duration::from_secs(5),
        "{lifetime:?}"
    );
    let verification = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    assert!(verification.token.expires_at - before >= Duration::from_secs(24 * 3600));

    // 31 minutes on: the reset link is dead, the verification link (24 hours) is not.
    ctx.let_time_pass(31 * 60).await;
    invalid(
        ctx.accounts
            .reset_password(reset.token.expose(), NEW_PASSWORD)
            .await,
    );
    let second = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    ctx.let_time_pass(23 * 3600).await;
    ctx.accounts
        .verify_email(second.token.token.expose())
        .await
        .unwrap();
    let third = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    ctx.let_time_pass(25 * 3600).await;
    invalid(ctx.accounts.verify_email(third.token.token.expose()).await);

    // A lifetime of zero: dead on arrival.
    let mut config = test_config();
    config.token_lifetimes.password_reset = Duration::ZERO;
    let strict = Accounts::new(ctx.test_db.db.clone(), ctx.engine.clone(), config);
    let reset = strict
        .request_password_reset("alice", ip("198.51.100.2"))
        .await
        .unwrap()
        .unwrap();
    invalid(
        strict
            .reset_password(reset.token.token.expose(), NEW_PASSWORD)
            .await,
    );

    // Expired tokens are swept.
    assert!(
        ctx.rows("account_tokens", "expires_at <= 9999999999999")
            .await
            > 0
    );
    ctx.accounts.clear_stale_attempts().await.unwrap();
    let left = ctx
        .rows(
            "account_tokens",
            &format!("expires_at <= {}", now().unix_timestamp() * 1000),
        )
        .await;
    assert_eq!(left, 0);
}

async fn a_token_is_good_only_for_its_purpose(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let verify = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    let verify = verify.token.token.expose();
    let reset = ctx.reset_token("alice").await;
    let reset = reset.token.expose();
    let change = ctx
        .accounts
        .request_email_change(alice.id, "alice@new.example")
        .await
        .unwrap();
    let change = change.token.token.expose();

    invalid(ctx.accounts.reset_password(verify, NEW_PASSWORD).await);
    invalid(ctx.accounts.reset_password(change, NEW_PASSWORD).await);
    invalid(ctx.accounts.verify_email(reset).await);
    invalid(ctx.accounts.verify_email(change).await);
    invalid(ctx.accounts.confirm_email_change(verify).await);
    invalid(ctx.accounts.answer_alert(reset, AlertAnswer::NotMe).await);

    // Each still works for what it was made for.
    ctx.accounts.verify_email(verify).await.unwrap();
    ctx.accounts.confirm_email_change(change).await.unwrap();
    ctx.accounts
        .reset_password(reset, NEW_PASSWORD)
        .await
        .unwrap();
}

// ---- Forgotten passwords ----

async fn forgot_password_answers_none_for_unknown_inactive_and_unreachable_accounts(ctx: Ctx) {
    let alice = ctx.create("alice", Some("Alice@Example.test")).await;
    let inactive = ctx.create("ivan", Some("ivan@example.test")).await;
    ctx.accounts.set_active(inactive.id, false).await.unwrap();
    ctx.create("nomail", None).await;
    ctx.create("twin1", Some("twins@example.test")).await;
    ctx.create("twin2", Some("twins@example.test")).await;

    let from = ip("198.51.100.1");
    let mut config = test_config();
    config.reset_limits = ResetLimits::default();
    let accounts = Accounts::new(ctx.test_db.db.clone(), ctx.engine.clone(), config);
    for nobody in [
        "bob",
        "bob@example.test",
        "ivan",
        "ivan@example.test",
        "nomail",
        "twins@example.test",
        "   ",
        "x".repeat(5000).as_str(),
    ] {
        let answer = accounts.request_password_reset(nobody, from).await.unwrap();
        assert!(answer.is_none(), "{nobody:?}");
    }
    for login in [
        "alice",
        " ALICE ",
        "alice@example.test",
        "ALICE@EXAMPLE.TEST",
    ] {
        let reset = accounts.request_password_reset(login, from).await.unwrap();
        let reset = reset.unwrap_or_else(|| panic!("{login:?} names alice"));
        assert_eq!(reset.user.id, alice.id);
        assert_eq!(reset.user.email.as_deref(), Some("Alice@Example.test"));
    }
    assert!(ctx
        .activity(alice.id)
        .await
        .contains(&SecurityEventKind::PasswordResetRequested));
}

async fn forgot_password_is_throttled_per_name_and_per_address(ctx: Ctx) {
    ctx.create("alice", Some("alice@example.test")).await;
    ctx.create("bob", Some("bob@example.test")).await;
    let request = |login: &'static str, from: &'static str| {
        let accounts = ctx.accounts.clone();
        async move { accounts.request_password_reset(login, ip(from)).await }
    };
    let throttled = |result: Result<_, AccountError>| match result {
        Err(AccountError::Refused(AccountRefusal::Throttled { retry_after_secs })) => {
            assert!(retry_after_secs > 0 && retry_after_secs <= 3600);
        }
        other => panic!("expected throttling, got {other:?}"),
    };
    // Two per name…
    assert!(request("alice", "198.51.100.1").await.unwrap().is_some());
    assert!(request("alice", "198.51.100.1").await.unwrap().is_some());
    throttled(request("alice", "198.51.100.1").await);
    throttled(request("alice", "198.51.100.2").await);
    // …however it is written, and whether or not an account has it.
    throttled(request(" ALICE ", "198.51.100.3").await);
    assert!(request("nobody", "198.51.100.4").await.unwrap().is_none());
    assert!(request("nobody", "198.51.100.4").await.unwrap().is_none());
    throttled(request("nobody", "198.51.100.4").await);
    // Three per address, for any name: 198.51.100.1 made three already.
    throttled(request("bob", "198.51.100.1").await);
    assert!(request("bob", "198.51.100.5").await.unwrap().is_some());
}

async fn a_reset_ends_every_session_and_only_the_new_password_works(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let bob = ctx.create("bob", Some("bob@example.test")).await;
    let (phone, _) = ctx
        .sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    let (laptop, _) = ctx
        .sign_in_session(alice.id, client(LONDON, CHROME_LINUX))
        .await;
    let (bobs, _) = ctx
        .sign_in_session(bob.id, client(LONDON, FIREFOX_LINUX))
        .await;
    for token in [&phone, &laptop, &bobs] {
        assert!(ctx.loads(token).await && ctx.is_cached(token));
    }
    let mut events = ctx.engine.subscribe();
    let reset = ctx.reset_token("alice").await;

    // A password the rules refuse leaves the token usable.
    assert!(matches!(
        ctx.accounts
            .reset_password(reset.token.expose(), "alice")
            .await,
        Err(
            AccountError::Refused(AccountRefusal::PasswordTooShort { .. })
                | AccountError::Refused(AccountRefusal::PasswordEqualsUsername)
        )
    ));
    let done = ctx
        .accounts
        .reset_password(reset.token.expose(), NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(done.sessions_ended, 2);
    for token in [&phone, &laptop] {
        assert!(!ctx.is_cached(token));
        assert!(!ctx.loads(token).await);
    }
    assert!(ctx.loads(&bobs).await);
    for _ in 0..2 {
        match next_event(&mut events).await {
            SessionEvent::Ended(ended) => {
                assert_eq!(ended.user_id, Some(alice.id));
                assert_eq!(ended.reason, EndCause::PasswordChanged);
            }
            other => panic!("expected an ended session, got {other:?}"),
        }
    }
    assert!(matches!(
        ctx.accounts
            .authenticate("alice", PASSWORD, ip("203.0.113.5"))
            .await,
        Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
    ));
    ctx.accounts
        .authenticate("alice", NEW_PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap();
    assert_eq!(
        ctx.activity(alice.id).await[..2],
        [
            SecurityEventKind::PasswordReset,
            SecurityEventKind::PasswordResetRequested
        ]
    );
}

async fn a_second_reset_request_voids_the_first_token(ctx: Ctx) {
    ctx.create("alice", Some("alice@example.test")).await;
    let first = ctx.reset_token("alice").await;
    let second = ctx.reset_token("alice").await;
    invalid(
        ctx.accounts
            .reset_password(first.token.expose(), NEW_PASSWORD)
            .await,
    );
    ctx.accounts
        .reset_password(second.token.expose(), NEW_PASSWORD)
        .await
        .unwrap();
}

async fn a_password_set_by_staff_ends_every_session_and_voids_reset_links(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let (phone, _) = ctx
        .sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    let reset = ctx.reset_token("alice").await;
    assert_eq!(
        ctx.accounts
            .set_password(alice.id, NEW_PASSWORD)
            .await
            .unwrap(),
        1
    );
    assert!(!ctx.loads(&phone).await);
    invalid(
        ctx.accounts
            .reset_password(reset.token.expose(), "another passphrase")
            .await,
    );
    assert_eq!(
        ctx.activity(alice.id).await[0],
        SecurityEventKind::PasswordSetByStaff
    );
    // The self-service change keeps its sessions, and is recorded too.
    let (laptop, _) = ctx
        .sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    ctx.accounts
        .change_password(alice.id, NEW_PASSWORD, PASSWORD)
        .await
        .unwrap();
    assert!(ctx.loads(&laptop).await);
    assert_eq!(
        ctx.activity(alice.id).await[0],
        SecurityEventKind::PasswordChanged
    );
}

async fn staff_send_a_reset_link_that_the_reset_page_can_name_before_it_is_used(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let first = ctx.reset_token("alice").await;
    let reset = ctx.accounts.password_reset_for(alice.id).await.unwrap();
    assert_eq!(reset.user.id, alice.id);
    // The staff's link replaces the one asked for earlier.
    invalid(
        ctx.accounts
            .reset_password(first.token.expose(), NEW_PASSWORD)
            .await,
    );
    assert_eq!(
        ctx.activity(alice.id).await[0],
        SecurityEventKind::PasswordResetRequested
    );
    // The page names the account without using the link.
    let named = ctx
        .accounts
        .password_reset_user(reset.token.token.expose())
        .await
        .unwrap();
    assert_eq!(named.map(|user| user.id), Some(alice.id));
    let token = reset.token.token.expose();
    assert!(ctx
        .accounts
        .token_is_live(token, TokenPurpose::PasswordReset)
        .await
        .unwrap());
    assert!(!ctx
        .accounts
        .token_is_live(token, TokenPurpose::EmailVerification)
        .await
        .unwrap());
    ctx.accounts
        .reset_password(reset.token.token.expose(), NEW_PASSWORD)
        .await
        .unwrap();
    assert!(!ctx
        .accounts
        .token_is_live(token, TokenPurpose::PasswordReset)
        .await
        .unwrap());
    for used_or_garbage in [reset.token.token.expose(), "garbage", ""] {
        assert_eq!(
            ctx.accounts
                .password_reset_user(used_or_garbage)
                .await
                .unwrap(),
            None
        );
    }
    // Nobody to send it to, or no address to send it to.
    let nomail = ctx.create("nomail", None).await;
    assert!(matches!(
        ctx.accounts.password_reset_for(nomail.id).await,
        Err(AccountError::Refused(AccountRefusal::EmailRequired))
    ));
    assert!(matches!(
        ctx.accounts.password_reset_for(9999).await,
        Err(AccountError::UserNotFound)
    ));
    // The peek refuses an inactive account's link, as the reset would; staff get no new one.
    let bob = ctx.create("bob", Some("bob@example.test")).await;
    let bobs = ctx.accounts.password_reset_for(bob.id).await.unwrap();
    ctx.accounts.set_active(bob.id, false).await.unwrap();
    assert_eq!(
        ctx.accounts
            .password_reset_user(bobs.token.token.expose())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        ctx.accounts.password_reset_for(bob.id).await,
        Err(AccountError::UserNotFound)
    ));
}

async fn with_verified_addresses_required_sign_up_needs_one_and_sign_in_waits_for_it(ctx: Ctx) {
    let accounts = Accounts::new(
        ctx.test_db.db.clone(),
        ctx.engine.clone(),
        AccountsConfig {
            require_verified_email: true,
            ..test_config()
        },
    );
    assert!(matches!(
        accounts.sign_up("carol", None, PASSWORD, ip(LONDON)).await,
        Err(AccountError::Refused(AccountRefusal::EmailRequired))
    ));
    let carol = accounts
        .sign_up("carol", Some("carol@example.test"), PASSWORD, ip(LONDON))
        .await
        .unwrap();
    // The right password says what is missing; a wrong one says no more than ever.
    assert!(matches!(
        accounts.authenticate("carol", PASSWORD, ip(LONDON)).await,
        Err(AccountError::Refused(AccountRefusal::EmailNotVerified))
    ));
    assert!(matches!(
        accounts
            .authenticate("carol", "wrong password", ip(LONDON))
            .await,
        Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
    ));
    let user = accounts.user(carol.id).await.unwrap().unwrap();
    assert_eq!(
        user.last_login_at, None,
        "a refused sign-in is not recorded"
    );
    let started = accounts.start_email_verification(carol.id).await.unwrap();
    accounts
        .verify_email(started.token.token.expose())
        .await
        .unwrap();
    let signed_in = accounts
        .authenticate("carol", PASSWORD, ip(LONDON))
        .await
        .unwrap();
    assert_eq!(signed_in.id, carol.id);
    // An account with no address to confirm (made by staff) is told so rather than sent a link.
    ctx.create("erin", None).await;
    assert!(matches!(
        accounts.authenticate("erin", PASSWORD, ip(LONDON)).await,
        Err(AccountError::Refused(AccountRefusal::EmailRequired))
    ));
    // A sensitive change asks for the current password, under the account's throttle.
    accounts.confirm_password(carol.id, PASSWORD).await.unwrap();
    assert!(matches!(
        accounts.confirm_password(carol.id, "wrong password").await,
        Err(AccountError::Refused(AccountRefusal::WrongCurrentPassword))
    ));
    // Without the setting, the same unverified account signs in.
    let dave = ctx.create("dave", Some("dave@example.test")).await;
    assert_eq!(
        ctx.accounts
            .authenticate("dave", PASSWORD, ip(LONDON))
            .await
            .unwrap()
            .id,
        dave.id
    );
}

// ---- Email addresses ----

async fn verifying_an_email_address_marks_it_verified(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    assert_eq!(alice.email_verified_at, None);
    let started = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    assert_eq!(started.email, "alice@example.test");
    let verified = ctx
        .accounts
        .verify_email(started.token.token.expose())
        .await
        .unwrap();
    assert!(verified.email_verified_at.is_some());
    assert_eq!(
        ctx.accounts
            .user(alice.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified_at,
        verified.email_verified_at
    );
    assert_eq!(
        ctx.activity(alice.id).await[0],
        SecurityEventKind::EmailVerified
    );

    let nomail = ctx.create("nomail", None).await;
    assert!(matches!(
        ctx.accounts.start_email_verification(nomail.id).await,
        Err(AccountError::Refused(AccountRefusal::EmailRequired))
    ));
    assert!(matches!(
        ctx.accounts.start_email_verification(9999).await,
        Err(AccountError::UserNotFound)
    ));
    // A link sent to an address the user no longer has proves nothing.
    let stale = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    ctx.test_db
        .execute(&format!(
            "UPDATE users SET email = 'other@example.test' WHERE id = {}",
            alice.id
        ))
        .await
        .unwrap();
    invalid(ctx.accounts.verify_email(stale.token.token.expose()).await);
}

async fn an_email_change_confirmed_from_the_new_address_replaces_and_verifies_it(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let pending = ctx
        .accounts
        .start_email_verification(alice.id)
        .await
        .unwrap();
    let change = ctx
        .accounts
        .request_email_change(alice.id, " alice@new.example ")
        .await
        .unwrap();
    assert_eq!(change.old_email.as_deref(), Some("alice@example.test"));
    assert_eq!(change.new_email, "alice@new.example");
    // Nothing changes until the new address answers.
    let before = ctx.accounts.user(alice.id).await.unwrap().unwrap();
    assert_eq!(before.email.as_deref(), Some("alice@example.test"));

    let (user, old) = ctx
        .accounts
        .confirm_email_change(change.token.token.expose())
        .await
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("alice@new.example"));
    assert!(user.email_verified_at.is_some());
    assert_eq!(old.as_deref(), Some("alice@example.test"));
    // The verification link of the old address no longer works.
    invalid(
        ctx.accounts
            .verify_email(pending.token.token.expose())
            .await,
    );
    invalid(
        ctx.accounts
            .confirm_email_change(change.token.token.expose())
            .await,
    );
    assert_eq!(
        ctx.activity(alice.id).await[..2],
        [
            SecurityEventKind::EmailChanged,
            SecurityEventKind::EmailChangeRequested
        ]
    );
}

async fn an_email_change_to_a_taken_or_invalid_address_is_refused(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    ctx.create("bob", Some("bob@example.test")).await;
    for taken in ["bob@example.test", "BOB@Example.TEST"] {
        assert!(matches!(
            ctx.accounts.request_email_change(alice.id, taken).await,
            Err(AccountError::Refused(AccountRefusal::EmailTaken))
        ));
    }
    for bad in ["", "not an address", "a@b@c", "@example.test"] {
        assert!(matches!(
            ctx.accounts.request_email_change(alice.id, bad).await,
            Err(AccountError::Refused(AccountRefusal::EmailInvalid))
        ));
    }
    // Taken between the request and the answer.
    let change = ctx
        .accounts
        .request_email_change(alice.id, "carol@example.test")
        .await
        .unwrap();
    ctx.create("carol", Some("Carol@example.test")).await;
    assert!(matches!(
        ctx.accounts
            .confirm_email_change(change.token.token.expose())
            .await,
        Err(AccountError::Refused(AccountRefusal::EmailTaken))
    ));
    let alice = ctx.accounts.user(alice.id).await.unwrap().unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice@example.test"));
}

// ---- New sign-in alerts ----

async fn a_sign_in_from_a_new_browser_system_or_country_alerts_and_a_known_one_does_not(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    // The first sign-in has nothing to be compared with.
    assert!(ctx.note(alice.id, LONDON, FIREFOX_LINUX).await.is_none());
    assert!(ctx.note(alice.id, LONDON, FIREFOX_LINUX).await.is_none());
    // Another address in the same country is the same context.
    assert!(ctx
        .note(alice.id, "81.2.69.200", FIREFOX_LINUX)
        .await
        .is_none());

    let alert = ctx
        .note(alice.id, LONDON, CHROME_LINUX)
        .await
        .expect("a new browser");
    assert_eq!(alert.user.username, "alice");
    assert_eq!(alert.user.email.as_deref(), Some("alice@example.test"));
    assert_eq!(alert.device.browser.as_deref(), Some("Chrome"));
    assert!(
        alert.device.summary.contains("Chrome"),
        "{}",
        alert.device.summary
    );
    assert_eq!(alert.place.country_code.as_deref(), Some("GB"));
    assert_eq!(alert.place.city.as_deref(), Some("London"));
    assert_eq!(alert.ip, ip(LONDON));
    assert!(alert.it_was_me.token != alert.not_me.token);
    assert!(alert.not_me.expires_at - alert.at >= Duration::from_secs(7 * 24 * 3600));

    assert!(
        ctx.note(alice.id, LONDON, FIREFOX_WINDOWS).await.is_some(),
        "a new system"
    );
    let abroad = ctx
        .note(alice.id, SWEDEN, FIREFOX_LINUX)
        .await
        .expect("a new country");
    assert_eq!(abroad.place.country_code.as_deref(), Some("SE"));
    for known in [
        (LONDON, CHROME_LINUX),
        (LONDON, FIREFOX_WINDOWS),
        (SWEDEN, FIREFOX_LINUX),
    ] {
        assert!(
            ctx.note(alice.id, known.0, known.1).await.is_none(),
            "{known:?}"
        );
    }
    let activity = ctx
        .accounts
        .security_activity(alice.id, 10, 0)
        .await
        .unwrap();
    assert_eq!(activity.len(), 3);
    assert!(activity
        .iter()
        .all(|e| e.kind == SecurityEventKind::NewSignIn));
    assert_eq!(activity[0].place.country_code.as_deref(), Some("SE"));
    assert_eq!(activity[0].ip, ip(SWEDEN));

    // Contexts can also be given as they are known.
    let event = ctx.event(alice.id, client(LONDON, FIREFOX_LINUX));
    let device = SignInDevice {
        browser: Some("Firefox".into()),
        os: Some("Haiku".into()),
        summary: "Firefox on Haiku".into(),
    };
    let place = Place::default();
    assert!(ctx
        .accounts
        .note_sign_in(&event, &place, &device)
        .await
        .unwrap()
        .is_some());
    assert!(ctx
        .accounts
        .note_sign_in(&event, &place, &device)
        .await
        .unwrap()
        .is_none());
}

async fn with_alerts_off_or_no_address_no_alert_is_made(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let nomail = ctx.create("nomail", None).await;
    ctx.accounts
        .set_sign_in_alerts(alice.id, false)
        .await
        .unwrap();
    assert!(
        !ctx.accounts
            .user(alice.id)
            .await
            .unwrap()
            .unwrap()
            .sign_in_alerts
    );
    for user in [alice.id, nomail.id] {
        assert!(ctx.note(user, LONDON, FIREFOX_LINUX).await.is_none());
        assert!(ctx.note(user, SWEDEN, CHROME_LINUX).await.is_none());
    }
    // Still kept in the activity, without an alert or its tokens.
    let activity = ctx
        .accounts
        .security_activity(alice.id, 10, 0)
        .await
        .unwrap();
    assert_eq!(activity[0].kind, SecurityEventKind::NewSignIn);
    assert_eq!(activity[0].detail, "no alert");
    assert_eq!(activity[1].kind, SecurityEventKind::SignInAlertsOff);
    assert_eq!(ctx.rows("account_tokens", "1 = 1").await, 0);

    ctx.accounts
        .set_sign_in_alerts(alice.id, true)
        .await
        .unwrap();
    assert!(ctx.note(alice.id, SWEDEN, FIREFOX_WINDOWS).await.is_some());
    assert!(matches!(
        ctx.accounts.set_sign_in_alerts(9999, true).await,
        Err(AccountError::UserNotFound)
    ));

    // With alerts switched off for everyone, new contexts are still kept, without alerts.
    let switched_off = Accounts::new(
        ctx.test_db.db.clone(),
        ctx.engine.clone(),
        AccountsConfig {
            sign_in_alerts: false,
            ..test_config()
        },
    );
    let client = client(LONDON, CHROME_LINUX);
    let noted = switched_off
        .note_sign_in_event(&ctx.event(alice.id, client))
        .await
        .unwrap();
    assert!(noted.is_none());
    let activity = ctx
        .accounts
        .security_activity(alice.id, 1, 0)
        .await
        .unwrap();
    assert_eq!(activity[0].kind, SecurityEventKind::NewSignIn);
    assert_eq!(activity[0].detail, "no alert");
}

async fn this_wasnt_me_ends_exactly_that_session_and_leads_to_a_new_password(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let bob = ctx.create("bob", Some("bob@example.test")).await;
    let (own, first) = ctx
        .sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    assert!(ctx
        .accounts
        .note_sign_in_event(&first)
        .await
        .unwrap()
        .is_none());
    let (bobs, _) = ctx
        .sign_in_session(bob.id, client(SWEDEN, CHROME_LINUX))
        .await;
    let (stranger, signed_in) = ctx
        .sign_in_session(alice.id, client(SWEDEN, CHROME_LINUX))
        .await;
    let alert = ctx
        .accounts
        .note_sign_in_event(&signed_in)
        .await
        .unwrap()
        .expect("a new sign-in");
    assert_eq!(alert.session, signed_in.public_id);

    // Not signed in, and the other answer's token does not count for this one.
    invalid(
        ctx.accounts
            .answer_alert(alert.it_was_me.token.expose(), AlertAnswer::NotMe)
            .await,
    );
    let answered = ctx
        .accounts
        .answer_alert(alert.not_me.token.expose(), AlertAnswer::NotMe)
        .await
        .unwrap();
    assert!(answered.session_ended);
    assert_eq!(answered.session.as_ref(), Some(&signed_in.public_id));
    let history = ctx.engine.ended_sessions(alice.id, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].public_id, signed_in.public_id);
    assert_eq!(
        history[0].reason,
        console_sessions::sessions::EndCause::NotMe
    );
    assert!(!ctx.loads(&stranger).await && !ctx.is_cached(&stranger));
    assert!(ctx.loads(&own).await, "the user's other session stays");
    assert!(ctx.loads(&bobs).await);
    // Denied: it cannot be confirmed, nor denied twice.
    invalid(
        ctx.accounts
            .answer_alert(alert.it_was_me.token.expose(), AlertAnswer::ItWasMe)
            .await,
    );
    invalid(
        ctx.accounts
            .answer_alert(alert.not_me.token.expose(), AlertAnswer::NotMe)
            .await,
    );

    let reset = answered.password_reset.expect("a reset token");
    let done = ctx
        .accounts
        .reset_password(reset.token.expose(), NEW_PASSWORD)
        .await
        .unwrap();
    assert_eq!(done.sessions_ended, 1);
    assert!(!ctx.loads(&own).await);
    let reasons: Vec<_> = ctx
        .engine
        .ended_sessions(alice.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|ended| ended.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            console_sessions::sessions::EndCause::PasswordChanged,
            console_sessions::sessions::EndCause::NotMe
        ]
    );
    ctx.accounts
        .authenticate("alice", NEW_PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap();
}

async fn answers_are_recorded_in_the_security_activity(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    ctx.note(alice.id, LONDON, FIREFOX_LINUX).await;
    let first = ctx.note(alice.id, SWEDEN, FIREFOX_LINUX).await.unwrap();
    let second = ctx.note(alice.id, LONDON, CHROME_LINUX).await.unwrap();

    let confirmed = ctx
        .accounts
        .answer_alert(first.it_was_me.token.expose(), AlertAnswer::ItWasMe)
        .await
        .unwrap();
    assert!(!confirmed.session_ended && confirmed.password_reset.is_none());
    invalid(
        ctx.accounts
            .answer_alert(first.it_was_me.token.expose(), AlertAnswer::ItWasMe)
            .await,
    );
    // "It was me" leaves "this wasn't me" usable (a link scanner may have clicked the first).
    ctx.accounts
        .answer_alert(first.not_me.token.expose(), AlertAnswer::NotMe)
        .await
        .unwrap();
    ctx.accounts
        .answer_alert(second.it_was_me.token.expose(), AlertAnswer::ItWasMe)
        .await
        .unwrap();

    let activity = ctx
        .accounts
        .security_activity(alice.id, 100, 0)
        .await
        .unwrap();
    let kinds: Vec<_> = activity.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            SecurityEventKind::AlertConfirmed,
            SecurityEventKind::AlertDenied,
            SecurityEventKind::AlertConfirmed,
            SecurityEventKind::NewSignIn,
            SecurityEventKind::NewSignIn,
        ]
    );
    assert_eq!(activity[0].session.as_ref(), Some(&second.session));
    assert_eq!(activity[1].session.as_ref(), Some(&first.session));
    assert_eq!(activity[2].session.as_ref(), Some(&first.session));
    assert!(activity.windows(2).all(|pair| pair[0].at >= pair[1].at));
    // Paged.
    let page = ctx
        .accounts
        .security_activity(alice.id, 2, 1)
        .await
        .unwrap();
    assert_eq!(page, activity[1..3]);
    assert!(ctx
        .accounts
        .security_activity(alice.id, 10, 5)
        .await
        .unwrap()
        .is_empty());
}

async fn the_alert_task_hears_sign_ins_and_hands_each_alert_over(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let (sent, mut alerts) = tokio::sync::mpsc::unbounded_channel();
    let task = ctx.accounts.spawn_sign_in_alerts(move |alert| {
        let sent = sent.clone();
        async move {
            let _ = sent.send(alert);
        }
    });
    let quiet = |alerts: &mut tokio::sync::mpsc::UnboundedReceiver<Alert>| {
        assert!(alerts.try_recv().is_err(), "no alert expected");
    };
    ctx.sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    let (_, abroad) = ctx
        .sign_in_session(alice.id, client(SWEDEN, FIREFOX_LINUX))
        .await;
    let alert = tokio::time::timeout(Duration::from_secs(5), alerts.recv())
        .await
        .expect("an alert within 5 seconds")
        .unwrap();
    assert_eq!(alert.session, abroad.public_id);
    assert_eq!(alert.place.country_code.as_deref(), Some("SE"));
    // The first sign-in gave none; a known one gives none either.
    ctx.sign_in_session(alice.id, client(LONDON, FIREFOX_LINUX))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    quiet(&mut alerts);
    task.stop().await;
}

async fn deleting_a_user_removes_their_tokens_contexts_and_activity(ctx: Ctx) {
    let alice = ctx.create("alice", Some("alice@example.test")).await;
    let bob = ctx.create("bob", Some("bob@example.test")).await;
    for user in [&alice, &bob] {
        ctx.reset_token(&user.username).await;
        ctx.note(user.id, LONDON, FIREFOX_LINUX).await;
        ctx.note(user.id, SWEDEN, FIREFOX_LINUX).await.unwrap();
    }
    let of = |id: i64| format!("user_id = {id}");
    for table in ["account_tokens", "sign_in_contexts", "security_events"] {
        assert!(ctx.rows(table, &of(alice.id)).await > 0, "{table}");
    }
    ctx.accounts.delete_user(alice.id).await.unwrap();
    for table in ["account_tokens", "sign_in_contexts", "security_events"] {
        assert_eq!(ctx.rows(table, &of(alice.id)).await, 0, "{table}");
        assert!(ctx.rows(table, &of(bob.id)).await > 0, "{table}");
    }
}

suite!(on_every_database:
    a_token_works_once_and_the_database_keeps_only_its_hash,
    of_concurrent_uses_of_one_token_exactly_one_wins,
    tokens_expire_after_their_lifetime,
    a_token_is_good_only_for_its_purpose,
    forgot_password_answers_none_for_unknown_inactive_and_unreachable_accounts,
    forgot_password_is_throttled_per_name_and_per_address,
    a_reset_ends_every_session_and_only_the_new_password_works,
    a_second_reset_request_voids_the_first_token,
    a_password_set_by_staff_ends_every_session_and_voids_reset_links,
    staff_send_a_reset_link_that_the_reset_page_can_name_before_it_is_used,
    with_verified_addresses_required_sign_up_needs_one_and_sign_in_waits_for_it,
    verifying_an_email_address_marks_it_verified,
    an_email_change_confirmed_from_the_new_address_replaces_and_verifies_it,
    an_email_change_to_a_taken_or_invalid_address_is_refused,
    a_sign_in_from_a_new_browser_system_or_country_alerts_and_a_known_one_does_not,
    with_alerts_off_or_no_address_no_alert_is_made,
    this_wasnt_me_ends_exactly_that_session_and_leads_to_a_new_password,
    answers_are_recorded_in_the_security_activity,
    the_alert_task_hears_sign_ins_and_hands_each_alert_over,
    deleting_a_user_removes_their_tokens_contexts_and_activity,
);
