//! The real binary under a write load: kill -9 loses no session whose creation was acknowledged;
//! SIGTERM lets the requests in flight finish, and never waits longer than the shutdown timeout.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{session_cookie, sign_up, username_for};
use console_sessions::testing::TestDatabase;
use console_sessions::Backend;
use sqlx::Connection;

/// Most sign-ups a load sends in all.
const MAX_SIGN_UPS: usize = 120;
/// Sign-ups in flight at once.
const WORKERS: usize = 6;
/// The server is killed once this many sign-ups were acknowledged.
const KILL_AFTER: usize = 30;

/// Sign-ups from `WORKERS` browsers at once until `stop`, at most `MAX_SIGN_UPS`. Every sign-up whose
/// answer arrived with a session cookie is acknowledged: (username, cookie).
struct Load {
    acknowledged: Arc<Mutex<Vec<(String, String)>>>,
    in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str) -> Self {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let workers = (0..WORKERS)
            .map(|_| {
                let (base, acknowledged, in_flight, stop, next) = (
                    base.to_owned(),
                    acknowledged.clone(),
                    in_flight.clone(),
                    stop.clone(),
                    next.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= MAX_SIGN_UPS {
                            break;
                        }
                        let username = format!("load{n}");
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let result = sign_up(&crate::common::client(), &base, &username).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        if let Ok(response) = result {
                            if response.status() == 200 {
                                let cookie = session_cookie(&response)
                                    .expect("an acknowledged sign-up sets the session cookie");
                                acknowledged.lock().unwrap().push((username, cookie));
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            acknowledged,
            in_flight,
            stop,
            workers,
        }
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    /// No new sign-ups from now on; how many are still running.
    fn stop(&self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.in_flight.load(Ordering::SeqCst)
    }

    async fn finish(self) -> Vec<(String, String)> {
        self.stop();
        for worker in self.workers {
            worker.await.unwrap();
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        acknowledged
    }
}

async fn kill_9_under_load_loses_no_acknowledged_session(database_url: &str) {
    // The load signs up from one address, far beyond the per-address sign-up limit.
    let mut server = Server::start(database_url, &[("SIGNUP_LIMIT_PER_IP", "0")]);
    let load = Load::start(&server.address);
    let started = Instant::now();
    while load.acknowledged() < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} sign-ups in two minutes",
            load.acknowledged()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Mid-load: sign-ups are in flight, some of their rows written but not yet acknowledged.
    let in_flight = load.stop();
    server.kill_9();
    let acknowledged = load.finish().await;
    println!(
        "killed after {:?}: {} sign-ups acknowledged, {in_flight} in flight",
        started.elapsed(),
        acknowledged.len(),
    );
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(in_flight >= 1, "the kill cut off sign-ups in flight");

    let restarted = Server::start(database_url, &[]);
    for (username, cookie) in &acknowledged {
        assert_eq!(
            username_for(&restarted.address, cookie)
                .await
                .unwrap()
                .as_deref(),
            Some(username.as_str()),
            "{username}'s acknowledged session is gone after kill -9"
        );
    }
}

/// Holds SQLite's write lock from another connection, as a backup or a long migration would: the
/// app's writes wait for it (up to the database timeout).
async fn lock_for_writes(url: &str) -> sqlx::SqliteConnection {
    let mut locker = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    locker
}

/// A sign-up sent in the background (it will wait on the lock).
async fn slow_sign_up(
    server: &Server,
    username: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let client = crate::common::client();
    let token = crate::common::csrf_token(&client, &server.address)
        .await
        .unwrap();
    let url = server.url("/api/account/sign-up");
    let username = username.to_owned();
    let handle = tokio::spawn(async move {
        client
            .post(url)
            .header("accept", "application/json")
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", username.as_str()),
                ("password", crate::common::PASSWORD),
                ("password_confirm", crate::common::PASSWORD),
            ])
            .send()
            .await
    });
    // Long enough to be hashed and stuck on the lock.
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sign_ups_on_sqlite_loses_no_acknowledged_session() {
    let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
    db.db.close().await;
    kill_9_under_load_loses_no_acknowledged_session(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sign_ups_on_postgres_loses_no_acknowledged_session() {
    let db = TestDatabase::new(Backend::Postgres)
        .await
        .expect("PostgreSQL tests need TEST_POSTGRES_URL (make test sets it)");
    db.db.close().await;
    kill_9_under_load_loses_no_acknowledged_session(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_requests_in_flight_finish() {
    let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
    db.db.close().await;
    let mut server = Server::start(&db.url, &[("DATABASE_TIMEOUT", "30")]);
    let mut locker = lock_for_writes(&db.url).await;
    let in_flight = slow_sign_up(&server, "patient").await;
    server.terminate();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );
    assert!(
        reqwest::get(server.url("/healthz")).await.is_err(),
        "new connections are refused while stopping"
    );
    // The request can finish now: it is answered, and then the server exits.
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = session_cookie(&answer).unwrap();
    let (status, server) = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(15));
        (status, server)
    })
    .await
    .unwrap();
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    let log = server.log().join("\n");
    for expected in [
        "shutting down",
        "no longer accepting connections",
        "database pool closed",
    ] {
        assert!(log.contains(expected), "{expected:?} missing from {log}");
    }
    let restarted = Server::start(&db.url, &[]);
    assert_eq!(
        username_for(&restarted.address, &cookie)
            .await
            .unwrap()
            .as_deref(),
        Some("patient")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_no_longer_than_the_shutdown_timeout() {
    let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
    db.db.close().await;
    // A request that cannot finish for 30 s: its write waits for a lock held elsewhere.
    let mut server = Server::start(
        &db.url,
        &[("DATABASE_TIMEOUT", "30"), ("SHUTDOWN_TIMEOUT", "1")],
    );
    let mut locker = lock_for_writes(&db.url).await;
    let stuck = slow_sign_up(&server, "stuck").await;
    let started = Instant::now();
    server.terminate();
    let (status, server) = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(20));
        (status, server)
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(status.is_some(), "still running 20 s after SIGTERM");
    assert!(
        took < Duration::from_secs(6),
        "shutdown took {took:?} with a 1 s timeout (+ 1 s to answer, at most 3 s to close the pool)"
    );
    let answer = stuck.await.unwrap().unwrap();
    assert_eq!(answer.status(), 503, "the cut-off request is told to retry");
    let log = server.log().join("\n");
    assert!(log.contains("shutdown timeout reached"), "{log}");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    println!("stopped {took:?} after SIGTERM with a request stuck on a lock");
}
