//! The real `console-sessions` binary as a child process: started on port 0, its address read from
//! its log, its log lines kept for the test to read.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use console_sessions_app::server::config::Settings;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// Every line the server has written so far (standard output and error).
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `console-sessions serve` on `database_url`, with these extra environment variables,
    /// and waits (at most a minute) for it to say where it listens.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_console-sessions"));
        command
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env("CLEAR_EXPIRED_EVERY", "0")
            // Mail (unless the test says where) goes to files outside the source tree.
            .env("MAIL_URL", Settings::for_tests("").mail_url)
            .env_remove("METRICS_TOKEN")
            .env_remove("METRICS_ADDR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            let found = found.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("serving on http://") {
                        let rest = &line[at + "serving on ".len()..];
                        let end = rest
                            .find(|c: char| c.is_whitespace() || c == '"')
                            .unwrap_or(rest.len());
                        let _ = found.send(rest[..end].to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let address = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not start: {:#?}",
                    lines.lock().unwrap().clone()
                );
            }
        };
        Self {
            child,
            address,
            lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends SIGTERM, as a service manager does to stop a service.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGKILL: the process ends at once, with no chance to clean up.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the process to exit, at most `limit`; its exit status, or `None` if it is still
    /// running (then it is killed).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
