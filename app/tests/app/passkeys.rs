//! Passkeys over HTTP, answered by the library's software authenticator as the page's script
//! would: the options fetched as JSON, the answer posted as a plain form. Adding one (after a recent
//! proof), signing in with it alone, the second step with it, confirming access with it, an answer
//! missing (JavaScript off), renaming, and removing the last factor.

use console_sessions::sessions::{Aal, AuthMethod};
use console_sessions::testing::SoftPasskey;
use serde_json::Value;

use crate::common::{
    error_code, location, spawn_app_with, spawn_app_with_settings_and_accounts, Browser, TestApp,
    FIREFOX, PASSWORD,
};

const ORIGIN: &str = "http://localhost:9";

/// Passkeys bound to [`ORIGIN`] (what `PUBLIC_ORIGIN` would give; the test client itself talks to
/// the app's own address, so `PUBLIC_ORIGIN` is left unset), and a 3-second `STEP_UP_WINDOW`.
async fn app_with_passkeys(backend: console_sessions::Backend) -> TestApp {
    spawn_app_with_settings_and_accounts(
        backend,
        |settings| settings.step_up_window = 3,
        |accounts| accounts.passkey_origin = Some(ORIGIN.to_owned()),
    )
    .await
}

/// The first half of a ceremony, as the script fetches it.
async fn options(browser: &Browser, purpose: &str) -> Value {
    let response = browser
        .call("/api/account/passkey/options", &[("purpose", purpose)])
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The second half, as the script submits it: the redirect's target.
async fn finish(browser: &Browser, purpose: &str, answer: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![("purpose", purpose), ("credential", answer)];
    fields.extend_from_slice(extra);
    let response = browser.submit("/api/account/passkey/finish", &fields).await;
    assert_eq!(response.status(), 302);
    location(&response)
}

async fn session_auth(app: &TestApp, browser: &Browser) -> (AuthMethod, Aal) {
    let assurance = app
        .session_row(&browser.session_token().unwrap())
        .await
        .unwrap()
        .assurance
        .expect("recorded");
    (assurance.method, assurance.level)
}

/// Adds a passkey for the signed-in `browser` (just signed in: no confirmation needed).
async fn add_passkey(browser: &Browser, key: &mut SoftPasskey, name: &str) -> String {
    let start = options(browser, "register").await;
    let answer = key.register(start["options"].as_str().unwrap()).unwrap();
    finish(browser, "register", &answer, &[("name", name)]).await
}

async fn a_passkey_is_added_and_then_signs_in_without_a_password(
    backend: console_sessions::Backend,
) {
    let app = app_with_passkeys(backend).await;
    app.create_user("alice").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    assert_eq!(browser.viewer().await["passkeys"], true);
    let mut key = SoftPasskey::new(ORIGIN);
    assert_eq!(
        add_passkey(&browser, &mut key, "Laptop").await,
        "/account/two-factor/recovery-codes?new=passkey",
        "the first factor brings recovery codes"
    );
    let codes: Vec<String> = browser
        .get_json("/api/account/recovery-codes/fresh")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let list: Value = browser
        .get_json("/api/account/passkeys")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["available"], true);
    assert_eq!(list["passkeys"][0]["name"], "Laptop");
    assert_eq!(list["factors"], 1);

    // Another browser, no username, no password.
    let other = app.browser_with_agent(FIREFOX);
    let start = options(&other, "sign-in").await;
    let answer = key.sign(start["options"].as_str().unwrap()).unwrap();
    assert_eq!(
        finish(&other, "sign-in", &answer, &[("next", "/account/security")]).await,
        "/account/security"
    );
    assert_eq!(other.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(
        session_auth(&app, &other).await,
        (AuthMethod::Passkey, Aal::Aal2)
    );
    let devices = other
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(devices.contains("Passkey"), "the device card says how");

    // The same answer again, in the same browser (its challenge was taken), and no answer at all
    // (JavaScript off) elsewhere, are sent back with the error.
    let replay = other
        .submit(
            "/api/account/passkey/finish",
            &[("purpose", "sign-in"), ("credential", &answer)],
        )
        .await;
    assert_eq!(error_code(&replay).as_deref(), Some("passkey_failed"));
    assert!(location(&replay).starts_with("/sign-in?"));
    let again = app.browser();
    let empty = again
        .submit("/api/account/passkey/finish", &[("purpose", "sign-in")])
        .await;
    assert_eq!(error_code(&empty).as_deref(), Some("passkey_failed"));
    assert_eq!(again.signed_in_as().await, None);
}

async fn a_passkey_is_the_second_step_after_a_password(backend: console_sessions::Backend) {
    let app = app_with_passkeys(backend).await;
    app.create_user("bob").await;
    let browser = app.signed_in("bob", FIREFOX).await;
    let mut key = SoftPasskey::new(ORIGIN);
    add_passkey(&browser, &mut key, "Phone").await;

    let second = app.browser();
    let response = second.try_sign_in("bob", PASSWORD).await;
    assert_eq!(location(&response), "/sign-in/two-factor");
    let waiting: Value = second
        .get_json("/api/account/second-step")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["passkey"], true);
    assert_eq!(waiting["totp"], false);
    let start = options(&second, "second-step").await;
    let answer = key.sign(start["options"].as_str().unwrap()).unwrap();
    assert_eq!(
        finish(&second, "second-step", &answer, &[]).await,
        "/account/sessions"
    );
    assert_eq!(
        session_auth(&app, &second).await,
        (AuthMethod::PasswordPasskey, Aal::Aal2)
    );

    // "Keep me signed in" unticked at the password carries through the second step.
    let shared = app.browser();
    let response = shared
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("remember_asked", "1"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/sign-in/two-factor");
    let start = options(&shared, "second-step").await;
    let answer = key.sign(start["options"].as_str().unwrap()).unwrap();
    finish(&shared, "second-step", &answer, &[]).await;
    let row = app
        .session_row(&shared.session_token().unwrap())
        .await
        .unwrap();
    assert_eq!(row.expiry, console_sessions::sessions::Expiry::BrowserClose);

    // With no sign-in waiting, the options send the browser to sign in again.
    let stranger = app.browser();
    let start = options(&stranger, "second-step").await;
    assert!(start["options"].is_null());
    assert_eq!(start["go"], "/sign-in?error=sign_in_expired");
}

async fn adding_a_passkey_and_removing_the_last_need_a_recent_proof(
    backend: console_sessions::Backend,
) {
    let app = app_with_passkeys(backend).await;
    app.create_user("carol").await;
    let browser = app.signed_in("carol", FIREFOX).await;
    let other = app.signed_in("carol", FIREFOX).await;
    let mut key = SoftPasskey::new(ORIGIN);
    add_passkey(&browser, &mut key, "Key").await;
    // The session proved itself with a password only, and the account has a factor now: adding
    // another passkey (a way in without the password) asks for a factor, however recent the proof.
    let start = options(&browser, "register").await;
    assert!(start["options"].is_null());
    let go = start["go"].as_str().unwrap();
    assert!(
        go.starts_with("/confirm-access?next=") && go.ends_with("&factor=1"),
        "{go}"
    );
    let page = browser.get_page(go).await.text().await.unwrap();
    assert!(page.contains("your password alone is not enough"));
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    // Once the window has passed, removing asks to confirm access first, as adding does.
    let list: Value = browser
        .get_json("/api/account/passkeys")
        .await
        .json()
        .await
        .unwrap();
    let id = list["passkeys"][0]["id"].as_i64().unwrap().to_string();
    let stale = browser
        .submit(
            "/api/account/passkey/remove",
            &[("id", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(stale.status(), 302);
    assert!(location(&stale).starts_with("/confirm-access?next="));
    let start = options(&browser, "register").await;
    assert!(start["options"].is_null());
    assert!(start["go"]
        .as_str()
        .unwrap()
        .starts_with("/confirm-access?next="));
    let choices: Value = browser
        .get_json("/api/account/confirm-options")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(choices["passkey"], true);
    // Confirming with the passkey.
    let start = options(&browser, "confirm").await;
    let answer = key.sign(start["options"].as_str().unwrap()).unwrap();
    assert_eq!(
        finish(
            &browser,
            "confirm",
            &answer,
            &[("next", "/account/security")]
        )
        .await,
        "/account/security"
    );
    assert_eq!(
        session_auth(&app, &browser).await.1,
        Aal::Aal2,
        "confirming with a passkey raises the level"
    );
    let start = options(&browser, "register").await;
    assert!(
        start["options"].is_string(),
        "a factor's recent proof lets another passkey be added"
    );

    // Renaming needs no proof; an unknown id is not found.
    let renamed = browser
        .submit(
            "/api/account/passkey/rename",
            &[("id", &id), ("name", "Yubikey")],
        )
        .await;
    assert_eq!(location(&renamed), "/account/security?passkey=renamed");
    let unknown = browser
        .submit(
            "/api/account/passkey/rename",
            &[("id", "999999"), ("name", "x")],
        )
        .await;
    assert_eq!(error_code(&unknown).as_deref(), Some("not_found"));

    // Removing the last factor wants the box, then signs the other device out.
    let unticked = browser
        .submit("/api/account/passkey/remove", &[("id", &id)])
        .await;
    assert_eq!(error_code(&unticked).as_deref(), Some("confirm_removal"));
    let removed = browser
        .submit(
            "/api/account/passkey/remove",
            &[("id", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        location(&removed),
        "/account/security?passkey=removed&signed_out=1"
    );
    assert_eq!(other.signed_in_as().await, None);
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("carol"));
    let factors: Value = browser
        .get_json("/api/account/factors")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(factors["passkeys"], 0);
    assert_eq!(factors["recovery_codes_total"], 0);
}

async fn every_change_of_two_step_sign_in_is_mailed_to_the_owner(
    backend: console_sessions::Backend,
) {
    let app = app_with_passkeys(backend).await;
    app.state
        .accounts
        .create_user(console_sessions::accounts::NewUser {
            username: "erin".to_owned(),
            email: Some("erin@example.test".to_owned()),
            password: PASSWORD.to_owned(),
            is_staff: false,
        })
        .await
        .unwrap();
    let browser = app.signed_in("erin", FIREFOX).await;
    let mut key = SoftPasskey::new(ORIGIN);
    add_passkey(&browser, &mut key, "Laptop").await;
    let codes: Vec<String> = browser
        .get_json("/api/account/recovery-codes/fresh")
        .await
        .json()
        .await
        .unwrap();
    // A recovery code confirming access, new codes, and removing the last factor.
    let confirmed = browser
        .submit(
            "/api/account/confirm-access",
            &[("code", &codes[0]), ("next", "/account/security")],
        )
        .await;
    assert_eq!(location(&confirmed), "/account/security");
    let renewed = browser
        .submit("/api/account/recovery-codes/renew", &[])
        .await;
    assert_eq!(location(&renewed), "/account/two-factor/recovery-codes");
    let list: Value = browser
        .get_json("/api/account/passkeys")
        .await
        .json()
        .await
        .unwrap();
    let id = list["passkeys"][0]["id"].as_i64().unwrap().to_string();
    browser
        .submit(
            "/api/account/passkey/remove",
            &[("id", &id), ("confirm", "yes")],
        )
        .await;

    let outbox = console_sessions::mail::Outbox::new(
        app.state.db.clone(),
        console_sessions::mail::MailConfig::new("file://unused", "a@example.test").unwrap(),
    )
    .unwrap();
    let notices: Vec<String> = outbox
        .list(&[], 50, 0)
        .await
        .unwrap()
        .entries
        .into_iter()
        .filter(|entry| entry.kind == "two_step_changed")
        .map(|entry| {
            assert_eq!(entry.recipient, "erin@example.test");
            entry.subject
        })
        .collect();
    assert_eq!(notices.len(), 4, "added, a code used, renewed, removed");
    assert!(notices
        .iter()
        .all(|subject| subject.starts_with("Two-step sign-in changed on")));
}

async fn passkeys_are_off_on_an_ip_address(backend: console_sessions::Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_user("dave").await;
    let browser = app.signed_in("dave", FIREFOX).await;
    assert_eq!(browser.viewer().await["passkeys"], false);
    let start = options(&browser, "register").await;
    assert_eq!(start["go"], "/account/security?error=passkeys_unavailable");
    let page = browser
        .get_page("/account/security?error=passkeys_unavailable")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Passkeys are not available at this address of the site."));
}

on_every_database!(
    a_passkey_is_added_and_then_signs_in_without_a_password,
    a_passkey_is_the_second_step_after_a_password,
    adding_a_passkey_and_removing_the_last_need_a_recent_proof,
    passkeys_are_off_on_an_ip_address,
    every_change_of_two_step_sign_in_is_mailed_to_the_owner,
);
