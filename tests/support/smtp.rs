//! A real SMTP server for the mail tests: aiosmtpd (from PyPI; `make smtp-server` installs it into
//! `target/smtp-server`) as a child process on a free loopback port, keeping what it receives in
//! a Maildir of its own. Killed when dropped. Shared through `#[path]`, as geo_fixture.rs is.
#![allow(dead_code)]

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `make smtp-server` installs aiosmtpd (pip's `--target`: no virtualenv, nothing in the
/// system's or the user's site-packages): the workspace's `target/`, found from the crate being
/// tested (the library at the root, or the app below it).
pub fn packages() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("target/smtp-server"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("target/smtp-server"))
}

/// A loopback port nothing uses (just now), below the range the system hands out to outgoing
/// connections: a test may hold such a port unbound for seconds (a server that is down, then
/// started), and a database connection of another test must not take it meanwhile.
pub fn free_port() -> u16 {
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let below = ephemeral_from.max(11_000);
    for _ in 0..1000 {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), 10_000..below);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 10000 and {below}");
}

/// The longest the server gets to start, and a test to wait for its messages: a guard against a
/// hang, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);

/// An aiosmtpd process and its Maildir.
pub struct SmtpServer {
    child: Child,
    port: u16,
    folder: tempfile::TempDir,
}

impl SmtpServer {
    /// A server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A server on `port`, once it accepts connections.
    pub fn start_on(port: u16) -> Self {
        let folder = tempfile::tempdir().expect("a folder for the Maildir");
        let maildir = folder.path().join("maildir");
        let log = File::create(folder.path().join("aiosmtpd.log")).expect("a log file");
        let child = Command::new("python3")
            .env("PYTHONPATH", packages())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs");
        let mut server = Self {
            child,
            port,
            folder,
        };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "aiosmtpd exited ({status}) before listening on {}: {}\n(is it installed? \
                     `make smtp-server` puts it in {})",
                    self.port,
                    self.log(),
                    packages().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd is not listening on {} after {PATIENCE:?}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What aiosmtpd wrote to its standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `MAIL_URL` for it: plain SMTP, as a local test server is spoken to.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every message received so far, as received (with the Maildir handler's `X-Peer`,
    /// `X-MailFrom` and `X-RcptTo` headers on top), in no particular order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.folder.path().join("maildir/new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|path| std::fs::read(path).expect("read a received message"))
            .collect()
    }

    /// The messages once there are at least `count`.
    pub async fn wait_for(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived within {PATIENCE:?}; aiosmtpd said: {}",
                messages.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
