//! The audit log becomes readable and bounded: `tenants.audit_retention_days` (the plan's
//! retention, copied onto the tenant like its quotas; absent means kept forever), the index
//! the keyset read and the purge walk (`tenant_id, created_at, id`, which supersedes
//! `ix_audit_log_tenant_id_created_at`), and a guard that keeps rows append-only.
//!
//! The guard (`tg_audit_log_append_only`): on PostgreSQL no row may be updated, and a row may
//! be deleted only in a transaction that named itself in `account.audit_purge`
//! (`set_config('account.audit_purge', txid_current()::text, true)`: the purge does, nothing
//! else), so neither `on` nor a setting left on a pooled session by another transaction
//! allows anything; `TRUNCATE` is refused (`tg_audit_log_no_truncate`). Both report the name
//! `tg_audit_log_append_only`, which drivers classify as a rejected write. It binds every role
//! that runs statements, the table owner included, against mistakes and injected statements;
//! it is not a boundary against someone who runs SQL of their choosing as that role (they can
//! set the flag as the purge does), nor against a role that may disable or drop triggers (a
//! superuser, or the owner altering the table). On SQLite, which has no transaction-local
//! setting a trigger can read, only updates are refused.
//!
//! Existing tenants get their plan's retention (free 30 days, pro 365, enterprise 2,555: seven
//! years), written out here so later edits of the plan table do not change this migration.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds the retention column, the keyset index and the append-only guard.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const TENANTS: &str = "tenants";
const AUDIT: &str = "audit_log";
const NEW_INDEX: &str = "ix_audit_log_tenant_id_created_at_id";
const OLD_INDEX: &str = "ix_audit_log_tenant_id_created_at";

// The function names no table, so it works whatever the caller's `search_path` (hosts install
// our tables in a schema of their choosing; the trigger refers to the function by oid).
const POSTGRES_UP: &str = r#"
CREATE FUNCTION audit_log_append_only_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
        AND current_setting('account.audit_purge', true) = txid_current()::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'tg_audit_log_append_only: audit rows cannot be changed (% refused); only the retention purge deletes them', TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_audit_log_append_only';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only_guard();
CREATE TRIGGER tg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only_guard();
"#;

const POSTGRES_DOWN: &str = r#"
DROP TRIGGER IF EXISTS tg_audit_log_no_truncate ON audit_log;
DROP TRIGGER IF EXISTS tg_audit_log_append_only ON audit_log;
DROP FUNCTION IF EXISTS audit_log_append_only_guard();
"#;

const SQLITE_UP: &str = r#"
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'tg_audit_log_append_only: audit rows cannot be changed');
END;
"#;

const SQLITE_DOWN: &str = "DROP TRIGGER IF EXISTS tg_audit_log_append_only;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new("audit_retention_days")
            .integer()
            .null()
            .take();
        let alter = Table::alter().table(TENANTS).add_column(column).to_owned();
        manager.alter_table(alter).await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE tenants SET audit_retention_days = CASE plan \
                 WHEN 'free' THEN 30 WHEN 'pro' THEN 365 WHEN 'enterprise' THEN 2555 ELSE NULL END",
            )
            .await?;
        manager
            .create_index(index(NEW_INDEX, AUDIT, &["tenant_id", "created_at", "id"]))
            .await?;
        manager
            .drop_index(Index::drop().name(OLD_INDEX).table(AUDIT).to_owned())
            .await?;
        let guard = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        manager.get_connection().execute_unprepared(guard).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let guard = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        manager.get_connection().execute_unprepared(guard).await?;
        manager
            .create_index(index(OLD_INDEX, AUDIT, &["tenant_id", "created_at"]))
            .await?;
        manager
            .drop_index(Index::drop().name(NEW_INDEX).table(AUDIT).to_owned())
            .await?;
        let alter = Table::alter()
            .table(TENANTS)
            .drop_column("audit_retention_days")
            .to_owned();
        manager.alter_table(alter).await
    }
}
