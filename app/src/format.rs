//! Words for times, places and devices, the same on the server and in the browser (so hydration
//! finds exactly the text the server sent).

use time::{format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime};

const ABSOLUTE: &[BorrowedFormatItem<'static>] =
    format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC");

/// "24 Nov 2026, 10:15 UTC"; an empty string for a time out of range.
pub fn absolute(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(ABSOLUTE).ok())
        .unwrap_or_default()
}

/// RFC 3339, for `<time datetime>`.
pub fn machine(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// "just now", "5 minutes ago", "3 days ago", "in 12 days".
pub fn relative(now: i64, then: i64) -> String {
    let seconds = (then - now) / 1000;
    let future = seconds > 0;
    let seconds = seconds.unsigned_abs();
    if seconds < 60 {
        return if future {
            "in under a minute"
        } else {
            "just now"
        }
        .to_owned();
    }
    let (count, unit) = match seconds {
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s if s < 86_400 * 365 * 2 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let amount = if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// The flag emoji of an ISO 3166-1 alpha-2 country code; empty for anything else.
pub fn flag(country_code: &str) -> String {
    if country_code.len() != 2 || !country_code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return String::new();
    }
    country_code
        .to_ascii_uppercase()
        .chars()
        .filter_map(|c| char::from_u32(0x1F1E6 + (c as u32 - 'A' as u32)))
        .collect()
}

/// A person's word for a device category key.
pub fn category(key: &str) -> &'static str {
    match key {
        "desktop" => "Computer",
        "smartphone" => "Phone or tablet",
        "mobilephone" => "Mobile phone",
        "appliance" => "TV, console or appliance",
        "crawler" => "Bot",
        _ => "Unknown device",
    }
}

/// "30 minutes", "1 day", "7 days": how long a link works, in its largest whole unit.
pub fn lifetime(seconds: u64) -> String {
    let (n, unit) = match seconds.max(1) {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 => (s.div_ceil(60), "minute"),
        s => (s, "second"),
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    count(n, unit, &format!("{unit}s"))
}

/// "1 session", "3 sessions".
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_795_000_000_000;
        assert_eq!(relative(now, now - 10_000), "just now");
        assert_eq!(relative(now, now - 5 * 60_000), "5 minutes ago");
        assert_eq!(relative(now, now - 3_600_000), "1 hour ago");
        assert_eq!(relative(now, now - 3 * 86_400_000), "3 days ago");
        assert_eq!(relative(now, now + 12 * 86_400_000), "in 12 days");
        assert_eq!(absolute(0), "1 Jan 1970, 00:00 UTC");
        assert_eq!(machine(0), "1970-01-01T00:00:00Z");
        assert_eq!(absolute(i64::MAX), "");
    }

    #[test]
    fn lifetimes_read_in_their_largest_unit() {
        assert_eq!(lifetime(30 * 60), "30 minutes");
        assert_eq!(lifetime(24 * 3600), "1 day");
        assert_eq!(lifetime(7 * 24 * 3600), "7 days");
        assert_eq!(lifetime(2 * 3600), "2 hours");
        assert_eq!(lifetime(90), "2 minutes");
        assert_eq!(lifetime(0), "1 second");
    }

    #[test]
    fn flags_come_from_country_codes() {
        assert_eq!(flag("GB"), "🇬🇧");
        assert_eq!(flag("se"), "🇸🇪");
        assert_eq!(flag("G"), "");
        assert_eq!(flag("1A"), "");
    }
}
