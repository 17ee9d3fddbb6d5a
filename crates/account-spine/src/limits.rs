//! Per-tenant limit overrides (operators only): a tenant's limits are its plan's with the
//! overrides an operator set laid over them, each optionally until a time; the reaper's pass
//! reverts the ones that expired ([`Spine::expire_limit_overrides`]). Every change is
//! audited with the limit's value before and after.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::OperatorPrincipal;
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::limits;
pub use account_engines::limits::{
    LimitError, LimitName, LimitOverride, LimitsChange, MAX_REASON_LENGTH, SetOverride,
};
use account_engines::types::{PlanQuotas, TenantId};
use serde_json::{Value as Json, json};

/// The value of `limit` in `quotas`, as the audit log shows it.
fn value_of(quotas: &PlanQuotas, limit: LimitName) -> Json {
    json!(limit.value_in(quotas))
}

fn limit_change(tenant: TenantId, limit: LimitName, change: &LimitsChange) -> Change {
    Change::of("tenant", tenant)
        .before(json!({limit.as_str(): value_of(&change.before, limit)}))
        .after(json!({limit.as_str(): value_of(&change.after, limit)}))
}

/// Sets a tenant's override of one limit (replacing one it had), in force at once.
#[derive(Clone, Debug)]
pub struct SetLimitOverride {
    /// The tenant.
    pub tenant: TenantId,
    /// The override.
    pub request: SetOverride,
}

impl Sealed for SetLimitOverride {}
impl UseCase for SetLimitOverride {
    type Output = LimitsChange;
    const OPERATION: Operation = Operation::TenantSetLimitOverride;

    async fn run(&self, cx: &mut Context<'_>) -> Result<LimitsChange, SpineError> {
        let operator = cx.operator()?;
        let request = &self.request;
        let change =
            limits::set(cx.db, self.tenant, request, &operator.operator_id, cx.now).await?;
        let mut entry = limit_change(self.tenant, request.limit, &change).reason(&request.reason);
        if let Some(until) = request.expires_at {
            entry = entry.after(json!({
                request.limit.as_str(): value_of(&change.after, request.limit),
                "expires_at": until,
            }));
        }
        cx.audit(entry).await?;
        Ok(change)
    }
}

impl OperatorUseCase for SetLimitOverride {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

/// Removes a tenant's override of one limit: its plan's value applies again.
#[derive(Clone, Copy, Debug)]
pub struct RemoveLimitOverride {
    /// The tenant.
    pub tenant: TenantId,
    /// The limit.
    pub limit: LimitName,
}

impl Sealed for RemoveLimitOverride {}
impl UseCase for RemoveLimitOverride {
    type Output = LimitsChange;
    const OPERATION: Operation = Operation::TenantRemoveLimitOverride;

    async fn run(&self, cx: &mut Context<'_>) -> Result<LimitsChange, SpineError> {
        let change = limits::remove(cx.db, self.tenant, self.limit, cx.now).await?;
        cx.audit(limit_change(self.tenant, self.limit, &change))
            .await?;
        Ok(change)
    }
}

impl OperatorUseCase for RemoveLimitOverride {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

/// A tenant's overrides (expired ones too, until the reaper's pass reverts them).
#[derive(Clone, Copy, Debug)]
pub struct ListLimitOverrides {
    /// The tenant.
    pub tenant: TenantId,
}

impl Sealed for ListLimitOverrides {}
impl UseCase for ListLimitOverrides {
    type Output = Vec<LimitOverride>;
    const OPERATION: Operation = Operation::TenantListLimitOverrides;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<LimitOverride>, SpineError> {
        Ok(limits::list(cx.db, self.tenant).await?)
    }
}

impl OperatorUseCase for ListLimitOverrides {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

/// A platform job: reverts a tenant's expired overrides (deletes them and applies the limits
/// left), audited once per tenant and pass as the system; `None` when another instance did
/// it first. No principal may call it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ExpireLimitOverrides {
    /// The tenant.
    pub tenant: TenantId,
}

impl Sealed for ExpireLimitOverrides {}
impl UseCase for ExpireLimitOverrides {
    type Output = Option<Vec<LimitOverride>>;
    const OPERATION: Operation = Operation::TenantExpireLimitOverrides;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Option<Vec<LimitOverride>>, SpineError> {
        let Some((expired, change)) = limits::expire(cx.db, self.tenant, cx.now).await? else {
            return Ok(None);
        };
        let names: Vec<&str> = expired.iter().map(|o| o.limit.as_str()).collect();
        let before: serde_json::Map<String, Json> = expired
            .iter()
            .map(|o| {
                (
                    o.limit.as_str().to_owned(),
                    value_of(&change.before, o.limit),
                )
            })
            .collect();
        let after: serde_json::Map<String, Json> = expired
            .iter()
            .map(|o| {
                (
                    o.limit.as_str().to_owned(),
                    value_of(&change.after, o.limit),
                )
            })
            .collect();
        let entry = Change::of("tenant", self.tenant)
            .in_tenant(self.tenant)
            .before(Json::Object(before))
            .after(Json::Object(after))
            .reason(format!("expired: {}", names.join(", ")));
        cx.audit(entry).await?;
        Ok(Some(expired))
    }
}

impl Spine {
    /// Executes [`SetLimitOverride`].
    pub async fn set_limit_override(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        request: SetOverride,
    ) -> Result<LimitsChange, SpineError> {
        self.execute_as_operator(operator, SetLimitOverride { tenant, request })
            .await
    }

    /// Executes [`RemoveLimitOverride`].
    pub async fn remove_limit_override(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        limit: LimitName,
    ) -> Result<LimitsChange, SpineError> {
        self.execute_as_operator(operator, RemoveLimitOverride { tenant, limit })
            .await
    }

    /// Executes [`ListLimitOverrides`].
    pub async fn list_limit_overrides(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
    ) -> Result<Vec<LimitOverride>, SpineError> {
        self.execute_as_operator(operator, ListLimitOverrides { tenant })
            .await
    }

    /// Reverts the expired overrides of up to `batch` tenants, each in a transaction of its
    /// own ([`ExpireLimitOverrides`]); how many tenants it reverted. The reaper's pass runs
    /// it; a host with a scheduler of its own may call it instead.
    pub async fn expire_limit_overrides(&self, batch: u64) -> Result<u64, SpineError> {
        let now = self.clock.now();
        let tenants = limits::tenants_with_expired(self.pool_db(), now, batch).await?;
        let mut reverted = 0;
        for tenant in tenants {
            let expire = ExpireLimitOverrides { tenant };
            if self.execute_as_system(tenant, expire).await?.is_some() {
                reverted += 1;
            }
        }
        Ok(reverted)
    }
}
