//! `operator_keys`: platform operator keys (no tenant: they act across tenants).

use crate::{Db, DriverError};
use account_models::OperatorKeyId;
use account_models::entities::operator_keys;
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

/// An operator key as stored (never its plaintext).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperatorKeySnapshot {
    /// Id.
    pub id: OperatorKeyId,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub key_prefix: String,
    /// Keyed digest, hex.
    pub key_digest: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTimeUtc>,
}

fn snapshot(m: operator_keys::Model) -> OperatorKeySnapshot {
    OperatorKeySnapshot {
        id: m.id,
        name: m.name,
        key_prefix: m.key_prefix,
        key_digest: m.key_digest,
        created_at: m.created_at,
        revoked_at: m.revoked_at,
    }
}

/// Stores a new key.
pub async fn insert_operator_key(
    db: Db<'_>,
    name: &str,
    key_prefix: &str,
    key_digest: &str,
    now: DateTimeUtc,
) -> Result<OperatorKeySnapshot, DriverError> {
    let model = operator_keys::ActiveModel {
        id: Set(OperatorKeyId::new()),
        name: Set(name.to_owned()),
        key_prefix: Set(key_prefix.to_owned()),
        key_digest: Set(key_digest.to_owned()),
        created_at: Set(now),
        revoked_at: Set(None),
    }
    .insert(db.conn())
    .await?;
    Ok(snapshot(model))
}

/// The key with this digest, revoked or not.
pub async fn fetch_operator_key_by_digest(
    db: Db<'_>,
    key_digest: &str,
) -> Result<Option<OperatorKeySnapshot>, DriverError> {
    Ok(operator_keys::Entity::find()
        .filter(operator_keys::Column::KeyDigest.eq(key_digest))
        .one(db.conn())
        .await?
        .map(snapshot))
}

/// Every operator key, oldest first.
pub async fn fetch_operator_keys(db: Db<'_>) -> Result<Vec<OperatorKeySnapshot>, DriverError> {
    Ok(operator_keys::Entity::find()
        .order_by_asc(operator_keys::Column::CreatedAt)
        .order_by_asc(operator_keys::Column::Id)
        .all(db.conn())
        .await?
        .into_iter()
        .map(snapshot)
        .collect())
}

/// Marks the key revoked (one conditional statement); `false` when there is no such key or it
/// was already revoked.
pub async fn revoke_operator_key(
    db: Db<'_>,
    id: OperatorKeyId,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let result = operator_keys::Entity::update_many()
        .col_expr(operator_keys::Column::RevokedAt, Expr::value(Some(now)))
        .filter(operator_keys::Column::Id.eq(id))
        .filter(operator_keys::Column::RevokedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected == 1)
}
