//! Shared fixtures: a fresh migrated database per backend and rows seeded through the ORM
//! directly, so a driver's test never depends on another driver.

use account_drivers::types::*;
use account_drivers::{Db, StatementCounter};
use account_models::entities::{api_keys, memberships, tenants, users, worker_runs};
use account_testkit::{TestDb, backends, fresh_db};
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

/// The fixed instant tests run at: 2026-11-25 10:00:00 UTC.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_600_800, 0).expect("valid instant")
}

/// `now()` plus `seconds`.
pub(crate) fn later(seconds: i64) -> DateTime<Utc> {
    now() + TimeDelta::seconds(seconds)
}

/// Watches every statement the tests' handles send: none may begin, commit or roll back.
pub(crate) static GUARD: StatementCounter = StatementCounter::new();

/// Runs `test` once per configured backend on a fresh, migrated database, then checks that
/// no driver call sent transaction control.
pub(crate) async fn each_backend(test: impl AsyncFn(&TestDb)) {
    for backend in backends().expect("test backends") {
        let db = fresh_db(&backend).await.expect("fresh database");
        test(&db).await;
        assert_eq!(
            GUARD.transaction_control(),
            0,
            "a driver method sent BEGIN/COMMIT/ROLLBACK"
        );
    }
}

/// A pool handle on the test database, watched by [`GUARD`]. Tests that count statements add
/// their own counter with `.counting(&counter)`; it nests under the guard, which keeps seeing
/// every statement.
pub(crate) fn handle(db: &TestDb) -> Db<'_> {
    Db::for_pool(db.conn()).counting(&GUARD)
}

/// Inserts a free-plan, active tenant.
pub(crate) async fn seed_tenant(db: &TestDb, slug: &str) -> TenantId {
    let quotas = account_drivers::types::PlanQuotas::built_in(&PlanCode::free()).unwrap();
    let id = TenantId::new();
    tenants::ActiveModel {
        id: Set(id),
        name: Set(format!("Tenant {slug}")),
        slug: Set(slug.to_owned()),
        external_org_id: Set(None),
        plan: Set(PlanCode::free()),
        billing_email: Set(None),
        billing_customer_id: Set(None),
        max_workers: Set(quotas.max_workers),
        max_runs_per_day: Set(quotas.max_runs_per_day),
        max_concurrent_runs: Set(quotas.max_concurrent_runs),
        max_tokens_per_month: Set(quotas.max_tokens_per_month),
        max_api_keys: Set(quotas.max_api_keys),
        runs_today: Set(0),
        runs_this_month: Set(0),
        tokens_this_month: Set(0),
        usage_day: Set(None),
        usage_month: Set(None),
        last_run_reset_at: Set(None),
        status: Set(TenantStatus::Active),
        suspended_reason: Set(None),
        onboarding_state: Set(OnboardingState::Created),
        created_at: Set(now()),
        updated_at: Set(now()),
        active_runs: Set(0),
        active_workers: Set(0),
        tokens_reserved: Set(0),
        max_requests_per_minute: Set(None),
        audit_retention_days: Set(None),
        max_members: Set(10_000),
        plan_version: Set(1),
        warn_at_percent: Set(Some(80)),
        max_memory_pins: Set(quotas.max_memory_pins),
        max_pin_value_bytes: Set(quotas.max_pin_value_bytes),
        member_count: Set(0),
        api_key_count: Set(0),
        run_count: Set(0),
    }
    .insert(db.conn())
    .await
    .expect("tenant seeded");
    id
}

/// Sets the tenant's audit retention (days; `None`: kept forever), as its plan would.
pub(crate) async fn set_audit_retention(db: &TestDb, tenant: TenantId, days: Option<i32>) {
    tenants::Entity::update_many()
        .col_expr(tenants::Column::AuditRetentionDays, Expr::value(days))
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db.conn())
        .await
        .expect("retention set");
}

/// Inserts an active user.
pub(crate) async fn seed_user(db: &TestDb, email: &str) -> UserId {
    let id = UserId::new();
    users::ActiveModel {
        id: Set(id),
        external_user_id: Set(None),
        email: Set(email.to_owned()),
        name: Set(Some(format!("User {email}"))),
        email_verified: Set(false),
        status: Set(UserStatus::Active),
        created_at: Set(now()),
        updated_at: Set(now()),
        // Every optional column is left to the database: NULL.
        ..Default::default()
    }
    .insert(db.conn())
    .await
    .expect("user seeded");
    id
}

/// Makes `user` a member of `tenant` with `role`, as the driver would write it: with the
/// user's email, and counted in the tenant's membership total.
pub(crate) async fn seed_membership(
    db: &TestDb,
    tenant: TenantId,
    user: UserId,
    role: MembershipRole,
) {
    let email = users::Entity::find_by_id(user)
        .one(db.conn())
        .await
        .expect("user read")
        .expect("user seeded first")
        .email;
    memberships::ActiveModel {
        id: Set(MembershipId::new()),
        tenant_id: Set(tenant),
        user_id: Set(user),
        role: Set(role),
        invited_by: Set(None),
        created_at: Set(now()),
        updated_at: Set(now()),
        member_email: Set(email),
    }
    .insert(db.conn())
    .await
    .expect("membership seeded");
    tenants::Entity::update_many()
        .col_expr(
            tenants::Column::MemberCount,
            Expr::col(tenants::Column::MemberCount).add(1_i64),
        )
        .filter(tenants::Column::Id.eq(tenant))
        .exec(db.conn())
        .await
        .expect("membership counted");
}

/// The tenant's totals as its row keeps them, beside the rows they stand for: `(members,
/// keys not revoked, runs)` twice.
pub(crate) async fn totals_and_counts(db: &TestDb, tenant: TenantId) -> [(i64, i64); 3] {
    let row = tenants::Entity::find_by_id(tenant)
        .one(db.conn())
        .await
        .expect("tenant read")
        .expect("tenant exists");
    let members = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(tenant))
        .count(db.conn())
        .await
        .expect("count");
    let keys = api_keys::Entity::find()
        .filter(api_keys::Column::TenantId.eq(tenant))
        .filter(api_keys::Column::Status.ne(ApiKeyStatus::Revoked))
        .count(db.conn())
        .await
        .expect("count");
    let runs = worker_runs::Entity::find()
        .filter(worker_runs::Column::TenantId.eq(tenant))
        .count(db.conn())
        .await
        .expect("count");
    let count = |n: u64| i64::try_from(n).expect("small");
    [
        (row.member_count, count(members)),
        (row.api_key_count, count(keys)),
        (row.run_count, count(runs)),
    ]
}
