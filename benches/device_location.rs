//! What recording a session's device and location costs.
//!
//! `cargo bench -p console-sessions --bench device_location`
// `criterion_group!` defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

#[path = "../tests/support/geo_fixture.rs"]
mod geo_fixture;

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};

use console_sessions::device::{ClientHints, DeviceSummary};
use console_sessions::geo::GeoIp;
use criterion::{criterion_group, criterion_main, Criterion};

const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn hints() -> ClientHints {
    ClientHints::from_header_values(
        Some(r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
        Some("\"Windows\""),
        Some("\"15.0.0\""),
        Some("?0"),
    )
}

/// A different address of the Berlin network on every call, so each lookup misses the cache.
fn fresh_address(counter: &mut u64) -> IpAddr {
    *counter += 1;
    let low = *counter;
    IpAddr::V6(Ipv6Addr::new(
        0x2a02,
        0x8108,
        (low >> 48) as u16,
        (low >> 32) as u16,
        (low >> 16) as u16,
        low as u16,
        0,
        1,
    ))
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("GeoLite2-City.mmdb");
    geo_fixture::write_city(&path);
    let geo = GeoIp::open(&path).expect("fixture database opens");
    let hints = hints();
    let london: IpAddr = "81.2.69.160".parse().expect("address");

    c.bench_function("device summary from user agent", |b| {
        b.iter(|| DeviceSummary::from_user_agent(black_box(USER_AGENT)))
    });
    c.bench_function("device summary from user agent and client hints", |b| {
        b.iter(|| DeviceSummary::from_request(black_box(Some(USER_AGENT)), black_box(&hints)))
    });

    let mut counter = 0;
    c.bench_function("location lookup uncached", |b| {
        b.iter(|| geo.location(black_box(fresh_address(&mut counter))))
    });
    c.bench_function("location lookup cached", |b| {
        b.iter(|| geo.location(black_box(london)))
    });

    let mut counter = 1 << 40;
    c.bench_function("device summary + location per session", |b| {
        b.iter(|| {
            let ip = fresh_address(&mut counter);
            let device = DeviceSummary::from_request(Some(black_box(USER_AGENT)), &hints);
            let location = geo.location(ip);
            let place = geo.place(ip);
            (device, location, place)
        })
    });
}

criterion_group!(device_location, benches);
criterion_main!(device_location);
