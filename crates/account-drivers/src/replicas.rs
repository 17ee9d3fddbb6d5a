//! `replicas`: write-ahead-log positions for routing reads to PostgreSQL streaming replicas.
//!
//! The spine remembers where the primary's log stood after a principal's commit
//! ([`current_wal_position`]) and sends that principal's reads to a replica only once the
//! replica has replayed at least that far ([`replayed_wal_position`]). Positions travel as
//! text (`pg_lsn`'s `X/Y` form) and compare as [`WalPosition`]s in the process, so no
//! comparison needs a round trip. SQLite has no replicas: both reads answer `None` there.

use crate::{Db, DriverError};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::fmt;
use std::str::FromStr;

/// A position in PostgreSQL's write-ahead log (a `pg_lsn`), ordered as the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition(pub u64);

/// A `pg_lsn` text that is not `X/Y` in hexadecimal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a WAL position: {0:?}")]
pub struct InvalidWalPosition(pub String);

impl FromStr for WalPosition {
    type Err = InvalidWalPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidWalPosition(text.to_owned());
        let (high, low) = text.split_once('/').ok_or_else(invalid)?;
        let high = u32::from_str_radix(high, 16).map_err(|_| invalid())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| invalid())?;
        Ok(Self((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for WalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

async fn position(db: Db<'_>, sql: &str) -> Result<Option<WalPosition>, DriverError> {
    let conn = db.conn();
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let statement = Statement::from_string(DbBackend::Postgres, sql.to_owned());
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let text: Option<String> = row.try_get("", "position")?;
    text.map(|text| {
        text.parse()
            .map_err(|error: InvalidWalPosition| sea_orm::DbErr::Custom(error.to_string()).into())
    })
    .transpose()
}

/// Where the primary's log stands now: read after a commit, it is at or past that commit's
/// record. It is the insert position (`pg_current_wal_insert_lsn()`), not the write position
/// `pg_current_wal_lsn()`: with `synchronous_commit = off` a commit returns before its record
/// is written, and the write position can still be short of it. One statement on PostgreSQL;
/// `None` on SQLite, and on a server in recovery (a replica has no position of its own).
pub async fn current_wal_position(db: Db<'_>) -> Result<Option<WalPosition>, DriverError> {
    position(
        db,
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
         ELSE pg_current_wal_insert_lsn()::text END AS position",
    )
    .await
}

/// How far a replica has replayed the primary's log (`pg_last_wal_replay_lsn()`): every
/// commit at or before it is visible there. One statement on PostgreSQL; `None` on SQLite and
/// on a server that is not in recovery (a primary, or a promoted replica, which no longer
/// follows the primary).
pub async fn replayed_wal_position(db: Db<'_>) -> Result<Option<WalPosition>, DriverError> {
    position(
        db,
        "SELECT pg_last_wal_replay_lsn()::text AS position WHERE pg_is_in_recovery()",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_print_and_order_as_the_log() {
        let low: WalPosition = "0/16B3748".parse().unwrap_or_default();
        let high: WalPosition = "1/0".parse().unwrap_or_default();
        assert_eq!(low, WalPosition(0x16B_3748));
        assert_eq!(high, WalPosition(1 << 32));
        assert!(low < high);
        assert_eq!(low.to_string(), "0/16B3748");
        assert_eq!(high.to_string(), "1/0");
        assert!("16B3748".parse::<WalPosition>().is_err());
        assert!("x/1".parse::<WalPosition>().is_err());
    }
}
