//! `idempotency_keys`: claiming a client's `Idempotency-Key` in the transaction of the write
//! it guards, storing that write's response in the same transaction, and purging expired
//! keys.
//!
//! A claim is one `INSERT ... ON CONFLICT DO NOTHING` on the key's primary key (tenant,
//! credential, key). On PostgreSQL a concurrent claim of the same key waits for the
//! transaction holding the uncommitted row: when it commits, the waiter finds the committed
//! row (and its response); when it rolls back, the waiter's insert goes through. That wait is
//! bounded by `lock_timeout`, set for the claim only ([`bound_lock_wait`],
//! [`restore_lock_wait`]); a wait that runs out is [`ClaimAttempt::StillInFlight`]. SQLite
//! has one writer at a time, so a claim never meets an uncommitted row there.

use crate::{Db, DriverError};
use account_models::TenantId;
use account_models::entities::idempotency_keys::{self, Column as C};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityName, EntityTrait,
    QueryFilter, Statement, Value,
};

/// Whose key it is: the tenant, the credential within it (`key:<id>`, `user:<id>`,
/// `operator:<id>`) and the client's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyScope {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The credential that sent it (at most 255 characters).
    pub credential: String,
    /// The client's key (at most 255 characters).
    pub key: String,
}

/// A claim to write.
#[derive(Clone, Debug)]
pub struct NewClaim {
    /// Whose key.
    pub scope: KeyScope,
    /// SHA-256 of the request.
    pub request_hash: Vec<u8>,
    /// Now.
    pub created_at: DateTimeUtc,
    /// When the key may be claimed anew.
    pub expires_at: DateTimeUtc,
}

/// A key's row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKey {
    /// SHA-256 of the request it was claimed with.
    pub request_hash: Vec<u8>,
    /// The stored response's status (`None`: not stored).
    pub status_code: Option<i16>,
    /// The stored response's sealed body.
    pub response: Option<Vec<u8>>,
    /// When it was claimed.
    pub created_at: DateTimeUtc,
    /// When it may be claimed anew.
    pub expires_at: DateTimeUtc,
}

/// What one attempt to take a key got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimAttempt {
    /// The row is ours, in the caller's transaction.
    Claimed,
    /// Another claim's committed row holds the key (read it with [`fetch_key`]).
    Held,
    /// Another transaction holds the key uncommitted and did not finish within the wait
    /// bound (PostgreSQL).
    StillInFlight,
}

fn scoped(scope: &KeyScope) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(C::TenantId.eq(scope.tenant_id))
        .add(C::Credential.eq(scope.credential.as_str()))
        .add(C::Key.eq(scope.key.as_str()))
}

/// PostgreSQL's `lock_not_available`: a `lock_timeout` ran out.
fn is_lock_timeout(error: &DbErr) -> bool {
    crate::error::sqlstate(error).as_deref() == Some("55P03")
}

/// Bounds how long the caller's transaction waits for a lock, from now until
/// [`restore_lock_wait`] (PostgreSQL: `set_config('lock_timeout', .., true)`, one statement;
/// nothing on SQLite, where the write lock was taken at `BEGIN`). Returns the setting it
/// replaced, for [`restore_lock_wait`].
pub async fn bound_lock_wait(
    db: Db<'_>,
    wait: std::time::Duration,
) -> Result<Option<String>, DriverError> {
    let conn = db.conn();
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    // 0 would mean "wait forever": the bound is at least a millisecond.
    let millis = wait.as_millis().clamp(1, u128::from(u32::MAX));
    // `OFFSET 0` keeps the subquery a subquery: the old value is read before the new is set.
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT previous, set_config('lock_timeout', $1, true) AS applied \
         FROM (SELECT current_setting('lock_timeout') AS previous OFFSET 0) AS p",
        [Value::from(format!("{millis}ms"))],
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row
        .map(|row| row.try_get::<String>("", "previous"))
        .transpose()?)
}

/// Puts back the lock wait [`bound_lock_wait`] replaced (one statement on PostgreSQL when
/// `previous` is `Some`; nothing otherwise).
pub async fn restore_lock_wait(db: Db<'_>, previous: Option<&str>) -> Result<(), DriverError> {
    let Some(previous) = previous else {
        return Ok(());
    };
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('lock_timeout', $1, true) AS applied",
        [Value::from(previous)],
    );
    db.conn().query_one_raw(statement).await?;
    Ok(())
}

/// Inserts the claim unless the key has a row (one statement).
pub async fn insert_claim(db: Db<'_>, claim: &NewClaim) -> Result<ClaimAttempt, DriverError> {
    let row = idempotency_keys::ActiveModel {
        tenant_id: Set(claim.scope.tenant_id),
        credential: Set(claim.scope.credential.clone()),
        key: Set(claim.scope.key.clone()),
        request_hash: Set(claim.request_hash.clone()),
        status_code: Set(None),
        response: Set(None),
        created_at: Set(claim.created_at),
        expires_at: Set(claim.expires_at),
    };
    let inserted = idempotency_keys::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::TenantId, C::Credential, C::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db.conn())
        .await;
    match inserted {
        Ok(0) | Err(DbErr::RecordNotInserted) => Ok(ClaimAttempt::Held),
        Ok(_) => Ok(ClaimAttempt::Claimed),
        Err(error) if is_lock_timeout(&error) => Ok(ClaimAttempt::StillInFlight),
        Err(error) => Err(error.into()),
    }
}

/// Takes over the key's row if it expired by `now`, for `claim` (one statement). `Held`
/// when it had not expired (or another claim took it over first).
pub async fn take_over_expired(
    db: Db<'_>,
    claim: &NewClaim,
    now: DateTimeUtc,
) -> Result<ClaimAttempt, DriverError> {
    let updated = idempotency_keys::Entity::update_many()
        .col_expr(C::RequestHash, Expr::value(claim.request_hash.clone()))
        .col_expr(C::StatusCode, Expr::value(Option::<i16>::None))
        .col_expr(C::Response, Expr::value(Option::<Vec<u8>>::None))
        .col_expr(C::CreatedAt, Expr::value(claim.created_at))
        .col_expr(C::ExpiresAt, Expr::value(claim.expires_at))
        .filter(scoped(&claim.scope))
        .filter(C::ExpiresAt.lte(now))
        .exec(db.conn())
        .await;
    match updated {
        Ok(result) if result.rows_affected == 1 => Ok(ClaimAttempt::Claimed),
        Ok(_) => Ok(ClaimAttempt::Held),
        Err(error) if is_lock_timeout(&error) => Ok(ClaimAttempt::StillInFlight),
        Err(error) => Err(error.into()),
    }
}

/// The key's row as committed (or as this transaction wrote it), if any.
pub async fn fetch_key(db: Db<'_>, scope: &KeyScope) -> Result<Option<StoredKey>, DriverError> {
    let row = idempotency_keys::Entity::find()
        .filter(scoped(scope))
        .one(db.conn())
        .await?;
    Ok(row.map(|row| StoredKey {
        request_hash: row.request_hash,
        status_code: row.status_code,
        response: row.response,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }))
}

/// Stores the response of the write a claim guarded, on the claim's row (one statement).
/// [`DriverError::NotFound`] when the caller holds no unanswered claim of the key.
pub async fn store_response(
    db: Db<'_>,
    scope: &KeyScope,
    status_code: i16,
    sealed: Vec<u8>,
) -> Result<(), DriverError> {
    let updated = idempotency_keys::Entity::update_many()
        .col_expr(C::StatusCode, Expr::value(status_code))
        .col_expr(C::Response, Expr::value(sealed))
        .filter(scoped(scope))
        .filter(C::StatusCode.is_null())
        .exec(db.conn())
        .await?;
    if updated.rows_affected == 1 {
        Ok(())
    } else {
        Err(DriverError::NotFound {
            entity: "idempotency key",
        })
    }
}

/// Deletes a claim whose write stored no response (one statement), so a retry runs anew.
pub async fn release_claim(db: Db<'_>, scope: &KeyScope) -> Result<(), DriverError> {
    idempotency_keys::Entity::delete_many()
        .filter(scoped(scope))
        .filter(C::StatusCode.is_null())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Deletes at most `batch` keys of any tenant that expired by `now` (one statement, through
/// `ix_idempotency_keys_expires_at`); returns how many.
pub async fn purge_expired_keys(
    db: Db<'_>,
    now: DateTimeUtc,
    batch: u64,
) -> Result<u64, DriverError> {
    let expired = Query::select()
        .columns([C::TenantId, C::Credential, C::Key])
        .from(idempotency_keys::Entity.table_ref())
        .and_where(C::ExpiresAt.lte(now))
        .limit(batch)
        .to_owned();
    let key = Expr::tuple([
        Expr::col(C::TenantId),
        Expr::col(C::Credential),
        Expr::col(C::Key),
    ]);
    let deleted = idempotency_keys::Entity::delete_many()
        .filter(key.in_subquery(expired))
        .exec(db.conn())
        .await?;
    Ok(deleted.rows_affected)
}
