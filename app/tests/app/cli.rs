//! The binary's bad-input paths: each ends with one clear line and a non-zero exit, never a panic.

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_console-sessions"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "error");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_clear_failure(output: &Output, expected: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains("RUST_BACKTRACE"), "{text}");
}

#[test]
fn unknown_flags_are_refused_with_usage() {
    let output = run(&["--no-such-flag"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert_clear_failure(&output, "unexpected argument '--no-such-flag'");
}

#[test]
fn a_malformed_database_url_is_one_clear_line() {
    let output = run(&["migrate"], &[("DATABASE_URL", "mysql://localhost/db")]);
    assert_clear_failure(
        &output,
        "DATABASE_URL is malformed: unsupported scheme \"mysql\"",
    );
    assert_eq!(stderr(&output).trim().lines().count(), 1);
}

#[test]
fn an_unreadable_database_path_is_one_clear_line() {
    let output = run(
        &[
            "migrate",
            "--database-url",
            "sqlite:///proc/no-such-folder/x.db",
        ],
        &[],
    );
    assert_clear_failure(&output, "cannot create the folder /proc/no-such-folder");
}

#[test]
fn an_unknown_ip_retention_is_one_clear_line() {
    let output = run(&["migrate"], &[("IP_RETENTION", "partial")]);
    assert_clear_failure(
        &output,
        "unknown IP retention \"partial\": use full, truncate or none",
    );
}

#[test]
fn a_password_in_the_url_is_never_printed() {
    let output = run(
        &["migrate"],
        &[("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/nowhere")],
    );
    let text = stderr(&output);
    assert!(!output.status.success());
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("***"), "{text}");
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db", folder.path().display());
    let output = run(&["serve", "--addr", &address, "--database-url", &url], &[]);
    assert_clear_failure(&output, &format!("cannot listen on {address}"));
}

#[test]
fn migrate_creates_the_sqlite_file_and_its_folder() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("nested/data/db.sqlite");
    let url = format!("sqlite://{}", path.display());
    let output = run(&["migrate", "--database-url", &url], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(path.exists());
}
