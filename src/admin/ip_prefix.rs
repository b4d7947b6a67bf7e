//! Address prefixes as typed in the search box (`81.2.`, `2001:db8:`), as the address ranges they
//! stand for.

use std::net::IpAddr;

/// The address ranges whose usual written form starts with `prefix`: `81.2.` is 81.2.0.0/16,
/// `81.2` is also 81.20–29 and 81.200–255, `2001:db8:` is 2001:db8::/32. `None` when the prefix
/// cannot be read that way (`::` in it or at its start, or an embedded IPv4 address); an impossible prefix such as
/// `300.` gives no ranges.
pub(crate) fn prefix_ranges(prefix: &str) -> Option<Vec<(IpAddr, IpAddr)>> {
    if prefix.contains(':') {
        if prefix.contains("::") || prefix.contains('.') || prefix.starts_with(':') {
            return None;
        }
        let parts: Vec<&str> = prefix.split(':').collect();
        let (partial, complete) = parts.split_last()?;
        if parts.len() > 8 {
            return Some(Vec::new());
        }
        let mut base: u128 = 0;
        for (index, group) in complete.iter().enumerate() {
            let Some(value) = (group.len() <= 4)
                .then(|| u16::from_str_radix(group, 16).ok())
                .flatten()
            else {
                return Some(Vec::new());
            };
            base |= u128::from(value) << (16 * (7 - index));
        }
        let position = complete.len();
        let groups = digit_ranges(partial, 16, 0xffff)?;
        return Some(
            groups
                .into_iter()
                .map(|(low, high)| {
                    let shift = 16 * (7 - position as u32);
                    let rest = if shift == 0 { 0 } else { (1u128 << shift) - 1 };
                    let first = base | (u128::from(low) << shift);
                    let last = base | (u128::from(high) << shift) | rest;
                    (
                        IpAddr::from(std::net::Ipv6Addr::from(first)),
                        IpAddr::from(std::net::Ipv6Addr::from(last)),
                    )
                })
                .collect(),
        );
    }
    let parts: Vec<&str> = prefix.split('.').collect();
    let (partial, complete) = parts.split_last()?;
    if parts.len() > 4 {
        return Some(Vec::new());
    }
    let mut base: u32 = 0;
    for (index, octet) in complete.iter().enumerate() {
        let Some(value) = (octet.len() <= 3 && octet.bytes().all(|b| b.is_ascii_digit()))
            .then(|| octet.parse::<u8>().ok())
            .flatten()
        else {
            return Some(Vec::new());
        };
        base |= u32::from(value) << (8 * (3 - index));
    }
    let shift = 8 * (3 - complete.len() as u32);
    let rest = if shift == 0 { 0 } else { (1u32 << shift) - 1 };
    let octets = digit_ranges(partial, 10, 0xff)?;
    Some(
        octets
            .into_iter()
            .map(|(low, high)| {
                let first = base | (low << shift);
                let last = base | (high << shift) | rest;
                (
                    IpAddr::from(std::net::Ipv4Addr::from(first)),
                    IpAddr::from(std::net::Ipv4Addr::from(last)),
                )
            })
            .collect(),
    )
}

/// The values up to `max` whose digits in `radix` (no leading zeros) start with `digits`; all of
/// them when `digits` is empty. A leading zero (`0d` in IPv6) is read as the padded form, `0d00`–
/// `0dff`. `None` when `digits` is not a number in that radix.
fn digit_ranges(digits: &str, radix: u32, max: u32) -> Option<Vec<(u32, u32)>> {
    if digits.is_empty() {
        return Some(vec![(0, max)]);
    }
    let width = if radix == 16 { 4 } else { 3 };
    if digits.len() > width {
        return Some(Vec::new());
    }
    let value = u32::from_str_radix(digits, radix).ok()?;
    if digits.len() > 1 && digits.starts_with('0') {
        let scale = radix.pow((width - digits.len()) as u32);
        let low = value * scale;
        return Some(if low > max {
            Vec::new()
        } else {
            vec![(low, (low + scale - 1).min(max))]
        });
    }
    if value == 0 {
        return Some(vec![(0, 0)]);
    }
    let mut ranges = Vec::new();
    let mut scale = 1;
    for _ in digits.len()..=width {
        let low = value * scale;
        if low > max {
            break;
        }
        ranges.push((low, (low + scale - 1).min(max)));
        scale *= radix;
    }
    Some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(first: &str, last: &str) -> (IpAddr, IpAddr) {
        (first.parse().unwrap(), last.parse().unwrap())
    }

    #[test]
    fn address_prefixes_become_the_ranges_they_are_written_as() {
        assert_eq!(
            prefix_ranges("81.2."),
            Some(vec![v4("81.2.0.0", "81.2.255.255")])
        );
        assert_eq!(
            prefix_ranges("81.2"),
            Some(vec![
                v4("81.2.0.0", "81.2.255.255"),
                v4("81.20.0.0", "81.29.255.255"),
                v4("81.200.0.0", "81.255.255.255"),
            ])
        );
        assert_eq!(
            prefix_ranges("10.1.2.25"),
            Some(vec![
                v4("10.1.2.25", "10.1.2.25"),
                v4("10.1.2.250", "10.1.2.255")
            ])
        );
        assert_eq!(
            prefix_ranges("10.0"),
            Some(vec![v4("10.0.0.0", "10.0.255.255")])
        );
        assert_eq!(prefix_ranges("10.1.2.3."), Some(vec![]));
        assert_eq!(prefix_ranges("300."), Some(vec![]));
        assert_eq!(
            prefix_ranges("10.3"),
            Some(vec![
                v4("10.3.0.0", "10.3.255.255"),
                v4("10.30.0.0", "10.39.255.255"),
            ])
        );
        assert_eq!(
            prefix_ranges("2001:db8:"),
            Some(vec![v4(
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
            )])
        );
        assert_eq!(
            prefix_ranges("2001:db"),
            Some(vec![
                v4("2001:db::", "2001:db:ffff:ffff:ffff:ffff:ffff:ffff"),
                v4("2001:db0::", "2001:dbf:ffff:ffff:ffff:ffff:ffff:ffff"),
                v4("2001:db00::", "2001:dbff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ])
        );
        assert_eq!(
            prefix_ranges("fe80:0d"),
            Some(vec![v4(
                "fe80:d00::",
                "fe80:dff:ffff:ffff:ffff:ffff:ffff:ffff"
            )])
        );
        assert_eq!(prefix_ranges("2001:db8::"), None);
        assert_eq!(prefix_ranges("::ffff:1.2"), None);
        // The start of `::1` (found by fuzzing): left to the written form too.
        assert_eq!(prefix_ranges(":"), None);
    }
}
