//! Embed mode, and the security headers of every response.
//!
//! - Every response carries a `Content-Security-Policy` ([`content_security_policy`]): our own
//!   origin for everything, scripts only from our files and the page's inline scripts that carry
//!   its nonce (hydration, streamed resources), plugins none, no `<base>`, forms posted only to us
//!   (and, for the redirect after sign-in, to `REDIRECT_ORIGINS`).
//! - It also says who may put the response in a frame ([`Framing`]): the account pages
//!   (`/account/…`, and the `/sign-in` and `/sign-up` a framed page may lead to) our own origin and
//!   `EMBED_ORIGINS`; `/admin/…` nobody; everything else only ourselves. `X-Frame-Options` says
//!   the same to browsers that predate `frame-ancestors` where it can (it cannot name origins).
//! - `Strict-Transport-Security` when the public origin is `https://`.
//! - A page loaded in a frame (the browser says `Sec-Fetch-Dest: iframe`, or the URL has
//!   `?embed=1`) gets the minimal-chrome layout: no top bar and no footer, just the page.
//!
//! See the README's "Embedding" and "Security" sections.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::site::SiteSettings;

const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");

/// The header a rendered page hands its script nonce to [`headers`] in. Taken off the response
/// before it leaves.
pub const NONCE_HEADER: &str = "x-console-sessions-nonce";

/// Who may frame a response, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Our own origin and `EMBED_ORIGINS`: the account pages.
    Embeddable,
    /// Only our own origin.
    SameOrigin,
    /// Nobody: the staff pages.
    Never,
}

impl Framing {
    /// The rule for a path of the site (the base path taken off).
    pub fn of(path: &str) -> Self {
        if path == "/admin" || path.starts_with("/admin/") {
            Self::Never
        } else if path.starts_with("/account/") || matches!(path, "/sign-in" | "/sign-up") {
            Self::Embeddable
        } else {
            Self::SameOrigin
        }
    }
}

/// The `Content-Security-Policy` of a response: `nonce` is the page's script nonce (none for
/// what is not a page), `framing` who may frame it.
pub fn content_security_policy(
    site: &SiteSettings,
    framing: Framing,
    nonce: Option<&str>,
) -> String {
    let mut policy = String::from("default-src 'self'; script-src 'self'");
    if let Some(nonce) = nonce {
        policy.push_str(" 'nonce-");
        policy.push_str(nonce);
        policy.push('\'');
    }
    // The front end is WebAssembly, which browsers compile only with this.
    policy.push_str(
        " 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
         base-uri 'none'; form-action 'self'",
    );
    for origin in &site.redirect_origins {
        policy.push(' ');
        policy.push_str(origin);
    }
    policy.push_str("; frame-ancestors ");
    match framing {
        Framing::Never => policy.push_str("'none'"),
        Framing::SameOrigin => policy.push_str("'self'"),
        Framing::Embeddable => {
            policy.push_str("'self'");
            for origin in &site.embed_origins {
                policy.push(' ');
                policy.push_str(origin);
            }
        }
    }
    policy
}

/// Middleware: the security headers, on every response.
pub async fn headers(
    State(site): State<Arc<SiteSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let framing = Framing::of(path.strip_prefix(site.base_path.as_str()).unwrap_or(path));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let nonce = headers.remove(NONCE_HEADER);
    let nonce = nonce.as_ref().and_then(|value| value.to_str().ok());
    let policy = content_security_policy(&site, framing, nonce);
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(CONTENT_SECURITY_POLICY, policy);
    }
    match framing {
        Framing::Never => {
            headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        Framing::Embeddable if !site.embed_origins.is_empty() => {}
        _ => {
            headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
        }
    }
    if site
        .public_origin
        .as_deref()
        .is_some_and(super::site::is_https)
    {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Public ids appear in our URLs: other sites need not see more than our origin.
    headers.insert(
        REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    response
}

/// Whether the page is being loaded inside a frame (or asked for as if it were, with `?embed=1`).
pub fn is_embedded(parts: &Parts) -> bool {
    let framed = parts
        .headers
        .get("sec-fetch-dest")
        .is_some_and(|dest| dest.as_bytes().eq_ignore_ascii_case(b"iframe"));
    let asked = parts.uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| matches!(pair, "embed=1" | "embed=true"))
    });
    framed || asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_limits_scripts_to_the_nonce_and_framing_to_the_account_pages() {
        let site = SiteSettings {
            embed_origins: vec![
                "https://app.example.com".into(),
                "https://b.example.com".into(),
            ],
            redirect_origins: vec!["https://wiki.example.com".into()],
            ..SiteSettings::default()
        };
        let page = content_security_policy(&site, Framing::Embeddable, Some("abc123"));
        for part in [
            "default-src 'self'",
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self' https://wiki.example.com;",
            "frame-ancestors 'self' https://app.example.com https://b.example.com",
        ] {
            assert!(page.contains(part), "{part} missing from {page}");
        }
        assert!(!page.contains("unsafe-inline"), "{page}");
        let api = content_security_policy(&site, Framing::SameOrigin, None);
        assert!(
            api.contains("script-src 'self' 'wasm-unsafe-eval';"),
            "{api}"
        );
        assert!(api.ends_with("frame-ancestors 'self'"), "{api}");
        let admin = content_security_policy(&site, Framing::Never, Some("n"));
        assert!(admin.ends_with("frame-ancestors 'none'"), "{admin}");
    }

    #[test]
    fn only_account_pages_may_be_framed_and_admin_pages_never() {
        assert_eq!(Framing::of("/account/sessions"), Framing::Embeddable);
        assert_eq!(Framing::of("/account/password"), Framing::Embeddable);
        assert_eq!(Framing::of("/sign-in"), Framing::Embeddable);
        assert_eq!(Framing::of("/admin"), Framing::Never);
        assert_eq!(Framing::of("/admin/sessions/abc"), Framing::Never);
        assert_eq!(Framing::of("/"), Framing::SameOrigin);
        assert_eq!(Framing::of("/administrator"), Framing::SameOrigin);
        assert_eq!(Framing::of("/api/account/viewer"), Framing::SameOrigin);
    }

    #[test]
    fn frames_are_told_by_the_browser_or_the_query() {
        let parts = |uri: &str, dest: Option<&'static str>| {
            let mut request = axum::http::Request::builder().uri(uri);
            if let Some(dest) = dest {
                request = request.header("sec-fetch-dest", dest);
            }
            request.body(()).unwrap().into_parts().0
        };
        assert!(is_embedded(&parts("/account/sessions", Some("iframe"))));
        assert!(is_embedded(&parts("/account/sessions?embed=1", None)));
        assert!(is_embedded(&parts("/a?x=2&embed=true", Some("document"))));
        assert!(!is_embedded(&parts("/account/sessions", Some("document"))));
        assert!(!is_embedded(&parts("/account/sessions?embed=0", None)));
        assert!(!is_embedded(&parts("/account/sessions?noembed=1", None)));
    }
}
