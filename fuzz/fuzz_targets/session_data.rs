//! A stored session row, decoded as every load does: its data (a JSON object), expiry policy,
//! client hints, addresses (whole or cut, `203.0.113.0/24`), assurance and times, whatever a
//! bug, a manual edit or another version left in the columns. A row decodes or is reported
//! corrupt; it never panics, and what decodes reads back the same.

#![no_main]

use arbitrary::Arbitrary;
use console_sessions::fuzzing::{decode_stored_session, StoredSession};
use console_sessions::sessions::{parse_stored_ip, StoreError};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Row {
    public_id: String,
    token_hash: Vec<u8>,
    user_id: Option<i64>,
    data: String,
    ip: Option<String>,
    user_agent: Option<String>,
    expiry_policy: Option<String>,
    times: [i64; 4],
    client_hints: Option<String>,
    country_code: Option<String>,
    city: Option<String>,
    first_ip: Option<String>,
    first_country_code: Option<String>,
    first_city: Option<String>,
    auth_method: Option<String>,
    aal: Option<i16>,
    authenticated_at: Option<i64>,
    label: Option<String>,
}

fuzz_target!(|row: Row| {
    if let Some(ip) = &row.ip {
        let _ = parse_stored_ip(ip);
    }
    let stored = StoredSession {
        public_id: row.public_id,
        token_hash: row.token_hash,
        user_id: row.user_id,
        data: row.data.clone(),
        ip: row.ip,
        user_agent: row.user_agent,
        expiry_policy: row.expiry_policy,
        created_at: row.times[0],
        updated_at: row.times[1],
        last_activity_at: row.times[2],
        expires_at: row.times[3],
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
    };
    match decode_stored_session(stored) {
        Ok(record) => {
            // The data is the stored JSON object, whole.
            let stored: serde_json::Value =
                serde_json::from_str(&row.data).expect("decoded data is JSON");
            assert_eq!(serde_json::Value::Object(record.data.clone()), stored);
            assert_eq!(
                record.public_id.as_str().len(),
                console_sessions::sessions::PUBLIC_ID_LENGTH
            );
            let _ = record.is_active_at(console_sessions::sessions::now());
            if record.user_id.is_none() {
                assert!(record.assurance.is_none());
            }
        }
        Err(StoreError::Corrupt { .. }) => {}
        Err(other) => panic!("a stored row is corrupt or not, never {other:?}"),
    }
});
