//! Who is on the other end: the client address (from the socket, or from the one proxy header that
//! is believed when the peer is a trusted proxy) and the user agent.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::header::{HeaderMap, USER_AGENT};
use ipnet::IpNet;

use super::record::truncate_user_agent;
use crate::device::ClientHints;

/// The one header a trusted proxy reports the client address in.
///
/// Exactly one is believed and the others are ignored: nginx, Traefik and Caddy pass on whatever a
/// client sent in the headers they do not set themselves (`Forwarded`, above all), so a second header
/// would let the client choose its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default; what most proxies write).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
    /// `X-Real-IP: client`: one address, set by the proxy.
    XRealIp,
}

impl ProxyHeader {
    /// The header's name, lower case, as configured.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
            Self::XRealIp => "x-real-ip",
        }
    }

    /// The chain of entries the header holds, leftmost (farthest from us) first, each the address
    /// it names or `None` when it names none that can be read (garbage, `unknown`, an obfuscated
    /// RFC 7239 identifier); `None` when the header is missing.
    fn chain(self, headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
        match self {
            Self::XForwardedFor => x_forwarded_for_chain(headers),
            Self::Forwarded => forwarded_chain(headers),
            Self::XRealIp => x_real_ip(headers).map(|ip| vec![Some(ip)]),
        }
    }
}

impl FromStr for ProxyHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            "x-real-ip" => Ok(Self::XRealIp),
            other => Err(format!(
                "unknown proxy header {other:?}: use x-forwarded-for, forwarded or x-real-ip"
            )),
        }
    }
}

impl std::fmt::Display for ProxyHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// Only when the peer is inside one of `trusted_proxies` is a proxy header read, and then only
    /// `proxy_header`: the others are ignored entirely, whatever they say. In its chain the client is
    /// found by walking from the right, the entry our peer wrote, past every trusted proxy (each
    /// trusted proxy's entry names who connected to it): the first address that is not a trusted
    /// proxy is the client. When every entry is a trusted proxy, the request began inside the
    /// trusted networks, where a client cannot be told from a proxy; the client is then the
    /// rightmost entry, the one address our peer itself is sure of, and never an entry left of it,
    /// which the client could have written. An entry that is not an address stops the walk in the
    /// same way: the client is then the rightmost entry (or the peer, if that one is unreadable),
    /// so sending garbage in the header hides nobody behind our proxy.
    pub fn from_headers(
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        trusted_proxies: &[IpNet],
        proxy_header: ProxyHeader,
    ) -> Self {
        let peer_ip = peer.map(|peer| peer.ip().to_canonical());
        let peer_trusted = peer_ip.is_some_and(|ip| is_trusted(ip, trusted_proxies));
        let ip = if peer_trusted {
            proxy_header
                .chain(headers)
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

/// Walking from the right, the first address of the chain that is not a trusted proxy; when the
/// walk meets an unreadable entry or the chain's end first, the rightmost entry (the one our peer
/// wrote). See [`ClientInfo::from_headers`].
fn client_from_chain(chain: &[Option<IpAddr>], trusted: &[IpNet]) -> Option<IpAddr> {
    for entry in chain.iter().rev() {
        match entry {
            Some(ip) if is_trusted(*ip, trusted) => continue,
            Some(ip) => return Some(*ip),
            None => break,
        }
    }
    chain.last().copied().flatten()
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

/// The entries of a list header (`X-Forwarded-For`, `Forwarded`): every comma-separated element of
/// every value, read by `entry`; a value that is not text is one unreadable entry. `None` when the
/// header is missing.
fn chain_of(
    headers: &HeaderMap,
    name: &str,
    entry: impl Fn(&str) -> Option<IpAddr>,
) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => text.split(',').map(&entry).collect(),
                Err(_) => vec![None],
            })
            .collect(),
    )
}

fn x_forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    chain_of(headers, "x-forwarded-for", parse_node)
}

/// `X-Real-IP`: one address in one header. Two headers or a list mean the proxy added to what the
/// client sent rather than replacing it; which one is the proxy's cannot be known, so none is used.
fn x_real_ip(headers: &HeaderMap) -> Option<IpAddr> {
    match header_texts(headers, "x-real-ip")?.as_slice() {
        [text] if !text.contains(',') => parse_node(text),
        _ => None,
    }
}

/// RFC 7239: each element's `for=` node (an element without one is unreadable).
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    chain_of(headers, "forwarded", |element| {
        element
            .split(';')
            .find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then_some(value)
            })
            .and_then(parse_node)
    })
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

    const XFF: ProxyHeader = ProxyHeader::XForwardedFor;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 4000))
    }

    #[test]
    fn the_socket_address_is_used_when_the_peer_is_not_trusted() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let info = ClientInfo::from_headers(&h, peer("203.0.113.9"), &trusted(), XFF);
        assert_eq!(info.ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_address_is_the_client() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")]);
        let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), XFF);
        assert_eq!(info.ip, Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn the_forwarded_header_understands_ports_and_brackets() {
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        let info =
            ClientInfo::from_headers(&h, peer("10.1.1.1"), &trusted(), ProxyHeader::Forwarded);
        assert_eq!(info.ip, Some("2001:db8:cafe::17".parse().unwrap()));
    }

    #[test]
    fn a_forged_forwarded_header_is_ignored() {
        // What nginx passes on when it sets X-Forwarded-For and leaves the client's Forwarded alone.
        let h = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), XFF);
        assert_eq!(info.ip, Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn only_the_configured_header_is_believed() {
        let real = "198.51.100.7";
        let forged = "6.6.6.6";
        for header in [
            ProxyHeader::XForwardedFor,
            ProxyHeader::Forwarded,
            ProxyHeader::XRealIp,
        ] {
            // The configured header names the real client; the two others, a forged one.
            let mut h = HeaderMap::new();
            for name in ["x-forwarded-for", "forwarded", "x-real-ip"] {
                let ip = if name == header.name() { real } else { forged };
                let value = match name {
                    "forwarded" => format!("for={ip}"),
                    _ => ip.to_owned(),
                };
                h.append(name, HeaderValue::from_str(&value).unwrap());
            }
            let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), header);
            assert_eq!(info.ip, Some(real.parse().unwrap()), "{header}");

            // The configured header missing: the others are not a fallback.
            h.remove(header.name());
            let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), header);
            assert_eq!(info.ip, Some("10.0.0.2".parse().unwrap()), "{header}");
        }
    }

    #[test]
    fn when_every_hop_is_trusted_no_entry_the_client_could_write_is_taken() {
        // A client inside the trusted networks, behind a proxy that appends: its own claim is on the
        // left, the address the proxy saw on the right.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.3")]);
        let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), XFF);
        assert_eq!(info.ip, Some("10.0.0.3".parse().unwrap()));
        let h = headers(&[("forwarded", "for=10.9.9.9, for=10.0.0.3")]);
        let info =
            ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), ProxyHeader::Forwarded);
        assert_eq!(info.ip, Some("10.0.0.3".parse().unwrap()));
    }

    #[test]
    fn x_real_ip_is_one_address_set_by_the_proxy() {
        let real_ip = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for value in values {
                h.append("x-real-ip", HeaderValue::from_str(value).unwrap());
            }
            ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), ProxyHeader::XRealIp).ip
        };
        assert_eq!(
            real_ip(&["203.0.113.5"]),
            Some("203.0.113.5".parse().unwrap())
        );
        assert_eq!(
            real_ip(&[" [2001:db8::5] "]),
            Some("2001:db8::5".parse().unwrap())
        );
        // Appended to the client's own, or not an address: the peer is the client.
        let peer_ip = Some("10.0.0.2".parse().unwrap());
        let cases: [&[&str]; 4] = [
            &["6.6.6.6", "203.0.113.5"],
            &["6.6.6.6, 203.0.113.5"],
            &["unknown"],
            &[""],
        ];
        for values in cases {
            assert_eq!(real_ip(values), peer_ip, "{values:?}");
        }
    }

    #[test]
    fn proxy_header_names_are_read_case_insensitively() {
        for header in [
            ProxyHeader::XForwardedFor,
            ProxyHeader::Forwarded,
            ProxyHeader::XRealIp,
        ] {
            assert_eq!(header.name().parse::<ProxyHeader>(), Ok(header));
            let upper = header.to_string().to_ascii_uppercase();
            assert_eq!(upper.parse::<ProxyHeader>(), Ok(header));
        }
        assert_eq!(ProxyHeader::default(), ProxyHeader::XForwardedFor);
        assert!("x-client-ip".parse::<ProxyHeader>().is_err());
    }

    #[test]
    fn garbage_left_of_what_our_proxy_appended_hides_nobody() {
        // A client behind an appending proxy sends garbage; the proxy adds the real address.
        let forged = [
            ("x-forwarded-for", "x, 203.0.113.7", XFF, "203.0.113.7"),
            (
                "x-forwarded-for",
                "<script>, 203.0.113.7, 10.0.0.3",
                XFF,
                "203.0.113.7",
            ),
            ("x-forwarded-for", "junk, 10.0.0.9", XFF, "10.0.0.9"),
            (
                "forwarded",
                "for=unknown, for=198.51.100.4",
                ProxyHeader::Forwarded,
                "198.51.100.4",
            ),
            (
                "forwarded",
                "for=_hidden;proto=https, for=10.0.0.9",
                ProxyHeader::Forwarded,
                "10.0.0.9",
            ),
            (
                "forwarded",
                "proto=https, for=198.51.100.4",
                ProxyHeader::Forwarded,
                "198.51.100.4",
            ),
            (
                "forwarded",
                "for=_hidden",
                ProxyHeader::Forwarded,
                "10.0.0.2",
            ),
        ];
        for (name, value, header, client) in forged {
            let h = headers(&[(name, value)]);
            let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), header);
            assert_eq!(info.ip, Some(client.parse().unwrap()), "{name}: {value}");
        }
    }

    #[test]
    fn garbage_forwarded_for_is_ignored_not_trusted() {
        for garbage in ["not-an-ip", "1.2.3.4, <script>", "", "999.1.1.1", "unknown"] {
            let h = headers(&[("x-forwarded-for", garbage)]);
            let info = ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), XFF);
            assert_eq!(info.ip, Some("10.0.0.2".parse().unwrap()), "{garbage:?}");
        }
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        let info = ClientInfo::from_headers(&HeaderMap::new(), peer("::ffff:192.0.2.1"), &[], XFF);
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
        assert!(ClientInfo::from_headers(&h, peer("10.0.0.2"), &trusted(), XFF).https);
        assert!(!ClientInfo::from_headers(&h, peer("8.8.8.8"), &trusted(), XFF).https);
    }
}
