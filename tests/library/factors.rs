//! Second factors against every database: setting up an authenticator app (codes computed here
//! from the secret, as the app would), codes accepted once, recovery codes single-use and renewed,
//! the throttle of wrong codes, and the second step of a sign-in kept in the session.

use std::net::IpAddr;
use std::time::Duration;

use console_sessions::accounts::{
    AccountError, AccountRefusal, Accounts, AccountsConfig, NewUser, SecondStep, SecurityEventKind,
    ThrottleLimits, TotpSetup, RECOVERY_CODE_COUNT,
};
use console_sessions::sessions::{now, Aal, AuthMethod, ClientInfo, CookieAction};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, SessionBackend, SessionConfig, SessionEngine};

const PASSWORD: &str = "correct horse battery";

struct Ctx {
    accounts: Accounts,
    engine: SessionEngine,
    test_db: TestDatabase,
}

fn ip() -> Option<IpAddr> {
    Some("198.51.100.7".parse().unwrap())
}

impl Ctx {
    /// Three wrong codes lock a user for 10 seconds, then 20, 40.
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
        let config = AccountsConfig {
            second_factor_throttle: ThrottleLimits {
                max_failures: 3,
                window: Duration::from_secs(60),
                base_delay: Duration::from_secs(10),
                max_delay: Duration::from_secs(40),
            },
            ..AccountsConfig::default()
        };
        let accounts = Accounts::new(test_db.db.clone(), engine.clone(), config);
        Self {
            accounts,
            engine,
            test_db,
        }
    }

    async fn user(&self, name: &str) -> i64 {
        self.accounts
            .create_user(NewUser {
                username: name.to_owned(),
                email: None,
                password: PASSWORD.to_owned(),
                is_staff: false,
            })
            .await
            .unwrap()
            .id
    }

    /// A user with an authenticator app set up; its codes, and the recovery codes it got.
    async fn enrolled(&self, name: &str) -> (i64, App, Vec<String>) {
        let user = self.user(name).await;
        let app = App::of(&self.accounts.start_totp(user).await.unwrap());
        let codes = self
            .accounts
            .confirm_totp(user, &app.code(0), ip())
            .await
            .unwrap()
            .expect("the first factor brings recovery codes");
        (user, app, codes.0)
    }

    async fn events(&self, user: i64) -> Vec<SecurityEventKind> {
        self.accounts
            .security_activity(user, 50, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }

    /// Ends every lock, as if their time had passed.
    async fn let_locks_end(&self) {
        self.test_db
            .execute("UPDATE login_attempts SET locked_until = 0")
            .await
            .unwrap();
    }
}

/// The authenticator app, computing codes from the secret the setup showed.
struct App(totp_rs::Totp);

impl App {
    fn of(setup: &TotpSetup) -> Self {
        let secret = totp_rs::Secret::try_from_base32(&setup.secret_base32).unwrap();
        Self(totp_rs::Builder::new().with_secret(secret).build().unwrap())
    }

    /// The code of the step `steps` steps from now.
    fn code(&self, steps: i64) -> String {
        let at = now().unix_timestamp() + steps * 30;
        self.0.generate(u64::try_from(at).unwrap()).to_string()
    }
}

fn refused<T: std::fmt::Debug>(result: Result<T, AccountError>, refusal: AccountRefusal) {
    match result {
        Err(AccountError::Refused(got)) if got == refusal => {}
        other => panic!("expected {refusal:?}, got {other:?}"),
    }
}

async fn an_authenticator_app_counts_once_a_code_from_it_confirms_it(ctx: Ctx) {
    let user = ctx.user("alice").await;
    let setup = ctx.accounts.start_totp(user).await.unwrap();
    assert_eq!(setup.secret_base32.len(), 32, "160 bits in base 32");
    assert!(setup
        .otpauth_url
        .starts_with("otpauth://totp/console-sessions:alice?secret="));
    assert!(setup.qr_svg.starts_with("<?xml") && setup.qr_svg.contains("<svg"));
    assert!(
        !ctx.accounts.second_factors(user).await.unwrap().any(),
        "not before a code confirms it"
    );
    // Signing in meanwhile asks for no second step, and a code is no use yet.
    refused(
        ctx.accounts
            .verify_second_factor(user, &App::of(&setup).code(0), ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    ctx.let_locks_end().await;

    // A new setup replaces the unconfirmed one: the first secret is void.
    let first = App::of(&setup);
    let setup = ctx.accounts.start_totp(user).await.unwrap();
    let shown_again = ctx.accounts.pending_totp(user).await.unwrap().unwrap();
    assert_eq!(shown_again.secret_base32, setup.secret_base32);
    let app = App::of(&setup);
    refused(
        ctx.accounts.confirm_totp(user, &first.code(0), ip()).await,
        AccountRefusal::InvalidCode,
    );
    refused(
        ctx.accounts.confirm_totp(user, "", ip()).await,
        AccountRefusal::CodeRequired,
    );
    let codes = ctx
        .accounts
        .confirm_totp(user, &app.code(0), ip())
        .await
        .unwrap()
        .expect("recovery codes come with the first factor");
    assert_eq!(codes.0.len(), RECOVERY_CODE_COUNT);
    assert!(ctx.accounts.pending_totp(user).await.unwrap().is_none());
    let factors = ctx.accounts.second_factors(user).await.unwrap();
    assert!(factors.any());
    assert!(factors.totp_since.is_some());
    assert_eq!(
        (factors.recovery_codes_left, factors.recovery_codes_total),
        (10, 10)
    );
    refused(
        ctx.accounts.start_totp(user).await,
        AccountRefusal::TotpAlreadyEnabled,
    );
    assert_eq!(ctx.events(user).await, [SecurityEventKind::TotpEnabled]);
    // Only hashes are kept.
    let stored = ctx
        .test_db
        .execute(&format!(
            "UPDATE recovery_codes SET user_id = user_id WHERE code_hash = '{}'",
            codes.0[0]
        ))
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

async fn a_setup_not_confirmed_in_time_expires(ctx: Ctx) {
    let user = ctx.user("bob").await;
    let app = App::of(&ctx.accounts.start_totp(user).await.unwrap());
    ctx.test_db
        .execute("UPDATE totp_credentials SET created_at = created_at - 1800001")
        .await
        .unwrap();
    refused(
        ctx.accounts.confirm_totp(user, &app.code(0), ip()).await,
        AccountRefusal::TotpSetupExpired,
    );
}

async fn a_code_is_accepted_once_and_an_earlier_one_never(ctx: Ctx) {
    let (user, app, _) = ctx.enrolled("carol").await;
    // The code that confirmed the app is spent.
    refused(
        ctx.accounts
            .verify_second_factor(user, &app.code(0), ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    // The next step's code is within the allowed skew; once used, it and every earlier code are
    // refused.
    let next = app.code(1);
    assert_eq!(
        ctx.accounts
            .verify_second_factor(user, &next, ip())
            .await
            .unwrap(),
        AuthMethod::PasswordTotp
    );
    for code in [next, app.code(0), app.code(-1)] {
        refused(
            ctx.accounts.verify_second_factor(user, &code, ip()).await,
            AccountRefusal::InvalidCode,
        );
        ctx.let_locks_end().await;
    }
    // Two steps away is beyond the skew.
    refused(
        ctx.accounts
            .verify_second_factor(user, &app.code(3), ip())
            .await,
        AccountRefusal::InvalidCode,
    );
}

async fn two_requests_with_one_code_sign_in_once(ctx: Ctx) {
    let (user, app, _) = ctx.enrolled("dave").await;
    let code = app.code(1);
    let (a, b) = tokio::join!(
        ctx.accounts.verify_second_factor(user, &code, ip()),
        ctx.accounts.verify_second_factor(user, &code, ip()),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
}

async fn recovery_codes_work_once_each_and_renewing_voids_the_old(ctx: Ctx) {
    let (user, _, codes) = ctx.enrolled("erin").await;
    assert_eq!(
        ctx.accounts
            .verify_second_factor(user, &codes[0].to_uppercase().replace('-', " "), ip())
            .await
            .unwrap(),
        AuthMethod::PasswordRecoveryCode,
        "spaces for dashes and upper case are fine"
    );
    refused(
        ctx.accounts
            .verify_second_factor(user, &codes[0], ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    let factors = ctx.accounts.second_factors(user).await.unwrap();
    assert_eq!(factors.recovery_codes_left, 9);
    assert_eq!(
        ctx.events(user).await,
        [
            SecurityEventKind::RecoveryCodeUsed,
            SecurityEventKind::TotpEnabled
        ]
    );

    let renewed = ctx
        .accounts
        .regenerate_recovery_codes(user, ip())
        .await
        .unwrap();
    assert_eq!(renewed.0.len(), RECOVERY_CODE_COUNT);
    assert!(renewed.0.iter().all(|code| !codes.contains(code)));
    ctx.let_locks_end().await;
    refused(
        ctx.accounts
            .verify_second_factor(user, &codes[1], ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    assert_eq!(
        ctx.accounts
            .verify_second_factor(user, &renewed.0[9], ip())
            .await
            .unwrap(),
        AuthMethod::PasswordRecoveryCode
    );
    // Another user's code is no use.
    let (other, _, other_codes) = ctx.enrolled("frank").await;
    refused(
        ctx.accounts
            .verify_second_factor(user, &other_codes[0], ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    assert_eq!(
        ctx.accounts
            .second_factors(other)
            .await
            .unwrap()
            .recovery_codes_left,
        10
    );
}

async fn wrong_codes_lock_the_user_for_a_while(ctx: Ctx) {
    let (user, app, _) = ctx.enrolled("grace").await;
    for _ in 0..3 {
        refused(
            ctx.accounts
                .verify_second_factor(user, "000000", ip())
                .await,
            AccountRefusal::InvalidCode,
        );
    }
    // Locked: even the right code is not looked at.
    let right = app.code(1);
    match ctx.accounts.verify_second_factor(user, &right, ip()).await {
        Err(AccountError::Refused(AccountRefusal::Throttled { retry_after_secs })) => {
            assert!((1..=10).contains(&retry_after_secs), "{retry_after_secs}");
        }
        other => panic!("expected a lock, got {other:?}"),
    }
    // Typing nothing, or something that is no code at all, is refused without counting.
    refused(
        ctx.accounts.verify_second_factor(user, "  ", ip()).await,
        AccountRefusal::CodeRequired,
    );
    ctx.let_locks_end().await;
    assert_eq!(
        ctx.accounts
            .verify_second_factor(user, &right, ip())
            .await
            .unwrap(),
        AuthMethod::PasswordTotp
    );
    // The success forgot the user's count: three more failures before the next lock.
    for _ in 0..2 {
        refused(
            ctx.accounts
                .verify_second_factor(user, "garbage", ip())
                .await,
            AccountRefusal::InvalidCode,
        );
    }
    refused(
        ctx.accounts
            .verify_second_factor(user, "111111", ip())
            .await,
        AccountRefusal::InvalidCode,
    );
}

async fn codes_sent_together_cannot_outrun_the_lock(ctx: Ctx) {
    let (user, _, _) = ctx.enrolled("judy").await;
    let mut checks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let accounts = ctx.accounts.clone();
        // Distinct wrong codes, from distinct addresses: only the user's lock holds them back.
        let from: IpAddr = format!("198.51.100.{}", n + 10).parse().unwrap();
        checks.spawn(async move {
            accounts
                .verify_second_factor(user, &format!("{:06}", 100_000 + n), Some(from))
                .await
        });
    }
    let mut wrong = 0;
    let mut locked = 0;
    while let Some(result) = checks.join_next().await {
        match result.unwrap() {
            Err(AccountError::Refused(AccountRefusal::InvalidCode)) => wrong += 1,
            Err(AccountError::Refused(AccountRefusal::Throttled { .. })) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (wrong, locked),
        (3, 17),
        "three codes looked at, the others locked out"
    );
}

async fn removing_the_app_removes_the_recovery_codes_too(ctx: Ctx) {
    let (user, _, codes) = ctx.enrolled("heidi").await;
    assert_eq!(
        ctx.accounts.remove_totp(user, ip()).await.unwrap(),
        Some(console_sessions::accounts::FactorRemoved { last: true })
    );
    assert_eq!(ctx.accounts.remove_totp(user, ip()).await.unwrap(), None);
    let factors = ctx.accounts.second_factors(user).await.unwrap();
    assert!(!factors.any());
    assert_eq!(factors.recovery_codes_total, 0);
    refused(
        ctx.accounts
            .verify_second_factor(user, &codes[0], ip())
            .await,
        AccountRefusal::InvalidCode,
    );
    assert!(matches!(
        ctx.accounts.regenerate_recovery_codes(user, ip()).await,
        Err(AccountError::UserNotFound)
    ));
    assert_eq!(
        ctx.events(user).await.first(),
        Some(&SecurityEventKind::TotpRemoved)
    );
    // A new app can be set up again.
    ctx.accounts.start_totp(user).await.unwrap();
}

async fn the_second_step_waits_in_the_session_and_signs_in_only_when_done(ctx: Ctx) {
    let (user, app, _) = ctx.enrolled("ivan").await;
    let client = ClientInfo {
        ip: ip(),
        ..ClientInfo::default()
    };
    let session = ctx.engine.session(None, client.clone());
    SecondStep::begin(&session, user, true).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.engine.commit(&session).await.unwrap().cookie else {
        panic!("the waiting sign-in is kept in a session")
    };
    let waiting = ctx.engine.session(Some(token.expose()), client.clone());
    assert_eq!(waiting.user_id().await.unwrap(), None, "not signed in");
    let step = SecondStep::pending(&waiting)
        .await
        .unwrap()
        .expect("waiting");
    assert_eq!(step.user_id, user);
    let method = ctx
        .accounts
        .verify_second_factor(step.user_id, &app.code(1), ip())
        .await
        .unwrap();
    step.finish(&waiting, method).await.unwrap();
    let CookieAction::Set {
        token: signed_in, ..
    } = ctx.engine.commit(&waiting).await.unwrap().cookie
    else {
        panic!("signing in gives a new token")
    };
    let record = ctx
        .engine
        .store()
        .load(&signed_in.hash(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_id, Some(user));
    let assurance = record.assurance.unwrap();
    assert_eq!(
        (assurance.method, assurance.level),
        (AuthMethod::PasswordTotp, Aal::Aal2)
    );
    assert!(!record.data.contains_key(SecondStep::KEY));

    // A wait older than its lifetime is gone.
    let late = ctx.engine.session(None, client.clone());
    late.insert(
        SecondStep::KEY,
        SecondStep {
            user_id: user,
            started_at: console_sessions::sessions::to_millis(now()) - 5 * 60 * 1000 - 1,
            remember: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(SecondStep::pending(&late).await.unwrap(), None);
    assert!(!late.contains_key(SecondStep::KEY).await.unwrap());
}

suite!(on_every_database:
    an_authenticator_app_counts_once_a_code_from_it_confirms_it,
    a_setup_not_confirmed_in_time_expires,
    a_code_is_accepted_once_and_an_earlier_one_never,
    two_requests_with_one_code_sign_in_once,
    recovery_codes_work_once_each_and_renewing_voids_the_old,
    wrong_codes_lock_the_user_for_a_while,
    codes_sent_together_cannot_outrun_the_lock,
    removing_the_app_removes_the_recovery_codes_too,
    the_second_step_waits_in_the_session_and_signs_in_only_when_done,
);
