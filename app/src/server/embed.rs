//! Embed mode, and the headers that decide who may frame our pages.
//!
//! - Every response says who may put it in a frame: `Content-Security-Policy: frame-ancestors
//!   'self'` plus the origins of `EMBED_ORIGINS`. With no such origin, `X-Frame-Options:
//!   SAMEORIGIN` says the same to browsers that predate `frame-ancestors`; with some, it is left
//!   out, since it cannot name them and would forbid what the policy allows.
//! - A page loaded in a frame (the browser says `Sec-Fetch-Dest: iframe`, or the URL has
//!   `?embed=1`) gets the minimal-chrome layout: no top bar and no footer, just the page.
//!
//! See the README's "Embedding" section for what cookies allow inside a frame.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::site::SiteSettings;

const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");

/// The `Content-Security-Policy` every response carries: who may frame it.
pub fn frame_ancestors(embed_origins: &[String]) -> String {
    let mut policy = "frame-ancestors 'self'".to_owned();
    for origin in embed_origins {
        policy.push(' ');
        policy.push_str(origin);
    }
    policy
}

/// Middleware: the framing and hygiene headers, on every response that has none of its own.
pub async fn headers(
    State(site): State<Arc<SiteSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        if let Ok(policy) = HeaderValue::from_str(&frame_ancestors(&site.embed_origins)) {
            headers.insert(CONTENT_SECURITY_POLICY, policy);
        }
    }
    if site.embed_origins.is_empty() {
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
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
    fn the_policy_names_ourselves_and_the_embedding_origins() {
        assert_eq!(frame_ancestors(&[]), "frame-ancestors 'self'");
        assert_eq!(
            frame_ancestors(&[
                "https://app.example.com".into(),
                "https://b.example.com".into()
            ]),
            "frame-ancestors 'self' https://app.example.com https://b.example.com"
        );
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
