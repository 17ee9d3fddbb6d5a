//! Key use: the last-used time and request total, written coarsely or in batches so that a
//! verified request does not cost a write of its own.

use crate::{DriverError, TenantDriver};
use account_models::entities::api_keys;
use account_models::{ApiKeyId, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use std::time::Duration;

/// Most keys [`TenantDriver::update_api_keys_usage`] takes in one statement (8 bind
/// parameters each, far under SQLite's and PostgreSQL's limits).
pub const MAX_USAGE_BATCH: usize = 500;

/// One key's uses since the last flush, collected in memory by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key's tenant (every update is scoped by it).
    pub tenant_id: TenantId,
    /// The key.
    pub key_id: ApiKeyId,
    /// The latest use.
    pub last_used_at: DateTimeUtc,
    /// Uses counted.
    pub requests: u32,
}

impl TenantDriver<'_> {
    /// Records a use coarsely: at most one write per key per `granularity`, counting the
    /// request that triggers it. Returns whether a write happened.
    pub async fn touch_api_key_last_used(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        now: DateTimeUtc,
        granularity: Duration,
    ) -> Result<bool, DriverError> {
        let stale_before = now - chrono_duration(granularity);
        let result = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(now))
            .col_expr(
                api_keys::Column::TotalRequests,
                Expr::col(api_keys::Column::TotalRequests).add(1),
            )
            .filter(api_keys::Column::TenantId.eq(tenant))
            .filter(api_keys::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(api_keys::Column::LastUsedAt.is_null())
                    .add(api_keys::Column::LastUsedAt.lt(stale_before)),
            )
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records uses collected in memory, in one statement for up to [`MAX_USAGE_BATCH`]
    /// keys: each key's `last_used_at` moves forward to its `last_used_at` (never back) and
    /// its `total_requests` grows by `requests`. Every row is matched by tenant and id, so an
    /// entry naming another tenant's key changes nothing. Returns the rows updated; an empty
    /// batch runs no statement. Callers split larger batches (the bound keeps the statement's
    /// bind parameters under every backend's limit).
    pub async fn update_api_keys_usage(&self, usage: &[KeyUsage]) -> Result<u64, DriverError> {
        if usage.is_empty() {
            return Ok(0);
        }
        if usage.len() > MAX_USAGE_BATCH {
            return Err(DriverError::Other(sea_orm::DbErr::Custom(format!(
                "usage batch of {} keys exceeds {MAX_USAGE_BATCH}",
                usage.len()
            ))));
        }
        let this_row = |u: &KeyUsage| {
            Condition::all()
                .add(api_keys::Column::TenantId.eq(u.tenant_id))
                .add(api_keys::Column::Id.eq(u.key_id))
        };
        let mut last_used = CaseStatement::new();
        let mut requests = CaseStatement::new();
        let mut rows = Condition::any();
        for u in usage {
            last_used = last_used.case(
                this_row(u).add(
                    Condition::any()
                        .add(api_keys::Column::LastUsedAt.is_null())
                        .add(api_keys::Column::LastUsedAt.lt(u.last_used_at)),
                ),
                Expr::value(u.last_used_at),
            );
            requests = requests.case(this_row(u), Expr::value(i64::from(u.requests)));
            rows = rows.add(this_row(u));
        }
        let last_used = last_used.finally(Expr::col(api_keys::Column::LastUsedAt));
        let requests = requests.finally(Expr::value(0_i64));
        let result = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, last_used.into())
            .col_expr(
                api_keys::Column::TotalRequests,
                Expr::col(api_keys::Column::TotalRequests).add(Into::<Expr>::into(requests)),
            )
            .filter(rows)
            .exec(self.db.conn())
            .await?;
        Ok(result.rows_affected)
    }
}

fn chrono_duration(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}
