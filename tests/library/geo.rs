//! Location lookups against small MaxMind databases built at run time.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use console_sessions::geo::{
    is_local_network, GeoIp, GeoIpError, GeoIpOptions, LocationInfo, Place, LOCAL_NETWORK,
    UNKNOWN_LOCATION,
};

use crate::geo_fixture;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn city_db(dir: &Path) -> PathBuf {
    let path = dir.join("GeoLite2-City.mmdb");
    geo_fixture::write_city(&path);
    path
}

fn country_db(dir: &Path) -> PathBuf {
    let path = dir.join("GeoLite2-Country.mmdb");
    geo_fixture::write_country(&path);
    path
}

fn open_city() -> (tempfile::TempDir, GeoIp) {
    let dir = tempfile::tempdir().expect("tempdir");
    let geo = GeoIp::open(city_db(dir.path())).expect("city database opens");
    (dir, geo)
}

fn no_reload_wait() -> GeoIpOptions {
    GeoIpOptions {
        reload_interval: Duration::ZERO,
        ..GeoIpOptions::default()
    }
}

#[test]
fn ipv4_address_in_a_city_network_gives_city_and_country() {
    let (_dir, geo) = open_city();
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
    assert_eq!(geo.database_type().as_deref(), Some("GeoLite2-City"));
}

#[test]
fn narrower_network_inside_a_wider_one_wins() {
    let (_dir, geo) = open_city();
    assert_eq!(geo.location(ip("81.2.69.200")), "Kent, United Kingdom");
    assert_eq!(geo.location(ip("81.2.69.191")), "London, United Kingdom");
}

#[test]
fn ipv6_address_in_a_city_network_gives_city_and_country() {
    let (_dir, geo) = open_city();
    assert_eq!(geo.location(ip("2a02:8108:1234::1")), "Berlin, Germany");
    assert_eq!(geo.location(ip("2a02:8109:ffff::1")), "Munich, Germany");
}

#[test]
fn ipv4_mapped_ipv6_address_is_looked_up_as_ipv4() {
    let (_dir, geo) = open_city();
    assert_eq!(
        geo.location(ip("::ffff:81.2.69.160")),
        "London, United Kingdom"
    );
}

#[test]
fn network_with_country_but_no_city_falls_back_to_country() {
    let (_dir, geo) = open_city();
    assert_eq!(geo.location(ip("89.160.20.120")), "Sweden");
}

#[test]
fn city_named_only_in_german_falls_back_to_country() {
    let (_dir, geo) = open_city();
    assert_eq!(geo.location(ip("216.160.83.60")), "United States");
    let info = geo
        .location_info(ip("216.160.83.60"))
        .expect("known network");
    assert_eq!(info.city, None);
    assert_eq!(info.country_name.as_deref(), Some("United States"));
}

#[test]
fn public_address_missing_from_the_database_is_unknown_location() {
    let (_dir, geo) = open_city();
    for address in [
        "8.8.8.8",
        "1.1.1.1",
        "2001:4860:4860::8888",
        "::ffff:9.9.9.9",
    ] {
        assert_eq!(geo.location(ip(address)), UNKNOWN_LOCATION, "{address}");
        assert_eq!(geo.location_info(ip(address)), None, "{address}");
        assert_eq!(geo.place(ip(address)), Place::default(), "{address}");
    }
}

#[test]
fn private_and_reserved_addresses_are_local_network() {
    let (_dir, geo) = open_city();
    let local = [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "127.255.255.255",
        "169.254.10.20",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:10.1.2.3",
        "::ffff:127.0.0.1",
        "::ffff:192.168.1.1",
        "64:ff9b:1::1",
        "100::1",
        "2001:2::1",
        "2001:10::1",
        "2001:20::1",
        "2001:db8::1",
        "3fff::1",
        "fc00::1",
        "fd12:3456:789a::1",
        "fe80::1",
        "fe80::1ff:fe23:4567:890a",
        "fec0::1",
        "ff02::1",
    ];
    for address in local {
        assert!(is_local_network(ip(address)), "{address}");
        assert_eq!(geo.location(ip(address)), LOCAL_NETWORK, "{address}");
        assert_eq!(geo.location_info(ip(address)), None, "{address}");
        assert!(geo.place(ip(address)).is_empty(), "{address}");
    }
}

#[test]
fn addresses_next_to_reserved_ranges_are_public() {
    for address in [
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2001:db9::1",
        "2a00:1450:4009:81f::200e",
        "fbff::1",
        "fe00::1",
    ] {
        assert!(!is_local_network(ip(address)), "{address}");
    }
}

#[test]
fn location_info_has_the_django_qsessions_fields_and_coordinates() {
    let (_dir, geo) = open_city();
    let info = geo.location_info(ip("81.2.69.160")).expect("known network");
    assert_eq!(
        info,
        LocationInfo {
            city: Some("London".into()),
            country_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            continent_code: Some("EU".into()),
            continent_name: Some("Europe".into()),
            time_zone: Some("Europe/London".into()),
            latitude: Some(51.5142),
            longitude: Some(-0.0931),
            accuracy_radius: Some(10),
        }
    );
    let json = serde_json::to_value(&info).expect("serialise");
    assert_eq!(json["country_code"], "GB");
    let back: LocationInfo = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, info);
}

#[test]
fn place_stores_country_code_and_english_city() {
    let (_dir, geo) = open_city();
    assert_eq!(
        geo.place(ip("2a02:8109::5")),
        Place {
            country_code: Some("DE".into()),
            city: Some("Munich".into()),
        }
    );
    assert_eq!(
        geo.place(ip("89.160.20.113")),
        Place {
            country_code: Some("SE".into()),
            city: None,
        }
    );
}

#[test]
fn country_database_gives_country_names_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let geo = GeoIp::open(country_db(dir.path())).expect("country database opens");
    assert_eq!(geo.location(ip("81.2.69.160")), "United Kingdom");
    assert_eq!(geo.location(ip("2a02:8109::1")), "Germany");
    let info = geo
        .location_info(ip("216.160.83.60"))
        .expect("known network");
    assert_eq!(info.country_code.as_deref(), Some("US"));
    assert_eq!(info.continent_name.as_deref(), Some("North America"));
    assert_eq!(info.city, None);
    assert_eq!(info.latitude, None);
}

#[test]
fn folder_with_city_and_country_databases_prefers_city() {
    let dir = tempfile::tempdir().expect("tempdir");
    country_db(dir.path());
    let city = city_db(dir.path());
    std::fs::write(dir.path().join("README.txt"), "not a database").expect("write");
    let geo = GeoIp::open(dir.path()).expect("folder opens");
    assert_eq!(geo.database_path(), Some(city.as_path()));
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
}

#[test]
fn folder_with_only_a_country_database_uses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let country = country_db(dir.path());
    let geo = GeoIp::open(dir.path()).expect("folder opens");
    assert_eq!(geo.database_path(), Some(country.as_path()));
    assert_eq!(geo.location(ip("81.2.69.160")), "United Kingdom");
}

#[test]
fn folder_without_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    let error = GeoIp::open(dir.path()).expect_err("no database");
    assert!(
        matches!(error, GeoIpError::NoDatabaseInFolder { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("no GeoIP2/GeoLite2"), "{error}");
}

#[test]
fn missing_file_is_a_not_found_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = GeoIp::open(dir.path().join("GeoLite2-City.mmdb")).expect_err("missing");
    assert!(matches!(error, GeoIpError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[test]
fn corrupt_file_is_a_corrupt_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("GeoLite2-City.mmdb");
    std::fs::write(&garbage, b"this is not a maxmind database").expect("write");
    let error = GeoIp::open(&garbage).expect_err("corrupt");
    assert!(matches!(error, GeoIpError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("corrupt"), "{error}");

    let truncated = dir.path().join("truncated.mmdb");
    let bytes = geo_fixture::build("GeoLite2-City", &geo_fixture::city_entries());
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let error = GeoIp::open(&truncated).expect_err("truncated");
    assert!(matches!(error, GeoIpError::Corrupt { .. }), "{error:?}");
}

#[test]
fn database_without_locations_is_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("GeoLite2-ASN.mmdb");
    geo_fixture::write(&path, "GeoLite2-ASN", &geo_fixture::country_entries());
    let error = GeoIp::open(&path).expect_err("unsupported");
    assert!(matches!(error, GeoIpError::Unsupported { .. }), "{error:?}");
}

#[test]
fn disabled_geoip_knows_only_local_addresses() {
    let geo = GeoIp::disabled();
    assert!(!geo.is_enabled());
    assert_eq!(geo.database_path(), None);
    assert_eq!(geo.location(ip("81.2.69.160")), UNKNOWN_LOCATION);
    assert_eq!(geo.location_info(ip("81.2.69.160")), None);
    assert!(geo.place(ip("81.2.69.160")).is_empty());
    assert_eq!(geo.location(ip("192.168.1.1")), LOCAL_NETWORK);
    assert!(!geo.reload_if_changed());
}

#[test]
fn repeated_lookups_are_served_from_the_cache_consistently() {
    let (_dir, geo) = open_city();
    let clone = geo.clone();
    for _ in 0..3 {
        assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
        assert_eq!(clone.location(ip("81.2.69.160")), "London, United Kingdom");
    }
}

#[test]
fn geoip_is_send_sync_and_usable_from_many_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<GeoIp>();
    let (_dir, geo) = open_city();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let geo = geo.clone();
            std::thread::spawn(move || geo.location(ip("2a02:8108::1")))
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), "Berlin, Germany");
    }
}

/// Does what `geoipupdate` does: write the new database beside the old one, then rename it over.
fn replace_database(path: &Path, entries: &[(&str, geo_fixture::Record)]) {
    let temporary = path.with_extension("mmdb.temp");
    geo_fixture::write(&temporary, "GeoLite2-City", entries);
    std::fs::rename(&temporary, path).expect("rename over the old database");
}

#[test]
fn replaced_database_file_is_picked_up_after_the_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = city_db(dir.path());
    let geo = GeoIp::open_with(&path, no_reload_wait()).expect("opens");
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
    assert_eq!(geo.location(ip("89.160.20.120")), "Sweden");

    replace_database(&path, &geo_fixture::replacement_city_entries());

    assert_eq!(
        geo.location(ip("81.2.69.160")),
        "Manchester, United Kingdom"
    );
    assert_eq!(geo.location(ip("2a02:8108::1")), "Hamburg, Germany");
    // The cache was cleared: a network only the old database had is gone.
    assert_eq!(geo.location(ip("89.160.20.120")), UNKNOWN_LOCATION);
}

#[test]
fn replaced_database_is_not_seen_before_the_interval_elapses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = city_db(dir.path());
    let options = GeoIpOptions {
        reload_interval: Duration::from_secs(3600),
        ..GeoIpOptions::default()
    };
    let geo = GeoIp::open_with(&path, options).expect("opens");
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
    replace_database(&path, &geo_fixture::replacement_city_entries());
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
    // An explicit check does not wait for the interval.
    assert!(geo.reload_if_changed());
    assert_eq!(
        geo.location(ip("81.2.69.160")),
        "Manchester, United Kingdom"
    );
}

#[test]
fn corrupt_replacement_keeps_serving_the_old_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = city_db(dir.path());
    let geo = GeoIp::open_with(&path, no_reload_wait()).expect("opens");
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");

    let temporary = dir.path().join("broken.temp");
    std::fs::write(&temporary, b"half a download").expect("write");
    std::fs::rename(&temporary, &path).expect("rename");
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
    assert_eq!(geo.location(ip("2a02:8109::1")), "Munich, Germany");

    // A later good replacement is still picked up.
    replace_database(&path, &geo_fixture::replacement_city_entries());
    assert_eq!(
        geo.location(ip("81.2.69.160")),
        "Manchester, United Kingdom"
    );
}

#[test]
fn deleted_database_file_keeps_serving_the_old_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = city_db(dir.path());
    let geo = GeoIp::open_with(&path, no_reload_wait()).expect("opens");
    std::fs::remove_file(&path).expect("remove");
    assert_eq!(geo.location(ip("81.2.69.160")), "London, United Kingdom");
}
