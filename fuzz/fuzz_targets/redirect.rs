//! Where a browser may be sent after signing in (`next`) and the base path a site is mounted
//! under. Judged by an independent WHATWG URL parser (the `url` crate, as browsers read URLs):
//! whatever `next` is accepted lands on this site or on an allowed service, never elsewhere.

#![no_main]

use arbitrary::Arbitrary;
use console_sessions::redirect::{is_valid_base_path, safe_next, MAX_NEXT_LEN};
use libfuzzer_sys::fuzz_target;
use url::Url;

#[derive(Debug, Arbitrary)]
struct Input {
    next: String,
    base: String,
}

const ALLOWED: [&str; 2] = ["https://app.example.com", "http://127.0.0.1:8080"];

fuzz_target!(|input: Input| {
    let ours = Url::parse("https://sso.example.org/account/").expect("our origin");
    let allowed: Vec<String> = ALLOWED.iter().map(|s| (*s).to_owned()).collect();
    if let Some(next) = safe_next(&input.next, &allowed) {
        assert!(next.len() <= MAX_NEXT_LEN && next.bytes().all(|b| b.is_ascii_graphic()));
        // Where a browser on our page really goes.
        let target = ours.join(next).expect("an accepted next is a URL");
        let origin = target.origin().ascii_serialization();
        assert!(
            origin == ours.origin().ascii_serialization() || ALLOWED.contains(&origin.as_str()),
            "{next:?} leads to {origin}"
        );
        assert!(
            target.username().is_empty() && target.password().is_none(),
            "{next:?}"
        );
    }

    if is_valid_base_path(&input.base) {
        // A base path needs no escaping, and pages under it stay under it.
        let page = format!("{}/sign-in", input.base);
        let target = ours
            .join(&page)
            .expect("a page under a valid base is a URL");
        assert_eq!(target.origin(), ours.origin());
        assert_eq!(
            target.path(),
            page,
            "{:?} was read as another path",
            input.base
        );
    }
});
