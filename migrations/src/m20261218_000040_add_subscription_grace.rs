//! Trials and grace: a subscription whose trial ended unpaid enters `grace` (a new status)
//! until `grace_ends_at`, then is cancelled and its tenant suspended. `convert_to_paid` says the
//! trial turns into the paid plan at its end (a payment method is on file), and
//! `grace_period_days` how long the grace lasts for this subscription (7 by default, the
//! documented default of the trial start).
//!
//! The status CHECK widens to `grace`. SQLite cannot alter a table constraint: the stored
//! `CREATE TABLE` text is edited in place as migration 37 does (its helpers are copied here,
//! since a migration is frozen and self-contained).
//!
//! Two partial indexes serve the reaper's scans alone: trials in progress by their end, and
//! graces by theirs, so each scan stays as small as the subscriptions in that state (both
//! backends support `CREATE INDEX ... WHERE`; the scans repeat the predicates verbatim).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

/// Adds the grace state and the trial's conversion settings to `subscriptions`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const T: &str = "subscriptions";
const CHECK: &str = "ck_subscriptions_status";
const GRACE_DAYS_CHECK: &str = "ck_subscriptions_grace_period_days";

const STATUSES: &[&str] = &["active", "canceled", "past_due", "trialing", "grace"];
const STATUSES_DOWN: &[&str] = &["active", "canceled", "past_due", "trialing"];

const TRIAL_INDEX: &str = "CREATE INDEX ix_subscriptions_trial_ends_at \
     ON subscriptions (trial_ends_at) WHERE status = 'trialing'";
const GRACE_INDEX: &str = "CREATE INDEX ix_subscriptions_grace_ends_at \
     ON subscriptions (grace_ends_at) WHERE status = 'grace'";

fn status_clause(statuses: &[&str]) -> String {
    let list = statuses
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CONSTRAINT \"{CHECK}\" CHECK (\"status\" IN ({list}))")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        for column in [
            ColumnDef::new("convert_to_paid")
                .boolean()
                .not_null()
                .default(false)
                .take(),
            ColumnDef::new("grace_period_days")
                .integer()
                .not_null()
                .default(7)
                .take(),
            ColumnDef::new("grace_ends_at")
                .timestamp_with_time_zone()
                .null()
                .take(),
        ] {
            let alter = Table::alter().table(T).add_column(column).to_owned();
            manager.alter_table(alter).await?;
        }
        let grace_days = format!(
            "CONSTRAINT \"{GRACE_DAYS_CHECK}\" CHECK (\"grace_period_days\" BETWEEN 0 AND 90)"
        );
        match backend {
            // SQLite cannot add a table constraint: the widened status CHECK replaces the
            // old one, and the grace days' CHECK goes in beside it.
            DbBackend::Sqlite => {
                let both = format!("{}, {grace_days}", status_clause(STATUSES));
                rewrite_sqlite_table(manager, T, CHECK, Some(&both)).await?;
            }
            _ => {
                db.execute_unprepared(&format!("ALTER TABLE {T} DROP CONSTRAINT {CHECK}"))
                    .await?;
                db.execute_unprepared(&format!("ALTER TABLE {T} ADD {}", status_clause(STATUSES)))
                    .await?;
                db.execute_unprepared(&format!("ALTER TABLE {T} ADD {grace_days}"))
                    .await?;
            }
        }
        db.execute_unprepared(TRIAL_INDEX).await?;
        db.execute_unprepared(GRACE_INDEX).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Going back only works while no subscription is in grace.
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX ix_subscriptions_grace_ends_at")
            .await?;
        db.execute_unprepared("DROP INDEX ix_subscriptions_trial_ends_at")
            .await?;
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                rewrite_sqlite_table(manager, T, GRACE_DAYS_CHECK, None).await?;
                let clause = status_clause(STATUSES_DOWN);
                rewrite_sqlite_table(manager, T, CHECK, Some(&clause)).await?;
            }
            _ => {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {T} DROP CONSTRAINT {GRACE_DAYS_CHECK}"
                ))
                .await?;
                db.execute_unprepared(&format!("ALTER TABLE {T} DROP CONSTRAINT {CHECK}"))
                    .await?;
                db.execute_unprepared(&format!(
                    "ALTER TABLE {T} ADD {}",
                    status_clause(STATUSES_DOWN)
                ))
                .await?;
            }
        }
        for column in ["grace_ends_at", "grace_period_days", "convert_to_paid"] {
            let alter = Table::alter().table(T).drop_column(column).to_owned();
            manager.alter_table(alter).await?;
        }
        Ok(())
    }
}

/// Removes the table constraint `name` from `table`'s definition on SQLite (or replaces it
/// with `replacement`), which has no `DROP CONSTRAINT`: the stored `CREATE TABLE` text is
/// edited as SQLite documents ("Making Other Kinds Of Table Schema Changes":
/// `writable_schema`, then a new `schema_version` so every connection reloads the schema).
/// Rebuilding the table would fire the cascades of tables referencing it. Loosening a CHECK
/// leaves every stored row valid; the added grace days' CHECK holds for every stored row,
/// which has the column's default. (Copied from migration 37: migrations are frozen.)
async fn rewrite_sqlite_table(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    replacement: Option<&str>,
) -> Result<(), DbErr> {
    // One connection for all of it (a savepoint when the migration runs in a transaction):
    // `writable_schema` is a setting of the connection.
    let db = manager.get_connection().begin().await?;
    let backend = DbBackend::Sqlite;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            [table.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("no table {table}")))?;
    let sql: String = row.try_get("", "sql")?;
    let rewritten = without_constraint(&sql, name, replacement)
        .ok_or_else(|| DbErr::Migration(format!("{table} has no constraint {name}")))?;
    let version: i64 = db
        .query_one_raw(Statement::from_string(backend, "PRAGMA schema_version"))
        .await?
        .ok_or_else(|| DbErr::Migration("no schema_version".into()))?
        .try_get_by_index(0)?;
    db.execute_unprepared("PRAGMA writable_schema = ON").await?;
    let updated = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
            [rewritten.into(), table.into()],
        ))
        .await;
    let bumped = db
        .execute_unprepared(&format!("PRAGMA schema_version = {}", version + 1))
        .await;
    db.execute_unprepared("PRAGMA writable_schema = OFF")
        .await?;
    updated?;
    bumped?;
    db.commit().await
}

/// `sql` (a `CREATE TABLE` statement) without its `, CONSTRAINT "name" CHECK (...)` clause,
/// or with `replacement` in its place; `None` when it has no such clause.
fn without_constraint(sql: &str, name: &str, replacement: Option<&str>) -> Option<String> {
    let marker = format!("CONSTRAINT \"{name}\"");
    let start = sql.find(&marker)?;
    let open = start + sql[start..].find('(')?;
    let mut depth = 0usize;
    let mut end = None;
    let mut quoted = false;
    for (offset, ch) in sql[open..].char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    end = Some(open + offset + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    Some(match replacement {
        Some(clause) => format!("{}{clause}{}", &sql[..start], &sql[end..]),
        None => {
            // Take the separating comma before the clause with it.
            let head = sql[..start].trim_end();
            let head = head.strip_suffix(',').unwrap_or(head);
            format!("{head}{}", &sql[end..])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{STATUSES, status_clause, without_constraint};

    #[test]
    fn the_status_check_widens_in_place() {
        let sql = "CREATE TABLE \"subscriptions\" ( \"status\" varchar(50), CONSTRAINT \"ck_subscriptions_status\" CHECK (\"status\" IN ('active', 'canceled', 'past_due', 'trialing')), CONSTRAINT \"ck_subscriptions_billing_period\" CHECK (\"billing_period\" IN ('monthly', 'annual')) )";
        let widened = without_constraint(
            sql,
            "ck_subscriptions_status",
            Some(&status_clause(STATUSES)),
        )
        .unwrap();
        assert!(widened.contains("'trialing', 'grace'))"), "{widened}");
        assert!(widened.contains("ck_subscriptions_billing_period"));
    }
}
