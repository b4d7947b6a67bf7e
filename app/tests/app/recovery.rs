//! Mail, account recovery and new sign-in alerts through the real HTTP stack, delivered to a real
//! SMTP server (aiosmtpd, a child process): "forgot password" and the reset link, email
//! verification and change, the alert's two answers, staff's reset links, passwords and failed
//! mail, verified addresses required, a mail server that is down, and `changepassword`.

use std::time::{Duration, Instant};

use mail_parser::MessageParser;

use crate::common::server::Server;
use crate::common::{
    error_code, location, spawn_app_with, username_for, Browser, TestApp, DESKTOP_CHROME, FIREFOX,
    IPHONE_SAFARI, PASSWORD,
};
use crate::smtp::{free_port, SmtpServer};
use console_sessions::accounts::{SecurityEvent, SecurityEventKind};
use console_sessions::sessions::AuthMethod;
use console_sessions::Backend;

on_every_database!(
    forgot_password_mails_a_link_that_sets_a_new_password_and_signs_out_every_device,
    a_new_device_is_alerted_and_this_wasnt_me_signs_it_out_and_leads_to_a_new_password,
);

const NEW_PASSWORD: &str = "a new and better passphrase";

/// One message as received.
#[derive(Debug)]
struct Mail {
    to: String,
    subject: String,
    text: String,
    html: String,
}

impl Mail {
    fn parse(raw: &[u8]) -> Self {
        let message = MessageParser::default().parse(raw).expect("a MIME message");
        let to = message
            .to()
            .and_then(|to| to.first())
            .and_then(|address| address.address())
            .unwrap_or_default()
            .to_owned();
        Self {
            to,
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message.body_text(0).unwrap_or_default().into_owned(),
            html: message.body_html(0).unwrap_or_default().into_owned(),
        }
    }

    /// The path and query of the link in the text part that leads to `page` on `app`.
    fn link(&self, app: &TestApp, page: &str) -> String {
        self.link_on(&app.address, page)
    }

    /// [`Mail::link`] for a site at `origin` (`http://host:port`), such as a server since stopped.
    fn link_on(&self, origin: &str, page: &str) -> String {
        let start = format!("{origin}{page}");
        let at = self
            .text
            .find(&start)
            .unwrap_or_else(|| panic!("no link to {start} in {:?}", self.text));
        let link = self.text[at..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let html = ["&amp;", "&#38;", "&#x26;"]
            .iter()
            .fold(self.html.clone(), |html, entity| html.replace(entity, "&"));
        assert!(
            html.contains(&format!("href=\"{link}\"")),
            "the HTML part has the same link: {link} in {html}"
        );
        link[origin.len()..].to_owned()
    }
}

/// The messages received, once there are `count`, parsed.
async fn mails(smtp: &SmtpServer, count: usize) -> Vec<Mail> {
    smtp.wait_for(count)
        .await
        .iter()
        .map(|raw| Mail::parse(raw))
        .collect()
}

/// The one message to `to` whose subject starts with `subject`, once it has arrived.
async fn mail_to(smtp: &SmtpServer, to: &str, subject: &str) -> Mail {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut found: Vec<Mail> = smtp
            .messages()
            .iter()
            .map(|raw| Mail::parse(raw))
            .filter(|mail| mail.to == to && mail.subject.starts_with(subject))
            .collect();
        if let Some(mail) = found.pop() {
            assert!(found.is_empty(), "one {subject:?} to {to}, not more");
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no {subject:?} to {to} within 30 s; got {:?}",
            smtp.messages()
                .iter()
                .map(|raw| Mail::parse(raw).subject)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The application, its mail going to a fresh SMTP server.
async fn app_with_mail(backend: Backend) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(backend, |settings| settings.mail_url = url).await;
    (app, smtp)
}

/// Opens a mail link as a browser does: the server takes the token out of the address (303 to the
/// page without it, the token in an HttpOnly cookie); returns where it sent the browser.
async fn open_link(browser: &Browser, link: &str) -> String {
    let response = browser.get_page(link).await;
    assert_eq!(response.status(), 303, "{link}");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("link="))
        .unwrap_or_else(|| panic!("no link cookie in {cookies:?}"));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1800"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    let to = location(&response);
    assert!(!to.contains("token"), "the token leaves the address: {to}");
    to
}

/// The "new sign-in" entries of a user's security activity, once there are `count`.
async fn new_sign_ins(app: &TestApp, user_id: i64, count: usize) -> Vec<SecurityEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let activity = app
            .state
            .accounts
            .security_activity(user_id, 50, 0)
            .await
            .unwrap();
        let found: Vec<SecurityEvent> = activity
            .into_iter()
            .filter(|event| event.kind == SecurityEventKind::NewSignIn)
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(Instant::now() < deadline, "{found:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `?error=` code a form posted to `path` without JavaScript was sent back with.
async fn refused(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Option<String> {
    error_code(&browser.submit(path, fields).await)
}

/// The page at `path`, as text, asserting a 200.
async fn page(browser: &Browser, path: &str) -> String {
    let response = browser.get_page(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

async fn forgot_password_mails_a_link_that_sets_a_new_password_and_signs_out_every_device(
    backend: Backend,
) {
    let (app, smtp) = app_with_mail(backend).await;
    let alice = app.create_user("alice").await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let laptop = app.signed_in("alice", FIREFOX).await;
    let phone_cookie = phone.session_token().unwrap();
    let laptop_cookie = laptop.session_token().unwrap();

    // The same answer for an account and for nobody.
    let stranger = app.browser();
    assert!(page(&stranger, "/forgot-password")
        .await
        .contains("Forgot your password?"));
    let mut answers = Vec::new();
    for login in ["alice", "nobody", "nobody@example.test"] {
        let response = stranger
            .submit("/api/account/forgot-password", &[("login", login)])
            .await;
        answers.push((response.status(), location(&response)));
    }
    assert!(
        answers
            .iter()
            .all(|answer| *answer == (reqwest::StatusCode::FOUND, "/forgot-password?sent=1".into())),
        "{answers:?}"
    );
    let reset = mail_to(&smtp, "alice@example.test", "Reset your password").await;
    assert!(reset.text.contains("alice"), "{}", reset.text);
    assert!(reset.text.contains("30 minutes"), "{}", reset.text);
    let link = reset.link(&app, "/reset-password?token=");

    // The link lands on the page without its token, which names the account.
    let browser = app.browser();
    assert_eq!(open_link(&browser, &link).await, "/reset-password");
    let form = page(&browser, "/reset-password").await;
    assert!(
        form.contains("reset-username") && form.contains(">alice<"),
        "{form}"
    );

    // A typo, and a password too short, leave the link usable.
    assert_eq!(
        refused(
            &browser,
            "/api/account/reset-password",
            &[
                ("password", NEW_PASSWORD),
                ("password_confirm", "something else"),
            ]
        )
        .await
        .as_deref(),
        Some("passwords_do_not_match")
    );
    assert_eq!(
        refused(
            &browser,
            "/api/account/reset-password",
            &[("password", "short"), ("password_confirm", "short")]
        )
        .await
        .as_deref(),
        Some("password_too_short.8")
    );

    let response = browser
        .submit(
            "/api/account/reset-password",
            &[
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/sign-in?reset=1");
    assert!(browser.cookie("link").is_none(), "a used link is forgotten");
    assert!(page(&browser, "/sign-in?reset=1")
        .await
        .contains("every device was signed out"));

    // Every device is signed out, in the database and the cache.
    for cookie in [&phone_cookie, &laptop_cookie] {
        assert_eq!(username_for(&app.address, cookie).await.unwrap(), None);
        assert!(app.session_row(cookie).await.is_none());
    }
    assert!(app.sessions_of(alice).await.is_empty());
    let old = app.browser().try_sign_in("alice", PASSWORD).await;
    assert_eq!(error_code(&old).as_deref(), Some("invalid_credentials"));
    app.browser().sign_in("alice", NEW_PASSWORD).await;

    // The owner is told, and the link works once.
    let changed = mail_to(&smtp, "alice@example.test", "Your password on").await;
    assert!(
        changed.text.contains("/forgot-password"),
        "{}",
        changed.text
    );
    let again = app.browser();
    open_link(&again, &link).await;
    assert!(page(&again, "/reset-password").await.contains("dead-link"));
    // Nobody and nobody@example.test got nothing: every message went to alice, and one of them
    // was a reset link (the others: the laptop's sign-in alert, the password changed notice).
    let received = mails(&smtp, 3).await;
    assert!(
        received.iter().all(|mail| mail.to == "alice@example.test"),
        "{received:?}"
    );
    assert_eq!(
        received
            .iter()
            .filter(|mail| mail.subject.starts_with("Reset your password"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_made_up_or_missing_link_token_leads_to_a_dead_link_page() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let browser = app.browser();
    // A well-formed token nobody issued: kept until the page finds it dead.
    let made_up = "A".repeat(43);
    open_link(&browser, &format!("/reset-password?token={made_up}")).await;
    assert!(browser.cookie("link").is_some());
    let dead = page(&browser, "/reset-password").await;
    assert!(dead.contains("dead-link"));
    // How long such links work, as the account service is configured.
    assert!(dead.contains("works once, for 30 minutes"), "{dead}");
    assert!(
        browser.cookie("link").is_none(),
        "the dead link is forgotten"
    );
    // Not a token: dropped on landing, replacing what the cookie held.
    open_link(&browser, &format!("/reset-password?token={made_up}")).await;
    let response = browser.get_page("/reset-password?token=<script>").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/reset-password");
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|value| {
            let value = value.to_str().unwrap();
            value.starts_with("link=;") && value.contains("Max-Age=0")
        });
    assert!(cleared);
    assert!(browser.cookie("link").is_none());
    assert!(page(&browser, "/reset-password")
        .await
        .contains("dead-link"));
    assert_eq!(
        refused(
            &browser,
            "/api/account/reset-password",
            &[
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ]
        )
        .await
        .as_deref(),
        Some("invalid_token")
    );
    // Without the form's token, nothing is even looked at.
    let response = browser
        .post_raw(
            "/api/account/verify-email",
            &[("csrf_token", "forged")],
            &[],
        )
        .await;
    assert_eq!(error_code(&response).as_deref(), Some("csrf"));
}

#[tokio::test]
async fn verification_and_email_change_links_confirm_addresses() {
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let browser = app.signed_in("alice", FIREFOX).await;
    let security = page(&browser, "/account/security").await;
    assert!(security.contains("alice@example.test") && security.contains("Not confirmed"));

    let response = browser.submit("/api/account/send-verification", &[]).await;
    assert_eq!(location(&response), "/account/security?sent=verify");
    let verify = mail_to(&smtp, "alice@example.test", "Confirm your email address").await;
    let link = verify.link(&app, "/verify-email?token=");
    assert_eq!(open_link(&browser, &link).await, "/verify-email");
    assert!(page(&browser, "/verify-email")
        .await
        .contains("link-pending"));
    let response = browser.submit("/api/account/verify-email", &[]).await;
    assert_eq!(location(&response), "/verify-email?done=1");
    assert!(page(&browser, "/verify-email?done=1")
        .await
        .contains("is confirmed"));
    let user = app.state.accounts.user(alice).await.unwrap().unwrap();
    assert!(user.email_verified_at.is_some());
    assert!(page(&browser, "/account/security")
        .await
        .contains("Confirmed"));

    // Another account's address is refused; a new one is confirmed from the new address, and the
    // old one is told.
    assert_eq!(
        refused(
            &browser,
            "/api/account/change-email",
            &[("email", "alice@new.test"), ("current_password", "not it")]
        )
        .await
        .as_deref(),
        Some("wrong_current_password")
    );
    assert_eq!(
        refused(
            &browser,
            "/api/account/change-email",
            &[
                ("email", "BOB@example.test"),
                ("current_password", PASSWORD),
            ]
        )
        .await
        .as_deref(),
        Some("email_taken")
    );
    let response = browser
        .submit(
            "/api/account/change-email",
            &[("email", "alice@new.test"), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&response), "/account/security?sent=email");
    let confirm = mail_to(&smtp, "alice@new.test", "Confirm your new email address").await;
    let notice = mail_to(&smtp, "alice@example.test", "Your email address on").await;
    assert!(notice.text.contains("alice@new.test"), "{}", notice.text);
    assert_eq!(
        app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("alice@example.test"),
        "nothing changes before the new address confirms"
    );
    // Opened in another browser, where nobody is signed in: the link is the proof.
    let elsewhere = app.browser();
    open_link(&elsewhere, &confirm.link(&app, "/confirm-email?token=")).await;
    let response = elsewhere.submit("/api/account/confirm-email", &[]).await;
    assert_eq!(location(&response), "/confirm-email?done=1");
    let user = app.state.accounts.user(alice).await.unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("alice@new.test"));
    assert!(user.email_verified_at.is_some());
    let kinds: Vec<SecurityEventKind> = app
        .state
        .accounts
        .security_activity(alice, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        &kinds[..3],
        [
            SecurityEventKind::EmailChanged,
            SecurityEventKind::EmailChangeRequested,
            SecurityEventKind::EmailVerified
        ]
    );
}

async fn a_new_device_is_alerted_and_this_wasnt_me_signs_it_out_and_leads_to_a_new_password(
    backend: Backend,
) {
    let (app, smtp) = app_with_mail(backend).await;
    let alice = app.create_user("alice").await;
    // The first browser of an account is its first context: no alert.
    let laptop = app.signed_in("alice", FIREFOX).await;
    // A browser and system the account has not used.
    let thief = app.signed_in("alice", DESKTOP_CHROME).await;
    let thief_cookie = thief.session_token().unwrap();
    let alert = mail_to(&smtp, "alice@example.test", "New sign-in to your account").await;
    assert!(alert.text.contains("Chrome"), "{}", alert.text);
    assert!(alert.text.contains("127.0.0.1"), "{}", alert.text);
    assert_eq!(
        smtp.messages().len(),
        1,
        "the laptop's sign-in was not alerted"
    );

    // Answered from a browser where nobody is signed in.
    let answering = app.browser();
    let not_me = alert.link(&app, "/sign-in-alert?answer=no&token=");
    assert_eq!(
        open_link(&answering, &not_me).await,
        "/sign-in-alert?answer=no"
    );
    assert!(page(&answering, "/sign-in-alert?answer=no")
        .await
        .contains("answer-not-me"));
    let response = answering
        .submit("/api/account/answer-alert", &[("answer", "no")])
        .await;
    assert_eq!(location(&response), "/reset-password?from=alert");
    // That session ended at once; the laptop's did not.
    assert_eq!(
        username_for(&app.address, &thief_cookie).await.unwrap(),
        None
    );
    assert!(app.session_row(&thief_cookie).await.is_none());
    assert_eq!(laptop.signed_in_as().await.as_deref(), Some("alice"));

    // Straight on to a new password, which signs out everything else too.
    let form = page(&answering, "/reset-password?from=alert").await;
    assert!(form.contains("That sign-in has been signed out") && form.contains(">alice<"));
    let response = answering
        .submit(
            "/api/account/reset-password",
            &[
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&response), "/sign-in?reset=1");
    assert_eq!(laptop.signed_in_as().await, None);

    // "It was me" no longer works; both answers' traces are in the activity.
    let it_was_me = alert.link(&app, "/sign-in-alert?answer=yes&token=");
    open_link(&answering, &it_was_me).await;
    assert!(page(&answering, "/sign-in-alert?answer=yes")
        .await
        .contains("dead-link"));
    let kinds: Vec<SecurityEventKind> = app
        .state
        .accounts
        .security_activity(alice, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    for kind in [
        SecurityEventKind::NewSignIn,
        SecurityEventKind::AlertDenied,
        SecurityEventKind::PasswordReset,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    // The owner reads it on the security page too.
    let owner = app.browser();
    owner.sign_in("alice", NEW_PASSWORD).await;
    let security = page(&owner, "/account/security").await;
    assert!(security.contains("This wasn"), "{security}");
    assert!(security.contains("New sign-in from a device or place not seen before"));
}

#[tokio::test]
async fn it_was_me_is_recorded_and_leaves_the_session_alone() {
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    let alice = app.create_user("alice").await;
    app.signed_in("alice", FIREFOX).await;
    let phone = app.signed_in("alice", IPHONE_SAFARI).await;
    let alert = mail_to(&smtp, "alice@example.test", "New sign-in").await;
    // With JavaScript, the page's own call: JSON back, the same redirect asked for.
    open_link(
        &phone,
        &alert.link(&app, "/sign-in-alert?answer=yes&token="),
    )
    .await;
    let response = phone
        .call("/api/account/answer-alert", &[("answer", "yes")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["session_ended"],
        false
    );
    assert_eq!(phone.signed_in_as().await.as_deref(), Some("alice"));
    let kinds: Vec<SecurityEventKind> = app
        .state
        .accounts
        .security_activity(alice, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(kinds[0], SecurityEventKind::AlertConfirmed);
}

#[tokio::test]
async fn alerts_turned_off_by_the_user_are_not_sent() {
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    let alice = app.create_user("alice").await;
    let laptop = app.signed_in("alice", FIREFOX).await;
    let response = laptop.submit("/api/account/sign-in-alerts", &[]).await;
    assert_eq!(location(&response), "/account/security?alerts=off");
    assert!(
        !app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .sign_in_alerts
    );
    app.signed_in("alice", DESKTOP_CHROME).await;
    app.signed_in("alice", IPHONE_SAFARI).await;
    // Sign-ins are looked at one after the other: once the last is in the activity, the one
    // before it has been dealt with too.
    for event in new_sign_ins(&app, alice, 2).await {
        assert_eq!(event.detail, "no alert");
    }
    let queued = app.state.mail.outbox().counts().await.unwrap();
    assert_eq!(queued.pending + queued.sent + queued.failed, 0);
    assert!(smtp.messages().is_empty());
    // Turned on again.
    let response = laptop
        .submit("/api/account/sign-in-alerts", &[("on", "on")])
        .await;
    assert_eq!(location(&response), "/account/security?alerts=on");
    assert!(
        app.state
            .accounts
            .user(alice)
            .await
            .unwrap()
            .unwrap()
            .sign_in_alerts
    );
}

#[tokio::test]
async fn with_sign_in_alerts_switched_off_no_alert_is_mailed() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.mail_url = url;
        settings.sign_in_alerts = false;
    })
    .await;
    let alice = app.create_user("alice").await;
    let laptop = app.signed_in("alice", FIREFOX).await;
    app.signed_in("alice", DESKTOP_CHROME).await;
    app.signed_in("alice", IPHONE_SAFARI).await;
    let overview: serde_json::Value = laptop
        .get_json("/api/account/security?page=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overview["alerts_available"], false);
    // Still recorded, without alerts; sign-ins are looked at one after the other, so once the
    // last is in the activity, nothing of the one before is still on its way.
    for event in new_sign_ins(&app, alice, 2).await {
        assert_eq!(event.detail, "no alert");
    }
    let queued = app.state.mail.outbox().counts().await.unwrap();
    assert_eq!(queued.pending + queued.sent + queued.failed, 0);
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn staff_send_reset_links_and_set_passwords_and_both_are_audited() {
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    app.create_staff("root").await;
    let bob = app.create_user("bob").await;
    let bobs_phone = app.signed_in("bob", IPHONE_SAFARI).await;
    let admin = app.signed_in("root", FIREFOX).await;
    let bob_id = bob.to_string();

    // Not for anyone else.
    for (path, fields) in [
        (
            "/api/admin/send-reset-link",
            vec![("user_id", bob_id.as_str())],
        ),
        (
            "/api/admin/set-password",
            vec![
                ("user_id", bob_id.as_str()),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        ),
        ("/api/admin/retry-mail", vec![("id", "1")]),
    ] {
        let response = bobs_phone.submit(path, &fields).await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("forbidden"),
            "{path}"
        );
    }
    bobs_phone
        .signed_in_as()
        .await
        .expect("still signed in: nothing was set");

    let response = admin
        .submit("/api/admin/send-reset-link", &[("user_id", &bob_id)])
        .await;
    assert_eq!(location(&response), "/admin/users?done=reset_link");
    let reset = mail_to(&smtp, "bob@example.test", "Reset your password").await;
    let link = reset.link(&app, "/reset-password?token=");
    let browser = app.browser();
    open_link(&browser, &link).await;
    assert!(page(&browser, "/reset-password").await.contains(">bob<"));

    let response = admin
        .submit(
            "/api/admin/set-password",
            &[
                ("user_id", &bob_id),
                ("password", NEW_PASSWORD),
                ("password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&response), "/admin/users?done=password");
    assert_eq!(bobs_phone.signed_in_as().await, None);
    app.browser().sign_in("bob", NEW_PASSWORD).await;
    // The staff's reset link died with the password set.
    assert!(page(&browser, "/reset-password")
        .await
        .contains("dead-link"));
    mail_to(&smtp, "bob@example.test", "Your password on").await;

    let log = console_sessions::admin::SessionAdmin::new(app.state.sessions.clone())
        .audit_log(10, 0)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(&actions[..2], ["user.set_password", "user.send_reset_link"]);
    for entry in &log[..2] {
        assert_eq!(entry.actor_username, "root");
        assert_eq!(entry.target_username.as_deref(), Some("bob"));
        assert!(!entry.detail.contains(NEW_PASSWORD));
    }
    let users = page(&admin, "/admin/users").await;
    assert!(users.contains("send-reset-link") && users.contains("set-password"));
}

#[tokio::test]
async fn failed_mail_is_listed_for_staff_and_sent_again() {
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    app.create_staff("root").await;
    let admin = app.signed_in("root", FIREFOX).await;
    // A message the outbox gave up on (the library's tests drive the worker there).
    let reset = app
        .state
        .accounts
        .password_reset_for(
            app.state
                .accounts
                .user_by_username("root")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    let id = {
        app.state
            .mail
            .password_reset(&reset, Duration::from_secs(1800))
            .await
            .unwrap();
        mail_to(&smtp, "root@example.test", "Reset your password").await;
        let list = app.state.mail.outbox().list(&[], 1, 0).await.unwrap();
        list.entries[0].id
    };
    // The server has it; the worker marks it sent a moment later, and that must come first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .state
        .mail
        .outbox()
        .get(id)
        .await
        .unwrap()
        .unwrap()
        .sent_at
        .is_none()
    {
        assert!(Instant::now() < deadline, "the message is marked sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET state = 'failed', last_error = 'connection refused' WHERE id = {id}"
        ))
        .await
        .unwrap();
    let listed = page(&admin, "/admin/mail").await;
    assert!(listed.contains("root@example.test") && listed.contains("connection refused"));
    assert!(listed.contains("Failed (1)"), "{listed}");
    let response = admin
        .submit("/api/admin/retry-mail", &[("id", &id.to_string())])
        .await;
    assert_eq!(location(&response), "/admin/mail?done=retry");
    mails(&smtp, 2).await;
    let log = console_sessions::admin::SessionAdmin::new(app.state.sessions.clone())
        .audit_log(1, 0)
        .await
        .unwrap();
    assert_eq!(log[0].action, "mail.retry");
    // A second click finds nothing to retry.
    assert_eq!(
        refused(&admin, "/api/admin/retry-mail", &[("id", &id.to_string())])
            .await
            .as_deref(),
        Some("not_found")
    );
    // Not for anyone else.
    app.create_user("bob").await;
    let bob = app.signed_in("bob", FIREFOX).await;
    assert_eq!(bob.get_page("/api/admin/mail").await.status(), 403);
}

#[tokio::test]
async fn with_verified_addresses_required_sign_in_waits_for_the_link() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.mail_url = url;
        settings.require_verified_email = true;
    })
    .await;
    // The first account is created by sign-up too: it needs an address.
    let browser = app.browser();
    let fields = |email: &'static str| {
        [
            ("username", "carol"),
            ("email", email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ]
    };
    assert_eq!(
        refused(&browser, "/api/account/sign-up", &fields(""))
            .await
            .as_deref(),
        Some("email_required")
    );
    let response = browser
        .submit("/api/account/sign-up", &fields("carol@example.test"))
        .await;
    assert_eq!(location(&response), "/sign-in?verify=1");
    assert_eq!(browser.signed_in_as().await, None);
    mail_to(&smtp, "carol@example.test", "Confirm your email address").await;

    // Signing in says what is missing, and sends a fresh link (the first one dies).
    let response = browser.try_sign_in("carol", PASSWORD).await;
    assert_eq!(error_code(&response).as_deref(), Some("email_not_verified"));
    let client = app.browser();
    let token = client.csrf_token().await;
    let api = client
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("origin", &app.address)
        .header("x-csrf-token", &token)
        .json(&serde_json::json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "email_not_verified"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.messages().len() < 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Each new link voids the one before: of the three, exactly the newest works.
    let mut worked = 0;
    for mail in smtp.messages().iter().map(|raw| Mail::parse(raw)) {
        open_link(&browser, &mail.link(&app, "/verify-email?token=")).await;
        let response = browser.submit("/api/account/verify-email", &[]).await;
        match location(&response).as_str() {
            "/verify-email?done=1" => worked += 1,
            _ => assert_eq!(error_code(&response).as_deref(), Some("invalid_token")),
        }
    }
    assert_eq!(worked, 1);
    browser.sign_in("carol", PASSWORD).await;
}

#[tokio::test]
async fn an_alert_queued_while_the_mail_server_is_down_is_delivered_once_it_is_up() {
    let port = free_port();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.mail_url = format!("smtp://127.0.0.1:{port}?tls=none");
        settings.mail_retry_delay = 1;
    })
    .await;
    app.create_user("alice").await;
    app.signed_in("alice", FIREFOX).await;
    app.signed_in("alice", DESKTOP_CHROME).await;
    // The alert is queued, and its first delivery fails: nothing listens.
    let outbox = app.state.mail.outbox();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let list = outbox.list(&[], 10, 0).await.unwrap();
        if let Some(entry) = list
            .entries
            .iter()
            .find(|e| e.attempts >= 1 && e.last_error.is_some())
        {
            assert_eq!(entry.kind, "new_sign_in");
            break entry.id;
        }
        assert!(Instant::now() < deadline, "{list:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    // The sign-in itself was not held up: both browsers are signed in.
    let smtp = SmtpServer::start_on(port);
    let received = mails(&smtp, 1).await;
    assert!(received[0].subject.starts_with("New sign-in"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while outbox.get(id).await.unwrap().unwrap().sent_at.is_none() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Once: a moment later there is still one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn mail_queued_before_a_kill_9_is_sent_by_the_next_start() {
    let folder = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/crash.db", folder.path().display());
    let port = free_port();
    let mail_url = format!("smtp://127.0.0.1:{port}?tls=none");
    // The next attempt after a failure waits 5 s: the kill lands between two attempts, not
    // during one (a worker killed mid-send leaves its 5-minute lease to run out first).
    let mut server = Server::start(
        &database_url,
        &[("MAIL_URL", &mail_url), ("MAIL_RETRY_DELAY", "5")],
    );
    let first_address = server.address.clone();
    // A sign-up with an address queues its verification link; the mail server is down.
    let browser = Browser::new(&server.address, FIREFOX, &[], None);
    let response = browser
        .submit(
            "/api/account/sign-up",
            &[
                ("username", "dora"),
                ("email", "dora@example.test"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 302);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .log()
        .iter()
        .any(|line| line.contains("mail not delivered; trying again later"))
    {
        assert!(Instant::now() < deadline, "{:?}", server.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    // The line is written just before the failure is recorded: wait for the record too, so that
    // the kill lands between two attempts.
    let db = console_sessions::Database::connect(&database_url)
        .await
        .unwrap();
    let outbox = console_sessions::mail::Outbox::new(
        db.clone(),
        console_sessions::mail::MailConfig::new(&mail_url, "a@example.test").unwrap(),
    )
    .unwrap();
    loop {
        let entries = outbox.list(&[], 10, 0).await.unwrap().entries;
        if entries
            .iter()
            .any(|entry| entry.last_error.is_some() && !entry.sending)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{entries:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    db.close().await;
    server.kill_9();

    // Up again, with the mail server: the message is sent, once.
    let smtp = SmtpServer::start_on(port);
    let server = Server::start(
        &database_url,
        &[("MAIL_URL", &mail_url), ("MAIL_RETRY_DELAY", "1")],
    );
    let received = mails(&smtp, 1).await;
    assert_eq!(received[0].to, "dora@example.test");
    assert!(received[0]
        .subject
        .starts_with("Confirm your email address"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1);

    // Its link (made by the first process) works on this one, and its token shows in no log line.
    let link = received[0].link_on(&first_address, "/verify-email?token=");
    let token = link.rsplit('=').next().unwrap().to_owned();
    let browser = Browser::new(&server.address, FIREFOX, &[], None);
    assert_eq!(open_link(&browser, &link).await, "/verify-email");
    let response = browser.submit("/api/account/verify-email", &[]).await;
    assert_eq!(location(&response), "/verify-email?done=1");
    for line in server.log() {
        assert!(!line.contains(&token), "the token in a log line: {line}");
    }
}

// `changepassword`, through the built binary.

#[tokio::test]
async fn changepassword_sets_the_password_and_signs_out_every_session() {
    use console_sessions::accounts::{Accounts, AccountsConfig, NewUser};
    use console_sessions::sessions::ClientInfo;
    use console_sessions::{Database, SessionConfig, SessionEngine};
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", folder.path().display());
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let engine = SessionEngine::new(db.clone(), SessionConfig::default());
    let accounts = Accounts::new(db.clone(), engine.clone(), AccountsConfig::default());
    let user = accounts
        .create_user(NewUser {
            username: "alice".into(),
            email: Some("alice@example.test".into()),
            password: PASSWORD.into(),
            is_staff: false,
        })
        .await
        .unwrap();
    let session = engine.session(None, ClientInfo::default());
    session
        .sign_in(user.id, AuthMethod::Password)
        .await
        .unwrap();
    engine.commit(&session).await.unwrap();
    assert_eq!(engine.list_for_user(user.id).await.unwrap().len(), 1);
    db.close().await;

    let mail = folder.path().join("mail");
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_console-sessions"));
        command
            .args(args)
            .args(["--database-url", &url])
            .env("MAIL_URL", format!("file://{}", mail.display()))
            .env_remove("CONSOLE_SESSIONS_PASSWORD")
            .env("RUST_LOG", "error");
        if let Some(password) = password {
            command.env("CONSOLE_SESSIONS_PASSWORD", password);
        }
        command.output().expect("the binary runs")
    };
    let output = run(&["changepassword", "alice"], Some(NEW_PASSWORD));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Password changed successfully for user \"alice\"; 1 session signed out"),
        "{stdout}"
    );
    assert!(!stdout.contains(NEW_PASSWORD));

    let db = Database::connect(&url).await.unwrap();
    let engine = SessionEngine::new(db.clone(), SessionConfig::default());
    let accounts = Accounts::new(db.clone(), engine.clone(), AccountsConfig::default());
    assert!(engine.list_for_user(user.id).await.unwrap().is_empty());
    accounts
        .authenticate("alice", NEW_PASSWORD, None)
        .await
        .unwrap();
    // The owner's notice waits in the outbox for the server's worker.
    let outbox = console_sessions::mail::Outbox::new(
        db.clone(),
        console_sessions::mail::MailConfig::new("file://unused", "a@example.test").unwrap(),
    )
    .unwrap();
    let queued = outbox.list(&[], 10, 0).await.unwrap();
    assert_eq!(queued.entries.len(), 1);
    assert_eq!(queued.entries[0].kind, "password_changed");
    db.close().await;

    // Clear refusals: an unknown user, a password the rules refuse, no password at all.
    for (args, password, expected) in [
        (
            ["changepassword", "nobody"],
            Some(NEW_PASSWORD),
            "user \"nobody\" does not exist",
        ),
        (
            ["changepassword", "alice"],
            Some("short"),
            "at least 8 characters",
        ),
        (
            ["changepassword", "alice"],
            None,
            "no terminal to ask for the password: set CONSOLE_SESSIONS_PASSWORD",
        ),
    ] {
        let output = run(&args, password);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr:?}");
        assert!(!stderr.contains("panicked"));
    }
}
