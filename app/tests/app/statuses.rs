//! Server functions called as the hydrated page calls them answer with the status of their error,
//! so load balancers, logs and metrics tell a wrong password or a stale form from a failure of ours.

use std::time::Duration;

use crate::common::{spawn_app, spawn_app_with_accounts, PASSWORD};
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

/// Oversized request headers, with and without a session, on every kind of route: a page, a
/// server function, the JSON API, forward authentication, a static file, the health check. Each
/// gets a prompt answer — served, or a clear 4xx — and never a connection left hanging.
#[tokio::test]
async fn oversized_headers_get_a_prompt_answer_signed_in_or_not() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let signed_in = app.signed_in("alice", crate::common::FIREFOX).await;
    let token = signed_in.session_token().unwrap();
    let routes = [
        "/account/sessions",
        "/api/account/viewer",
        "/api/v1/me",
        "/api/v1/sessions",
        "/auth/verify",
        "/favicon.svg",
        "/healthz",
        "/no-such-page",
    ];
    for size in [8 * 1024, 8_100, 16 * 1024, 64 * 1024] {
        for cookie in [None, Some(token.as_str())] {
            for route in routes {
                // A fresh client each time: one whose connection hangs must not stall the rest.
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let mut request = client
                    .get(app.url(route))
                    .header("user-agent", "x".repeat(size))
                    .header("accept", "*/*");
                if let Some(token) = cookie {
                    request = request.header("cookie", format!("session={token}"));
                }
                let answer = tokio::time::timeout(Duration::from_secs(10), request.send()).await;
                let what = format!(
                    "GET {route} with a {size}-byte User-Agent, {}",
                    if cookie.is_some() {
                        "signed in"
                    } else {
                        "signed out"
                    }
                );
                let response = answer
                    .unwrap_or_else(|_| panic!("{what}: no answer in 10 s"))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let status = response.status().as_u16();
                assert!(status < 500, "{what}: {status}");
                tokio::time::timeout(Duration::from_secs(10), response.bytes())
                    .await
                    .unwrap_or_else(|_| panic!("{what}: the body never ended"))
                    .unwrap();
            }
        }
    }
    // Beyond what any browser sends, the HTTP layer refuses at once: a head of half a megabyte,
    // or more header fields than a hundred.
    let client = reqwest::Client::new();
    let huge = client
        .get(app.url("/api/v1/me"))
        .header("user-agent", "x".repeat(512 * 1024))
        .header("cookie", format!("session={token}"));
    let mut many = client
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("session={token}"));
    for n in 0..120 {
        many = many.header(format!("x-filler-{n}"), "1");
    }
    for (what, request) in [("a 512 KiB head", huge), ("120 header fields", many)] {
        match tokio::time::timeout(Duration::from_secs(10), request.send()).await {
            Err(_) => panic!("{what}: no answer in 10 s"),
            Ok(Ok(response)) => assert_eq!(response.status(), 431, "{what}"),
            // The server may close the connection before the client has sent it all.
            Ok(Err(error)) => assert!(!error.is_timeout(), "{what}: {error}"),
        }
    }
    // The session is still good after all that.
    assert_eq!(signed_in.signed_in_as().await.as_deref(), Some("alice"));
}

/// A client that starts a request and never finishes its head (a slow or broken client, or one
/// holding connections on purpose) is cut off after the head timeout: no connection, and no task
/// of ours, waits for it for ever. A request that is only slow to start is not.
#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off_after_the_head_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::common::spawn_app_with(Backend::Sqlite, |settings| {
        settings.request_head_timeout = 1;
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {}",
        "x".repeat(8_100)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection of a head that never ends");
    // Closed (or reset): either way the server let go.
    drop(closed);
    // A connection that stays quiet a moment, then sends a whole request, is served.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
