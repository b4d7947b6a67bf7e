//! Demo and benchmark data: many users and sessions with plausible addresses, devices, places and
//! times, written in large batches. For benches and demos only — every seeded user has an unusable
//! password, and every seeded session a token nobody knows.

use std::net::{IpAddr, Ipv4Addr};

use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::QueryBuilder;

use crate::clock::{now, to_millis};
use crate::db::with_pool;
use crate::db::Database;
use crate::device::DeviceSummary;
use crate::sessions::{ip_key, PublicId, StoreError};

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    /// Users to create (named `seed-user-N`).
    pub users: u64,
    /// Sessions to create, spread over those users (about one in twenty anonymous).
    pub sessions: u64,
}

const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "curl/8.5.0",
];

const PLACES: [(&str, &str); 8] = [
    ("GB", "London"),
    ("SE", "Linköping"),
    ("US", "Milton"),
    ("DE", "Berlin"),
    ("FR", "Paris"),
    ("JP", "Tokyo"),
    ("BR", "São Paulo"),
    ("IN", "Mumbai"),
];

/// Rows per INSERT: well under both engines' limits on bound parameters.
const BATCH: u64 = 1000;

/// Seeds `plan`, calling `progress(sessions_done)` after every batch. Returns the sessions written.
pub async fn seed(
    db: &Database,
    plan: SeedPlan,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let first_user = seed_users(db, plan.users).await?;
    let categories: Vec<&'static str> = USER_AGENTS
        .iter()
        .map(|ua| DeviceSummary::from_user_agent(ua).category.as_str())
        .collect();
    let now = to_millis(now());
    let day = 86_400_000_i64;
    let mut done = 0;
    while done < plan.sessions {
        let n = BATCH.min(plan.sessions - done);
        let mut rng = rand::thread_rng();
        let rows: Vec<SeedRow> = (0..n)
            .map(|_| {
                let agent = rng.gen_range(0..USER_AGENTS.len());
                let place = PLACES[rng.gen_range(0..PLACES.len())];
                let ip = IpAddr::V4(Ipv4Addr::new(
                    [10, 81, 89, 172, 203, 216][rng.gen_range(0..6)],
                    rng.gen(),
                    rng.gen(),
                    rng.gen_range(1..255),
                ));
                let created = now - rng.gen_range(0..30 * day);
                let last = created + rng.gen_range(0..(now - created).max(1));
                let mut secret = [0u8; 32];
                rng.fill_bytes(&mut secret);
                let user_id = (plan.users > 0 && rng.gen_range(0..20) != 0)
                    .then(|| first_user + rng.gen_range(0..plan.users as i64));
                SeedRow {
                    public_id: PublicId::generate().to_string(),
                    token_hash: Sha256::digest(secret).to_vec(),
                    user_id,
                    ip: ip.to_string(),
                    ip_key: ip_key(ip).to_vec(),
                    user_agent: USER_AGENTS[agent],
                    category: categories[agent],
                    country: place.0,
                    city: place.1,
                    created,
                    last,
                    // Some have already expired (not yet swept), as in a real table.
                    expires: last + 14 * day - rng.gen_range(0..16 * day),
                }
            })
            .collect();
        with_pool!(db, |pool| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO sessions (public_id, token_hash, user_id, data, ip, ip_key, user_agent, \
                 created_at, updated_at, last_activity_at, expires_at, country_code, city, first_ip, \
                 first_country_code, first_city, device_category) ",
            );
            insert.push_values(&rows, |mut b, row| {
                b.push_bind(&row.public_id)
                    .push_bind(&row.token_hash)
                    .push_bind(row.user_id)
                    .push_bind("{}")
                    .push_bind(&row.ip)
                    .push_bind(&row.ip_key)
                    .push_bind(row.user_agent)
                    .push_bind(row.created)
                    .push_bind(row.last)
                    .push_bind(row.last)
                    .push_bind(row.expires)
                    .push_bind(row.country)
                    .push_bind(row.city)
                    .push_bind(&row.ip)
                    .push_bind(row.country)
                    .push_bind(row.city)
                    .push_bind(row.category);
            });
            insert.build().execute(pool).await.map(drop)
        })?;
        done += n;
        progress(done);
    }
    Ok(done)
}

struct SeedRow {
    public_id: String,
    token_hash: Vec<u8>,
    user_id: Option<i64>,
    ip: String,
    ip_key: Vec<u8>,
    user_agent: &'static str,
    category: &'static str,
    country: &'static str,
    city: &'static str,
    created: i64,
    last: i64,
    expires: i64,
}

/// Creates `count` users with unusable passwords; returns the first one's id (ids are consecutive).
async fn seed_users(db: &Database, count: u64) -> Result<i64, StoreError> {
    let stamp = to_millis(now());
    // A run-unique prefix, so seeding twice adds users instead of colliding.
    let run = PublicId::generate().to_string()[..6].to_lowercase();
    let mut first = None;
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let names: Vec<String> = (done..done + n)
            .map(|i| format!("seed-{run}-{i}"))
            .collect();
        let ids: Vec<(i64,)> = with_pool!(db, |pool| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO users (username, username_key, email, password_hash, is_staff, created_at) ",
            );
            insert.push_values(&names, |mut b, name| {
                b.push_bind(name)
                    .push_bind(name)
                    .push_bind(format!("{name}@example.test"))
                    // Not a PHC string: no password ever verifies against it.
                    .push_bind("!seeded")
                    .push_bind(false)
                    .push_bind(stamp);
            });
            insert.push(" RETURNING id");
            insert.build_query_as().fetch_all(pool).await
        })?;
        if first.is_none() {
            first = ids.iter().map(|(id,)| *id).min();
        }
        done += n;
    }
    Ok(first.unwrap_or(0))
}
