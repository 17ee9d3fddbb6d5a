//! The finished-run guard lets a finished run lose a reference to a deleted key, user or
//! parent run, and nothing else.
//!
//! The first guard (`m20261125_000016`) refused every update of a finished run, including the
//! `ON DELETE SET NULL` of its foreign keys: deleting an API key or a user that a finished run
//! pointed at failed. This guard refuses any change to a finished run except `api_key_id`,
//! `user_id` or `parent_run_id` becoming NULL. The trigger keeps its name and its error token
//! `tg_worker_runs_immutable`, so drivers map it as before.
//!
//! On PostgreSQL the comparison covers the whole row (a future column is guarded without a
//! new migration); SQLite has no row value, so its trigger lists the columns, and a migration
//! that adds a column to `worker_runs` must re-create it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Replaces the finished-run guard with one that allows detaching deleted references.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const POSTGRES_UP: &str = r#"
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

/// The guard of `m20261125_000016`, restored by `down`.
const POSTGRES_DOWN: &str = r#"
CREATE OR REPLACE FUNCTION worker_runs_immutable_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed') THEN
        RAISE EXCEPTION 'tg_worker_runs_immutable: run % is finished and cannot be rewritten', OLD.id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_worker_runs_immutable';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"#;

const SQLITE_UP: &str = r#"
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

/// The guard of `m20261125_000016`, restored by `down`.
const SQLITE_DOWN: &str = r#"
DROP TRIGGER IF EXISTS tg_worker_runs_immutable;
CREATE TRIGGER tg_worker_runs_immutable BEFORE UPDATE ON worker_runs
FOR EACH ROW WHEN OLD.status IN ('completed', 'failed')
BEGIN
    SELECT RAISE(ABORT, 'tg_worker_runs_immutable: a finished run cannot be rewritten');
END;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }
}
