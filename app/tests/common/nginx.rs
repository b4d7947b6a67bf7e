//! A real nginx (Debian's `nginx-core`, which `make test` installs): in front of a tiny upstream,
//! asking our `/auth/verify` with `auth_request` before letting each request through — the setup
//! the README shows — or as the reverse proxy in front of the app itself.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};

pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx binary: on the `PATH` or where Debian puts it.
fn nginx_binary() -> String {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("nginx is not installed: `make test` installs Debian's nginx-core (apt-get install nginx-core)")
}

/// The upstream service nginx protects: it answers with the identity headers nginx passed on.
pub async fn spawn_upstream() -> SocketAddr {
    async fn whoami(headers: HeaderMap) -> Json<serde_json::Value> {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Json(serde_json::json!({
            "user": header("x-auth-user"),
            "user_id": header("x-auth-user-id"),
            "email": header("x-auth-email"),
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().fallback(get(whoami));
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

impl Nginx {
    /// nginx on a free port, proxying to `upstream` once `/auth/verify` on `app` (an
    /// `http://host:port` address) says yes; a 401 becomes a redirect to the sign-in URL it gives.
    pub fn start(app: &str, upstream: SocketAddr) -> Self {
        Self::start_on(free_port(), app, upstream)
    }

    /// [`Nginx::start`] on this port (from [`free_port`], when the app must know nginx's origin
    /// before nginx starts).
    pub fn start_on(port: u16, app: &str, upstream: SocketAddr) -> Self {
        let app = app.trim_start_matches("http://");
        Self::launch(
            port,
            &format!(
                r#"
        location / {{
            auth_request /_verify;
            auth_request_set $auth_user $upstream_http_x_auth_user;
            auth_request_set $auth_user_id $upstream_http_x_auth_user_id;
            auth_request_set $auth_email $upstream_http_x_auth_email;
            auth_request_set $auth_sign_in $upstream_http_x_auth_sign_in;
            error_page 401 =302 $auth_sign_in;
            proxy_set_header X-Auth-User $auth_user;
            proxy_set_header X-Auth-User-Id $auth_user_id;
            proxy_set_header X-Auth-Email $auth_email;
            proxy_pass http://{upstream};
        }}
        location = /_verify {{
            internal;
            proxy_pass http://{app}/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        }}
"#
            ),
        )
    }

    /// nginx on a free port as the reverse proxy in front of `app` itself (an `http://host:port`
    /// address), passing the browser's `Host` on and adding `directives` (such as
    /// `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`) to its `location /`.
    pub fn reverse_proxy(app: &str, directives: &str) -> Self {
        let app = app.trim_start_matches("http://");
        Self::launch(
            free_port(),
            &format!(
                r#"
        location / {{
            proxy_set_header Host $http_host;
            {directives}
            proxy_pass http://{app};
        }}
"#
            ),
        )
    }

    /// nginx on `port` with these `location` blocks, once it listens.
    fn launch(port: u16, locations: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let config = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"#
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}): {}", nginx.error_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen within 10 s: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// What nginx wrote to its error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}
