//! Admission and settlement of runs, against counters kept in the rows admission locks.
//!
//! Admission bumps three rows, always in this order (settlement too, after the run's own
//! row), so concurrent admissions and settlements queue instead of deadlocking:
//! 1. the worker's row in `tenant_workers` (its runs queued or running, this one included:
//!    whether the run brings a new worker);
//! 2. the admitting key's row, only if its own concurrent-run limit holds;
//! 3. the tenant's row, only if the key's step held and every tenant limit holds: status,
//!    runs today, tokens used plus reserved plus this run's estimate, runs queued or
//!    running, workers busy. Its lock is taken last and held only until commit.
//!
//! Every limit is a condition on the row being updated, never a subquery: PostgreSQL checks
//! a locked row's conditions again on its newest version once the lock is granted, so
//! concurrent admissions see each other's counts exactly, without a separate lock.
//!
//! On PostgreSQL the three updates, the run, its usage record and hourly total, and its audit
//! row are one statement (data-modifying CTEs, each gated on the one before): one round trip,
//! then commit, and the tenant's row stays locked only from that statement to the commit.
//! SQLite has no data-modifying CTEs; its single writer runs the same steps one by one.
//!
//! A refused admission takes back what the steps before the refusing one counted (one or two
//! decrements) before it reads the usage that refused it, so it leaves nothing changed even
//! for a caller that does not roll back.

use super::{NewRun, RunSnapshot, UsagePeriod, run_model, snapshot};
use crate::audit::{NewAuditEntry, entry_model};
use crate::tenants::{TenantCoreSnapshot, core_snapshot, with_counter_increments};
use crate::usage::{NewUsageRecord, add_to_hourly_total, hourly_row, record_model};
use crate::{DriverError, TenantDriver};
use account_models::entities::{
    api_keys, audit_log, tenant_workers, tenants, usage_records, worker_runs,
};
use account_models::{ApiKeyId, TenantId, TenantStatus};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{
    Alias, Asterisk, CommonTableExpression, Condition, Expr, ExprTrait, InsertStatement, JoinType,
    OnConflict, Query, UpdateStatement, WithClause,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityName,
    EntityTrait, FromQueryResult, Iterable, QueryFilter, QueryTrait, StatementBuilder,
    TryIntoModel,
};

/// A run to admit: the checks' inputs and the rows written when it is admitted.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunAdmission {
    /// The run (its `token_estimate` is reserved against the month's quota).
    pub run: NewRun,
    /// The periods of the daily and monthly counters.
    pub period: UsagePeriod,
    /// The admission's usage record (written with its hourly total).
    pub usage: NewUsageRecord,
    /// The audit row written with the run, if the caller audits it.
    pub audit: Option<NewAuditEntry>,
}

impl RunAdmission {
    /// An admission of `run` in `period`, metered by `usage`, audited by `audit`.
    pub fn new(
        run: NewRun,
        period: UsagePeriod,
        usage: NewUsageRecord,
        audit: Option<NewAuditEntry>,
    ) -> Self {
        Self {
            run,
            period,
            usage,
            audit,
        }
    }
}

/// The outcome of an admission attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Admitted and written: the run, and the tenant's counters after it.
    Admitted {
        /// The run as inserted.
        run: RunSnapshot,
        /// The tenant as the admission left it (`runs_today` includes this run).
        tenant: TenantCoreSnapshot,
    },
    /// Refused; the caller rolls back. The usage as it stood, to say which limit refused.
    Refused(AdmissionUsage),
    /// No such tenant.
    TenantMissing,
}

/// Usage at a refused admission, read after the refusal (nothing of it changed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionUsage {
    /// The tenant as stored.
    pub tenant: TenantCoreSnapshot,
    /// Whether the run would have brought a worker with no run queued or running.
    pub new_worker: bool,
    /// The admitting key's runs, when its limit refused (the tenant's were not checked).
    pub key: Option<KeyRuns>,
}

/// A key's concurrent runs and its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRuns {
    /// The key.
    pub api_key_id: ApiKeyId,
    /// Its concurrent-run limit.
    pub max_concurrent_runs: Option<i32>,
    /// Its runs queued or running.
    pub active_runs: i32,
}

/// The names of the admission statement's parts (PostgreSQL).
const WORKER: &str = "admitted_worker";
const TENANT: &str = "admitted_tenant";
const KEY: &str = "admitted_key";
const RUN: &str = "admitted_run";
const RECORD: &str = "admitted_record";

/// What the PostgreSQL statement returns: the worker's count always; the tenant's row when
/// its limits held; the key when its limit held.
#[derive(Debug, FromQueryResult)]
struct AdmissionRow {
    worker_active_runs: i32,
    admitting_key: Option<ApiKeyId>,
    #[sea_orm(nested)]
    tenant: Option<tenants::Model>,
}

impl TenantDriver<'_> {
    /// Admits one run if the tenant is active and under every limit: bumps the counters,
    /// inserts the run, its usage record (with the hour's total) and its audit row, in the
    /// caller's write transaction. Statements when admitted: one on PostgreSQL; six (seven
    /// with a key) on SQLite. A refusal adds the undoing of the earlier steps and one read.
    pub async fn admit_run(
        &self,
        admission: RunAdmission,
        now: DateTimeUtc,
    ) -> Result<Admission, DriverError> {
        let conn = self.db.conn();
        let backend = conn.get_database_backend();
        let RunAdmission {
            run,
            period,
            usage,
            audit,
        } = admission;
        let (tenant, key) = (run.tenant_id, run.api_key_id);
        let admitted = AdmittedRows::of(&run, usage, audit, now)?;
        let worker = worker_upsert(tenant, &run.worker_id)?;
        let (worker_runs, key_ok, tenant_row) = if backend == DbBackend::Postgres {
            let mut with = WithClause::new();
            with.cte(cte(WORKER, worker));
            let mut tenant_update = tenant_update(tenant, &run, period, now, new_worker_of(WORKER));
            if let Some(key) = key {
                with.cte(cte(KEY, key_update(tenant, key)));
                tenant_update.and_where(Expr::cust(format!("EXISTS (SELECT 1 FROM {KEY})")));
            }
            with.cte(cte(TENANT, tenant_update));
            for (name, insert) in admitted.gated_inserts(&[TENANT])? {
                with.cte(cte(name, insert));
            }
            let column = |cte: &str, column: &str| Expr::col((Alias::new(cte), Alias::new(column)));
            let mut select = Query::select();
            select
                .expr_as(column(WORKER, "active_runs"), "worker_active_runs")
                .from(Alias::new(WORKER))
                .join(JoinType::LeftJoin, Alias::new(TENANT), Expr::cust("TRUE"))
                .column((Alias::new(TENANT), Asterisk));
            if key.is_some() {
                select.expr_as(column(KEY, "id"), "admitting_key").join(
                    JoinType::LeftJoin,
                    Alias::new(KEY),
                    Expr::cust("TRUE"),
                );
            } else {
                select.expr_as(Expr::cust("CAST(NULL AS uuid)"), "admitting_key");
            }
            let statement = StatementBuilder::build(&with.query(select), &backend);
            let Some(row) = AdmissionRow::find_by_statement(statement).one(conn).await? else {
                return Ok(Admission::TenantMissing);
            };
            let key_ok = key.is_none() || row.admitting_key.is_some();
            (row.worker_active_runs, key_ok, row.tenant)
        } else {
            let worker_runs: i32 = match conn.query_one(&worker).await? {
                Some(row) => row.try_get("", "active_runs")?,
                None => return Ok(Admission::TenantMissing),
            };
            let key_ok = match key {
                Some(key) => conn.query_one(&key_update(tenant, key)).await?.is_some(),
                None => true,
            };
            let mut tenant_row = None;
            if key_ok {
                let new_worker = Expr::val(i32::from(worker_runs == 1));
                let update = tenant_update(tenant, &run, period, now, new_worker);
                tenant_row =
                    tenants::Model::find_by_statement(StatementBuilder::build(&update, &backend))
                        .one(conn)
                        .await?;
            }
            if tenant_row.is_some() {
                admitted.write_in_turn(self).await?;
            }
            (worker_runs, key_ok, tenant_row)
        };
        let new_worker = worker_runs == 1;
        if let (true, Some(row)) = (key_ok, tenant_row) {
            return Ok(Admission::Admitted {
                run: admitted.run()?,
                tenant: core_snapshot(row),
            });
        }
        // Refused: undo what the steps before the refusing one counted, then read the usage
        // that refused it (the refusing row was not changed).
        self.release_worker(tenant, &run.worker_id).await?;
        match key {
            Some(key) if !key_ok => self.refused_by_key(tenant, key, new_worker).await,
            Some(key) => {
                self.release_key(tenant, key).await?;
                self.refused_by_tenant(tenant, new_worker).await
            }
            None => self.refused_by_tenant(tenant, new_worker).await,
        }
    }

    /// One run fewer on the worker's row; returns its runs left (`None`: no row).
    async fn release_worker(
        &self,
        tenant: TenantId,
        worker: &str,
    ) -> Result<Option<i32>, DriverError> {
        use tenant_workers::Column as W;
        let update = Query::update()
            .table(tenant_workers::Entity.table_ref())
            .value(W::ActiveRuns, Expr::col(W::ActiveRuns).sub(1))
            .and_where(Expr::col(W::TenantId).eq(tenant))
            .and_where(Expr::col(W::WorkerId).eq(worker))
            .returning_col(W::ActiveRuns)
            .to_owned();
        match self.db.conn().query_one(&update).await? {
            Some(row) => Ok(Some(row.try_get("", "active_runs")?)),
            None => Ok(None),
        }
    }

    /// One run fewer on the key's row.
    async fn release_key(&self, tenant: TenantId, key: ApiKeyId) -> Result<(), DriverError> {
        use api_keys::Column as K;
        api_keys::Entity::update_many()
            .col_expr(K::ActiveRuns, Expr::col(K::ActiveRuns).sub(1))
            .filter(K::TenantId.eq(tenant))
            .filter(K::Id.eq(key))
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    /// A refusal by a tenant limit: the tenant as it stands (the refused update changed
    /// nothing on it).
    async fn refused_by_tenant(
        &self,
        tenant: TenantId,
        new_worker: bool,
    ) -> Result<Admission, DriverError> {
        let row = tenants::Entity::find_by_id(tenant)
            .one(self.db.conn())
            .await?;
        Ok(match row {
            None => Admission::TenantMissing,
            Some(row) => Admission::Refused(AdmissionUsage {
                tenant: core_snapshot(row),
                new_worker,
                key: None,
            }),
        })
    }

    /// A refusal by the key's limit: the key and the tenant as they stand (neither changed).
    async fn refused_by_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        new_worker: bool,
    ) -> Result<Admission, DriverError> {
        let Admission::Refused(mut usage) = self.refused_by_tenant(tenant, new_worker).await?
        else {
            return Ok(Admission::TenantMissing);
        };
        let row = api_keys::Entity::find_by_id(key)
            .filter(api_keys::Column::TenantId.eq(tenant))
            .one(self.db.conn())
            .await?;
        usage.key = row.map(|k| KeyRuns {
            api_key_id: k.id,
            max_concurrent_runs: k.max_concurrent_runs,
            active_runs: k.active_runs,
        });
        Ok(Admission::Refused(usage))
    }

    /// Releases what a run that just finished held: its worker's, key's and tenant's
    /// queued-or-running counts and its token reservation; adds the tokens it used to the
    /// month's counter. Call it once, in the transaction that finished the run (after the
    /// run's own row; then admission's lock order). Statements: two, three when a key
    /// started the run.
    pub async fn settle_run(
        &self,
        run: &RunSnapshot,
        period: UsagePeriod,
        now: DateTimeUtc,
    ) -> Result<(), DriverError> {
        use tenants::Column as T;
        let left = self.release_worker(run.tenant_id, &run.worker_id).await?;
        if let Some(key) = run.api_key_id {
            self.release_key(run.tenant_id, key).await?;
        }
        let idle = i32::from(left == Some(0));
        with_counter_increments(
            tenants::Entity::update_many(),
            0,
            run.total_tokens,
            period.day,
            period.month,
            now,
        )
        .col_expr(T::ActiveRuns, Expr::col(T::ActiveRuns).sub(1))
        .col_expr(T::ActiveWorkers, Expr::col(T::ActiveWorkers).sub(idle))
        .col_expr(
            T::TokensReserved,
            Expr::col(T::TokensReserved).sub(run.token_estimate),
        )
        .filter(T::Id.eq(run.tenant_id))
        .exec(self.db.conn())
        .await?;
        Ok(())
    }
}

/// The rows an admitted run writes besides the counters.
struct AdmittedRows {
    run: worker_runs::ActiveModel,
    usage: NewUsageRecord,
    record: usage_records::Model,
    audit: Option<audit_log::ActiveModel>,
    now: DateTimeUtc,
}

impl AdmittedRows {
    fn of(
        run: &NewRun,
        usage: NewUsageRecord,
        audit: Option<NewAuditEntry>,
        now: DateTimeUtc,
    ) -> Result<Self, DriverError> {
        Ok(Self {
            run: run_model(run.clone(), now),
            record: record_model(usage.clone(), now).try_into_model()?,
            usage,
            audit: audit.map(|entry| entry_model(entry, now)),
            now,
        })
    }

    /// The run as inserted.
    fn run(&self) -> Result<RunSnapshot, DriverError> {
        Ok(snapshot(self.run.clone().try_into_model()?))
    }

    /// The inserts as CTEs (PostgreSQL), each gated on what it depends on: the run on the
    /// counters (`gate`), the record on the run, its hourly total on the record (a record
    /// already written adds nothing), the audit row on the run.
    fn gated_inserts(
        &self,
        gate: &[&str],
    ) -> Result<Vec<(&'static str, InsertStatement)>, DriverError> {
        let mut run = gated_insert(&self.run, gate)?;
        run.returning_col(worker_runs::Column::Id);
        let mut record = gated_insert(
            &usage_records::ActiveModel::from(self.record.clone()),
            &[RUN],
        )?;
        record
            .on_conflict(
                OnConflict::columns([
                    usage_records::Column::TenantId,
                    usage_records::Column::IdempotencyKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .returning_col(usage_records::Column::Id);
        let mut hourly = gated_insert(&hourly_row(&self.record), &[RECORD])?;
        hourly.on_conflict(add_to_hourly_total());
        let mut inserts = vec![(RUN, run), (RECORD, record), ("admitted_hour", hourly)];
        if let Some(audit) = &self.audit {
            inserts.push(("admitted_audit", gated_insert(audit, &[RUN])?));
        }
        Ok(inserts)
    }

    /// The inserts one by one (SQLite).
    async fn write_in_turn(&self, driver: &TenantDriver<'_>) -> Result<(), DriverError> {
        let conn = driver.db.conn();
        self.run.clone().insert(conn).await?;
        driver
            .insert_usage_record(self.usage.clone(), self.now)
            .await?;
        if let Some(audit) = &self.audit {
            audit.clone().insert(conn).await?;
        }
        Ok(())
    }
}

/// A named part of the admission statement.
fn cte(
    name: &str,
    query: impl Into<sea_orm::sea_query::SubQueryStatement>,
) -> CommonTableExpression {
    CommonTableExpression::new()
        .table_name(Alias::new(name))
        .query(query)
        .to_owned()
}

/// `INSERT INTO <table> (<set columns>) SELECT <their values> FROM <gate>`: one row when
/// every gate holds a row, none otherwise.
fn gated_insert<A: ActiveModelTrait>(
    model: &A,
    gate: &[&str],
) -> Result<InsertStatement, DriverError> {
    let mut columns = Vec::new();
    let mut select = Query::select();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = model.get(column) {
            columns.push(column);
            select.expr(Expr::val(value));
        }
    }
    for table in gate {
        select.from(Alias::new(*table));
    }
    let mut insert = Query::insert();
    insert
        .into_table(A::Entity::default().table_ref())
        .columns(columns)
        .select_from(select)
        .map_err(|e| DriverError::from(DbErr::Custom(e.to_string())))?;
    Ok(insert)
}

/// The worker's row, with this run counted: `INSERT .. ON CONFLICT DO UPDATE` returns its
/// queued-or-running runs (1: the run brings a new worker). No row when the tenant does not
/// exist (the insert selects from it; the key's and the tenant's steps then match nothing).
fn worker_upsert(tenant: TenantId, worker: &str) -> Result<InsertStatement, DriverError> {
    use tenant_workers::Column as W;
    let mut values = Query::select();
    values
        .expr(Expr::val(tenant))
        .expr(Expr::val(worker))
        .expr(Expr::val(1))
        .from(tenants::Entity.table_ref())
        .and_where(Expr::col((tenants::Entity, tenants::Column::Id)).eq(tenant));
    let mut insert = Query::insert();
    insert
        .into_table(tenant_workers::Entity.table_ref())
        .columns([W::TenantId, W::WorkerId, W::ActiveRuns])
        .select_from(values)
        .map_err(|e| DriverError::from(DbErr::Custom(e.to_string())))?
        .on_conflict(
            OnConflict::columns([W::TenantId, W::WorkerId])
                .value(
                    W::ActiveRuns,
                    Expr::col((Alias::new("tenant_workers"), W::ActiveRuns)).add(1),
                )
                .to_owned(),
        )
        .returning_col(W::ActiveRuns);
    Ok(insert)
}

/// `1` when the worker's row (the CTE `worker`) counts only this run, else `0`.
fn new_worker_of(worker: &str) -> Expr {
    Expr::cust(format!(
        "(SELECT CASE WHEN active_runs = 1 THEN 1 ELSE 0 END FROM {worker})"
    ))
}

/// The tenant's conditional update: every tenant limit is a condition on its own row, and
/// the counters move only when all hold. Returns the whole row.
fn tenant_update(
    tenant: TenantId,
    run: &NewRun,
    period: UsagePeriod,
    now: DateTimeUtc,
    new_worker: Expr,
) -> UpdateStatement {
    use tenants::Column as C;
    let runs_today = Expr::case(
        Expr::col(C::UsageDay).eq(period.day),
        Expr::col(C::RunsToday),
    )
    .finally(0);
    let tokens = Expr::case(
        Expr::col(C::UsageMonth).eq(period.month),
        Expr::col(C::TokensThisMonth),
    )
    .finally(0);
    // Used plus reserved stays under the quota, and this run's estimate fits in what is left.
    let committed = Expr::expr(tokens).add(Expr::col(C::TokensReserved));
    let limits = Condition::all()
        .add(Expr::col(C::Id).eq(tenant))
        .add(Expr::col(C::Status).eq(TenantStatus::Active.as_str()))
        .add(Expr::expr(runs_today).lt(Expr::col(C::MaxRunsPerDay)))
        .add(committed.clone().lt(Expr::col(C::MaxTokensPerMonth)))
        .add(
            committed
                .add(run.token_estimate)
                .lte(Expr::col(C::MaxTokensPerMonth)),
        )
        .add(Expr::col(C::ActiveRuns).lt(Expr::col(C::MaxConcurrentRuns)))
        .add(
            Expr::col(C::ActiveWorkers)
                .add(new_worker.clone())
                .lte(Expr::col(C::MaxWorkers)),
        );
    let mut update = with_counter_increments(
        tenants::Entity::update_many(),
        1,
        0,
        period.day,
        period.month,
        now,
    )
    .col_expr(C::ActiveRuns, Expr::col(C::ActiveRuns).add(1))
    .col_expr(C::RunCount, Expr::col(C::RunCount).add(1_i64))
    .col_expr(
        C::ActiveWorkers,
        Expr::col(C::ActiveWorkers).add(new_worker),
    )
    .col_expr(
        C::TokensReserved,
        Expr::col(C::TokensReserved).add(run.token_estimate),
    )
    .filter(limits)
    .into_query();
    update.returning_all();
    update
}

/// The admitting key's update: one more run, if under its own limit. Returns its id.
fn key_update(tenant: TenantId, key: ApiKeyId) -> UpdateStatement {
    use api_keys::Column as K;
    Query::update()
        .table(api_keys::Entity.table_ref())
        .value(K::ActiveRuns, Expr::col(K::ActiveRuns).add(1))
        .and_where(Expr::col(K::TenantId).eq(tenant))
        .and_where(Expr::col(K::Id).eq(key))
        .cond_where(
            Condition::any()
                .add(Expr::col(K::MaxConcurrentRuns).is_null())
                .add(Expr::col(K::ActiveRuns).lt(Expr::col(K::MaxConcurrentRuns))),
        )
        .returning_col(K::Id)
        .to_owned()
}
