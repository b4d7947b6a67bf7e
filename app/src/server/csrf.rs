//! Protection against cross-site request forgery, in two independent layers:
//!
//! 1. **Origin.** Every request with an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) is
//!    refused with 403 when the browser says it comes from elsewhere: `Sec-Fetch-Site` other than
//!    `same-origin`/`none`, or an `Origin` other than the configured public origin (or, when none is
//!    configured, the request's own scheme and Host). Clients that send neither header are not
//!    browsers, and meet the second layer.
//! 2. **Token.** Every form carries a hidden `csrf_token` that must equal the `csrftoken` cookie
//!    (double submit). The cookie is HttpOnly, so only our own server-rendered page can copy it into
//!    a form; server functions that change state check it with [`CsrfToken::verify`]. Sign-in is
//!    covered too, so nobody can sign a victim into an attacker's account (login CSRF).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use console_sessions::Session;
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// The header API clients send the token in; a response to a sign-in or sign-out hands the
/// renewed token back in it too.
pub const HEADER: &str = "x-csrf-token";

/// Length of a token: 32 random bytes in unpadded base64url.
const TOKEN_LENGTH: usize = 43;

/// How the protection is configured.
#[derive(Debug, Clone)]
pub struct CsrfSettings {
    /// `scheme://host[:port]` that state-changing requests must come from; `None`: the request's own.
    pub public_origin: Option<String>,
    /// Name of the token cookie (`__Host-csrftoken` when cookies are Secure).
    pub cookie_name: String,
    /// Whether the cookie is marked Secure.
    pub secure: bool,
    /// The path the site is mounted under (`BASE_PATH`), for the link of the refusal page. The
    /// cookie itself keeps `Path=/`, like the session cookie.
    pub base_path: String,
}

impl CsrfSettings {
    /// Settings matching the session cookie's security.
    pub fn new(public_origin: Option<String>, secure: bool) -> Self {
        Self {
            public_origin,
            cookie_name: if secure {
                "__Host-csrftoken".into()
            } else {
                "csrftoken".into()
            },
            secure,
            base_path: String::new(),
        }
    }
}

/// The request's anti-forgery token, put in the request's extensions by [`protect`].
#[derive(Clone)]
pub struct CsrfToken {
    value: String,
    /// Whether the client already had it (a fresh one cannot have been copied into a form yet).
    from_cookie: bool,
    /// The token that replaces this one if the request signs someone in or out, made when first
    /// asked for: the middleware sets it, and a handler can hand it to the page at once.
    renewed: Arc<std::sync::OnceLock<String>>,
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfToken")
            .field("from_cookie", &self.from_cookie)
            .finish_non_exhaustive()
    }
}

impl CsrfToken {
    fn generate() -> Self {
        Self {
            value: random_token(),
            from_cookie: false,
            renewed: Arc::default(),
        }
    }

    fn from_cookie(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            from_cookie: true,
            renewed: Arc::default(),
        }
    }

    /// The token this request's answer gives the client if the request signs someone in or out
    /// (see [`protect`]): for a handler that tells the page its token after doing so.
    pub fn renewed(&self) -> &str {
        self.renewed.get_or_init(random_token)
    }

    /// The value to put in a form's hidden field.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a submitted form token is the one in the client's cookie (compared in constant time).
    pub fn verify(&self, submitted: &str) -> bool {
        self.from_cookie
            && submitted.len() == self.value.len()
            && bool::from(submitted.as_bytes().ct_eq(self.value.as_bytes()))
    }
}

/// 256 random bits in unpadded base64url: the library's session token generator, which makes
/// exactly the shape [`TOKEN_LENGTH`] expects.
fn random_token() -> String {
    console_sessions::sessions::SessionToken::generate()
        .expose()
        .to_owned()
}

/// The middleware: refuses cross-origin unsafe requests, and gives every client a token cookie.
pub async fn protect(
    State(settings): State<Arc<CsrfSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let https = request
        .extensions()
        .get::<Session>()
        .is_some_and(|session| session.client().https);
    if !is_safe(request.method()) {
        if let Err(reason) = check_origin(request.headers(), &settings, https) {
            tracing::warn!(
                method = %request.method(),
                path = %request.uri().path(),
                reason,
                "cross-origin request refused"
            );
            return refused(request.uri().path(), &settings.base_path);
        }
    }
    let token = console_sessions::sessions::cookie_value(request.headers(), &settings.cookie_name)
        .filter(|value| {
            value.len() == TOKEN_LENGTH && console_sessions::sessions::is_base64url(value)
        })
        .map(CsrfToken::from_cookie)
        .unwrap_or_else(CsrfToken::generate);
    let no_forms = serves_no_forms(request.uri().path());
    let session = request.extensions().get::<Session>().cloned();
    request.extensions_mut().insert(token.clone());
    let mut response = next.run(request).await;
    // A sign-in or sign-out renews the token, as Django's `rotate_token` does: a token learnt
    // before (by someone who shared the browser, or planted) is worthless after.
    let signed_in_or_out = match &session {
        Some(session) => session.user_changed().await,
        None => false,
    };
    let new_token = if signed_in_or_out {
        Some(token.renewed().to_owned())
    } else if !token.from_cookie && !no_forms {
        Some(token.value)
    } else {
        None
    };
    if let Some(value) = new_token {
        let cookie = Cookie::build((settings.cookie_name.clone(), value.clone()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            // Like the session cookie: Secure also when a trusted proxy says the client uses https.
            .secure(settings.secure || https)
            .max_age(time::Duration::days(365))
            .build();
        if let Ok(cookie) = HeaderValue::from_str(&cookie.to_string()) {
            let headers = response.headers_mut();
            headers.append(SET_COOKIE, cookie);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if signed_in_or_out {
                // A script or API client that keeps the token finds the new one here (the cookie
                // is HttpOnly), as `GET /api/v1/auth/csrf` would give it.
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(HEADER), value);
                }
            }
        }
    }
    response
}

/// Static files and the answers made for machines (proxies, probes, scrapers) carry no form, so
/// they give out no token cookie: a proxy asking `/auth/verify` on every request must not be
/// handed a new random token each time.
fn serves_no_forms(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/favicon")
        || path == "/passkeys.js"
        || super::site::is_machine_path(path)
}

/// Whether a method only reads (GET, HEAD, OPTIONS, TRACE): every other one must pass the checks.
pub fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `Ok` when the browser's own headers say the request comes from our origin, or when there are
/// none (not a browser).
fn check_origin(
    headers: &HeaderMap,
    settings: &CsrfSettings,
    https: bool,
) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err("Sec-Fetch-Site is not same-origin"),
        };
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| "Origin is not text")?;
    let matches = match &settings.public_origin {
        Some(expected) => origin.eq_ignore_ascii_case(expected),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or("no Host to compare Origin with")?;
            let scheme = if https { "https" } else { "http" };
            origin.split_once("://").is_some_and(|(s, h)| {
                s.eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(host)
            })
        }
    };
    if matches {
        Ok(())
    } else {
        Err("Origin is not ours")
    }
}

fn refused(path: &str, base_path: &str) -> Response {
    if path.starts_with("/api/v1/") {
        let error = crate::error::api::ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "Cross-origin request refused.",
        );
        return ([(CACHE_CONTROL, "no-store")], error).into_response();
    }
    // The base path is validated at startup: unreserved characters only, nothing to escape.
    (
        StatusCode::FORBIDDEN,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Request refused</title></head>\
             <body><h1>Request refused</h1><p>This request came from another site, so it was not carried out. \
             Go back to <a href=\"{base_path}/\">console-sessions</a> and try again from there.</p></body></html>"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_requests_pass_and_others_are_refused() {
        let own = CsrfSettings::new(None, false);
        let configured = CsrfSettings::new(Some("https://sessions.example.com".into()), true);
        let pass = |h: &[(&'static str, &'static str)], s: &CsrfSettings, https| {
            check_origin(&headers(h), s, https).is_ok()
        };
        assert!(pass(&[("sec-fetch-site", "same-origin")], &own, false));
        assert!(pass(&[("sec-fetch-site", "none")], &own, false));
        assert!(!pass(&[("sec-fetch-site", "cross-site")], &own, false));
        assert!(!pass(&[("sec-fetch-site", "same-site")], &own, false));
        assert!(pass(
            &[("origin", "http://a:3000"), ("host", "a:3000")],
            &own,
            false
        ));
        assert!(!pass(
            &[("origin", "http://a:3000"), ("host", "a:3000")],
            &own,
            true
        ));
        assert!(!pass(
            &[("origin", "http://evil"), ("host", "a:3000")],
            &own,
            false
        ));
        assert!(!pass(&[("origin", "null"), ("host", "a")], &own, false));
        assert!(pass(
            &[("origin", "https://sessions.example.com")],
            &configured,
            false
        ));
        assert!(!pass(
            &[("origin", "https://evil.example.com")],
            &configured,
            true
        ));
        assert!(pass(&[], &own, false));
    }

    #[test]
    fn a_token_verifies_only_against_the_cookie_it_came_from() {
        let fresh = CsrfToken::generate();
        assert_eq!(fresh.value().len(), TOKEN_LENGTH);
        assert!(
            !fresh.verify(fresh.value()),
            "not yet in the client's cookie"
        );
        let known = CsrfToken::from_cookie(fresh.value());
        assert!(known.verify(fresh.value()));
        assert!(!known.verify(""));
        assert!(!known.verify(&CsrfToken::generate().value));
    }
}
