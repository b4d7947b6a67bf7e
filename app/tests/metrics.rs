//! `GET /metrics`: hidden by default, guarded by its token or its own listener, and counting what
//! happened. The recorder (and the library's cache counters) are global to the process, so these
//! tests are a test binary of their own, apart from the other areas (`app/`) whose traffic would
//! move the counts; they take turns and compare scrapes taken before and after their traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{post_form, session_cookie, sign_in, sign_up, spawn_app, spawn_app_with, TestApp};
use console_sessions::Backend;
use tokio::sync::Mutex;

const TOKEN: &str = "test-metrics-token-0123456789";

/// One test at a time: they all record into the one recorder of this process.
static TURN: Mutex<()> = Mutex::const_new(());

/// A Prometheus text exposition, as `name{sorted labels}` → value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let key = match series.split_once('{') {
                None => series.to_owned(),
                Some((name, labels)) => {
                    let labels = labels.trim_end_matches('}');
                    let mut pairs: Vec<&str> = split_labels(labels);
                    pairs.sort_unstable();
                    format!("{name}{{{}}}", pairs.join(","))
                }
            };
            samples.insert(key, value);
        }
        Self(samples)
    }

    /// The value of the series with exactly these labels (0 when absent: a counter not yet bumped).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        pairs.sort_unstable();
        let key = if pairs.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", pairs.join(","))
        };
        self.0.get(&key).copied().unwrap_or(0.0)
    }
}

/// `a="1",b="x,y"` → [`a="1"`, `b="x,y"`] (commas inside quotes stay).
fn split_labels(labels: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts
}

async fn scrape(base: &str) -> Scrape {
    let response = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(&response.text().await.unwrap())
}

async fn app_with_token() -> TestApp {
    spawn_app_with(Backend::Sqlite, |settings| {
        settings.metrics_token = Some(TOKEN.to_owned());
    })
    .await
}

#[tokio::test]
async fn metrics_do_not_exist_by_default() {
    let _turn = TURN.lock().await;
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn metrics_need_the_token() {
    let _turn = TURN.lock().await;
    let app = app_with_token().await;
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    for wrong in [
        "wrong",
        "test-metrics-token-012345678",
        "test-metrics-token-0123456789x",
    ] {
        let response = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{wrong}");
    }
    let scrape = scrape(&app.address).await;
    assert!(scrape.get("console_sessions_db_pool_max_connections", &[]) >= 1.0);
}

#[tokio::test]
async fn metrics_addr_serves_metrics_on_its_own_listener_only() {
    let _turn = TURN.lock().await;
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let on_main = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_main.status(), 404, "not on the public listener");
    let response = reqwest::get(format!("{metrics}/metrics")).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "no token asked on the private listener"
    );
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("console_sessions_db_pool_connections"));
    let elsewhere = reqwest::get(format!("{metrics}/")).await.unwrap();
    assert_eq!(elsewhere.status(), 404, "nothing but /metrics there");
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let _turn = TURN.lock().await;
    let app = app_with_token().await;
    let base = app.address.clone();
    let before = scrape(&base).await;

    // Requests: two health checks, one unknown path.
    for _ in 0..2 {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let missing = app
        .client
        .get(app.url("/no/such/page?token=secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Sessions: alice signs up (created: 1), then signs in from a second browser (created: 2).
    let first = sign_up(&app.client, &base, "alice").await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(session_cookie(&first).is_some());
    // Cache: the first browser's session was cached when created: one hit.
    let viewer = common::csrf_token(&app.client, &base).await.unwrap();
    assert!(!viewer.is_empty());
    // Sign-ins: one failure, one success.
    let second = common::client();
    let failed = sign_in(&second, &base, "alice", "not the password")
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let signed_in = sign_in(&second, &base, "alice", common::PASSWORD)
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    // Revoked: the second browser signs out the first (revoked: 1), then signs itself out
    // (signed_out: 1).
    let token = common::csrf_token(&second, &base).await.unwrap();
    let others = post_form(
        &second,
        &base,
        "/api/sessions/sign-out-others",
        &[("csrf_token", &token)],
    )
    .await
    .unwrap();
    assert_eq!(others.status(), 200);
    assert_eq!(others.json::<u64>().await.unwrap(), 1);
    let out = post_form(
        &second,
        &base,
        "/api/account/sign-out",
        &[("csrf_token", &token)],
    )
    .await
    .unwrap();
    assert_eq!(out.status(), 200);
    // Expired: a session aged past its expiry, then swept.
    let third = common::client();
    assert_eq!(
        sign_in(&third, &base, "alice", common::PASSWORD)
            .await
            .unwrap()
            .status(),
        200
    );
    app.test_db
        .execute("UPDATE sessions SET expires_at = 1")
        .await
        .unwrap();
    assert_eq!(app.state.sessions.clear_expired(100).await.unwrap(), 1);
    // Cache miss: a well-formed token nobody holds.
    let stranger = reqwest::Client::new()
        .get(app.url("/api/account/viewer"))
        .header("cookie", format!("session={}", "A".repeat(43)))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 200);

    let after = scrape(&base).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);

    let requests = "console_sessions_http_requests_total";
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "/healthz"), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "fallback"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "POST"),
                ("route", "/api/account/sign-up"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "POST"),
                ("route", "/api/account/sign-in"),
                ("status", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "POST"),
                ("route", "/api/account/sign-in"),
                ("status", "401")
            ]
        ),
        1.0
    );
    // One viewer call per form above (5) + the explicit one + the stranger's.
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "GET"),
                ("route", "/api/account/viewer"),
                ("status", "200")
            ]
        ),
        7.0
    );
    assert_eq!(
        delta(
            "console_sessions_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/healthz")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "console_sessions_http_request_duration_seconds_bucket",
            &[("method", "GET"), ("route", "/healthz"), ("le", "+Inf")]
        ),
        2.0
    );
    assert!(
        !after
            .0
            .keys()
            .any(|key| key.contains("no/such") || key.contains("secret")),
        "unknown paths are not labels"
    );

    assert_eq!(delta("console_sessions_sessions_created_total", &[]), 3.0);
    assert_eq!(
        delta(
            "console_sessions_sessions_revoked_total",
            &[("reason", "revoked")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "console_sessions_sessions_revoked_total",
            &[("reason", "signed_out")]
        ),
        1.0
    );
    assert_eq!(delta("console_sessions_sessions_expired_total", &[]), 1.0);
    assert_eq!(
        delta("console_sessions_sign_ins_total", &[("result", "success")]),
        2.0
    );
    assert_eq!(
        delta("console_sessions_sign_ins_total", &[("result", "failure")]),
        1.0
    );
    assert_eq!(
        delta(
            "console_sessions_sign_ins_total",
            &[("result", "throttled")]
        ),
        0.0
    );
    assert!(delta("console_sessions_session_cache_hits_total", &[]) >= 1.0);
    assert_eq!(
        delta("console_sessions_session_cache_misses_total", &[]),
        1.0
    );
    let in_use = after.get(
        "console_sessions_db_pool_connections",
        &[("state", "in_use")],
    );
    let idle = after.get("console_sessions_db_pool_connections", &[("state", "idle")]);
    assert!(
        in_use >= 0.0 && idle >= 0.0 && in_use + idle <= 16.0,
        "{in_use} {idle}"
    );
    assert_eq!(
        after.get("console_sessions_db_pool_max_connections", &[]),
        16.0
    );
}
