//! Where a session's IP address is: "City, Country" from a MaxMind GeoIP2/GeoLite2 City or Country
//! database ([`GeoIp`], the `geo` feature), "Local network" for private and reserved addresses,
//! "Unknown location" otherwise.
//!
//! The types a session record keeps ([`Place`]) and the judgement of local addresses need no
//! database and are always built; the lookup lives in `lookup.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

#[cfg(feature = "geo")]
mod lookup;

#[cfg(feature = "geo")]
pub use lookup::{GeoIp, GeoIpError, GeoIpOptions};

/// What [`GeoIp::location`] says for private, loopback, link-local and other reserved addresses.
pub const LOCAL_NETWORK: &str = "Local network";

/// What [`GeoIp::location`] says when the database has nothing, or there is no database.
pub const UNKNOWN_LOCATION: &str = "Unknown location";

/// Everything the database says about an address: the fields django-qsessions exposes plus the
/// coordinates. Names are English.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocationInfo {
    /// City name, e.g. "London".
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code, e.g. "GB".
    pub country_code: Option<String>,
    /// Country name, e.g. "United Kingdom".
    pub country_name: Option<String>,
    /// Two-letter continent code, e.g. "EU".
    pub continent_code: Option<String>,
    /// Continent name, e.g. "Europe".
    pub continent_name: Option<String>,
    /// IANA time zone, e.g. "Europe/London".
    pub time_zone: Option<String>,
    /// Approximate latitude.
    pub latitude: Option<f64>,
    /// Approximate longitude.
    pub longitude: Option<f64>,
    /// Radius in kilometres around the coordinates within which the address likely is.
    pub accuracy_radius: Option<u16>,
}

impl LocationInfo {
    /// "City, Country", or "Country", or `None` when neither is known.
    pub fn label(&self) -> Option<String> {
        match (&self.city, &self.country_name) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (None, Some(country)) => Some(country.clone()),
            _ => None,
        }
    }
}

/// The compact location a session row stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Place {
    /// ISO 3166-1 alpha-2 country code, e.g. "GB".
    pub country_code: Option<String>,
    /// English city name, e.g. "London".
    pub city: Option<String>,
}

impl Place {
    /// "London, GB", "GB" or "London"; `None` when nothing is known.
    ///
    /// ```
    /// use console_sessions::geo::Place;
    ///
    /// let place = Place { country_code: Some("GB".into()), city: Some("London".into()) };
    /// assert_eq!(place.label().as_deref(), Some("London, GB"));
    /// assert_eq!(Place::default().label(), None);
    /// ```
    pub fn label(&self) -> Option<String> {
        match (&self.city, &self.country_code) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (None, Some(country)) => Some(country.clone()),
            (Some(city), None) => Some(city.clone()),
            (None, None) => None,
        }
    }

    /// Whether neither country nor city is known.
    pub fn is_empty(&self) -> bool {
        self.country_code.is_none() && self.city.is_none()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4
/// clients) become plain IPv4, so they share cache entries and the database's IPv4 data.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether an address is not on the public internet: private, loopback, link-local, unique-local,
/// CGNAT, documentation, benchmarking, multicast, unspecified or otherwise reserved, for IPv4, IPv6
/// and IPv4-mapped IPv6.
pub fn is_local_network(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => is_local_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    const RESERVED: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),       // "this network", including 0.0.0.0
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, including broadcast
    ];
    RESERVED
        .iter()
        .any(|(network, prefix)| in_v4(ip, *network, *prefix))
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    const RESERVED: [([u16; 8], u32); 12] = [
        ([0, 0, 0, 0, 0, 0, 0, 0], 96), // unspecified, loopback, IPv4-compatible
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard-only
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48), // benchmarking
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), // ORCHID
        ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), // ORCHIDv2
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // deprecated site-local
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
    ];
    RESERVED
        .iter()
        .any(|(network, prefix)| in_v6(ip, *network, *prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_as_ipv4() {
        assert!(is_local_network(ip("::ffff:192.168.1.1")));
        assert!(!is_local_network(ip("::ffff:81.2.69.160")));
        assert_eq!(canonical(ip("::ffff:81.2.69.160")), ip("81.2.69.160"));
    }

    #[test]
    fn reserved_ranges_stop_at_their_prefix() {
        assert!(is_local_network(ip("100.127.255.255")));
        assert!(!is_local_network(ip("100.128.0.0")));
        assert!(is_local_network(ip("172.31.255.255")));
        assert!(!is_local_network(ip("172.32.0.0")));
        assert!(is_local_network(ip("2001:db8:ffff::1")));
        assert!(!is_local_network(ip("2001:db9::1")));
        assert!(!is_local_network(ip("2a00:1450:4009:81f::200e")));
    }

    #[test]
    fn labels_fall_back_from_city_to_country() {
        let mut info = LocationInfo {
            city: Some("Berlin".into()),
            country_name: Some("Germany".into()),
            ..LocationInfo::default()
        };
        assert_eq!(info.label().as_deref(), Some("Berlin, Germany"));
        info.city = None;
        assert_eq!(info.label().as_deref(), Some("Germany"));
        info.country_name = None;
        assert_eq!(info.label(), None);
    }
}
