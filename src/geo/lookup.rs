//! [`GeoIp`]: lookups in a MaxMind database, cached and reloaded when the file is replaced.
//!
//! The database is read into memory rather than memory mapped: maxminddb's `open_mmap` is an
//! `unsafe fn` (the file must not change under the map) and this crate forbids unsafe code. Reading
//! also makes hot reload safe: `geoipupdate` renames a new file over the old one, a [`GeoIp`] notices
//! the new modification time or inode within [`GeoIpOptions::reload_interval`], reads it, and swaps
//! it in; lookups already running finish on the old copy.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use maxminddb::Reader;
use serde::Deserialize;

use super::{canonical, is_local_network, LocationInfo, Place, LOCAL_NETWORK, UNKNOWN_LOCATION};

/// Why a GeoIP database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// Nothing exists at the path.
    #[error("GeoIP database {path} does not exist")]
    NotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// The folder holds no City or Country `.mmdb` file.
    #[error("no GeoIP2/GeoLite2 City or Country database (*.mmdb) in folder {path}")]
    NoDatabaseInFolder {
        /// The folder that was searched.
        path: PathBuf,
    },
    /// The file or folder could not be read.
    #[error("cannot read GeoIP database {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid MaxMind DB (truncated, corrupt, or some other format).
    #[error("GeoIP database {path} is corrupt or not a MaxMind database: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What maxminddb reported.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    /// A valid MaxMind DB of a kind without locations, such as ASN.
    #[error(
        "GeoIP database {path} is a {database_type} database; a City or Country database is needed"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Its `database_type` metadata, e.g. "GeoLite2-ASN".
        database_type: String,
    },
}

/// Tuning for a [`GeoIp`].
#[derive(Clone, Debug)]
pub struct GeoIpOptions {
    /// At most how often lookups check whether the database file was replaced. Zero checks on
    /// every lookup (for tests).
    pub reload_interval: Duration,
    /// How many addresses' results are cached.
    pub cache_capacity: u64,
}

impl Default for GeoIpOptions {
    fn default() -> Self {
        GeoIpOptions {
            reload_interval: Duration::from_secs(5),
            cache_capacity: 10_000,
        }
    }
}

/// IP geolocation from a MaxMind City or Country database, with a cache and hot reload. Cloning is
/// cheap and clones share the database and cache.
#[derive(Clone)]
pub struct GeoIp {
    inner: Arc<Inner>,
}

struct Inner {
    source: Option<Source>,
    cache: moka::sync::Cache<IpAddr, Arc<Resolved>>,
}

/// The database file and the reader currently serving it.
struct Source {
    path: PathBuf,
    current: RwLock<Arc<Loaded>>,
    options: GeoIpOptions,
    started: Instant,
    /// Milliseconds after `started` of the last file check; claimed with compare-exchange so one
    /// lookup checks while the others carry on.
    last_check_ms: AtomicU64,
    /// The file identity last seen, including one that failed to load, so a bad file is not
    /// re-read every interval.
    seen: Mutex<Option<FileStamp>>,
}

struct Loaded {
    reader: Reader<Vec<u8>>,
    /// Bumped on every reload; cache entries from an older generation are ignored, which also
    /// covers results computed on the old reader while a reload was happening.
    generation: u64,
}

/// A cached result.
struct Resolved {
    generation: u64,
    info: Option<LocationInfo>,
    label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let (inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (inode, device) = (0, 0);
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode,
            device,
        })
    }
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.database_path())
            .field("database_type", &self.database_type())
            .finish()
    }
}

impl GeoIp {
    /// Opens a `.mmdb` file, or the best database in a folder (City before Country, GeoIP2 before
    /// GeoLite2), with default options.
    ///
    /// # Errors
    ///
    /// [`GeoIpError`] when the path does not exist, a folder holds no City or Country database, or
    /// the file cannot be read, is corrupt, or has no locations.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoIp, GeoIpError> {
        GeoIp::open_with(path, GeoIpOptions::default())
    }

    /// Like [`open`](Self::open) with explicit options.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, options: GeoIpOptions) -> Result<GeoIp, GeoIpError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => GeoIpError::NotFound {
                path: path.to_owned(),
            },
            _ => GeoIpError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        let file = if meta.is_dir() {
            find_database(path)?
        } else {
            path.to_owned()
        };
        let stamp = FileStamp::of(&file);
        let reader = open_reader(&file)?;
        tracing::info!(
            path = %file.display(),
            database_type = %reader.metadata.database_type,
            "GeoIP database loaded"
        );
        let source = Source {
            path: file,
            current: RwLock::new(Arc::new(Loaded {
                reader,
                generation: 0,
            })),
            started: Instant::now(),
            last_check_ms: AtomicU64::new(0),
            seen: Mutex::new(stamp),
            options,
        };
        let cache_capacity = source.options.cache_capacity;
        Ok(GeoIp::with_source(Some(source), cache_capacity))
    }

    /// A `GeoIp` without a database: every lookup is [`UNKNOWN_LOCATION`] (local addresses are
    /// still [`LOCAL_NETWORK`]).
    pub fn disabled() -> GeoIp {
        GeoIp::with_source(None, 0)
    }

    fn with_source(source: Option<Source>, cache_capacity: u64) -> GeoIp {
        let cache = moka::sync::Cache::builder()
            .max_capacity(cache_capacity)
            .build();
        GeoIp {
            inner: Arc::new(Inner { source, cache }),
        }
    }

    /// Whether a database is loaded.
    pub fn is_enabled(&self) -> bool {
        self.inner.source.is_some()
    }

    /// The database file in use, if any.
    pub fn database_path(&self) -> Option<&Path> {
        self.inner.source.as_ref().map(|s| s.path.as_path())
    }

    /// The loaded database's type, e.g. "GeoLite2-City".
    pub fn database_type(&self) -> Option<String> {
        let source = self.inner.source.as_ref()?;
        Some(source.loaded().reader.metadata.database_type.clone())
    }

    /// "City, Country" in English, falling back to "Country", else [`UNKNOWN_LOCATION`];
    /// [`LOCAL_NETWORK`] for private and reserved addresses.
    pub fn location(&self, ip: IpAddr) -> String {
        let ip = canonical(ip);
        if is_local_network(ip) {
            return LOCAL_NETWORK.to_owned();
        }
        self.resolve(ip).label.clone()
    }

    /// Everything known about a public address; `None` for local addresses and addresses the
    /// database does not know.
    pub fn location_info(&self, ip: IpAddr) -> Option<LocationInfo> {
        let ip = canonical(ip);
        if is_local_network(ip) {
            return None;
        }
        self.resolve(ip).info.clone()
    }

    /// The country code and city a session row stores; empty when unknown or local.
    pub fn place(&self, ip: IpAddr) -> Place {
        match self.location_info(ip) {
            Some(info) => Place {
                country_code: info.country_code,
                city: info.city,
            },
            None => Place::default(),
        }
    }

    /// Checks now whether the database file was replaced and reloads it if so, regardless of the
    /// interval. Returns whether a new database was loaded.
    pub fn reload_if_changed(&self) -> bool {
        match &self.inner.source {
            Some(source) => source.reload_if_changed(&self.inner.cache),
            None => false,
        }
    }

    fn resolve(&self, ip: IpAddr) -> Arc<Resolved> {
        let Some(source) = &self.inner.source else {
            return Arc::new(Resolved {
                generation: 0,
                info: None,
                label: UNKNOWN_LOCATION.to_owned(),
            });
        };
        source.maybe_reload(&self.inner.cache);
        let loaded = source.loaded();
        if let Some(hit) = self.inner.cache.get(&ip) {
            if hit.generation == loaded.generation {
                return hit;
            }
        }
        let info = lookup(&loaded.reader, ip);
        let label = info
            .as_ref()
            .and_then(LocationInfo::label)
            .unwrap_or_else(|| UNKNOWN_LOCATION.to_owned());
        let resolved = Arc::new(Resolved {
            generation: loaded.generation,
            info,
            label,
        });
        self.inner.cache.insert(ip, Arc::clone(&resolved));
        resolved
    }
}

impl Source {
    fn loaded(&self) -> Arc<Loaded> {
        let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard)
    }

    fn maybe_reload(&self, cache: &moka::sync::Cache<IpAddr, Arc<Resolved>>) {
        let interval_ms =
            u64::try_from(self.options.reload_interval.as_millis()).unwrap_or(u64::MAX);
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_check_ms.load(Ordering::Relaxed);
        if interval_ms > 0 && now_ms.saturating_sub(last) < interval_ms {
            return;
        }
        if interval_ms > 0
            && self
                .last_check_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.reload_if_changed(cache);
    }

    fn reload_if_changed(&self, cache: &moka::sync::Cache<IpAddr, Arc<Resolved>>) -> bool {
        // Serialises reloads: a second checker waits, then sees the new stamp and does nothing.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = FileStamp::of(&self.path);
        if stamp.is_none() || stamp == *seen {
            // A missing file (mid-replacement, or removed) keeps the current database.
            return false;
        }
        *seen = stamp;
        match open_reader(&self.path) {
            Ok(reader) => {
                let generation = self.loaded().generation + 1;
                tracing::info!(
                    path = %self.path.display(),
                    database_type = %reader.metadata.database_type,
                    "GeoIP database reloaded"
                );
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                *current = Arc::new(Loaded { reader, generation });
                drop(current);
                cache.invalidate_all();
                true
            }
            Err(error) => {
                tracing::warn!(%error, "GeoIP database changed but cannot be loaded; keeping the previous one");
                false
            }
        }
    }
}

/// Opens and sanity-checks one database file.
fn open_reader(path: &Path) -> Result<Reader<Vec<u8>>, GeoIpError> {
    let reader = Reader::open_readfile(path).map_err(|source| match source {
        maxminddb::MaxMindDbError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            GeoIpError::NotFound {
                path: path.to_owned(),
            }
        }
        maxminddb::MaxMindDbError::Io(io) => GeoIpError::Io {
            path: path.to_owned(),
            source: io,
        },
        other => GeoIpError::Corrupt {
            path: path.to_owned(),
            source: other,
        },
    })?;
    let database_type = reader.metadata.database_type.to_ascii_lowercase();
    if !["city", "country", "enterprise"]
        .iter()
        .any(|kind| database_type.contains(kind))
    {
        return Err(GeoIpError::Unsupported {
            path: path.to_owned(),
            database_type: reader.metadata.database_type.clone(),
        });
    }
    Ok(reader)
}

/// Picks the best `.mmdb` in a folder by file name.
fn find_database(folder: &Path) -> Result<PathBuf, GeoIpError> {
    let io_error = |source| GeoIpError::Io {
        path: folder.to_owned(),
        source,
    };
    let mut best: Option<((u8, u8, String), PathBuf)> = None;
    for entry in std::fs::read_dir(folder).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if lower.starts_with('.') || !lower.ends_with(".mmdb") || !path.is_file() {
            continue;
        }
        let kind = if lower.contains("city") {
            0
        } else if lower.contains("country") {
            1
        } else {
            continue;
        };
        // The paid GeoIP2 databases are more precise than the free GeoLite2 ones.
        let vendor = u8::from(!lower.contains("geoip2"));
        let rank = (kind, vendor, name.to_owned());
        if best.as_ref().is_none_or(|(best_rank, _)| rank < *best_rank) {
            best = Some((rank, path));
        }
    }
    best.map(|(_, path)| path)
        .ok_or_else(|| GeoIpError::NoDatabaseInFolder {
            path: folder.to_owned(),
        })
}

/// The subset of a GeoIP2 City/Country record this module reads; the rest is skipped unparsed.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    city: Named<'a>,
    #[serde(borrow, default)]
    country: Coded<'a>,
    #[serde(borrow, default)]
    continent: Coded<'a>,
    #[serde(borrow, default)]
    location: Coordinates<'a>,
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: EnglishName<'a>,
}

#[derive(Deserialize, Default)]
struct Coded<'a> {
    /// `iso_code` for countries.
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    /// `code` for continents.
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    names: EnglishName<'a>,
}

#[derive(Deserialize, Default)]
struct EnglishName<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Coordinates<'a> {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
    #[serde(borrow, default)]
    time_zone: Option<&'a str>,
}

fn lookup(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Option<LocationInfo> {
    let record: Record<'_> = match reader.lookup(ip).and_then(|found| found.decode()) {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(error) => {
            // An IPv6 address in an IPv4-only database lands here too; neither is worth more.
            tracing::debug!(%ip, %error, "GeoIP lookup failed");
            return None;
        }
    };
    let text = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    let info = LocationInfo {
        city: text(record.city.names.en),
        country_code: text(record.country.iso_code),
        country_name: text(record.country.names.en),
        continent_code: text(record.continent.code),
        continent_name: text(record.continent.names.en),
        time_zone: text(record.location.time_zone),
        latitude: record.location.latitude,
        longitude: record.location.longitude,
        accuracy_radius: record.location.accuracy_radius,
    };
    (info != LocationInfo::default()).then_some(info)
}
