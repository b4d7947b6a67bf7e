//! Accounts through the real HTTP stack: signing in and out, changing the password, deactivation,
//! throttling, forgery and open-redirect defences, bad input, and `createsuperuser`.

use std::net::IpAddr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{
    error_code, location, spawn_app, spawn_app_on, spawn_app_with, spawn_app_with_accounts,
    spawn_app_with_settings_and_accounts, Browser, TestApp, DESKTOP_CHROME, FIREFOX, IPHONE_SAFARI,
    PASSWORD,
};
use console_sessions::accounts::{Accounts, AccountsConfig, ThrottleLimits};
use console_sessions::sessions::{ClientInfo, CookieAction};
use console_sessions::{Backend, Database, SessionBackend, SessionConfig, SessionEngine};

on_every_database!(
    a_sign_in_beyond_the_session_limit_signs_out_the_least_recently_active,
    staff_sessions_get_shorter_lifetimes_than_everyone,
    keep_me_signed_in_unticked_gives_a_session_that_ends_with_the_browser,
    sign_in_and_sign_out_renew_the_anti_forgery_token,
    a_user_deactivated_while_signing_in_is_left_with_no_session,
    sign_in_cycles_the_session_token,
    sign_out_deletes_the_session_row_and_clears_the_cookie,
    password_change_ends_other_sessions_and_keeps_this_one,
    an_https_public_origin_makes_both_cookies_secure_with_the_host_prefix,
    simultaneous_first_sign_ups_make_exactly_one_staff_account,
    simultaneous_first_sign_ups_with_sign_up_closed_make_exactly_one_account,
);

const NEW_PASSWORD: &str = "a new and better passphrase";
const NEWER_PASSWORD: &str = "an even newer passphrase";

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// The value of the cookie `name` among these `Set-Cookie`s, asserting what its `__Host-` prefix
/// demands (browsers drop the cookie otherwise): `Secure`, `Path=/` and no `Domain`; and `HttpOnly`.
fn host_cookie(cookies: &[String], name: &str) -> String {
    let prefix = format!("{name}=");
    let cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} among {cookies:?}"));
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for required in ["Secure", "HttpOnly", "Path=/"] {
        assert!(attributes.contains(&required), "{required}: {cookie}");
    }
    assert!(
        !attributes
            .iter()
            .any(|attribute| attribute.to_ascii_lowercase().starts_with("domain")),
        "{cookie}"
    );
    attributes[0].strip_prefix(&prefix).unwrap().to_owned()
}

/// Whether the cache (if this app has one) holds the session.
fn cached(app: &TestApp, token: &str) -> bool {
    app.state.sessions.cache().is_some() && app.is_cached(token)
}

async fn staff_sessions_get_shorter_lifetimes_than_everyone(backend: Backend) {
    use console_sessions::sessions::Expiry;
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let alice = app.signed_in("alice", FIREFOX).await;
    let row = |browser: &Browser| {
        let token = browser.session_token().unwrap();
        let app = &app;
        async move { app.session_row(&token).await.unwrap() }
    };
    let staffs = row(&staff).await;
    assert_eq!(
        staffs.expiry,
        Expiry::Limited {
            idle_seconds: 1800,
            absolute_seconds: 12 * 3600,
            browser: false
        }
    );
    let idle = staffs.expires_at - staffs.last_activity_at;
    assert_eq!(idle, time::Duration::seconds(1800), "30 minutes unused");
    assert_eq!(
        row(&alice).await.expiry,
        Expiry::Default,
        "everyone else: the defaults"
    );
    // "Keep me signed in" unticked stays a browser session, with staff's limits.
    let unticked = app.browser_with_agent(DESKTOP_CHROME);
    let response = unticked
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("remember_asked", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert!(matches!(
        row(&unticked).await.expiry,
        Expiry::Limited { browser: true, .. }
    ));

    // Both 0: staff get everyone's.
    let app = spawn_app_with(backend, |settings| {
        settings.staff_session_idle_timeout = 0;
        settings.staff_session_absolute_lifetime = 0;
    })
    .await;
    app.create_staff("root").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let token = staff.session_token().unwrap();
    assert_eq!(
        app.session_row(&token).await.unwrap().expiry,
        Expiry::Default
    );
}

async fn a_sign_in_beyond_the_session_limit_signs_out_the_least_recently_active(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.max_sessions_per_user = 2).await;
    let alice = app.create_user("alice").await;
    let first = app.signed_in("alice", FIREFOX).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = app.signed_in("alice", IPHONE_SAFARI).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let third = app.browser_with_agent(DESKTOP_CHROME);
    let response = third.try_sign_in("alice", PASSWORD).await;
    assert_eq!(location(&response), "/account/sessions?limited=1");
    assert_eq!(
        first.signed_in_as().await,
        None,
        "the least recently active"
    );
    assert_eq!(second.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(third.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 2);
    let page = third
        .get_page("/account/sessions?limited=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("your least recently used session was signed out"));

    // Going on elsewhere, the limit still holds (the page just does not say so).
    let fourth = app.browser();
    let response = fourth
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/account/security"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account/security");
    assert_eq!(second.signed_in_as().await, None);
    assert_eq!(app.sessions_of(alice).await.len(), 2);
}

/// The session cookie a response sets (`Set-Cookie: session=…`).
fn session_set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("session="))
        .expect("a session cookie is set")
        .to_owned()
}

async fn keep_me_signed_in_unticked_gives_a_session_that_ends_with_the_browser(backend: Backend) {
    use console_sessions::sessions::{now, Expiry};
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    async fn remembered(browser: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![("username", "alice"), ("password", PASSWORD)];
        all.extend_from_slice(fields);
        browser.submit("/api/account/sign-in", &all).await
    }

    // Unticked on the form: no Max-Age, and the server ends it after 12 hours unused.
    let unticked = app.browser();
    let response = remembered(&unticked, &[("remember_asked", "1")]).await;
    assert_eq!(location(&response), "/account/sessions");
    let cookie = session_set_cookie(&response);
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    let row = app
        .session_row(&unticked.session_token().unwrap())
        .await
        .unwrap();
    assert_eq!(row.expiry, Expiry::BrowserClose);
    let left = (row.expires_at - now()).whole_seconds();
    assert!((12 * 3600 - 5..=12 * 3600).contains(&left), "{left}");
    let page = unticked
        .get_page("/account/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("When the browser closes"));

    // Ticked, and a client that never offered the box: the persistent lifetime.
    for fields in [&[("remember_asked", "1"), ("remember", "on")][..], &[][..]] {
        let browser = app.browser();
        let response = remembered(&browser, fields).await;
        let cookie = session_set_cookie(&response);
        assert!(cookie.contains("Max-Age=1209"), "{cookie}");
        let row = app
            .session_row(&browser.session_token().unwrap())
            .await
            .unwrap();
        assert_eq!(row.expiry, Expiry::Default);
    }
}

async fn sign_in_cycles_the_session_token(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    assert_eq!(
        app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .last_login_at,
        None
    );

    // Someone plants a valid session of their own in the browser (session fixation).
    let planted = app.state.sessions.session(None, ClientInfo::default());
    planted.insert("theme", "dark").await.unwrap();
    let commit = app.state.sessions.commit(&planted).await.unwrap();
    let CookieAction::Set { token, .. } = commit.cookie else {
        panic!("a new session gets a cookie: {commit:?}");
    };
    let planted_token = token.expose().to_owned();
    let browser = app.browser_with_session(&planted_token);
    assert!(app.session_row(&planted_token).await.is_some());
    assert_eq!(browser.signed_in_as().await, None);

    browser.sign_in("alice", PASSWORD).await;
    let token = browser.session_token().expect("a session cookie");
    assert_ne!(token, planted_token, "signing in gives a new token");
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
    assert!(
        app.session_row(&planted_token).await.is_none(),
        "the planted token finds no row"
    );
    assert!(!cached(&app, &planted_token), "nor a cache entry");
    assert_eq!(
        app.browser_with_session(&planted_token)
            .signed_in_as()
            .await,
        None,
        "the planted token does not sign anyone in"
    );
    let row = app.session_row(&token).await.expect("the session row");
    assert_eq!(row.user_id, Some(alice));
    assert_eq!(row.ip, Some(IpAddr::from([127, 0, 0, 1])));
    assert_eq!(row.user_agent.as_deref(), Some(FIREFOX));
    let user = app.state.accounts.user(alice).await.unwrap().unwrap();
    assert!(user.last_login_at.is_some(), "last_login_at is recorded");

    // Signing in again as the same user also cycles the token, keeping one session.
    let before = token.clone();
    browser.sign_in("alice", PASSWORD).await;
    let token = browser.session_token().expect("a session cookie");
    assert_ne!(token, before);
    assert!(app.session_row(&before).await.is_none());
    assert_eq!(app.sessions_of(alice).await.len(), 1);

    // A token the browser made up (well formed, matching nothing) is not adopted either.
    let made_up = "A".repeat(43);
    let other = app.browser_with_session(&made_up);
    other.sign_in("alice", PASSWORD).await;
    let issued = other.session_token().expect("a session cookie");
    assert_ne!(issued, made_up);
    assert!(app.session_row(&made_up).await.is_none());
    assert_eq!(app.session_row(&issued).await.unwrap().user_id, Some(alice));

    // Signing in as someone else in the same browser starts afresh and ends the first session.
    browser.sign_in("bob", PASSWORD).await;
    let bob_token = browser.session_token().expect("a session cookie");
    assert_ne!(bob_token, token);
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("bob"));
    assert!(app.session_row(&token).await.is_none());
    assert!(!cached(&app, &token));
    assert_eq!(app.browser_with_session(&token).signed_in_as().await, None);
    let bob_row = app.session_row(&bob_token).await.unwrap();
    assert_eq!(bob_row.user_id, Some(bob));
    assert!(
        bob_row.data.is_empty(),
        "nothing of alice's session is inherited"
    );
    assert_eq!(
        app.sessions_of(alice).await.len(),
        1,
        "only `other` is left"
    );
}

/// With an `https://` public origin and no other setting, the session and form cookies are both
/// `Secure` and named `__Host-` (issue 17, item 3). reqwest's jar would not send a Secure cookie
/// over plain HTTP, so the cookies are read from `Set-Cookie` and sent by hand.
async fn an_https_public_origin_makes_both_cookies_secure_with_the_host_prefix(backend: Backend) {
    const ORIGIN: &str = "https://sessions.example.test";
    let app = spawn_app_with(backend, |settings| {
        settings.public_origin = Some(ORIGIN.into());
    })
    .await;
    app.create_user("alice").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let viewer = client
        .get(app.url("/api/account/viewer"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 200);
    let cookies = set_cookies(&viewer);
    assert!(
        !cookies.iter().any(|c| c.starts_with("csrftoken=")),
        "{cookies:?}"
    );
    let csrf_cookie = host_cookie(&cookies, "__Host-csrftoken");
    let viewer: serde_json::Value = viewer.json().await.unwrap();
    let form_token = viewer["csrf_token"].as_str().unwrap();
    assert_eq!(form_token, csrf_cookie);

    let response = client
        .post(app.url("/api/account/sign-in"))
        .header("accept", "text/html")
        .header("origin", ORIGIN)
        .header("cookie", format!("__Host-csrftoken={csrf_cookie}"))
        .form(&[
            ("csrf_token", form_token),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/account/sessions");
    let cookies = set_cookies(&response);
    assert!(
        !cookies.iter().any(|c| c.starts_with("session=")),
        "{cookies:?}"
    );
    let token = host_cookie(&cookies, "__Host-session");
    let row = app
        .session_row(&token)
        .await
        .expect("the session is stored");
    assert!(row.user_id.is_some());
}

async fn sign_out_deletes_the_session_row_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    let token = browser.session_token().unwrap();
    assert_eq!(app.sessions_of(alice).await.len(), 1);

    let response = browser.submit("/api/account/sign-out", &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sign-in?signed_out=1");
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "a sign-out is never cached"
    );
    let removal = set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("session="))
        .expect("the session cookie is removed");
    assert!(removal.starts_with("session=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(browser.session_token(), None, "the browser dropped it");

    assert!(app.sessions_of(alice).await.is_empty());
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
    assert!(!cached(&app, &token));
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(
        app.browser_with_session(&token).signed_in_as().await,
        None,
        "the old cookie, replayed, signs nobody in"
    );
}

async fn password_change_ends_other_sessions_and_keeps_this_one(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let a = app.signed_in("alice", DESKTOP_CHROME).await;
    let b = app.signed_in("alice", IPHONE_SAFARI).await;
    let change = |current: &'static str, new: &'static str, others: bool| {
        let mut fields = vec![
            ("current_password", current),
            ("password", new),
            ("password_confirm", new),
        ];
        if others {
            fields.push(("sign_out_others", "on"));
        }
        fields
    };

    // A wrong current password changes nothing.
    let response = a
        .submit(
            "/api/account/change-password",
            &change("not my password", NEW_PASSWORD, true),
        )
        .await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with("/account/password?"));
    assert_eq!(
        error_code(&response).as_deref(),
        Some("wrong_current_password")
    );
    assert_eq!(a.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(b.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 2);
    app.state
        .accounts
        .authenticate("alice", PASSWORD, None)
        .await
        .expect("the password is unchanged");

    // Confirmation that does not match.
    let response = a
        .submit(
            "/api/account/change-password",
            &[
                ("current_password", PASSWORD),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEWER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("passwords_do_not_match")
    );

    // With "sign out everywhere else": B ends, A continues under a new token.
    let a_token = a.session_token().unwrap();
    let b_token = b.session_token().unwrap();
    let response = a
        .submit(
            "/api/account/change-password",
            &change(PASSWORD, NEW_PASSWORD, true),
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/account/password?changed=1");
    assert_ne!(a.session_token().unwrap(), a_token, "a new token");
    assert_eq!(a.signed_in_as().await.as_deref(), Some("alice"));
    assert!(!cached(&app, &a_token));
    assert_eq!(
        app.browser_with_session(&a_token).signed_in_as().await,
        None,
        "the token from before the change is dead"
    );
    assert_eq!(b.signed_in_as().await, None);
    assert!(app.session_row(&b_token).await.is_none());
    assert!(!cached(&app, &b_token));
    assert_eq!(app.sessions_of(alice).await.len(), 1);

    let c = app.browser();
    let response = c.try_sign_in("alice", PASSWORD).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("invalid_credentials"),
        "the old password no longer works"
    );
    c.sign_in("alice", NEW_PASSWORD).await;

    // Without the box ticked the other sessions stay; the hydrated page gets the count as JSON.
    let response = a
        .call(
            "/api/account/change-password",
            &change(NEW_PASSWORD, NEWER_PASSWORD, false),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"signed_out": 0}));
    assert_eq!(c.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(a.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 2);
    app.browser().sign_in("alice", NEWER_PASSWORD).await;

    // Nobody signed in: asked to sign in.
    let response = app
        .browser()
        .submit(
            "/api/account/change-password",
            &change(NEWER_PASSWORD, NEW_PASSWORD, true),
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("sign_in_required"));
}

async fn deactivating_a_user_ends_all_their_sessions(session_backend: SessionBackend) {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.session_backend = session_backend;
    })
    .await;
    assert_eq!(
        app.state.sessions.cache().is_some(),
        session_backend == SessionBackend::CachedDb
    );
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let bob = app.signed_in("bob", FIREFOX).await;
    let tokens = [
        phone.session_token().unwrap(),
        laptop.session_token().unwrap(),
    ];
    for browser in [&phone, &laptop] {
        assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
    }
    if session_backend == SessionBackend::CachedDb {
        for token in &tokens {
            assert!(app.is_cached(token), "read once, so cached");
        }
    }

    let ended = app.state.accounts.set_active(alice, false).await.unwrap();
    assert_eq!(ended, 2);
    for token in &tokens {
        assert!(app.session_row(token).await.is_none());
        assert!(!cached(&app, token));
    }
    assert_eq!(phone.signed_in_as().await, None);
    let response = laptop.get_page("/account/sessions").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/sign-in?next=%2Faccount%2Fsessions&ended=1"
    );
    assert_eq!(bob.signed_in_as().await.as_deref(), Some("bob"));

    // Nor can they sign in again, until reactivated.
    let response = app.browser().try_sign_in("alice", PASSWORD).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("invalid_credentials")
    );
    app.state.accounts.set_active(alice, true).await.unwrap();
    app.browser().sign_in("alice", PASSWORD).await;
}

mod deactivating_a_user_ends_all_their_sessions {
    use console_sessions::SessionBackend;

    #[tokio::test]
    async fn with_db_sessions() {
        super::deactivating_a_user_ends_all_their_sessions(SessionBackend::Db).await;
    }

    #[tokio::test]
    async fn with_cached_db_sessions() {
        super::deactivating_a_user_ends_all_their_sessions(SessionBackend::CachedDb).await;
    }
}

#[tokio::test]
async fn throttling_kicks_in_and_lifts() {
    // Two failures allowed, then a one-second lock.
    let app = spawn_app_with_accounts(Backend::Sqlite, |config: &mut AccountsConfig| {
        config.account_throttle = ThrottleLimits {
            max_failures: 2,
            window: Duration::from_secs(5),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
        };
    })
    .await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let browser = app.browser();
    for _ in 0..2 {
        let response = browser.try_sign_in("alice", "wrong password").await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("invalid_credentials")
        );
    }
    let response = browser.try_sign_in("alice", PASSWORD).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("throttled.1"),
        "locked, even with the right password"
    );
    assert!(location(&response).starts_with("/sign-in?"));
    let response = browser
        .call(
            "/api/account/sign-in",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"Throttled": {"retry_after_secs": 1}})
    );
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);

    // The lock is the account's, not the address's.
    app.browser().sign_in("bob", PASSWORD).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    browser.sign_in("alice", PASSWORD).await;
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn cross_origin_post_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();
    let token = browser.csrf_token().await;
    let sign_in = |token: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ]
    };
    let fields = sign_in(&token);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();

    for headers in [
        [("origin", "https://evil.example")],
        [("sec-fetch-site", "cross-site")],
        [("sec-fetch-site", "same-site")],
        [("origin", "null")],
        [("origin", "http://127.0.0.1.evil.example")],
    ] {
        let response = browser
            .post_raw("/api/account/sign-in", &fields, &headers)
            .await;
        assert_eq!(response.status(), 403, "{headers:?}");
        assert!(response.text().await.unwrap().contains("Request refused"));
    }
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);

    // Same origin, but no token, an empty one, or another browser's: refused as a stale form.
    let other = app.browser().csrf_token().await;
    let no_token: Vec<(&str, &str)> = fields[1..].to_vec();
    let empty = sign_in("");
    let foreign = sign_in(&other);
    for form in [
        no_token,
        empty.iter().map(|(n, v)| (*n, v.as_str())).collect(),
        foreign.iter().map(|(n, v)| (*n, v.as_str())).collect(),
    ] {
        let response = browser.post_raw("/api/account/sign-in", &form, &[]).await;
        let (status, code) = (response.status(), error_code(&response));
        let body = response.text().await.unwrap();
        assert_eq!(status, 302, "{form:?}: {body}");
        assert_eq!(code.as_deref(), Some("csrf"), "{form:?}: {body}");
    }
    // A token without its cookie (a browser that never loaded our page) is refused too.
    let response = app
        .browser()
        .post_raw("/api/account/sign-in", &fields, &[])
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("csrf"));
    assert_eq!(browser.signed_in_as().await, None);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);

    // The real thing works, by Origin or by Sec-Fetch-Site.
    let response = browser.post_raw("/api/account/sign-in", &fields, &[]).await;
    assert_eq!(location(&response), "/account/sessions");
    let second = app.browser();
    let second_token = second.csrf_token().await;
    let second_fields = sign_in(&second_token);
    let second_fields: Vec<(&str, &str)> = second_fields
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let response = second
        .post_raw(
            "/api/account/sign-in",
            &second_fields,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(location(&response), "/account/sessions");

    // Signing out from another site is refused as well.
    let response = browser
        .post_raw(
            "/api/account/sign-out",
            &[("csrf_token", &token)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn sign_up_also_cycles_the_session_token() {
    let app = spawn_app().await;
    let planted = app.state.sessions.session(None, ClientInfo::default());
    planted.insert("planted", true).await.unwrap();
    let CookieAction::Set { token, .. } = app.state.sessions.commit(&planted).await.unwrap().cookie
    else {
        panic!("a new session gets a cookie");
    };
    let planted_token = token.expose().to_owned();
    let browser = app.browser_with_session(&planted_token);
    let response = browser
        .submit(
            "/api/account/sign-up",
            &[
                ("username", "alice"),
                ("email", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account/sessions");
    let token = browser.session_token().unwrap();
    assert_ne!(token, planted_token);
    assert!(app.session_row(&planted_token).await.is_none());
    assert_eq!(
        app.browser_with_session(&planted_token)
            .signed_in_as()
            .await,
        None
    );
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn open_redirects_are_refused() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();
    for (next, expected) in [
        ("https://evil.example", "/account/sessions"),
        ("//evil.example", "/account/sessions"),
        ("/\\evil.example", "/account/sessions"),
        ("\\\\evil.example", "/account/sessions"),
        ("javascript:alert(1)", "/account/sessions"),
        ("/ok\r\nSet-Cookie: x=y", "/account/sessions"),
        ("", "/account/sessions"),
        ("/account/password", "/account/password"),
        ("/account/sessions?x=1", "/account/sessions?x=1"),
    ] {
        let response = browser
            .submit(
                "/api/account/sign-in",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(response.status(), 302, "{next:?}");
        assert_eq!(location(&response), expected, "{next:?}");
    }
}

#[tokio::test]
async fn empty_and_huge_fields_get_a_clear_error() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();
    let huge = "a".repeat(1 << 20);
    // Sign-up carries the password twice, and a body is at most 2 MiB.
    let big = "a".repeat(900 * 1024);
    for (username, password, code) in [
        ("", PASSWORD, "username_required"),
        ("   ", PASSWORD, "username_required"),
        ("alice", "", "password_required"),
        (huge.as_str(), PASSWORD, "username_too_long.150"),
        ("alice", huge.as_str(), "password_too_long.1024"),
        ("al\u{0}ice", PASSWORD, "username_invalid_characters"),
    ] {
        let response = browser.try_sign_in(username, password).await;
        assert_eq!(response.status(), 302, "{code}");
        assert_eq!(error_code(&response).as_deref(), Some(code));
        assert!(
            location(&response).len() < 1024,
            "what was typed is kept only when short"
        );
    }
    for (username, password, code) in [
        ("", PASSWORD, "username_required"),
        ("bob", "", "password_required"),
        ("bob", "short", "password_too_short.8"),
        (huge.as_str(), PASSWORD, "username_too_long.150"),
        ("bob", big.as_str(), "password_too_long.1024"),
    ] {
        let response = browser
            .submit(
                "/api/account/sign-up",
                &[
                    ("username", username),
                    ("email", ""),
                    ("password", password),
                    ("password_confirm", password),
                ],
            )
            .await;
        let (status, location, got) = (
            response.status(),
            location(&response),
            error_code(&response),
        );
        let body = response.text().await.unwrap();
        assert_eq!(status, 302, "{code}: {body}");
        assert_eq!(got.as_deref(), Some(code), "{body}");
        assert!(location.starts_with("/sign-up?"));
    }
    // A body over the limit never reaches the server function: refused, without a 500.
    let response = browser
        .submit(
            "/api/account/sign-up",
            &[
                ("username", "bob"),
                ("password", &huge),
                ("password_confirm", &huge),
            ],
        )
        .await;
    assert_ne!(response.status(), 500);
    assert!(response.status().is_redirection() || response.status().is_client_error());

    assert_eq!(app.state.accounts.count_users().await.unwrap(), 1);
    assert_eq!(browser.signed_in_as().await, None);
}

#[tokio::test]
async fn usernames_differing_only_by_case_collide() {
    let app = spawn_app().await;
    let sign_up = |username: &'static str| {
        [
            ("username", username),
            ("email", ""),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ]
    };
    let first = app.browser();
    let response = first
        .submit("/api/account/sign-up", &sign_up("alice"))
        .await;
    assert_eq!(location(&response), "/account/sessions");
    assert_eq!(first.signed_in_as().await.as_deref(), Some("alice"));
    for taken in ["Alice", " ALICE ", "ａｌｉｃｅ"] {
        let response = app
            .browser()
            .submit("/api/account/sign-up", &sign_up(taken))
            .await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("username_taken"),
            "{taken:?}"
        );
    }
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 1);
    // And signing in ignores case the same way.
    app.browser().sign_in("ALICE", PASSWORD).await;
}

#[tokio::test]
async fn sign_up_needs_matching_passwords() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser
        .submit(
            "/api/account/sign-up",
            &[
                ("username", "alice"),
                ("email", "alice@example.test"),
                ("password", PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("passwords_do_not_match")
    );
    let location = location(&response);
    assert!(
        !location.contains("alice"),
        "typed names stay out of the URL: {location}"
    );
    assert!(!location.contains("horse"), "passwords are never echoed");
    assert!(
        set_cookies(&response)
            .iter()
            .all(|cookie| !cookie.contains("horse")),
        "passwords are never kept"
    );
    // The form comes back with what was typed, but the passwords.
    let page = browser.get_page(&location).await.text().await.unwrap();
    assert!(page.contains(r#"value="alice""#), "{page}");
    assert!(page.contains(r#"value="alice@example.test""#), "{page}");
    assert!(!page.contains("horse"));
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_sign_in_without_javascript_keeps_the_typed_name_out_of_the_url() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();
    let response = browser.try_sign_in("Alice.Typed", "wrong password").await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("invalid_credentials")
    );
    let back = location(&response);
    assert!(back.starts_with("/sign-in?"), "{back}");
    assert!(!back.contains("username="), "{back}");
    assert!(!back.to_lowercase().contains("typed"), "{back}");
    // It travels in a flash cookie for the sign-in page alone, gone within a minute.
    let flash = set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("flash="))
        .expect("a flash cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/sign-in", "Max-Age=60"] {
        assert!(flash.contains(part), "{flash}");
    }
    // The page shows it back, once.
    let page = browser.get_page(&back).await;
    let removal = set_cookies(&page)
        .into_iter()
        .find(|cookie| cookie.starts_with("flash="))
        .expect("the page clears the flash cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"value="Alice.Typed""#), "{html}");
    let again = browser.get_page("/sign-in").await.text().await.unwrap();
    assert!(!again.contains("Alice.Typed"));
    // `next` is no name: it still travels in the URL.
    let response = browser
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "alice"),
                ("password", "wrong password"),
                ("next", "/account/password"),
            ],
        )
        .await;
    assert_eq!(
        crate::common::query_value(&location(&response), "next").as_deref(),
        Some("/account/password")
    );
    // Nor does the database keep the names typed.
    let rows = |condition: String| {
        let app = &app;
        async move {
            app.test_db
                .execute(&format!(
                    "UPDATE login_attempts SET failures = failures WHERE {condition}"
                ))
                .await
                .unwrap()
        }
    };
    assert_eq!(rows("kind = 'account'".into()).await, 2);
    assert_eq!(
        rows("LOWER(subject) LIKE '%alice%' OR LOWER(subject) LIKE '%typed%'".into()).await,
        0
    );
}

/// Asserts a plain form post was sent back because of throttling (`?error=throttled.<seconds>`).
fn assert_throttled(response: &reqwest::Response) {
    let code = error_code(response).unwrap_or_default();
    assert!(code.starts_with("throttled."), "{code:?}");
}

/// A browser that says (through a trusted proxy) it is at `ip`.
fn browser_at(app: &TestApp, ip: &str) -> Browser {
    app.browser_with_headers(FIREFOX, &[("x-forwarded-for", ip)])
}

#[tokio::test]
async fn a_strangers_failed_sign_ins_do_not_lock_out_the_owners_browser() {
    let limits = ThrottleLimits {
        max_failures: 3,
        window: Duration::from_secs(60),
        base_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(30),
    };
    let app = spawn_app_with_settings_and_accounts(
        Backend::Sqlite,
        |settings| settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
        |config: &mut AccountsConfig| {
            config.account_throttle = limits.clone();
            config.account_ip_throttle = limits.clone();
        },
    )
    .await;
    app.create_user("alice").await;
    // Alice signs in from her laptop once: it gets a device cookie, then she signs out.
    let laptop = browser_at(&app, "198.51.100.9");
    let response = laptop.try_sign_in("alice", PASSWORD).await;
    assert_eq!(location(&response), "/account/sessions");
    let device = set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("device="))
        .expect("a device cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(device.contains(part), "{device}");
    }
    laptop.submit("/api/account/sign-out", &[]).await;
    assert_eq!(laptop.signed_in_as().await, None);

    // A stranger elsewhere guesses her password until the account is locked.
    let stranger = browser_at(&app, "203.0.113.66");
    for _ in 0..3 {
        let response = stranger.try_sign_in("alice", "guess").await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("invalid_credentials")
        );
    }
    let response = stranger.try_sign_in("alice", PASSWORD).await;
    assert_throttled(&response);
    // Locked for every browser without her device cookie, even at her own address...
    let borrowed = browser_at(&app, "198.51.100.9");
    let response = borrowed.try_sign_in("alice", PASSWORD).await;
    assert_throttled(&response);
    // ...but her laptop still signs in.
    laptop.sign_in("alice", PASSWORD).await;
    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("alice"));
    // And the stranger is still locked out.
    let response = stranger.try_sign_in("alice", PASSWORD).await;
    assert_throttled(&response);
    assert_eq!(stranger.signed_in_as().await, None);
}

#[tokio::test]
async fn sign_ups_beyond_the_per_address_limit_are_refused_with_429() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.signup_limit_per_ip = 2).await;
    let sign_up = |username: &'static str| {
        [
            ("username", username),
            ("email", ""),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ]
    };
    for username in ["ann", "ben"] {
        let response = app
            .browser()
            .submit("/api/account/sign-up", &sign_up(username))
            .await;
        assert_eq!(location(&response), "/account/sessions", "{username}");
    }
    let browser = app.browser();
    let response = browser
        .submit("/api/account/sign-up", &sign_up("cat"))
        .await;
    assert_throttled(&response);
    let response = browser.call("/api/account/sign-up", &sign_up("cat")).await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 3500 && wait <= 3600, "{wait}");
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 2);
}

/// Eight browsers submitting the sign-up form at the same moment, each for its own username.
async fn sign_up_at_once(app: &TestApp) -> Vec<(String, reqwest::Response)> {
    let mut ready = Vec::new();
    for n in 1..=8 {
        let browser = app.browser();
        let token = browser.csrf_token().await;
        ready.push((format!("first{n}"), browser, token));
    }
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|(username, browser, token)| {
            tokio::spawn(async move {
                let response = browser
                    .post_raw(
                        "/api/account/sign-up",
                        &[
                            ("csrf_token", token.as_str()),
                            ("username", username.as_str()),
                            ("email", ""),
                            ("password", PASSWORD),
                            ("password_confirm", PASSWORD),
                        ],
                        &[],
                    )
                    .await;
                (username, response)
            })
        })
        .collect();
    let mut responses = Vec::new();
    for task in tasks {
        responses.push(task.await.unwrap());
    }
    responses
}

async fn staff_count(app: &TestApp) -> usize {
    let page = app.state.accounts.list_users(None, 100, 0).await.unwrap();
    page.users.iter().filter(|s| s.user.is_staff).count()
}

async fn simultaneous_first_sign_ups_make_exactly_one_staff_account(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for (username, response) in sign_up_at_once(&app).await {
        assert_eq!(location(&response), "/account/sessions", "{username}");
    }
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 8);
    assert_eq!(staff_count(&app).await, 1);
}

async fn simultaneous_first_sign_ups_with_sign_up_closed_make_exactly_one_account(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |settings| settings.signup_open = false).await;
    let mut created = 0;
    for (username, response) in sign_up_at_once(&app).await {
        match error_code(&response) {
            None => {
                assert_eq!(location(&response), "/account/sessions", "{username}");
                created += 1;
            }
            Some(code) => assert_eq!(code, "sign_up_closed", "{username}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 1);
    assert_eq!(staff_count(&app).await, 1);
    // Still closed afterwards.
    let response = app
        .browser()
        .submit(
            "/api/account/sign-up",
            &[
                ("username", "late"),
                ("email", ""),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("sign_up_closed"));
}

#[tokio::test]
async fn closed_sign_up_still_creates_the_first_staff_account() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.signup_open = false).await;
    let sign_up = |username: &'static str| {
        [
            ("username", username),
            ("email", ""),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ]
    };
    let viewer = app.browser().viewer().await;
    assert_eq!(viewer["signup_open"], false);
    assert_eq!(viewer["first_run"], true);

    let first = app.browser();
    let response = first
        .submit("/api/account/sign-up", &sign_up("admin"))
        .await;
    assert_eq!(location(&response), "/account/sessions");
    let viewer = first.viewer().await;
    assert_eq!(viewer["user"]["username"], "admin");
    assert_eq!(
        viewer["user"]["is_staff"], true,
        "the first account is staff"
    );

    let response = app
        .browser()
        .submit("/api/account/sign-up", &sign_up("mallory"))
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("sign_up_closed"));
    assert_eq!(app.state.accounts.count_users().await.unwrap(), 1);

    // With sign-up open, later accounts are not staff.
    let open = spawn_app().await;
    open.create_user("admin").await;
    let browser = open.browser();
    browser
        .submit("/api/account/sign-up", &sign_up("carol"))
        .await;
    assert_eq!(browser.viewer().await["user"]["is_staff"], false);
}

#[tokio::test]
async fn a_database_failure_during_sign_in_is_reported_not_a_panic() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let browser = app.browser();
    let token = browser.csrf_token().await;
    app.state.db.close().await;

    let fields = [
        ("csrf_token", token.as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let response = browser.post_raw("/api/account/sign-in", &fields, &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        error_code(&response).as_deref(),
        Some("database_unavailable")
    );
    assert_eq!(browser.session_token(), None);

    let response = browser
        .post_raw(
            "/api/account/sign-in",
            &fields,
            &[("accept", "application/json")],
        )
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(body.contains("DatabaseUnavailable"), "{status}: {body}");

    // The sign-in page itself still answers, with words rather than a stack trace.
    let response = browser.get_page("/sign-in").await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_ne!(status, 500, "{html}");
    assert!(!html.contains("panicked"), "{html}");
    assert!(html.contains("database is unavailable"), "{status}: {html}");
}

// `createsuperuser`, through the built binary.

fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_console-sessions"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("CONSOLE_SESSIONS_SUPERUSER_PASSWORD")
        .env("RUST_LOG", "error");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

async fn accounts_at(url: &str) -> (Accounts, Database) {
    let db = Database::connect(url).await.unwrap();
    let engine = SessionEngine::new(db.clone(), SessionConfig::default());
    (
        Accounts::new(db.clone(), engine, AccountsConfig::default()),
        db,
    )
}

#[tokio::test]
async fn createsuperuser_makes_a_staff_user_from_the_environment() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", folder.path().display());
    let output = run_cli(
        &[
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.test",
            "--database-url",
            &url,
        ],
        &[("CONSOLE_SESSIONS_SUPERUSER_PASSWORD", PASSWORD)],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Staff user \"root\" created"), "{stdout}");
    assert!(!stdout.contains(PASSWORD));

    let (accounts, db) = accounts_at(&url).await;
    let user = accounts.user_by_username("root").await.unwrap().unwrap();
    assert!(user.is_staff);
    assert!(user.is_active);
    assert_eq!(user.email.as_deref(), Some("root@example.test"));
    accounts
        .authenticate("root", PASSWORD, None)
        .await
        .expect("the password from the environment works");
    db.close().await;

    // The same username again is a clear refusal.
    let output = run_cli(
        &[
            "createsuperuser",
            "--username",
            "ROOT",
            "--database-url",
            &url,
        ],
        &[("CONSOLE_SESSIONS_SUPERUSER_PASSWORD", PASSWORD)],
    );
    assert_clear_failure(&output, "This username is already taken.");
}

#[test]
fn createsuperuser_without_a_password_or_terminal_fails_clearly() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", folder.path().display());
    let output = run_cli(
        &[
            "createsuperuser",
            "--username",
            "root",
            "--database-url",
            &url,
        ],
        &[],
    );
    assert_clear_failure(
        &output,
        "no terminal to ask for the password: set CONSOLE_SESSIONS_SUPERUSER_PASSWORD",
    );
}

#[tokio::test]
async fn createsuperuser_refuses_a_short_password() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", folder.path().display());
    let output = run_cli(
        &[
            "createsuperuser",
            "--username",
            "root",
            "--database-url",
            &url,
        ],
        &[("CONSOLE_SESSIONS_SUPERUSER_PASSWORD", "short")],
    );
    assert_clear_failure(&output, "The password must have at least 8 characters.");
    let (accounts, db) = accounts_at(&url).await;
    assert_eq!(accounts.count_users().await.unwrap(), 0);
    db.close().await;
}

fn assert_clear_failure(output: &Output, expected: &str) {
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
}

/// As Django's `rotate_token`: the anti-forgery token a browser had before signing in (one
/// somebody else could have read or planted) stops working at sign-in, and again at sign-out;
/// the JSON API hands the new one back in `X-CSRF-Token`.
async fn sign_in_and_sign_out_renew_the_anti_forgery_token(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("alice").await;
    let browser = app.browser();
    let before = browser.csrf_token().await;
    browser.sign_in("alice", PASSWORD).await;
    let signed_in = browser.cookie("csrftoken").unwrap();
    assert_ne!(signed_in, before, "sign-in renews the token");
    assert_eq!(browser.csrf_token().await, signed_in);
    let stale = browser
        .post_raw("/api/account/sign-out", &[("csrf_token", &before)], &[])
        .await;
    assert_eq!(
        error_code(&stale).as_deref(),
        Some("csrf"),
        "the old token is refused"
    );
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
    let response = browser.submit("/api/account/sign-out", &[]).await;
    assert_eq!(response.status(), 302);
    let signed_out = browser.cookie("csrftoken").unwrap();
    assert_ne!(signed_out, signed_in, "sign-out renews the token");

    // The JSON API: the renewed token comes back in a header, equal to the new cookie.
    let api = app.browser();
    let token = api
        .get_json("/api/v1/auth/csrf")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = api
        .client
        .post(api.url("/api/v1/auth/sign-in"))
        .header("x-csrf-token", &token)
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let renewed = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, token);
    assert_eq!(api.cookie("csrftoken").as_deref(), Some(renewed.as_str()));
}

/// A sign-in that has checked the password, and then sees its user deactivated before its
/// session is written, leaves no live session: the session written is undone at once.
async fn a_user_deactivated_while_signing_in_is_left_with_no_session(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let engine = &app.state.sessions;
    let client = ClientInfo {
        ip: Some(IpAddr::from([192, 0, 2, 7])),
        user_agent: Some(FIREFOX.to_owned()),
        ..ClientInfo::default()
    };
    // The password was right: the request signs the session in...
    let user = app
        .state
        .accounts
        .authenticate("alice", PASSWORD, client.ip)
        .await
        .unwrap();
    let session = engine.session(None, client);
    session.cycle_key().await.unwrap();
    session.set_user_id(Some(user.id)).await.unwrap();
    // ...while staff deactivate her (ending every session she has so far)...
    app.state.accounts.set_active(alice, false).await.unwrap();
    // ...and then the request's session is written.
    let commit = engine.commit(&session).await.unwrap();
    assert_eq!(
        commit.cookie,
        CookieAction::Keep,
        "no session cookie is given"
    );
    assert!(
        app.sessions_of(alice).await.is_empty(),
        "no live session is left"
    );
    assert_eq!(session.user_id().await.unwrap(), None);
}
