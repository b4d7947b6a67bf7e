//! How long client addresses are kept whole (`IP_RETENTION`).
//!
//! A session, an ended session, a sign-in attempt and a security event each keep the address
//! they came from. [`IpRetention`] says for how long: always ([`IpRetention::Full`]), whole for
//! some days and then cut to its network — `/24` for IPv4, `/48` for IPv6, which still says which
//! network and roughly where, but no longer which household ([`IpRetention::Truncate`]) — or
//! never ([`IpRetention::Discard`]). The place looked up from an address (country, city) is kept
//! either way.
//!
//! The policy is applied twice: when a row is written ([`IpRetention::kept`]: nothing under
//! `Discard`, the network at once under `Truncate` after zero days) and by the expiry sweeper
//! ([`SessionEngine::age_addresses`](super::SessionEngine::age_addresses)), which rewrites what
//! grew old, and also what was written under a looser policy before.
//!
//! In the database a cut address is written with its prefix, `203.0.113.0/24`: the sweeper finds
//! the rows still to cut by that mark through a partial index, and pages show the mark, so nobody
//! mistakes the network for a host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

/// How many leading bits of an IPv4 address are kept when it is cut.
pub const IPV4_KEPT_BITS: u8 = 24;
/// How many leading bits of an IPv6 address are kept when it is cut.
pub const IPV6_KEPT_BITS: u8 = 48;

/// How long client addresses are kept whole (`IP_RETENTION`, `IP_TRUNCATE_AFTER_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpRetention {
    /// Addresses are kept as seen (the default), as long as the rows that hold them.
    #[default]
    Full,
    /// Addresses are cut to their network (`/24`, `/48`) once `after` has passed since they were
    /// last seen; zero cuts them before they are written.
    Truncate {
        /// How long an address is kept whole.
        after: Duration,
    },
    /// No address is written, and the sweeper forgets those written before.
    Discard,
}

impl IpRetention {
    /// What of `ip` may be written now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use console_sessions::sessions::IpRetention;
    ///
    /// let ip = "203.0.113.77".parse().unwrap();
    /// assert_eq!(IpRetention::Full.kept(ip), Some(ip));
    /// let later = IpRetention::Truncate { after: Duration::from_secs(86_400) };
    /// assert_eq!(later.kept(ip), Some(ip));
    /// let at_once = IpRetention::Truncate { after: Duration::ZERO };
    /// assert_eq!(at_once.kept(ip), Some("203.0.113.0".parse().unwrap()));
    /// assert_eq!(IpRetention::Discard.kept(ip), None);
    /// ```
    pub fn kept(&self, ip: IpAddr) -> Option<IpAddr> {
        match self {
            Self::Full => Some(ip),
            Self::Truncate { after } if after.is_zero() => Some(truncate_ip(ip)),
            Self::Truncate { .. } => Some(ip),
            Self::Discard => None,
        }
    }

    /// [`kept`](Self::kept) for an address that may be missing.
    pub fn keep(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        ip.and_then(|ip| self.kept(ip))
    }

    /// How an address read back, last seen at `seen`, is shown at `now`: whole while it is kept
    /// whole; as its network with the prefix (`203.0.113.0/24`) once it is due to be cut — also
    /// in the moments before the sweeper gets to it — or once it was cut ([`ip_text`]); not at
    /// all under [`IpRetention::Discard`], even before the sweeper forgets it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use console_sessions::sessions::IpRetention;
    /// use time::macros::datetime;
    ///
    /// let policy = IpRetention::Truncate { after: Duration::from_secs(30 * 86_400) };
    /// let ip = "203.0.113.77".parse().unwrap();
    /// let now = datetime!(2026-12-03 12:00 UTC);
    /// let shown = |seen| policy.shown(ip, seen, now);
    /// assert_eq!(shown(datetime!(2026-12-01 12:00 UTC)).as_deref(), Some("203.0.113.77"));
    /// assert_eq!(shown(datetime!(2026-10-01 12:00 UTC)).as_deref(), Some("203.0.113.0/24"));
    /// // Cut under an earlier policy: still shown as a network.
    /// let cut = "203.0.113.0".parse().unwrap();
    /// assert_eq!(IpRetention::Full.shown(cut, now, now).as_deref(), Some("203.0.113.0/24"));
    /// assert_eq!(IpRetention::Discard.shown(ip, now, now), None);
    /// ```
    pub fn shown(&self, ip: IpAddr, seen: OffsetDateTime, now: OffsetDateTime) -> Option<String> {
        match self.aging(now) {
            Some((AddressAging::Forget, _)) => None,
            Some((AddressAging::Truncate, before)) if seen < before => Some(truncated_text(ip)),
            _ => Some(ip_text(ip)),
        }
    }

    /// What the sweeper does at `now`: to which addresses, last seen before when.
    pub fn aging(&self, now: OffsetDateTime) -> Option<(AddressAging, OffsetDateTime)> {
        match self {
            Self::Full => None,
            Self::Truncate { after } => {
                let after = time::Duration::try_from(*after).unwrap_or(time::Duration::MAX);
                Some((AddressAging::Truncate, now.saturating_sub(after)))
            }
            // Everything up to now: nothing new is written, so this catches what came before.
            Self::Discard => Some((AddressAging::Forget, now)),
        }
    }
}

impl FromStr for IpRetention {
    type Err = String;

    /// `full`, `none`, or `truncate` (whose days come from `IP_TRUNCATE_AFTER_DAYS`; here zero).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "truncate" => Ok(Self::Truncate {
                after: Duration::ZERO,
            }),
            "none" => Ok(Self::Discard),
            other => Err(format!(
                "unknown IP retention {other:?}: use full, truncate or none"
            )),
        }
    }
}

impl std::fmt::Display for IpRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("full"),
            Self::Truncate { after } => {
                write!(f, "truncate after {} days", after.as_secs() / 86_400)
            }
            Self::Discard => f.write_str("none"),
        }
    }
}

/// What the sweeper does to an old address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressAging {
    /// Cut it to its network (`/24`, `/48`).
    Truncate,
    /// Forget it.
    Forget,
}

impl AddressAging {
    /// What an address becomes: its network, or nothing.
    ///
    /// ```
    /// use console_sessions::sessions::AddressAging;
    ///
    /// let ip = |text: &str| text.parse().unwrap();
    /// assert_eq!(AddressAging::Truncate.apply(ip("203.0.113.77")), Some(ip("203.0.113.0")));
    /// assert_eq!(AddressAging::Truncate.apply(ip("2001:db8:cafe:1::5")), Some(ip("2001:db8:cafe::")));
    /// // Cut already: left as it is.
    /// assert_eq!(AddressAging::Truncate.apply(ip("203.0.113.0")), Some(ip("203.0.113.0")));
    /// assert_eq!(AddressAging::Forget.apply(ip("203.0.113.77")), None);
    /// ```
    pub fn apply(&self, ip: IpAddr) -> Option<IpAddr> {
        match self {
            Self::Truncate => Some(truncate_ip(ip)),
            Self::Forget => None,
        }
    }
}

/// Ages one address as kept in memory (where no mark says it was cut: cutting twice changes
/// nothing); answers whether it changed.
pub(crate) fn age_in_place(
    ip: &mut Option<IpAddr>,
    seen: OffsetDateTime,
    aging: AddressAging,
    before: OffsetDateTime,
) -> bool {
    let Some(whole) = *ip else {
        return false;
    };
    if seen >= before {
        return false;
    }
    let aged = aging.apply(whole);
    let changed = aged != *ip;
    *ip = aged;
    changed
}

/// `ip` cut to its network: the first 24 bits of IPv4, the first 48 of IPv6.
///
/// ```
/// use console_sessions::sessions::truncate_ip;
///
/// assert_eq!(truncate_ip("198.51.100.200".parse().unwrap()).to_string(), "198.51.100.0");
/// assert_eq!(truncate_ip("2001:db8:cafe:1::5".parse().unwrap()).to_string(), "2001:db8:cafe::");
/// ```
pub fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - IPV4_KEPT_BITS);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_KEPT_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Whether `ip` is the start of its own /24 (IPv4) or /48 (IPv6) network, as a cut address is.
/// A whole address read back from storage that happens to end so (`10.1.2.0` in a /16) is taken
/// for a cut one too: one rule for storing and showing, at the price of that rare host.
pub fn is_cut(ip: IpAddr) -> bool {
    truncate_ip(ip) == ip
}

/// How an address is written and shown: whole as it is (`203.0.113.77`), a cut one with its
/// prefix (`203.0.113.0/24`), so the sweeper never takes it for a whole one again.
///
/// ```
/// use console_sessions::sessions::ip_text;
///
/// assert_eq!(ip_text("203.0.113.77".parse().unwrap()), "203.0.113.77");
/// assert_eq!(ip_text("203.0.113.0".parse().unwrap()), "203.0.113.0/24");
/// assert_eq!(ip_text("2001:db8:cafe::".parse().unwrap()), "2001:db8:cafe::/48");
/// ```
pub fn ip_text(ip: IpAddr) -> String {
    if is_cut(ip) {
        truncated_text(ip)
    } else {
        ip.to_string()
    }
}

/// How a cut address is stored and shown: its network with the prefix, `203.0.113.0/24`.
pub fn truncated_text(ip: IpAddr) -> String {
    let bits = match ip {
        IpAddr::V4(_) => IPV4_KEPT_BITS,
        IpAddr::V6(_) => IPV6_KEPT_BITS,
    };
    format!("{}/{bits}", truncate_ip(ip))
}

/// Reads an address as stored: whole (`203.0.113.77`) or cut (`203.0.113.0/24`, read as its
/// network's first address). `None` for anything else.
///
/// ```
/// use console_sessions::sessions::parse_stored_ip;
///
/// assert_eq!(parse_stored_ip("203.0.113.77"), Some("203.0.113.77".parse().unwrap()));
/// assert_eq!(parse_stored_ip("203.0.113.0/24"), Some("203.0.113.0".parse().unwrap()));
/// assert_eq!(parse_stored_ip("203.0.113.0/"), None);
/// ```
pub fn parse_stored_ip(stored: &str) -> Option<IpAddr> {
    match stored.split_once('/') {
        None => stored.parse().ok(),
        Some((network, bits)) => {
            let bits: u8 = bits.parse().ok()?;
            let ip: IpAddr = network.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some(ip)
        }
    }
}

#[cfg(sql)]
pub(crate) mod db {
    //! The one way every table with an address column has its old addresses cut or forgotten.

    use time::OffsetDateTime;

    use super::{truncated_text, AddressAging};
    use crate::clock::to_millis;
    use crate::db::{with_pool, Database};
    use crate::sessions::record::ip_key;

    /// A table's address column, the time that address was last seen, and the column that keeps
    /// the address as 16 bytes for range searches, if any.
    pub(crate) struct AddressColumn {
        pub table: &'static str,
        pub ip: &'static str,
        pub seen: &'static str,
        pub key: Option<&'static str>,
    }

    /// The rows still to age in `column`: its whole addresses, or its cut ones, oldest first;
    /// binds the time and how many.
    pub(crate) fn select_sql(column: &AddressColumn, whole: bool) -> String {
        let AddressColumn {
            table, ip, seen, ..
        } = column;
        let shape = if whole { "NOT LIKE" } else { "LIKE" };
        format!(
            "SELECT id, {ip} FROM {table} WHERE {ip} IS NOT NULL AND {ip} {shape} '%/%' \
             AND {seen} < $1 ORDER BY {seen} LIMIT $2"
        )
    }

    /// [`age_column`] for each of `columns`; answers how many addresses changed in all.
    pub(crate) async fn age_columns(
        db: &Database,
        columns: &[AddressColumn],
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, sqlx::Error> {
        let mut changed = 0;
        for column in columns {
            changed += age_column(db, column, aging, before, batch).await?;
        }
        Ok(changed)
    }

    /// Cuts or forgets, `batch` rows at a time, the addresses in `column` last seen before
    /// `before`; answers how many it changed.
    ///
    /// Whole addresses and cut ones are read apart (`NOT LIKE '%/%'`, `LIKE '%/%'`), each through
    /// the partial index that says just that, so a sweep reads only the rows it changes; cutting
    /// reads only whole ones. Each row is changed only if it still holds what was read and still
    /// is that old: a session used meanwhile keeps the address it was just seen from.
    pub(crate) async fn age_column(
        db: &Database,
        column: &AddressColumn,
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, sqlx::Error> {
        let AddressColumn {
            table,
            ip,
            seen,
            key,
        } = column;
        let batch = batch.max(1);
        // Whole addresses, then (when forgetting) cut ones.
        let shapes: &[bool] = match aging {
            AddressAging::Truncate => &[true],
            AddressAging::Forget => &[true, false],
        };
        let update = match key {
            Some(key) => format!(
                "UPDATE {table} SET {ip} = $1, {key} = $2 \
                 WHERE id = $3 AND {ip} = $4 AND {seen} < $5"
            ),
            None => {
                format!("UPDATE {table} SET {ip} = $1 WHERE id = $2 AND {ip} = $3 AND {seen} < $4")
            }
        };
        let mut total = 0u64;
        for &whole in shapes {
            let select = select_sql(column, whole);
            loop {
                let rows: Vec<(i64, String)> = with_pool!(db, |pool| sqlx::query_as(&select)
                    .bind(to_millis(before))
                    .bind(i64::from(batch))
                    .fetch_all(pool)
                    .await)?;
                let changed = with_pool!(db, |pool| {
                    let mut tx = pool.begin().await?;
                    let mut changed = 0u64;
                    for (id, stored) in &rows {
                        // Unreadable text is forgotten, never kept as it was.
                        let aged = super::parse_stored_ip(stored).and_then(|ip| aging.apply(ip));
                        let mut query = sqlx::query(&update).bind(aged.map(truncated_text));
                        if key.is_some() {
                            query = query.bind(aged.map(|ip| ip_key(ip).to_vec()));
                        }
                        changed += query
                            .bind(id)
                            .bind(stored)
                            .bind(to_millis(before))
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    tx.commit().await?;
                    Ok::<u64, sqlx::Error>(changed)
                })?;
                total += changed;
                if rows.len() < batch as usize {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(total)
    }
}
