//! The JSON API under `/api/v1` through the real HTTP stack: cookie sign-in and sign-out, the CSRF
//! header and the origin check, the user's own sessions (never another user's), the staff search
//! and audited bulk sign-out, one JSON error shape for everything that fails, and an OpenAPI
//! document that lists every endpoint.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{
    session_cookie, spawn_app_on, spawn_app_with_accounts, Browser, TestApp, DESKTOP_CHROME,
    FIREFOX, IPHONE_SAFARI, PASSWORD,
};
use console_sessions::accounts::{AccountsConfig, ThrottleLimits};
use console_sessions::admin::SessionAdmin;
use console_sessions::Backend;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

on_every_database!(
    signing_in_sets_the_session_cookie_and_answers_the_user,
    a_wrong_password_is_a_401_in_the_json_error_shape,
    repeated_failures_are_throttled_with_a_retry_after,
    unsafe_requests_without_the_right_csrf_header_are_refused,
    cross_origin_requests_are_refused_even_with_the_csrf_header,
    the_sessions_list_shows_this_session_first_and_never_a_token,
    deleting_another_users_session_is_not_found_and_revokes_nothing,
    deleting_an_own_other_session_ends_it_and_its_cookie_is_refused,
    revoke_others_answers_how_many_sessions_ended,
    staff_endpoints_refuse_visitors_with_401_and_non_staff_with_403,
    staff_search_takes_the_changelist_parameters,
    staff_bulk_revoke_ends_the_sessions_and_is_audited,
    malformed_requests_get_the_json_error_shape,
    the_openapi_document_lists_every_path_and_each_one_is_routed,
    an_inactive_users_session_is_refused_by_every_own_session_endpoint,
    a_session_can_be_named_and_its_end_is_read_back_with_its_reason,
);

/// The operations the API has, as the OpenAPI document must list them.
const OPERATIONS: [(&str, &str); 17] = [
    ("post", "/api/v1/auth/sign-in"),
    ("post", "/api/v1/auth/sign-out"),
    ("post", "/api/v1/auth/confirm"),
    ("get", "/api/v1/auth/csrf"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/sessions"),
    ("delete", "/api/v1/sessions/{public_id}"),
    ("patch", "/api/v1/sessions/{public_id}"),
    ("get", "/api/v1/sessions/ended"),
    ("get", "/api/v1/account/sign-ins"),
    ("post", "/api/v1/sessions/revoke-others"),
    ("get", "/api/v1/admin/sessions"),
    ("post", "/api/v1/admin/sessions/revoke"),
    ("get", "/api/v1/admin/history"),
    ("post", "/api/v1/admin/sessions/revoke-matching"),
    ("get", "/api/v1/admin/jobs/{job_id}"),
    ("get", "/api/v1/openapi.json"),
];

/// A client of the API: a browser's cookie jar (so tests can read the session token), JSON bodies,
/// and the CSRF header taken from `GET /api/v1/auth/csrf`.
struct Api {
    browser: Browser,
}

impl Api {
    fn new(app: &TestApp) -> Self {
        Self::with_agent(app, FIREFOX)
    }

    fn with_agent(app: &TestApp, user_agent: &str) -> Self {
        Self {
            browser: app.browser_with_agent(user_agent),
        }
    }

    /// A client signed in as `username` with [`PASSWORD`].
    async fn signed_in(app: &TestApp, username: &str, user_agent: &str) -> Self {
        let api = Self::with_agent(app, user_agent);
        let response = api.sign_in(username, PASSWORD).await;
        assert_eq!(response.status(), 200, "{username} signs in");
        api
    }

    fn url(&self, path: &str) -> String {
        self.browser.url(path)
    }

    fn session_token(&self) -> Option<String> {
        self.browser.session_token()
    }

    /// The token `GET /api/v1/auth/csrf` gives (setting the cookie the first time).
    async fn csrf_token(&self) -> String {
        let response = self.get("/api/v1/auth/csrf").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["csrf_token"]
            .as_str()
            .expect("a csrf_token")
            .to_owned()
    }

    async fn get(&self, path: &str) -> Response {
        self.browser
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
    }

    /// A request with the right `X-CSRF-Token`, and a JSON body when given.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let token = self.csrf_token().await;
        let mut request = self
            .browser
            .client
            .request(method, self.url(path))
            .header("x-csrf-token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn post_empty(&self, path: &str) -> Response {
        self.send(Method::POST, path, None).await
    }

    async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    async fn patch(&self, path: &str, body: Value) -> Response {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// `GET /api/v1/sessions/ended`'s ended sessions.
    async fn ended(&self, query: &str) -> Vec<Value> {
        let response = self.get(&format!("/api/v1/sessions/ended{query}")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["now"].as_i64().unwrap() > 0);
        body["ended"].as_array().unwrap().clone()
    }

    async fn sign_in(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/sign-in",
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// `GET /api/v1/me`: the username, or `None` when it answers 401.
    async fn me(&self) -> Option<String> {
        let response = self.get("/api/v1/me").await;
        if response.status() == StatusCode::UNAUTHORIZED {
            expect_error(response, 401, "sign_in_required").await;
            return None;
        }
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Some(body["username"].as_str().unwrap().to_owned())
    }

    /// `GET /api/v1/sessions`'s sessions.
    async fn sessions(&self) -> Vec<Value> {
        let response = self.get("/api/v1/sessions").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["sessions"].as_array().unwrap().clone()
    }

    /// The public id of this client's own session, as the list flags it.
    async fn own_public_id(&self) -> String {
        let sessions = self.sessions().await;
        let current = sessions
            .iter()
            .find(|s| s["current"] == true)
            .expect("the current session is listed");
        current["public_id"].as_str().unwrap().to_owned()
    }
}

/// Asserts the answer is never to be cached.
fn assert_no_store(response: &Response) {
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{} {}",
        response.status(),
        response.url()
    );
}

/// Asserts an error answer: this status, JSON `{"error": {"code", "message", ...}}` with this code,
/// never cached; returns the `error` object.
async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    assert_no_store(&response);
    let url = response.url().clone();
    let actual = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert_eq!(actual.as_u16(), status, "{url}: {text}");
    assert_eq!(content_type, "application/json", "{url}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{url}: {text}");
    assert!(
        !error["message"].as_str().unwrap().is_empty(),
        "{url}: {text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {text}");
    error
}

/// `GET /api/v1/admin/sessions{query}` as `api`, asserting it was served.
async fn admin_search(api: &Api, query: String) -> Value {
    let response = api.get(&format!("/api/v1/admin/sessions{query}")).await;
    assert_no_store(&response);
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{query}: {body}");
    body
}

async fn audit_log(app: &TestApp) -> Vec<console_sessions::admin::AuditEntry> {
    SessionAdmin::new(app.state.sessions.clone())
        .audit_log(100, 0)
        .await
        .expect("the audit log is readable")
}

async fn signing_in_sets_the_session_cookie_and_answers_the_user(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let api = Api::new(&app);
    assert_eq!(api.me().await, None);

    let response = api.sign_in("alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let cookie = session_cookie(&response).expect("the session cookie is set");
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("session="))
        .unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    // And the device cookie, as the sign-in form sets it.
    let device = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("device="))
        .expect("a device cookie");
    assert!(device.contains("HttpOnly"), "{device}");
    let user: Value = response.json().await.unwrap();
    assert_eq!(
        user,
        json!({"id": alice, "username": "alice", "email": "alice@example.test", "is_staff": false})
    );
    assert_eq!(api.session_token().as_deref(), Some(cookie.as_str()));
    let row = app.session_row(&cookie).await.expect("a session row");
    assert_eq!(row.user_id, Some(alice));

    // The same session as the pages': the form side sees the same user.
    assert_eq!(api.me().await.as_deref(), Some("alice"));
    assert_eq!(api.browser.signed_in_as().await.as_deref(), Some("alice"));

    // Signing in again gives the session a new token (as the form does).
    let again = api.sign_in("alice", PASSWORD).await;
    assert_eq!(again.status(), 200);
    let cycled = session_cookie(&again).expect("a new token");
    assert_ne!(cycled, cookie);
    assert!(
        app.session_row(&cookie).await.is_none(),
        "the old token is dead"
    );
    assert_eq!(app.sessions_of(alice).await.len(), 1);

    // Signing out ends it and removes the cookie.
    let response = api.post_empty("/api/v1/auth/sign-out").await;
    assert_eq!(response.status(), 204);
    assert_no_store(&response);
    assert_eq!(api.session_token(), None);
    assert_eq!(api.me().await, None);
    assert!(app.session_row(&cycled).await.is_none());
    assert!(app.sessions_of(alice).await.is_empty());
    // Signed out already: still fine.
    assert_eq!(api.post_empty("/api/v1/auth/sign-out").await.status(), 204);

    // The CSRF endpoint gives the cookie's own value, every time.
    let fresh = Api::new(&app);
    let first = fresh.csrf_token().await;
    assert_eq!(fresh.browser.cookie("csrftoken"), Some(first.clone()));
    assert_eq!(fresh.csrf_token().await, first);
}

async fn a_wrong_password_is_a_401_in_the_json_error_shape(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let api = Api::new(&app);

    for (username, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        let response = api.sign_in(username, password).await;
        assert_eq!(session_cookie(&response), None);
        let error = expect_error(response, 401, "invalid_credentials").await;
        assert_eq!(error["message"], "The username or password is incorrect.");
    }
    let response = api.sign_in("alice", "").await;
    let error = expect_error(response, 400, "password_required").await;
    assert_eq!(error["field"], "password");
    let response = api.sign_in("  ", PASSWORD).await;
    let error = expect_error(response, 400, "username_required").await;
    assert_eq!(error["field"], "username");
    // Past the lengths the document states (maxLength), a 4xx and no session.
    let response = api.sign_in(&"a".repeat(151), PASSWORD).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    let response = api.sign_in("alice", &"p".repeat(1025)).await;
    assert!(response.status().is_client_error(), "{}", response.status());

    assert_eq!(api.me().await, None);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
}

async fn repeated_failures_are_throttled_with_a_retry_after(backend: Backend) {
    let app = spawn_app_with_accounts(backend, |config: &mut AccountsConfig| {
        config.account_throttle = ThrottleLimits {
            max_failures: 2,
            window: Duration::from_secs(60),
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
        };
    })
    .await;
    app.create_user("alice").await;
    let api = Api::new(&app);
    for _ in 0..2 {
        let response = api.sign_in("alice", "wrong password").await;
        expect_error(response, 401, "invalid_credentials").await;
    }
    // Locked, even with the right password.
    let response = api.sign_in("alice", PASSWORD).await;
    let retry_after: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let error = expect_error(response, 429, "throttled").await;
    let secs = error["retry_after_secs"].as_u64().unwrap();
    assert_eq!(secs, retry_after);
    assert!((1..=30).contains(&secs), "{secs}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many failed attempts"),
        "{error}"
    );
    assert_eq!(api.me().await, None);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
}

async fn unsafe_requests_without_the_right_csrf_header_are_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let phone_id = phone.own_public_id().await;
    let token = laptop.csrf_token().await;
    let client = &laptop.browser.client;

    let attempts = [
        (Method::POST, "/api/v1/sessions/revoke-others".to_owned()),
        (Method::DELETE, format!("/api/v1/sessions/{phone_id}")),
        (Method::POST, "/api/v1/auth/sign-out".to_owned()),
        (Method::POST, "/api/v1/admin/sessions/revoke".to_owned()),
    ];
    for (method, path) in &attempts {
        // No header at all.
        let response = client
            .request(method.clone(), laptop.url(path))
            .send()
            .await
            .unwrap();
        expect_error(response, 403, "csrf_failed").await;
        // A header that is not the cookie's value.
        for wrong in [String::new(), "x".repeat(43), format!("{token}x")] {
            let response = client
                .request(method.clone(), laptop.url(path))
                .header("x-csrf-token", wrong)
                .json(&json!({"public_ids": [phone_id]}))
                .send()
                .await
                .unwrap();
            expect_error(response, 403, "csrf_failed").await;
        }
    }
    // Another client's token is worth nothing without that client's cookie.
    let response = phone
        .browser
        .client
        .post(phone.url("/api/v1/sessions/revoke-others"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "csrf_failed").await;

    // Sign-in too (login CSRF): a client without the token cookie cannot be signed in.
    let stranger = Api::new(&app);
    let response = stranger
        .browser
        .client
        .post(stranger.url("/api/v1/auth/sign-in"))
        .header("x-csrf-token", &token)
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(session_cookie(&response), None);
    expect_error(response, 403, "csrf_failed").await;
    assert_eq!(stranger.me().await, None);

    // Nothing happened.
    assert_eq!(laptop.me().await.as_deref(), Some("alice"));
    assert_eq!(phone.me().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 2);
    // With the header, the same request works.
    let response = laptop.post_empty("/api/v1/sessions/revoke-others").await;
    assert_eq!(response.status(), 200);
}

async fn cross_origin_requests_are_refused_even_with_the_csrf_header(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let _phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let token = laptop.csrf_token().await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let response = laptop
            .browser
            .client
            .post(laptop.url("/api/v1/sessions/revoke-others"))
            .header("x-csrf-token", &token)
            .header(name, value)
            .send()
            .await
            .unwrap();
        expect_error(response, 403, "cross_origin").await;
    }
    let response = laptop
        .browser
        .client
        .post(laptop.url("/api/v1/auth/sign-in"))
        .header("x-csrf-token", &token)
        .header("origin", "https://evil.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "cross_origin").await;
    assert_eq!(app.sessions_of(alice).await.len(), 2, "nothing ended");

    // The site's own origin passes.
    let own = laptop.browser.base.origin().ascii_serialization();
    let response = laptop
        .browser
        .client
        .post(laptop.url("/api/v1/sessions/revoke-others"))
        .header("x-csrf-token", &token)
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"revoked": 1})
    );
}

async fn the_sessions_list_shows_this_session_first_and_never_a_token(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;

    let response = laptop.get("/api/v1/sessions").await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let text = response.text().await.unwrap();
    for api in [&laptop, &phone] {
        assert!(!text.contains(&api.session_token().unwrap()), "no token");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["now"].as_i64().unwrap() > 0);
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["summary"], "Chrome 131 on macOS");
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[1]["summary"], "Safari 18 on iPhone");
    for session in sessions {
        assert_eq!(session["public_id"].as_str().unwrap().len(), 22);
        assert_eq!(session["ip"], "127.0.0.1");
    }
    // Each client sees itself first.
    let from_phone = phone.sessions().await;
    assert_eq!(from_phone[0]["summary"], "Safari 18 on iPhone");
    assert_eq!(from_phone[0]["current"], true);

    // The same data as the devices page's server function.
    let page: Value = laptop
        .browser
        .get_json("/api/sessions/mine")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["sessions"], body["sessions"]);

    let visitor = Api::new(&app);
    let response = visitor.get("/api/v1/sessions").await;
    expect_error(response, 401, "sign_in_required").await;
}

async fn deleting_another_users_session_is_not_found_and_revokes_nothing(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    app.create_user("carol").await;
    let alice_api = Api::signed_in(&app, "alice", FIREFOX).await;
    let carol = Api::signed_in(&app, "carol", DESKTOP_CHROME).await;
    let alice_id = alice_api.own_public_id().await;
    let alice_token = alice_api.session_token().unwrap();

    let response = carol.delete(&format!("/api/v1/sessions/{alice_id}")).await;
    expect_error(response, 404, "not_found").await;

    let malformed = [
        "x".to_owned(),
        "!".repeat(22),
        format!("{alice_id}x"),
        alice_id[..21].to_owned(),
        alice_token.clone(),
        "A".repeat(22),
        "A".repeat(5_000),
        "%FF%FE".to_owned(),
        "..%2F..%2Fetc".to_owned(),
    ];
    for id in &malformed {
        let response = carol.delete(&format!("/api/v1/sessions/{id}")).await;
        expect_error(response, 404, "not_found").await;
    }
    // Nobody signed in: asked to sign in, nothing else.
    let visitor = Api::new(&app);
    let response = visitor
        .delete(&format!("/api/v1/sessions/{alice_id}"))
        .await;
    expect_error(response, 401, "sign_in_required").await;

    assert_eq!(alice_api.me().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 1);
    assert!(app.session_row(&alice_token).await.is_some());
    assert_eq!(carol.me().await.as_deref(), Some("carol"));
}

async fn deleting_an_own_other_session_ends_it_and_its_cookie_is_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let phone_token = phone.session_token().unwrap();
    assert_eq!(phone.me().await.as_deref(), Some("alice"));
    let phone_id = phone.own_public_id().await;

    let response = laptop.delete(&format!("/api/v1/sessions/{phone_id}")).await;
    assert_eq!(response.status(), 204);
    assert_no_store(&response);
    assert!(app.session_row(&phone_token).await.is_none());
    if app.state.sessions.cache().is_some() {
        assert!(!app.is_cached(&phone_token), "evicted from the cache too");
    }
    // The phone's cookie no longer opens anything.
    assert_eq!(phone.me().await, None);
    let response = phone.get("/api/v1/sessions").await;
    expect_error(response, 401, "sign_in_required").await;
    assert_eq!(laptop.me().await.as_deref(), Some("alice"));

    // Twice is "not found".
    let response = laptop.delete(&format!("/api/v1/sessions/{phone_id}")).await;
    expect_error(response, 404, "not_found").await;

    // Deleting this very session is signing out.
    let laptop_id = laptop.own_public_id().await;
    let response = laptop
        .delete(&format!("/api/v1/sessions/{laptop_id}"))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(laptop.session_token(), None, "the cookie is removed");
    assert_eq!(laptop.me().await, None);
    assert!(app.sessions_of(alice).await.is_empty());
}

async fn a_session_can_be_named_and_its_end_is_read_back_with_its_reason(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let bob = Api::signed_in(&app, "bob", FIREFOX).await;
    let phone_id = phone.own_public_id().await;
    let phone_token = phone.session_token().unwrap();
    let laptop_id = laptop.own_public_id().await;

    // Named from another of the user's devices; never by somebody else, never too long.
    let path = format!("/api/v1/sessions/{phone_id}");
    let response = laptop.patch(&path, json!({"label": "Alice's phone"})).await;
    assert_eq!(response.status(), 204);
    let listed = laptop.sessions().await;
    let named = listed
        .iter()
        .find(|s| s["public_id"] == phone_id.as_str())
        .unwrap();
    assert_eq!(named["label"], "Alice's phone");
    let response = bob.patch(&path, json!({"label": "Mine"})).await;
    expect_error(response, 404, "not_found").await;
    let response = laptop.patch(&path, json!({"label": "x".repeat(61)})).await;
    expect_error(response, 400, "device_name_too_long").await;
    let response = laptop.patch(&path, json!({"name": "wrong field"})).await;
    assert_eq!(response.status(), 400);
    assert_eq!(phone.sessions().await[0]["label"], "Alice's phone");

    // Signed out from the laptop: the history says so, and which device it was.
    assert!(laptop.ended("").await.is_empty());
    let response = laptop.delete(&path).await;
    assert_eq!(response.status(), 204);
    let ended = laptop.ended("").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    let entry = &ended[0];
    assert_eq!(entry["public_id"], phone_id.as_str());
    assert_eq!(entry["reason"], "revoked");
    assert_eq!(entry["reason_text"], "Signed out from this device");
    assert_eq!(entry["ended_by_session"], laptop_id.as_str());
    assert_eq!(entry["label"], "Alice's phone");
    assert_eq!(entry["summary"], "Safari 18 on iPhone");
    assert_eq!(entry["ip"], "127.0.0.1");
    assert!(entry["ended_at"].as_i64() >= entry["created_at"].as_i64());
    let text = serde_json::to_string(&ended).unwrap();
    assert!(!text.contains(&phone_token), "no token in the history");
    // Only the user's own history, and as many as asked.
    assert!(bob.ended("").await.is_empty());
    let again = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let response = again.post_empty("/api/v1/auth/sign-out").await;
    assert_eq!(response.status(), 204);
    let ended = laptop.ended("?limit=1").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "signed_out");
    assert_eq!(ended[0]["reason_text"], "Signed out");
    assert_eq!(laptop.ended("?limit=100").await.len(), 2);
    // A limit out of 1 to 100 is refused, as the document says, not quietly clamped.
    for path in ["/api/v1/sessions/ended", "/api/v1/account/sign-ins"] {
        for limit in ["0", "101", "-1", "many"] {
            let response = laptop.get(&format!("{path}?limit={limit}")).await;
            expect_error(response, 400, "invalid_query").await;
        }
        assert_eq!(laptop.get(&format!("{path}?limit=100")).await.status(), 200);
    }
}

async fn revoke_others_answers_how_many_sessions_ended(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let tablet = Api::signed_in(&app, "alice", FIREFOX).await;
    let bob = Api::signed_in(&app, "bob", FIREFOX).await;
    let laptop_id = laptop.own_public_id().await;

    let response = laptop.post_empty("/api/v1/sessions/revoke-others").await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"revoked": 2})
    );
    assert_eq!(phone.me().await, None);
    assert_eq!(tablet.me().await, None);
    assert_eq!(laptop.me().await.as_deref(), Some("alice"));
    let left = app.sessions_of(alice).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].public_id.as_str(), laptop_id);
    assert_eq!(bob.me().await.as_deref(), Some("bob"), "others untouched");

    // Again: nothing left to end.
    let response = laptop.post_empty("/api/v1/sessions/revoke-others").await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"revoked": 0})
    );

    let visitor = Api::new(&app);
    let response = visitor.post_empty("/api/v1/sessions/revoke-others").await;
    expect_error(response, 401, "sign_in_required").await;
}

async fn staff_endpoints_refuse_visitors_with_401_and_non_staff_with_403(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let root_id = app.create_staff("root").await;
    let bob = app.create_user("bob").await;
    app.create_user("alice").await;
    let root = Api::signed_in(&app, "root", FIREFOX).await;
    let alice = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let bob_api = Api::signed_in(&app, "bob", IPHONE_SAFARI).await;
    let bob_id = bob_api.own_public_id().await;
    let visitor = Api::new(&app);

    for (api, status, code) in [
        (&visitor, 401, "sign_in_required"),
        (&alice, 403, "forbidden"),
    ] {
        let response = api.get("/api/v1/admin/sessions").await;
        expect_error(response, status, code).await;
        let response = api.get("/api/v1/admin/sessions?q=bob").await;
        expect_error(response, status, code).await;
        let response = api
            .post(
                "/api/v1/admin/sessions/revoke",
                json!({"public_ids": [bob_id]}),
            )
            .await;
        expect_error(response, status, code).await;
        // Even a body that could not be read is refused for who sends it first.
        let response = api
            .post("/api/v1/admin/sessions/revoke", json!({"nope": 1}))
            .await;
        expect_error(response, status, code).await;
    }
    assert_eq!(app.sessions_of(bob).await.len(), 1, "nothing revoked");
    assert!(audit_log(&app).await.is_empty(), "nothing recorded");

    // A deactivated staff account is refused too (its sessions ended with it).
    app.state.accounts.set_active(root_id, false).await.unwrap();
    let response = root.get("/api/v1/admin/sessions").await;
    expect_error(response, 401, "sign_in_required").await;
}

async fn staff_search_takes_the_changelist_parameters(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let root = Api::signed_in(&app, "root", FIREFOX).await;
    let _alice_laptop = Api::signed_in(&app, "alice", DESKTOP_CHROME).await;
    let _alice_phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let _bob = Api::signed_in(&app, "bob", FIREFOX).await;

    let usernames = |body: &Value| -> Vec<String> {
        let mut names: Vec<String> = body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["username"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };
    let search = |query: String| admin_search(&root, query);

    let all = search("".to_owned()).await;
    assert_eq!(usernames(&all), ["alice", "alice", "bob", "root"]);
    assert_eq!(all["total"], 4);
    assert_eq!(all["total_exact"], true);
    assert_eq!(all["page"], 1);
    assert_eq!(all["page_size"], 100);
    assert_eq!(all["user"], Value::Null);
    assert!(all["now"].as_i64().unwrap() > 0);
    let text = all.to_string();
    for session in all["sessions"].as_array().unwrap() {
        assert_eq!(session["public_id"].as_str().unwrap().len(), 22);
        assert_eq!(session["active"], true);
    }
    assert!(!text.contains(&root.session_token().unwrap()), "no token");

    assert_eq!(
        usernames(&search("?q=alice".to_owned()).await),
        ["alice", "alice"]
    );
    assert_eq!(usernames(&search("?owner=mine".to_owned()).await), ["root"]);
    assert_eq!(
        usernames(&search("?device=smartphone".to_owned()).await),
        ["alice"]
    );
    assert_eq!(
        usernames(&search("?q=ua:iphone".to_owned()).await),
        ["alice"]
    );
    assert_eq!(
        usernames(&search("?q=127.0.0.0/8".to_owned()).await).len(),
        4
    );
    assert!(usernames(&search("?q=10.0.0.0/8".to_owned()).await).is_empty());
    let bobs = search(format!("?user={bob}")).await;
    assert_eq!(usernames(&bobs), ["bob"]);
    assert_eq!(bobs["user"], json!({"id": bob, "username": "bob"}));
    assert!(usernames(&search("?state=expired".to_owned()).await).is_empty());
    assert_eq!(search("?page=2".to_owned()).await["page"], 2);
    assert!(usernames(&search("?page=2".to_owned()).await).is_empty());
    // Sorted by user, ascending and descending.
    let sorted = search("?sort=user&dir=asc".to_owned()).await;
    let names: Vec<&str> = sorted["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alice", "bob", "root"]);
    // Values it does not know are ignored, as on the page.
    assert_eq!(
        usernames(&search("?state=bogus&sort=nope&page=x".to_owned()).await).len(),
        4
    );

    // A query string that cannot be read is a 400 in the same shape.
    let response = root.get("/api/v1/admin/sessions?q=a&q=b").await;
    expect_error(response, 400, "invalid_query").await;
}

async fn staff_bulk_revoke_ends_the_sessions_and_is_audited(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let carol = app.create_user("carol").await;
    let root = Api::signed_in(&app, "root", FIREFOX).await;
    let alice_api = Api::signed_in(&app, "alice", FIREFOX).await;
    let bob_api = Api::signed_in(&app, "bob", DESKTOP_CHROME).await;
    let carol_api = Api::signed_in(&app, "carol", IPHONE_SAFARI).await;
    let alice_id = alice_api.own_public_id().await;
    let bob_id = bob_api.own_public_id().await;
    let alice_token = alice_api.session_token().unwrap();

    let unknown = "A".repeat(22);
    let response = root
        .post(
            "/api/v1/admin/sessions/revoke",
            json!({"public_ids": [alice_id, bob_id, unknown, "not an id"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 2, "{body}");
    let mut ended: Vec<String> = body["public_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    ended.sort();
    let mut expected = vec![alice_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(ended, expected);

    // Gone, cache included; their cookies are refused.
    assert!(app.session_row(&alice_token).await.is_none());
    if app.state.sessions.cache().is_some() {
        assert!(!app.is_cached(&alice_token));
    }
    assert_eq!(alice_api.me().await, None);
    assert_eq!(bob_api.me().await, None);
    assert!(app.sessions_of(alice).await.is_empty());
    assert!(app.sessions_of(bob).await.is_empty());
    assert_eq!(app.sessions_of(carol).await.len(), 1);
    assert_eq!(carol_api.me().await.as_deref(), Some("carol"));
    assert_eq!(root.me().await.as_deref(), Some("root"));

    // Recorded as the admin page records it: who, from where, which sessions.
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let entry = &log[0];
    assert_eq!(entry.action, "sessions.sign_out");
    assert_eq!(entry.actor_username, "root");
    assert_eq!(entry.actor_ip.as_deref(), Some("127.0.0.1"));
    let mut recorded = entry.session_ids.clone();
    recorded.sort();
    assert_eq!(recorded, expected);
    assert_eq!(entry.detail, "2 of 3 selected sessions ended");

    // Too many ids at once: refused whole, nothing ended, nothing recorded.
    let carol_id = carol_api.own_public_id().await;
    let mut many = vec![carol_id; 1];
    many.extend(std::iter::repeat_n("A".repeat(22), 1000));
    let response = root
        .post("/api/v1/admin/sessions/revoke", json!({"public_ids": many}))
        .await;
    let error = expect_error(response, 400, "too_many_ids").await;
    assert_eq!(error["field"], "public_ids");
    assert_eq!(app.sessions_of(carol).await.len(), 1);
    assert_eq!(audit_log(&app).await.len(), 1);
}

async fn malformed_requests_get_the_json_error_shape(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let api = Api::new(&app);
    let token = api.csrf_token().await;
    let client = &api.browser.client;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = client
            .post(api.url("/api/v1/auth/sign-in"))
            .header("x-csrf-token", &token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        async move { request.send().await.unwrap() }
    };

    let response = post("{\"username\": \"alice\", ", Some("application/json")).await;
    expect_error(response, 400, "malformed_json").await;
    let response = post("not json at all", Some("application/json")).await;
    expect_error(response, 400, "malformed_json").await;
    let response = post("{\"user\": \"alice\"}", Some("application/json")).await;
    expect_error(response, 400, "invalid_body").await;
    let response = post(
        "{\"username\": 1, \"password\": []}",
        Some("application/json"),
    )
    .await;
    expect_error(response, 400, "invalid_body").await;
    let response = post(
        "username=alice&password=x",
        Some("application/x-www-form-urlencoded"),
    )
    .await;
    expect_error(response, 415, "unsupported_media_type").await;
    let response = post("{\"username\": \"alice\"}", None).await;
    expect_error(response, 415, "unsupported_media_type").await;
    assert_eq!(api.me().await, None);

    // Unknown paths and methods: JSON too.
    for path in [
        "/api/v1/nope",
        "/api/v1/sessions/a/b",
        "/api/v1",
        "/api/v1/",
        "/api/v1/admin",
    ] {
        let response = api.get(path).await;
        expect_error(response, 404, "not_found").await;
    }
    let response = client
        .post(api.url("/api/v1/nope"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = api.get("/api/v1/auth/sign-in").await;
    expect_error(response, 405, "method_not_allowed").await;
    let response = api.send(Method::PUT, "/api/v1/me", None).await;
    expect_error(response, 405, "method_not_allowed").await;
    // A method the endpoint lacks is a 405 even without the CSRF header: nothing would run anyway.
    let response = client
        .patch(api.url("/api/v1/sessions/revoke-others"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    expect_error(response, 405, "method_not_allowed").await;
}

async fn the_openapi_document_lists_every_path_and_each_one_is_routed(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let api = Api::new(&app);
    let response = api.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));

    let listed: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected);

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["session_cookie"]["type"], "apiKey");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["csrf_header"]["in"], "header");
    assert_eq!(schemes["csrf_header"]["name"], "X-CSRF-Token");
    let schemas = &document["components"]["schemas"];
    for name in [
        "ErrorBody",
        "ErrorDetail",
        "User",
        "SignInRequest",
        "CsrfTokenBody",
        "MySessions",
        "DeviceSession",
        "Revoked",
        "SessionSearch",
        "AdminSession",
        "BulkRevokeRequest",
        "BulkRevoked",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }

    // Every documented operation reaches a handler: none answers "no such endpoint" or 405.
    for (method, path) in OPERATIONS {
        let operation = &document["paths"][path][method];
        assert!(operation["responses"].is_object(), "{method} {path}");
        let path = path.replace("{public_id}", &"A".repeat(22));
        let response = api
            .browser
            .client
            .request(method.to_uppercase().parse().unwrap(), api.url(&path))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_no_store(&response);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            assert!(
                !body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no such endpoint"),
                "{method} {path}: {body}"
            );
        }
        // Documented statuses only.
        let documented = operation["responses"]
            .as_object()
            .unwrap()
            .contains_key(status.as_str());
        assert!(documented, "{method} {path} answered {status}");
    }
}

/// A user deactivated behind the service's back (a statement in the database that ended none of
/// their sessions) can no longer use their session on any endpoint of their own: each answers
/// 401 and the session ends, as the pages and forward authentication already do.
async fn an_inactive_users_session_is_refused_by_every_own_session_endpoint(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let laptop = Api::signed_in(&app, "alice", FIREFOX).await;
    let phone = Api::signed_in(&app, "alice", IPHONE_SAFARI).await;
    let phone_id = phone.own_public_id().await;
    app.test_db
        .execute(&format!(
            "UPDATE users SET is_active = FALSE WHERE id = {alice}"
        ))
        .await
        .unwrap();
    expect_error(
        laptop.get("/api/v1/sessions").await,
        401,
        "sign_in_required",
    )
    .await;
    let laptop = Api::with_planted_session(&app, alice).await;
    expect_error(
        laptop.delete(&format!("/api/v1/sessions/{phone_id}")).await,
        401,
        "sign_in_required",
    )
    .await;
    let laptop = Api::with_planted_session(&app, alice).await;
    expect_error(
        laptop.post_empty("/api/v1/sessions/revoke-others").await,
        401,
        "sign_in_required",
    )
    .await;
    let laptop = Api::with_planted_session(&app, alice).await;
    let changed = laptop
        .browser
        .call(
            "/api/account/change-password",
            &[
                ("current_password", PASSWORD),
                ("password", "a brand new passphrase"),
                ("password_confirm", "a brand new passphrase"),
                ("sign_out_others", "on"),
            ],
        )
        .await;
    assert_eq!(changed.status(), 401, "change-password refuses too");
    assert!(
        app.sessions_of(alice)
            .await
            .iter()
            .any(|session| session.public_id.to_string() == phone_id),
        "neither the DELETE nor revoke-others ended the other session"
    );
    assert!(
        app.state
            .accounts
            .authenticate("alice", PASSWORD, None)
            .await
            .is_err(),
        "inactive: no sign-in at all"
    );
}

impl Api {
    /// A client holding a session of `user_id` written straight into the database, as one that
    /// slipped past deactivation would be.
    async fn with_planted_session(app: &TestApp, user_id: i64) -> Self {
        let (mut record, token) = console_sessions::testing::sample_record(Some(user_id));
        record.user_agent = Some(FIREFOX.to_owned());
        console_sessions::SessionStore::create(app.state.sessions.db_store().unwrap(), &record)
            .await
            .unwrap();
        let again = Api::new(app);
        again
            .browser
            .set_cookie(&format!("session={}", token.expose()));
        again
    }
}
