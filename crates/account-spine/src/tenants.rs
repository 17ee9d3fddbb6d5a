//! Tenant use cases: a member's projects (tenants), the tenant's quotas, and the operator's
//! tenant creation, bootstrap and plan changes.

use crate::api_keys::key_audit;
use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::{OperatorPrincipal, Principal};
use crate::use_case::{Change, Context, OperatorUseCase, Sealed, UseCase};
use account_engines::api_keys::{self, IssuedKey, KeyActor, permissions::OWNER_KEY_PERMISSIONS};
use account_engines::tenants::{self, CreateTenant as NewTenant};
use account_engines::types::{MembershipRole, PlanCode, TenantId, TenantStatus};
use account_engines::users;
use account_engines::{OffsetPage, Page};
use serde_json::json;

pub use account_engines::tenants::CreatedTenant;
pub use account_engines::tenants::{ProjectDetailResult, ProjectFilters, ProjectSummaryResult};

/// The projects (tenants) the acting user is a member of, oldest first, optionally only those
/// in one status.
#[derive(Clone, Copy, Debug)]
pub struct ListProjects {
    /// Which projects.
    pub filters: ProjectFilters,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListProjects {}
impl UseCase for ListProjects {
    type Output = Page<ProjectSummaryResult>;
    const OPERATION: Operation = Operation::AccountListProjects;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<ProjectSummaryResult>, SpineError> {
        let user = cx.member()?.user_id;
        let found = tenants::list_projects(cx.db, user, self.filters, self.page).await?;
        Ok(Page::new(found.items, found.total, self.page))
    }
}

/// One project (tenant) the acting user is a member of: quotas, counters, onboarding. A
/// project they are not a member of, or none with that id, is `project_not_found` (404),
/// alike, so another tenant's existence does not leak. A project other than the principal's
/// own must allow reads itself.
#[derive(Clone, Copy, Debug)]
pub struct GetProject {
    /// The project.
    pub project: TenantId,
}

impl Sealed for GetProject {}
impl UseCase for GetProject {
    type Output = ProjectDetailResult;
    const OPERATION: Operation = Operation::AccountGetProject;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<ProjectDetailResult, SpineError> {
        let caller = tenants::Caller {
            tenant_id: self.project,
            user_id: cx.member()?.user_id,
        };
        // Membership first: a non-member learns nothing, not even the status.
        let detail = tenants::get_project_detail(cx.db, caller, cx.now).await?;
        if self.project != cx.tenant()? {
            cx.require_capability(self.project).await?;
        }
        Ok(detail)
    }
}

/// A tenant's plan quotas and its counters in the current periods.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantQuotas {
    /// The plan.
    pub plan: PlanCode,
    /// The lifecycle status.
    pub status: TenantStatus,
    /// Runs allowed per UTC day.
    pub max_runs_per_day: i32,
    /// Runs at once.
    pub max_concurrent_runs: i32,
    /// Tokens per UTC month.
    pub max_tokens_per_month: i64,
    /// Active API keys.
    pub max_api_keys: i32,
    /// Requests per minute of the whole tenant, every credential together (`None`: no
    /// tenant-wide limit).
    pub max_requests_per_minute: Option<i32>,
    /// Days the tenant's audit rows are kept (`None`: forever).
    pub audit_retention_days: Option<i32>,
    /// Workers.
    pub max_workers: i32,
    /// Seats: members plus pending invitations (an invitation beyond them is refused).
    pub max_members: i32,
    /// Live memory pins held at once.
    pub max_memory_pins: i64,
    /// Bytes of one pin's JSON value.
    pub max_pin_value_bytes: i32,
    /// Runs admitted today (UTC).
    pub runs_today: i32,
    /// Runs admitted this month (UTC).
    pub runs_this_month: i32,
    /// Tokens recorded this month (UTC).
    pub tokens_this_month: i64,
    /// Tokens reserved by runs queued or running (their declared estimates): a run is
    /// admitted while used plus reserved plus its estimate fits `max_tokens_per_month`.
    pub tokens_reserved: i64,
    /// Runs queued or running now (against `max_concurrent_runs`).
    pub active_runs: i32,
    /// Workers with runs queued or running now (against `max_workers`).
    pub active_workers: i32,
}

/// The principal's tenant's plan quotas and current-period counters (a counter from an
/// earlier period reads as zero: counters reset lazily).
#[derive(Clone, Copy, Debug, Default)]
pub struct GetTenantQuotas;

impl Sealed for GetTenantQuotas {}
impl UseCase for GetTenantQuotas {
    type Output = TenantQuotas;
    const OPERATION: Operation = Operation::TenantGetQuotas;

    async fn run(&self, cx: &mut Context<'_>) -> Result<TenantQuotas, SpineError> {
        let t = tenants::snapshot(cx.db, cx.tenant()?).await?;
        let usage = account_engines::billing::current_usage(&t, cx.now);
        Ok(TenantQuotas {
            plan: t.plan,
            status: t.status,
            max_runs_per_day: t.quotas.max_runs_per_day,
            max_concurrent_runs: t.quotas.max_concurrent_runs,
            max_tokens_per_month: t.quotas.max_tokens_per_month,
            max_api_keys: t.quotas.max_api_keys,
            max_requests_per_minute: t.quotas.max_requests_per_minute,
            audit_retention_days: t.quotas.audit_retention_days,
            max_workers: t.quotas.max_workers,
            max_members: t.quotas.max_members,
            max_memory_pins: t.quotas.max_memory_pins,
            max_pin_value_bytes: t.quotas.max_pin_value_bytes,
            runs_today: usage.runs_today,
            runs_this_month: usage.runs_this_month,
            tokens_this_month: usage.tokens_this_month,
            tokens_reserved: usage.tokens_reserved,
            active_runs: usage.active_runs,
            active_workers: usage.active_workers,
        })
    }
}

/// Moves a tenant to the newest version on sale of `plan` and re-applies its limits under the
/// tenant's overrides (operators only).
#[derive(Clone, Debug)]
pub struct ChangePlan {
    /// The tenant.
    pub tenant: TenantId,
    /// Its new plan.
    pub plan: PlanCode,
}

impl Sealed for ChangePlan {}
impl UseCase for ChangePlan {
    type Output = ();
    const OPERATION: Operation = Operation::TenantChangePlan;

    async fn run(&self, cx: &mut Context<'_>) -> Result<(), SpineError> {
        let (before, after) =
            tenants::change_plan(cx.db, self.tenant, self.plan.clone(), cx.now).await?;
        let change = Change::of("tenant", self.tenant)
            .before(json!({"plan": before.plan, "plan_version": before.plan_version}))
            .after(json!({"plan": after.plan, "plan_version": after.plan_version}));
        cx.audit(change).await
    }
}

impl OperatorUseCase for ChangePlan {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.tenant)
    }
}

/// First run: creates the owner's account, their tenant and an owner API key, in one
/// transaction. The key's plaintext is in the result, once.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// The owner's email.
    pub owner_email: String,
    /// The tenant's name.
    pub tenant_name: String,
}

impl Sealed for Bootstrap {}
impl UseCase for Bootstrap {
    type Output = (CreatedTenant, IssuedKey);
    const OPERATION: Operation = Operation::TenantCreate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<(CreatedTenant, IssuedKey), SpineError> {
        let operator = cx.operator()?;
        let owner = users::create_user(cx.db, &self.owner_email, None, cx.now).await?;
        let tenant = NewTenant {
            name: self.tenant_name.clone(),
            slug: None,
            plan: PlanCode::free(),
            owner: owner.id,
            billing_email: None,
        };
        let created = tenants::create_tenant(cx.db, tenant, cx.now).await?;
        let request = api_keys::IssueKeyRequest {
            tenant_id: created.tenant.id,
            issuer: KeyActor {
                user_id: Some(owner.id),
                role: MembershipRole::Owner,
                issuing_key: None,
                audit: key_audit(None, &operator.request),
            },
            name: "bootstrap".to_owned(),
            permissions: OWNER_KEY_PERMISSIONS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            allowed_workers: None,
            rate_limit_rpm: None,
            max_concurrent_runs: None,
            expires_at: None,
            metadata: None,
        };
        let key = api_keys::issue_api_key(cx.db, cx.pepper()?, request, cx.now).await?;
        let after = json!({"slug": created.tenant.slug, "owner": owner.id, "key_prefix": key.key.key_prefix});
        let id = created.tenant.id;
        cx.audit(Change::of("tenant", id).in_tenant(id).after(after))
            .await?;
        Ok((created, key))
    }
}

impl OperatorUseCase for Bootstrap {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Creates a tenant whose owner is an existing user (bootstrap, platform onboarding).
#[derive(Clone, Debug)]
pub struct CreateTenant {
    /// The tenant.
    pub request: NewTenant,
}

impl Sealed for CreateTenant {}
impl UseCase for CreateTenant {
    type Output = CreatedTenant;
    const OPERATION: Operation = Operation::TenantCreate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<CreatedTenant, SpineError> {
        let created = tenants::create_tenant(cx.db, self.request.clone(), cx.now).await?;
        let after = json!({"slug": created.tenant.slug, "plan": created.tenant.plan, "owner": created.owner.user_id});
        let id = created.tenant.id;
        cx.audit(Change::of("tenant", id).in_tenant(id).after(after))
            .await?;
        Ok(created)
    }
}

impl OperatorUseCase for CreateTenant {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

impl Spine {
    /// Executes [`ListProjects`].
    pub async fn list_projects(
        &self,
        principal: &Principal,
        filters: ProjectFilters,
        page: OffsetPage,
    ) -> Result<Page<ProjectSummaryResult>, SpineError> {
        self.execute(principal, ListProjects { filters, page })
            .await
    }

    /// Executes [`GetProject`].
    pub async fn get_project(
        &self,
        principal: &Principal,
        project: TenantId,
    ) -> Result<ProjectDetailResult, SpineError> {
        self.execute(principal, GetProject { project }).await
    }

    /// Executes [`GetTenantQuotas`].
    pub async fn tenant_quotas(&self, principal: &Principal) -> Result<TenantQuotas, SpineError> {
        self.execute(principal, GetTenantQuotas).await
    }

    /// Executes [`ChangePlan`].
    pub async fn change_plan(
        &self,
        operator: &OperatorPrincipal,
        tenant: TenantId,
        plan: PlanCode,
    ) -> Result<(), SpineError> {
        self.execute_as_operator(operator, ChangePlan { tenant, plan })
            .await
    }

    /// Executes [`Bootstrap`].
    pub async fn bootstrap(
        &self,
        operator: &OperatorPrincipal,
        owner_email: &str,
        tenant_name: &str,
    ) -> Result<(CreatedTenant, IssuedKey), SpineError> {
        let bootstrap = Bootstrap {
            owner_email: owner_email.to_owned(),
            tenant_name: tenant_name.to_owned(),
        };
        self.execute_as_operator(operator, bootstrap).await
    }

    /// Executes [`CreateTenant`].
    pub async fn create_tenant(
        &self,
        operator: &OperatorPrincipal,
        request: NewTenant,
    ) -> Result<CreatedTenant, SpineError> {
        self.execute_as_operator(operator, CreateTenant { request })
            .await
    }
}
