//! Where a browser may be sent: the open-redirect guard for a `next` parameter ([`safe_next`]) and
//! the shape of the path a site is mounted under ([`is_valid_base_path`]).
//!
//! Both read text an attacker writes (a link's `?next=`, a setting), and both answers end up in a
//! `Location` header or a page, so they accept only plain forms and refuse everything else rather
//! than repair it. Like [`refusal`](crate::refusal), this module needs no feature and no
//! dependency: a browser (WebAssembly) build of an application can use the very same rules.
//!
//! ```
//! use console_sessions::redirect::{is_valid_base_path, safe_next};
//!
//! let services = ["https://wiki.example.com".to_owned()];
//! assert_eq!(safe_next("/account/password", &services), Some("/account/password"));
//! assert_eq!(safe_next("https://wiki.example.com/page", &services), Some("https://wiki.example.com/page"));
//! assert_eq!(safe_next("//evil.example", &services), None);
//! assert_eq!(safe_next("https://wiki.example.com@evil.example/", &services), None);
//!
//! assert!(is_valid_base_path("/sso") && is_valid_base_path(""));
//! assert!(!is_valid_base_path("/sso/") && !is_valid_base_path("/a/../b"));
//! ```

/// The longest `next` accepted, in bytes.
pub const MAX_NEXT_LEN: usize = 2048;

/// `next` (trimmed) when it is safe to send a browser to: a path on this site (`/…`, but not `//…`,
/// which is another host) or a URL on one of `allowed_origins` (each `scheme://host[:port]`, as
/// written in settings; compared ignoring case). `None` for anything else, including blank text.
///
/// Only visible ASCII is accepted, at most [`MAX_NEXT_LEN`] bytes, and never a backslash (browsers
/// read `/\evil` as another host): nothing a header or a browser could reinterpret. A local `next`
/// is returned as it is; it usually comes from the browser's own location, base path included.
pub fn safe_next<'a>(next: &'a str, allowed_origins: &[String]) -> Option<&'a str> {
    let next = next.trim();
    let plain = !next.is_empty()
        && next.len() <= MAX_NEXT_LEN
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !next.contains('\\');
    let local = next.starts_with('/') && !next.starts_with("//");
    (plain && (local || on_allowed_origin(next, allowed_origins))).then_some(next)
}

/// Whether `url` is on one of `origins`: its scheme and authority equal one exactly (ignoring case),
/// and what follows starts a path, a query or a fragment. No user information
/// (`https://good@evil`) can pass, since `@` is no part of an allowed authority.
fn on_allowed_origin(url: &str, origins: &[String]) -> bool {
    let Some(scheme_end) = url.find("://") else {
        return false;
    };
    let rest = &url[scheme_end + 3..];
    let end = scheme_end + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &url[..end];
    origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
}

/// Whether `base` is a valid base path: empty, or `/seg[/seg…]` with no trailing slash and only
/// unreserved characters (`A-Z a-z 0-9 . _ ~ -`) in its segments, none of them `.` or `..`. Such
/// a path needs no escaping anywhere (URLs, headers, HTML attributes, cookie paths) and means the
/// same to every URL parser.
pub fn is_valid_base_path(base: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::{is_valid_base_path, safe_next};

    #[test]
    fn base_paths_are_plain_absolute_paths() {
        for good in ["", "/sso", "/a/b", "/account-v2", "/x.y_z~1"] {
            assert!(is_valid_base_path(good), "{good:?}");
        }
        for bad in [
            "/", "sso", "/sso/", "//sso", "/a//b", "/s so", "/sso?x", "/sso#x", "/é", "/..",
            "/a/.", "/%2e",
        ] {
            assert!(!is_valid_base_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn next_urls_stay_on_this_site() {
        assert_eq!(
            safe_next("/account/password", &[]),
            Some("/account/password")
        );
        assert_eq!(safe_next(" /a?b=c#d ", &[]), Some("/a?b=c#d"));
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
            assert_eq!(safe_next(bad, &[]), None, "{bad:?}");
        }
        assert_eq!(
            safe_next(&format!("/{}", "a".repeat(2047)), &[]).map(str::len),
            Some(2048)
        );
        assert_eq!(safe_next(&format!("/{}", "a".repeat(2048)), &[]), None);
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
            "https://app.example.com?q=1",
            "http://127.0.0.1:8080/private",
            "/account/password",
        ] {
            assert_eq!(safe_next(good, &allowed), Some(good), "{good:?}");
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
            assert_eq!(safe_next(bad, &allowed), None, "{bad:?}");
        }
    }
}
