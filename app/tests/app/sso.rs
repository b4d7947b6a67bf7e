//! Single sign-on: forward authentication (`GET /auth/verify` asked directly, and asked by a real
//! nginx with `auth_request` in front of a tiny upstream, with the sign-in round trip back through
//! `next`), embed mode (who may frame our pages, and the layout they get in a frame), and the client
//! address as a real nginx in front of the app reports it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::common::nginx::{free_port, spawn_upstream, Nginx};
use crate::common::{location, spawn_app_on, spawn_app_with, Browser, TestApp, FIREFOX, PASSWORD};
use console_sessions::Backend;
use reqwest::Response;
use serde_json::Value;

on_every_database!(
    a_signed_in_browser_is_verified_with_its_user_in_headers_and_json,
    a_revoked_session_or_a_deactivated_user_is_refused,
    a_user_deactivated_behind_the_services_back_is_refused_and_signed_out,
    nginx_lets_signed_in_people_through_and_sends_others_to_sign_in,
    a_client_behind_nginx_cannot_choose_its_address,
    behind_nginx_setting_x_real_ip_only_that_header_is_believed,
);

/// `/auth/verify` as a proxy asks it: the browser's cookies, and the URL it was asked for.
async fn verify(browser: &Browser, original_url: &str) -> Response {
    browser
        .client
        .get(browser.url("/auth/verify"))
        .header("x-original-url", original_url)
        .send()
        .await
        .unwrap()
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap())
        .unwrap_or_default()
}

async fn a_signed_in_browser_is_verified_with_its_user_in_headers_and_json(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    let response = verify(&browser, "https://app.example.com/reports").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-auth-user"), "alice");
    assert_eq!(header(&response, "x-auth-user-id"), alice.to_string());
    assert_eq!(header(&response, "x-auth-email"), "alice@example.test");
    assert_eq!(header(&response, "x-auth-aal"), "aal1", "a password alone");
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a verified request changes no cookie"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"user_id": alice, "username": "alice", "email": "alice@example.test", "aal": "aal1"})
    );
}

async fn a_revoked_session_or_a_deactivated_user_is_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let alice_browser = app.signed_in("alice", FIREFOX).await;
    let bob_browser = app.signed_in("bob", FIREFOX).await;
    for browser in [&alice_browser, &bob_browser] {
        assert_eq!(verify(browser, "https://a/").await.status(), 200);
    }
    // Both are now in the session cache and the identity cache: ending them must still be seen.
    app.state.sessions.revoke_all(alice).await.unwrap();
    app.state.accounts.set_active(bob, false).await.unwrap();
    for browser in [&alice_browser, &bob_browser] {
        let response = verify(browser, "https://a/").await;
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "x-auth-user"), "");
    }
}

async fn a_user_deactivated_behind_the_services_back_is_refused_and_signed_out(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let alice = app.create_user("alice").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    // Not through the account service (which would end the sessions), and before any verify
    // cached the identity: only /auth/verify's own check can catch it.
    app.test_db
        .execute(&format!(
            "UPDATE users SET is_active = false WHERE id = {alice}"
        ))
        .await
        .unwrap();
    let response = verify(&browser, "https://a/").await;
    assert_eq!(response.status(), 401);
    assert!(
        app.sessions_of(alice).await.is_empty(),
        "the session of an inactive user ends"
    );
}

#[tokio::test]
async fn no_session_gets_401_with_a_sign_in_url_that_comes_back() {
    let app = crate::common::spawn_app().await;
    let browser = app.browser();
    let response = verify(&browser, "https://app.example.com/reports?range=week").await;
    assert_eq!(response.status(), 401);
    let expected = format!(
        "{}/sign-in?next=https%3A%2F%2Fapp.example.com%2Freports%3Frange%3Dweek",
        app.address
    );
    assert_eq!(header(&response, "x-auth-sign-in"), expected);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a refusal sets no session or form cookie"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sign_in_required");
    assert_eq!(body["sign_in_url"], expected);

    // Traefik's headers, and a redirect for proxies that pass our answer to the browser.
    let response = browser
        .client
        .get(browser.url("/auth/verify?redirect=1"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "wiki.example.com")
        .header("x-forwarded-uri", "/page/1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        location_of(&response),
        format!(
            "{}/sign-in?next=https%3A%2F%2Fwiki.example.com%2Fpage%2F1",
            app.address
        )
    );

    // A public origin configured: the sign-in URL uses it, whatever Host the proxy used.
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.public_origin = Some("https://sso.example.com".into());
    })
    .await;
    let response = verify(&app.browser(), "https://a.example.com/").await;
    assert_eq!(
        header(&response, "x-auth-sign-in"),
        "https://sso.example.com/sign-in?next=https%3A%2F%2Fa.example.com%2F"
    );
}

fn location_of(response: &Response) -> String {
    header(response, "location")
}

async fn last_activity(app: &TestApp, user_id: i64) -> time::OffsetDateTime {
    app.sessions_of(user_id).await[0].last_activity_at
}

#[tokio::test]
async fn verifying_touches_last_activity_at_most_once_per_interval() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.session_activity_interval = 2;
    })
    .await;
    let alice = app.create_user("alice").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    let signed_in_at = last_activity(&app, alice).await;
    for _ in 0..5 {
        assert_eq!(verify(&browser, "https://a/").await.status(), 200);
    }
    assert_eq!(
        last_activity(&app, alice).await,
        signed_in_at,
        "no write within the interval"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(verify(&browser, "https://a/").await.status(), 200);
    let touched = last_activity(&app, alice).await;
    assert!(touched > signed_in_at, "touched once the interval passed");
    for _ in 0..5 {
        assert_eq!(verify(&browser, "https://a/").await.status(), 200);
    }
    assert_eq!(last_activity(&app, alice).await, touched);
}

#[tokio::test]
async fn sign_in_returns_to_allowed_services_only() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redirect_origins = vec!["https://app.example.com".into()];
    })
    .await;
    app.create_user("alice").await;
    for (next, expected) in [
        (
            "https://app.example.com/reports?q=1",
            "https://app.example.com/reports?q=1",
        ),
        ("https://evil.example.net/", "/account/sessions"),
        (
            "https://app.example.com@evil.example.net/",
            "/account/sessions",
        ),
        ("/account/password", "/account/password"),
    ] {
        let browser = app.browser();
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
        assert_eq!(response.status(), 302, "{next}");
        assert_eq!(location(&response), expected, "{next}");
    }
}

async fn nginx_lets_signed_in_people_through_and_sends_others_to_sign_in(backend: Backend) {
    let nginx_port = free_port();
    let nginx_origin = format!("http://127.0.0.1:{nginx_port}");
    let app = spawn_app_with(backend, |settings| {
        settings.redirect_origins = vec![nginx_origin.clone()];
    })
    .await;
    let alice = app.create_user("alice").await;
    let upstream = spawn_upstream().await;
    let nginx = Nginx::start_on(nginx_port, &app.address, upstream);
    let private = format!("{}/private/report?week=47", nginx.address);

    // Nobody signed in: nginx sends the browser to our sign-in page, to come back afterwards.
    let browser = app.browser();
    let response = browser.client.get(&private).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", nginx.error_log());
    let sign_in = location_of(&response);
    assert_eq!(
        sign_in,
        format!(
            "{}/sign-in?next={}",
            app.address,
            urlencoding::encode(&private)
        )
    );

    // The sign-in form, posted with the `next` of that URL, sends the browser back to nginx.
    let response = browser
        .submit(
            "/api/account/sign-in",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", &private),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location_of(&response), private);

    // Signed in (cookies are per host, not per port, as in a browser), they are let through, and
    // the upstream learns who they are.
    let response = browser.client.get(&private).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.error_log());
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "user": "alice",
            "user_id": alice.to_string(),
            "email": "alice@example.test",
        })
    );

    // Revoked from the devices page of another browser: the next request through nginx is refused.
    let other = app.signed_in("alice", FIREFOX).await;
    let response = other.call("/api/sessions/sign-out-others", &[]).await;
    assert_eq!(response.status(), 200);
    let response = browser.client.get(&private).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(location_of(&response).contains("/sign-in?next="));
    // A forged cookie gets no further.
    let forged = app.browser_with_session(&"A".repeat(43));
    let response = forged.client.get(&private).send().await.unwrap();
    assert_eq!(response.status(), 302);
}

/// The headers and body of a page, as a browser asks for it (with extra request headers).
async fn page(
    app: &TestApp,
    path: &str,
    headers: &[(&'static str, &str)],
) -> (reqwest::header::HeaderMap, String) {
    let response = app.browser().get_page_with(path, headers).await;
    assert_eq!(response.status(), 200, "{path}");
    let headers = response.headers().clone();
    (headers, response.text().await.unwrap())
}

/// The `frame-ancestors` part of a response's `Content-Security-Policy`.
fn frame_ancestors(headers: &reqwest::header::HeaderMap) -> String {
    let policy = headers["content-security-policy"].to_str().unwrap();
    policy
        .split(';')
        .map(str::trim)
        .find(|part| part.starts_with("frame-ancestors"))
        .unwrap_or_else(|| panic!("no frame-ancestors in {policy}"))
        .to_owned()
}

#[tokio::test]
async fn pages_may_be_framed_by_ourselves_only_unless_origins_are_configured() {
    let app = crate::common::spawn_app().await;
    let (headers, _) = page(&app, "/sign-in", &[]).await;
    assert_eq!(frame_ancestors(&headers), "frame-ancestors 'self'");
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.embed_origins = vec![
            "https://app.example.com".into(),
            "https://intranet.example.com".into(),
        ];
    })
    .await;
    let (headers, _) = page(&app, "/sign-in", &[]).await;
    assert_eq!(
        frame_ancestors(&headers),
        "frame-ancestors 'self' https://app.example.com https://intranet.example.com"
    );
    assert!(
        headers.get("x-frame-options").is_none(),
        "X-Frame-Options cannot name other origins, so it is left out"
    );
    // The staff pages are never framed, not even by an allowed site; other pages only by us.
    app.create_staff("root").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let response = staff.get_page("/admin/sessions").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        frame_ancestors(response.headers()),
        "frame-ancestors 'none'"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let (headers, _) = page(&app, "/", &[]).await;
    assert_eq!(frame_ancestors(&headers), "frame-ancestors 'self'");
}

/// Every inline script of a page carries the nonce its `Content-Security-Policy` names, which is
/// new on every response; the policy allows no other inline script, no plugin, no `<base>`, and
/// forms posted only to us and the services people return to after signing in.
#[tokio::test]
async fn pages_carry_a_content_security_policy_whose_nonce_their_scripts_have() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redirect_origins = vec!["https://wiki.example.com".into()];
    })
    .await;
    let mut nonces = Vec::new();
    for path in [
        "/",
        "/sign-in",
        "/account/sessions?embed=1",
        "/no-such-page",
    ] {
        let response = app.browser().get_page(path).await;
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        let policy = headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        for part in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self' https://wiki.example.com",
        ] {
            assert!(
                policy.contains(part),
                "{path}: {part} missing from {policy}"
            );
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {policy}"))
            .to_owned();
        assert!(nonce.len() >= 22, "{path}: a nonce of at least 128 bits");
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{path}: the page hydrates with scripts");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            html.matches("nonce=\"").count(),
            "{path}: every nonce in the page is the policy's"
        );
        for script in html.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: a script without the nonce: <script{tag}>"
            );
        }
        assert!(
            headers.get("x-console-sessions-nonce").is_none(),
            "kept inside"
        );
        assert!(
            headers.get("strict-transport-security").is_none(),
            "plain http"
        );
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "a new nonce for every response");

    // Answers that are not pages get the policy too, without a nonce.
    let response = app.browser().get_json("/api/v1/openapi.json").await;
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{policy}"
    );

    // Served as https: browsers are told to keep to it.
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.public_origin = Some("https://sessions.example.com".into());
    })
    .await;
    let response = app.browser().get_json("/healthz").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn a_framed_page_gets_the_minimal_layout() {
    let app = crate::common::spawn_app().await;
    let (_, whole) = page(&app, "/sign-in", &[("sec-fetch-dest", "document")]).await;
    assert!(!whole.contains("class=\"embedded\""));
    let (_, framed) = page(&app, "/sign-in", &[("sec-fetch-dest", "iframe")]).await;
    assert!(framed.contains("<body class=\"embedded\">"), "{framed}");
    let (_, asked) = page(&app, "/sign-in?embed=1", &[]).await;
    assert!(asked.contains("<body class=\"embedded\">"));
    // Same page, same form: only the chrome around it differs.
    assert!(framed.contains("data-testid=\"sign-in\""));
}

#[tokio::test]
async fn a_cookie_domain_shares_the_session_with_sibling_subdomains() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.session_cookie_domain = Some("example.test".into());
        settings.secure_cookies = true;
    })
    .await;
    app.create_user("alice").await;
    let response = app.browser().try_sign_in("alice", PASSWORD).await;
    assert_eq!(response.status(), 302);
    let session_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Secure-session=") && !c.starts_with("__Secure-session=;"))
        .expect("the session cookie, named __Secure- since __Host- cannot have a Domain");
    for part in ["Domain=example.test", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(session_cookie.contains(part), "{session_cookie}");
    }
    let token = session_cookie
        .trim_start_matches("__Secure-session=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // A proxy on a sibling subdomain passes the cookie on: it verifies.
    let proxy = reqwest::Client::new();
    let verified = proxy
        .get(app.url("/auth/verify"))
        .header("cookie", format!("__Secure-session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    assert_eq!(header(&verified, "x-auth-user"), "alice");
    // Signing out removes the domain cookie (a removal must name the same domain) and any
    // host-only one of the same name left from before the domain was set.
    let csrf = "c".repeat(43);
    let response = proxy
        .post(app.url("/api/account/sign-out"))
        .header(
            "cookie",
            format!("__Secure-session={token}; __Host-csrftoken={csrf}"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}"))
        .send()
        .await
        .unwrap();
    let removals: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("__Secure-session=;") || c.starts_with("__Secure-session=\"\";"))
        .collect();
    assert!(
        removals
            .iter()
            .any(|c| c.contains("Domain=example.test") && c.contains("Max-Age=0")),
        "{removals:?}"
    );
    assert!(
        removals
            .iter()
            .any(|c| !c.contains("Domain") && c.contains("Max-Age=0")),
        "{removals:?}"
    );
    let after = proxy
        .get(app.url("/auth/verify"))
        .header("cookie", format!("__Secure-session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the session ended");
}

/// Every header a client can send to claim an address: what nginx does not set, it passes on.
const FORGED: [(&str, &str); 3] = [
    ("forwarded", "for=6.6.6.6"),
    ("x-forwarded-for", "6.6.6.6"),
    ("x-real-ip", "6.6.6.6"),
];

/// A client address outside `TRUSTED_PROXIES=127.0.0.1/32` that still reaches nginx on loopback.
const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// nginx's own address, trusted as the proxy's: a client there is inside the trusted network.
const INSIDE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The address the app records for alice's session when she signs in through `nginx` from `from`,
/// sending the [`FORGED`] headers.
async fn address_seen_through(app: &TestApp, nginx: &Nginx, from: IpAddr) -> Option<IpAddr> {
    let browser = Browser::new(&nginx.address, FIREFOX, &FORGED, Some(from));
    browser.sign_in("alice", PASSWORD).await;
    let token = browser.session_token().expect("a session cookie");
    app.session_row(&token).await.expect("a session row").ip
}

/// A client cannot pick the address the app records (and throttles and audits by) by sending its
/// own `Forwarded` or `X-Forwarded-For` through nginx (issue 17, item 1): only the one configured
/// header counts, and in it no entry the client wrote.
async fn a_client_behind_nginx_cannot_choose_its_address(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_user("alice").await;

    // nginx appending to the client's X-Forwarded-For (`6.6.6.6, 127.0.0.2`) and passing its
    // Forwarded on untouched: the rightmost address outside the trusted network is the client.
    let appending = Nginx::reverse_proxy(
        &app.address,
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    );
    assert_eq!(
        address_seen_through(&app, &appending, OUTSIDE).await,
        Some(OUTSIDE),
        "{}",
        appending.error_log()
    );

    // nginx setting X-Forwarded-For, as the README asks. A client inside the trusted network makes
    // every hop trusted: still its own address, never what it claimed.
    let setting = Nginx::reverse_proxy(
        &app.address,
        "proxy_set_header X-Forwarded-For $remote_addr;",
    );
    for from in [OUTSIDE, INSIDE] {
        assert_eq!(
            address_seen_through(&app, &setting, from).await,
            Some(from),
            "{}",
            setting.error_log()
        );
    }
}

/// With `TRUSTED_PROXY_HEADER=x-real-ip`, the X-Real-IP nginx sets is the client, and the
/// X-Forwarded-For and Forwarded it passes on from the client are ignored.
async fn behind_nginx_setting_x_real_ip_only_that_header_is_believed(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        settings.trusted_proxy_header = "x-real-ip".parse().unwrap();
    })
    .await;
    app.create_user("alice").await;
    let nginx = Nginx::reverse_proxy(&app.address, "proxy_set_header X-Real-IP $remote_addr;");
    assert_eq!(
        address_seen_through(&app, &nginx, OUTSIDE).await,
        Some(OUTSIDE),
        "{}",
        nginx.error_log()
    );
}
