//! The devices page through the real HTTP stack: every session of the user, this device first;
//! signing one out, or all the others; never another user's; and a page that survives the database.

use crate::common::{
    error_code, location, raw_get, spawn_app, spawn_app_on, spawn_app_with, Browser, TestApp,
    DESKTOP_CHROME, FIREFOX, IPHONE_SAFARI, PASSWORD,
};
use console_sessions::{Backend, SessionBackend};
use serde_json::Value;

on_every_database!(
    signing_out_another_session_ends_it,
    another_users_session_id_is_not_found,
    an_anonymous_visitor_is_sent_to_sign_in_whatever_it_accepts,
    recently_ended_says_which_device_signed_a_session_out,
    a_device_is_renamed_by_a_plain_form_and_only_by_its_owner,
    sign_in_activity_shows_failed_attempts_and_sign_ins,
    addresses_are_shown_cut_or_not_at_all_as_ip_retention_says,
);

/// The sessions `/api/sessions/mine` lists for this browser.
async fn my_sessions(browser: &Browser) -> Vec<Value> {
    let response = browser.get_json("/api/sessions/mine").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

/// The public id of this browser's own session.
async fn own_public_id(browser: &Browser) -> String {
    let sessions = my_sessions(browser).await;
    let current = sessions
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed");
    current["public_id"].as_str().unwrap().to_owned()
}

fn cached(app: &TestApp, token: &str) -> bool {
    app.state.sessions.cache().is_some() && app.is_cached(token)
}

#[tokio::test]
async fn the_devices_page_lists_every_session_with_this_device_first() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;

    // The phone signed in last, so it is the most recent: the laptop still sees itself first.
    let response = laptop.get_json("/api/sessions/mine").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for browser in [&laptop, &phone] {
        assert!(
            !text.contains(&browser.session_token().unwrap()),
            "tokens never leave the server"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert!(body["now"].as_i64().unwrap() > 0);
    let (first, second) = (&sessions[0], &sessions[1]);
    assert_eq!(first["current"], true);
    assert_eq!(first["summary"], "Chrome 131 on macOS");
    assert_eq!(first["category"], "desktop");
    assert_eq!(second["current"], false);
    assert_eq!(second["summary"], "Safari 18 on iPhone");
    assert_eq!(second["category"], "smartphone");
    for session in sessions {
        assert_eq!(session["ip"], "127.0.0.1");
        assert_eq!(session["public_id"].as_str().unwrap().len(), 22);
        assert!(!session["location"].as_str().unwrap().is_empty());
        assert!(session["expires_at"].as_i64() > session["created_at"].as_i64());
    }
    assert_ne!(first["public_id"], second["public_id"]);

    // From the phone, the phone comes first.
    let from_phone = my_sessions(&phone).await;
    assert_eq!(from_phone[0]["current"], true);
    assert_eq!(from_phone[0]["summary"], "Safari 18 on iPhone");
    assert_eq!(from_phone[1]["summary"], "Chrome 131 on macOS");

    // The page itself, rendered on the server.
    let response = laptop.get_page("/account/sessions").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("This device"), "{html}");
    assert_eq!(html.matches("data-testid=\"this-device\"").count(), 1);
    let chrome = html
        .find("Chrome 131 on macOS")
        .expect("the laptop is listed");
    let safari = html
        .find("Safari 18 on iPhone")
        .expect("the phone is listed");
    assert!(chrome < safari, "this device first");
    assert!(!html.contains(&laptop.session_token().unwrap()));
}

async fn signing_out_another_session_ends_it(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let phone_token = phone.session_token().unwrap();
    assert_eq!(phone.signed_in_as().await.as_deref(), Some("alice"));
    if app.state.sessions.cache().is_some() {
        assert!(app.is_cached(&phone_token), "in use, so cached");
    }
    let phone_id = own_public_id(&phone).await;

    let response = laptop
        .submit("/api/sessions/sign-out", &[("public_id", &phone_id)])
        .await;
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert!(back.starts_with("/account/sessions?"), "{back}");
    assert!(
        crate::common::query_value(&back, "signed_out").is_some(),
        "{back}"
    );
    assert_eq!(error_code(&response), None);
    assert!(
        app.session_row(&phone_token).await.is_none(),
        "the row is gone"
    );
    assert!(!cached(&app, &phone_token), "and so is the cache entry");

    let response = phone.get_page("/account/sessions").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/sign-in?next=%2Faccount%2Fsessions&ended=1"
    );
    assert_eq!(phone.signed_in_as().await, None);

    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("alice"));
    let remaining = my_sessions(&laptop).await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["current"], true);

    // Twice is "not found"; with JavaScript the page gets the error as JSON.
    let response = laptop
        .submit("/api/sessions/sign-out", &[("public_id", &phone_id)])
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("not_found"));
    let response = laptop
        .call("/api/sessions/sign-out", &[("public_id", &phone_id)])
        .await;
    assert_eq!(response.json::<Value>().await.unwrap(), "NotFound");

    // Signing out this very session is signing out.
    let laptop_id = own_public_id(&laptop).await;
    let response = laptop
        .submit("/api/sessions/sign-out", &[("public_id", &laptop_id)])
        .await;
    assert_eq!(location(&response), "/sign-in?signed_out=1");
    assert_eq!(laptop.session_token(), None);
    assert_eq!(laptop.signed_in_as().await, None);
    assert!(app.sessions_of(alice).await.is_empty());
}

async fn another_users_session_id_is_not_found(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    app.create_user("carol").await;
    let alice_browser = app.signed_in("alice", FIREFOX).await;
    let carol = app.signed_in("carol", DESKTOP_CHROME).await;
    let alice_id = own_public_id(&alice_browser).await;
    let alice_token = alice_browser.session_token().unwrap();

    let response = carol
        .submit("/api/sessions/sign-out", &[("public_id", &alice_id)])
        .await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with("/account/sessions?"));
    assert_eq!(error_code(&response).as_deref(), Some("not_found"));
    let response = carol
        .call("/api/sessions/sign-out", &[("public_id", &alice_id)])
        .await;
    assert_eq!(response.json::<Value>().await.unwrap(), "NotFound");

    let malformed = [
        String::new(),
        "x".to_owned(),
        "../../../etc/passwd".to_owned(),
        "!".repeat(22),
        format!("{alice_id}x"),
        alice_id[..21].to_owned(),
        alice_token.clone(),
        "' OR 1=1 --".to_owned(),
        "A".repeat(100_000),
        "A".repeat(22),
    ];
    for id in &malformed {
        let response = carol
            .submit("/api/sessions/sign-out", &[("public_id", id)])
            .await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("not_found"),
            "{}",
            &id[..id.len().min(40)]
        );
    }
    // Nobody signed in: asked to sign in, nothing else.
    let response = app
        .browser()
        .submit("/api/sessions/sign-out", &[("public_id", &alice_id)])
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("sign_in_required"));

    assert_eq!(alice_browser.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 1);
    assert!(app.session_row(&alice_token).await.is_some());
    assert_eq!(carol.signed_in_as().await.as_deref(), Some("carol"));
}

#[tokio::test]
async fn sign_out_all_other_devices_keeps_this_one() {
    let app = spawn_app().await;
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let tablet = app.signed_in("alice", FIREFOX).await;
    let bob = app.signed_in("bob", FIREFOX).await;
    let laptop_id = own_public_id(&laptop).await;

    let response = laptop.submit("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/account/sessions?signed_out=2");
    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("alice"));
    for other in [&phone, &tablet] {
        assert_eq!(other.signed_in_as().await, None);
    }
    let left = app.sessions_of(alice).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].public_id.as_str(), laptop_id);
    assert_eq!(
        bob.signed_in_as().await.as_deref(),
        Some("bob"),
        "other users are untouched"
    );

    // Again, with JavaScript: nothing left to end.
    let response = laptop.call("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), 0);
    let html = laptop
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("This device"));
}

/// curl's `*/*`, or no `Accept` at all, is sent to sign in as a browser is: a page is a page,
/// whatever the client says it accepts (issue 17, item 11).
async fn an_anonymous_visitor_is_sent_to_sign_in_whatever_it_accepts(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let browser = app.browser();
    for (page, next) in [
        ("/account/sessions", "%2Faccount%2Fsessions"),
        ("/account/sessions?x=1", "%2Faccount%2Fsessions%3Fx%3D1"),
        ("/admin/sessions", "%2Fadmin%2Fsessions"),
    ] {
        let expected = format!("/sign-in?next={next}");
        for accept in ["*/*", "text/html", "application/json", "text/plain"] {
            let response = browser.get_page_accepting(page, accept).await;
            assert_eq!(response.status(), 302, "{page} {accept}");
            assert_eq!(location(&response), expected, "{page} {accept}");
        }
        let (status, headers) = raw_get(&app.address, page).await;
        assert_eq!(status, 302, "{page} without Accept");
        let sent_to = headers
            .iter()
            .find(|(name, _)| name == "location")
            .map(|(_, value)| value.as_str());
        assert_eq!(sent_to, Some(expected.as_str()), "{page} without Accept");
    }
    // Signed in, the page itself.
    app.create_user("alice").await;
    browser.sign_in("alice", PASSWORD).await;
    let response = browser.get_page_accepting("/account/sessions", "*/*").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("This device"));
}

#[tokio::test]
async fn the_devices_page_requires_sign_in() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser.get_page("/account/sessions").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sign-in?next=%2Faccount%2Fsessions");

    let response = browser.get_json("/api/sessions/mine").await;
    assert_eq!(response.json::<Value>().await.unwrap(), "SignInRequired");
    let response = browser.submit("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(error_code(&response).as_deref(), Some("sign_in_required"));
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);

    // After signing in from there, back to the page.
    app.create_user("alice").await;
    let response = browser
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/account/sessions"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account/sessions");
    assert_eq!(browser.get_page("/account/sessions").await.status(), 200);
}

async fn the_devices_page_survives_an_unavailable_database(session_backend: SessionBackend) {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.session_backend = session_backend;
    })
    .await;
    app.create_user("alice").await;
    let browser = app.signed_in("alice", DESKTOP_CHROME).await;
    assert_eq!(browser.get_page("/account/sessions").await.status(), 200);
    app.state.db.close().await;

    let response = browser.get_page("/account/sessions").await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_ne!(status, 500, "{html}");
    assert!(!html.contains("panicked"), "{html}");
    assert!(!html.contains("sqlx"), "no internals: {html}");
    assert!(
        html.contains("The database is unavailable right now"),
        "{status}: {html}"
    );

    let response = browser.get_json("/api/sessions/mine").await;
    let body = response.text().await.unwrap();
    assert!(body.contains("DatabaseUnavailable"), "{body}");
    assert!(
        browser.session_token().is_some(),
        "a failure does not cost the browser its session"
    );
}

mod the_devices_page_survives_an_unavailable_database {
    use console_sessions::SessionBackend;

    #[tokio::test]
    async fn with_db_sessions() {
        super::the_devices_page_survives_an_unavailable_database(SessionBackend::Db).await;
    }

    #[tokio::test]
    async fn with_cached_db_sessions() {
        super::the_devices_page_survives_an_unavailable_database(SessionBackend::CachedDb).await;
    }
}

async fn recently_ended_says_which_device_signed_a_session_out(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let tablet = app.signed_in("alice", FIREFOX).await;
    let laptop_id = own_public_id(&laptop).await;
    let phone_id = own_public_id(&phone).await;

    // Nothing has ended yet.
    let html = laptop
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Recently ended"), "{html}");
    assert!(html.contains("No session of yours has ended lately."));

    // The laptop signs the phone out; the tablet signs itself out.
    let response = laptop
        .submit("/api/sessions/sign-out", &[("public_id", &phone_id)])
        .await;
    assert_eq!(response.status(), 302);
    let response = tablet.submit("/api/account/sign-out", &[]).await;
    assert_eq!(response.status(), 302, "the tablet signs out");

    // Seen from the laptop, and from a device that signs in afterwards.
    let body: Value = laptop
        .get_json("/api/sessions/mine")
        .await
        .json()
        .await
        .unwrap();
    let ended = body["ended"].as_array().unwrap();
    assert_eq!(ended.len(), 2, "{body}");
    assert_eq!(ended[0]["reason"], "signed_out");
    assert_eq!(ended[0]["summary"], "Firefox 128 on Linux");
    assert_eq!(ended[1]["reason"], "revoked");
    assert_eq!(ended[1]["reason_text"], "Signed out from this device");
    assert_eq!(ended[1]["ended_by_session"], laptop_id.as_str());
    let later = app.signed_in("alice", FIREFOX).await;
    let body: Value = later
        .get_json("/api/sessions/mine")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["ended"][1]["reason_text"], "Signed out from Chrome 131 on macOS",
        "{body}"
    );
    let html = later
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("data-testid=\"ended-session\"").count(), 2);
    assert!(
        html.contains("Signed out from Chrome 131 on macOS"),
        "{html}"
    );
    assert!(!html.contains(&phone.session_token().unwrap()));
}

async fn a_device_is_renamed_by_a_plain_form_and_only_by_its_owner(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let bob = app.signed_in("bob", FIREFOX).await;
    let laptop_id = own_public_id(&laptop).await;

    let response = laptop
        .submit(
            "/api/sessions/rename",
            &[("public_id", &laptop_id), ("label", "  Work laptop ")],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/account/sessions?renamed=1");
    let sessions = my_sessions(&laptop).await;
    assert_eq!(sessions[0]["label"], "Work laptop");
    let html = laptop
        .get_page("/account/sessions?renamed=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("The device&#x27;s name was saved.")
            || html.contains("The device's name was saved."),
        "{html}"
    );
    assert!(html.contains("Work laptop"));
    assert!(
        html.contains("data-testid=\"session-device\""),
        "the device is still said"
    );

    // Too long: back with the error, nothing changed. Somebody else's: not found.
    let response = laptop
        .submit(
            "/api/sessions/rename",
            &[("public_id", &laptop_id), ("label", &"x".repeat(61))],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        error_code(&response).as_deref(),
        Some("device_name_too_long")
    );
    let response = bob
        .submit(
            "/api/sessions/rename",
            &[("public_id", &laptop_id), ("label", "Mine")],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("not_found"));
    assert_eq!(my_sessions(&laptop).await[0]["label"], "Work laptop");
    // Without the form's token, refused.
    let response = laptop
        .post_raw(
            "/api/sessions/rename",
            &[("public_id", &laptop_id), ("label", "Forged")],
            &[],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("csrf"));
    assert_eq!(my_sessions(&laptop).await[0]["label"], "Work laptop");
}

async fn sign_in_activity_shows_failed_attempts_and_sign_ins(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let stranger = app.browser_with_agent(IPHONE_SAFARI);
    let response = stranger.try_sign_in("alice", "not her password").await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("invalid_credentials")
    );
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;

    // The sign-in is recorded once the engine has told of it: ask until it shows.
    let mut entries = Vec::new();
    for _ in 0..50 {
        let body: Value = laptop
            .get_json("/api/sessions/mine")
            .await
            .json()
            .await
            .unwrap();
        entries = body["sign_ins"].as_array().unwrap().clone();
        if entries.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["succeeded"], true);
    assert_eq!(entries[0]["text"], "Signed in: Password");
    assert_eq!(entries[0]["summary"], "Chrome 131 on macOS");
    assert_eq!(entries[0]["session"], own_public_id(&laptop).await.as_str());
    assert_eq!(entries[1]["succeeded"], false);
    assert_eq!(entries[1]["text"], "Wrong password");
    assert_eq!(entries[1]["summary"], "Safari 18 on iPhone");
    assert_eq!(entries[1]["ip"], "127.0.0.1");

    let html = laptop
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign-in activity"), "{html}");
    assert!(html.contains("1 failed attempt here."), "{html}");
    assert_eq!(html.matches("data-succeeded=\"false\"").count(), 1);

    let response = laptop.get_json("/api/v1/account/sign-ins?limit=1").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sign_ins"].as_array().unwrap().len(), 1);
    assert_eq!(body["sign_ins"][0]["succeeded"], true);
    let response = app.browser().get_json("/api/v1/account/sign-ins").await;
    assert_eq!(response.status(), 401);
}

/// A browser with this user agent that says (through a trusted proxy) it is at `ip`.
fn browser_at(app: &TestApp, user_agent: &str, ip: &str) -> Browser {
    app.browser_with_headers(user_agent, &[("x-forwarded-for", ip)])
}

/// The app behind a trusted proxy on 127.0.0.1, keeping addresses as `retention` says
/// (`IP_RETENTION`, with addresses cut at once under `truncate`).
async fn app_keeping_addresses(backend: Backend, retention: &str) -> TestApp {
    let retention = retention.parse().unwrap();
    spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        settings.ip_retention = retention;
        settings.ip_truncate_after_days = 0;
    })
    .await
}

async fn addresses_are_shown_cut_or_not_at_all_as_ip_retention_says(backend: Backend) {
    // Cut: the networks, with their prefixes, on the page, in its JSON and in the admin.
    let app = app_keeping_addresses(backend, "truncate").await;
    app.create_user("alice").await;
    app.create_staff("root").await;
    let stranger = browser_at(&app, IPHONE_SAFARI, "2001:db8:cafe:1::5");
    stranger.try_sign_in("alice", "not her password").await;
    let laptop = browser_at(&app, DESKTOP_CHROME, "203.0.113.77");
    laptop.sign_in("alice", PASSWORD).await;
    let body: Value = laptop
        .get_json("/api/sessions/mine")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"][0]["ip"], "203.0.113.0/24", "{body}");
    let failed = body["sign_ins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["succeeded"] == false)
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["ip"], "2001:db8:cafe::/48", "{body}");
    let html = laptop
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("203.0.113.0/24"), "{html}");
    assert!(!html.contains("203.0.113.77"));
    let staff = browser_at(&app, FIREFOX, "198.51.100.4");
    staff.sign_in("root", PASSWORD).await;
    let html = staff
        .get_page("/admin/sessions?q=alice")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("203.0.113.0/24"), "{html}");
    assert!(!html.contains("203.0.113.77"));

    // None: no address anywhere, and nothing in the database either.
    let app = app_keeping_addresses(backend, "none").await;
    app.create_user("alice").await;
    let laptop = browser_at(&app, DESKTOP_CHROME, "203.0.113.77");
    laptop.sign_in("alice", PASSWORD).await;
    let body: Value = laptop
        .get_json("/api/sessions/mine")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"][0]["ip"], Value::Null, "{body}");
    let token = laptop.session_token().unwrap();
    let row = app.session_row(&token).await.unwrap();
    assert_eq!((row.ip, row.first_ip), (None, None));
    let html = laptop
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("This device"), "{html}");
    assert!(!html.contains("203.0.113.77"), "{html}");
}
