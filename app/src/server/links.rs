//! The one-time links of mail (password reset, email verification and change, the answers to a
//! new sign-in alert): which page each opens, and how its token is taken out of the address bar.
//!
//! A link carries its token in the query (`/reset-password?token=…`): mail has no other way. The
//! first thing the server does with it ([`land`]) is move it into a short-lived HttpOnly cookie
//! (`link`, see [`super::cookies`]) and send the browser on to the same page without it (303). So
//! the token never sits in the address bar, the history, a `Referer` or the page, and the page
//! that finally uses it is a form the person submits (a POST with the anti-forgery token): mail
//! scanners that open every link in a message use nothing, and "This wasn't me" is never
//! answered by a robot. Request logs never show a query string (see [`super::telemetry`]).

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use console_sessions::accounts::TokenPurpose;

use super::cookies;

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Choose a new password (a reset token).
    ResetPassword,
    /// Confirm the current email address.
    VerifyEmail,
    /// Confirm a new email address (an email change).
    ConfirmEmail,
    /// "Yes, it was me", to a new sign-in alert.
    AlertItWasMe,
    /// "This wasn't me", to a new sign-in alert.
    AlertNotMe,
}

impl LinkKind {
    const ALL: [Self; 5] = [
        Self::ResetPassword,
        Self::VerifyEmail,
        Self::ConfirmEmail,
        Self::AlertItWasMe,
        Self::AlertNotMe,
    ];

    /// The page the link opens (a path of this site, without the base path).
    pub fn page(self) -> &'static str {
        match self {
            Self::ResetPassword => "/reset-password",
            Self::VerifyEmail => "/verify-email",
            Self::ConfirmEmail => "/confirm-email",
            Self::AlertItWasMe | Self::AlertNotMe => "/sign-in-alert",
        }
    }

    /// What the library accepts the link's token for.
    pub fn purpose(self) -> TokenPurpose {
        match self {
            Self::ResetPassword => TokenPurpose::PasswordReset,
            Self::VerifyEmail => TokenPurpose::EmailVerification,
            Self::ConfirmEmail => TokenPurpose::EmailChange,
            Self::AlertItWasMe => TokenPurpose::AlertConfirm,
            Self::AlertNotMe => TokenPurpose::AlertDeny,
        }
    }

    /// The name the link cookie gives it, and the `answer` of an alert link.
    fn tag(self) -> &'static str {
        match self {
            Self::ResetPassword => "reset",
            Self::VerifyEmail => "verify",
            Self::ConfirmEmail => "email",
            Self::AlertItWasMe => "yes",
            Self::AlertNotMe => "no",
        }
    }

    /// The kind a tag names (`reset`, `verify`, `email`, `yes`, `no`: what the link cookie and
    /// an alert link's `answer` say).
    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.tag() == tag)
    }

    /// Where the browser lands once the token is out of the address: the page, with an alert
    /// link's `answer` kept (a path of this site, without the base path).
    pub fn landing(self) -> String {
        match self {
            Self::AlertItWasMe | Self::AlertNotMe => {
                format!("{}?answer={}", self.page(), self.tag())
            }
            _ => self.page().to_owned(),
        }
    }

    /// The kind a page path and its `answer` name.
    fn of(page: &str, answer: Option<&str>) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| {
            kind.page() == page
                && match kind {
                    Self::AlertItWasMe | Self::AlertNotMe => answer == Some(kind.tag()),
                    _ => true,
                }
        })
    }

    /// The path and query to put in a mail for `token` (a path of this site; the mail adds the
    /// origin and the base path).
    pub fn link(self, token: &str) -> String {
        let landing = self.landing();
        let joint = if landing.contains('?') { '&' } else { '?' };
        format!("{landing}{joint}token={token}")
    }

    /// The link cookie's value for `token`.
    pub(crate) fn cookie_value(self, token: &str) -> String {
        format!("{}.{token}", self.tag())
    }

    /// The kind and token a link cookie's value holds.
    pub(crate) fn from_cookie_value(value: &str) -> Option<(Self, &str)> {
        let (tag, token) = value.split_once('.')?;
        let kind = Self::from_tag(tag)?;
        is_token(token).then_some((kind, token))
    }
}

/// Whether `text` can be a one-time token: 43 base64url characters (256 bits). Anything else is
/// not kept, so a crafted link cannot fill a cookie with text of its own.
fn is_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What [`land`] needs of the settings (not the whole `AppState`, which holds the mailer that
/// makes these links).
#[derive(Debug, Clone)]
pub struct Landing {
    /// The base path the pages are under.
    pub base_path: String,
    /// Whether cookies are configured Secure (the session cookie's setting).
    pub secure_cookies: bool,
}

/// Middleware: a `GET` of a link page with `token` in the query is answered 303 to the same page
/// without it, the token set in the link cookie (an alert's answer stays in the query, so the page
/// says which it is). A token that cannot be one is dropped the same way: the page then says the
/// link does not work.
pub async fn land(State(landing): State<Landing>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let base = landing.base_path.as_str();
    let Some(page) = request.uri().path().strip_prefix(base) else {
        return next.run(request).await;
    };
    let Some(query) = request.uri().query() else {
        return next.run(request).await;
    };
    let mut token = None;
    let mut answer = None;
    for (name, value) in url_pairs(query) {
        match name.as_str() {
            "token" => token = Some(value),
            "answer" => answer = Some(value),
            _ => {}
        }
    }
    let Some(token) = token else {
        return next.run(request).await;
    };
    let Some(kind) = LinkKind::of(page, answer.as_deref()) else {
        return next.run(request).await;
    };
    let security = cookies::Security::of(
        landing.secure_cookies,
        request.extensions().get::<console_sessions::Session>(),
    );
    let cookie = if is_token(&token) {
        cookies::link_cookie_header(&kind.cookie_value(&token), security)
    } else {
        cookies::link_cookie_removal(security)
    };
    let target = format!("{base}{}", kind.landing());
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&target) {
        headers.insert(LOCATION, location);
    }
    if let Some(cookie) = cookie {
        headers.append(SET_COOKIE, cookie);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `name=value` pairs of a query string, percent-decoded.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = urlencoding::decode(name).ok()?.into_owned();
        let value = urlencoding::decode(&value.replace('+', " "))
            .ok()?
            .into_owned();
        Some((name, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_9";

    #[test]
    fn every_link_lands_on_its_page_and_comes_back_from_its_cookie() {
        for kind in LinkKind::ALL {
            let link = kind.link(TOKEN);
            let (page, query) = link.split_once('?').unwrap();
            let answer = url_pairs(query)
                .find(|(name, _)| name == "answer")
                .map(|(_, value)| value);
            assert_eq!(LinkKind::of(page, answer.as_deref()), Some(kind), "{link}");
            assert_eq!(
                LinkKind::from_cookie_value(&kind.cookie_value(TOKEN)),
                Some((kind, TOKEN))
            );
        }
    }

    #[test]
    fn only_tokens_are_kept() {
        assert!(is_token(TOKEN));
        for bad in ["", "short", &format!("{TOKEN}x"), &TOKEN.replace('a', "<")] {
            assert!(!is_token(bad), "{bad}");
            assert_eq!(LinkKind::from_cookie_value(&format!("reset.{bad}")), None);
        }
        assert_eq!(LinkKind::from_cookie_value(&format!("other.{TOKEN}")), None);
        assert_eq!(LinkKind::of("/sign-in-alert", Some("maybe")), None);
        assert_eq!(LinkKind::of("/sign-in", None), None);
    }
}
