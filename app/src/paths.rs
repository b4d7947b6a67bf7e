//! The path the site is mounted under (`BASE_PATH`, such as `/sso`), the URLs built with it, and
//! the open-redirect guard for where to go after signing in ([`safe_next`]).
//!
//! Every URL the app writes into a page or a redirect goes through [`url`]: links (the router's
//! `<A href>` included: it leaves a path starting with `/` as it is), form actions, server-function
//! URLs, redirects, the stylesheet, the favicon and the hydration scripts.
//!
//! The server knows the base from its settings (the [`BasePath`] the server puts in the Leptos
//! context beside its state); the browser learns it from the `<meta name="base-path">` of the
//! server-rendered shell before it hydrates ([`init_client`]).
//!
//! A leaf: it depends on nothing else of the app, so the server, the components and the pages can
//! all use it without reaching into each other.

#[cfg(feature = "hydrate")]
use leptos::prelude::document;

/// The base path of the site being served (`SiteSettings::base_path`), in the Leptos context on the
/// server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasePath(pub String);

/// The `name` of the `<meta>` that carries the base path to the browser.
pub const META_NAME: &str = "base-path";

#[cfg(not(feature = "ssr"))]
static CLIENT_BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The base path: empty, or `/seg[/seg…]` with no trailing slash.
pub fn base_path() -> String {
    #[cfg(feature = "ssr")]
    {
        leptos::reactive::owner::with_context::<BasePath, _>(|base| base.0.clone())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        CLIENT_BASE.get().cloned().unwrap_or_default()
    }
}

/// `path` (a path of this site starting with `/`, query allowed) under the base path.
pub fn url(path: &str) -> String {
    with_base(&base_path(), path)
}

/// `path` under `base`: `/sso` + `/sign-in` is `/sso/sign-in`; the home page `/` is `/sso/`.
pub fn with_base(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

/// Whether `base` is a valid base path (the library's [`is_valid_base_path`]).
pub use console_sessions::redirect::is_valid_base_path as is_valid;

/// In the browser, before hydrating: reads the base path from the shell's `<meta>`, and makes the
/// server functions be called under it.
#[cfg(feature = "hydrate")]
pub fn init_client() {
    let base = document()
        .query_selector(&format!("meta[name=\"{META_NAME}\"]"))
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .filter(|base| is_valid(base))
        .unwrap_or_default();
    if !base.is_empty() {
        // Once per page load: the string lives as long as the page.
        let leaked: &'static str = Box::leak(base.clone().into_boxed_str());
        let _ = leptos::server_fn::client::try_set_server_url(leaked);
    }
    let _ = CLIENT_BASE.set(base);
}

/// Where to go after signing in: `next` when the library's [`safe_next`](console_sessions::redirect::safe_next)
/// allows it (a path on this site, or a URL on one of `allowed_origins`: the services behind
/// forward authentication), else the devices page (under the base path).
pub fn safe_next(next: Option<&str>, allowed_origins: &[String]) -> String {
    next.and_then(|next| console_sessions::redirect::safe_next(next, allowed_origins))
        .map_or_else(|| url("/account/sessions"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::{safe_next, with_base};

    #[test]
    fn paths_go_under_the_base() {
        assert_eq!(with_base("", "/sign-in"), "/sign-in");
        assert_eq!(
            with_base("/sso", "/sign-in?next=%2F"),
            "/sso/sign-in?next=%2F"
        );
        assert_eq!(with_base("/sso", "/"), "/sso/");
    }

    /// The rules themselves are the library's (`console_sessions::redirect`, tested and fuzzed
    /// there); the app adds the way home.
    #[test]
    fn a_refused_or_missing_next_goes_to_the_devices_page() {
        let allowed = ["https://app.example.com".to_owned()];
        assert_eq!(
            safe_next(Some("/account/password"), &allowed),
            "/account/password"
        );
        assert_eq!(
            safe_next(Some("https://app.example.com/x"), &allowed),
            "https://app.example.com/x"
        );
        for refused in [
            None,
            Some(""),
            Some("//evil.example"),
            Some("https://evil.example/"),
        ] {
            assert_eq!(
                safe_next(refused, &allowed),
                "/account/sessions",
                "{refused:?}"
            );
        }
    }
}
