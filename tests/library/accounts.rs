//! Accounts against every database: sign-up, sign-in, password changes, deactivation, deletion,
//! throttling — each case on SQLite and on PostgreSQL, with the `cached_db` session engine.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use console_sessions::accounts::{
    AccountError, AccountRefusal, Accounts, AccountsConfig, DeviceToken, NewUser, SignUpLimits,
    ThrottleLimits, User, MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS,
};
use console_sessions::sessions::{now, ClientInfo, CookieAction, EndCause, SessionToken};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, SessionBackend, SessionConfig, SessionEngine};

const PASSWORD: &str = "correct horse battery";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

struct Ctx {
    accounts: Accounts,
    engine: SessionEngine,
    test_db: TestDatabase,
}

/// Small limits so the throttle shows within a few attempts: per account, per account and address
/// and per device cookie 3 failures, per address 5; delays 10 s doubling to 40 s; failures
/// forgotten 60 s after the last one or its lock.
fn test_config() -> AccountsConfig {
    let limits = |max_failures| ThrottleLimits {
        max_failures,
        window: Duration::from_secs(60),
        base_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(40),
    };
    AccountsConfig {
        account_throttle: limits(3),
        account_ip_throttle: limits(3),
        device_throttle: limits(3),
        ip_throttle: limits(5),
        ..AccountsConfig::default()
    }
}

/// [`test_config`] allowing `per_ip` sign-ups per client address and `total` in all, per hour.
fn sign_up_config(per_ip: u32, total: u32) -> AccountsConfig {
    AccountsConfig {
        signup_limits: SignUpLimits {
            per_ip,
            total,
            window: Duration::from_secs(3600),
        },
        ..test_config()
    }
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

fn new_user(username: &str, password: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: None,
        password: password.to_owned(),
        is_staff: false,
    }
}

impl Ctx {
    async fn new(backend: Backend) -> Self {
        let test_db = TestDatabase::new(backend)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
        let engine = SessionEngine::new(
            test_db.db.clone(),
            SessionConfig {
                backend: SessionBackend::CachedDb,
                ..SessionConfig::default()
            },
        );
        let accounts = Accounts::new(test_db.db.clone(), engine.clone(), test_config());
        Self {
            accounts,
            engine,
            test_db,
        }
    }

    /// Another account service over the same database and engine, with other settings.
    fn accounts_with(&self, config: AccountsConfig) -> Accounts {
        Accounts::new(self.test_db.db.clone(), self.engine.clone(), config)
    }

    async fn create(&self, username: &str) -> User {
        self.accounts
            .create_user(new_user(username, PASSWORD))
            .await
            .unwrap()
    }

    /// A signed-in session of `user_id`, made the way a request makes it; returns its token.
    async fn new_session(&self, user_id: i64) -> SessionToken {
        let client = ClientInfo {
            ip: ip("203.0.113.5"),
            user_agent: Some(FIREFOX.to_owned()),
            ..Default::default()
        };
        let session = self.engine.session(None, client);
        session.insert("hello", "world").await.unwrap();
        session.set_user_id(Some(user_id)).await.unwrap();
        match self.engine.commit(&session).await.unwrap().cookie {
            CookieAction::Set { token, .. } => token,
            other => panic!("expected a cookie, got {other:?}"),
        }
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

    /// Moves every throttling time `seconds` into the past: time passes without sleeping.
    async fn let_time_pass(&self, seconds: i64) {
        let ms = seconds * 1000;
        self.test_db
            .execute(&format!(
                "UPDATE login_attempts SET last_failure_at = last_failure_at - {ms}, \
                 forget_at = forget_at - {ms}, \
                 locked_until = CASE WHEN locked_until > 0 THEN locked_until - {ms} ELSE 0 END"
            ))
            .await
            .unwrap();
    }

    /// How many throttling rows match `condition`.
    async fn attempt_rows(&self, condition: &str) -> u64 {
        // An UPDATE that changes nothing counts the rows it matches, on both backends.
        self.test_db
            .execute(&format!(
                "UPDATE login_attempts SET failures = failures WHERE {condition}"
            ))
            .await
            .unwrap()
    }

    async fn sign_in(
        &self,
        username: &str,
        password: &str,
        from: &str,
    ) -> Result<User, AccountError> {
        self.accounts
            .authenticate(username, password, ip(from))
            .await
    }

    /// Signs in presenting a device cookie (or none); returns the new device cookie.
    async fn sign_in_with_device(
        &self,
        username: &str,
        password: &str,
        from: &str,
        device: Option<&DeviceToken>,
    ) -> Result<DeviceToken, AccountError> {
        self.accounts
            .sign_in(
                username,
                password,
                ip(from),
                device.map(DeviceToken::expose),
            )
            .await
            .map(|signed_in| signed_in.device_token)
    }

    async fn delay(&self, username: &str, from: &str) -> Option<Duration> {
        self.accounts
            .throttle_delay(username, ip(from))
            .await
            .unwrap()
    }
}

fn assert_throttled<T: std::fmt::Debug>(
    result: Result<T, AccountError>,
    at_most: Duration,
) -> Duration {
    match result {
        Err(AccountError::Refused(AccountRefusal::Throttled { retry_after_secs })) => {
            let retry_after = Duration::from_secs(retry_after_secs);
            assert!(
                retry_after > Duration::ZERO && retry_after <= at_most,
                "{retry_after:?} > {at_most:?}"
            );
            retry_after
        }
        other => panic!("expected throttling, got {other:?}"),
    }
}

fn assert_between(delay: Option<Duration>, low_secs: u64, high_secs: u64) {
    let delay = delay.expect("a delay");
    assert!(
        delay > Duration::from_secs(low_secs) && delay <= Duration::from_secs(high_secs),
        "{delay:?} not in ({low_secs}, {high_secs}] seconds"
    );
}

// ---- Creating users and signing in ----

async fn a_created_user_can_sign_in_and_the_sign_in_time_is_recorded(ctx: Ctx) {
    assert!(!ctx.accounts.has_users().await.unwrap());
    let created = ctx
        .accounts
        .create_user(NewUser {
            username: "  Alice ".into(),
            email: Some(" alice@example.test ".into()),
            password: PASSWORD.into(),
            is_staff: true,
        })
        .await
        .unwrap();
    assert_eq!(created.username, "Alice");
    assert_eq!(created.email.as_deref(), Some("alice@example.test"));
    assert!(created.is_staff && created.is_active);
    assert_eq!(created.last_login_at, None);
    assert!(ctx.accounts.has_users().await.unwrap());
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 1);

    let before = now();
    // Any case of the username signs in to the same account.
    let signed_in = ctx.sign_in("ALICE", PASSWORD, "203.0.113.5").await.unwrap();
    assert_eq!(signed_in.id, created.id);
    assert!(signed_in.last_login_at.unwrap() >= before);

    let stored = ctx.accounts.user(created.id).await.unwrap().unwrap();
    assert_eq!(stored.last_login_at, signed_in.last_login_at);
    assert_eq!(stored.created_at, created.created_at);
    assert_eq!(
        ctx.accounts.user_by_username("alice").await.unwrap(),
        Some(stored)
    );
    assert_eq!(ctx.accounts.user_by_username("bob").await.unwrap(), None);
    assert_eq!(ctx.accounts.user(created.id + 1000).await.unwrap(), None);
}

async fn usernames_differing_only_by_case_are_refused_ascii_and_non_ascii(ctx: Ctx) {
    ctx.create("Alice").await;
    ctx.create("Åsa").await;
    for taken in ["alice", "ALICE", " aLiCe ", "åsa", "ÅSA", "A\u{30a}sa"] {
        let error = ctx
            .accounts
            .create_user(new_user(taken, PASSWORD))
            .await
            .unwrap_err();
        assert!(
            matches!(error, AccountError::Refused(AccountRefusal::UsernameTaken)),
            "{taken}: {error:?}"
        );
        assert_eq!(error.to_string(), "This username is already taken.");
    }
    // Different names stay different, consistently with the folding (lower case, not case folding).
    ctx.create("STRASSE").await;
    ctx.create("straße").await;
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 4);
}

async fn empty_and_huge_usernames_and_passwords_are_refused_with_clear_messages(ctx: Ctx) {
    let megabyte = "x".repeat(1 << 20);
    let cases: [(NewUser, &str); 8] = [
        (new_user("", PASSWORD), "Enter a username."),
        (new_user("   ", PASSWORD), "Enter a username."),
        (
            new_user(&megabyte, PASSWORD),
            "A username can have at most 150 characters.",
        ),
        (new_user("alice", ""), "Enter a password."),
        (
            new_user("alice", &megabyte),
            "The password can have at most 1024 characters.",
        ),
        (
            new_user("alice", "seven77"),
            "The password must have at least 8 characters.",
        ),
        (
            new_user("alice.example", "ALICE.EXAMPLE"),
            "The password cannot be the same as the username.",
        ),
        (
            new_user("bad\nname", PASSWORD),
            "A username cannot contain control characters or invisible formatting characters.",
        ),
    ];
    for (new, message) in cases {
        let started = Instant::now();
        let error = ctx.accounts.create_user(new).await.unwrap_err();
        assert_eq!(error.to_string(), message);
        assert!(!error.is_internal());
        // Refused before any hashing (one hash takes about a second in a debug build).
        assert!(started.elapsed() < Duration::from_millis(500), "{message}");
    }
    let bad_email = NewUser {
        email: Some("not an email".into()),
        ..new_user("alice", PASSWORD)
    };
    assert!(matches!(
        ctx.accounts.create_user(bad_email).await,
        Err(AccountError::Refused(AccountRefusal::EmailInvalid))
    ));
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 0);

    // The limits themselves are accepted.
    let longest = NewUser {
        username: "ü".repeat(MAX_USERNAME_CHARS),
        password: "p".repeat(MAX_PASSWORD_CHARS),
        ..NewUser::default()
    };
    ctx.accounts.create_user(longest).await.unwrap();

    // Signing in with such input is refused at once too, and counts nothing.
    let started = Instant::now();
    assert!(matches!(
        ctx.sign_in("alice", &megabyte, "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
            max: 1024
        }))
    ));
    assert!(matches!(
        ctx.sign_in(&megabyte, PASSWORD, "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::UsernameTooLong {
            max: 150
        }))
    ));
    assert!(matches!(
        ctx.sign_in("", PASSWORD, "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::UsernameRequired))
    ));
    assert!(matches!(
        ctx.sign_in("alice", "", "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::PasswordRequired))
    ));
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(ctx.attempt_rows("1 = 1").await, 0);
}

async fn an_unknown_user_and_a_wrong_password_give_the_same_error(ctx: Ctx) {
    ctx.create("alice").await;
    // A user whose hash is unusable (no password set) cannot sign in either.
    ctx.test_db.insert_user("nopassword", false).await.unwrap();
    let unknown = ctx
        .sign_in("nobody", PASSWORD, "203.0.113.5")
        .await
        .unwrap_err();
    let wrong = ctx
        .sign_in("alice", "wrong password", "203.0.113.5")
        .await
        .unwrap_err();
    let unusable = ctx
        .sign_in("nopassword", "!", "203.0.113.5")
        .await
        .unwrap_err();
    for error in [&unknown, &wrong, &unusable] {
        assert!(
            matches!(
                error,
                AccountError::Refused(AccountRefusal::InvalidCredentials)
            ),
            "{error:?}"
        );
    }
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(
        unknown.to_string(),
        "The username or password is incorrect."
    );
    // Unknown usernames are counted like known ones: throttling tells nothing either.
    assert_eq!(
        ctx.attempt_rows("kind = 'account' AND failures = 1").await,
        3
    );
}

async fn an_inactive_user_cannot_sign_in_even_with_the_right_password(ctx: Ctx) {
    let user = ctx.create("alice").await;
    assert_eq!(ctx.accounts.set_active(user.id, false).await.unwrap(), 0);
    assert!(!ctx.accounts.user(user.id).await.unwrap().unwrap().is_active);
    assert!(matches!(
        ctx.sign_in("alice", PASSWORD, "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
    ));
    ctx.accounts.set_active(user.id, true).await.unwrap();
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();
}

async fn sign_up_is_refused_when_closed_and_never_makes_staff(ctx: Ctx) {
    let user = ctx
        .accounts
        .sign_up(
            "carol",
            Some("carol@example.test"),
            PASSWORD,
            ip("203.0.113.5"),
        )
        .await
        .unwrap();
    assert!(!user.is_staff);

    let closed = ctx.accounts_with(AccountsConfig {
        signup_open: false,
        ..test_config()
    });
    let error = closed
        .sign_up("dave", None, PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        AccountError::Refused(AccountRefusal::SignUpClosed)
    ));
    assert_eq!(
        error.to_string(),
        "Sign-up is closed. Ask an administrator for an account."
    );
    assert_eq!(closed.count_users().await.unwrap(), 1);
    // Staff and the command line can still create users.
    closed
        .create_user(new_user("dave", PASSWORD))
        .await
        .unwrap();
    assert_eq!(closed.count_users().await.unwrap(), 2);
}

// ---- Passwords ----

async fn changing_the_password_requires_the_current_one_and_the_new_one_verifies(ctx: Ctx) {
    let user = ctx.create("alice").await;
    let new_password = "a much better passphrase";

    let error = ctx
        .accounts
        .change_password(user.id, "wrong password", new_password)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        AccountError::Refused(AccountRefusal::WrongCurrentPassword)
    ));
    assert_eq!(error.to_string(), "The current password is incorrect.");
    // A weak new password is refused before the current one is even checked.
    assert!(matches!(
        ctx.accounts
            .change_password(user.id, PASSWORD, "short")
            .await,
        Err(AccountError::Refused(AccountRefusal::PasswordTooShort {
            min: 8
        }))
    ));
    // Nothing was written: the old password still works.
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();

    ctx.accounts
        .change_password(user.id, PASSWORD, new_password)
        .await
        .unwrap();
    ctx.sign_in("alice", new_password, "203.0.113.5")
        .await
        .unwrap();
    assert!(matches!(
        ctx.sign_in("alice", PASSWORD, "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
    ));
    assert!(matches!(
        ctx.accounts
            .change_password(9999, new_password, PASSWORD)
            .await,
        Err(AccountError::UserNotFound)
    ));
}

async fn wrong_current_passwords_are_throttled_like_sign_ins(ctx: Ctx) {
    let user = ctx.create("alice").await;
    for _ in 0..3 {
        assert!(matches!(
            ctx.accounts
                .change_password(user.id, "wrong password", "a new passphrase")
                .await,
            Err(AccountError::Refused(AccountRefusal::WrongCurrentPassword))
        ));
    }
    assert!(matches!(
        ctx.accounts
            .change_password(user.id, PASSWORD, "a new passphrase")
            .await,
        Err(AccountError::Refused(AccountRefusal::Throttled { .. }))
    ));
    assert_throttled(
        ctx.sign_in("alice", PASSWORD, "203.0.113.5").await,
        Duration::from_secs(10),
    );
}

async fn staff_can_set_a_password_without_the_current_one(ctx: Ctx) {
    let user = ctx.create("alice").await;
    ctx.new_session(user.id).await;
    assert_eq!(
        ctx.accounts
            .set_password(user.id, "reset by staff")
            .await
            .unwrap(),
        1
    );
    let ended = ctx.engine.ended_sessions(user.id, 10).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, EndCause::PasswordChanged);
    ctx.sign_in("alice", "reset by staff", "203.0.113.5")
        .await
        .unwrap();
    assert!(matches!(
        ctx.accounts.set_password(user.id, "").await,
        Err(AccountError::Refused(AccountRefusal::PasswordRequired))
    ));
    assert!(matches!(
        ctx.accounts.set_password(9999, "reset by staff").await,
        Err(AccountError::UserNotFound)
    ));
}

// ---- Sign-in activity ----

async fn sign_ins_and_failed_attempts_on_an_account_are_its_sign_in_activity(ctx: Ctx) {
    use console_sessions::accounts::{FAILED_PASSWORD, FAILED_SECOND_FACTOR};
    use console_sessions::sessions::{AuthMethod, PublicId, SignedIn};
    let alice = ctx.create("alice").await;
    let bob = ctx.create("bob").await;
    let phone = ClientInfo {
        ip: ip("198.51.100.9"),
        user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X)".to_owned()),
        ..Default::default()
    };
    // A wrong password on her account, and on a name that is nobody's (not recorded: nobody to
    // show it to); a wrong code at her second step.
    assert!(ctx
        .accounts
        .sign_in_from("alice", "not her password", &phone, None)
        .await
        .is_err());
    assert!(ctx
        .accounts
        .sign_in_from("nobody", "whatever it is", &phone, None)
        .await
        .is_err());
    assert!(ctx
        .accounts
        .verify_second_factor_from(alice.id, "123456", &phone)
        .await
        .is_err());
    // Then a sign-in, as the engine reports it.
    let session = PublicId::generate();
    ctx.accounts
        .note_sign_in_event(&SignedIn {
            user_id: alice.id,
            public_id: session.clone(),
            method: AuthMethod::PasswordTotp,
            client: phone.clone(),
        })
        .await
        .unwrap();

    let activity = ctx.accounts.sign_in_activity(alice.id, 10).await.unwrap();
    let seen: Vec<(bool, &str)> = activity
        .iter()
        .map(|a| (a.succeeded, a.method.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (true, "password_totp"),
            (false, FAILED_SECOND_FACTOR),
            (false, FAILED_PASSWORD)
        ]
    );
    assert_eq!(activity[0].session.as_ref(), Some(&session));
    for attempt in &activity {
        assert_eq!(attempt.ip, phone.ip);
        assert_eq!(attempt.user_agent, phone.user_agent);
    }
    assert!(ctx
        .accounts
        .sign_in_activity(bob.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ctx.accounts
            .sign_in_activity(alice.id, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // Forgotten once old, and with the account.
    assert_eq!(
        ctx.accounts
            .forget_sign_in_activity(now() - Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    ctx.accounts.delete_user(alice.id).await.unwrap();
    assert!(ctx
        .accounts
        .sign_in_activity(alice.id, 10)
        .await
        .unwrap()
        .is_empty());
    ctx.accounts
        .sign_in_from("bob", "not his either", &phone, None)
        .await
        .unwrap_err();
    assert_eq!(
        ctx.accounts
            .forget_sign_in_activity(now() + Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
}

impl Ctx {
    /// Another account service over the same database, its engine keeping addresses as
    /// `retention` says.
    fn with_ip_retention(&self, retention: console_sessions::sessions::IpRetention) -> Accounts {
        let engine = SessionEngine::new(
            self.test_db.db.clone(),
            SessionConfig {
                ip_retention: retention,
                ..self.engine.config().clone()
            },
        );
        Accounts::new(self.test_db.db.clone(), engine, test_config())
    }
}

/// The addresses of a user's sign-in activity and security events, newest first.
async fn kept_addresses(
    accounts: &Accounts,
    user_id: i64,
) -> (Vec<Option<IpAddr>>, Vec<Option<IpAddr>>) {
    let activity = accounts.sign_in_activity(user_id, 50).await.unwrap();
    let events = accounts.security_activity(user_id, 50, 0).await.unwrap();
    (
        activity.iter().map(|a| a.ip).collect(),
        events.iter().map(|e| e.ip).collect(),
    )
}

async fn sign_in_activity_and_security_events_keep_their_addresses_as_ip_retention_says(ctx: Ctx) {
    use console_sessions::sessions::{AuthMethod, IpRetention, PublicId, SignedIn};
    let alice = ctx.create("alice").await;
    let signed_in = |ip_text: &str, user_agent: &str| SignedIn {
        user_id: alice.id,
        public_id: PublicId::generate(),
        method: AuthMethod::Password,
        client: ClientInfo {
            ip: ip(ip_text),
            user_agent: Some(user_agent.to_owned()),
            ..Default::default()
        },
    };
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X)";
    // Her first sign-in, then one from a new device: a "new sign-in" security event.
    ctx.accounts
        .note_sign_in_event(&signed_in("198.51.100.9", FIREFOX))
        .await
        .unwrap();
    ctx.accounts
        .note_sign_in_event(&signed_in("2001:db8:cafe:1::5", IPHONE))
        .await
        .unwrap();
    let (activity, events) = kept_addresses(&ctx.accounts, alice.id).await;
    assert_eq!(activity, [ip("2001:db8:cafe:1::5"), ip("198.51.100.9")]);
    assert_eq!(events, [ip("2001:db8:cafe:1::5")]);

    // Forty days later, with addresses kept whole thirty: cut to their networks, once.
    let forty_days = 40 * 24 * 3600 * 1000_i64;
    for table in ["sign_in_activity", "security_events"] {
        ctx.test_db
            .execute(&format!("UPDATE {table} SET at = at - {forty_days}"))
            .await
            .unwrap();
    }
    let cutting = ctx.with_ip_retention(IpRetention::Truncate {
        after: Duration::from_secs(30 * 24 * 3600),
    });
    assert_eq!(cutting.age_addresses(1).await.unwrap(), 3);
    assert_eq!(cutting.age_addresses(100).await.unwrap(), 0);
    // A new one stays whole for now.
    cutting
        .note_sign_in_event(&signed_in("198.51.100.10", FIREFOX))
        .await
        .unwrap();
    let (activity, events) = kept_addresses(&cutting, alice.id).await;
    assert_eq!(
        activity,
        [
            ip("198.51.100.10"),
            ip("2001:db8:cafe::"),
            ip("198.51.100.0")
        ]
    );
    assert_eq!(events, [ip("2001:db8:cafe::")]);
    let stored: Vec<String> = match &ctx.test_db.db {
        console_sessions::Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT ip FROM sign_in_activity ORDER BY id")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        console_sessions::Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT ip FROM sign_in_activity ORDER BY id")
                .fetch_all(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        stored,
        ["198.51.100.0/24", "2001:db8:cafe::/48", "198.51.100.10"],
        "stored with the prefix that says it was cut"
    );
    // The sweep's reads go through the partial indexes made for them.
    for table in ["sign_in_activity", "security_events"] {
        for (whole, kind) in [(true, "whole"), (false, "cut")] {
            let plan = ctx
                .test_db
                .address_sweep_plan(table, "ip", "at", whole)
                .await
                .unwrap();
            let index = format!("{table}_{kind}_ip");
            assert!(
                plan.iter().any(|line| line.contains(&index)),
                "{index} not used: {plan:?}"
            );
        }
    }

    // Under none: a failed attempt and a new device are written without an address, and the
    // sweep forgets the rest, whole or cut.
    let none = ctx.with_ip_retention(IpRetention::Discard);
    assert!(none
        .sign_in_from(
            "alice",
            "not her password",
            &ClientInfo {
                ip: ip("203.0.113.7"),
                ..Default::default()
            },
            None
        )
        .await
        .is_err());
    none.note_sign_in_event(&signed_in("203.0.113.8", "curl/8.5.0"))
        .await
        .unwrap();
    let (activity, events) = kept_addresses(&none, alice.id).await;
    assert_eq!(activity[..2], [None, None]);
    assert_eq!(events[0], None);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(none.age_addresses(2).await.unwrap(), 4);
    let (activity, events) = kept_addresses(&none, alice.id).await;
    assert!(activity.iter().chain(&events).all(Option::is_none));
    assert_eq!(activity.len(), 5);
}

// ---- Staff operations ----

async fn deactivating_a_user_ends_all_their_sessions_in_database_and_cache(ctx: Ctx) {
    let alice = ctx.test_db.insert_user("alice", false).await.unwrap();
    let bob = ctx.test_db.insert_user("bob", false).await.unwrap();
    let phone = ctx.new_session(alice).await;
    let laptop = ctx.new_session(alice).await;
    let bobs = ctx.new_session(bob).await;
    for token in [&phone, &laptop, &bobs] {
        assert!(ctx.loads(token).await);
        assert!(ctx.is_cached(token));
    }

    assert_eq!(ctx.accounts.set_active(alice, false).await.unwrap(), 2);
    for token in [&phone, &laptop] {
        assert!(!ctx.is_cached(token));
        assert!(!ctx.loads(token).await);
    }
    assert!(ctx.loads(&bobs).await);
    assert_eq!(ctx.test_db.session_rows().await.unwrap(), 1);
    let history = ctx.engine.ended_sessions(alice, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|e| e.reason == EndCause::Deactivated));
    // Deactivating again is harmless.
    assert_eq!(ctx.accounts.set_active(alice, false).await.unwrap(), 0);
}

async fn deleting_a_user_removes_the_user_and_their_sessions(ctx: Ctx) {
    let alice = ctx.test_db.insert_user("alice", false).await.unwrap();
    let bob = ctx.test_db.insert_user("bob", false).await.unwrap();
    let token = ctx.new_session(alice).await;
    let bobs = ctx.new_session(bob).await;
    assert!(ctx.loads(&token).await);

    assert_eq!(ctx.accounts.delete_user(alice).await.unwrap(), 1);
    assert_eq!(ctx.accounts.user(alice).await.unwrap(), None);
    assert!(
        ctx.engine
            .ended_sessions(alice, 10)
            .await
            .unwrap()
            .is_empty(),
        "their history goes with them"
    );
    assert!(!ctx.is_cached(&token));
    assert!(!ctx.loads(&token).await);
    assert!(ctx.loads(&bobs).await);
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 1);
    assert!(matches!(
        ctx.accounts.delete_user(alice).await,
        Err(AccountError::UserNotFound)
    ));
}

async fn staff_status_can_be_granted_and_removed_and_unknown_users_are_reported(ctx: Ctx) {
    let alice = ctx.test_db.insert_user("alice", false).await.unwrap();
    ctx.accounts.set_staff(alice, true).await.unwrap();
    assert!(ctx.accounts.user(alice).await.unwrap().unwrap().is_staff);
    ctx.accounts.set_staff(alice, false).await.unwrap();
    assert!(!ctx.accounts.user(alice).await.unwrap().unwrap().is_staff);

    let missing = alice + 1000;
    assert!(matches!(
        ctx.accounts.set_staff(missing, true).await,
        Err(AccountError::UserNotFound)
    ));
    assert!(matches!(
        ctx.accounts.set_active(missing, false).await,
        Err(AccountError::UserNotFound)
    ));
}

async fn the_user_list_counts_active_sessions_searches_and_pages(ctx: Ctx) {
    let alice = ctx.test_db.insert_user("alice", true).await.unwrap();
    let bob = ctx.test_db.insert_user("bob", false).await.unwrap();
    ctx.test_db.insert_user("carol_100%", false).await.unwrap();
    ctx.new_session(alice).await;
    ctx.new_session(alice).await;
    ctx.new_session(bob).await;
    // One of alice's sessions has expired: it is not counted.
    ctx.test_db
        .execute(&format!(
            "UPDATE sessions SET expires_at = 1 WHERE id = \
             (SELECT MIN(id) FROM sessions WHERE user_id = {alice})"
        ))
        .await
        .unwrap();
    ctx.test_db
        .execute(&format!(
            "UPDATE sessions SET expires_at = 1 WHERE user_id = {bob}"
        ))
        .await
        .unwrap();
    ctx.new_session(bob).await;
    ctx.new_session(bob).await;

    let page = ctx.accounts.list_users(None, 50, 0).await.unwrap();
    assert_eq!(page.total, 3);
    let listed: Vec<(&str, u64)> = page
        .users
        .iter()
        .map(|s| (s.user.username.as_str(), s.active_sessions))
        .collect();
    assert_eq!(listed, [("alice", 1), ("bob", 2), ("carol_100%", 0)]);
    assert!(page.users[0].user.is_staff);

    let found = ctx.accounts.list_users(Some(" ALI "), 50, 0).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.users[0].user.id, alice);
    // By email (insert_user gives name@example.test).
    let found = ctx
        .accounts
        .list_users(Some("bob@example"), 50, 0)
        .await
        .unwrap();
    assert_eq!(found.users.len(), 1);
    assert_eq!(found.users[0].user.id, bob);
    // Wildcards are searched for literally.
    let found = ctx.accounts.list_users(Some("%"), 50, 0).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.users[0].user.username, "carol_100%");
    assert_eq!(
        ctx.accounts
            .list_users(Some("_"), 50, 0)
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        ctx.accounts
            .list_users(Some("nobody"), 50, 0)
            .await
            .unwrap()
            .total,
        0
    );

    let second = ctx.accounts.list_users(None, 1, 1).await.unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.users.len(), 1);
    assert_eq!(second.users[0].user.id, bob);
}

// ---- Throttling ----

async fn sign_ins_are_throttled_per_account_after_the_limit_and_the_lock_lifts_with_time(ctx: Ctx) {
    ctx.create("alice").await;
    ctx.create("bob").await;
    for _ in 0..3 {
        assert!(matches!(
            ctx.sign_in("alice", "wrong password", "203.0.113.5").await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
    }
    // Locked: even the right password is refused, from any address, and the message says how long.
    let error = ctx.sign_in("Alice", PASSWORD, "198.51.100.9").await;
    let waited = assert_throttled(error, Duration::from_secs(10));
    assert!(waited > Duration::from_secs(9));
    let error = ctx
        .sign_in("alice", PASSWORD, "203.0.113.5")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Too many failed attempts. Try again in 10 seconds."
    );
    assert_between(ctx.delay("alice", "192.0.2.1").await, 9, 10);
    // Another account from the same address is not affected.
    ctx.sign_in("bob", PASSWORD, "203.0.113.5").await.unwrap();

    ctx.let_time_pass(11).await;
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();
}

async fn sign_ins_are_throttled_per_address_across_accounts(ctx: Ctx) {
    ctx.create("alice").await;
    // Five different usernames from one address: a password spray.
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        assert!(matches!(
            ctx.sign_in(name, "guess", "203.0.113.66").await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
    }
    assert_throttled(
        ctx.sign_in("alice", PASSWORD, "203.0.113.66").await,
        Duration::from_secs(10),
    );
    // IPv6 clients are counted by /64, so rotating the interface id does not help.
    for n in 1..=5 {
        let _ = ctx
            .sign_in(&format!("v{n}"), "guess", &format!("2001:db8:1:2::{n}"))
            .await;
    }
    assert_throttled(
        ctx.sign_in("alice", PASSWORD, "2001:db8:1:2:ffff::1").await,
        Duration::from_secs(10),
    );
    // Other addresses are not affected.
    ctx.sign_in("alice", PASSWORD, "198.51.100.9")
        .await
        .unwrap();

    ctx.let_time_pass(11).await;
    ctx.sign_in("alice", PASSWORD, "203.0.113.66")
        .await
        .unwrap();
}

async fn delays_double_up_to_the_cap_and_failures_are_forgotten_after_the_window(ctx: Ctx) {
    ctx.create("alice").await;
    for _ in 0..3 {
        let _ = ctx.sign_in("alice", "wrong password", "203.0.113.5").await;
    }
    assert_between(ctx.delay("alice", "203.0.113.5").await, 9, 10);
    // Attempts while locked are refused and not counted: the next delay is the next step, no more.
    for _ in 0..5 {
        assert_throttled(
            ctx.sign_in("alice", "wrong password", "203.0.113.5").await,
            Duration::from_secs(10),
        );
    }
    for expected in [20, 40, 40] {
        ctx.let_time_pass(41).await;
        assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
        assert!(matches!(
            ctx.sign_in("alice", "wrong password", "203.0.113.5").await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
        assert_between(
            ctx.delay("alice", "203.0.113.5").await,
            expected - 1,
            expected,
        );
    }
    // The lock ends by itself, and a window later the failures are forgotten: a new failure starts
    // the count again and locks nothing.
    ctx.let_time_pass(41 + 60).await;
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    assert!(matches!(
        ctx.sign_in("alice", "wrong password", "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
    ));
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    assert_eq!(
        ctx.attempt_rows("kind = 'account' AND failures = 1").await,
        1
    );
    // Stale counts can be swept.
    ctx.let_time_pass(61).await;
    assert!(ctx.accounts.clear_stale_attempts().await.unwrap() >= 1);
    assert_eq!(ctx.attempt_rows("1 = 1").await, 0);
}

async fn a_successful_sign_in_resets_the_account_counter(ctx: Ctx) {
    ctx.create("alice").await;
    for _ in 0..2 {
        let _ = ctx.sign_in("alice", "wrong password", "203.0.113.5").await;
    }
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();
    assert_eq!(ctx.attempt_rows("kind = 'account'").await, 0);
    // Two more failures: without the reset this would be the fourth, and lock the account.
    for _ in 0..2 {
        let _ = ctx.sign_in("alice", "wrong password", "203.0.113.5").await;
    }
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();
}

async fn staff_can_lift_an_account_lock(ctx: Ctx) {
    ctx.create("alice").await;
    for _ in 0..3 {
        let _ = ctx.sign_in("alice", "wrong password", "203.0.113.5").await;
    }
    assert!(ctx.delay("ALICE", "203.0.113.5").await.is_some());
    ctx.accounts.reset_throttle("Alice").await.unwrap();
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    ctx.sign_in("alice", PASSWORD, "203.0.113.5").await.unwrap();
}

async fn a_disabled_throttle_counts_nothing(ctx: Ctx) {
    let open = ctx.accounts_with(AccountsConfig {
        ip_throttle: ThrottleLimits::disabled(),
        ..test_config()
    });
    for name in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        let _ = open.authenticate(name, "guess", ip("203.0.113.66")).await;
    }
    assert_eq!(ctx.attempt_rows("kind = 'ip'").await, 0);
    assert_eq!(ctx.attempt_rows("kind = 'account'").await, 6);
    assert_eq!(
        open.throttle_delay("u7", ip("203.0.113.66")).await.unwrap(),
        None
    );
}

// ---- Sign-up: throttling, the cost of a taken username, the first account ----

async fn sign_ups_are_throttled_per_address_and_other_addresses_are_not(ctx: Ctx) {
    let accounts = ctx.accounts_with(sign_up_config(3, 100));
    let sign_up = |name: &'static str, from: &'static str| {
        let accounts = accounts.clone();
        async move { accounts.sign_up(name, None, PASSWORD, ip(from)).await }
    };
    sign_up("ann", "203.0.113.5").await.unwrap();
    // A taken username counts too: trying names is what the limit is for.
    assert!(matches!(
        sign_up("ANN", "203.0.113.5").await,
        Err(AccountError::Refused(AccountRefusal::UsernameTaken))
    ));
    sign_up("ben", "203.0.113.5").await.unwrap();
    let waited = assert_throttled(
        sign_up("cat", "203.0.113.5").await,
        Duration::from_secs(3600),
    );
    assert!(waited > Duration::from_secs(3500), "{waited:?}");
    // The same network (an IPv4 address) is refused however the name changes; others are not.
    assert_throttled(
        sign_up("dan", "203.0.113.5").await,
        Duration::from_secs(3600),
    );
    sign_up("cat", "198.51.100.9").await.unwrap();
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 3);
    // Input refused before the username is looked at does not count.
    assert!(matches!(
        accounts
            .sign_up("eve", None, "short", ip("198.51.100.9"))
            .await,
        Err(AccountError::Refused(
            AccountRefusal::PasswordTooShort { .. }
        ))
    ));
    assert_eq!(
        ctx.attempt_rows("kind = 'signup_ip' AND subject = '198.51.100.9' AND failures = 1")
            .await,
        1
    );
}

async fn a_flood_of_sign_ups_from_many_addresses_meets_the_global_limit(ctx: Ctx) {
    let accounts = ctx.accounts_with(sign_up_config(3, 4));
    for n in 1..=4 {
        accounts
            .sign_up(
                &format!("user{n}"),
                None,
                PASSWORD,
                ip(&format!("198.51.100.{n}")),
            )
            .await
            .unwrap();
    }
    assert_throttled(
        accounts
            .sign_up("user5", None, PASSWORD, ip("198.51.100.5"))
            .await,
        Duration::from_secs(3600),
    );
    // The count is in the database: another node (another service over it) sees it.
    let other_node = ctx.accounts_with(sign_up_config(3, 4));
    assert_throttled(
        other_node
            .sign_up("user6", None, PASSWORD, ip("198.51.100.6"))
            .await,
        Duration::from_secs(3600),
    );
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 4);
    // Staff and the command line are not throttled.
    accounts
        .create_user(new_user("staffmade", PASSWORD))
        .await
        .unwrap();
    // The window ends by itself.
    ctx.test_db
        .execute("UPDATE login_attempts SET forget_at = forget_at - 3600001")
        .await
        .unwrap();
    accounts
        .sign_up("user7", None, PASSWORD, ip("198.51.100.7"))
        .await
        .unwrap();
}

async fn a_taken_username_costs_the_same_password_hash_as_a_new_account(ctx: Ctx) {
    let accounts = &ctx.accounts;
    let before = accounts.argon2_operations();
    accounts
        .sign_up("bob", None, PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap();
    let per_new_account = accounts.argon2_operations() - before;
    assert_eq!(per_new_account, 1);
    for taken in ["bob", "BOB", " Bob "] {
        let before = accounts.argon2_operations();
        let error = accounts
            .sign_up(taken, None, PASSWORD, ip("198.51.100.9"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, AccountError::Refused(AccountRefusal::UsernameTaken)),
            "{error:?}"
        );
        assert_eq!(
            accounts.argon2_operations() - before,
            per_new_account,
            "{taken:?} was answered without the hash a new account costs"
        );
    }
    // Staff creating a user hashes first too.
    let before = accounts.argon2_operations();
    assert!(matches!(
        accounts.create_user(new_user("bob", PASSWORD)).await,
        Err(AccountError::Refused(AccountRefusal::UsernameTaken))
    ));
    assert_eq!(accounts.argon2_operations() - before, 1);
}

/// Eight sign-ups of the first account at once, from eight addresses; the users they made.
async fn eight_first_sign_ups_at_once(accounts: &Accounts) -> Vec<Result<User, AccountError>> {
    let tasks: Vec<_> = (1..=8)
        .map(|n| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                accounts
                    .sign_up_first_or_open(
                        &format!("first{n}"),
                        None,
                        PASSWORD,
                        ip(&format!("198.51.100.{n}")),
                    )
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn exactly_one_of_simultaneous_first_sign_ups_becomes_staff_when_sign_up_is_open(ctx: Ctx) {
    let results = eight_first_sign_ups_at_once(&ctx.accounts).await;
    let users: Vec<User> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(users.iter().filter(|user| user.is_staff).count(), 1);
    let page = ctx.accounts.list_users(None, 100, 0).await.unwrap();
    assert_eq!(page.total, 8);
    assert_eq!(
        page.users.iter().filter(|s| s.user.is_staff).count(),
        1,
        "exactly one staff user in the database"
    );
    // Later sign-ups are ordinary users.
    let later = ctx
        .accounts
        .sign_up_first_or_open("later", None, PASSWORD, ip("203.0.113.5"))
        .await
        .unwrap();
    assert!(!later.is_staff);
}

async fn exactly_one_of_simultaneous_first_sign_ups_succeeds_when_sign_up_is_closed(ctx: Ctx) {
    let closed = ctx.accounts_with(AccountsConfig {
        signup_open: false,
        ..test_config()
    });
    let results = eight_first_sign_ups_at_once(&closed).await;
    let mut staff = 0;
    for result in results {
        match result {
            Ok(user) => {
                assert!(user.is_staff);
                staff += 1;
            }
            Err(AccountError::Refused(AccountRefusal::SignUpClosed)) => {}
            Err(other) => panic!("expected the first account or SignUpClosed, got {other:?}"),
        }
    }
    assert_eq!(staff, 1);
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 1);
    // Closed for everyone after the first account.
    assert!(matches!(
        closed
            .sign_up_first_or_open("late", None, PASSWORD, ip("203.0.113.5"))
            .await,
        Err(AccountError::Refused(AccountRefusal::SignUpClosed))
    ));
    assert_eq!(ctx.accounts.count_users().await.unwrap(), 1);
}

// ---- Sign-in throttling that strangers cannot turn against the owner ----

async fn one_client_guessing_an_account_locks_only_itself_out_of_it(ctx: Ctx) {
    let limits = |max_failures| ThrottleLimits {
        max_failures,
        window: Duration::from_secs(60),
        base_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(40),
    };
    let accounts = ctx.accounts_with(AccountsConfig {
        account_ip_throttle: limits(2),
        account_throttle: limits(4),
        ..test_config()
    });
    ctx.create("alice").await;
    for _ in 0..2 {
        assert!(matches!(
            accounts
                .authenticate("alice", "guess", ip("203.0.113.66"))
                .await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
    }
    assert_throttled(
        accounts
            .authenticate("alice", PASSWORD, ip("203.0.113.66"))
            .await,
        Duration::from_secs(10),
    );
    // Alice elsewhere, without a device cookie, is not locked out by one stranger.
    accounts
        .authenticate("alice", PASSWORD, ip("198.51.100.9"))
        .await
        .unwrap();
}

async fn a_stranger_locking_an_account_does_not_lock_out_the_owners_known_browser(ctx: Ctx) {
    let alice = ctx.create("alice").await;
    ctx.create("mallory").await;
    // Alice signed in from her laptop before: it holds a device cookie for her account.
    let laptop = ctx
        .sign_in_with_device("alice", PASSWORD, "198.51.100.9", None)
        .await
        .unwrap();
    // A stranger elsewhere, with a device cookie of their own account, guesses until alice's
    // account is locked for every browser without her device cookie.
    let strangers = ctx
        .sign_in_with_device("mallory", PASSWORD, "203.0.113.66", None)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            ctx.sign_in_with_device("alice", "guess", "203.0.113.66", Some(&strangers))
                .await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
    }
    assert_throttled(
        ctx.sign_in("alice", PASSWORD, "203.0.113.66").await,
        Duration::from_secs(10),
    );
    assert_throttled(
        ctx.sign_in("alice", PASSWORD, "198.51.100.9").await,
        Duration::from_secs(10),
    );
    // Her laptop still gets in with the right password, and gets a new device cookie.
    let renewed = ctx
        .sign_in_with_device("alice", PASSWORD, "198.51.100.9", Some(&laptop))
        .await
        .unwrap();
    assert_ne!(renewed.expose(), laptop.expose());
    let signed_in = ctx
        .accounts
        .sign_in("alice", PASSWORD, ip("192.0.2.1"), Some(renewed.expose()))
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, alice.id);
    // The stranger is still locked out, with or without a device cookie of another account, and
    // the laptop's old cookie is void.
    assert_throttled(
        ctx.sign_in_with_device("alice", PASSWORD, "203.0.113.66", Some(&strangers))
            .await,
        Duration::from_secs(10),
    );
    assert_throttled(
        ctx.sign_in_with_device("alice", PASSWORD, "203.0.113.66", Some(&laptop))
            .await,
        Duration::from_secs(10),
    );
    // Guessing with a device cookie is counted for that device: a stolen one cannot be used to
    // guess either.
    let device = signed_in.device_token;
    for _ in 0..3 {
        assert!(matches!(
            ctx.sign_in_with_device("alice", "guess", "192.0.2.1", Some(&device))
                .await,
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials))
        ));
    }
    assert_throttled(
        ctx.sign_in_with_device("alice", PASSWORD, "192.0.2.1", Some(&device))
            .await,
        Duration::from_secs(10),
    );
    // Deleting the user forgets their devices.
    ctx.accounts.delete_user(alice.id).await.unwrap();
    assert_eq!(
        ctx.test_db
            .execute(&format!(
                "UPDATE known_devices SET user_id = user_id WHERE user_id = {}",
                alice.id
            ))
            .await
            .unwrap(),
        0
    );
}

async fn throttling_counts_keep_no_typed_username(ctx: Ctx) {
    ctx.create("alice").await;
    let typed = ["alice", "Zoë.Secret", "correct horse battery"];
    for name in typed {
        let _ = ctx.sign_in(name, "wrong password", "203.0.113.5").await;
    }
    assert_eq!(ctx.attempt_rows("kind = 'account'").await, 3);
    assert_eq!(ctx.attempt_rows("kind = 'account_ip'").await, 3);
    for fragment in ["alice", "zoë", "secret", "horse"] {
        assert_eq!(
            ctx.attempt_rows(&format!("LOWER(subject) LIKE '%{fragment}%'"))
                .await,
            0,
            "a throttling row holds {fragment:?}"
        );
    }
    // The counts are keyed by the database's key, so every node (every service over it) finds
    // them: two more failures lock alice for another service too.
    let other_node = ctx.accounts_with(test_config());
    for _ in 0..2 {
        let _ = other_node
            .authenticate("Alice", "wrong password", ip("198.51.100.9"))
            .await;
    }
    assert!(ctx.delay("alice", "192.0.2.1").await.is_some());
    assert!(other_node
        .throttle_delay("alice", ip("192.0.2.1"))
        .await
        .unwrap()
        .is_some());
    // And staff can still lift the lock by name.
    other_node.reset_throttle("ALICE").await.unwrap();
    assert_eq!(ctx.delay("alice", "203.0.113.5").await, None);
    assert_eq!(ctx.attempt_rows("kind = 'account_ip'").await, 2);
}

// ---- Failures leave nothing half-written ----

async fn a_database_error_while_counting_a_failure_leaves_no_count_behind(ctx: Ctx) {
    ctx.create("alice").await;
    // Make the second write of the failure (the address's lock) fail.
    match ctx.test_db.db.backend() {
        Backend::Sqlite => {
            ctx.test_db
                .execute(
                    "CREATE TRIGGER fail_ip BEFORE UPDATE ON login_attempts \
                     FOR EACH ROW WHEN NEW.kind = 'ip' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                )
                .await
                .unwrap();
        }
        Backend::Postgres => {
            ctx.test_db
                .execute(
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
                )
                .await
                .unwrap();
            ctx.test_db
                .execute(
                    "CREATE TRIGGER fail_ip BEFORE UPDATE ON login_attempts \
                     FOR EACH ROW WHEN (NEW.kind = 'ip') EXECUTE FUNCTION boom()",
                )
                .await
                .unwrap();
        }
    }
    let error = ctx
        .sign_in("alice", "wrong password", "203.0.113.5")
        .await
        .unwrap_err();
    assert!(error.is_internal(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "The account service is unavailable. Try again later."
    );
    // The account's count, written first, was rolled back with the rest.
    assert_eq!(ctx.attempt_rows("1 = 1").await, 0);
}

async fn a_database_error_while_signing_in_records_nothing(ctx: Ctx) {
    let user = ctx.create("alice").await;
    let _ = ctx.sign_in("alice", "wrong password", "203.0.113.5").await;
    // Make forgetting the account's failures (after the sign-in time is written) fail.
    match ctx.test_db.db.backend() {
        Backend::Sqlite => {
            ctx.test_db
                .execute(
                    "CREATE TRIGGER fail_clear BEFORE DELETE ON login_attempts \
                     BEGIN SELECT RAISE(ABORT, 'boom'); END",
                )
                .await
                .unwrap();
        }
        Backend::Postgres => {
            ctx.test_db
                .execute(
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
                )
                .await
                .unwrap();
            ctx.test_db
                .execute(
                    "CREATE TRIGGER fail_clear BEFORE DELETE ON login_attempts \
                     FOR EACH ROW EXECUTE FUNCTION boom()",
                )
                .await
                .unwrap();
        }
    }
    let error = ctx
        .sign_in("alice", PASSWORD, "203.0.113.5")
        .await
        .unwrap_err();
    assert!(matches!(error, AccountError::Database(_)), "{error:?}");
    // The sign-in time written before the failure was rolled back; the failure count is intact.
    let stored = ctx.accounts.user(user.id).await.unwrap().unwrap();
    assert_eq!(stored.last_login_at, None);
    assert_eq!(
        ctx.attempt_rows("kind = 'account' AND failures = 1").await,
        1
    );
}

async fn identities_are_cached_and_forgotten_when_staff_or_active_change(ctx: Ctx) {
    let user = ctx.create("ida").await;
    let identity = ctx.accounts.identity(user.id).await.unwrap().unwrap();
    assert_eq!((identity.id, identity.username.as_str()), (user.id, "ida"));
    assert!(!identity.is_staff);
    // Answered from memory: a change made behind the service's back does not show yet.
    ctx.test_db
        .execute(&format!(
            "UPDATE users SET email = 'ida@example.com' WHERE id = {}",
            user.id
        ))
        .await
        .unwrap();
    assert_eq!(
        ctx.accounts.identity(user.id).await.unwrap().unwrap().email,
        None
    );
    // A change through the service is seen at once (and the email change with it).
    ctx.accounts.set_staff(user.id, true).await.unwrap();
    let identity = ctx.accounts.identity(user.id).await.unwrap().unwrap();
    assert!(identity.is_staff);
    assert_eq!(identity.email.as_deref(), Some("ida@example.com"));
    ctx.accounts.set_active(user.id, false).await.unwrap();
    assert_eq!(ctx.accounts.identity(user.id).await.unwrap(), None);
    ctx.accounts.set_active(user.id, true).await.unwrap();
    assert!(ctx.accounts.identity(user.id).await.unwrap().is_some());
    ctx.accounts.delete_user(user.id).await.unwrap();
    assert_eq!(ctx.accounts.identity(user.id).await.unwrap(), None);
    assert_eq!(ctx.accounts.identity(i64::MAX).await.unwrap(), None);
}

suite!(on_every_database:
    sign_ins_and_failed_attempts_on_an_account_are_its_sign_in_activity,
    sign_in_activity_and_security_events_keep_their_addresses_as_ip_retention_says,
    a_created_user_can_sign_in_and_the_sign_in_time_is_recorded,
    usernames_differing_only_by_case_are_refused_ascii_and_non_ascii,
    empty_and_huge_usernames_and_passwords_are_refused_with_clear_messages,
    an_unknown_user_and_a_wrong_password_give_the_same_error,
    an_inactive_user_cannot_sign_in_even_with_the_right_password,
    sign_up_is_refused_when_closed_and_never_makes_staff,
    changing_the_password_requires_the_current_one_and_the_new_one_verifies,
    wrong_current_passwords_are_throttled_like_sign_ins,
    staff_can_set_a_password_without_the_current_one,
    deactivating_a_user_ends_all_their_sessions_in_database_and_cache,
    deleting_a_user_removes_the_user_and_their_sessions,
    staff_status_can_be_granted_and_removed_and_unknown_users_are_reported,
    the_user_list_counts_active_sessions_searches_and_pages,
    sign_ins_are_throttled_per_account_after_the_limit_and_the_lock_lifts_with_time,
    sign_ins_are_throttled_per_address_across_accounts,
    delays_double_up_to_the_cap_and_failures_are_forgotten_after_the_window,
    a_successful_sign_in_resets_the_account_counter,
    staff_can_lift_an_account_lock,
    a_disabled_throttle_counts_nothing,
    a_database_error_while_counting_a_failure_leaves_no_count_behind,
    a_database_error_while_signing_in_records_nothing,
    identities_are_cached_and_forgotten_when_staff_or_active_change,
    sign_ups_are_throttled_per_address_and_other_addresses_are_not,
    a_flood_of_sign_ups_from_many_addresses_meets_the_global_limit,
    a_taken_username_costs_the_same_password_hash_as_a_new_account,
    exactly_one_of_simultaneous_first_sign_ups_becomes_staff_when_sign_up_is_open,
    exactly_one_of_simultaneous_first_sign_ups_succeeds_when_sign_up_is_closed,
    one_client_guessing_an_account_locks_only_itself_out_of_it,
    a_stranger_locking_an_account_does_not_lock_out_the_owners_known_browser,
    throttling_counts_keep_no_typed_username,
);
