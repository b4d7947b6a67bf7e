//! Second factors and confirm access over HTTP, as a browser without JavaScript (plain form posts),
//! the hydrated page (JSON) and the JSON API use them: setting up an authenticator app (codes
//! computed here from the secret the page shows), two-step sign-in, recovery codes, the throttle of
//! wrong codes, confirm access before sensitive actions, the staff policy, and how each session
//! signed in as the devices list, the admin and `/auth/verify` say it.

use console_sessions::accounts::ThrottleLimits;
use console_sessions::sessions::{Aal, AuthMethod};
use serde_json::{json, Value};

use crate::common::{
    error_code, location, spawn_app_with, spawn_app_with_settings_and_accounts, Browser, TestApp,
    FIREFOX, PASSWORD,
};

/// The authenticator app of a test: codes from the secret the setup page showed.
struct App(totp_rs::Totp);

impl App {
    /// The code of the step `steps` steps from now.
    fn code(&self, steps: i64) -> String {
        let at = console_sessions::sessions::now().unix_timestamp() + steps * 30;
        self.0.generate(u64::try_from(at).unwrap()).to_string()
    }
}

/// Sets up an authenticator app for the signed-in `browser` through the pages' forms; returns it
/// and the recovery codes shown once.
async fn set_up_app(browser: &Browser) -> (App, Vec<String>) {
    let started = browser.submit("/api/account/totp/start", &[]).await;
    assert_eq!(started.status(), 302);
    assert_eq!(location(&started), "/account/two-factor/setup");
    let setup: Value = browser
        .get_json("/api/account/totp/setup")
        .await
        .json()
        .await
        .unwrap();
    assert!(setup["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let secret = setup["secret"].as_str().unwrap().replace(' ', "");
    let app = App(totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&secret).unwrap())
        .build()
        .unwrap());
    // A wrong code first: sent back to the setup page, still off.
    let wrong = browser
        .submit("/api/account/totp/confirm", &[("code", "000000")])
        .await;
    assert_eq!(error_code(&wrong).as_deref(), Some("invalid_code"));
    let confirmed = browser
        .submit("/api/account/totp/confirm", &[("code", &app.code(0))])
        .await;
    assert_eq!(
        location(&confirmed),
        "/account/two-factor/recovery-codes?new=totp"
    );
    let codes: Vec<String> = browser
        .get_json("/api/account/recovery-codes/fresh")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let again: Vec<String> = browser
        .get_json("/api/account/recovery-codes/fresh")
        .await
        .json()
        .await
        .unwrap();
    assert!(again.is_empty(), "shown once");
    (app, codes)
}

/// Signs `browser` in with the password, expecting to be asked for the second step.
async fn password_step(browser: &Browser, username: &str) {
    let response = browser.try_sign_in(username, PASSWORD).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sign-in/two-factor");
    assert_eq!(browser.signed_in_as().await, None, "not signed in yet");
}

async fn session_auth(app: &TestApp, browser: &Browser) -> (AuthMethod, Aal) {
    let record = app
        .session_row(&browser.session_token().unwrap())
        .await
        .unwrap();
    let assurance = record.assurance.expect("recorded");
    (assurance.method, assurance.level)
}

async fn an_account_with_an_authenticator_app_signs_in_in_two_steps(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("alice").await;
    let first = app.signed_in("alice", FIREFOX).await;
    assert_eq!(
        session_auth(&app, &first).await,
        (AuthMethod::Password, Aal::Aal1)
    );
    let (totp, _) = set_up_app(&first).await;
    let factors: Value = first
        .get_json("/api/account/factors")
        .await
        .json()
        .await
        .unwrap();
    assert!(factors["totp_since"].is_i64());
    assert_eq!(factors["recovery_codes_left"], 10);

    let second = app.browser();
    password_step(&second, "alice").await;
    // The waiting sign-in is kept in a session with no user.
    let row = app
        .session_row(&second.session_token().unwrap())
        .await
        .unwrap();
    assert_eq!(row.user_id, None);
    let waiting: Value = second
        .get_json("/api/account/second-step")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting, json!({"totp": true, "passkey": false}));
    // The code that turned the app on is spent.
    let replay = second
        .submit("/api/account/second-step", &[("code", &totp.code(0))])
        .await;
    assert_eq!(error_code(&replay).as_deref(), Some("invalid_code"));
    assert_eq!(location(&replay), "/sign-in/two-factor?error=invalid_code");
    let done = second
        .submit(
            "/api/account/second-step",
            &[("code", &totp.code(1)), ("next", "/account/security")],
        )
        .await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/account/security");
    assert_eq!(second.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(
        session_auth(&app, &second).await,
        (AuthMethod::PasswordTotp, Aal::Aal2)
    );
    // The devices list says how each session signed in.
    let list: Value = second
        .get_json("/api/v1/sessions")
        .await
        .json()
        .await
        .unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["auth_method"], "password_totp");
    assert_eq!(current["auth_label"], "Password + authenticator app");
    assert_eq!(current["aal"], "aal2");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["aal"], "aal1");
    // So does forward authentication.
    let verified = second.get_json("/auth/verify").await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.headers()["x-auth-aal"], "aal2");
    let verified = first.get_json("/auth/verify").await;
    assert_eq!(verified.headers()["x-auth-aal"], "aal1");
    // The page renders the second step's form, and says the app is on.
    let page = app.browser();
    password_step(&page, "alice").await;
    let html = page
        .get_page("/sign-in/two-factor")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("one-time-code"), "the code field");
    let html = second
        .get_page("/account/security")
        .await
        .text()
        .await
        .unwrap();
    let status = html
        .split("data-testid=\"totp-status\"")
        .nth(1)
        .and_then(|rest| rest.split('<').next());
    assert_eq!(status, Some(" class=\"badge ok\">On"), "{html}");
}

async fn a_recovery_code_signs_in_once_and_a_late_second_step_starts_again(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("bob").await;
    let first = app.signed_in("bob", FIREFOX).await;
    let (_, codes) = set_up_app(&first).await;

    let browser = app.browser();
    password_step(&browser, "bob").await;
    let done = browser
        .submit("/api/account/second-step", &[("code", &codes[3])])
        .await;
    assert_eq!(location(&done), "/account/sessions");
    assert_eq!(
        session_auth(&app, &browser).await,
        (AuthMethod::PasswordRecoveryCode, Aal::Aal2)
    );
    let other = app.browser();
    password_step(&other, "bob").await;
    let used = other
        .submit("/api/account/second-step", &[("code", &codes[3])])
        .await;
    assert_eq!(error_code(&used).as_deref(), Some("invalid_code"));
    // Without a waiting sign-in (another browser, or one that took too long) it starts again.
    let stranger = app.browser();
    let none = stranger
        .submit("/api/account/second-step", &[("code", &codes[4])])
        .await;
    assert_eq!(location(&none), "/sign-in?error=sign_in_expired");
    let factors: Value = first
        .get_json("/api/account/factors")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(factors["recovery_codes_left"], 9);
}

async fn wrong_codes_are_throttled_like_passwords(backend: console_sessions::Backend) {
    let app = spawn_app_with_settings_and_accounts(
        backend,
        |_| {},
        |accounts| {
            accounts.second_factor_throttle = ThrottleLimits {
                max_failures: 2,
                window: std::time::Duration::from_secs(60),
                base_delay: std::time::Duration::from_secs(30),
                max_delay: std::time::Duration::from_secs(60),
            };
        },
    )
    .await;
    app.create_user("carol").await;
    let first = app.signed_in("carol", FIREFOX).await;
    let (totp, _) = set_up_app(&first).await;
    let browser = app.browser();
    password_step(&browser, "carol").await;
    for _ in 0..2 {
        let wrong = browser
            .submit("/api/account/second-step", &[("code", "123456")])
            .await;
        assert_eq!(error_code(&wrong).as_deref(), Some("invalid_code"));
    }
    // Locked, even for the right code; the hydrated page gets a 429 with Retry-After.
    let locked = browser
        .call("/api/account/second-step", &[("code", &totp.code(1))])
        .await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(browser.signed_in_as().await, None);
}

async fn sensitive_actions_ask_to_confirm_access_once_the_window_has_passed(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |settings| settings.step_up_window = 3).await;
    app.create_user("dave").await;
    let other = app.signed_in("dave", FIREFOX).await;
    let browser = app.signed_in("dave", FIREFOX).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    // Without JavaScript: sent to confirm access, and back to the devices page afterwards.
    let asked = browser.submit("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(asked.status(), 302);
    assert_eq!(
        location(&asked),
        "/confirm-access?next=%2Faccount%2Fsessions"
    );
    assert_eq!(
        other.signed_in_as().await.as_deref(),
        Some("dave"),
        "nothing ended"
    );
    // The hydrated page gets the error (and the redirect to follow).
    let called = browser.call("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(called.status(), 403);
    assert_eq!(
        called.json::<Value>().await.unwrap(),
        json!("ConfirmAccessRequired")
    );
    let html = browser
        .get_page("/confirm-access?next=%2Faccount%2Fsessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Confirm access"));

    let wrong = browser
        .submit(
            "/api/account/confirm-access",
            &[("password", "not it"), ("next", "/account/sessions")],
        )
        .await;
    assert_eq!(
        error_code(&wrong).as_deref(),
        Some("wrong_current_password")
    );
    let token_before = browser.session_token().unwrap();
    let confirmed = browser
        .submit(
            "/api/account/confirm-access",
            &[("password", PASSWORD), ("next", "/account/sessions")],
        )
        .await;
    assert_eq!(location(&confirmed), "/account/sessions");
    assert_ne!(
        browser.session_token().unwrap(),
        token_before,
        "a new token with the new proof"
    );
    let done = browser.submit("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(location(&done), "/account/sessions?signed_out=1");
    assert_eq!(other.signed_in_as().await, None);
    // A `next` elsewhere is not followed.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let away = browser
        .submit(
            "/api/account/confirm-access",
            &[("password", PASSWORD), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(location(&away), "/account/sessions");
}

async fn a_code_confirms_access_and_raises_the_level(backend: console_sessions::Backend) {
    let app = spawn_app_with(backend, |settings| settings.step_up_window = 3).await;
    app.create_user("erin").await;
    let browser = app.signed_in("erin", FIREFOX).await;
    let (totp, _) = set_up_app(&browser).await;
    assert_eq!(
        session_auth(&app, &browser).await,
        (AuthMethod::Password, Aal::Aal1)
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    // Adding or removing a factor is sensitive too.
    let renew = browser
        .submit("/api/account/recovery-codes/renew", &[])
        .await;
    assert_eq!(
        location(&renew),
        "/confirm-access?next=%2Faccount%2Fsecurity"
    );
    let confirmed = browser
        .submit(
            "/api/account/confirm-access",
            &[("code", &totp.code(1)), ("next", "/account/security")],
        )
        .await;
    assert_eq!(location(&confirmed), "/account/security");
    assert_eq!(
        session_auth(&app, &browser).await,
        (AuthMethod::Password, Aal::Aal2),
        "signed in with a password, proved with a second factor since"
    );
    let renew = browser
        .submit("/api/account/recovery-codes/renew", &[])
        .await;
    assert_eq!(location(&renew), "/account/two-factor/recovery-codes");
}

async fn removing_the_last_factor_asks_for_the_box_and_signs_out_the_other_devices(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("frank").await;
    let browser = app.signed_in("frank", FIREFOX).await;
    let (_, codes) = set_up_app(&browser).await;
    let other = app.browser();
    password_step(&other, "frank").await;
    let done = other
        .submit("/api/account/second-step", &[("code", &codes[0])])
        .await;
    assert_eq!(location(&done), "/account/sessions");

    let unticked = browser.submit("/api/account/totp/remove", &[]).await;
    assert_eq!(error_code(&unticked).as_deref(), Some("confirm_removal"));
    let removed = browser
        .submit("/api/account/totp/remove", &[("confirm", "yes")])
        .await;
    assert_eq!(
        location(&removed),
        "/account/security?totp=off&signed_out=1"
    );
    assert_eq!(other.signed_in_as().await, None);
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("frank"));
    // Signing in is one step again.
    app.browser().sign_in("frank", PASSWORD).await;
}

async fn staff_need_a_second_factor_and_a_recent_proof_for_every_action(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |settings| {
        settings.require_second_factor_for_staff = true;
        settings.step_up_window = 3;
    })
    .await;
    app.create_staff("grace").await;
    let victim = app.create_user("heidi").await;
    let staff = app.signed_in("grace", FIREFOX).await;
    let refused = staff.get_json("/api/admin/sessions").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!("SecondFactorRequired")
    );
    let page = staff.get_page("/admin/sessions").await;
    assert_eq!(page.status(), 302, "sent to set one up");
    assert_eq!(location(&page), "/account/security?enrol=staff");
    let api = staff.get_json("/api/v1/admin/sessions").await;
    assert_eq!(api.status(), 403);
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "second_factor_required");

    let (totp, _) = set_up_app(&staff).await;
    let list = staff.get_json("/api/admin/sessions").await;
    assert_eq!(list.status(), 200);
    // A sign-in waiting for its second step shows staff that something waits, never what.
    let waiting = app.browser();
    password_step(&waiting, "grace").await;
    let public_id = app
        .session_row(&waiting.session_token().unwrap())
        .await
        .unwrap()
        .public_id;
    let detail: Value = staff
        .get_json(&format!("/api/admin/session?public_id={public_id}"))
        .await
        .json()
        .await
        .unwrap();
    let data: Value = serde_json::from_str(detail["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"_second_step": "(hidden)"}));
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let deactivate = staff
        .submit(
            "/api/admin/set-active",
            &[("user_id", &victim.to_string()), ("active", "false")],
        )
        .await;
    assert_eq!(
        location(&deactivate),
        "/confirm-access?next=%2Fadmin%2Fusers"
    );
    assert!(
        app.state
            .accounts
            .user(victim)
            .await
            .unwrap()
            .unwrap()
            .is_active,
        "nothing was done"
    );
    let confirmed = staff
        .submit(
            "/api/account/confirm-access",
            &[("code", &totp.code(1)), ("next", "/admin/users")],
        )
        .await;
    assert_eq!(location(&confirmed), "/admin/users");
    let deactivate = staff
        .submit(
            "/api/admin/set-active",
            &[("user_id", &victim.to_string()), ("active", "false")],
        )
        .await;
    assert_eq!(deactivate.status(), 302);
    assert!(
        !app.state
            .accounts
            .user(victim)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
}

async fn the_json_api_takes_the_code_with_the_password_and_confirms_access(
    backend: console_sessions::Backend,
) {
    let app = spawn_app_with(backend, |settings| settings.step_up_window = 3).await;
    app.create_user("ivan").await;
    let browser = app.signed_in("ivan", FIREFOX).await;
    let (totp, _) = set_up_app(&browser).await;

    let api = app.browser();
    let token = api.csrf_token().await;
    let post = |path: &'static str, body: Value| {
        let token = token.clone();
        let client = api.client.clone();
        let url = api.url(path);
        async move {
            client
                .post(url)
                .header("x-csrf-token", token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let no_code = post(
        "/api/v1/auth/sign-in",
        json!({"username": "ivan", "password": PASSWORD}),
    )
    .await;
    assert_eq!(no_code.status(), 400);
    let body: Value = no_code.json().await.unwrap();
    assert_eq!(body["error"]["code"], "code_required");
    let signed_in = post(
        "/api/v1/auth/sign-in",
        json!({"username": "ivan", "password": PASSWORD, "code": totp.code(1)}),
    )
    .await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(
        session_auth(&app, &api).await,
        (AuthMethod::PasswordTotp, Aal::Aal2)
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let token = api.csrf_token().await;
    let stale = api
        .client
        .post(api.url("/api/v1/sessions/revoke-others"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 403);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["code"], "confirm_access");
    let confirmed = api
        .client
        .post(api.url("/api/v1/auth/confirm"))
        .header("x-csrf-token", &token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 204);
    let token = api.csrf_token().await;
    let revoked = api
        .client
        .post(api.url("/api/v1/sessions/revoke-others"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(browser.signed_in_as().await, None);
}

on_every_database!(
    an_account_with_an_authenticator_app_signs_in_in_two_steps,
    a_recovery_code_signs_in_once_and_a_late_second_step_starts_again,
    wrong_codes_are_throttled_like_passwords,
    sensitive_actions_ask_to_confirm_access_once_the_window_has_passed,
    a_code_confirms_access_and_raises_the_level,
    removing_the_last_factor_asks_for_the_box_and_signs_out_the_other_devices,
    staff_need_a_second_factor_and_a_recent_proof_for_every_action,
    the_json_api_takes_the_code_with_the_password_and_confirms_access,
);
