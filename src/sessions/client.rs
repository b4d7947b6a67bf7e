//! Who is on the other end: the client address (from the socket, or from proxy headers when the peer is
//! a trusted proxy) and the user agent.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{HeaderMap, USER_AGENT};
use ipnet::IpNet;

use super::record::truncate_user_agent;
use crate::device::ClientHints;

/// What a request tells about its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The user agent, cut to 512 characters; `None` when missing or blank.
    pub user_agent: Option<String>,
    /// Whether the client reached us over HTTPS (a trusted proxy's `X-Forwarded-Proto: https`).
    pub https: bool,
    /// The User-Agent Client Hints the browser sent (empty when none).
    pub hints: ClientHints,
}

impl ClientInfo {
    /// Reads the client from the request headers and the socket peer.
    ///
    /// Proxy headers (`Forwarded`, then `X-Forwarded-For`) are used only when the peer is inside one of
    /// `trusted_proxies`; the client is then the rightmost address that is not a trusted proxy. A header
    /// with any invalid element is ignored as a whole, never half-trusted.
    pub fn from_headers(
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        trusted_proxies: &[IpNet],
    ) -> Self {
        let peer_ip = peer.map(|peer| peer.ip().to_canonical());
        let peer_trusted = peer_ip.is_some_and(|ip| is_trusted(ip, trusted_proxies));
        let ip = if peer_trusted {
            forwarded_chain(headers)
                .or_else(|| x_forwarded_for_chain(headers))
                .and_then(|chain| client_from_chain(&chain, trusted_proxies))
                .or(peer_ip)
        } else {
            peer_ip
        };
        let https = peer_trusted
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Self {
            ip,
            user_agent: user_agent(headers),
            https,
            hints: ClientHints::from_headers(headers),
        }
    }
}

/// The user agent as text: invalid UTF-8 is replaced, blank is `None`, long is cut.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(USER_AGENT)?;
    let text = String::from_utf8_lossy(raw.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| truncate_user_agent(text))
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// The rightmost address of the chain that is not a trusted proxy; the leftmost if all are.
fn client_from_chain(chain: &[IpAddr], trusted: &[IpNet]) -> Option<IpAddr> {
    chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(**ip, trusted))
        .or_else(|| chain.first())
        .copied()
}

/// Parses an address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn header_texts<'a>(headers: &'a HeaderMap, name: &str) -> Option<Vec<&'a str>> {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    if values.is_empty() {
        return None;
    }
    values.into_iter().map(|v| v.to_str().ok()).collect()
}

fn x_forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let texts = header_texts(headers, "x-forwarded-for")?;
    texts
        .iter()
        .flat_map(|text| text.split(','))
        .map(parse_node)
        .collect()
}

fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let texts = header_texts(headers, "forwarded")?;
    let mut chain = Vec::new();
    for element in texts.iter().flat_map(|text| text.split(',')) {
        let node = element.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim().eq_ignore_ascii_case("for").then_some(value)
        })?;
        chain.push(parse_node(node)?);
    }
    (!chain.is_empty()).then_some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    #[test]
    fn the_socket_address_is_used_when_the_peer_is_not_trusted() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let info = ClientInfo::from_headers(&h, peer("203.0.113.9"), &trusted());
        assert_eq!(info.ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_address_is_the_client() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")]);
        let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted());
        assert_eq!(info.ip, Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn forwarded_header_is_preferred_and_understands_ports_and_brackets() {
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        let info = ClientInfo::from_headers(&h, peer("10.1.1.1"), &trusted());
        assert_eq!(info.ip, Some("2001:db8:cafe::17".parse().unwrap()));
    }

    #[test]
    fn garbage_forwarded_for_is_ignored_not_trusted() {
        for garbage in ["not-an-ip", "1.2.3.4, <script>", "", "999.1.1.1", "unknown"] {
            let h = headers(&[("x-forwarded-for", garbage)]);
            let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted());
            assert_eq!(info.ip, Some("10.0.0.2".parse().unwrap()), "{garbage:?}");
        }
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        let info = ClientInfo::from_headers(&HeaderMap::new(), peer("::ffff:192.0.2.1"), &[]);
        assert_eq!(info.ip, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn user_agents_that_are_not_utf8_or_too_long_are_made_safe() {
        let mut h = HeaderMap::new();
        h.insert(
            USER_AGENT,
            HeaderValue::from_bytes(b"Mozilla/5.0 \xff\xfe").unwrap(),
        );
        assert_eq!(
            user_agent(&h).as_deref(),
            Some("Mozilla/5.0 \u{fffd}\u{fffd}")
        );
        h.insert(
            USER_AGENT,
            HeaderValue::from_str(&"x".repeat(10_240)).unwrap(),
        );
        assert_eq!(user_agent(&h).map(|ua| ua.len()), Some(512));
        h.insert(USER_AGENT, HeaderValue::from_static("   "));
        assert_eq!(user_agent(&h), None);
    }

    #[test]
    fn https_is_believed_only_from_a_trusted_proxy() {
        let h = headers(&[("x-forwarded-proto", "https")]);
        assert!(ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted()).https);
        assert!(!ClientInfo::from_headers(&h, peer("8.8.8.8"), &trusted()).https);
    }
}
