//! Two real server processes (the built binary) on one PostgreSQL database, both `cached_db`: a session
//! signed out through node A is refused by node B at once, though B had it in its cache.

use std::time::{Duration, Instant};

use crate::common::server::Server;
use crate::common::{
    client, csrf_token, post_form, session_cookie, sign_in, sign_up, username_for,
};
use console_sessions::testing::TestDatabase;

/// Starts a node and waits until its cache listens for the other nodes' evictions.
async fn start_node(database_url: &str) -> Server {
    let server = Server::start(database_url, &[("SESSION_BACKEND", "cached_db")]);
    let started = Instant::now();
    while !server
        .log()
        .iter()
        .any(|line| line.contains("listening for evictions"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node never listened: {:#?}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
}

#[tokio::test]
async fn a_session_signed_out_through_one_node_is_refused_by_the_other_at_once() {
    let db = TestDatabase::postgres().await.unwrap();
    let a = start_node(&db.url).await;
    let b = start_node(&db.url).await;

    // Alice signs up on her laptop through A, then signs in on her phone through A.
    let laptop = client();
    let response = sign_up(&laptop, &a.address, "alice").await.unwrap();
    assert_eq!(response.status(), 200);
    let laptop_cookie = session_cookie(&response).unwrap();
    let phone = client();
    let response = sign_in(&phone, &a.address, "alice", crate::common::PASSWORD)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let phone_cookie = session_cookie(&response).unwrap();

    // Node B serves the laptop (and so caches its session).
    for _ in 0..3 {
        assert_eq!(
            username_for(&b.address, &laptop_cookie)
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
    }

    // From the phone, through A: sign out every other session.
    let token = csrf_token(&phone, &a.address).await.unwrap();
    let response = post_form(
        &phone,
        &a.address,
        "/api/sessions/sign-out-others",
        &[("csrf_token", &token)],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "1");

    // B refuses the laptop's cookie within a bounded wait (its cache held it for 60 s otherwise).
    let revoked = Instant::now();
    loop {
        if username_for(&b.address, &laptop_cookie)
            .await
            .unwrap()
            .is_none()
        {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "node B still accepts the revoked cookie"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The phone still works on both nodes.
    for node in [&a, &b] {
        assert_eq!(
            username_for(&node.address, &phone_cookie)
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
    }
    // No token in the logs of either node.
    for node in [&a, &b] {
        for line in node.log() {
            assert!(!line.contains(&laptop_cookie) && !line.contains(&phone_cookie));
        }
    }
}
