//! How the addresses and places read back from storage are shown: whole while `IP_RETENTION`
//! keeps them whole, as their network (`203.0.113.0/24`) once they are due to be cut, and the
//! place by the address when there is one, else by what was stored (under `IP_RETENTION=none`
//! there is no address, but the place found when it was seen is kept).

use std::net::IpAddr;

use console_sessions::geo::{GeoIp, Place};
use console_sessions::sessions::{now, to_millis, IpRetention};
use time::OffsetDateTime;

use crate::server::state::AppState;

/// What a page needs to show addresses and places: the GeoIP database, the policy, and the
/// moment the page is made.
pub struct Shown<'a> {
    geoip: &'a GeoIp,
    retention: IpRetention,
    now: OffsetDateTime,
}

impl<'a> Shown<'a> {
    /// For a page made now.
    pub fn of(state: &'a AppState) -> Self {
        Self {
            geoip: state.sessions.geoip(),
            retention: state.sessions.config().ip_retention,
            now: now(),
        }
    }

    /// The moment the page is made, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        to_millis(self.now)
    }

    /// An address last seen at `seen`, as the policy lets it be shown.
    pub fn ip(&self, ip: Option<IpAddr>, seen: OffsetDateTime) -> Option<String> {
        ip.and_then(|ip| self.retention.shown(ip, seen, self.now))
    }

    /// "London, United Kingdom" from the address when there is one, else the stored place
    /// ("London, GB"), else "Unknown location".
    pub fn location(&self, ip: Option<IpAddr>, place: &Place) -> String {
        match ip {
            Some(ip) => self.geoip.location(ip),
            None => stored_place(place),
        }
    }

    /// The GeoIP database, for what names a place by address alone.
    pub fn geoip(&self) -> &GeoIp {
        self.geoip
    }
}

/// "London, GB", "GB", "London", or "Unknown location".
pub fn stored_place(place: &Place) -> String {
    place
        .label()
        .unwrap_or_else(|| "Unknown location".to_owned())
}
