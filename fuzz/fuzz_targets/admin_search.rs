//! The staff search box: what it recognises (an address, a network, an address prefix, `ua:…`, a
//! person) and the SQL that becomes, on SQLite and PostgreSQL. Whatever staff type, the text is
//! bound, never written into the SQL, and an address prefix finds every address written that way.

#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use console_sessions::admin::SearchTerm;
use console_sessions::fuzzing::{admin_search_sql, ip_prefix_ranges};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    /// An address, and how much of its written form to type.
    address: IpAddr,
    typed: u8,
}

fn in_ranges(ip: IpAddr, ranges: &[(IpAddr, IpAddr)]) -> bool {
    ranges.iter().any(|&(first, last)| match (ip, first, last) {
        (IpAddr::V4(ip), IpAddr::V4(first), IpAddr::V4(last)) => first <= ip && ip <= last,
        (IpAddr::V6(ip), IpAddr::V6(first), IpAddr::V6(last)) => first <= ip && ip <= last,
        _ => false,
    })
}

fn check_sql(text: &str) {
    let Some((_, sqls)) = admin_search_sql(text) else {
        // Blank, or `ua:` with nothing after it.
        let text = text.trim();
        let blank = text.is_empty()
            || text
                .strip_prefix("ua:")
                .is_some_and(|r| r.trim().is_empty());
        assert!(blank, "{text:?} was taken as blank");
        return;
    };
    assert_eq!(sqls.len(), 2, "one query for SQLite, one for PostgreSQL");
    for sql in sqls {
        // The only literal the search writes is LIKE's escape character.
        let rest = sql.replace("ESCAPE '\\'", "");
        assert!(
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" _.,()=<>?$+|%".contains(&b)),
            "{text:?} reached the SQL: {sql}"
        );
    }
}

fuzz_target!(|input: Input| {
    check_sql(&input.text);
    if let Some(ranges) = ip_prefix_ranges(&input.text) {
        for &(first, last) in &ranges {
            assert_eq!(first.is_ipv4(), last.is_ipv4());
            assert!(first <= last, "{first} > {last}");
        }
    }

    // Typing the start of an address finds it.
    let written = input.address.to_string();
    let cut = usize::from(input.typed) % (written.len() + 1);
    let typed = &written[..cut];
    check_sql(typed);
    match SearchTerm::parse(typed) {
        Some(SearchTerm::Network(net)) => {
            // A whole address (`10.2.255.25` of `10.2.255.255` too) is a search for that one.
            let exact: IpAddr = typed
                .parse()
                .expect("only a whole address is a network here");
            assert!(net.contains(&exact), "{typed:?} → {net}");
            assert_eq!(
                net.contains(&input.address),
                exact == input.address,
                "{typed:?} → {net}"
            );
        }
        Some(SearchTerm::IpPrefix(prefix)) => {
            // Without ranges (`2001:db8::`), a LIKE on the written address finds it.
            if let Some(ranges) = ip_prefix_ranges(&prefix) {
                assert!(
                    in_ranges(input.address, &ranges),
                    "{typed:?} → {ranges:?} misses {written}"
                );
            }
        }
        Some(SearchTerm::Person(_)) | Some(SearchTerm::UserAgent(_)) | None => {
            // Only what cannot start an address's usual form: empty, or a lone group such as `2001`.
            assert!(
                !typed.contains('.') && !typed.contains(':'),
                "{typed:?} of {written} not read as an address"
            );
        }
    }
});
