//! The staff admin through the real HTTP stack: who may see it, the changelist (search by network,
//! filters), audited sign-outs that reach the database and the cache, users, session details that
//! never show a token, and forgery defences.

use crate::common::{
    error_code, location, spawn_app_on, spawn_app_with, Browser, TestApp, DESKTOP_CHROME, FIREFOX,
    IPHONE_SAFARI, PASSWORD,
};
use console_sessions::admin::{AuditEntry, SessionAdmin};
use console_sessions::sessions::ClientInfo;
use console_sessions::Backend;
use reqwest::StatusCode;
use serde_json::Value;

on_every_database!(
    non_staff_users_get_403_on_every_admin_page_and_function,
    staff_can_open_every_admin_page,
    search_by_cidr_finds_the_sessions_in_the_network,
    filters_narrow_the_changelist,
    bulk_sign_out_ends_the_sessions_in_the_database_and_cache_and_is_audited,
    signing_out_all_sessions_of_a_user,
    deactivating_a_user_from_the_admin_ends_their_sessions,
    the_detail_page_shows_fields_and_data_but_never_the_token,
    cross_origin_admin_posts_are_refused,
    the_history_page_finds_ended_sessions_by_person_address_reason_and_day,
    signing_out_everything_a_search_matches_runs_as_a_job_and_is_audited_once,
);

/// Polls a job's progress (the page's function, or the JSON API's path) until it has ended.
async fn finished_job(browser: &Browser, path: &str) -> Value {
    for _ in 0..100 {
        let response = browser.get_json(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let job: Value = response.json().await.unwrap();
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} did not finish");
}

async fn signing_out_everything_a_search_matches_runs_as_a_job_and_is_audited_once(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let staff = signed_in_from(&app, "root", DESKTOP_CHROME, "192.0.2.9").await;
    let laptop = signed_in_from(&app, "alice", DESKTOP_CHROME, "10.1.2.3").await;
    let phone = signed_in_from(&app, "alice", IPHONE_SAFARI, "10.1.3.4").await;
    let bobs = signed_in_from(&app, "bob", FIREFOX, "10.2.0.1").await;

    // The changelist offers it once a search narrows it; the confirmation counts every match.
    let (_, html) = page(&staff, "/admin/sessions").await;
    assert!(
        !html.contains("data-testid=\"sign-out-matching\""),
        "not for everything"
    );
    let (_, html) = page(&staff, "/admin/sessions?q=10.1.0.0%2F16").await;
    assert!(
        html.contains("href=\"/admin/sessions/sign-out-matching?q=10.1.0.0%2F16\""),
        "{html}"
    );
    let (status, html) = page(&staff, "/admin/sessions/sign-out-matching?q=10.1.0.0%2F16").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("data-testid=\"matching-count\">2 sessions<"),
        "{html}"
    );
    assert!(
        html.contains("name=\"params[q]\" value=\"10.1.0.0/16\""),
        "{html}"
    );
    let (_, html) = page(
        &staff,
        "/admin/sessions/sign-out-matching?q=203.0.113.0%2F24",
    )
    .await;
    assert!(html.contains("data-testid=\"nothing-matches\""), "{html}");

    // Not for anyone but staff.
    let response = bobs
        .submit(
            "/api/admin/sign-out-matching",
            &[("params[q]", "10.1.0.0/16")],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("forbidden"));
    assert_eq!(app.sessions_of(alice).await.len(), 2);

    // Without JavaScript: the form, then the job's page, which reloads itself until done.
    let response = staff
        .submit(
            "/api/admin/sign-out-matching",
            &[("params[q]", "10.1.0.0/16")],
        )
        .await;
    assert_eq!(response.status(), 302);
    let job_page = location(&response);
    let job_id = job_page
        .strip_prefix("/admin/jobs/")
        .unwrap_or_else(|| panic!("{job_page}"))
        .to_owned();
    let job = finished_job(&staff, &format!("/api/admin/job?id={job_id}")).await;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["done"], 2);
    assert_eq!(job["total"], 2);
    let (status, html) = page(&staff, &job_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-state=\"finished\""), "{html}");
    assert!(html.contains("Done: 2 sessions signed out."), "{html}");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "done: no more reloading"
    );
    assert!(app.sessions_of(alice).await.is_empty());
    for browser in [&laptop, &phone] {
        assert_eq!(browser.signed_in_as().await, None);
    }
    assert_eq!(bobs.signed_in_as().await.as_deref(), Some("bob"));
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1, "one action");
    assert_eq!(log[0].action, "sessions.sign_out_matching");
    assert_eq!(log[0].actor_username, "root");
    assert_eq!(
        log[0].detail,
        "2 sessions matching search \u{201c}10.1.0.0/16\u{201d} ended"
    );
    let history = app.state.sessions.ended_sessions(alice, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history
        .iter()
        .all(|e| e.reason == console_sessions::sessions::EndCause::Staff));

    // The JSON API: a dry run counts, a run starts a job; the caller's own session is kept.
    let csrf = staff.csrf_token().await;
    let post = |body: Value| {
        staff
            .client
            .post(staff.url("/api/v1/admin/sessions/revoke-matching"))
            .header("x-csrf-token", csrf.clone())
            .json(&body)
            .send()
    };
    let response = post(serde_json::json!({"search": {"q": "10.2.0.0/16"}, "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let counted: Value = response.json().await.unwrap();
    assert_eq!(counted["matching"], 1, "{counted}");
    assert_eq!(counted["job_id"], Value::Null);
    assert_eq!(
        app.sessions_of(bob).await.len(),
        1,
        "a dry run ends nothing"
    );
    let response = post(serde_json::json!({"search": {"q": "10.0.0.0/8"}}))
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let job = finished_job(&staff, &format!("/api/v1/admin/jobs/{job_id}")).await;
    assert_eq!(job["done"], 1, "{job}");
    assert!(app.sessions_of(bob).await.is_empty());
    let response = post(serde_json::json!({"search": {"q": "192.0.2.9"}}))
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["matching"], 1, "the caller's own session matches…");
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let job = finished_job(&staff, &format!("/api/v1/admin/jobs/{job_id}")).await;
    assert_eq!(job["done"], 0, "…and is kept: {job}");
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));
    let response = staff.get_json("/api/v1/admin/jobs/nosuchjob").await;
    assert_eq!(response.status(), 404);
    assert_eq!(audit_log(&app).await.len(), 3);
}

async fn the_history_page_finds_ended_sessions_by_person_address_reason_and_day(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    let staff = app.signed_in("root", DESKTOP_CHROME).await;
    let laptop = signed_in_from(&app, "alice", DESKTOP_CHROME, "10.1.2.3").await;
    let phone = signed_in_from(&app, "alice", IPHONE_SAFARI, "10.9.0.1").await;
    let bobs = signed_in_from(&app, "bob", FIREFOX, "10.1.7.7").await;
    let phone_id = public_id(&app, &phone).await;
    // Alice signs her phone out from her laptop; Bob signs himself out.
    let response = laptop
        .submit("/api/sessions/sign-out", &[("public_id", &phone_id)])
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        bobs.submit("/api/account/sign-out", &[]).await.status(),
        302
    );

    let rows = |html: &str| html.matches("data-testid=\"history-row\"").count();
    let (status, html) = page(&staff, "/admin/history").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Session history</h1>"), "{html}");
    assert_eq!(rows(&html), 2, "{html}");
    assert!(html.contains("2 ended sessions"), "{html}");
    for (query, expected, what) in [
        ("q=alice", 1, "by person"),
        ("q=10.1.0.0%2F16", 1, "by network: Bob's"),
        ("q=10.9.", 1, "by address prefix"),
        ("q=ua%3Aiphone", 1, "by user agent"),
        ("reason=revoked", 1, "by reason"),
        ("reason=staff", 0, "nobody was ended by staff"),
        ("device=smartphone", 1, "by device"),
        ("from=2000-01-01&to=2000-12-31", 0, "by day"),
        (
            "reason=not-a-reason&device=toaster",
            2,
            "unknown values are ignored",
        ),
    ] {
        let (status, html) = page(&staff, &format!("/admin/history?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(rows(&html), expected, "{what}: {html}");
    }
    let (_, html) = page(&staff, "/admin/history?reason=revoked").await;
    assert!(html.contains("Signed out from another device"), "{html}");
    assert!(html.contains(&format!("their session {}", public_id(&app, &laptop).await)));
    assert!(!html.contains(&phone.session_token().unwrap()));

    // The same search in the JSON API.
    let response = staff
        .get_json("/api/v1/admin/history?q=alice&reason=revoked")
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["ended"][0]["public_id"], phone_id.as_str());
    assert_eq!(body["ended"][0]["username"], "alice");
    assert_eq!(body["ended"][0]["ip"], "10.9.0.1");
    assert_eq!(body["ended"][0]["reason"], "revoked");
    let response = laptop.get_json("/api/v1/admin/history").await;
    assert_eq!(response.status(), 403);
}

/// A browser that reaches the app through the trusted proxy from `ip`, signed in.
async fn signed_in_from(app: &TestApp, username: &str, user_agent: &str, ip: &str) -> Browser {
    let browser = app.browser_with_headers(user_agent, &[("x-forwarded-for", ip)]);
    browser.sign_in(username, PASSWORD).await;
    browser
}

/// The public id of the session a browser holds, from the database.
async fn public_id(app: &TestApp, browser: &Browser) -> String {
    let token = browser.session_token().expect("a session cookie");
    app.session_row(&token)
        .await
        .expect("a live session row")
        .public_id
        .as_str()
        .to_owned()
}

/// The audit log, newest first, read through the library.
async fn audit_log(app: &TestApp) -> Vec<AuditEntry> {
    SessionAdmin::new(app.state.sessions.clone())
        .audit_log(100, 0)
        .await
        .expect("the audit log is readable")
}

/// `GET /api/admin/sessions` with these changelist parameters (as `params[key]=value`).
async fn changelist_response(browser: &Browser, params: &[(&str, &str)]) -> reqwest::Response {
    let query = params
        .iter()
        .map(|(k, v)| format!("params%5B{k}%5D={}", urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    browser
        .get_json(&format!("/api/admin/sessions?{query}"))
        .await
}

/// The changelist as JSON, asserting it was served.
async fn changelist(browser: &Browser, params: &[(&str, &str)]) -> Value {
    let response = changelist_response(browser, params).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{params:?}: {body}");
    body
}

/// The `(username, ip)` of each changelist row, in order.
fn rows(list: &Value) -> Vec<(String, String)> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["username"].as_str().unwrap_or("").to_owned(),
                s["ip"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The usernames of the changelist rows, sorted.
fn usernames(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = rows(list).into_iter().map(|(u, _)| u).collect();
    names.sort();
    names
}

/// A page as a browser gets it: status and HTML.
async fn page(browser: &Browser, path: &str) -> (StatusCode, String) {
    let response = browser.get_page(path).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// The inner HTML of the element marked `data-testid="{test_id}"` (up to its `</{tag}>`).
fn test_id_content(html: &str, test_id: &str, tag: &str) -> Option<String> {
    let (_, rest) = html.split_once(&format!("data-testid=\"{test_id}\""))?;
    let (_, rest) = rest.split_once('>')?;
    let (content, _) = rest.split_once(&format!("</{tag}>"))?;
    Some(content.replace("<!>", ""))
}

/// The changelist page's row count and the text of its count line.
fn rendered_rows(html: &str) -> (usize, String) {
    let rows = html.matches("data-testid=\"admin-row\"").count();
    let count = test_id_content(html, "result-count", "p").unwrap_or_else(|| html.to_owned());
    (rows, count)
}

/// Every admin page and function, to check who is refused.
struct Targets<'a> {
    pages: &'a [String],
    reads: &'a [String],
    writes: &'a [(&'a str, Vec<(&'a str, &'a str)>)],
    /// Something no refused page may show.
    hidden: &'a str,
}

impl Targets<'_> {
    /// Asserts that this signed-in browser gets 403 from every page and function.
    async fn refused(&self, who: &str, browser: &Browser) {
        for path in self.pages {
            let (status, html) = page(browser, path).await;
            assert_eq!(status, 403, "{who}: {path}: {html}");
            assert!(
                html.contains("You do not have permission to do this."),
                "{who}: {path}: {html}"
            );
            assert!(
                !html.contains(self.hidden),
                "{who}: {path} shows no session"
            );
            assert!(!html.contains("data-testid=\"admin-row\""), "{who}: {path}");
        }
        for path in self.reads {
            let response = browser.get_json(path).await;
            assert_eq!(response.status(), 403, "{who}: {path}");
            let body = response.text().await.unwrap();
            assert_eq!(body, "\"Forbidden\"", "{who}: {path}");
        }
        for (path, fields) in self.writes {
            // From the hydrated page: a 403 and the error.
            let response = browser.call(path, fields).await;
            assert_eq!(response.status(), 403, "{who}: {path}");
            assert_eq!(response.text().await.unwrap(), "\"Forbidden\"", "{who}");
            // A plain form: back to the page with the error, which is itself refused.
            let response = browser.submit(path, fields).await;
            assert_eq!(response.status(), 302, "{who}: {path}");
            assert_eq!(
                error_code(&response).as_deref(),
                Some("forbidden"),
                "{path}"
            );
            let back = location(&response);
            assert!(back.starts_with("/admin/"), "{back}");
            assert_eq!(page(browser, &back).await.0, 403, "{who}: {back}");
        }
    }
}

async fn non_staff_users_get_403_on_every_admin_page_and_function(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let root = app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let staff = app.signed_in("root", DESKTOP_CHROME).await;
    let browser = app.signed_in("alice", FIREFOX).await;
    let staff_id = public_id(&app, &staff).await;
    let own_id = public_id(&app, &browser).await;
    let root_text = root.to_string();

    let pages = [
        "/admin/sessions".to_owned(),
        format!("/admin/sessions/confirm?ids={staff_id}&ids={own_id}"),
        format!("/admin/sessions/{staff_id}"),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/history".to_owned(),
        "/admin/sessions/sign-out-matching?country=SE".to_owned(),
    ];
    let reads = [
        "/api/admin/sessions?params%5Bstate%5D=all".to_owned(),
        format!("/api/admin/session?public_id={staff_id}"),
        format!("/api/admin/selected?ids={staff_id},{own_id}"),
        "/api/admin/users".to_owned(),
        "/api/admin/audit".to_owned(),
        "/api/admin/history".to_owned(),
        "/api/admin/matching?params%5Bcountry%5D=SE".to_owned(),
    ];
    let ids = format!("{staff_id},{own_id}");
    let writes: [(&str, Vec<(&str, &str)>); 3] = [
        ("/api/admin/sign-out-sessions", vec![("ids", &ids)]),
        ("/api/admin/sign-out-user", vec![("user_id", &root_text)]),
        (
            "/api/admin/set-active",
            vec![("user_id", &root_text), ("active", "false")],
        ),
    ];

    let targets = Targets {
        pages: &pages,
        reads: &reads,
        writes: &writes,
        hidden: &staff_id,
    };
    targets.refused("a user", &browser).await;
    assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));

    // Staff who lose the flag lose the admin at their next request.
    assert_eq!(page(&staff, "/admin/sessions").await.0, 200);
    app.state.accounts.set_staff(root, false).await.unwrap();
    targets.refused("a former staff member", &staff).await;

    // Nothing changed: both sessions live, both users active, nothing recorded.
    assert_eq!(app.sessions_of(root).await.len(), 1);
    assert_eq!(app.sessions_of(alice).await.len(), 1);
    for id in [root, alice] {
        assert!(
            app.state
                .accounts
                .user(id)
                .await
                .unwrap()
                .unwrap()
                .is_active
        );
    }
    assert!(audit_log(&app).await.is_empty());

    // Visitors are sent to sign in by pages, and told to by functions.
    let visitor = app.browser();
    for path in &pages {
        let response = visitor.get_page(path).await;
        let status = response.status();
        let to = location(&response);
        let html = response.text().await.unwrap();
        if status == 302 {
            assert!(to.starts_with("/sign-in?next=%2Fadmin%2F"), "{path}: {to}");
        } else {
            // Known bug: the confirmation and detail pages give `RequireStaff` the changelist's
            // path as `next`, and `RequireSignIn` only redirects while the browser is at `next`,
            // so a visitor gets an empty page there instead of the sign-in page. Nothing shows.
            assert!(
                path.starts_with("/admin/sessions/"),
                "{path} must redirect: {status}"
            );
            assert_eq!(status, 200, "{path}");
            assert!(!html.contains("data-testid=\"session-detail\""), "{path}");
            assert!(!html.contains("data-testid=\"confirm-list\""), "{path}");
            assert!(!html.contains("root@example.test"), "{path}");
        }
    }
    for path in &reads {
        let response = visitor.get_json(path).await;
        assert_ne!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "\"SignInRequired\"");
    }
    for (path, fields) in &writes {
        let response = visitor.submit(path, fields).await;
        assert_eq!(error_code(&response).as_deref(), Some("sign_in_required"));
        let response = visitor.call(path, fields).await;
        assert_ne!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "\"SignInRequired\"");
    }
    assert_eq!(app.sessions_of(root).await.len(), 1);
    assert_eq!(app.sessions_of(alice).await.len(), 1);
    assert!(audit_log(&app).await.is_empty());
}

async fn staff_can_open_every_admin_page(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    let staff = app.signed_in("root", DESKTOP_CHROME).await;
    let alice = app.signed_in("alice", IPHONE_SAFARI).await;
    let staff_id = public_id(&app, &staff).await;
    let alice_id = public_id(&app, &alice).await;

    let (status, html) = page(&staff, "/admin/sessions").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Sessions</h1>"), "{html}");
    assert_eq!(rendered_rows(&html), (2, "2 sessions".to_owned()), "{html}");
    for expected in [
        "alice",
        "root",
        "Safari 18 on iPhone",
        "Chrome 131 on macOS",
        "127.0.0.1",
        &format!("href=\"/admin/sessions/{alice_id}\""),
        &format!("value=\"{staff_id}\""),
        "Sign out selected sessions",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    assert!(!html.contains(&alice.session_token().unwrap()));

    // A function called with no parameters at all, as the page does after a client-side visit.
    let list = changelist(&staff, &[]).await;
    assert_eq!(list["total"], 2);
    let list = changelist(&staff, &[("state", "active")]).await;
    assert_eq!(usernames(&list), ["alice", "root"]);
    assert_eq!(list["total_exact"], true);
    assert_eq!(list["page"], 1);

    let confirm = format!("/admin/sessions/confirm?ids={alice_id}&ids={staff_id}");
    let (status, html) = page(&staff, &confirm).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Are you sure?"), "{html}");
    assert!(
        html.contains("2 sessions will be signed out at once."),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{alice_id},{staff_id}\"")),
        "{html}"
    );
    let (status, html) = page(&staff, "/admin/sessions/confirm?ids=nothing").await;
    assert_eq!(status, 200);
    assert!(html.contains("Nothing selected"), "{html}");

    let (status, html) = page(&staff, &format!("/admin/sessions/{alice_id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&alice_id), "{html}");
    assert!(html.contains("alice@example.test"), "{html}");
    assert!(html.contains(IPHONE_SAFARI), "{html}");

    let (status, html) = page(&staff, "/admin/users").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Users</h1>"), "{html}");
    assert!(html.contains("2 users"), "{html}");
    assert_eq!(html.matches("data-testid=\"user-row\"").count(), 2);
    assert!(html.contains("alice@example.test"), "{html}");
    assert_eq!(
        html.matches("Deactivate</button>").count(),
        1,
        "staff cannot deactivate themselves from the page: {html}"
    );
    let users: Value = staff
        .get_json("/api/admin/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["total"], 2, "{users}");
    let users_found: Value = staff
        .get_json("/api/admin/users?q=ali")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users_found["total"], 1, "{users_found}");
    assert_eq!(users_found["users"][0]["username"], "alice");
    assert_eq!(users_found["users"][0]["active_sessions"], 1);

    let (status, html) = page(&staff, "/admin/audit").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Audit log</h1>"), "{html}");
    assert!(html.contains("No staff action yet."), "{html}");

    // Personal data is never kept by a cache.
    for path in [
        "/api/admin/sessions?params%5Bstate%5D=all".to_owned(),
        format!("/api/admin/session?public_id={alice_id}"),
        "/api/admin/users".to_owned(),
        "/api/admin/audit".to_owned(),
    ] {
        let response = staff.get_json(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers().get("cache-control").unwrap(),
            "no-store",
            "{path}"
        );
    }
}

async fn search_by_cidr_finds_the_sessions_in_the_network(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_staff("root").await;
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        app.create_user(name).await;
    }
    let staff = app.signed_in("root", FIREFOX).await;
    let _alice = signed_in_from(&app, "alice", FIREFOX, "10.1.2.3").await;
    let _bob = signed_in_from(&app, "bob", DESKTOP_CHROME, "10.1.200.7").await;
    let _carol = signed_in_from(&app, "carol", FIREFOX, "10.2.0.1").await;
    let _dave = signed_in_from(&app, "dave", FIREFOX, "192.168.1.5").await;
    let erin = signed_in_from(&app, "erin", IPHONE_SAFARI, "2001:db8::1").await;
    // The address is the one the proxy saw, and stays so on later requests.
    assert_eq!(erin.signed_in_as().await.as_deref(), Some("erin"));
    let erin_row = app
        .session_row(&erin.session_token().unwrap())
        .await
        .unwrap();
    assert_eq!(erin_row.ip, Some("2001:db8::1".parse().unwrap()));

    let all = changelist(&staff, &[]).await;
    assert_eq!(all["total"], 6, "{all}");

    // The network, through the function.
    let found = changelist(&staff, &[("q", "10.1.0.0/16")]).await;
    let mut found_rows = rows(&found);
    found_rows.sort();
    assert_eq!(
        found_rows,
        [
            ("alice".to_owned(), "10.1.2.3".to_owned()),
            ("bob".to_owned(), "10.1.200.7".to_owned()),
        ]
    );
    assert_eq!(found["total"], 2);
    assert_eq!(found["total_exact"], true);

    // And through the page, as the search form sends it.
    let (status, html) = page(&staff, "/admin/sessions?q=10.1.0.0%2F16").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(rendered_rows(&html), (2, "2 sessions".to_owned()), "{html}");
    assert!(
        html.contains("10.1.2.3") && html.contains("10.1.200.7"),
        "{html}"
    );
    for outside in ["10.2.0.1", "192.168.1.5", "2001:db8::1", "127.0.0.1"] {
        assert!(!html.contains(outside), "{outside} is outside: {html}");
    }
    assert!(
        html.contains("value=\"10.1.0.0/16\""),
        "the search box keeps the query: {html}"
    );

    // Other shapes of the same search.
    let cases: [(&str, &[&str]); 7] = [
        ("10.1.2.3", &["alice"]),
        ("10.1.2.3/32", &["alice"]),
        ("10.0.0.0/8", &["alice", "bob", "carol"]),
        ("10.", &["alice", "bob", "carol"]),
        ("192.168.0.0/16", &["dave"]),
        ("2001:db8::/32", &["erin"]),
        ("172.16.0.0/12", &[]),
    ];
    for (q, expected) in cases {
        let list = changelist(&staff, &[("q", q)]).await;
        assert_eq!(usernames(&list), *expected, "{q}");
        assert_eq!(list["total"], expected.len(), "{q}");
    }
    let (_, html) = page(&staff, "/admin/sessions?q=172.16.0.0%2F12").await;
    assert_eq!(rendered_rows(&html), (0, "0 sessions".to_owned()), "{html}");
    let (_, html) = page(&staff, "/admin/sessions?q=192.168.1.5").await;
    assert_eq!(rendered_rows(&html), (1, "1 session".to_owned()), "{html}");
}

async fn filters_narrow_the_changelist(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    app.create_user("carol").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let _bob = app.signed_in("bob", DESKTOP_CHROME).await;
    let bob_old = app.signed_in("bob", FIREFOX).await;
    let carol = app.signed_in("carol", DESKTOP_CHROME).await;
    let sql = |column: &str, value: &str, id: &str| {
        format!("UPDATE sessions SET {column} = {value} WHERE public_id = '{id}'")
    };
    let expired_id = public_id(&app, &bob_old).await;
    let carol_id = public_id(&app, &carol).await;
    let phone_id = public_id(&app, &phone).await;
    app.test_db
        .execute(&sql("expires_at", "1", &expired_id))
        .await
        .unwrap();
    // Carol signed in long ago (2001), and is still signed in.
    app.test_db
        .execute(&sql("created_at", "1000000000000", &carol_id))
        .await
        .unwrap();
    app.test_db
        .execute(&sql("country_code", "'FR'", &phone_id))
        .await
        .unwrap();

    let names = |list: Value| usernames(&list);
    assert_eq!(
        names(changelist(&staff, &[]).await),
        ["alice", "bob", "carol", "root"],
        "active sessions by default"
    );
    assert_eq!(
        names(changelist(&staff, &[("state", "expired")]).await),
        ["bob"]
    );
    let expired = changelist(&staff, &[("state", "expired")]).await;
    assert_eq!(expired["sessions"][0]["public_id"], expired_id.as_str());
    assert_eq!(expired["sessions"][0]["active"], false);
    assert_eq!(
        names(changelist(&staff, &[("state", "all")]).await),
        ["alice", "bob", "bob", "carol", "root"]
    );
    assert_eq!(
        names(changelist(&staff, &[("owner", "mine")]).await),
        ["root"]
    );
    assert_eq!(
        names(changelist(&staff, &[("device", "smartphone")]).await),
        ["alice"]
    );
    assert_eq!(
        names(changelist(&staff, &[("device", "desktop")]).await),
        ["bob", "carol", "root"]
    );
    assert_eq!(
        names(changelist(&staff, &[("since", "today")]).await),
        ["alice", "bob", "root"]
    );
    assert_eq!(
        names(changelist(&staff, &[("since", "week")]).await),
        ["alice", "bob", "root"]
    );
    assert_eq!(
        names(changelist(&staff, &[("country", "FR")]).await),
        ["alice"]
    );
    assert_eq!(
        names(changelist(&staff, &[("country", "fr")]).await),
        ["alice"]
    );
    assert_eq!(
        names(changelist(&staff, &[("country", "DE")]).await).len(),
        0
    );
    let user_view = changelist(&staff, &[("user", &alice.to_string())]).await;
    assert_eq!(names(user_view.clone()), ["alice"]);
    assert_eq!(user_view["user"], serde_json::json!([alice, "alice"]));
    assert_eq!(
        names(changelist(&staff, &[("q", "ali")]).await),
        ["alice"],
        "search by person"
    );
    assert_eq!(
        names(changelist(&staff, &[("q", "ua:iphone")]).await),
        ["alice"],
        "search by user agent"
    );
    assert_eq!(
        names(
            changelist(
                &staff,
                &[("state", "all"), ("device", "desktop"), ("since", "today")]
            )
            .await
        ),
        ["bob", "bob", "root"],
        "filters combine"
    );
    let countries = changelist(&staff, &[]).await;
    assert_eq!(countries["countries"], serde_json::json!(["FR"]));

    // Sorting by user, both ways.
    let sorted = changelist(
        &staff,
        &[("state", "all"), ("sort", "user"), ("dir", "asc")],
    )
    .await;
    let order: Vec<String> = rows(&sorted).into_iter().map(|(u, _)| u).collect();
    assert_eq!(order, ["alice", "bob", "bob", "carol", "root"]);
    let sorted = changelist(
        &staff,
        &[("state", "all"), ("sort", "user"), ("dir", "desc")],
    )
    .await;
    let order: Vec<String> = rows(&sorted).into_iter().map(|(u, _)| u).collect();
    assert_eq!(order, ["root", "carol", "bob", "bob", "alice"]);

    // Nonsense is ignored, never an error.
    for params in [
        [("state", "whatever"), ("device", "toaster")],
        [
            ("country", "'; DROP TABLE sessions; --"),
            ("sort", "password"),
        ],
        [("page", "-1"), ("dir", "sideways")],
        [("since", "yesterday"), ("owner", "theirs")],
    ] {
        let list = changelist(&staff, &params).await;
        assert_eq!(list["total"], 4, "{params:?}: {list}");
    }
    let beyond = changelist(&staff, &[("page", "2")]).await;
    assert_eq!(beyond["sessions"].as_array().unwrap().len(), 0);
    assert_eq!(beyond["page"], 2);

    // The pages, as the filter links send them.
    for (path, rows_expected, count) in [
        ("/admin/sessions?device=smartphone", 1, "1 session"),
        ("/admin/sessions?state=expired", 1, "1 session"),
        ("/admin/sessions?state=all", 5, "5 sessions"),
        ("/admin/sessions?owner=mine", 1, "1 session"),
        ("/admin/sessions?since=today", 3, "3 sessions"),
        ("/admin/sessions?country=FR", 1, "1 session"),
        (
            "/admin/sessions?state=all&device=desktop&since=today",
            3,
            "3 sessions",
        ),
    ] {
        let (status, html) = page(&staff, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            rendered_rows(&html),
            (rows_expected, count.to_owned()),
            "{path}: {html}"
        );
    }
    let (_, html) = page(&staff, &format!("/admin/sessions?user={alice}")).await;
    assert!(html.contains("Sessions of alice"), "{html}");
    assert!(html.contains("Sign out all sessions of alice"), "{html}");
}

async fn bulk_sign_out_ends_the_sessions_in_the_database_and_cache_and_is_audited(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let carol = app.create_user("carol").await;
    let staff = signed_in_from(&app, "root", FIREFOX, "203.0.113.9").await;
    let alice_browser = app.signed_in("alice", FIREFOX).await;
    let bob_browser = app.signed_in("bob", DESKTOP_CHROME).await;
    let carol_browser = app.signed_in("carol", IPHONE_SAFARI).await;
    let alice_token = alice_browser.session_token().unwrap();
    let bob_token = bob_browser.session_token().unwrap();
    let alice_id = public_id(&app, &alice_browser).await;
    let bob_id = public_id(&app, &bob_browser).await;
    // In use, so in the cache.
    for browser in [&alice_browser, &bob_browser, &carol_browser] {
        assert!(browser.signed_in_as().await.is_some());
    }
    assert!(app.is_cached(&alice_token) && app.is_cached(&bob_token));

    // The ids, as staff find them in the changelist.
    let listed = changelist(&staff, &[]).await;
    let listed_ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["public_id"].as_str().unwrap())
        .collect();
    assert!(listed_ids.contains(&alice_id.as_str()) && listed_ids.contains(&bob_id.as_str()));

    // The confirmation lists them; then the form posts them.
    let (status, html) = page(
        &staff,
        &format!("/admin/sessions/confirm?ids={alice_id}&ids={bob_id}"),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("alice") && html.contains("bob"), "{html}");
    assert!(!html.contains("carol"), "{html}");
    let ids = format!("{alice_id},{bob_id}");
    let response = staff
        .submit("/api/admin/sign-out-sessions", &[("ids", &ids)])
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/admin/sessions?ended=2");
    let (_, html) = page(&staff, "/admin/sessions?ended=2").await;
    assert!(html.contains("2 sessions were signed out."), "{html}");

    // Gone from the database and the cache; their browsers are asked to sign in again.
    for (token, browser) in [(&alice_token, &alice_browser), (&bob_token, &bob_browser)] {
        assert!(app.session_row(token).await.is_none());
        assert!(!app.is_cached(token));
        let response = browser.get_page("/account/sessions").await;
        assert_eq!(response.status(), 302);
        assert_eq!(
            location(&response),
            "/sign-in?next=%2Faccount%2Fsessions&ended=1"
        );
        assert_eq!(browser.signed_in_as().await, None);
    }
    assert!(app.sessions_of(alice).await.is_empty());
    assert!(app.sessions_of(bob).await.is_empty());
    assert_eq!(app.sessions_of(carol).await.len(), 1);
    assert_eq!(carol_browser.signed_in_as().await.as_deref(), Some("carol"));
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));

    // Recorded: who, from where, and which sessions.
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    let entry = &log[0];
    assert_eq!(entry.action, "sessions.sign_out");
    assert_eq!(entry.actor_username, "root");
    assert_eq!(entry.actor_ip.as_deref(), Some("203.0.113.9"));
    let mut ended = entry.session_ids.clone();
    ended.sort();
    let mut expected = vec![alice_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    assert_eq!(entry.detail, "2 of 2 selected sessions ended");
    let lines: Value = staff
        .get_json("/api/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lines[0]["actor"], "root");
    assert_eq!(lines[0]["actor_ip"], "203.0.113.9");
    let (status, html) = page(&staff, "/admin/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"audit-log\""), "{html}");
    for expected in [
        "root",
        "203.0.113.9",
        &alice_id,
        &bob_id,
        "2 of 2 selected sessions ended",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }

    // Again: nothing left to end, and that is recorded too; unknown ids are skipped.
    let response = staff
        .call(
            "/api/admin/sign-out-sessions",
            &[("ids", &format!("{ids},{}", "A".repeat(22)))],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), 0);
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].detail, "0 of 3 selected sessions ended");
    assert!(log[0].session_ids.is_empty());
}

async fn signing_out_all_sessions_of_a_user(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let bob_browser = app.signed_in("bob", FIREFOX).await;
    let tokens = [
        laptop.session_token().unwrap(),
        phone.session_token().unwrap(),
    ];
    let mut ids = vec![
        public_id(&app, &laptop).await,
        public_id(&app, &phone).await,
    ];
    ids.sort();
    for browser in [&laptop, &phone] {
        assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
    }

    let response = staff
        .submit(
            "/api/admin/sign-out-user",
            &[("user_id", &alice.to_string())],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        format!("/admin/sessions?user={alice}&ended=2")
    );
    let (_, html) = page(&staff, &location(&response)).await;
    assert!(html.contains("Sessions of alice"), "{html}");
    assert!(html.contains("2 sessions were signed out."), "{html}");
    assert_eq!(rendered_rows(&html), (0, "0 sessions".to_owned()), "{html}");
    // The user's view shows what ended under what is live, and who ended it.
    assert!(html.contains("Ended sessions of alice"), "{html}");
    assert_eq!(
        html.matches("data-testid=\"history-row\" data-reason=\"staff\"")
            .count(),
        2,
        "{html}"
    );
    assert!(html.contains("root (staff)"), "{html}");

    assert!(app.sessions_of(alice).await.is_empty());
    for (token, browser) in tokens.iter().zip([&laptop, &phone]) {
        assert!(app.session_row(token).await.is_none());
        assert!(!app.is_cached(token));
        assert_eq!(browser.signed_in_as().await, None);
    }
    assert_eq!(bob_browser.signed_in_as().await.as_deref(), Some("bob"));
    assert_eq!(app.sessions_of(bob).await.len(), 1);

    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "user.sign_out_all");
    assert_eq!(log[0].actor_username, "root");
    assert_eq!(log[0].actor_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(log[0].target_user_id, Some(alice));
    assert_eq!(log[0].target_username.as_deref(), Some("alice"));
    let mut logged = log[0].session_ids.clone();
    logged.sort();
    assert_eq!(logged, ids);
    assert_eq!(log[0].detail, "all 2 sessions of alice ended");

    // With JavaScript: the count comes back; an unknown user is not found.
    let response = staff
        .call("/api/admin/sign-out-user", &[("user_id", &bob.to_string())])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), 1);
    assert_eq!(bob_browser.signed_in_as().await, None);
    let response = staff
        .submit("/api/admin/sign-out-user", &[("user_id", "999999")])
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("not_found"));
    assert_eq!(
        location(&response),
        "/admin/sessions?error=not_found&user=999999",
        "back to that user's view"
    );
    assert_eq!(audit_log(&app).await.len(), 2);
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));
}

async fn deactivating_a_user_from_the_admin_ends_their_sessions(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let root = app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let laptop = app.signed_in("alice", DESKTOP_CHROME).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let tokens = [
        laptop.session_token().unwrap(),
        phone.session_token().unwrap(),
    ];
    for browser in [&laptop, &phone] {
        assert_eq!(browser.signed_in_as().await.as_deref(), Some("alice"));
    }

    let alice_text = alice.to_string();
    let response = staff
        .submit(
            "/api/admin/set-active",
            &[("user_id", &alice_text), ("active", "false")],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/admin/users");
    assert!(
        !app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    assert!(app.sessions_of(alice).await.is_empty());
    for (token, browser) in tokens.iter().zip([&laptop, &phone]) {
        assert!(app.session_row(token).await.is_none());
        assert!(!app.is_cached(token));
        assert_eq!(browser.signed_in_as().await, None);
    }
    let response = app.browser().try_sign_in("alice", PASSWORD).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("invalid_credentials")
    );
    let (_, html) = page(&staff, "/admin/users").await;
    assert!(html.contains("Deactivated"), "{html}");
    assert!(html.contains("Activate</button>"), "{html}");

    let log = audit_log(&app).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "user.deactivate");
    assert_eq!(log[0].actor_username, "root");
    assert_eq!(log[0].target_username.as_deref(), Some("alice"));
    assert_eq!(log[0].detail, "deactivate alice; 2 sessions ended");
    let (_, html) = page(&staff, "/admin/audit").await;
    assert!(
        html.contains("deactivate alice; 2 sessions ended"),
        "{html}"
    );

    // Active again: alice may sign in.
    let response = staff
        .call(
            "/api/admin/set-active",
            &[("user_id", &alice_text), ("active", "true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), 0);
    assert!(
        app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    let again = app.signed_in("alice", FIREFOX).await;
    assert_eq!(again.signed_in_as().await.as_deref(), Some("alice"));
    let log = audit_log(&app).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].action, "user.activate");
    assert_eq!(log[0].detail, "activate alice; 0 sessions ended");

    // Staff cannot lock themselves out.
    let root_text = root.to_string();
    let themselves = [("user_id", root_text.as_str()), ("active", "false")];
    let response = staff.submit("/api/admin/set-active", &themselves).await;
    assert_eq!(response.status(), 302);
    assert_eq!(error_code(&response).as_deref(), Some("forbidden"));
    assert!(location(&response).starts_with("/admin/users?"));
    let response = staff.call("/api/admin/set-active", &themselves).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "\"Forbidden\"");
    assert!(
        app.state
            .accounts
            .user(root)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));
    assert_eq!(audit_log(&app).await.len(), 2, "refusals are not recorded");

    // An unknown user is not found.
    let response = staff
        .submit(
            "/api/admin/set-active",
            &[("user_id", "999999"), ("active", "false")],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("not_found"));
}

async fn the_detail_page_shows_fields_and_data_but_never_the_token(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    app.create_user("alice").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let alice = app.signed_in("alice", IPHONE_SAFARI).await;
    let token = alice.session_token().unwrap();
    let id = public_id(&app, &alice).await;

    // Something in alice's session data, as a page of the site might keep there.
    let session = app
        .state
        .sessions
        .session(Some(&token), ClientInfo::default());
    session.insert("theme", "dark").await.unwrap();
    session.insert("cart", vec![3, 5]).await.unwrap();
    app.state.sessions.commit(&session).await.unwrap();
    assert_eq!(
        alice.signed_in_as().await.as_deref(),
        Some("alice"),
        "same session"
    );

    let (status, html) = page(&staff, &format!("/admin/sessions/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-testid=\"session-detail\""), "{html}");
    for expected in [
        id.as_str(),
        "alice",
        "alice@example.test",
        IPHONE_SAFARI,
        "127.0.0.1",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }
    let text = test_id_content(&html, "session-data", "pre")
        .unwrap_or_else(|| panic!("the data block: {html}"))
        .replace("&quot;", "\"");
    assert!(
        text.contains("\n  \"theme\": \"dark\""),
        "pretty JSON: {text}"
    );
    let data: Value = serde_json::from_str(&text).expect("the data is JSON");
    assert_eq!(data["theme"], "dark", "{data}");
    assert_eq!(data["cart"], serde_json::json!([3, 5]), "{data}");
    assert!(!html.contains(&token), "the token never leaves the server");
    assert!(
        !html.contains(&staff.session_token().unwrap()),
        "nor the viewer's own"
    );

    let detail = staff
        .get_json(&format!("/api/admin/session?public_id={id}"))
        .await;
    assert_eq!(detail.status(), 200);
    let text = detail.text().await.unwrap();
    assert!(!text.contains(&token), "{text}");
    let detail: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(detail["session"]["public_id"], id.as_str());
    assert_eq!(detail["session"]["username"], "alice");
    assert_eq!(detail["email"], "alice@example.test");
    assert_eq!(detail["user_agent"], IPHONE_SAFARI);
    assert_eq!(detail["first_ip"], "127.0.0.1");
    assert_eq!(detail["session"]["category"], "smartphone");
    let data: Value = serde_json::from_str(detail["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["theme"], "dark");

    // Unknown and malformed ids are not found.
    for bad in [
        "A".repeat(22),
        "nope".to_owned(),
        "..%2F..%2Fetc".to_owned(),
    ] {
        let (_, html) = page(&staff, &format!("/admin/sessions/{bad}")).await;
        assert!(html.contains("Not found."), "{bad}: {html}");
        let body = staff
            .get_json(&format!("/api/admin/session?public_id={bad}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(body, "\"NotFound\"", "{bad}");
    }
}

async fn cross_origin_admin_posts_are_refused(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_staff("root").await;
    let alice = app.create_user("alice").await;
    let staff = app.signed_in("root", FIREFOX).await;
    let victim = app.signed_in("alice", DESKTOP_CHROME).await;
    let victim_id = public_id(&app, &victim).await;
    let token = staff.csrf_token().await;
    let alice_text = alice.to_string();
    let forms: [(&str, Vec<(&str, &str)>); 3] = [
        ("/api/admin/sign-out-sessions", vec![("ids", &victim_id)]),
        ("/api/admin/sign-out-user", vec![("user_id", &alice_text)]),
        (
            "/api/admin/set-active",
            vec![("user_id", &alice_text), ("active", "false")],
        ),
    ];

    for (path, fields) in &forms {
        // Another site posting the staff member's browser, even with a good token.
        let mut with_token = vec![("csrf_token", token.as_str())];
        with_token.extend_from_slice(fields);
        for origin in ["https://evil.example", "null"] {
            let response = staff
                .post_raw(path, &with_token, &[("origin", origin)])
                .await;
            assert_eq!(response.status(), 403, "{path} from {origin}");
        }
        let response = staff
            .post_raw(path, &with_token, &[("sec-fetch-site", "cross-site")])
            .await;
        assert_eq!(response.status(), 403, "{path}, cross-site");

        // Same origin, but no token, an empty one, or another browser's.
        let other = app.browser().csrf_token().await;
        for bad in [None, Some(""), Some(other.as_str())] {
            let mut form: Vec<(&str, &str)> = bad.map(|t| ("csrf_token", t)).into_iter().collect();
            form.extend_from_slice(fields);
            let response = staff.post_raw(path, &form, &[]).await;
            assert_eq!(response.status(), 302, "{path} {bad:?}");
            assert_eq!(
                error_code(&response).as_deref(),
                Some("csrf"),
                "{path} {bad:?}"
            );
            let response = staff
                .post_raw(path, &form, &[("accept", "application/json")])
                .await;
            assert_ne!(response.status(), 200, "{path} {bad:?}");
            assert_eq!(response.text().await.unwrap(), "\"CsrfFailed\"", "{path}");
        }
    }

    // Nothing happened.
    assert_eq!(victim.signed_in_as().await.as_deref(), Some("alice"));
    assert_eq!(app.sessions_of(alice).await.len(), 1);
    assert!(
        app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    assert!(audit_log(&app).await.is_empty());
    assert_eq!(staff.signed_in_as().await.as_deref(), Some("root"));

    // The same form from the site itself works.
    let response = staff
        .submit("/api/admin/sign-out-sessions", &[("ids", &victim_id)])
        .await;
    assert_eq!(location(&response), "/admin/sessions?ended=1");
    assert_eq!(victim.signed_in_as().await, None);
}
