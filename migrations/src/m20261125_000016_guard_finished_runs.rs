//! A finished (completed or failed) run cannot be rewritten: retries are new rows.
//!
//! Enforced by a trigger on both backends, so no code path (including a future bug) can
//! change a finished run. Both report the name `tg_worker_runs_immutable`, which drivers map
//! to a typed error.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds the finished-run guard.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const POSTGRES_UP: &str = r#"
CREATE FUNCTION worker_runs_immutable_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status IN ('completed', 'failed') THEN
        RAISE EXCEPTION 'tg_worker_runs_immutable: run % is finished and cannot be rewritten', OLD.id
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_worker_runs_immutable';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER tg_worker_runs_immutable BEFORE UPDATE ON worker_runs
    FOR EACH ROW EXECUTE FUNCTION worker_runs_immutable_guard();
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS tg_worker_runs_immutable ON worker_runs;
DROP FUNCTION IF EXISTS worker_runs_immutable_guard();
"#;

const SQLITE_UP: &str = r#"
CREATE TRIGGER tg_worker_runs_immutable BEFORE UPDATE ON worker_runs
FOR EACH ROW WHEN OLD.status IN ('completed', 'failed')
BEGIN
    SELECT RAISE(ABORT, 'tg_worker_runs_immutable: a finished run cannot be rewritten');
END;
"#;

const SQLITE_DOWN: &str = "DROP TRIGGER IF EXISTS tg_worker_runs_immutable;";

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
