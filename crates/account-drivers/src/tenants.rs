//! `tenants`: the tenant row, its quotas and usage counters.
//!
//! Over 600 lines: the tenant row is read and written by many use cases; its statements stay in one
//! driver so the row's columns are named in one place.
//!
//! Counters reset lazily: each counter carries the day or month it counts (`usage_day`,
//! `usage_month`), and every increment is one `UPDATE` whose `CASE` starts from zero when the
//! stored period is not the current one. No read-modify-write, no reset job.

use crate::{AccountsFacadeDriver, Db, DriverError, OffsetPage, Page};
use account_models::entities::{memberships, tenants};
use account_models::{OnboardingState, PlanCode, PlanQuotas, TenantId, TenantStatus, UserId};
use sea_orm::prelude::{Date, DateTimeUtc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};

/// Tenant data access, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct TenantDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The tenant driver on `db`.
pub fn get_tenant_driver(db: Db<'_>) -> TenantDriver<'_> {
    TenantDriver { db }
}

/// A tenant as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantSnapshot {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Plan.
    pub plan: PlanCode,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// What the engines need to decide about a tenant: quotas, raw counters, states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantCoreSnapshot {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Lifecycle status.
    pub status: TenantStatus,
    /// Plan.
    pub plan: PlanCode,
    /// The version of `plan` the tenant is on.
    pub plan_version: i32,
    /// That version's soft-limit threshold, in percent (`None`: warn only at the limit).
    pub warn_at_percent: Option<i32>,
    /// Quotas as stored on the row (copied from the plan, possibly overridden).
    pub quotas: PlanQuotas,
    /// Runs admitted on `usage_day` (stale once the day changed).
    pub runs_today: i32,
    /// Runs admitted in `usage_month`.
    pub runs_this_month: i32,
    /// Tokens used in `usage_month`.
    pub tokens_this_month: i64,
    /// Tokens reserved by admitted runs not yet finished (the month's quota counts them).
    pub tokens_reserved: i64,
    /// Runs queued or running now.
    pub active_runs: i32,
    /// Workers with runs queued or running now.
    pub active_workers: i32,
    /// The day `runs_today` counts.
    pub usage_day: Option<Date>,
    /// The first day of the month the monthly counters count.
    pub usage_month: Option<Date>,
    /// When a counter last started a new period.
    pub last_run_reset_at: Option<DateTimeUtc>,
    /// Why the tenant is suspended, while it is.
    pub suspended_reason: Option<String>,
    /// Onboarding progress.
    pub onboarding_state: OnboardingState,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// A new tenant; the quotas come from the plan (the engine picks them).
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Id to create it with.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Plan.
    pub plan: PlanCode,
    /// The version of `plan`.
    pub plan_version: i32,
    /// That version's soft-limit threshold, in percent.
    pub warn_at_percent: Option<i32>,
    /// Quotas to copy onto the row.
    pub quotas: PlanQuotas,
    /// The identity provider's organisation id.
    pub external_org_id: Option<String>,
    /// Where invoices go.
    pub billing_email: Option<String>,
}

/// The plan version a tenant moves to: its number and soft-limit threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanVersionRef {
    /// The version.
    pub version: i32,
    /// Its warning threshold, in percent.
    pub warn_at_percent: Option<i32>,
}

/// Counter values to set explicitly (operator corrections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageCounters {
    /// Runs on `usage_day`.
    pub runs_today: i32,
    /// Runs in `usage_month`.
    pub runs_this_month: i32,
    /// Tokens in `usage_month`.
    pub tokens_this_month: i64,
    /// The day counted.
    pub usage_day: Date,
    /// The first day of the month counted.
    pub usage_month: Date,
}

pub(crate) fn core_snapshot(m: tenants::Model) -> TenantCoreSnapshot {
    TenantCoreSnapshot {
        id: m.id,
        name: m.name,
        slug: m.slug,
        status: m.status,
        plan: m.plan,
        quotas: PlanQuotas {
            max_workers: m.max_workers,
            max_runs_per_day: m.max_runs_per_day,
            max_concurrent_runs: m.max_concurrent_runs,
            max_tokens_per_month: m.max_tokens_per_month,
            max_api_keys: m.max_api_keys,
            max_requests_per_minute: m.max_requests_per_minute,
            audit_retention_days: m.audit_retention_days,
            max_members: m.max_members,
            max_memory_pins: m.max_memory_pins,
            max_pin_value_bytes: m.max_pin_value_bytes,
        },
        plan_version: m.plan_version,
        warn_at_percent: m.warn_at_percent,
        runs_today: m.runs_today,
        runs_this_month: m.runs_this_month,
        tokens_this_month: m.tokens_this_month,
        tokens_reserved: m.tokens_reserved,
        active_runs: m.active_runs,
        active_workers: m.active_workers,
        usage_day: m.usage_day,
        usage_month: m.usage_month,
        last_run_reset_at: m.last_run_reset_at,
        suspended_reason: m.suspended_reason,
        onboarding_state: m.onboarding_state,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn list_snapshot(m: tenants::Model) -> TenantSnapshot {
    TenantSnapshot {
        id: m.id,
        name: m.name,
        slug: m.slug,
        status: m.status,
        plan: m.plan,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

async fn insert(
    db: Db<'_>,
    tenant: NewTenant,
    now: DateTimeUtc,
) -> Result<TenantCoreSnapshot, DriverError> {
    let model = tenants::ActiveModel {
        id: Set(tenant.id),
        name: Set(tenant.name),
        slug: Set(tenant.slug),
        external_org_id: Set(tenant.external_org_id),
        plan: Set(tenant.plan),
        billing_email: Set(tenant.billing_email),
        billing_customer_id: Set(None),
        max_workers: Set(tenant.quotas.max_workers),
        max_runs_per_day: Set(tenant.quotas.max_runs_per_day),
        max_concurrent_runs: Set(tenant.quotas.max_concurrent_runs),
        max_tokens_per_month: Set(tenant.quotas.max_tokens_per_month),
        max_api_keys: Set(tenant.quotas.max_api_keys),
        max_requests_per_minute: Set(tenant.quotas.max_requests_per_minute),
        audit_retention_days: Set(tenant.quotas.audit_retention_days),
        max_members: Set(tenant.quotas.max_members),
        plan_version: Set(tenant.plan_version),
        warn_at_percent: Set(tenant.warn_at_percent),
        max_memory_pins: Set(tenant.quotas.max_memory_pins),
        max_pin_value_bytes: Set(tenant.quotas.max_pin_value_bytes),
        runs_today: Set(0),
        runs_this_month: Set(0),
        tokens_this_month: Set(0),
        usage_day: Set(None),
        usage_month: Set(None),
        last_run_reset_at: Set(None),
        status: Set(TenantStatus::Active),
        suspended_reason: Set(None),
        onboarding_state: Set(OnboardingState::Created),
        created_at: Set(now),
        updated_at: Set(now),
        active_runs: Set(0),
        active_workers: Set(0),
        tokens_reserved: Set(0),
        member_count: Set(0),
        api_key_count: Set(0),
        run_count: Set(0),
    }
    .insert(db.conn())
    .await?;
    Ok(core_snapshot(model))
}

/// How many of each kind of row a tenant has, as its row keeps them: what its unfiltered
/// lists report as their total, without counting (see each field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantTotals {
    /// Memberships: the total of the unfiltered users list and of the members list.
    pub members: u64,
    /// Keys not revoked (expired, frozen and rotated-away keys count): the total of the key
    /// list without revoked keys, and an upper bound of the keys counted against
    /// `max_api_keys`.
    pub api_keys: u64,
    /// Runs of any status: the total of the unfiltered run list.
    pub runs: u64,
}

impl TenantTotals {
    pub(crate) fn of(m: &tenants::Model) -> Self {
        let total = |n: i64| u64::try_from(n).unwrap_or_default();
        Self {
            members: total(m.member_count),
            api_keys: total(m.api_key_count),
            runs: total(m.run_count),
        }
    }
}

/// The tenant's totals in one read of its row; zero for a tenant that does not exist (what
/// counting its rows would say).
pub(crate) async fn fetch_totals(db: Db<'_>, id: TenantId) -> Result<TenantTotals, DriverError> {
    use tenants::Column as C;
    let row: Option<(i64, i64, i64)> = tenants::Entity::find_by_id(id)
        .select_only()
        .columns([C::MemberCount, C::ApiKeyCount, C::RunCount])
        .into_tuple()
        .one(db.conn())
        .await?;
    let total = |n: i64| u64::try_from(n).unwrap_or_default();
    Ok(
        row.map_or_else(TenantTotals::default, |(members, api_keys, runs)| {
            TenantTotals {
                members: total(members),
                api_keys: total(api_keys),
                runs: total(runs),
            }
        }),
    )
}

/// Adds `members` to the tenant's membership total and `api_keys` to its unrevoked-key total,
/// in one `UPDATE` (none when both are zero). Every driver write that adds or removes such
/// rows calls it on the same handle, so the totals move in the writer's transaction.
pub(crate) async fn add_to_totals(
    db: Db<'_>,
    id: TenantId,
    members: i64,
    api_keys: i64,
) -> Result<(), DriverError> {
    use tenants::Column as C;
    let mut update = tenants::Entity::update_many().filter(C::Id.eq(id));
    if members != 0 {
        update = update.col_expr(C::MemberCount, Expr::col(C::MemberCount).add(members));
    }
    if api_keys != 0 {
        update = update.col_expr(C::ApiKeyCount, Expr::col(C::ApiKeyCount).add(api_keys));
    }
    if members != 0 || api_keys != 0 {
        update.exec(db.conn()).await?;
    }
    Ok(())
}

/// Runs an `UPDATE tenants ... WHERE id = ?` plus extra conditions, returning the new row.
/// `update` of tenant `id` setting every limit column to `quotas`.
fn with_quotas(
    update: sea_orm::UpdateMany<tenants::Entity>,
    quotas: PlanQuotas,
    id: TenantId,
    now: DateTimeUtc,
) -> sea_orm::UpdateMany<tenants::Entity> {
    update
        .col_expr(tenants::Column::MaxWorkers, Expr::value(quotas.max_workers))
        .col_expr(
            tenants::Column::MaxRunsPerDay,
            Expr::value(quotas.max_runs_per_day),
        )
        .col_expr(
            tenants::Column::MaxConcurrentRuns,
            Expr::value(quotas.max_concurrent_runs),
        )
        .col_expr(
            tenants::Column::MaxTokensPerMonth,
            Expr::value(quotas.max_tokens_per_month),
        )
        .col_expr(
            tenants::Column::MaxApiKeys,
            Expr::value(quotas.max_api_keys),
        )
        .col_expr(
            tenants::Column::MaxRequestsPerMinute,
            Expr::value(quotas.max_requests_per_minute),
        )
        .col_expr(
            tenants::Column::AuditRetentionDays,
            Expr::value(quotas.audit_retention_days),
        )
        .col_expr(tenants::Column::MaxMembers, Expr::value(quotas.max_members))
        .col_expr(
            tenants::Column::MaxMemoryPins,
            Expr::value(quotas.max_memory_pins),
        )
        .col_expr(
            tenants::Column::MaxPinValueBytes,
            Expr::value(quotas.max_pin_value_bytes),
        )
        .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
        .filter(tenants::Column::Id.eq(id))
}

pub(crate) async fn update_returning(
    db: Db<'_>,
    update: sea_orm::UpdateMany<tenants::Entity>,
) -> Result<Option<TenantCoreSnapshot>, DriverError> {
    let rows = update.exec_with_returning(db.conn()).await?;
    Ok(rows.into_iter().next().map(core_snapshot))
}

impl TenantDriver<'_> {
    /// The tenant with this id, as lists show it.
    pub async fn fetch_tenant_by_id(
        &self,
        id: TenantId,
    ) -> Result<Option<TenantSnapshot>, DriverError> {
        let row = tenants::Entity::find_by_id(id).one(self.db.conn()).await?;
        Ok(row.map(list_snapshot))
    }

    /// The tenant with this slug (slugs are unique across tenants).
    pub async fn fetch_tenant_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<TenantSnapshot>, DriverError> {
        let row = tenants::Entity::find()
            .filter(tenants::Column::Slug.eq(slug))
            .one(self.db.conn())
            .await?;
        Ok(row.map(list_snapshot))
    }

    /// The tenant's quotas, counters and states.
    pub async fn fetch_tenant_snapshot(
        &self,
        id: TenantId,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let row = tenants::Entity::find_by_id(id).one(self.db.conn()).await?;
        Ok(row.map(core_snapshot))
    }

    /// The tenant's limit on its requests per minute: `None` when it has none, or when the
    /// tenant does not exist (one column of its row).
    pub async fn fetch_request_limit(&self, id: TenantId) -> Result<Option<i32>, DriverError> {
        let limit: Option<Option<i32>> = tenants::Entity::find_by_id(id)
            .select_only()
            .column(tenants::Column::MaxRequestsPerMinute)
            .into_tuple()
            .one(self.db.conn())
            .await?;
        Ok(limit.flatten())
    }

    /// The tenant's totals (members, keys not revoked, runs) in one read of its row; all zero
    /// when the tenant does not exist.
    pub async fn fetch_tenant_totals(&self, id: TenantId) -> Result<TenantTotals, DriverError> {
        fetch_totals(self.db, id).await
    }

    /// Locks the tenant row until the caller's transaction ends, so quota decisions taken
    /// after it (counting keys or runs, then inserting) cannot interleave with another
    /// transaction's. On SQLite the spine's write transaction already holds the database's
    /// write lock, so this is a plain read. Returns whether the tenant exists.
    pub async fn lock_tenant(&self, id: TenantId) -> Result<bool, DriverError> {
        let mut query = tenants::Entity::find_by_id(id)
            .select_only()
            .column(tenants::Column::Id);
        if self.db.conn().get_database_backend() == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let found: Option<TenantId> = query.into_tuple().one(self.db.conn()).await?;
        Ok(found.is_some())
    }

    /// Inserts a tenant (active, onboarding at CREATED) and returns it.
    pub async fn insert_tenant(
        &self,
        tenant: NewTenant,
        now: DateTimeUtc,
    ) -> Result<TenantCoreSnapshot, DriverError> {
        insert(self.db, tenant, now).await
    }

    /// Puts the tenant on `version` of `plan` (its number and warning threshold), with the
    /// quotas that come with it.
    pub async fn update_tenant_plan(
        &self,
        id: TenantId,
        plan: &PlanCode,
        version: PlanVersionRef,
        quotas: PlanQuotas,
        now: DateTimeUtc,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let update = tenants::Entity::update_many()
            .col_expr(tenants::Column::Plan, Expr::value(plan.as_str()))
            .col_expr(tenants::Column::PlanVersion, Expr::value(version.version))
            .col_expr(
                tenants::Column::WarnAtPercent,
                Expr::value(version.warn_at_percent),
            );
        update_returning(self.db, with_quotas(update, quotas, id, now)).await
    }

    /// Writes `quotas` as the tenant's limits in force (its plan's with its overrides, as
    /// the caller computed them); `None` when there is no such tenant.
    pub async fn update_tenant_quotas(
        &self,
        id: TenantId,
        quotas: PlanQuotas,
        now: DateTimeUtc,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let update = tenants::Entity::update_many();
        update_returning(self.db, with_quotas(update, quotas, id, now)).await
    }

    /// Moves the tenant from `expected` to `status`; changes nothing (and returns `None`) when
    /// the tenant is not in `expected`. The reason is stored when given and cleared otherwise.
    pub async fn update_tenant_status(
        &self,
        id: TenantId,
        expected: TenantStatus,
        status: TenantStatus,
        reason: Option<&str>,
        now: DateTimeUtc,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let update = tenants::Entity::update_many()
            .col_expr(tenants::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                tenants::Column::SuspendedReason,
                Expr::value(reason.map(str::to_owned)),
            )
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(id))
            .filter(tenants::Column::Status.eq(expected));
        update_returning(self.db, update).await
    }

    /// Overwrites the counters (operator corrections; normal traffic uses
    /// [`TenantDriver::increment_tenant_usage`]).
    pub async fn update_tenant_usage(
        &self,
        id: TenantId,
        counters: UsageCounters,
        now: DateTimeUtc,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let update = tenants::Entity::update_many()
            .col_expr(tenants::Column::RunsToday, Expr::value(counters.runs_today))
            .col_expr(
                tenants::Column::RunsThisMonth,
                Expr::value(counters.runs_this_month),
            )
            .col_expr(
                tenants::Column::TokensThisMonth,
                Expr::value(counters.tokens_this_month),
            )
            .col_expr(tenants::Column::UsageDay, Expr::value(counters.usage_day))
            .col_expr(
                tenants::Column::UsageMonth,
                Expr::value(counters.usage_month),
            )
            .col_expr(tenants::Column::LastRunResetAt, Expr::value(now))
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(id));
        update_returning(self.db, update).await
    }

    /// Adds `runs` and `tokens` to the counters of `day` and `month` in one statement; a
    /// counter whose stored period is not the current one starts again from zero.
    pub async fn increment_tenant_usage(
        &self,
        id: TenantId,
        runs: i32,
        tokens: i64,
        day: Date,
        month: Date,
        now: DateTimeUtc,
    ) -> Result<Option<TenantCoreSnapshot>, DriverError> {
        let update = with_counter_increments(
            tenants::Entity::update_many(),
            runs,
            tokens,
            day,
            month,
            now,
        )
        .filter(tenants::Column::Id.eq(id));
        update_returning(self.db, update).await
    }
}

/// The `SET` part shared by usage increments and run admission.
pub(crate) fn with_counter_increments(
    update: sea_orm::UpdateMany<tenants::Entity>,
    runs: i32,
    tokens: i64,
    day: Date,
    month: Date,
    now: DateTimeUtc,
) -> sea_orm::UpdateMany<tenants::Entity> {
    use tenants::Column as C;
    let same_day = || Expr::col(C::UsageDay).eq(day);
    let same_month = || Expr::col(C::UsageMonth).eq(month);
    update
        .col_expr(
            C::RunsToday,
            Expr::case(same_day(), Expr::col(C::RunsToday).add(runs))
                .finally(runs)
                .into(),
        )
        .col_expr(
            C::RunsThisMonth,
            Expr::case(same_month(), Expr::col(C::RunsThisMonth).add(runs))
                .finally(runs)
                .into(),
        )
        .col_expr(
            C::TokensThisMonth,
            Expr::case(same_month(), Expr::col(C::TokensThisMonth).add(tokens))
                .finally(tokens)
                .into(),
        )
        .col_expr(
            C::LastRunResetAt,
            Expr::case(same_day(), Expr::col(C::LastRunResetAt))
                .finally(now)
                .into(),
        )
        .col_expr(C::UsageDay, Expr::value(day))
        .col_expr(C::UsageMonth, Expr::value(month))
        .col_expr(C::UpdatedAt, Expr::value(now))
}

/// Tenants `user` is a member of, filtered.
fn member_tenants(user: UserId, filter: TenantFilter) -> sea_orm::Select<tenants::Entity> {
    let mut query = tenants::Entity::find()
        .join_rev(JoinType::InnerJoin, memberships::Relation::Tenant.def())
        .filter(memberships::Column::UserId.eq(user))
        .filter(crate::projects::not_deleted((
            tenants::Entity,
            tenants::Column::Id,
        )));
    if let Some(status) = filter.status {
        query = query.filter(tenants::Column::Status.eq(status));
    }
    query
}

/// A tenant with its quotas, counters and onboarding state, for the project detail view.
pub type TenantDetailSnapshot = TenantCoreSnapshot;

/// Filters for the projects list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantFilter {
    /// Only tenants in this status.
    pub status: Option<TenantStatus>,
}

impl AccountsFacadeDriver<'_> {
    /// The tenant, as lists show it.
    pub async fn fetch_tenant(&self, id: TenantId) -> Result<Option<TenantSnapshot>, DriverError> {
        get_tenant_driver(self.db).fetch_tenant_by_id(id).await
    }

    /// The tenant with quotas, counters and onboarding state.
    pub async fn fetch_tenant_detail(
        &self,
        id: TenantId,
    ) -> Result<Option<TenantDetailSnapshot>, DriverError> {
        get_tenant_driver(self.db).fetch_tenant_snapshot(id).await
    }

    /// The projects (tenants) `user` is a member of, oldest first.
    pub async fn fetch_tenants(
        &self,
        user: UserId,
        filter: TenantFilter,
        page: OffsetPage,
    ) -> Result<Page<TenantSnapshot>, DriverError> {
        let query = || member_tenants(user, filter);
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_asc(tenants::Column::CreatedAt)
            .order_by_asc(tenants::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(list_snapshot).collect(),
            total,
            page,
        ))
    }

    /// How many projects `user` is a member of.
    pub async fn count_tenants(
        &self,
        user: UserId,
        filter: TenantFilter,
    ) -> Result<u64, DriverError> {
        Ok(member_tenants(user, filter).count(self.db.conn()).await?)
    }

    /// Inserts a project: a tenant like any other (the caller adds the owner membership in
    /// the same transaction).
    pub async fn insert_project(
        &self,
        tenant: NewTenant,
        now: DateTimeUtc,
    ) -> Result<TenantCoreSnapshot, DriverError> {
        insert(self.db, tenant, now).await
    }
}
