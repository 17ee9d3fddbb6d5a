//! `api_keys`: issue, list, revoke, rotate and look up keys by their keyed digest.
//!
//! The plaintext key never reaches this layer: engines hash it and pass the digest.

use crate::tenants::{
    TenantCoreSnapshot, TenantTotals, add_to_totals, core_snapshot, fetch_totals,
};
use crate::{DriverError, OffsetPage, Page, TenantDriver};

mod usage;
use account_models::entities::{api_keys, tenants};
use account_models::{ApiKeyId, ApiKeyStatus, TenantId, TenantStatus, UserId};
use sea_orm::prelude::{DateTimeUtc, Json};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationDef,
};
pub use usage::{KeyUsage, MAX_USAGE_BATCH};

/// An API key as the engines see it (never the digest).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct APIKeySnapshot {
    /// Id.
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Issuing user.
    pub user_id: Option<UserId>,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub key_prefix: String,
    /// Stored status.
    pub status: ApiKeyStatus,
    /// Permission strings.
    pub permissions: Vec<String>,
    /// Workers it may run; `None` means all.
    pub allowed_workers: Option<Vec<String>>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Concurrent runs.
    pub max_concurrent_runs: Option<i32>,
    /// Expiry.
    pub expires_at: Option<DateTimeUtc>,
    /// Revocation time.
    pub revoked_at: Option<DateTimeUtc>,
    /// Revocation reason.
    pub revoked_reason: Option<String>,
    /// Kill switch.
    pub is_frozen: bool,
    /// Coarse last use.
    pub last_used_at: Option<DateTimeUtc>,
    /// The key it replaced by rotation.
    pub rotated_from_id: Option<ApiKeyId>,
    /// The key that replaced it by rotation (set once).
    pub successor_id: Option<ApiKeyId>,
    /// The tenant's JSON object about the key.
    pub metadata: Option<Json>,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// The tenant as [`TenantDriver::lock_tenant_for_new_api_key`] left it: locked, with the key
/// about to be written already counted in its total.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewKeyTenant {
    /// The tenant as stored (quotas, status).
    pub tenant: TenantCoreSnapshot,
    /// Its keys not revoked before the new one: an upper bound of the keys that count
    /// against `max_api_keys` (those also active and unexpired), so a number under the quota
    /// admits the new key without counting them.
    pub unrevoked_keys: u64,
}

/// A key found by digest, with what verification needs about its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyWithTenant {
    /// The key.
    pub key: APIKeySnapshot,
    /// Its tenant's lifecycle status.
    pub tenant_status: TenantStatus,
}

/// A key to insert; the digest is computed by the engine.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// Id to create it with.
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Issuing user.
    pub user_id: Option<UserId>,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub key_prefix: String,
    /// Keyed digest of the whole key.
    pub key_digest: String,
    /// Permission strings.
    pub permissions: Vec<String>,
    /// Workers it may run.
    pub allowed_workers: Option<Vec<String>>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Concurrent runs.
    pub max_concurrent_runs: Option<i32>,
    /// Expiry.
    pub expires_at: Option<DateTimeUtc>,
    /// The key it replaces (rotation).
    pub rotated_from_id: Option<ApiKeyId>,
    /// The tenant's JSON object about the key (validated by the engine).
    pub metadata: Option<Json>,
}

fn strings(json: &Json) -> Vec<String> {
    json.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn snapshot(m: api_keys::Model) -> APIKeySnapshot {
    APIKeySnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        user_id: m.user_id,
        name: m.name,
        key_prefix: m.key_prefix,
        status: m.status,
        permissions: strings(&m.permissions),
        allowed_workers: m.allowed_workers.as_ref().map(strings),
        rate_limit_rpm: m.rate_limit_rpm,
        max_concurrent_runs: m.max_concurrent_runs,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        revoked_reason: m.revoked_reason,
        is_frozen: m.is_frozen,
        last_used_at: m.last_used_at,
        rotated_from_id: m.rotated_from_id,
        successor_id: m.successor_id,
        metadata: m.metadata,
        created_at: m.created_at,
    }
}

/// Keys that are active and not past their expiry at `now`.
fn usable(now: DateTimeUtc) -> Condition {
    Condition::all()
        .add(api_keys::Column::Status.eq(ApiKeyStatus::Active))
        .add(
            Condition::any()
                .add(api_keys::Column::ExpiresAt.is_null())
                .add(api_keys::Column::ExpiresAt.gt(now)),
        )
}

/// The revocation of `tenant`'s keys that are not revoked yet; callers narrow it to the keys
/// they mean.
fn revoke_unrevoked(
    tenant: TenantId,
    reason: &str,
    now: DateTimeUtc,
) -> sea_orm::UpdateMany<api_keys::Entity> {
    api_keys::Entity::update_many()
        .col_expr(
            api_keys::Column::Status,
            Expr::value(ApiKeyStatus::Revoked.as_str()),
        )
        .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
        .col_expr(api_keys::Column::RevokedReason, Expr::value(reason))
        .filter(api_keys::Column::TenantId.eq(tenant))
        .filter(api_keys::Column::Status.ne(ApiKeyStatus::Revoked))
}

fn tenant_of_key() -> RelationDef {
    api_keys::Entity::belongs_to(tenants::Entity)
        .from(api_keys::Column::TenantId)
        .to(tenants::Column::Id)
        .into()
}

impl TenantDriver<'_> {
    /// Keys that count against the plan's key quota: active and unexpired at `now`.
    pub async fn count_active_api_keys(
        &self,
        tenant: TenantId,
        now: DateTimeUtc,
    ) -> Result<u64, DriverError> {
        Ok(api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(usable(now))
            .count(self.db.conn())
            .await?)
    }

    /// Locks the tenant row for a new key and counts that key in the tenant's key total, in
    /// one `UPDATE ... RETURNING` (the lock, the read of the quotas and the total's bump at
    /// once); `None` when the tenant does not exist.
    ///
    /// The caller then inserts the key ([`TenantDriver::insert_api_key`]) in the same
    /// transaction, or fails it: a refusal after this call must roll back (as every spine use
    /// case does on error), or the total would count a key that was never written.
    pub async fn lock_tenant_for_new_api_key(
        &self,
        tenant: TenantId,
    ) -> Result<Option<NewKeyTenant>, DriverError> {
        use tenants::Column as C;
        let rows = tenants::Entity::update_many()
            .col_expr(C::ApiKeyCount, Expr::col(C::ApiKeyCount).add(1_i64))
            .filter(C::Id.eq(tenant))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(|row| {
            let after = TenantTotals::of(&row).api_keys;
            NewKeyTenant {
                unrevoked_keys: after.saturating_sub(1),
                tenant: core_snapshot(row),
            }
        }))
    }

    /// Inserts a key and returns it. Call it after
    /// [`TenantDriver::lock_tenant_for_new_api_key`] in the same transaction: that call
    /// counted the key in the tenant's total and holds the lock under which the caller checked
    /// the quota.
    pub async fn insert_api_key(
        &self,
        key: NewApiKey,
        now: DateTimeUtc,
    ) -> Result<APIKeySnapshot, DriverError> {
        let model = api_keys::ActiveModel {
            id: Set(key.id),
            tenant_id: Set(key.tenant_id),
            user_id: Set(key.user_id),
            name: Set(key.name),
            key_prefix: Set(key.key_prefix),
            key_digest: Set(key.key_digest),
            permissions: Set(Json::from(key.permissions)),
            allowed_workers: Set(key.allowed_workers.map(Json::from)),
            rate_limit_rpm: Set(key.rate_limit_rpm),
            max_concurrent_runs: Set(key.max_concurrent_runs),
            status: Set(ApiKeyStatus::Active),
            expires_at: Set(key.expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
            last_used_at: Set(None),
            total_requests: Set(0),
            is_frozen: Set(false),
            frozen_at: Set(None),
            frozen_by: Set(None),
            freeze_reason: Set(None),
            rotated_from_id: Set(key.rotated_from_id),
            successor_id: Set(None),
            metadata: Set(key.metadata),
            created_at: Set(now),
            active_runs: Set(0),
        }
        .insert(self.db.conn())
        .await?;
        Ok(snapshot(model))
    }

    /// The tenant's keys, newest first; revoked ones only when asked. Two statements: the
    /// total, then the page. Without revoked keys the total is the tenant row's key total (one
    /// read, whatever the number of keys); with them it is counted.
    pub async fn fetch_api_keys(
        &self,
        tenant: TenantId,
        include_revoked: bool,
        page: OffsetPage,
    ) -> Result<Page<APIKeySnapshot>, DriverError> {
        let query = || {
            let query = api_keys::Entity::find().filter(api_keys::Column::TenantId.eq(tenant));
            if include_revoked {
                query
            } else {
                query.filter(api_keys::Column::Status.ne(ApiKeyStatus::Revoked))
            }
        };
        let total = if include_revoked {
            query().count(self.db.conn()).await?
        } else {
            fetch_totals(self.db, tenant).await?.api_keys
        };
        let rows = query()
            .order_by_desc(api_keys::Column::CreatedAt)
            .order_by_desc(api_keys::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }

    /// The tenant's key with this id.
    pub async fn fetch_api_key_by_id(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// The key with this digest and its tenant's status, in one query. Digests are unique
    /// across tenants: this is how a request finds its tenant.
    pub async fn fetch_api_key_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<KeyWithTenant>, DriverError> {
        let row = api_keys::Entity::find()
            .join(JoinType::InnerJoin, tenant_of_key())
            .column_as(tenants::Column::Status, "tenant_status")
            .filter(api_keys::Column::KeyDigest.eq(digest))
            // A deleted project's keys answer like missing ones.
            .filter(crate::projects::not_deleted((
                api_keys::Entity,
                api_keys::Column::TenantId,
            )))
            .into_model::<KeyRow>()
            .one(self.db.conn())
            .await?;
        Ok(row.map(|r| KeyWithTenant {
            tenant_status: r.tenant_status,
            key: snapshot(r.key),
        }))
    }

    /// Revokes an active key; returns `None` (and changes nothing) when the key is missing,
    /// belongs to another tenant or is already revoked. A revocation takes the key out of the
    /// tenant's key total in a second statement on the same handle.
    pub async fn update_api_key_revoked(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        reason: &str,
        now: DateTimeUtc,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let rows = revoke_unrevoked(tenant, reason, now)
            .filter(api_keys::Column::Id.eq(id))
            .exec_with_returning(self.db.conn())
            .await?;
        self.uncount_revoked(tenant, rows.len()).await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Revokes every unrevoked key of `tenant` issued for `user` (personal keys), in one
    /// statement; the keys as revoked. When any was, a second statement takes them out of the
    /// tenant's key total.
    pub async fn update_user_api_keys_revoked(
        &self,
        tenant: TenantId,
        user: UserId,
        reason: &str,
        now: DateTimeUtc,
    ) -> Result<Vec<APIKeySnapshot>, DriverError> {
        let rows = revoke_unrevoked(tenant, reason, now)
            .filter(api_keys::Column::UserId.eq(user))
            .exec_with_returning(self.db.conn())
            .await?;
        self.uncount_revoked(tenant, rows.len()).await?;
        Ok(rows.into_iter().map(snapshot).collect())
    }

    /// Takes `revoked` keys out of the tenant's key total (nothing when none).
    async fn uncount_revoked(&self, tenant: TenantId, revoked: usize) -> Result<(), DriverError> {
        let revoked = i64::try_from(revoked).unwrap_or(i64::MAX);
        add_to_totals(self.db, tenant, 0, -revoked).await
    }

    /// Shortens a usable key's life to `expires_at` (rotation's grace period) unless it
    /// already expires sooner.
    pub async fn update_api_key_expiry(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        expires_at: DateTimeUtc,
        now: DateTimeUtc,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let rows = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::ExpiresAt, Expr::value(expires_at))
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .filter(usable(now))
            .filter(
                Condition::any()
                    .add(api_keys::Column::ExpiresAt.is_null())
                    .add(api_keys::Column::ExpiresAt.gt(expires_at)),
            )
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Rotation's one decision: records `successor` on the key and shortens its life to
    /// `grace_end` (unless it already expires sooner), only while the key is active, unfrozen,
    /// unexpired at `now` and has no successor yet. `None` (nothing changed) when any of that
    /// fails or the key is missing or another tenant's: of racing rotations exactly one
    /// matches, because each re-evaluates the condition on the row it updates.
    pub async fn update_api_key_rotated(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        successor: ApiKeyId,
        grace_end: DateTimeUtc,
        now: DateTimeUtc,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let shortened = CaseStatement::new()
            .case(
                Condition::any()
                    .add(api_keys::Column::ExpiresAt.is_null())
                    .add(api_keys::Column::ExpiresAt.gt(grace_end)),
                Expr::value(grace_end),
            )
            .finally(Expr::col(api_keys::Column::ExpiresAt));
        let rows = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::SuccessorId, Expr::value(successor))
            .col_expr(api_keys::Column::ExpiresAt, shortened.into())
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .filter(usable(now))
            .filter(api_keys::Column::IsFrozen.eq(false))
            .filter(api_keys::Column::SuccessorId.is_null())
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// The tenant's keys that will keep working: active, unfrozen, unexpired at `now` and not
    /// replaced by rotation (a key in its grace period has a successor that carries its
    /// permissions on). Bounded by the plan's key quota.
    pub async fn fetch_lasting_api_keys(
        &self,
        tenant: TenantId,
        now: DateTimeUtc,
    ) -> Result<Vec<APIKeySnapshot>, DriverError> {
        let rows = api_keys::Entity::find()
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(usable(now))
            .filter(api_keys::Column::IsFrozen.eq(false))
            .filter(api_keys::Column::SuccessorId.is_null())
            .order_by_asc(api_keys::Column::CreatedAt)
            .order_by_asc(api_keys::Column::Id)
            .all(self.db.conn())
            .await?;
        Ok(rows.into_iter().map(snapshot).collect())
    }

    /// Replaces one of the tenant's keys' metadata (`None` clears it). Returns the key, or
    /// `None` (nothing changed) when it is missing or another tenant's.
    pub async fn update_api_key_metadata(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        metadata: Option<Json>,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let rows = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::Metadata, Expr::value(metadata))
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }

    /// Freezes one of the tenant's keys (the kill switch): verification refuses a frozen key.
    /// Returns the key, or `None` (nothing changed) when it is missing or another tenant's.
    pub async fn update_api_key_frozen(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        frozen_by: &str,
        reason: &str,
        now: DateTimeUtc,
    ) -> Result<Option<APIKeySnapshot>, DriverError> {
        let rows = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::IsFrozen, Expr::value(true))
            .col_expr(api_keys::Column::FrozenAt, Expr::value(now))
            .col_expr(api_keys::Column::FrozenBy, Expr::value(frozen_by))
            .col_expr(api_keys::Column::FreezeReason, Expr::value(reason))
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(rows.into_iter().next().map(snapshot))
    }
}

/// A key row joined with its tenant's status.
#[derive(Debug, sea_orm::FromQueryResult)]
struct KeyRow {
    #[sea_orm(nested)]
    key: api_keys::Model,
    tenant_status: TenantStatus,
}
