//! User erasure: `user_erasures` records each erased user (the user id, the stable pseudonym
//! their rows now carry, who asked, when it was asked and when it completed; nothing else of
//! the person), and the audit log's guard gains one narrow path for the erasure.
//!
//! The guard (`tg_audit_log_append_only`, migration 33) still refuses every update but this
//! one: a transaction that named itself the erasure may rewrite the columns that can hold
//! personal data (`reason`, `old_value`, `new_value`, `ip_address`, `user_agent`) and nothing
//! else, so the row's identity (id, tenant, actor, user, key, action, resource, request,
//! time) stays as written and the erased user's history stays linked by their user id.
//!
//! - PostgreSQL: the transaction sets `account.audit_erasure` to its own id
//!   (`set_config(..., txid_current()::text, true)`), as the purge does with
//!   `account.audit_purge`; the erasure's driver alone does. The function still names no
//!   table, so it works whatever the caller's `search_path`.
//! - SQLite, which has no transaction-local setting a trigger can read: the trigger allows
//!   the update while a `user_erasures` row without `completed_at` exists. The erasure inserts
//!   that row and completes it in the same transaction, so no other transaction ever sees
//!   one (SQLite has a single writer and readers see committed rows only).
//!
//! Neither is a boundary against someone who runs SQL of their choosing as the application's
//! role (they can name themselves as the erasure does); that is documented for the purge too.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Creates `user_erasures` and gives the audit guard its erasure path.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "user_erasures";

const POSTGRES_UP: &str = r#"
CREATE OR REPLACE FUNCTION audit_log_append_only_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
        AND current_setting('account.audit_purge', true) = txid_current()::text THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE'
        AND current_setting('account.audit_erasure', true) = txid_current()::text
        AND NEW.id = OLD.id
        AND NEW.tenant_id IS NOT DISTINCT FROM OLD.tenant_id
        AND NEW.actor_type = OLD.actor_type
        AND NEW.user_id IS NOT DISTINCT FROM OLD.user_id
        AND NEW.api_key_id IS NOT DISTINCT FROM OLD.api_key_id
        AND NEW.action = OLD.action
        AND NEW.resource_type = OLD.resource_type
        AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
        AND NEW.request_id IS NOT DISTINCT FROM OLD.request_id
        AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'tg_audit_log_append_only: audit rows cannot be changed (% refused); only the retention purge deletes them and only a user''s erasure rewrites their personal data', TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_audit_log_append_only';
END
$$ LANGUAGE plpgsql;
"#;

// Migration 33's function, put back by `down`.
const POSTGRES_DOWN: &str = r#"
CREATE OR REPLACE FUNCTION audit_log_append_only_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
        AND current_setting('account.audit_purge', true) = txid_current()::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'tg_audit_log_append_only: audit rows cannot be changed (% refused); only the retention purge deletes them', TG_OP
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'tg_audit_log_append_only';
END
$$ LANGUAGE plpgsql;
"#;

const SQLITE_UP: &str = r#"
DROP TRIGGER IF EXISTS tg_audit_log_append_only;
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE ON audit_log
WHEN NOT (
    EXISTS (SELECT 1 FROM user_erasures WHERE completed_at IS NULL)
    AND NEW.id IS OLD.id
    AND NEW.tenant_id IS OLD.tenant_id
    AND NEW.actor_type IS OLD.actor_type
    AND NEW.user_id IS OLD.user_id
    AND NEW.api_key_id IS OLD.api_key_id
    AND NEW.action IS OLD.action
    AND NEW.resource_type IS OLD.resource_type
    AND NEW.resource_id IS OLD.resource_id
    AND NEW.request_id IS OLD.request_id
    AND NEW.created_at IS OLD.created_at
)
BEGIN
    SELECT RAISE(ABORT, 'tg_audit_log_append_only: audit rows cannot be changed');
END;
"#;

// Migration 33's trigger, put back by `down`.
const SQLITE_DOWN: &str = r#"
DROP TRIGGER IF EXISTS tg_audit_log_append_only;
CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'tg_audit_log_append_only: audit rows cannot be changed');
END;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(T)
                    .col(uuid_pk("user_id"))
                    .col(varchar("pseudonym", 64))
                    .col(varchar("requested_by", 16))
                    .col(timestamp("requested_at"))
                    .col(timestamp_null("completed_at"))
                    .check(one_of(T, "requested_by", &["self", "operator"]))
                    .to_owned(),
            )
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
        manager.drop_table(Table::drop().table(T).to_owned()).await
    }
}
