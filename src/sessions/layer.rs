//! The tower layer that gives every request its [`Session`], and the axum extractor that hands it to
//! handlers.
//!
//! On the way in it reads the cookie, the client address and the user agent (no database work: the
//! session loads on first use). On the way out it commits the session and sets or removes the cookie.
//! If the store fails while committing, the response becomes a 503 so the client never believes a
//! change was kept when it was not.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE, VARY};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use cookie::{Cookie, SameSite};
use tower::{Layer, Service};

use super::{ClientInfo, CookieAction, Session, SessionEngine};
use crate::device::ACCEPT_CH;

/// A layer putting a [`Session`] on every request.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    engine: SessionEngine,
}

impl SessionLayer {
    /// A layer over this engine.
    pub fn new(engine: SessionEngine) -> Self {
        Self { engine }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            engine: self.engine.clone(),
        }
    }
}

/// The service the [`SessionLayer`] wraps around the application.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    engine: SessionEngine,
}

/// The value of the session cookie, if any: the first cookie of that name in the `Cookie` headers
/// whose value is text. Pairs that are not `name=value` are skipped, and so is a pair whose value
/// is not UTF-8; another cookie's odd bytes do not hide ours.
///
/// Read on every request, so it scans the bytes for the one name (splitting and trimming the pairs
/// as the `cookie` crate's parser would) and copies nothing.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let name = name.as_bytes();
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&byte| byte == b';'))
        .find_map(|pair| {
            let equals = pair.iter().position(|&byte| byte == b'=')?;
            let (key, value) = (&pair[..equals], &pair[equals + 1..]);
            if key.trim_ascii() != name {
                return None;
            }
            std::str::from_utf8(value.trim_ascii()).ok()
        })
}

impl<S> Service<Request<Body>> for SessionService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let engine = self.engine.clone();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let session = engine.request_session(request.headers(), peer);
        request.extensions_mut().insert(session.clone());

        // The clone that was made ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(engine.finish_response(&session, response).await)
        })
    }
}

impl SessionEngine {
    /// The session of a request with these headers from this socket peer: its cookie, and its
    /// client (address, user agent, client hints). What [`SessionLayer`] does on the way in, for a
    /// handler that runs without the layer.
    pub fn request_session(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Session {
        let client = self.client_of(headers, peer);
        self.session(cookie_value(headers, &self.config().cookie_name), client)
    }

    /// Who sent a request with these headers from this socket peer, as this engine's proxy
    /// settings say (see [`ClientInfo::from_headers`]).
    pub fn client_of(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientInfo {
        let config = self.config();
        ClientInfo::from_headers(
            headers,
            peer,
            &config.trusted_proxies,
            config.trusted_proxy_header,
        )
    }

    /// Commits `session` and writes what that asks of the cookie into `response`; if the store
    /// fails, the response becomes a 503 so the client never believes a change was kept. What
    /// [`SessionLayer`] does on the way out.
    pub async fn finish_response(
        &self,
        session: &Session,
        mut response: Response<Body>,
    ) -> Response<Body> {
        let config = self.config();
        let secure = config.secure || session.client().https;
        match self.commit(session).await {
            Ok(commit) => {
                let name = &config.cookie_name;
                let headers = response.headers_mut();
                let domain = config.cookie_domain.as_deref();
                if let Some(cookie) = cookie_header(name, &commit.cookie, secure, domain) {
                    // A host-only cookie of the same name, from before the domain was set, would
                    // be sent first and win: it goes whenever the session cookie changes.
                    if domain.is_some() && !name.starts_with("__Host-") {
                        if let Some(old) = cookie_header(name, &CookieAction::Remove, secure, None)
                        {
                            headers.append(SET_COOKIE, old);
                        }
                    }
                    headers.append(SET_COOKIE, cookie);
                    // A response that sets a session cookie must never be cached for others.
                    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                let varies = headers
                    .get_all(VARY)
                    .iter()
                    .any(|value| value.as_bytes().eq_ignore_ascii_case(b"cookie"));
                if commit.accessed && !varies {
                    headers.append(VARY, HeaderValue::from_static("Cookie"));
                }
                // Ask browsers for the client hints that make reduced user agents readable.
                headers.insert("accept-ch", HeaderValue::from_static(ACCEPT_CH));
                response
            }
            Err(error) => {
                tracing::error!(%error, "session could not be saved; answering 503");
                unavailable()
            }
        }
    }
}

fn cookie_header(
    name: &str,
    action: &CookieAction,
    secure: bool,
    domain: Option<&str>,
) -> Option<HeaderValue> {
    let mut cookie = match action {
        CookieAction::Keep => return None,
        CookieAction::Set { token, max_age } => {
            let mut builder = Cookie::build((name.to_owned(), token.expose().to_owned()));
            if let Some(max_age) = max_age {
                builder = builder.max_age(*max_age);
            }
            builder
        }
        CookieAction::Remove => Cookie::build((name.to_owned(), String::new()))
            .max_age(time::Duration::ZERO)
            .expires(time::OffsetDateTime::UNIX_EPOCH),
    }
    .http_only(true)
    .same_site(SameSite::Lax)
    .path("/")
    .secure(secure || name.starts_with("__Host-") || name.starts_with("__Secure-"))
    .build();
    if let Some(domain) = domain.filter(|_| !name.starts_with("__Host-")) {
        cookie.set_domain(domain.to_owned());
    }
    HeaderValue::from_str(&cookie.to_string()).ok()
}

fn unavailable() -> Response<Body> {
    let mut response = Response::new(Body::from(
        "The service is temporarily unavailable. Nothing was changed; please try again shortly.",
    ));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("5"));
    response
}

/// The session of the current request. Fails with 500 only if the [`SessionLayer`] is missing — a
/// wiring mistake, not a client error.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the session layer is not installed",
        ))
    }
}

/// A handler that fails on its session answers 503 (store unavailable) or 500 (a value of the wrong
/// shape); the cause goes to the log, never to the client.
impl axum::response::IntoResponse for super::SessionError {
    fn into_response(self) -> axum::response::Response {
        match &self {
            super::SessionError::Store(error) => {
                tracing::error!(%error, "session store failed");
                unavailable()
            }
            super::SessionError::Value { key, source } => {
                tracing::error!(%key, %source, "session value has an unexpected shape");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_well_formed_cookie_of_our_name_is_used() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; ===; session=abc; session=def"),
        );
        assert_eq!(cookie_value(&headers, "session"), Some("abc"));
        assert_eq!(cookie_value(&headers, "other"), None);
        headers.insert(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").unwrap(),
        );
        assert_eq!(cookie_value(&headers, "session"), None);
        headers.insert(
            COOKIE,
            HeaderValue::from_bytes("theme=\u{e9}t\u{e9}; session = ghi ".as_bytes()).unwrap(),
        );
        assert_eq!(cookie_value(&headers, "session"), Some("ghi"));
    }

    #[test]
    fn cookies_are_http_only_lax_and_host_only() {
        let token = super::super::SessionToken::generate();
        let header = cookie_header(
            "__Host-session",
            &CookieAction::Set {
                token: token.clone(),
                max_age: Some(time::Duration::seconds(60)),
            },
            false,
            Some("example.com"),
        )
        .unwrap();
        let text = header.to_str().unwrap();
        assert!(text.starts_with(&format!("__Host-session={}", token.expose())));
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure", "Max-Age=60"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("Domain"), "a __Host- cookie is host-only");
    }

    #[test]
    fn a_configured_domain_shares_the_cookie_with_subdomains() {
        let token = super::super::SessionToken::generate();
        let set = CookieAction::Set {
            token,
            max_age: None,
        };
        let shared = cookie_header("__Secure-session", &set, true, Some("example.com")).unwrap();
        let text = shared.to_str().unwrap();
        assert!(
            text.contains("Domain=example.com") && text.contains("Secure"),
            "{text}"
        );
        let removed =
            cookie_header("session", &CookieAction::Remove, false, Some("example.com")).unwrap();
        assert!(
            removed.to_str().unwrap().contains("Domain=example.com"),
            "a removal names the same domain, or the browser keeps the cookie"
        );
    }
}
