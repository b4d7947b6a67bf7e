//! The cookies of the account forms, besides the session's and the anti-forgery token's:
//!
//! - the **device cookie**: a browser that signed in successfully gets one (a random 256-bit token,
//!   stored as its SHA-256, bound to the account, kept a year). Presented at the next sign-in, it
//!   lets the owner's known browser past the lock that strangers' failed guesses put on the account
//!   (see `console_sessions::accounts::Accounts::sign_in`). It opens nothing by itself.
//! - the **flash cookie**: what a person typed into a form (never a password) while the browser is
//!   sent back to the form after a failure without JavaScript. It lives 60 seconds, is sent only to
//!   the form's own page, and that page clears it as it reads it: typed names never go into a URL,
//!   where proxies' logs and the browser's history would keep them.
//! - the **link cookie**: the token of a one-time link from a mail, moved out of the address bar
//!   the moment the link is opened (see [`super::links`]), until the person submits the page's
//!   form (30 minutes at most). One at a time: opening another link replaces it; using it clears it.
//!
//! All are HttpOnly and SameSite=Lax, and Secure when the session cookie is ([`Security`]).

use axum::http::{HeaderMap, HeaderValue};
use console_sessions::accounts::{DeviceToken, DEVICE_LIFETIME};
use console_sessions::sessions::cookie_value;
use cookie::{Cookie, SameSite};

/// How secure the cookies are, as the session cookie's: the secure names (`__Host-`,
/// `__Secure-`) follow the configuration, so one deployment always uses the same names; the
/// `Secure` attribute is also set for a request a trusted proxy says came over https.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Security {
    /// Cookies are configured Secure (`SESSION_COOKIE_SECURE`, or an https public origin).
    pub configured: bool,
    /// This request came over https (a trusted proxy's `X-Forwarded-Proto`).
    pub https: bool,
}

impl Security {
    /// Configured Secure or not (the session cookie's setting), for a request of `session` (if it
    /// has one).
    pub fn of(configured: bool, session: Option<&console_sessions::Session>) -> Self {
        Self {
            configured,
            https: session.is_some_and(|session| session.client().https),
        }
    }

    fn attribute(self) -> bool {
        self.configured || self.https
    }
}

/// How long typed fields wait for their page.
const FLASH_LIFETIME: time::Duration = time::Duration::seconds(60);

/// Most bytes of a flash cookie's value; fields that would make it longer are not kept (browsers
/// drop cookies over 4 kB).
const MAX_FLASH_BYTES: usize = 3000;

/// The device cookie's name: `__Host-device` when cookies are Secure (bound to this very host),
/// else `device`.
fn device_name(secure: bool) -> &'static str {
    if secure {
        "__Host-device"
    } else {
        "device"
    }
}

/// The flash cookie's name. Its path is its page's, so no `__Host-` prefix (that needs `Path=/`).
fn flash_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-flash"
    } else {
        "flash"
    }
}

/// How long a one-time link's token waits in the link cookie for its form to be submitted.
const LINK_LIFETIME: time::Duration = time::Duration::minutes(30);

/// The link cookie's name: `__Host-link` when cookies are Secure, else `link`.
fn link_name(secure: bool) -> &'static str {
    if secure {
        "__Host-link"
    } else {
        "link"
    }
}

/// The `Set-Cookie` value of a link cookie holding `value` (see [`super::links`]).
pub fn link_cookie_header(value: &str, security: Security) -> Option<HeaderValue> {
    let cookie = Cookie::build((link_name(security.configured), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(security.attribute())
        .max_age(LINK_LIFETIME)
        .build();
    header(&cookie)
}

/// The `Set-Cookie` value that removes the link cookie.
pub fn link_cookie_removal(security: Security) -> Option<HeaderValue> {
    let cookie = Cookie::build((link_name(security.configured), ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(security.attribute())
        .max_age(time::Duration::ZERO)
        .build();
    header(&cookie)
}

/// The link cookie the request presented, if any.
pub fn link_cookie(headers: &HeaderMap, security: Security) -> Option<&str> {
    cookie_value(headers, link_name(security.configured))
}

/// The device cookie the request presented, if any.
pub fn device_cookie(headers: &HeaderMap, security: Security) -> Option<&str> {
    cookie_value(headers, device_name(security.configured))
}

/// The `Set-Cookie` value of a new device cookie.
pub fn device_cookie_header(token: &DeviceToken, security: Security) -> Option<HeaderValue> {
    let lifetime = i64::try_from(DEVICE_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((device_name(security.configured), token.expose()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(security.attribute())
        .max_age(time::Duration::seconds(lifetime))
        .build();
    header(&cookie)
}

/// The `Set-Cookie` value of a flash cookie holding `fields` for the page at `path` (the full path,
/// base path included). Empty and overlong fields are left out; `None` when none is left.
pub fn flash_header(
    path: &str,
    fields: &[(&str, &str)],
    security: Security,
) -> Option<HeaderValue> {
    let mut value = String::new();
    for (name, field) in fields.iter().filter(|(_, field)| !field.is_empty()) {
        let pair = format!("{}={}", name, urlencoding::encode(field));
        if value.len() + pair.len() + 1 > MAX_FLASH_BYTES {
            continue;
        }
        if !value.is_empty() {
            value.push('&');
        }
        value.push_str(&pair);
    }
    if value.is_empty() {
        return None;
    }
    let cookie = Cookie::build((flash_name(security.configured), value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(path.to_owned())
        .secure(security.attribute())
        .max_age(FLASH_LIFETIME)
        .build();
    header(&cookie)
}

/// A flash cookie, as a page reads it.
#[derive(Debug, Default)]
pub struct Flash {
    /// The fields typed, by name.
    pub fields: Vec<(String, String)>,
    /// The `Set-Cookie` value that removes the cookie: it is read once.
    pub removal: Option<HeaderValue>,
}

/// The flash cookie the request presented for the page at `path`, if any.
pub fn take_flash(request_headers: &HeaderMap, path: &str, security: Security) -> Option<Flash> {
    let value = cookie_value(request_headers, flash_name(security.configured))?;
    let removal = Cookie::build((flash_name(security.configured), ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(path.to_owned())
        .secure(security.attribute())
        .max_age(time::Duration::ZERO)
        .build();
    let fields = value
        .split('&')
        .filter_map(|pair| {
            let (name, field) = pair.split_once('=')?;
            let field = urlencoding::decode(field).ok()?;
            Some((name.to_owned(), field.into_owned()))
        })
        .collect();
    Some(Flash {
        fields,
        removal: header(&removal),
    })
}

fn header(cookie: &Cookie<'_>) -> Option<HeaderValue> {
    let value = HeaderValue::from_str(&cookie.to_string()).ok();
    if value.is_none() {
        tracing::error!(cookie = cookie.name(), "a cookie could not be set");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashed_fields_come_back_once_and_passwords_are_never_asked_for() {
        let set = flash_header(
            "/sign-in",
            &[("username", "Zoë & co=1"), ("email", "")],
            Security::default(),
        );
        let cookie = set
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        for part in ["HttpOnly", "SameSite=Lax", "Path=/sign-in", "Max-Age=60"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let mut request = HeaderMap::new();
        let pair = cookie.split(';').next().unwrap_or_default();
        request.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(pair).unwrap_or(HeaderValue::from_static("")),
        );
        let Flash { fields, removal } =
            take_flash(&request, "/sign-in", Security::default()).unwrap_or_default();
        assert_eq!(
            fields,
            vec![("username".to_owned(), "Zoë & co=1".to_owned())]
        );
        let removal = removal
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(removal.contains("Max-Age=0") && removal.contains("Path=/sign-in"));
        assert!(take_flash(&HeaderMap::new(), "/sign-in", Security::default()).is_none());
    }

    #[test]
    fn behind_an_https_proxy_the_cookies_are_secure_under_their_configured_names() {
        let https = Security {
            configured: false,
            https: true,
        };
        let set = flash_header("/sign-in", &[("username", "zoë")], https)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(set.starts_with("flash=") && set.contains("Secure"), "{set}");
        let configured = Security {
            configured: true,
            https: false,
        };
        let set = flash_header("/sign-in", &[("username", "zoë")], configured)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(
            set.starts_with("__Secure-flash=") && set.contains("Secure"),
            "{set}"
        );
    }
}
