//! Server functions called as the hydrated page calls them answer with the status of their error,
//! so load balancers, logs and metrics tell a wrong password or a stale form from a failure of ours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{spawn_app, spawn_app_with_accounts, PASSWORD};
use console_sessions::accounts::{AccountsConfig, ThrottleLimits};
use console_sessions::Backend;

#[tokio::test]
async fn form_errors_have_their_own_statuses() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();

    let wrong = browser
        .call(
            "/api/account/sign-in",
            &[("username", "alice"), ("password", "not the password")],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<serde_json::Value>().await.unwrap(),
        "InvalidCredentials"
    );

    let mismatch = browser
        .call(
            "/api/account/sign-up",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("password_confirm", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), 400);

    let taken = browser
        .call(
            "/api/account/sign-up",
            &[
                ("username", "ALICE"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(taken.status(), 400);
    assert_eq!(
        taken.json::<serde_json::Value>().await.unwrap(),
        "UsernameTaken"
    );

    let stale = browser
        .post_raw(
            "/api/account/sign-in",
            &[
                ("csrf_token", "stale"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(stale.status(), 403);

    // Without JavaScript the browser is still sent back to its form.
    let plain = browser.try_sign_in("alice", "not the password").await;
    assert_eq!(plain.status(), 302);
}

#[tokio::test]
async fn a_throttled_sign_in_is_429_with_retry_after() {
    let app = spawn_app_with_accounts(Backend::Sqlite, |config: &mut AccountsConfig| {
        config.account_throttle = ThrottleLimits {
            max_failures: 1,
            window: Duration::from_secs(5),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(2),
        };
    })
    .await;
    app.create_user("alice").await;
    let browser = app.browser();
    let fields = [("username", "alice"), ("password", "not the password")];
    assert_eq!(
        browser.call("/api/account/sign-in", &fields).await.status(),
        401
    );
    let throttled = browser.call("/api/account/sign-in", &fields).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "2");
}
