//! Mail against every database and a real SMTP server (aiosmtpd, `make smtp-server`): the outbox
//! delivers what was queued, retries with backoff while the server is down, honours and outlives
//! leases, gives up and lets staff retry, shares the work between two workers, and never shows a
//! password. Time passes by moving the stored times back, not by sleeping.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use console_sessions::mail::{
    MailConfig, MailCounts, MailState, Message, Outbox, OutboxEntry, PublicOrigin, RetryPolicy,
    SignInAlert,
};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, Database};
use mail_parser::{MessageParser, MimeHeaders};

use crate::smtp::{free_port, SmtpServer};

const FROM: &str = "Console Sessions <no-reply@example.com>";

/// The longest a test waits for the worker: a guard against a hang, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);

struct Ctx {
    test_db: TestDatabase,
    origin: PublicOrigin,
}

impl Ctx {
    async fn new(backend: Backend) -> Self {
        let test_db = TestDatabase::new(backend)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
        Self {
            test_db,
            origin: PublicOrigin::parse("https://account.example.com").unwrap(),
        }
    }

    /// An outbox over the test database sending to `mail_url` with the default retry schedule,
    /// looking at the table every 50 ms.
    fn outbox(&self, mail_url: &str) -> Outbox {
        self.outbox_with(mail_url, |_| {})
    }

    fn outbox_with(&self, mail_url: &str, tune: impl FnOnce(&mut MailConfig)) -> Outbox {
        Outbox::new(self.test_db.db.clone(), config(mail_url, tune)).unwrap()
    }

    fn reset(&self, to: &str) -> Message {
        Message::password_reset(
            &self.origin,
            to,
            to.split('@').next().unwrap(),
            "/account/reset?token=abc123",
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    /// Makes every pending message due now, as if its wait had passed.
    async fn let_time_pass(&self) {
        self.test_db
            .execute("UPDATE mail_outbox SET next_attempt_at = 0 WHERE state = 'pending'")
            .await
            .unwrap();
    }
}

fn config(mail_url: &str, tune: impl FnOnce(&mut MailConfig)) -> MailConfig {
    let mut config = MailConfig::new(mail_url, FROM).unwrap();
    config.poll_interval = Duration::from_millis(50);
    config.send_timeout = Duration::from_secs(10);
    tune(&mut config);
    config
}

/// Unix milliseconds now, as the outbox stores times.
fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The entry once `condition` holds for it.
async fn wait_for_entry(
    outbox: &Outbox,
    id: i64,
    what: &str,
    condition: impl Fn(&OutboxEntry) -> bool,
) -> OutboxEntry {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let entry = outbox.get(id).await.unwrap().expect("the entry exists");
        if condition(&entry) {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} is not {what} after {PATIENCE:?}: {entry:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_sent(outbox: &Outbox, id: i64) -> OutboxEntry {
    wait_for_entry(outbox, id, "sent", |e| e.state == MailState::Sent).await
}

/// The counts once `condition` holds for them.
async fn wait_for_counts(outbox: &Outbox, condition: impl Fn(&MailCounts) -> bool) -> MailCounts {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = outbox.counts().await.unwrap();
        if condition(&counts) {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "still {counts:?} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(raw)
        .expect("a readable message")
}

/// The envelope recipient aiosmtpd's Maildir handler noted.
fn envelope_recipient(raw: &[u8]) -> String {
    parse(raw)
        .header_raw("X-RcptTo")
        .expect("X-RcptTo")
        .trim()
        .to_owned()
}

/// The log lines written on this thread while it lives (a test's runtime and the worker it
/// spawned run on the test's one thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

suite!(on_every_database:
    a_queued_message_is_delivered_with_its_text_and_html_parts,
    the_file_transport_writes_an_eml_file_per_message,
    with_the_server_down_enqueue_succeeds_and_retries_back_off_until_it_is_delivered_once,
    an_expired_lease_makes_a_message_due_again,
    after_its_last_attempt_a_message_is_failed_listed_for_staff_and_a_staff_retry_sends_it,
    a_message_not_sent_within_its_max_age_is_failed_without_being_sent,
    staff_see_pending_and_failed_mail_newest_first_a_page_at_a_time,
    two_workers_on_one_database_deliver_every_message_exactly_once,
    a_worker_stopped_mid_send_leaves_the_message_due,
    a_message_queued_before_a_restart_is_sent_after_it,
    no_password_appears_in_an_error_or_a_log_line,
    old_sent_and_failed_mail_is_purged_and_pending_mail_never,
);

async fn a_queued_message_is_delivered_with_its_text_and_html_parts(ctx: Ctx) {
    let server = SmtpServer::start();
    let outbox = ctx.outbox(&server.url());
    let worker = outbox.spawn_worker();
    let reset = outbox
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    let sign_in = Message::new_sign_in(
        &ctx.origin,
        "alice@example.com",
        "alice",
        &SignInAlert {
            device: "Firefox 128 on Windows 11".to_owned(),
            place: Some("Berlin, Germany".to_owned()),
            ip: Some("203.0.113.5".parse().unwrap()),
            at: time::macros::datetime!(2025-05-01 14:03 UTC),
        },
        "/account/sign-ins/7/confirm",
        "/account/sign-ins/7/deny",
    )
    .unwrap();
    let alert = outbox.enqueue(&sign_in).await.unwrap();
    let entry = wait_until_sent(&outbox, reset).await;
    wait_until_sent(&outbox, alert).await;
    worker.stop().await;

    assert_eq!(entry.attempts, 1);
    assert!(entry.sent_at.is_some());
    assert_eq!(entry.last_error, None);
    assert_eq!(entry.next_attempt_at, None);
    assert_eq!(entry.kind, "password_reset");
    assert_eq!(
        outbox.counts().await.unwrap(),
        MailCounts {
            pending: 0,
            sent: 2,
            failed: 0
        }
    );
    // Sent messages keep no content: their links open accounts.
    let emptied = ctx
        .test_db
        .execute("UPDATE mail_outbox SET kind = kind WHERE length(message) = 0")
        .await
        .unwrap();
    assert_eq!(emptied, 2);

    let received = server.messages();
    assert_eq!(received.len(), 2);
    let by_subject = |subject: &str| {
        received
            .iter()
            .find(|raw| parse(raw).subject() == Some(subject))
            .unwrap_or_else(|| panic!("no message {subject:?}"))
    };
    let raw = by_subject("Reset your password on account.example.com");
    let email = parse(raw);
    let from = email.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("no-reply@example.com"));
    assert_eq!(from.name(), Some("Console Sessions"));
    assert_eq!(
        email.to().unwrap().first().unwrap().address(),
        Some("alice@example.com")
    );
    assert_eq!(envelope_recipient(raw), "alice@example.com");
    assert_eq!(
        email.header_raw("X-MailFrom").map(str::trim),
        Some("no-reply@example.com")
    );
    assert_eq!(
        email.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    assert!(email.message_id().unwrap().ends_with("@example.com"));
    let content_type = email.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!((email.text_body_count(), email.html_body_count()), (1, 1));
    let link = "https://account.example.com/account/reset?token=abc123";
    let text = email.body_text(0).unwrap();
    assert!(text.contains(link), "{text}");
    assert!(text.contains("Hello alice,"), "{text}");
    assert!(!text.contains("<a "), "{text}");
    let html = email.body_html(0).unwrap();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");

    let alert = parse(by_subject(
        "New sign-in to your account on account.example.com",
    ));
    let html = alert.body_html(0).unwrap();
    let text = alert.body_text(0).unwrap();
    for part in [&text, &html] {
        for expected in [
            "Firefox 128 on Windows 11",
            "Berlin, Germany",
            "203.0.113.5",
            "Thu, 1 May 2025 at 14:03 UTC",
            "Yes, it was me",
            "https://account.example.com/account/sign-ins/7/confirm",
            "https://account.example.com/account/sign-ins/7/deny",
        ] {
            assert!(part.contains(expected), "{expected} missing from {part}");
        }
    }
}

async fn the_file_transport_writes_an_eml_file_per_message(ctx: Ctx) {
    let folder = tempfile::tempdir().unwrap();
    let mail = folder.path().join("mail");
    let (logs, _capturing) = Logs::capture();
    let outbox = ctx.outbox(&format!("file://{}", mail.display()));
    let worker = outbox.spawn_worker();
    for to in ["alice@example.com", "bob@example.com"] {
        outbox.enqueue(&ctx.reset(to)).await.unwrap();
    }
    wait_for_counts(&outbox, |counts| counts.sent == 2).await;
    worker.stop().await;

    let mut names: Vec<String> = std::fs::read_dir(&mail)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let mut recipients = BTreeSet::new();
    for name in &names {
        assert!(name.ends_with(".eml"), "{name}");
        let raw = std::fs::read(mail.join(name)).unwrap();
        let email = parse(&raw);
        assert_eq!((email.text_body_count(), email.html_body_count()), (1, 1));
        recipients.insert(
            email
                .to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap()
                .to_owned(),
        );
        let logs = logs.text();
        assert!(logs.contains("mail written to a file"), "{logs}");
        assert!(
            logs.contains(&mail.join(name).display().to_string()),
            "{logs}"
        );
    }
    assert_eq!(
        recipients,
        BTreeSet::from(["alice@example.com".to_owned(), "bob@example.com".to_owned()])
    );
}

async fn with_the_server_down_enqueue_succeeds_and_retries_back_off_until_it_is_delivered_once(
    ctx: Ctx,
) {
    let port = free_port();
    let outbox = ctx.outbox(&format!("smtp://127.0.0.1:{port}?tls=none"));
    let worker = outbox.spawn_worker();
    let id = outbox
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    let policy = RetryPolicy::default();
    for attempt in 1..=3 {
        let entry = wait_for_entry(&outbox, id, "failed once more", |e| {
            e.attempts == attempt && !e.sending && e.last_error.is_some()
        })
        .await;
        assert_eq!(entry.state, MailState::Pending);
        // 30 s after the first failure, then 60 s, then 120 s: the wait doubles.
        let waited =
            (entry.next_attempt_at.unwrap() - entry.last_attempt_at.unwrap()).whole_milliseconds();
        let delay = i128::try_from(policy.delay_after(attempt).as_millis()).unwrap();
        assert!(
            waited >= delay && waited < 2 * delay,
            "attempt {attempt}: next one {waited} ms after it, expected {delay} ms"
        );
        if attempt < 3 {
            ctx.let_time_pass().await;
        }
    }

    let server = SmtpServer::start_on(port);
    ctx.let_time_pass().await;
    let entry = wait_until_sent(&outbox, id).await;
    assert_eq!(entry.attempts, 4);
    worker.stop().await;
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(envelope_recipient(&received[0]), "alice@example.com");
}

async fn an_expired_lease_makes_a_message_due_again(ctx: Ctx) {
    let server = SmtpServer::start();
    let outbox = ctx.outbox(&server.url());
    let first = outbox
        .enqueue(&ctx.reset("first@example.com"))
        .await
        .unwrap();
    // A worker claimed it and died mid-send (kill -9): its lease holds for another hour.
    let now = now_millis();
    ctx.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET locked_until = {}, claim = 42, attempts = 1, \
             last_attempt_at = {now} WHERE id = {first}",
            now + 3_600_000
        ))
        .await
        .unwrap();
    let worker = outbox.spawn_worker();
    let second = outbox
        .enqueue(&ctx.reset("second@example.com"))
        .await
        .unwrap();
    wait_until_sent(&outbox, second).await;
    // The first was due earlier, so it would have gone first had its lease not held it back.
    let held = outbox.get(first).await.unwrap().unwrap();
    assert_eq!(held.state, MailState::Pending);
    assert!(held.sending);
    assert_eq!(server.messages().len(), 1);

    ctx.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET locked_until = {} WHERE id = {first}",
            now_millis() - 1
        ))
        .await
        .unwrap();
    let entry = wait_until_sent(&outbox, first).await;
    assert_eq!(entry.attempts, 2);
    worker.stop().await;
    let recipients: Vec<String> = server
        .messages()
        .iter()
        .map(|raw| envelope_recipient(raw))
        .collect();
    assert_eq!(recipients.len(), 2, "{recipients:?}");
    assert_eq!(
        recipients
            .iter()
            .filter(|to| *to == "first@example.com")
            .count(),
        1
    );
}

async fn after_its_last_attempt_a_message_is_failed_listed_for_staff_and_a_staff_retry_sends_it(
    ctx: Ctx,
) {
    let port = free_port();
    let outbox = ctx.outbox_with(&format!("smtp://127.0.0.1:{port}?tls=none"), |config| {
        config.retry = RetryPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_attempts: 3,
            max_age: Duration::from_secs(3600),
        };
    });
    let worker = outbox.spawn_worker();
    let id = outbox
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    let entry = wait_for_entry(&outbox, id, "failed", |e| e.state == MailState::Failed).await;
    assert_eq!(entry.attempts, 3);
    assert!(!entry.sending);
    assert_eq!(entry.next_attempt_at, None);
    assert!(!entry.last_error.as_deref().unwrap_or_default().is_empty());

    let page = outbox.list(&[MailState::Failed], 10, 0).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.entries, [entry]);
    assert_eq!(outbox.counts().await.unwrap().failed, 1);
    assert!(!outbox.retry(id + 1000).await.unwrap());

    let server = SmtpServer::start_on(port);
    assert!(outbox.retry(id).await.unwrap());
    let entry = wait_until_sent(&outbox, id).await;
    assert_eq!(
        entry.attempts, 1,
        "attempts count afresh after a staff retry"
    );
    assert!(
        !outbox.retry(id).await.unwrap(),
        "a sent message is not sent again"
    );
    worker.stop().await;
    assert_eq!(server.messages().len(), 1);
    assert_eq!(
        outbox
            .list(&[MailState::Failed], 10, 0)
            .await
            .unwrap()
            .total,
        0
    );
}

async fn a_message_not_sent_within_its_max_age_is_failed_without_being_sent(ctx: Ctx) {
    let server = SmtpServer::start();
    let outbox = ctx.outbox(&server.url());
    let id = outbox
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    // Queued 25 hours ago, while no worker ran: the default gives up after 24.
    ctx.test_db
        .execute("UPDATE mail_outbox SET queued_at = queued_at - 90000000")
        .await
        .unwrap();
    let worker = outbox.spawn_worker();
    let entry = wait_for_entry(&outbox, id, "failed", |e| e.state == MailState::Failed).await;
    worker.stop().await;
    assert_eq!(entry.attempts, 0);
    let error = entry.last_error.unwrap();
    assert!(error.contains("not sent within 24 h"), "{error}");
    assert!(server.messages().is_empty());
}

async fn staff_see_pending_and_failed_mail_newest_first_a_page_at_a_time(ctx: Ctx) {
    let folder = tempfile::tempdir().unwrap();
    let outbox = ctx.outbox(&format!("file://{}", folder.path().display()));
    let mut ids = Vec::new();
    for to in [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ] {
        ids.push(outbox.enqueue(&ctx.reset(to)).await.unwrap());
    }
    ctx.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET state = 'failed', last_error = '550 no such user' \
             WHERE id = {}",
            ids[0]
        ))
        .await
        .unwrap();
    ctx.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET state = 'sent', sent_at = 1 WHERE id = {}",
            ids[1]
        ))
        .await
        .unwrap();

    let unsent = [MailState::Pending, MailState::Failed];
    let first = outbox.list(&unsent, 2, 0).await.unwrap();
    assert_eq!(first.total, 3);
    let first_ids: Vec<i64> = first.entries.iter().map(|e| e.id).collect();
    assert_eq!(first_ids, [ids[3], ids[2]]);
    let newest = &first.entries[0];
    assert_eq!(newest.recipient, "d@example.com");
    assert_eq!(newest.subject, "Reset your password on account.example.com");
    assert_eq!(newest.kind, "password_reset");
    assert_eq!(newest.state, MailState::Pending);
    assert_eq!(newest.attempts, 0);
    assert!(newest.next_attempt_at.is_some());

    let second = outbox.list(&unsent, 2, 2).await.unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.entries.len(), 1);
    assert_eq!(second.entries[0].id, ids[0]);
    assert_eq!(second.entries[0].state, MailState::Failed);
    assert_eq!(
        second.entries[0].last_error.as_deref(),
        Some("550 no such user")
    );

    assert_eq!(outbox.list(&[], 10, 0).await.unwrap().total, 4);
    assert_eq!(
        outbox.counts().await.unwrap(),
        MailCounts {
            pending: 2,
            sent: 1,
            failed: 1
        }
    );
}

async fn two_workers_on_one_database_deliver_every_message_exactly_once(ctx: Ctx) {
    const MESSAGES: usize = 30;
    let server = SmtpServer::start();
    // Two nodes: each its own pool on the one database, its own outbox and worker.
    let node_a = ctx.outbox(&server.url());
    let other_pool = Database::connect(&ctx.test_db.url).await.unwrap();
    let node_b = Outbox::new(other_pool, config(&server.url(), |_| {})).unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..MESSAGES {
        let to = format!("user{i}@example.com");
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        node.enqueue(&ctx.reset(&to)).await.unwrap();
        expected.insert(to);
    }
    let workers = [node_a.spawn_worker(), node_b.spawn_worker()];
    wait_for_counts(&node_a, |counts| counts.sent == MESSAGES as u64).await;
    for worker in workers {
        worker.stop().await;
    }

    let received = server.messages();
    let recipients: Vec<String> = received.iter().map(|raw| envelope_recipient(raw)).collect();
    assert_eq!(recipients.len(), MESSAGES, "{recipients:?}");
    assert_eq!(recipients.into_iter().collect::<BTreeSet<_>>(), expected);
    let ids: BTreeSet<String> = received
        .iter()
        .map(|raw| parse(raw).message_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), MESSAGES);
    let entries = node_b.list(&[MailState::Sent], 100, 0).await.unwrap();
    assert!(entries.entries.iter().all(|entry| entry.attempts == 1));
}

async fn a_worker_stopped_mid_send_leaves_the_message_due(ctx: Ctx) {
    // A server that takes the connection and never answers: the send stays in flight.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, connected) = tokio::sync::oneshot::channel();
    let silent = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let _ = accepted.send(());
        tokio::time::sleep(PATIENCE).await;
        drop(socket);
    });
    let outbox = ctx.outbox_with(&format!("smtp://127.0.0.1:{port}?tls=none"), |config| {
        config.send_timeout = Duration::from_secs(1);
    });
    let worker = outbox.spawn_worker();
    let id = outbox
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    connected.await.unwrap();
    assert!(outbox.get(id).await.unwrap().unwrap().sending);

    worker.stop().await;
    let entry = outbox.get(id).await.unwrap().unwrap();
    assert_eq!(entry.state, MailState::Pending);
    assert!(!entry.sending, "the lease is given back");
    assert_eq!(entry.attempts, 1);
    assert!(entry.last_error.is_some());
    silent.abort();

    // Whoever runs next sends it.
    let server = SmtpServer::start();
    let outbox = ctx.outbox(&server.url());
    let worker = outbox.spawn_worker();
    ctx.let_time_pass().await;
    wait_until_sent(&outbox, id).await;
    worker.stop().await;
    assert_eq!(server.messages().len(), 1);
}

async fn a_message_queued_before_a_restart_is_sent_after_it(ctx: Ctx) {
    let server = SmtpServer::start();
    let id = ctx
        .outbox(&server.url())
        .enqueue(&ctx.reset("alice@example.com"))
        .await
        .unwrap();
    // The process ends before any worker ran: its pool is gone.
    ctx.test_db.db.close().await;

    let db = Database::connect(&ctx.test_db.url).await.unwrap();
    let outbox = Outbox::new(db, config(&server.url(), |_| {})).unwrap();
    let worker = outbox.spawn_worker();
    wait_until_sent(&outbox, id).await;
    worker.stop().await;
    assert_eq!(server.messages().len(), 1);
}

async fn no_password_appears_in_an_error_or_a_log_line(ctx: Ctx) {
    // Plain SMTP only: it offers no STARTTLS and speaks no TLS.
    let server = SmtpServer::start();
    let (logs, _capturing) = Logs::capture();
    let port = server.port();
    for url in [
        format!("smtp://mailer:s3cret@127.0.0.1:{port}"),
        format!("smtps://mailer:s3cret@127.0.0.1:{port}"),
    ] {
        let outbox = ctx.outbox_with(&url, |config| config.retry.max_attempts = 1);
        let shown = format!(
            "{outbox:?} {:?} {}",
            outbox.config(),
            outbox.config().transport
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        let worker = outbox.spawn_worker();
        let id = outbox
            .enqueue(&ctx.reset("alice@example.com"))
            .await
            .unwrap();
        let entry = wait_for_entry(&outbox, id, "failed", |e| e.state == MailState::Failed).await;
        worker.stop().await;
        let error = entry.last_error.unwrap();
        assert!(!error.is_empty());
        assert!(!error.contains("s3cret"), "{url}: {error}");
    }
    for url in [
        "smtp://mailer:s3cret@127.0.0.1?tls=none",
        "smtp://mailer:s3cret@127.0.0.1:2525/x",
        "smtp://mailer:s3cret@[127.0.0.1",
    ] {
        let error = MailConfig::new(url, FROM).unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }
    // STARTTLS was required and TLS spoken: nothing reached the plain server, in clear or not.
    assert!(server.messages().is_empty());
    let logs = logs.text();
    assert!(logs.contains("mail given up"), "{logs}");
    assert!(logs.contains("mailer:***@127.0.0.1"), "{logs}");
    assert!(!logs.contains("s3cret"), "{logs}");
}

async fn old_sent_and_failed_mail_is_purged_and_pending_mail_never(ctx: Ctx) {
    let outbox = ctx.outbox("file:///nonexistent-folder-never-written");
    let mut ids = Vec::new();
    for to in [
        "old-sent",
        "new-sent",
        "old-failed",
        "new-failed",
        "old-pending",
    ] {
        let id = outbox
            .enqueue(&ctx.reset(&format!("{to}@example.com")))
            .await
            .unwrap();
        ids.push(id);
    }
    let day = 86_400_000_i64;
    let now = now_millis();
    // No worker runs: the states and times are set as the worker would leave them.
    for (id, state, at) in [
        (ids[0], "sent", now - 8 * day),
        (ids[1], "sent", now - day),
        (ids[2], "failed", now - 31 * day),
        (ids[3], "failed", now - 29 * day),
    ] {
        let column = if state == "sent" {
            "sent_at"
        } else {
            "last_attempt_at"
        };
        ctx.test_db
            .execute(&format!(
                "UPDATE mail_outbox SET state = '{state}', {column} = {at} WHERE id = {id}"
            ))
            .await
            .unwrap();
    }
    ctx.test_db
        .execute(&format!(
            "UPDATE mail_outbox SET queued_at = {} WHERE id = {}",
            now - 90 * day,
            ids[4]
        ))
        .await
        .unwrap();
    let week = Duration::from_secs(7 * 86_400);
    let month = Duration::from_secs(30 * 86_400);
    assert_eq!(outbox.purge(week, month).await.unwrap(), 2);
    let left: Vec<i64> = outbox
        .list(&[], 10, 0)
        .await
        .unwrap()
        .entries
        .iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(left, [ids[4], ids[3], ids[1]]);
    assert_eq!(outbox.purge(week, month).await.unwrap(), 0);
}
