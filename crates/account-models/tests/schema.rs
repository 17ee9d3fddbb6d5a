//! The entities and the migrated schema agree, on every backend.
//!
//! Over 600 lines on purpose: one round-trip fixture per entity, each naming every column, so a
//! column added without its entity field (or the reverse) fails here.
//!
//! - Every entity column exists in its table with a compatible type and the same nullability,
//!   and every table column is known to its entity (no drift either way).
//! - Every text column is wide enough for the value object or enum stored in it.
//! - Every entity round-trips through the database: rows written through the ORM read back
//!   equal, with every enum value (so the CHECK constraints accept every variant the code
//!   knows) and with optional fields both set and empty.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_models::entities::*;
use account_models::values::*;
use account_models::*;
use account_testkit::{TestDb, backends, fresh_db};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sea_orm::sea_query::ColumnType;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, Statement,
};
use serde_json::json;
use std::fmt::Debug;

// ---------------------------------------------------------------------------------------------
// Columns: what the entities declare and what the database has.

/// A column as an entity declares it.
struct EntityColumn {
    name: &'static str,
    ty: ColumnType,
    nullable: bool,
}

/// A table as an entity declares it.
struct EntityTable {
    name: &'static str,
    columns: Vec<EntityColumn>,
}

fn table_of<E: EntityTrait>() -> EntityTable {
    EntityTable {
        name: E::default().table_name(),
        columns: E::Column::iter()
            .map(|column| {
                let def = column.def();
                EntityColumn {
                    name: column.as_str(),
                    ty: def.get_column_type().clone(),
                    nullable: def.is_null(),
                }
            })
            .collect(),
    }
}

fn every_entity() -> Vec<EntityTable> {
    vec![
        table_of::<tenants::Entity>(),
        table_of::<users::Entity>(),
        table_of::<memberships::Entity>(),
        table_of::<api_keys::Entity>(),
        table_of::<worker_runs::Entity>(),
        table_of::<usage_records::Entity>(),
        table_of::<usage_hourly::Entity>(),
        table_of::<tenant_workers::Entity>(),
        table_of::<audit_log::Entity>(),
        table_of::<subscriptions::Entity>(),
        table_of::<invoices::Entity>(),
        table_of::<invitations::Entity>(),
        table_of::<support_tickets::Entity>(),
        table_of::<memory_pins::Entity>(),
        table_of::<memory_pin_audit::Entity>(),
        table_of::<sdk_attestations::Entity>(),
        table_of::<lifecycle_events::Entity>(),
        table_of::<operator_keys::Entity>(),
        table_of::<identity_links::Entity>(),
        table_of::<idempotency_keys::Entity>(),
    ]
}

/// A column as the migrated database has it.
#[derive(Debug)]
struct DbColumn {
    name: String,
    /// PostgreSQL's `data_type`, or SQLite's declared type, lower case.
    ty: String,
    nullable: bool,
    /// The declared `varchar(n)` width, if any.
    width: Option<usize>,
}

async fn db_columns(db: &TestDb, table: &str) -> Vec<DbColumn> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let rows = match backend {
        DbBackend::Postgres => {
            conn.query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT column_name::text AS name, data_type::text AS ty, \
                        (is_nullable = 'YES') AS nullable, \
                        character_maximum_length::int4 AS width \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
                [table.into()],
            ))
            .await
        }
        _ => {
            conn.query_all_raw(Statement::from_sql_and_values(
                backend,
                r#"SELECT name, lower(type) AS ty, "notnull" = 0 AS nullable, NULL AS width
                   FROM pragma_table_info(?)"#,
                [table.into()],
            ))
            .await
        }
    }
    .expect("schema introspection");
    rows.iter()
        .map(|row| {
            let ty: String = row.try_get("", "ty").expect("type");
            let declared_width = ty
                .strip_prefix("varchar(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|n| n.parse().ok());
            let width: Option<i32> = row.try_get("", "width").expect("width");
            DbColumn {
                name: row.try_get("", "name").expect("name"),
                ty,
                nullable: row.try_get("", "nullable").expect("nullability"),
                width: width
                    .and_then(|w| usize::try_from(w).ok())
                    .or(declared_width),
            }
        })
        .collect()
}

/// The database types (PostgreSQL `data_type`, SQLite declared type) that can hold values of
/// an entity column type. SQLite keeps sea-query's declared names; PostgreSQL its own.
fn compatible(ty: &ColumnType, db: DbBackend, declared: &str) -> bool {
    let text = declared == "text" || declared.starts_with("varchar");
    match (ty, db) {
        (ColumnType::Uuid, DbBackend::Postgres) => declared == "uuid",
        (ColumnType::Uuid, _) => declared == "uuid_text",
        (ColumnType::String(_) | ColumnType::Text, DbBackend::Postgres) => {
            declared == "text" || declared == "character varying"
        }
        (ColumnType::String(_) | ColumnType::Text, _) => text,
        (ColumnType::SmallInteger, _) => declared == "smallint",
        (ColumnType::Integer, _) => declared == "integer",
        (ColumnType::BigInteger, DbBackend::Postgres) => declared == "bigint",
        // sea-query declares 64-bit integers as `integer` on SQLite, where every integer is
        // 64 bits wide (the round trip below stores values past `i32::MAX`).
        (ColumnType::BigInteger, _) => declared == "integer" || declared == "bigint",
        (ColumnType::Boolean, _) => declared == "boolean",
        (ColumnType::Blob, DbBackend::Postgres) => declared == "bytea",
        (ColumnType::Blob, _) => declared == "blob",
        (ColumnType::TimestampWithTimeZone, DbBackend::Postgres) => {
            declared == "timestamp with time zone"
        }
        (ColumnType::TimestampWithTimeZone, _) => declared == "timestamp_with_timezone_text",
        (ColumnType::Date, DbBackend::Postgres) => declared == "date",
        (ColumnType::Date, _) => declared == "date_text",
        (ColumnType::Json | ColumnType::JsonBinary, DbBackend::Postgres) => {
            declared == "jsonb" || declared == "json"
        }
        (ColumnType::Json | ColumnType::JsonBinary, _) => {
            declared == "jsonb_text" || declared == "json_text"
        }
        _ => false,
    }
}

#[tokio::test]
async fn every_entity_column_exists_with_a_compatible_type_and_nullability() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let kind = db.conn().get_database_backend();
        let mut problems = Vec::new();
        for table in every_entity() {
            let columns = db_columns(&db, table.name).await;
            if columns.is_empty() {
                problems.push(format!("{}: no such table", table.name));
                continue;
            }
            for column in &table.columns {
                let Some(found) = columns.iter().find(|c| c.name == column.name) else {
                    problems.push(format!("{}.{}: no such column", table.name, column.name));
                    continue;
                };
                if !compatible(&column.ty, kind, &found.ty) {
                    problems.push(format!(
                        "{}.{}: entity type {:?}, database type {}",
                        table.name, column.name, column.ty, found.ty
                    ));
                }
                if column.nullable != found.nullable {
                    problems.push(format!(
                        "{}.{}: entity nullable = {}, database nullable = {}",
                        table.name, column.name, column.nullable, found.nullable
                    ));
                }
            }
            for found in &columns {
                if !table.columns.iter().any(|c| c.name == found.name) {
                    problems.push(format!(
                        "{}.{}: column unknown to the entity",
                        table.name, found.name
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{}: entities and schema disagree:\n{}",
            backend.name(),
            problems.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Widths: a value the types accept always fits its column.

fn longest(values: impl IntoIterator<Item = String>) -> usize {
    values
        .into_iter()
        .map(|v| v.chars().count())
        .max()
        .unwrap_or(0)
}

fn enum_width<T: std::fmt::Display>(all: &[T]) -> usize {
    longest(all.iter().map(ToString::to_string))
}

/// (table, column, the most characters the Rust type lets through).
fn widths() -> Vec<(&'static str, &'static str, usize)> {
    vec![
        ("tenants", "name", TenantName::MAX),
        ("tenants", "slug", Slug::MAX),
        ("tenants", "billing_email", Email::MAX),
        ("tenants", "plan", PlanCode::MAX),
        ("tenants", "status", enum_width(TenantStatus::ALL)),
        ("users", "email", Email::MAX),
        ("users", "name", DisplayName::MAX),
        ("users", "status", enum_width(UserStatus::ALL)),
        (
            "tenant_memberships",
            "role",
            enum_width(MembershipRole::ALL),
        ),
        ("tenant_memberships", "member_email", Email::MAX),
        ("api_keys", "name", ApiKeyName::MAX),
        ("api_keys", "status", enum_width(ApiKeyStatus::ALL)),
        ("worker_runs", "status", enum_width(RunStatus::ALL)),
        ("usage_records", "unit", enum_width(UsageUnit::ALL)),
        ("audit_log", "actor_type", enum_width(ActorType::ALL)),
        ("audit_log", "reason", Reason::MAX),
        ("subscriptions", "plan", PlanCode::MAX),
        (
            "subscriptions",
            "status",
            enum_width(SubscriptionStatus::ALL),
        ),
        (
            "subscriptions",
            "billing_period",
            enum_width(BillingPeriod::ALL),
        ),
        ("invoices", "status", enum_width(InvoiceStatus::ALL)),
        ("invitations", "email", Email::MAX),
        ("invitations", "role", enum_width(MembershipRole::ALL)),
        ("invitations", "status", enum_width(InvitationStatus::ALL)),
        ("support_tickets", "subject", TicketSubject::MAX),
        ("support_tickets", "description", TicketDescription::MAX),
        (
            "support_tickets",
            "category",
            enum_width(TicketCategory::ALL),
        ),
        (
            "support_tickets",
            "priority",
            enum_width(TicketPriority::ALL),
        ),
        ("support_tickets", "status", enum_width(TicketStatus::ALL)),
        ("memory_pins", "key", MemoryPinKey::MAX),
        ("memory_pins", "source", PinSource::MAX),
        ("memory_pin_audit", "key", MemoryPinKey::MAX),
        ("memory_pin_audit", "source", PinSource::MAX),
        (
            "lifecycle_events",
            "from_status",
            enum_width(TenantStatus::ALL),
        ),
        (
            "lifecycle_events",
            "to_status",
            enum_width(TenantStatus::ALL),
        ),
        ("lifecycle_events", "actor_type", enum_width(ActorType::ALL)),
        ("lifecycle_events", "reason", Reason::MAX),
        ("idempotency_keys", "key", IdempotencyKey::MAX),
    ]
}

#[tokio::test]
async fn every_text_column_is_wide_enough_for_what_the_types_accept() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");
        let mut problems = Vec::new();
        for (table, column, needed) in widths() {
            let columns = db_columns(&db, table).await;
            let Some(found) = columns.iter().find(|c| c.name == column) else {
                problems.push(format!("{table}.{column}: no such column"));
                continue;
            };
            // Unbounded text fits anything.
            if let Some(width) = found.width.filter(|width| *width < needed) {
                problems.push(format!(
                    "{table}.{column}: holds {width} characters, the type allows {needed}"
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{}: columns too narrow:\n{}",
            backend.name(),
            problems.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips: what the ORM writes, it reads back unchanged.

/// Writes each model through the ORM, checks what `RETURNING` gives back, then reads the whole
/// table and checks every row came back equal.
async fn round_trip<E>(db: &TestDb, models: &[E::Model])
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Clone + PartialEq + Debug,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let table = E::default().table_name();
    for model in models {
        let returned = model
            .clone()
            .into_active_model()
            .reset_all()
            .insert(db.conn())
            .await
            .unwrap_or_else(|e| panic!("{}: insert into {table}: {e}", db.backend().name()));
        assert_eq!(
            &returned,
            model,
            "{}: {table} RETURNING",
            db.backend().name()
        );
    }
    let stored = E::find().all(db.conn()).await.expect("read back");
    assert_eq!(stored.len(), models.len(), "{table}");
    for model in models {
        assert!(
            stored.contains(model),
            "{}: {table} row read back differently: {model:?}",
            db.backend().name()
        );
    }
}

/// The `i`th value of an enum, cycling, so `n` rows cover every value when `n >= ALL.len()`.
fn pick<T: Copy>(all: &[T], i: usize) -> T {
    all[i % all.len()]
}

/// `Some` on even rows, `None` on odd ones: both shapes of every optional column.
fn some_if_even<T>(i: usize, value: T) -> Option<T> {
    i.is_multiple_of(2).then_some(value)
}

/// A time with microseconds, PostgreSQL's precision.
fn at(minute: usize) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    base + chrono::Duration::minutes(i64::try_from(minute).unwrap())
        + chrono::Duration::microseconds(123_456)
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn count(i: usize) -> i32 {
    i32::try_from(i).unwrap()
}

#[tokio::test]
async fn every_entity_round_trips_with_every_enum_value() {
    for backend in backends().expect("backends") {
        let db = fresh_db(&backend).await.expect("database");

        let tenants: Vec<tenants::Model> = (0..5)
            .map(|i| {
                let plan = PlanCode::parse(pick(&PlanCode::BUILT_IN, i)).unwrap();
                let quotas = PlanQuotas::built_in(&plan).unwrap();
                tenants::Model {
                    id: TenantId::new(),
                    name: format!("Tenant {i}"),
                    slug: format!("tenant-{i}"),
                    external_org_id: some_if_even(i, format!("org_{i}")),
                    plan,
                    billing_email: some_if_even(i, format!("billing{i}@example.com")),
                    billing_customer_id: some_if_even(i, format!("cus_{i}")),
                    max_workers: quotas.max_workers,
                    max_runs_per_day: quotas.max_runs_per_day,
                    max_concurrent_runs: quotas.max_concurrent_runs,
                    max_tokens_per_month: quotas.max_tokens_per_month,
                    max_api_keys: quotas.max_api_keys,
                    runs_today: count(i),
                    runs_this_month: count(i * 10),
                    tokens_this_month: 5_000_000_000 + i64::from(count(i)),
                    usage_day: some_if_even(i, day(25)),
                    usage_month: some_if_even(i, day(1)),
                    last_run_reset_at: some_if_even(i, at(i)),
                    status: pick(TenantStatus::ALL, i),
                    suspended_reason: some_if_even(i, "unpaid".to_owned()),
                    onboarding_state: pick(OnboardingState::ALL, i),
                    created_at: at(i),
                    updated_at: at(i + 1),
                    active_runs: count(i),
                    active_workers: count(i) / 2,
                    tokens_reserved: 7_000_000_000 + i64::from(count(i)),
                    max_requests_per_minute: (i % 2 == 0).then_some(6_000 + count(i)),
                    audit_retention_days: (i % 2 == 1).then_some(30 + count(i)),
                    max_members: 10 + count(i),
                    plan_version: 1 + count(i),
                    warn_at_percent: (i % 2 == 0).then_some(50 + count(i)),
                    max_memory_pins: 5_000_000_000 + i64::from(count(i)),
                    max_pin_value_bytes: quotas.max_pin_value_bytes,
                    // Past 32 bits: the totals are 64-bit on both backends.
                    member_count: 3_000_000_000 + i64::from(count(i)),
                    api_key_count: i64::from(count(i)),
                    run_count: 5_000_000_000,
                }
            })
            .collect();
        round_trip::<tenants::Entity>(&db, &tenants).await;
        let tenant = |i: usize| tenants[i % tenants.len()].id;

        let users: Vec<users::Model> = (0..3)
            .map(|i| users::Model {
                id: UserId::new(),
                external_user_id: some_if_even(i, format!("user_{i}")),
                email: format!("user{i}@example.com"),
                name: some_if_even(i, format!("User {i}")),
                avatar_url: some_if_even(i, "https://example.com/a.png".to_owned()),
                oauth_provider: some_if_even(i, "google".to_owned()),
                oauth_provider_id: some_if_even(i, format!("g-{i}")),
                email_verified: i.is_multiple_of(2),
                email_verified_at: some_if_even(i, at(i)),
                default_tenant_id: some_if_even(i, tenant(i)),
                status: pick(UserStatus::ALL, i),
                time_zone: some_if_even(i, "Europe/Paris".to_owned()),
                locale: some_if_even(i, "fr-CA".to_owned()),
                preferences: some_if_even(i, json!({"theme": "dark", "digest": {"daily": true}})),
                created_at: at(i),
                updated_at: at(i),
                last_login_at: some_if_even(i, at(i + 2)),
            })
            .collect();
        round_trip::<users::Entity>(&db, &users).await;
        let user = |i: usize| users[i % users.len()].id;

        let memberships: Vec<memberships::Model> = (0..4)
            .map(|i| memberships::Model {
                id: MembershipId::new(),
                tenant_id: tenant(i),
                user_id: user(i),
                role: pick(MembershipRole::ALL, i),
                invited_by: some_if_even(i, user(i + 1)),
                created_at: at(i),
                updated_at: at(i),
                member_email: format!("user{}@example.com", i % 3),
            })
            .collect();
        round_trip::<memberships::Entity>(&db, &memberships).await;

        let mut api_keys: Vec<api_keys::Model> = Vec::new();
        for i in 0..3 {
            let previous = api_keys.last().map(|k: &api_keys::Model| k.id);
            api_keys.push(api_keys::Model {
                id: ApiKeyId::new(),
                tenant_id: tenant(i),
                user_id: some_if_even(i, user(i)),
                name: format!("key {i}"),
                key_prefix: format!("ak_live_{i:06}"),
                key_digest: format!("{i:064x}"),
                permissions: json!(["run:*", "read:*"]),
                allowed_workers: some_if_even(i, json!(["business-builder"])),
                rate_limit_rpm: some_if_even(i, 600),
                max_concurrent_runs: some_if_even(i, 4),
                status: pick(ApiKeyStatus::ALL, i),
                expires_at: some_if_even(i, at(1000)),
                revoked_at: some_if_even(i, at(i)),
                revoked_reason: some_if_even(i, "leaked".to_owned()),
                last_used_at: some_if_even(i, at(i)),
                total_requests: 3_000_000_000,
                is_frozen: !i.is_multiple_of(2),
                frozen_at: some_if_even(i, at(i)),
                frozen_by: some_if_even(i, "founder@example.com".to_owned()),
                freeze_reason: some_if_even(i, "abuse".to_owned()),
                rotated_from_id: previous.filter(|_| i.is_multiple_of(2)),
                successor_id: previous.filter(|_| !i.is_multiple_of(2)),
                metadata: some_if_even(i, json!({"team": "billing", "tier": i})),
                active_runs: count(i),
                created_at: at(i),
            });
        }
        round_trip::<api_keys::Entity>(&db, &api_keys).await;

        let mut runs: Vec<worker_runs::Model> = Vec::new();
        for i in 0..5 {
            let parent = runs.last().map(|r: &worker_runs::Model| r.id);
            runs.push(worker_runs::Model {
                id: RunId::new(),
                tenant_id: tenant(0),
                worker_id: "business-builder".to_owned(),
                api_key_id: some_if_even(i, api_keys[0].id),
                user_id: some_if_even(i, user(i)),
                task: format!("task {i}"),
                input: some_if_even(i, json!({"prompt": "hello"})),
                status: pick(RunStatus::ALL, i),
                success: some_if_even(i, i == 2),
                error: some_if_even(i, "boom".to_owned()),
                output: some_if_even(i, json!({"answer": 42})),
                replay_token: some_if_even(i, json!({"seed": 7})),
                total_tokens: 4_000_000_000,
                total_latency_ms: 1_500,
                stages_completed: 3,
                recoveries: 1,
                policy_violations: 0,
                cost_cents: 50,
                parent_run_id: parent.filter(|_| i.is_multiple_of(2)),
                attempt: count(i) + 1,
                created_at: at(i),
                started_at: some_if_even(i, at(i + 1)),
                completed_at: some_if_even(i, at(i + 2)),
                token_estimate: 8_000_000_000,
                lease_expires_at: some_if_even(i, at(i + 3)),
            });
        }
        round_trip::<worker_runs::Entity>(&db, &runs).await;

        let usage: Vec<usage_records::Model> = (0..3)
            .map(|i| usage_records::Model {
                id: UsageRecordId::new(),
                tenant_id: tenant(i),
                meter_name: "tokens_used".to_owned(),
                amount: 6_000_000_000,
                unit: pick(UsageUnit::ALL, i),
                period_start: at(60 * i),
                period_end: at(60 * (i + 1)),
                worker_id: some_if_even(i, "business-builder".to_owned()),
                api_key_id: some_if_even(i, api_keys[0].id),
                run_id: some_if_even(i, runs[0].id),
                idempotency_key: some_if_even(i, format!("idem-{i}")),
                metadata: some_if_even(i, json!({"model": "m"})),
                recorded_at: at(i),
            })
            .collect();
        round_trip::<usage_records::Entity>(&db, &usage).await;

        let hours: Vec<usage_hourly::Model> = (0..4)
            .map(|i| usage_hourly::Model {
                tenant_id: tenant(i),
                hour_start: at(3600 * i),
                meter_name: "tokens_used".to_owned(),
                unit: pick(UsageUnit::ALL, i),
                total: 6_000_000_000 * (i as i64 + 1),
            })
            .collect();
        round_trip::<usage_hourly::Entity>(&db, &hours).await;

        let workers: Vec<tenant_workers::Model> = (0..3)
            .map(|i| tenant_workers::Model {
                tenant_id: tenant(i),
                worker_id: format!("worker-{i}"),
                active_runs: i as i32,
            })
            .collect();
        round_trip::<tenant_workers::Entity>(&db, &workers).await;

        let audit: Vec<audit_log::Model> = (0..5)
            .map(|i| audit_log::Model {
                id: AuditEntryId::new(),
                tenant_id: some_if_even(i, tenant(i)),
                actor_type: pick(ActorType::ALL, i),
                user_id: some_if_even(i, user(i)),
                api_key_id: some_if_even(i, api_keys[0].id),
                action: "api_key.revoked".to_owned(),
                resource_type: "api_key".to_owned(),
                resource_id: some_if_even(i, api_keys[0].id.to_string()),
                reason: some_if_even(i, "rotation".to_owned()),
                old_value: some_if_even(i, json!({"status": "active"})),
                new_value: some_if_even(i, json!({"status": "revoked"})),
                ip_address: some_if_even(i, "203.0.113.7".to_owned()),
                user_agent: some_if_even(i, "curl/8".to_owned()),
                request_id: some_if_even(i, format!("req-{i}")),
                created_at: at(i),
            })
            .collect();
        round_trip::<audit_log::Entity>(&db, &audit).await;

        let subscriptions: Vec<subscriptions::Model> = (0..5)
            .map(|i| subscriptions::Model {
                id: SubscriptionId::new(),
                tenant_id: tenant(i),
                external_id: format!("sub_{i}"),
                plan: PlanCode::parse(pick(&PlanCode::BUILT_IN, i)).unwrap(),
                status: pick(SubscriptionStatus::ALL, i),
                billing_period: pick(BillingPeriod::ALL, i),
                current_period_start: some_if_even(i, at(0)),
                current_period_end: some_if_even(i, at(43_200)),
                trial_ends_at: some_if_even(i, at(20_160)),
                canceled_at: some_if_even(i, at(5)),
                cancel_at_period_end: i.is_multiple_of(2),
                convert_to_paid: !i.is_multiple_of(2),
                grace_period_days: i32::try_from(i).unwrap() * 20,
                grace_ends_at: some_if_even(i, at(30_240)),
                created_at: at(i),
                updated_at: at(i),
            })
            .collect();
        round_trip::<subscriptions::Entity>(&db, &subscriptions).await;

        let invoices: Vec<invoices::Model> = (0..5)
            .map(|i| invoices::Model {
                id: InvoiceId::new(),
                tenant_id: tenant(i),
                external_id: format!("in_{i}"),
                number: some_if_even(i, format!("INV-{i:04}")),
                status: pick(InvoiceStatus::ALL, i),
                currency: "usd".to_owned(),
                amount_due_cents: 2_900,
                amount_paid_cents: 2_900,
                period_start: at(0),
                period_end: at(43_200),
                issued_at: at(43_200),
                due_at: some_if_even(i, at(50_000)),
                paid_at: some_if_even(i, at(44_000)),
                hosted_url: some_if_even(i, "https://pay.example.com/in".to_owned()),
                created_at: at(i),
                updated_at: at(i),
            })
            .collect();
        round_trip::<invoices::Entity>(&db, &invoices).await;

        let invitations: Vec<invitations::Model> = (0..4)
            .map(|i| invitations::Model {
                id: InvitationId::new(),
                tenant_id: tenant(0),
                email: format!("invitee{i}@example.com"),
                role: pick(MembershipRole::ALL, i),
                status: pick(InvitationStatus::ALL, i),
                token_digest: format!("{:064x}", i + 100),
                invited_by: user(0),
                created_at: at(i),
                expires_at: at(i + 10_080),
                accepted_at: some_if_even(i, at(i + 5)),
                accepted_by: some_if_even(i, user(1)),
                revoked_at: some_if_even(i, at(i + 6)),
                updated_at: at(i),
            })
            .collect();
        round_trip::<invitations::Entity>(&db, &invitations).await;

        let tickets: Vec<support_tickets::Model> = (0..4)
            .map(|i| support_tickets::Model {
                id: TicketId::new(),
                tenant_id: tenant(i),
                user_id: user(i),
                subject: format!("Subject {i}"),
                description: "line one\nline two".to_owned(),
                category: pick(TicketCategory::ALL, i),
                priority: pick(TicketPriority::ALL, i),
                status: pick(TicketStatus::ALL, i),
                resolution: some_if_even(i, "fixed".to_owned()),
                created_at: at(i),
                updated_at: at(i),
                resolved_at: some_if_even(i, at(i + 60)),
            })
            .collect();
        round_trip::<support_tickets::Entity>(&db, &tickets).await;

        let pins: Vec<memory_pins::Model> = (0..2)
            .map(|i| memory_pins::Model {
                id: MemoryPinId::new(),
                tenant_id: tenant(i),
                key: format!("agent:config:{i}"),
                value: json!({"nested": {"list": [1, 2, 3]}, "text": "é"}),
                source: "api".to_owned(),
                ttl_seconds: some_if_even(i, 31_536_000),
                expires_at: some_if_even(i, at(525_600)),
                created_at: at(i),
                updated_at: at(i),
            })
            .collect();
        round_trip::<memory_pins::Entity>(&db, &pins).await;

        let pin_audit: Vec<memory_pin_audit::Model> = (0..2)
            .map(|i| memory_pin_audit::Model {
                id: MemoryPinAuditId::new(),
                tenant_id: tenant(i),
                operation: "upsert".to_owned(),
                key: format!("agent:config:{i}"),
                source: some_if_even(i, "api".to_owned()),
                agent_id: some_if_even(i, "agent-7".to_owned()),
                success: i.is_multiple_of(2),
                error_message: some_if_even(i, "none".to_owned()),
                old_value_hash: some_if_even(i, "0123456789abcdef".to_owned()),
                new_value_hash: some_if_even(i, "fedcba9876543210".to_owned()),
                created_at: at(i),
            })
            .collect();
        round_trip::<memory_pin_audit::Entity>(&db, &pin_audit).await;

        let attestations: Vec<sdk_attestations::Model> = (0..2)
            .map(|i| sdk_attestations::Model {
                id: AttestationId::new(),
                tenant_id: tenant(i),
                sdk_version: "1.2.3".to_owned(),
                sdk_language: "python".to_owned(),
                client_id: some_if_even(i, "client-1".to_owned()),
                attestation_hash: format!("{:064x}", i + 200),
                attested_at: at(i),
            })
            .collect();
        round_trip::<sdk_attestations::Entity>(&db, &attestations).await;

        let events: Vec<lifecycle_events::Model> = (0..5)
            .map(|i| lifecycle_events::Model {
                id: LifecycleEventId::new(),
                tenant_id: tenant(i),
                from_status: pick(TenantStatus::ALL, i),
                to_status: pick(TenantStatus::ALL, i + 1),
                action: "suspend_tenant".to_owned(),
                actor_type: pick(ActorType::ALL, i),
                actor_id: "founder@example.com".to_owned(),
                reason: some_if_even(i, "unpaid".to_owned()),
                created_at: at(i),
            })
            .collect();
        round_trip::<lifecycle_events::Entity>(&db, &events).await;

        let links: Vec<identity_links::Model> = (0..3)
            .map(|i| identity_links::Model {
                id: IdentityLinkId::new(),
                issuer: format!("https://idp{}.example.com", i % 2),
                subject: format!("subject-{i}"),
                user_id: users[i % users.len()].id,
                created_at: at(i),
            })
            .collect();
        round_trip::<identity_links::Entity>(&db, &links).await;

        let keys: Vec<idempotency_keys::Model> = (0..4)
            .map(|i| idempotency_keys::Model {
                tenant_id: tenant(i),
                credential: format!("key:{}", api_keys[0].id),
                key: format!("retry-{i}"),
                request_hash: vec![i as u8; 32],
                status_code: some_if_even(i, 201),
                // Every byte value, so nothing on the way is text.
                response: some_if_even(i, (0..=255).collect()),
                created_at: at(i),
                expires_at: at(i + 1_440),
            })
            .collect();
        round_trip::<idempotency_keys::Entity>(&db, &keys).await;
    }
}

/// Every entity module is in [`every_entity`] (and so in the checks above): a new table cannot
/// be forgotten here.
#[test]
fn every_entity_module_is_checked() {
    let modules = include_str!("../src/entities/mod.rs")
        .lines()
        .filter(|line| line.starts_with("pub mod "))
        .count();
    let names: Vec<&str> = every_entity().iter().map(|t| t.name).collect();
    assert_eq!(names.len(), modules, "{names:?}");
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}
