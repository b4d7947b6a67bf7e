//! `BASE_PATH`: the whole site under a path prefix (`/sso`), as a reverse proxy that passes the
//! prefix on sees it. Pages, links, forms, redirects, server functions and assets all live under
//! it; the answers for machines also answer at the root; pages do not.

use crate::common::{
    location, spawn_app_with, Browser, TestApp, DESKTOP_CHROME, FIREFOX, PASSWORD,
};
use console_sessions::Backend;
use reqwest::StatusCode;
use serde_json::Value;

on_every_database!(
    pages_and_their_links_live_under_the_base_path,
    signing_in_and_out_without_javascript_stays_under_the_base_path,
    staff_pages_link_under_the_base_path,
    machine_answers_come_with_and_without_the_base_path,
);

const BASE: &str = "/sso";

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, |settings| settings.base_path = BASE.into()).await
}

/// Every URL an `href`, `action` or `src` attribute holds in `html` (a crude scan: our own HTML
/// always quotes attributes with `"`).
fn urls(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in [" href=\"", " action=\"", " src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').expect("a closing quote");
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

/// Asserts that every link, form and script of the page is under the base path, and that no
/// script or stylesheet path is left at the root.
fn assert_all_under_base(page: &str, html: &str) {
    let urls = urls(html);
    assert!(!urls.is_empty(), "{page}: no links at all? {html}");
    for url in &urls {
        assert!(
            url == BASE || url.starts_with(&format!("{BASE}/")),
            "{page}: {url:?} is not under {BASE}: {html}"
        );
    }
    for root_asset in ["\"/pkg/", "'/pkg/", "\"/api/", "\"/favicon"] {
        assert!(
            !html.contains(root_asset),
            "{page}: {root_asset} outside the base path: {html}"
        );
    }
    assert!(
        html.contains(&format!("<meta name=\"base-path\" content=\"{BASE}\"")),
        "{page}: the base path is given to the browser: {html}"
    );
}

/// A page as a browser asks for it: status and HTML.
async fn page(browser: &Browser, path: &str) -> (StatusCode, String) {
    let response = browser.get_page(path).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The form token, through the viewer function under the base path.
async fn token(browser: &Browser) -> String {
    let response = browser.get_json("/sso/api/account/viewer").await;
    assert_eq!(response.status(), 200);
    let viewer: Value = response.json().await.unwrap();
    viewer["csrf_token"].as_str().unwrap().to_owned()
}

/// Posts a form as a browser without JavaScript does, to a server function under the base path.
async fn submit(browser: &Browser, function: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = token(browser).await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    browser
        .post_raw(&format!("{BASE}/api/{function}"), &all, &[])
        .await
}

/// Signs in without JavaScript; asserts the devices page (under the base path) comes next.
async fn sign_in(browser: &Browser, username: &str) {
    let response = submit(
        browser,
        "account/sign-in",
        &[("username", username), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sso/account/sessions");
}

async fn pages_and_their_links_live_under_the_base_path(backend: Backend) {
    let app = spawn(backend).await;
    let visitor = app.browser();

    // First run (no accounts yet): the home page offers the first account.
    let (status, html) = page(&visitor, "/sso/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Create the first staff account"), "{html}");
    assert_all_under_base("home (first run)", &html);

    app.create_user("alice").await;
    for path in ["/sso/", "/sso/sign-in", "/sso/sign-up"] {
        let (status, html) = page(&visitor, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert_all_under_base(path, &html);
    }
    let (_, html) = page(&visitor, "/sso/sign-in").await;
    assert!(
        html.contains("action=\"/sso/api/account/sign-in\""),
        "{html}"
    );
    assert!(
        html.contains("/sso/pkg/console-sessions.js"),
        "the hydration script is under the base path: {html}"
    );
    assert!(html.contains("href=\"/sso/pkg/console-sessions.css\""));

    // Without the prefix there is no page; an unknown page under it is not found either.
    for path in ["/", "/sign-in", "/account/sessions", "/sso/no/such/page"] {
        let (status, html) = page(&visitor, path).await;
        assert_eq!(status, 404, "{path}: {html}");
    }
    let (_, html) = page(&visitor, "/sso/no/such/page").await;
    assert!(html.contains("Page not found"), "{html}");
    assert_all_under_base("404", &html);

    // A page that needs an account sends the visitor to sign in, under the base path, and back.
    let response = visitor.get_page("/sso/account/sessions?x=1").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/sso/sign-in?next=%2Fsso%2Faccount%2Fsessions%3Fx%3D1"
    );

    // Signed in: the devices and password pages, and the top bar's links.
    let alice = app.browser_with_agent(DESKTOP_CHROME);
    sign_in(&alice, "alice").await;
    // A second device, so that the devices page has sign-out forms.
    sign_in(&app.browser(), "alice").await;
    for path in ["/sso/account/sessions", "/sso/account/password", "/sso/"] {
        let (status, html) = page(&alice, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert_all_under_base(path, &html);
    }
    let (_, html) = page(&alice, "/sso/account/sessions").await;
    for expected in [
        "href=\"/sso/account/sessions\"",
        "href=\"/sso/account/password\"",
        "action=\"/sso/api/account/sign-out\"",
        "action=\"/sso/api/sessions/sign-out\"",
        "action=\"/sso/api/sessions/sign-out-others\"",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    // The sign-in page sends a signed-in browser on, under the base path.
    let response = alice.get_page("/sso/sign-in").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sso/account/sessions");
}

async fn signing_in_and_out_without_javascript_stays_under_the_base_path(backend: Backend) {
    let app = spawn(backend).await;
    app.create_user("alice").await;
    let browser = app.browser_with_agent(FIREFOX);

    // A wrong password goes back to the sign-in page, under the base path, with what was typed.
    let response = submit(
        &browser,
        "account/sign-in",
        &[
            ("username", "alice"),
            ("password", "wrong"),
            ("next", "/sso/account/password"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert!(back.starts_with("/sso/sign-in?error="), "{back}");
    assert!(back.contains("next=%2Fsso%2Faccount%2Fpassword"), "{back}");

    // `next` comes from the browser's location, base path included: it is not prefixed again.
    let response = submit(
        &browser,
        "account/sign-in",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("next", "/sso/account/password"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sso/account/password");
    // The session cookie stays at Path=/ (see the README): forward authentication of the sibling
    // paths behind the same proxy must receive it.
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("Path=/;") || cookie.ends_with("Path=/"),
        "{cookie}"
    );
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));

    // The hydrated page calls server functions under the base path too (JSON answers).
    let response = browser.get_json("/sso/api/sessions/mine").await;
    assert_eq!(response.status(), 200);
    let mine: Value = response.json().await.unwrap();
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1);

    // Signing out: back to the sign-in page under the base path, signed out.
    let response = submit(&browser, "account/sign-out", &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sso/sign-in?signed_out=1");
    assert_eq!(browser.signed_in_as().await, None);
    let (status, html) = page(&browser, "/sso/sign-in?signed_out=1").await;
    assert_eq!(status, 200);
    assert!(html.contains("You have been signed out."), "{html}");

    // A cross-site post is refused with a page that links back under the base path.
    let response = browser
        .post_raw(
            "/sso/api/account/sign-out",
            &[],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("href=\"/sso/\""), "{html}");
}

async fn staff_pages_link_under_the_base_path(backend: Backend) {
    let app = spawn(backend).await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    let staff = app.browser_with_agent(DESKTOP_CHROME);
    sign_in(&staff, "root").await;
    let alice = app.browser();
    sign_in(&alice, "alice").await;
    let alice_id = app
        .session_row(&alice.session_token().unwrap())
        .await
        .unwrap()
        .public_id
        .as_str()
        .to_owned();

    for path in [
        "/sso/admin/sessions".to_owned(),
        "/sso/admin/sessions?state=active&sort=user".to_owned(),
        format!("/sso/admin/sessions/{alice_id}"),
        format!("/sso/admin/sessions/confirm?ids={alice_id}"),
        "/sso/admin/users".to_owned(),
        "/sso/admin/audit".to_owned(),
    ] {
        let (status, html) = page(&staff, &path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert_all_under_base(&path, &html);
    }
    let (_, html) = page(&staff, "/sso/admin/sessions").await;
    for expected in [
        format!("href=\"/sso/admin/sessions/{alice_id}\""),
        "action=\"/sso/admin/sessions/confirm\"".to_owned(),
        "href=\"/sso/admin/users\"".to_owned(),
    ] {
        assert!(html.contains(&expected), "{expected}: {html}");
    }

    // A bulk sign-out without JavaScript, and its redirect, under the base path.
    let response = submit(&staff, "admin/sign-out-sessions", &[("ids", &alice_id)]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sso/admin/sessions?ended=1");
    assert_eq!(alice.signed_in_as().await, None);
}

async fn machine_answers_come_with_and_without_the_base_path(backend: Backend) {
    let app = spawn(backend).await;
    app.create_user("alice").await;
    let browser = app.browser();
    for path in ["/healthz", "/sso/healthz"] {
        let response = browser.get_json(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    for path in ["/auth/verify", "/sso/auth/verify"] {
        let response = browser
            .client
            .get(browser.url(path))
            .header("x-original-url", "https://app.example.com/reports")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let sign_in = response.headers()["x-auth-sign-in"].to_str().unwrap();
        assert!(
            sign_in.starts_with(&format!("{}/sso/sign-in?next=", app.address)),
            "{sign_in}"
        );
    }
    sign_in(&browser, "alice").await;
    let response = browser.get_json("/sso/auth/verify").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-auth-user"], "alice");
}

/// The built site (`/pkg/…`) and the public files are served under the base path. Cargo tests do
/// not build the site, so this one makes a small one of its own.
#[tokio::test]
async fn assets_are_served_under_the_base_path() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(
        site.path().join("pkg/console-sessions.css"),
        "body { color: teal }",
    )
    .unwrap();
    std::fs::write(site.path().join("favicon.svg"), "<svg/>").unwrap();
    let root = site.path().to_str().unwrap().to_owned();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.base_path = BASE.into();
        settings.site_root = root;
    })
    .await;
    let browser = app.browser();
    let response = browser.get_json("/sso/pkg/console-sessions.css").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "body { color: teal }");
    let response = browser.get_json("/sso/favicon.svg").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "<svg/>");
    let response = browser.get_json("/sso/pkg/missing.js").await;
    assert_eq!(response.status(), 404);
}
