//! The foundation through the real HTTP stack: health, pages, server functions.

use crate::common::{spawn_app, spawn_app_on, Browser, FIREFOX};
use console_sessions::Backend;

on_every_database!(only_staff_are_told_which_database_runs);

#[tokio::test]
async fn healthz_reports_a_working_sqlite_database() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "database": "ok"}));
}

#[tokio::test]
async fn healthz_reports_a_working_postgres_database() {
    let app = spawn_app_on(Backend::Postgres).await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.state.db.backend(), Backend::Postgres);
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_is_unavailable() {
    let app = spawn_app().await;
    app.state.db.close().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");
}

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Anonymous visitors get no session (strict mode); only the anti-forgery cookie forms need.
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().all(|c| c.starts_with("csrftoken=")),
        "{cookies:?}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Your sessions, under control"));
    assert!(
        html.contains("/pkg/console-sessions.js"),
        "the hydration script is linked"
    );
}

#[tokio::test]
async fn unknown_paths_get_a_404_page() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

/// The status server function as the home page calls it, from `browser`.
async fn status_for(browser: &Browser) -> serde_json::Value {
    let response = browser
        .client
        .post(browser.url("/api/system/status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Which database runs is for staff only: anybody else is told whether it answers, no more
/// (issue 17, item 12b).
async fn only_staff_are_told_which_database_runs(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let anonymous = status_for(&app.browser()).await;
    assert_eq!(
        anonymous,
        serde_json::json!({"backend": null, "database_ok": true})
    );
    let home = app.browser().get_page("/").await.text().await.unwrap();
    assert!(
        home.contains("All systems normal: the database answers."),
        "{home}"
    );
    for name in ["sqlite", "postgres"] {
        assert!(!anonymous.to_string().contains(name), "{anonymous}");
        assert!(!home.contains(&format!("{name} database")), "{home}");
    }

    app.create_user("alice").await;
    app.create_staff("root").await;
    let alice = app.signed_in("alice", FIREFOX).await;
    assert_eq!(status_for(&alice).await["backend"], serde_json::Value::Null);
    let staff = app.signed_in("root", FIREFOX).await;
    assert_eq!(
        status_for(&staff).await,
        serde_json::json!({"backend": backend.to_string(), "database_ok": true})
    );
    let home = staff.get_page("/").await.text().await.unwrap();
    assert!(
        home.contains(&format!(
            "All systems normal: the {backend} database answers."
        )),
        "{home}"
    );
}
