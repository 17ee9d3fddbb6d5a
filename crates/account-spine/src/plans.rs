//! Plans as data (operators create, version and retire them) and a tenant's entitlements.
//!
//! A plan change reaches a tenant only through [`Spine::change_plan`](crate::Spine) (or the
//! host's own use of `ChangePlan`): a new version does not move the tenants already on the
//! plan, so no limit changes under a customer unannounced.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, Principal};
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::plans;
pub use account_engines::plans::{
    Entitlement, Entitlements, LimitUsage, MAX_ENTITLEMENTS, NewPlanVersion, Plan, PlanError,
    TenantEntitlements,
};
use account_engines::types::{PlanCode, TenantId};
use serde_json::json;

fn plan_id(code: &PlanCode, version: i32) -> String {
    format!("{code}@{version}")
}

/// Creates a plan, or the next version of an existing one; tenants already on the plan keep
/// their version.
#[derive(Clone, Debug)]
pub struct CreatePlanVersion {
    /// The version to create.
    pub request: NewPlanVersion,
}

impl Sealed for CreatePlanVersion {}
impl UseCase for CreatePlanVersion {
    type Output = Plan;
    const OPERATION: Operation = Operation::PlansCreateVersion;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Plan, SpineError> {
        let plan = plans::create_version(cx.db, &self.request, cx.now).await?;
        let change = Change::of("plan", plan_id(&plan.code, plan.version)).after(json!({
            "name": plan.name,
            "limits": plan.limits,
            "entitlements": plan.entitlements,
            "warn_at_percent": plan.warn_at_percent,
        }));
        cx.audit(change).await?;
        Ok(plan)
    }
}

impl OperatorUseCase for CreatePlanVersion {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Retires one version of a plan: no new tenant or plan change gets it; tenants on it keep it.
#[derive(Clone, Debug)]
pub struct RetirePlan {
    /// The plan.
    pub code: PlanCode,
    /// The version.
    pub version: i32,
}

impl Sealed for RetirePlan {}
impl UseCase for RetirePlan {
    type Output = Plan;
    const OPERATION: Operation = Operation::PlansRetire;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Plan, SpineError> {
        let plan = plans::retire(cx.db, &self.code, self.version, cx.now).await?;
        let change = Change::of("plan", plan_id(&plan.code, plan.version))
            .after(json!({"retired_at": plan.retired_at}));
        cx.audit(change).await?;
        Ok(plan)
    }
}

impl OperatorUseCase for RetirePlan {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Every version of every plan, by code then version.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListPlans;

impl Sealed for ListPlans {}
impl UseCase for ListPlans {
    type Output = Vec<Plan>;
    const OPERATION: Operation = Operation::PlansList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<Plan>, SpineError> {
        Ok(plans::list(cx.db).await?)
    }
}

impl OperatorUseCase for ListPlans {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// The principal's tenant's plan version, entitlements, and limits with their usage.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetEntitlements;

impl Sealed for GetEntitlements {}
impl UseCase for GetEntitlements {
    type Output = TenantEntitlements;
    const OPERATION: Operation = Operation::EntitlementsGet;

    async fn run(&self, cx: &mut Context<'_>) -> Result<TenantEntitlements, SpineError> {
        Ok(plans::tenant_entitlements(cx.db, cx.tenant()?, cx.now).await?)
    }
}

impl Spine {
    /// Executes [`CreatePlanVersion`].
    pub async fn create_plan_version(
        &self,
        operator: &OperatorPrincipal,
        request: NewPlanVersion,
    ) -> Result<Plan, SpineError> {
        self.execute_as_operator(operator, CreatePlanVersion { request })
            .await
    }

    /// Executes [`RetirePlan`].
    pub async fn retire_plan(
        &self,
        operator: &OperatorPrincipal,
        code: PlanCode,
        version: i32,
    ) -> Result<Plan, SpineError> {
        self.execute_as_operator(operator, RetirePlan { code, version })
            .await
    }

    /// Executes [`ListPlans`].
    pub async fn list_plans(&self, operator: &OperatorPrincipal) -> Result<Vec<Plan>, SpineError> {
        self.execute_as_operator(operator, ListPlans).await
    }

    /// Executes [`GetEntitlements`].
    pub async fn entitlements(
        &self,
        principal: &Principal,
    ) -> Result<TenantEntitlements, SpineError> {
        self.execute(principal, GetEntitlements).await
    }
}
