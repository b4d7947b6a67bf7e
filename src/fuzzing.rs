//! The fuzz targets' way in (`fuzz/`): parsers that are not public API, reached without widening
//! it. Compiled only under `cargo fuzz`, which sets `--cfg fuzzing`; no application sees this.

#[cfg(all(feature = "admin", sql))]
pub use admin::*;
#[cfg(sql)]
pub use stored::*;

#[cfg(all(feature = "admin", sql))]
mod admin {
    use std::net::IpAddr;

    use crate::admin::{resolved, AdminQuery, SearchTerm};

    /// The address ranges the search box's prefix `prefix` stands for.
    pub fn ip_prefix_ranges(prefix: &str) -> Option<Vec<(IpAddr, IpAddr)>> {
        crate::admin::ip_prefix::prefix_ranges(prefix)
    }

    /// The search box `text` as the changelist's SQL, for each database built in, with the
    /// search resolved as the admin would before counting: `None` when the box is blank.
    pub fn admin_search_sql(text: &str) -> Option<(SearchTerm, Vec<String>)> {
        let term = SearchTerm::parse(text)?;
        let search = resolved(&term);
        let query = AdminQuery {
            search: Some(term.clone()),
            ..AdminQuery::default()
        };
        let mut sqls = Vec::new();
        #[cfg(feature = "sqlite")]
        sqls.push(sql_of::<sqlx::Sqlite>(&query, &search));
        #[cfg(feature = "postgres")]
        sqls.push(sql_of::<sqlx::Postgres>(&query, &search));
        Some((term, sqls))
    }

    fn sql_of<DB>(query: &AdminQuery, search: &crate::admin::query::ResolvedSearch) -> String
    where
        DB: sqlx::Database,
        for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut builder = sqlx::QueryBuilder::<DB>::new("SELECT 1 FROM sessions s WHERE 1 = 1");
        crate::admin::query::push_filters(&mut builder, query, Some(search), 0);
        builder.sql().to_owned()
    }
}

#[cfg(sql)]
mod stored {
    use crate::sessions::db_store::SessionRow;
    use crate::sessions::{SessionRecord, StoreError};

    /// A sessions-table row as the database could hold it after any bug, manual edit or partial
    /// write: every column as its SQL type allows.
    #[derive(Debug, Clone, Default)]
    #[allow(missing_docs)]
    pub struct StoredSession {
        pub public_id: String,
        pub token_hash: Vec<u8>,
        pub user_id: Option<i64>,
        pub data: String,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
        pub expiry_policy: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub last_activity_at: i64,
        pub expires_at: i64,
        pub client_hints: Option<String>,
        pub country_code: Option<String>,
        pub city: Option<String>,
        pub first_ip: Option<String>,
        pub first_country_code: Option<String>,
        pub first_city: Option<String>,
        pub auth_method: Option<String>,
        pub aal: Option<i16>,
        pub authenticated_at: Option<i64>,
        pub label: Option<String>,
    }

    /// Decodes a stored row as every load does.
    pub fn decode_stored_session(row: StoredSession) -> Result<SessionRecord, StoreError> {
        SessionRow {
            public_id: row.public_id,
            token_hash: row.token_hash,
            user_id: row.user_id,
            data: row.data,
            ip: row.ip,
            user_agent: row.user_agent,
            expiry_policy: row.expiry_policy,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_activity_at: row.last_activity_at,
            expires_at: row.expires_at,
            client_hints: row.client_hints,
            country_code: row.country_code,
            city: row.city,
            first_ip: row.first_ip,
            first_country_code: row.first_country_code,
            first_city: row.first_city,
            auth_method: row.auth_method,
            aal: row.aal,
            authenticated_at: row.authenticated_at,
            label: row.label,
        }
        .into_record()
    }
}
