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

/// Whether `base` is a valid base path: empty, or `/seg[/seg…]` with no trailing slash and only
/// unreserved characters (`A-Z a-z 0-9 . _ ~ -`) in its segments, none of them `.` or `..`.
pub fn is_valid(base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    let Some(rest) = base.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    })
}

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

/// Where to go after signing in: `next` when it is a path on this site or a URL on one of
/// `allowed_origins` (the services behind forward authentication), else the devices page (under
/// the base path). A local `next` is taken as it is: it comes from the browser's location, so it
/// already holds the base path.
pub fn safe_next(next: Option<&str>, allowed_origins: &[String]) -> String {
    let home = || url("/account/sessions");
    let Some(next) = next.map(str::trim).filter(|n| !n.is_empty()) else {
        return home();
    };
    // Nothing a header or a browser could reinterpret, and no backslash (browsers read `/\evil`
    // as another host).
    let plain =
        next.len() <= 2048 && next.chars().all(|c| c.is_ascii_graphic()) && !next.contains('\\');
    // One leading slash, then not a second one (`//evil` is another host).
    let local = next.starts_with('/') && !next.starts_with("//");
    if plain && (local || allowed_origin(next, allowed_origins)) {
        next.to_owned()
    } else {
        home()
    }
}

/// Whether `url` is on one of `origins` (each `scheme://host[:port]`, lower case): its scheme and
/// authority equal one exactly, and what follows starts a path, a query or a fragment. No user
/// information (`https://good@evil`) can pass, since `@` is no part of an allowed authority.
fn allowed_origin(url: &str, origins: &[String]) -> bool {
    let end = url
        .find("://")
        .map(|scheme| {
            let rest = &url[scheme + 3..];
            scheme + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len())
        })
        .unwrap_or(0);
    let origin = &url[..end];
    end > 0
        && origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::{is_valid, safe_next, with_base};

    #[test]
    fn base_paths_are_plain_absolute_paths() {
        for good in ["", "/sso", "/a/b", "/account-v2", "/x.y_z~1"] {
            assert!(is_valid(good), "{good:?}");
        }
        for bad in [
            "/", "sso", "/sso/", "//sso", "/a//b", "/s so", "/sso?x", "/sso#x", "/é", "/..",
            "/a/.", "/%2e",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn paths_go_under_the_base() {
        assert_eq!(with_base("", "/sign-in"), "/sign-in");
        assert_eq!(
            with_base("/sso", "/sign-in?next=%2F"),
            "/sso/sign-in?next=%2F"
        );
        assert_eq!(with_base("/sso", "/"), "/sso/");
    }

    /// `safe_next` with no other site allowed.
    fn local_next(next: Option<&str>) -> String {
        safe_next(next, &[])
    }

    #[test]
    fn next_urls_stay_on_this_site() {
        assert_eq!(local_next(Some("/account/password")), "/account/password");
        assert_eq!(local_next(Some("/a?b=c#d")), "/a?b=c#d");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/ok\r\nSet-Cookie: x=y",
            "/caf\u{e9}",
            "evil",
            "",
            "   ",
        ] {
            assert_eq!(local_next(Some(bad)), "/account/sessions", "{bad:?}");
        }
        assert_eq!(local_next(None), "/account/sessions");
    }

    #[test]
    fn next_urls_may_go_to_the_allowed_services_only() {
        let allowed = [
            "https://app.example.com".to_owned(),
            "http://127.0.0.1:8080".to_owned(),
        ];
        for good in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com/reports?q=1#top",
            "http://127.0.0.1:8080/private",
            "/account/password",
        ] {
            assert_eq!(safe_next(Some(good), &allowed), good, "{good:?}");
        }
        for bad in [
            "https://app.example.com.evil.net/",
            "https://app.example.com@evil.net/",
            "https://evil.net/?https://app.example.com",
            "http://app.example.com/",
            "http://127.0.0.1:80800/",
            "https://app.example.com:443/",
            "https://app.example.com/a b",
            "https://app.example.com\\@evil.net/",
            "javascript://app.example.com/%0aalert(1)",
        ] {
            assert_eq!(
                safe_next(Some(bad), &allowed),
                "/account/sessions",
                "{bad:?}"
            );
        }
    }
}
