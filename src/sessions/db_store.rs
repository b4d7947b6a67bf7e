//! [`DbStore`]: sessions in SQLite or PostgreSQL through sqlx. This is Django's `db` backend.
//!
//! The two backends share one schema, and every statement here is written once: `$n` placeholders,
//! `RETURNING`, `BIGINT` times and byte strings mean the same to both.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::assurance::{Aal, Assurance, AuthMethod};
use super::history::SessionHistory;
use super::record::{ip_key, Expiry, PublicId, SessionRecord, TokenHash};
use super::retention::db::{age_columns, AddressColumn};
use super::retention::{ip_text, parse_stored_ip, AddressAging};
use super::store::{Deleted, SessionStore, StoreError, UserSessionStore};
use crate::clock::{from_millis, to_millis};
use crate::db::with_pool;
#[cfg(feature = "sqlite")]
use crate::db::SqliteReaders;
use crate::db::{is_unique_violation, Database};
use crate::geo::Place;

pub(crate) const COLUMNS: &str =
    "public_id, token_hash, user_id, data, ip, user_agent, expiry_policy, \
                       created_at, updated_at, last_activity_at, expires_at, client_hints, \
                       country_code, city, first_ip, first_country_code, first_city, \
                       auth_method, aal, authenticated_at, label";

/// Sessions stored in the database, with no cache.
///
/// On SQLite, [`SessionStore::load`] — the read every request with a cookie makes — runs on one of a
/// few connections the store keeps beside the pool (one per core, at most four), and through the
/// pool when they are all busy. Each load is still one statement in its own read transaction, so it
/// sees every write committed before it, from any connection or process.
#[derive(Debug, Clone)]
pub struct DbStore {
    db: Database,
    /// SQLite only: connections beside the pool for [`SessionStore::load`], the per-request read.
    #[cfg(feature = "sqlite")]
    readers: Option<Arc<SqliteReaders>>,
    queries: Arc<AtomicU64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) public_id: String,
    pub(crate) token_hash: Vec<u8>,
    pub(crate) user_id: Option<i64>,
    pub(crate) data: String,
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) expiry_policy: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) last_activity_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) client_hints: Option<String>,
    pub(crate) country_code: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) first_ip: Option<String>,
    pub(crate) first_country_code: Option<String>,
    pub(crate) first_city: Option<String>,
    pub(crate) auth_method: Option<String>,
    pub(crate) aal: Option<i16>,
    pub(crate) authenticated_at: Option<i64>,
    pub(crate) label: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_record(self) -> Result<SessionRecord, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            public_id: self.public_id.clone(),
            reason: reason.to_owned(),
        };
        let public_id = PublicId::parse(&self.public_id).ok_or_else(|| corrupt("bad public id"))?;
        let token_hash =
            TokenHash::from_slice(&self.token_hash).ok_or_else(|| corrupt("bad token hash"))?;
        let data: Map<String, Value> = serde_json::from_str(&self.data)
            .map_err(|e| corrupt(&format!("data is not a JSON object: {e}")))?;
        let expiry = match &self.expiry_policy {
            None => Expiry::Default,
            Some(text) => serde_json::from_str(text)
                .map_err(|e| corrupt(&format!("bad expiry policy: {e}")))?,
        };
        Ok(SessionRecord {
            public_id,
            token_hash,
            user_id: self.user_id,
            label: self.label,
            // Sessions signed in before the columns existed have none: unknown, not corrupt.
            assurance: match (
                self.user_id,
                self.auth_method.as_deref(),
                self.authenticated_at,
            ) {
                (Some(_), Some(method), Some(at)) => {
                    let method = AuthMethod::parse(method);
                    Some(Assurance {
                        method,
                        level: self.aal.map_or(method.level(), Aal::from_number),
                        authenticated_at: from_millis(at),
                    })
                }
                _ => None,
            },
            data,
            // An address that does not parse is dropped, not fatal: it is informational.
            // A cut one (`203.0.113.0/24`, IP_RETENTION) reads as its network.
            ip: self.ip.as_deref().and_then(parse_stored_ip),
            user_agent: self.user_agent,
            // Hints are advisory: unreadable ones are dropped, not fatal.
            client_hints: self
                .client_hints
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            place: Place {
                country_code: self.country_code,
                city: self.city,
            },
            first_ip: self.first_ip.as_deref().and_then(parse_stored_ip),
            first_place: Place {
                country_code: self.first_country_code,
                city: self.first_city,
            },
            expiry,
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
            last_activity_at: from_millis(self.last_activity_at),
            expires_at: from_millis(self.expires_at),
        })
    }
}

/// The sessions these deleted rows were. A row that does not read as a session (corrupt) is gone
/// all the same: it is logged and left out, which costs the cache nothing (it never loaded one).
fn into_deleted(rows: Vec<SessionRow>) -> Vec<Deleted> {
    rows.into_iter()
        .filter_map(|row| match row.into_record() {
            Ok(record) => Some(Deleted { record }),
            Err(error) => {
                tracing::warn!(%error, "a deleted session row did not read back");
                None
            }
        })
        .collect()
}

/// The values a record writes, in column order, ready to bind.
struct RowValues {
    data: String,
    ip: Option<String>,
    ip_key: Option<Vec<u8>>,
    expiry_policy: Option<String>,
    client_hints: Option<String>,
    first_ip: Option<String>,
    device_category: &'static str,
    auth_method: Option<&'static str>,
    aal: Option<i16>,
    authenticated_at: Option<i64>,
}

impl RowValues {
    fn of(record: &SessionRecord) -> Self {
        Self {
            // Serialising a map of JSON values cannot fail.
            data: serde_json::to_string(&record.data).unwrap_or_else(|_| "{}".to_owned()),
            ip: record.ip.map(ip_text),
            ip_key: record.ip.map(|ip| ip_key(ip).to_vec()),
            expiry_policy: match record.expiry {
                Expiry::Default => None,
                other => serde_json::to_string(&other).ok(),
            },
            client_hints: record
                .client_hints
                .as_ref()
                .and_then(|hints| serde_json::to_string(hints).ok()),
            first_ip: record.first_ip.map(ip_text),
            device_category: device_category(record).as_str(),
            auth_method: record.assurance.map(|a| a.method.as_str()),
            aal: record.assurance.map(|a| a.level.number()),
            authenticated_at: record.assurance.map(|a| to_millis(a.authenticated_at)),
        }
    }
}

fn device_category(record: &SessionRecord) -> crate::device::DeviceCategory {
    device_category_of(record.user_agent.as_deref(), record.client_hints.as_ref())
}

/// The kind of device, kept beside the user agent for the admin's filter. Without the `device`
/// feature nothing parses user agents, and rows say `unknown`.
pub(crate) fn device_category_of(
    user_agent: Option<&str>,
    hints: Option<&crate::device::ClientHints>,
) -> crate::device::DeviceCategory {
    #[cfg(feature = "device")]
    return crate::device::DeviceSummary::from_request(
        user_agent,
        &hints.cloned().unwrap_or_default(),
    )
    .category;
    #[cfg(not(feature = "device"))]
    {
        let _ = (user_agent, hints);
        crate::device::DeviceCategory::Unknown
    }
}

impl DbStore {
    /// A store over this database.
    pub fn new(db: Database) -> Self {
        #[cfg(feature = "sqlite")]
        let readers = match &db {
            Database::Sqlite(pool) => Some(SqliteReaders::new(pool.clone())),
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => None,
        };
        Self {
            db,
            #[cfg(feature = "sqlite")]
            readers,
            queries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The database underneath.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// How many statements this store has sent to the database since it was made.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    async fn delete_returning(
        &self,
        sql: &str,
        first: i64,
        second: &str,
    ) -> Result<Vec<Deleted>, StoreError> {
        self.count();
        let rows: Vec<SessionRow> = with_pool!(&self.db, |pool| sqlx::query_as(sql)
            .bind(first)
            .bind(second)
            .fetch_all(pool)
            .await)?;
        Ok(into_deleted(rows))
    }
}

#[async_trait]
impl SessionStore for DbStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let values = RowValues::of(record);
        let sql = format!(
            "INSERT INTO sessions ({COLUMNS}, ip_key, device_category) VALUES ($1, $2, $3, $4, $5, \
             $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        );
        self.count();
        let result = with_pool!(&self.db, |pool| sqlx::query(&sql)
            .bind(record.public_id.as_str())
            .bind(record.token_hash.as_bytes().as_slice())
            .bind(record.user_id)
            .bind(&values.data)
            .bind(&values.ip)
            .bind(&record.user_agent)
            .bind(&values.expiry_policy)
            .bind(to_millis(record.created_at))
            .bind(to_millis(record.updated_at))
            .bind(to_millis(record.last_activity_at))
            .bind(to_millis(record.expires_at))
            .bind(&values.client_hints)
            .bind(&record.place.country_code)
            .bind(&record.place.city)
            .bind(&values.first_ip)
            .bind(&record.first_place.country_code)
            .bind(&record.first_place.city)
            .bind(values.auth_method)
            .bind(values.aal)
            .bind(values.authenticated_at)
            .bind(&record.label)
            .bind(&values.ip_key)
            .bind(values.device_category)
            .execute(pool)
            .await
            .map(drop));
        match result {
            Ok(()) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    async fn load(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2");
        self.count();
        #[cfg(feature = "sqlite")]
        if let Some(readers) = &self.readers {
            let row: Option<SessionRow> = readers
                .fetch_optional(
                    sqlx::query_as(&sql)
                        .bind(token_hash.as_bytes().as_slice())
                        .bind(to_millis(now)),
                )
                .await?;
            return row.map(SessionRow::into_record).transpose();
        }
        let row: Option<SessionRow> = with_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(token_hash.as_bytes().as_slice())
            .bind(to_millis(now))
            .fetch_optional(pool)
            .await)?;
        row.map(SessionRow::into_record).transpose()
    }

    async fn save(
        &self,
        record: &SessionRecord,
        current_hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let values = RowValues::of(record);
        // UPDATE, never an upsert: a row deleted meanwhile (revoked, signed out) stays deleted.
        let sql =
            "UPDATE sessions SET token_hash = $1, user_id = $2, data = $3, ip = $4, ip_key = $5, \
                   user_agent = $6, expiry_policy = $7, updated_at = $8, last_activity_at = $9, \
                   expires_at = $10, client_hints = $11, country_code = $12, city = $13, \
                   device_category = $14, auth_method = $15, aal = $16, authenticated_at = $17 \
                   WHERE public_id = $18 AND token_hash = $19";
        self.count();
        let result = with_pool!(&self.db, |pool| sqlx::query(sql)
            .bind(record.token_hash.as_bytes().as_slice())
            .bind(record.user_id)
            .bind(&values.data)
            .bind(&values.ip)
            .bind(&values.ip_key)
            .bind(&record.user_agent)
            .bind(&values.expiry_policy)
            .bind(to_millis(record.updated_at))
            .bind(to_millis(record.last_activity_at))
            .bind(to_millis(record.expires_at))
            .bind(&values.client_hints)
            .bind(&record.place.country_code)
            .bind(&record.place.city)
            .bind(values.device_category)
            .bind(values.auth_method)
            .bind(values.aal)
            .bind(values.authenticated_at)
            .bind(record.public_id.as_str())
            .bind(current_hash.as_bytes().as_slice())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        match result {
            Ok(rows) => Ok(rows > 0),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
        self.count();
        let rows = with_pool!(&self.db, |pool| sqlx::query(
            "DELETE FROM sessions WHERE token_hash = $1"
        )
        .bind(token_hash.as_bytes().as_slice())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(rows > 0)
    }

    async fn delete_expired(
        &self,
        now: OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<Deleted>, StoreError> {
        self.count();
        let sql = format!(
            "DELETE FROM sessions WHERE id IN \
             (SELECT id FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2) \
             RETURNING {COLUMNS}"
        );
        let rows: Vec<SessionRow> = with_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(to_millis(now))
            .bind(i64::from(batch))
            .fetch_all(pool)
            .await)?;
        Ok(into_deleted(rows))
    }

    fn by_user(&self) -> Option<&dyn UserSessionStore> {
        Some(self)
    }

    fn history(&self) -> Option<&dyn SessionHistory> {
        Some(self)
    }
}

#[async_trait]
impl UserSessionStore for DbStore {
    async fn list_for_user(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY last_activity_at DESC, id DESC"
        );
        self.count();
        let rows: Vec<SessionRow> = with_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(user_id)
            .bind(to_millis(now))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(SessionRow::into_record).collect()
    }

    async fn delete_by_public_ids(
        &self,
        public_ids: &[PublicId],
        user_id: Option<i64>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let mut deleted = Vec::new();
        // Bounded statements: SQLite allows only so many bound values in one.
        for chunk in public_ids.chunks(500) {
            self.count();
            let rows: Vec<SessionRow> = with_pool!(&self.db, |pool| {
                let mut builder = QueryBuilder::new("DELETE FROM sessions WHERE public_id IN (");
                let mut list = builder.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                builder.push(")");
                if let Some(user_id) = user_id {
                    builder.push(" AND user_id = ").push_bind(user_id);
                }
                builder.push(" RETURNING ").push(COLUMNS);
                builder.build_query_as().fetch_all(pool).await
            })?;
            deleted.extend(into_deleted(rows));
        }
        Ok(deleted)
    }

    async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
    ) -> Result<Vec<Deleted>, StoreError> {
        // Public ids are never empty, so "" keeps nothing.
        let keep = keep.map(PublicId::as_str).unwrap_or("");
        let sql = format!(
            "DELETE FROM sessions WHERE user_id = $1 AND public_id <> $2 RETURNING {COLUMNS}"
        );
        self.delete_returning(&sql, user_id, keep).await
    }

    async fn rename(
        &self,
        user_id: i64,
        public_id: &PublicId,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.count();
        let renamed = with_pool!(&self.db, |pool| sqlx::query(
            "UPDATE sessions SET label = $1 WHERE public_id = $2 AND user_id = $3"
        )
        .bind(label)
        .bind(public_id.as_str())
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(renamed > 0)
    }

    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let columns = [SESSION_LAST_IP, SESSION_FIRST_IP];
        Ok(age_columns(&self.db, &columns, aging, before, batch).await?)
    }
}

/// The sessions table's addresses, as the sweeper ages them (IP_RETENTION): each has a partial
/// index on its time over the rows whose address is still whole (migration 1004).
const SESSION_LAST_IP: AddressColumn = AddressColumn {
    table: "sessions",
    ip: "ip",
    seen: "last_activity_at",
    key: Some("ip_key"),
};
const SESSION_FIRST_IP: AddressColumn = AddressColumn {
    table: "sessions",
    ip: "first_ip",
    seen: "created_at",
    key: None,
};
