//! The clock and the millisecond form moments are stored in. Below sessions, accounts and admin
//! alike, so that each can read the time without depending on the others.

use time::OffsetDateTime;

/// Unix milliseconds of a moment, as stored in the database.
pub fn to_millis(moment: OffsetDateTime) -> i64 {
    i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The moment of stored Unix milliseconds; out-of-range values are clamped rather than refused.
pub fn from_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap_or(
        if millis < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            time::macros::datetime!(9999-12-31 23:59:59 UTC)
        },
    )
}

/// The current time, at the millisecond precision the database keeps (so a record read back equals
/// the record written).
pub fn now() -> OffsetDateTime {
    from_millis(to_millis(OffsetDateTime::now_utc()))
}
