//! Passkeys against every database, answered by a software authenticator that computes what a
//! browser sends (P-256 signatures over real authenticator data): registering several, naming
//! and removing them, the second step and a passwordless sign-in, answers that must fail.

use std::net::IpAddr;
use std::time::Duration;

use console_sessions::accounts::{
    AccountError, AccountRefusal, Accounts, AccountsConfig, FactorRemoved, NewUser,
    SecurityEventKind, ThrottleLimits, PASSKEY_NAME_MAX_CHARS, RECOVERY_CODE_COUNT,
};
use console_sessions::sessions::{AuthMethod, ClientInfo};
use console_sessions::testing::{SoftPasskey, TestDatabase};
use console_sessions::{Backend, Session, SessionConfig, SessionEngine};

const ORIGIN: &str = "http://localhost:8080";

struct Ctx {
    accounts: Accounts,
    engine: SessionEngine,
    test_db: TestDatabase,
}

fn ip() -> Option<IpAddr> {
    Some("198.51.100.9".parse().unwrap())
}

fn refused<T: std::fmt::Debug>(result: Result<T, AccountError>, refusal: AccountRefusal) {
    match result {
        Err(AccountError::Refused(got)) if got == refusal => {}
        other => panic!("expected {refusal:?}, got {other:?}"),
    }
}

impl Ctx {
    /// Three failures lock a user (or an address) for 10 seconds.
    async fn new(backend: Backend) -> Self {
        Self::with_origin(backend, Some(ORIGIN)).await
    }

    async fn with_origin(backend: Backend, origin: Option<&str>) -> Self {
        let test_db = TestDatabase::new(backend)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
        let engine = SessionEngine::new(test_db.db.clone(), SessionConfig::default());
        let limits = ThrottleLimits {
            max_failures: 3,
            window: Duration::from_secs(60),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(40),
        };
        let config = AccountsConfig {
            passkey_origin: origin.map(str::to_owned),
            second_factor_throttle: limits.clone(),
            ip_throttle: limits,
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
                password: "correct horse battery".to_owned(),
                is_staff: false,
            })
            .await
            .unwrap()
            .id
    }

    fn session(&self) -> Session {
        self.engine.session(
            None,
            ClientInfo {
                ip: ip(),
                ..ClientInfo::default()
            },
        )
    }

    /// Registers `key` for `user` under `name`; the recovery codes it brought, if any.
    async fn register(&self, user: i64, key: &mut SoftPasskey, name: &str) -> Option<usize> {
        let session = self.session();
        let options = self
            .accounts
            .start_passkey_registration(&session, user)
            .await
            .unwrap();
        let answer = key.register(&options).unwrap();
        self.accounts
            .finish_passkey_registration(&session, user, name, &answer, ip())
            .await
            .unwrap()
            .map(|codes| codes.0.len())
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
}

async fn passkeys_are_added_named_renamed_and_removed(ctx: Ctx) {
    let user = ctx.user("alice").await;
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_registration(&session, user)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&options).unwrap();
    assert_eq!(json["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(json["publicKey"]["user"]["name"], "alice");
    assert_eq!(
        json["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "discoverable, for signing in without a username"
    );
    assert_eq!(
        json["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let mut laptop = SoftPasskey::new(ORIGIN);
    let answer = laptop.register(&options).unwrap();
    refused(
        ctx.accounts
            .finish_passkey_registration(&session, user, &"x".repeat(65), &answer, ip())
            .await,
        AccountRefusal::PasskeyNameTooLong {
            max: PASSKEY_NAME_MAX_CHARS,
        },
    );
    let codes = ctx
        .accounts
        .finish_passkey_registration(&session, user, " Laptop ", &answer, ip())
        .await
        .unwrap()
        .expect("the first second factor brings recovery codes");
    assert_eq!(codes.0.len(), RECOVERY_CODE_COUNT);
    // The ceremony was answered: the same answer again finds none.
    refused(
        ctx.accounts
            .finish_passkey_registration(&session, user, "Again", &answer, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );

    // A second passkey: the first is excluded, so the same authenticator cannot add it twice.
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_registration(&session, user)
        .await
        .unwrap();
    assert!(options.contains(&laptop.credential_id()));
    assert!(laptop.register(&options).is_err());
    let mut phone = SoftPasskey::new(ORIGIN);
    let answer = phone.register(&options).unwrap();
    let codes = ctx
        .accounts
        .finish_passkey_registration(&session, user, "", &answer, ip())
        .await
        .unwrap();
    assert!(codes.is_none(), "recovery codes exist already");

    let list = ctx.accounts.passkeys(user).await.unwrap();
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Laptop", "Passkey"]);
    assert!(list.iter().all(|p| p.last_used_at.is_none()));
    let factors = ctx.accounts.second_factors(user).await.unwrap();
    assert_eq!((factors.passkeys, factors.count()), (2, 2));
    assert!(factors.any() && factors.totp_since.is_none());

    // Renaming and removing are the owner's alone.
    let other = ctx.user("mallory").await;
    assert!(!ctx
        .accounts
        .rename_passkey(other, list[1].id, "Mine")
        .await
        .unwrap());
    assert_eq!(
        ctx.accounts
            .remove_passkey(other, list[1].id, ip())
            .await
            .unwrap(),
        None
    );
    assert!(ctx
        .accounts
        .rename_passkey(user, list[1].id, "Phone")
        .await
        .unwrap());
    assert_eq!(ctx.accounts.passkeys(user).await.unwrap()[1].name, "Phone");

    assert_eq!(
        ctx.accounts
            .remove_passkey(user, list[0].id, ip())
            .await
            .unwrap(),
        Some(FactorRemoved { last: false })
    );
    assert_eq!(
        ctx.accounts
            .second_factors(user)
            .await
            .unwrap()
            .recovery_codes_left,
        10,
        "a factor is left: the recovery codes stay"
    );
    assert_eq!(
        ctx.accounts
            .remove_passkey(user, list[1].id, ip())
            .await
            .unwrap(),
        Some(FactorRemoved { last: true })
    );
    let factors = ctx.accounts.second_factors(user).await.unwrap();
    assert!(!factors.any());
    assert_eq!(
        factors.recovery_codes_total, 0,
        "no factor left: the recovery codes are gone"
    );
    assert_eq!(
        ctx.events(user).await,
        [
            SecurityEventKind::PasskeyRemoved,
            SecurityEventKind::PasskeyRemoved,
            SecurityEventKind::PasskeyAdded,
            SecurityEventKind::PasskeyAdded,
        ]
    );
}

async fn a_passkey_signs_in_without_a_username_or_password(ctx: Ctx) {
    let user = ctx.user("bob").await;
    let mut key = SoftPasskey::new(ORIGIN);
    ctx.register(user, &mut key, "Laptop").await;

    let session = ctx.session();
    let options = ctx.accounts.start_passkey_sign_in(&session).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&options).unwrap();
    assert_eq!(json["publicKey"]["rpId"], "localhost");
    assert!(
        json["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "no account is named"
    );
    assert!(
        json.get("mediation").is_none(),
        "asked at once, not autofill"
    );
    let answer = key.sign(&options).unwrap();
    let signed_in = ctx
        .accounts
        .finish_passkey_sign_in(&session, &answer, ip())
        .await
        .unwrap();
    assert_eq!(signed_in.id, user);
    assert!(ctx
        .accounts
        .user(user)
        .await
        .unwrap()
        .unwrap()
        .last_login_at
        .is_some());
    assert!(ctx.accounts.passkeys(user).await.unwrap()[0]
        .last_used_at
        .is_some());
    // The answer is good once: its challenge was taken.
    refused(
        ctx.accounts
            .finish_passkey_sign_in(&session, &answer, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );

    // A passkey this site never registered, and garbage, are refused.
    let session = ctx.session();
    let options = ctx.accounts.start_passkey_sign_in(&session).await.unwrap();
    let stranger = SoftPasskey::new(ORIGIN).sign(&options).unwrap();
    refused(
        ctx.accounts
            .finish_passkey_sign_in(&session, &stranger, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );
    let session = ctx.session();
    ctx.accounts.start_passkey_sign_in(&session).await.unwrap();
    refused(
        ctx.accounts
            .finish_passkey_sign_in(&session, "{not json", ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );

    // A deactivated account's passkey signs nobody in.
    ctx.accounts.set_active(user, false).await.unwrap();
    ctx.test_db
        .execute("UPDATE login_attempts SET locked_until = 0")
        .await
        .unwrap();
    let session = ctx.session();
    let options = ctx.accounts.start_passkey_sign_in(&session).await.unwrap();
    let answer = key.sign(&options).unwrap();
    refused(
        ctx.accounts
            .finish_passkey_sign_in(&session, &answer, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );
}

async fn a_passkey_is_a_second_factor_for_its_owner_only(ctx: Ctx) {
    let alice = ctx.user("carol").await;
    let bob = ctx.user("dave").await;
    let mut hers = SoftPasskey::new(ORIGIN);
    let mut his = SoftPasskey::new(ORIGIN);
    ctx.register(alice, &mut hers, "Hers").await;
    ctx.register(bob, &mut his, "His").await;

    // Her check names her passkey only; his answer does not pass for hers.
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_check(&session, alice)
        .await
        .unwrap();
    assert!(options.contains(&hers.credential_id()));
    assert!(!options.contains(&his.credential_id()));
    let wrong = his.sign(&options).unwrap();
    refused(
        ctx.accounts
            .finish_passkey_check(&session, alice, &wrong, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_check(&session, alice)
        .await
        .unwrap();
    let answer = hers.sign(&options).unwrap();
    // Her ceremony cannot be finished as his.
    refused(
        ctx.accounts
            .finish_passkey_check(&session, bob, &answer, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_check(&session, alice)
        .await
        .unwrap();
    let answer = hers.sign(&options).unwrap();
    assert_eq!(
        ctx.accounts
            .finish_passkey_check(&session, alice, &answer, ip())
            .await
            .unwrap(),
        AuthMethod::PasswordPasskey
    );

    // A copy of her authenticator whose counter fell behind is refused (a cloned key): it signs
    // with 2, which the registration's 1 would allow, but her last sign-in stored 2 already.
    hers.set_counter(1);
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_check(&session, alice)
        .await
        .unwrap();
    let cloned = hers.sign(&options).unwrap();
    refused(
        ctx.accounts
            .finish_passkey_check(&session, alice, &cloned, ip())
            .await,
        AccountRefusal::PasskeyFailed,
    );

    // Someone with no passkey has nothing to check.
    let carol = ctx.user("erin").await;
    refused(
        ctx.accounts
            .start_passkey_check(&ctx.session(), carol)
            .await,
        AccountRefusal::PasskeyFailed,
    );
}

async fn two_factors_removed_at_once_leave_exactly_one_last(ctx: Ctx) {
    let user = ctx.user("gus").await;
    let mut one = SoftPasskey::new(ORIGIN);
    let mut two = SoftPasskey::new(ORIGIN);
    ctx.register(user, &mut one, "One").await;
    ctx.register(user, &mut two, "Two").await;
    let list = ctx.accounts.passkeys(user).await.unwrap();
    let (a, b) = tokio::join!(
        ctx.accounts.remove_passkey(user, list[0].id, ip()),
        ctx.accounts.remove_passkey(user, list[1].id, ip()),
    );
    let lasts: Vec<bool> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .map(|removed| removed.expect("both removed").last)
        .collect();
    assert_eq!(
        lasts.iter().filter(|last| **last).count(),
        1,
        "one removal, and one only, took the last factor: {lasts:?}"
    );
    assert_eq!(
        ctx.accounts
            .second_factors(user)
            .await
            .unwrap()
            .recovery_codes_total,
        0
    );
}

async fn failed_passkey_answers_lock_like_wrong_codes(ctx: Ctx) {
    let user = ctx.user("frank").await;
    let mut key = SoftPasskey::new(ORIGIN);
    ctx.register(user, &mut key, "Key").await;
    let stranger_key = || SoftPasskey::new(ORIGIN);
    for _ in 0..3 {
        let session = ctx.session();
        let options = ctx
            .accounts
            .start_passkey_check(&session, user)
            .await
            .unwrap();
        let wrong = stranger_key().sign(&options).unwrap();
        refused(
            ctx.accounts
                .finish_passkey_check(&session, user, &wrong, ip())
                .await,
            AccountRefusal::PasskeyFailed,
        );
    }
    // Locked: even the right passkey waits.
    let session = ctx.session();
    let options = ctx
        .accounts
        .start_passkey_check(&session, user)
        .await
        .unwrap();
    let answer = key.sign(&options).unwrap();
    match ctx
        .accounts
        .finish_passkey_check(&session, user, &answer, ip())
        .await
    {
        Err(AccountError::Refused(AccountRefusal::Throttled { .. })) => {}
        other => panic!("expected a lock, got {other:?}"),
    }
    // The address is locked for passwordless sign-ins too (three failures from it).
    let session = ctx.session();
    let options = ctx.accounts.start_passkey_sign_in(&session).await.unwrap();
    let answer = key.sign(&options).unwrap();
    match ctx
        .accounts
        .finish_passkey_sign_in(&session, &answer, ip())
        .await
    {
        Err(AccountError::Refused(AccountRefusal::Throttled { .. })) => {}
        other => panic!("expected a lock, got {other:?}"),
    }
}

async fn passkeys_are_off_without_a_host_name(backend: Backend) {
    for origin in [None, Some("http://127.0.0.1:3000")] {
        let ctx = Ctx::with_origin(backend, origin).await;
        assert!(!ctx.accounts.passkeys_available());
        let user = ctx.user("gina").await;
        refused(
            ctx.accounts
                .start_passkey_registration(&ctx.session(), user)
                .await,
            AccountRefusal::PasskeysUnavailable,
        );
        refused(
            ctx.accounts.start_passkey_sign_in(&ctx.session()).await,
            AccountRefusal::PasskeysUnavailable,
        );
    }
}

#[tokio::test]
async fn passkeys_are_off_without_a_host_name_on_sqlite() {
    passkeys_are_off_without_a_host_name(Backend::Sqlite).await;
}

suite!(on_every_database:
    passkeys_are_added_named_renamed_and_removed,
    a_passkey_signs_in_without_a_username_or_password,
    a_passkey_is_a_second_factor_for_its_owner_only,
    failed_passkey_answers_lock_like_wrong_codes,
    two_factors_removed_at_once_leave_exactly_one_last,
);
