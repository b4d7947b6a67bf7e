//! Logs of the real binary in JSON: one object per line, the request id on every line written while
//! a request is served (page data loaded in tasks of their own included), and never a password, a
//! token or a cookie.

use std::time::Duration;

use crate::common::server::Server;
use crate::common::{csrf_token, post_form, session_cookie, sign_in, sign_up, PASSWORD};
use console_sessions::testing::TestDatabase;
use console_sessions::Backend;
use serde_json::Value;

/// Lines about the process rather than a request.
const PROCESS_LINES: &[&str] = &[
    "serving on",
    "shutting down",
    "no longer accepting connections",
    "database pool closed",
    "mail worker stopped",
    "sign-in alerts and mail still busy",
    "stopped",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_no_secret() {
    // On PostgreSQL, sqlx logs each statement from the task that runs it (on SQLite, from the
    // connection's own thread), so statements show which request they belong to.
    let db = TestDatabase::new(Backend::Postgres)
        .await
        .expect("PostgreSQL tests need TEST_POSTGRES_URL (make test sets it)");
    db.db.close().await;
    // Debug level: the most a person would turn on while investigating.
    let mut server = Server::start(&db.url, &[("LOG_FORMAT", "json"), ("RUST_LOG", "debug")]);
    let base = server.address.clone();

    let browser = crate::common::client();
    let signed_up = sign_up(&browser, &base, "logger").await.unwrap();
    assert_eq!(signed_up.status(), 200);
    let sign_up_id = signed_up.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let first_cookie = session_cookie(&signed_up).unwrap();
    let other = crate::common::client();
    assert_eq!(
        sign_in(&other, &base, "logger", "wrong password!")
            .await
            .unwrap()
            .status(),
        401
    );
    let signed_in = sign_in(&other, &base, "logger", PASSWORD).await.unwrap();
    let second_cookie = session_cookie(&signed_in).unwrap();
    // A page whose data is loaded by tasks of their own.
    let page = other
        .get(format!("{base}/account/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page_id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    let token = csrf_token(&other, &base).await.unwrap();
    let out = post_form(
        &other,
        &base,
        "/api/account/sign-out",
        &[("csrf_token", &token)],
    )
    .await
    .unwrap();
    assert_eq!(out.status(), 200);
    // A caller's own request id is kept when it is a plain token, replaced when it is not.
    let kept = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "proxy-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "proxy-1234.abc");
    let replaced = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "forged\" line")
        .send()
        .await
        .unwrap();
    let replaced_id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(replaced_id, "forged\" line");
    assert_eq!(replaced_id.len(), 36, "a fresh UUID");

    server.terminate();
    let server = tokio::task::spawn_blocking(move || {
        assert!(server.wait_exit(Duration::from_secs(30)).is_some());
        server
    })
    .await
    .unwrap();
    let lines = server.log();
    assert!(lines.len() > 20, "{lines:#?}");

    let secrets = [
        PASSWORD,
        "wrong password!",
        first_cookie.as_str(),
        second_cookie.as_str(),
        token.as_str(),
    ];
    let mut serving = false;
    let mut with_sign_up_id = Vec::new();
    let mut with_page_id = Vec::new();
    for line in &lines {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
        assert!(
            !line.to_ascii_lowercase().contains("cookie:"),
            "a cookie header: {line}"
        );
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let message = entry["message"].as_str().unwrap_or_default();
        if message.starts_with("serving on") {
            serving = true;
            continue;
        }
        let target = entry["target"].as_str().unwrap_or_default();
        let ours = target.starts_with("console_sessions") || target.starts_with("sqlx");
        if !serving || !ours || PROCESS_LINES.iter().any(|p| message.starts_with(p)) {
            continue;
        }
        // The cache's eviction listener, the mail worker and the sign-in alerts work for the
        // process, not for a request.
        let span = entry["span"]["name"].as_str().unwrap_or_default();
        if ["session_evictions", "mail_worker", "sign_in_alerts"].contains(&span) {
            continue;
        }
        let id = entry["span"]["request_id"].as_str();
        assert!(id.is_some_and(|id| !id.is_empty()), "no request id: {line}");
        if id == Some(sign_up_id.as_str()) {
            with_sign_up_id.push(entry.clone());
        }
        if id == Some(page_id.as_str()) {
            with_page_id.push(entry.clone());
        }
    }
    assert!(serving, "{lines:#?}");
    let messages = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let sign_up_messages = messages(&with_sign_up_id);
    assert!(
        sign_up_messages
            .iter()
            .any(|m| m == "account created by sign-up"),
        "{sign_up_messages:#?}"
    );
    assert!(
        sign_up_messages.iter().any(|m| m == "request answered"),
        "{sign_up_messages:#?}"
    );
    let answered = with_sign_up_id
        .iter()
        .find(|e| e["message"] == "request answered")
        .unwrap();
    assert_eq!(answered["status"], 200);
    assert_eq!(answered["span"]["route"], "/api/account/sign-up");
    assert_eq!(answered["span"]["method"], "POST");
    // The page's data queries ran in tasks of their own, inside the page request's span.
    assert!(
        with_page_id
            .iter()
            .any(|e| e["target"].as_str().is_some_and(|t| t.starts_with("sqlx"))),
        "{:#?}",
        messages(&with_page_id)
    );
}
