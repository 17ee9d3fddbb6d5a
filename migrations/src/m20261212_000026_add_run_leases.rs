//! `worker_runs.lease_expires_at`: until when a queued or running run's worker is known to be
//! alive. Admission sets it, every heartbeat moves it forward, and the reaper expires the runs
//! whose lease lapsed (status `crashed`), which frees their concurrency slots.
//!
//! The index serves the reaper's scan alone: partial, over queued and running runs only, so it
//! stays as small as the number of runs in flight however many finished runs the table holds
//! (both backends support `CREATE INDEX ... WHERE`; the scan repeats the predicate verbatim so
//! both planners match it).
//!
//! Runs already in flight get a lease of the default length (60 s) from now, computed by the
//! database: a one-off, so no clock of ours is at hand. On SQLite the text has the shape the
//! application writes (RFC 3339, `+00:00`), so text comparisons order it with the rest.
//!
//! An expired (`crashed`) run is finished like a completed or failed one, so the finished-run
//! guard now covers it too. On SQLite the guard lists the columns it compares and is re-created
//! with the new one (see `m20261125_000017`); on PostgreSQL it compares whole rows already.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds run leases, their index, and the guard over crashed runs.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "worker_runs";
const INDEX: &str = "ix_worker_runs_lease_expires_at";

const POSTGRES_BACKFILL: &str = "UPDATE worker_runs SET lease_expires_at = now() + interval '60 seconds' \
     WHERE status IN ('queued', 'running')";

const SQLITE_BACKFILL: &str = "UPDATE worker_runs \
     SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+60 seconds') \
     WHERE status IN ('queued', 'running')";

const POSTGRES_GUARD: &str = r#"
CREATE OR REPLACE FUNCTION worker_runs_immutable_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed', 'crashed') AND NOT (
        (NEW.api_key_id IS NOT DISTINCT FROM OLD.api_key_id OR NEW.api_key_id IS NULL)
        AND (NEW.user_id IS NOT DISTINCT FROM OLD.user_id OR NEW.user_id IS NULL)
        AND (NEW.parent_run_id IS NOT DISTINCT FROM OLD.parent_run_id OR NEW.parent_run_id IS NULL)
        AND to_jsonb(NEW) - 'api_key_id' - 'user_id' - 'parent_run_id'
            = to_jsonb(OLD) - 'api_key_id' - 'user_id' - 'parent_run_id'
    ) THEN
        RAISE EXCEPTION 'tg_worker_runs_immutable: run % is finished and cannot be rewritten', OLD.id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_worker_runs_immutable';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"#;

/// The guard of `m20261125_000017`, restored by `down`.
const POSTGRES_GUARD_DOWN: &str = r#"
CREATE OR REPLACE FUNCTION worker_runs_immutable_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed') AND NOT (
        (NEW.api_key_id IS NOT DISTINCT FROM OLD.api_key_id OR NEW.api_key_id IS NULL)
        AND (NEW.user_id IS NOT DISTINCT FROM OLD.user_id OR NEW.user_id IS NULL)
        AND (NEW.parent_run_id IS NOT DISTINCT FROM OLD.parent_run_id OR NEW.parent_run_id IS NULL)
        AND to_jsonb(NEW) - 'api_key_id' - 'user_id' - 'parent_run_id'
            = to_jsonb(OLD) - 'api_key_id' - 'user_id' - 'parent_run_id'
    ) THEN
        RAISE EXCEPTION 'tg_worker_runs_immutable: run % is finished and cannot be rewritten', OLD.id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_worker_runs_immutable';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"#;

const SQLITE_GUARD: &str = r#"
DROP TRIGGER IF EXISTS tg_worker_runs_immutable;
CREATE TRIGGER tg_worker_runs_immutable BEFORE UPDATE ON worker_runs
FOR EACH ROW WHEN OLD.status IN ('completed', 'failed', 'crashed') AND NOT (
    (NEW.api_key_id IS OLD.api_key_id OR NEW.api_key_id IS NULL)
    AND (NEW.user_id IS OLD.user_id OR NEW.user_id IS NULL)
    AND (NEW.parent_run_id IS OLD.parent_run_id OR NEW.parent_run_id IS NULL)
    AND NEW.id IS OLD.id
    AND NEW.tenant_id IS OLD.tenant_id
    AND NEW.worker_id IS OLD.worker_id
    AND NEW.task IS OLD.task
    AND NEW.input IS OLD.input
    AND NEW.status IS OLD.status
    AND NEW.success IS OLD.success
    AND NEW.error IS OLD.error
    AND NEW.output IS OLD.output
    AND NEW.replay_token IS OLD.replay_token
    AND NEW.total_tokens IS OLD.total_tokens
    AND NEW.total_latency_ms IS OLD.total_latency_ms
    AND NEW.stages_completed IS OLD.stages_completed
    AND NEW.recoveries IS OLD.recoveries
    AND NEW.policy_violations IS OLD.policy_violations
    AND NEW.cost_cents IS OLD.cost_cents
    AND NEW.attempt IS OLD.attempt
    AND NEW.created_at IS OLD.created_at
    AND NEW.started_at IS OLD.started_at
    AND NEW.completed_at IS OLD.completed_at
    AND NEW.token_estimate IS OLD.token_estimate
    AND NEW.lease_expires_at IS OLD.lease_expires_at
)
BEGIN
    SELECT RAISE(ABORT, 'tg_worker_runs_immutable: a finished run cannot be rewritten');
END;
"#;

/// The guard of `m20261125_000017`, restored by `down` (before the column it does not name
/// is dropped).
const SQLITE_GUARD_DOWN: &str = r#"
DROP TRIGGER IF EXISTS tg_worker_runs_immutable;
CREATE TRIGGER tg_worker_runs_immutable BEFORE UPDATE ON worker_runs
FOR EACH ROW WHEN OLD.status IN ('completed', 'failed') AND NOT (
    (NEW.api_key_id IS OLD.api_key_id OR NEW.api_key_id IS NULL)
    AND (NEW.user_id IS OLD.user_id OR NEW.user_id IS NULL)
    AND (NEW.parent_run_id IS OLD.parent_run_id OR NEW.parent_run_id IS NULL)
    AND NEW.id IS OLD.id
    AND NEW.tenant_id IS OLD.tenant_id
    AND NEW.worker_id IS OLD.worker_id
    AND NEW.task IS OLD.task
    AND NEW.input IS OLD.input
    AND NEW.status IS OLD.status
    AND NEW.success IS OLD.success
    AND NEW.error IS OLD.error
    AND NEW.output IS OLD.output
    AND NEW.replay_token IS OLD.replay_token
    AND NEW.total_tokens IS OLD.total_tokens
    AND NEW.total_latency_ms IS OLD.total_latency_ms
    AND NEW.stages_completed IS OLD.stages_completed
    AND NEW.recoveries IS OLD.recoveries
    AND NEW.policy_violations IS OLD.policy_violations
    AND NEW.cost_cents IS OLD.cost_cents
    AND NEW.attempt IS OLD.attempt
    AND NEW.created_at IS OLD.created_at
    AND NEW.started_at IS OLD.started_at
    AND NEW.completed_at IS OLD.completed_at
)
BEGIN
    SELECT RAISE(ABORT, 'tg_worker_runs_immutable: a finished run cannot be rewritten');
END;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let alter = Table::alter()
            .table(T)
            .add_column(timestamp_null("lease_expires_at"))
            .to_owned();
        manager.alter_table(alter).await?;
        let mut lapsed = index(INDEX, T, &["lease_expires_at"]);
        lapsed.and_where(Expr::col("status").is_in(["queued", "running"]));
        manager.create_index(lapsed).await?;
        let (backfill, guard) = match manager.get_database_backend() {
            DbBackend::Postgres => (POSTGRES_BACKFILL, POSTGRES_GUARD),
            _ => (SQLITE_BACKFILL, SQLITE_GUARD),
        };
        let db = manager.get_connection();
        db.execute_unprepared(backfill).await?;
        db.execute_unprepared(guard).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let guard = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_GUARD_DOWN,
            _ => SQLITE_GUARD_DOWN,
        };
        manager.get_connection().execute_unprepared(guard).await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(T).to_owned())
            .await?;
        let alter = Table::alter()
            .table(T)
            .drop_column("lease_expires_at")
            .to_owned();
        manager.alter_table(alter).await
    }
}
