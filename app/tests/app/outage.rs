//! The database goes away under the running application: requests that need it get a clear 503
//! within the database timeout (never a hang, never a panic), `/healthz` says so, and when the
//! database is back the application recovers by itself with every session committed before.

use std::time::{Duration, Instant};

use crate::common::pg::ThrowawayPostgres;
use crate::common::{
    session_cookie, sign_up, spawn_app_for, spawn_app_with, username_for, TestApp,
};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, Database};
use console_sessions_app::server::config::Settings;
use sqlx::Connection;

/// The database timeout the tests configure, in seconds.
const TIMEOUT: u64 = 2;

/// Longest a request may take while the database is away: the timeout and some slack.
const BOUND: Duration = Duration::from_secs(TIMEOUT + 4);

async fn timed(request: reqwest::RequestBuilder) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(60), request.send())
        .await
        .expect("no answer within a minute: the request hangs")
        .unwrap();
    (response, started.elapsed())
}

async fn assert_healthz(app: &TestApp, status: u16) {
    let (response, took) = timed(app.client.get(app.url("/healthz"))).await;
    assert_eq!(response.status(), status);
    assert!(took < BOUND, "/healthz took {took:?}");
    println!("/healthz: {status} in {took:?}");
    let body: serde_json::Value = response.json().await.unwrap();
    let expected = if status == 200 { "ok" } else { "unavailable" };
    assert_eq!(body["database"], expected);
}

/// Signs up `count` users, each in a browser of its own; their session cookies.
async fn sign_up_many(app: &TestApp, prefix: &str, count: usize) -> Vec<(String, String)> {
    let mut sessions = Vec::new();
    for i in 0..count {
        let username = format!("{prefix}{i}");
        let response = sign_up(&crate::common::client(), &app.address, &username)
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{username}");
        sessions.push((username, session_cookie(&response).unwrap()));
    }
    sessions
}

/// Every session still belongs to its user, read from the database (the cache emptied first).
async fn assert_sessions_present(app: &TestApp, sessions: &[(String, String)]) {
    if let Some(cache) = app.state.sessions.cache() {
        cache.evict_all();
    }
    for (username, cookie) in sessions {
        assert_eq!(
            username_for(&app.address, cookie).await.unwrap().as_deref(),
            Some(username.as_str()),
            "{username}'s session survived"
        );
    }
}

#[tokio::test]
async fn a_locked_sqlite_database_gives_503_then_recovers() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.database_timeout = TIMEOUT;
    })
    .await;
    let before = sign_up_many(&app, "before", 2).await;

    // Another process takes the write lock and keeps it (as a long migration or a backup would).
    let mut locker = sqlx::SqliteConnection::connect(&app.test_db.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();

    assert_healthz(&app, 503).await;
    // A change: a clear JSON error with 503, once the timeout is out.
    let token = crate::common::csrf_token(&app.client, &app.address)
        .await
        .unwrap();
    let (response, took) = timed(
        app.client
            .post(app.url("/api/account/sign-up"))
            .header("accept", "application/json")
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", "during"),
                ("password", crate::common::PASSWORD),
                ("password_confirm", crate::common::PASSWORD),
            ]),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert!(took < BOUND, "sign-up took {took:?}");
    println!("sign-up on a locked SQLite: 503 in {took:?}");
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        "DatabaseUnavailable"
    );
    // The same form without JavaScript goes back to its page with the error's code (the name typed
    // travels in a flash cookie, never in the URL).
    let (response, _) = timed(
        app.client
            .post(app.url("/api/account/sign-up"))
            .header("accept", "text/html")
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", "during"),
                ("password", crate::common::PASSWORD),
                ("password_confirm", crate::common::PASSWORD),
            ]),
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "/sign-up?error=database_unavailable"
    );
    // Reading still works in WAL mode: sessions from before are served.
    for (username, cookie) in &before {
        assert_eq!(
            username_for(&app.address, cookie).await.unwrap().as_deref(),
            Some(username.as_str())
        );
    }

    // The lock goes away: everything works again, without a restart.
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
    assert_healthz(&app, 200).await;
    let after = sign_up_many(&app, "after", 1).await;
    assert_sessions_present(&app, &before).await;
    assert_sessions_present(&app, &after).await;
}

#[tokio::test]
async fn a_postgres_outage_gives_503_then_the_app_recovers_with_every_session() {
    let server = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap();
    let db = Database::connect(&server.url).await.unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    let mut settings = Settings::for_tests(server.url.clone());
    settings.database_timeout = TIMEOUT;
    // A placeholder: the app's database is the throwaway server, not a TestDatabase.
    let placeholder = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app_for(placeholder, &settings).await;
    assert_eq!(app.state.db.backend(), Backend::Postgres);
    let before = sign_up_many(&app, "before", 5).await;
    assert_healthz(&app, 200).await;

    // A form token from before the outage, to try a sign-in during it.
    let token = crate::common::csrf_token(&app.client, &app.address)
        .await
        .unwrap();

    // Stopping blocks this thread (and the app on it) for the moment pg_ctl takes: harmless.
    server.stop_server();
    assert!(!server.is_running());

    assert_healthz(&app, 503).await;
    // A page that needs the database: 503 and a sentence a person understands.
    let (cookie_user, cookie) = &before[0];
    let (page, took) = timed(
        reqwest::Client::new()
            .get(app.url("/account/sessions"))
            .header("cookie", format!("session={cookie}")),
    )
    .await;
    assert_eq!(page.status(), 503, "{cookie_user}'s devices page");
    assert!(took < BOUND, "the page took {took:?}");
    println!("devices page with PostgreSQL down: 503 in {took:?}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("The database is unavailable right now"),
        "{html}"
    );
    // The same data as JSON: 503 with the error's name.
    let (api, took) = timed(
        reqwest::Client::new()
            .get(app.url("/api/account/viewer"))
            .header("accept", "application/json")
            .header("cookie", format!("session={cookie}")),
    )
    .await;
    assert_eq!(api.status(), 503);
    assert!(took < BOUND, "the API took {took:?}");
    println!("viewer API with PostgreSQL down: 503 in {took:?}");
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap(),
        "DatabaseUnavailable"
    );
    // A sign-in too.
    let (sign_in, took) = timed(
        app.client
            .post(app.url("/api/account/sign-in"))
            .header("accept", "application/json")
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", "before0"),
                ("password", crate::common::PASSWORD),
            ]),
    )
    .await;
    assert_eq!(sign_in.status(), 503);
    assert!(took < BOUND, "sign-in took {took:?}");
    println!("sign-in with PostgreSQL down: 503 in {took:?}");

    // PostgreSQL comes back: the app recovers without a restart, every session is there.
    server.start_server();
    let started = Instant::now();
    loop {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the app did not recover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "healthy again {:?} after PostgreSQL started",
        started.elapsed()
    );
    assert_sessions_present(&app, &before).await;
    let after = sign_up_many(&app, "after", 1).await;
    assert_sessions_present(&app, &after).await;
}
