//! The client address of a request: the socket peer, or, from a trusted proxy, the one configured
//! proxy header (`X-Forwarded-For`, `Forwarded` or `X-Real-IP`). Any header bytes, any peer, any
//! trusted networks: nothing panics, and a client can never choose its own address.

#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use console_sessions::sessions::{ClientInfo, ProxyHeader};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    peer: Option<(IpAddr, u16)>,
    trusted: Vec<(IpAddr, u8)>,
    proxy_header: u8,
    headers: Vec<(u8, Vec<u8>)>,
}

const NAMES: [&str; 6] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-proto",
    "user-agent",
    "sec-ch-ua",
];

fuzz_target!(|input: Input| {
    let trusted: Vec<IpNet> = input
        .trusted
        .iter()
        .filter_map(|&(ip, len)| IpNet::new(ip, len).ok())
        .collect();
    let mut headers = HeaderMap::new();
    for (name, bytes) in &input.headers {
        let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(bytes) {
            headers.append(name, value);
        }
    }
    let proxy_header = match input.proxy_header % 3 {
        0 => ProxyHeader::XForwardedFor,
        1 => ProxyHeader::Forwarded,
        _ => ProxyHeader::XRealIp,
    };
    let peer = input.peer.map(|(ip, port)| SocketAddr::new(ip, port));
    let client = ClientInfo::from_headers(&headers, peer, &trusted, proxy_header);

    let peer_ip = peer.map(|p| p.ip().to_canonical());
    let peer_trusted = peer_ip.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip)));
    if !peer_trusted {
        // Headers from anyone but a trusted proxy are never believed.
        assert_eq!(client.ip, peer_ip);
        assert!(!client.https);
    }
    // With no peer there is no address at all: headers alone never make one.
    if peer.is_none() {
        assert_eq!(client.ip, None);
    }
    // Without the configured header, a trusted proxy's request is the proxy's own.
    if headers.get(proxy_header.name()).is_none() {
        assert_eq!(client.ip, peer_ip);
    }
    if let Some(ua) = &client.user_agent {
        assert!(!ua.is_empty() && ua.chars().count() <= 512);
    }
});
