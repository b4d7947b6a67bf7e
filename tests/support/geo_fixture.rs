//! Builds small GeoIP2-shaped `.mmdb` databases at run time with maxminddb-writer, so tests and
//! benches look addresses up in a real MaxMind DB without shipping GeoLite2 data.
//! Shared by `tests/library/` and `benches/device_location.rs` through `#[path]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde::Serialize;

/// Names by language code ("en", "de").
pub type Names = BTreeMap<String, String>;

/// Builds a names map from `(language, name)` pairs.
pub fn names(pairs: &[(&str, &str)]) -> Names {
    pairs
        .iter()
        .map(|(lang, name)| ((*lang).to_owned(), (*name).to_owned()))
        .collect()
}

/// A GeoIP2 City/Country record; absent parts are left out, as in MaxMind's data.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<City>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continent: Option<Continent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Clone, Debug, Serialize)]
pub struct City {
    pub geoname_id: u32,
    pub names: Names,
}

#[derive(Clone, Debug, Serialize)]
pub struct Continent {
    pub code: String,
    pub geoname_id: u32,
    pub names: Names,
}

#[derive(Clone, Debug, Serialize)]
pub struct Country {
    pub geoname_id: u32,
    pub iso_code: String,
    pub names: Names,
}

#[derive(Clone, Debug, Serialize)]
pub struct Location {
    pub accuracy_radius: u16,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: String,
}

fn europe() -> Continent {
    Continent {
        code: "EU".into(),
        geoname_id: 6_255_148,
        names: names(&[("en", "Europe"), ("de", "Europa")]),
    }
}

fn north_america() -> Continent {
    Continent {
        code: "NA".into(),
        geoname_id: 6_255_149,
        names: names(&[("en", "North America"), ("de", "Nordamerika")]),
    }
}

fn country(iso: &str, en: &str, de: &str, geoname_id: u32) -> Country {
    Country {
        geoname_id,
        iso_code: iso.into(),
        names: names(&[("en", en), ("de", de)]),
    }
}

fn united_kingdom() -> Country {
    country("GB", "United Kingdom", "Vereinigtes Königreich", 2_635_167)
}

fn germany() -> Country {
    country("DE", "Germany", "Deutschland", 2_921_044)
}

fn sweden() -> Country {
    country("SE", "Sweden", "Schweden", 2_661_886)
}

fn united_states() -> Country {
    country("US", "United States", "Vereinigte Staaten", 6_252_001)
}

fn city_record(
    city_names: &[(&str, &str)],
    continent: Continent,
    country: Country,
    location: Location,
) -> Record {
    Record {
        city: Some(City {
            geoname_id: 1,
            names: names(city_names),
        }),
        continent: Some(continent),
        registered_country: Some(country.clone()),
        country: Some(country),
        location: Some(location),
    }
}

fn location(latitude: f64, longitude: f64, accuracy_radius: u16, time_zone: &str) -> Location {
    Location {
        accuracy_radius,
        latitude,
        longitude,
        time_zone: time_zone.into(),
    }
}

/// The City database: London (IPv4) and Berlin (IPv6) with English and German names, a Swedish
/// IPv4 network with a country but no city, and a US network whose city is only named in German.
/// Broader networks come first: maxminddb-writer lets a later, narrower insert split them.
pub fn city_entries() -> Vec<(&'static str, Record)> {
    vec![
        (
            "81.2.69.0/24",
            city_record(
                &[("en", "London"), ("de", "London")],
                europe(),
                united_kingdom(),
                location(51.5142, -0.0931, 10, "Europe/London"),
            ),
        ),
        (
            "81.2.69.192/28",
            city_record(
                &[("en", "Kent"), ("de", "Kent")],
                europe(),
                united_kingdom(),
                location(51.2, 0.7, 100, "Europe/London"),
            ),
        ),
        (
            "2a02:8108::/32",
            city_record(
                &[("en", "Berlin"), ("de", "Berlin")],
                europe(),
                germany(),
                location(52.5244, 13.4105, 50, "Europe/Berlin"),
            ),
        ),
        (
            "2a02:8109::/32",
            city_record(
                &[("en", "Munich"), ("de", "München")],
                europe(),
                germany(),
                location(48.1371, 11.5754, 20, "Europe/Berlin"),
            ),
        ),
        (
            "89.160.20.112/28",
            Record {
                continent: Some(europe()),
                country: Some(sweden()),
                registered_country: Some(sweden()),
                location: Some(location(62.0, 15.0, 1000, "Europe/Stockholm")),
                ..Record::default()
            },
        ),
        (
            "216.160.83.56/29",
            city_record(
                &[("de", "Milton")],
                north_america(),
                united_states(),
                location(47.2513, -122.3149, 22, "America/Los_Angeles"),
            ),
        ),
    ]
}

/// A second City database with different data, to replace the first in hot-reload tests.
pub fn replacement_city_entries() -> Vec<(&'static str, Record)> {
    vec![
        (
            "81.2.69.0/24",
            city_record(
                &[("en", "Manchester"), ("de", "Manchester")],
                europe(),
                united_kingdom(),
                location(53.48, -2.24, 20, "Europe/London"),
            ),
        ),
        (
            "2a02:8108::/32",
            city_record(
                &[("en", "Hamburg"), ("de", "Hamburg")],
                europe(),
                germany(),
                location(53.55, 10.0, 50, "Europe/Berlin"),
            ),
        ),
    ]
}

/// The Country database: the same networks with countries only.
pub fn country_entries() -> Vec<(&'static str, Record)> {
    let country_only = |country: Country, continent: Continent| Record {
        continent: Some(continent),
        registered_country: Some(country.clone()),
        country: Some(country),
        ..Record::default()
    };
    vec![
        ("81.2.69.0/24", country_only(united_kingdom(), europe())),
        ("2a02:8108::/31", country_only(germany(), europe())),
        ("89.160.20.112/28", country_only(sweden(), europe())),
        (
            "216.160.83.56/29",
            country_only(united_states(), north_america()),
        ),
    ]
}

/// IPv4 networks go under `::a.b.c.d/96+n`, where IPv6 MaxMind databases keep IPv4.
fn network(cidr: &str) -> IpAddrWithMask {
    let parsed: IpAddrWithMask = cidr.parse().expect("fixture network");
    match parsed.addr {
        IpAddr::V4(v4) => {
            IpAddrWithMask::new(IpAddr::V6(v4.to_ipv6_compatible()), parsed.mask + 96)
        }
        IpAddr::V6(_) => parsed,
    }
}

/// Serialises a database of `database_type` ("GeoLite2-City", "GeoLite2-Country") to bytes.
pub fn build(database_type: &str, entries: &[(&str, Record)]) -> Vec<u8> {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = database_type.to_owned();
    db.metadata.languages = vec!["de".to_owned(), "en".to_owned()];
    db.metadata.binary_format_major_version = 2;
    db.metadata.binary_format_minor_version = 0;
    db.metadata.build_epoch = 1_735_689_600;
    db.metadata
        .description
        .insert("en".to_owned(), "console-sessions test fixture".to_owned());
    for (cidr, record) in entries {
        let data = db.insert_value(record).expect("fixture record serialises");
        db.insert_node(network(cidr), data);
    }
    db.write_to(Vec::new())
        .expect("fixture database serialises")
}

/// Writes a database to `path`.
pub fn write(path: &Path, database_type: &str, entries: &[(&str, Record)]) {
    std::fs::write(path, build(database_type, entries)).expect("fixture database written");
}

/// Writes the standard City database to `path`.
pub fn write_city(path: &Path) {
    write(path, "GeoLite2-City", &city_entries());
}

/// Writes the standard Country database to `path`.
pub fn write_country(path: &Path) {
    write(path, "GeoLite2-Country", &country_entries());
}
