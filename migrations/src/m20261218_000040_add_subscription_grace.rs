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

use crate::columns::rewrite_sqlite_table;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

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

#[cfg(test)]
mod tests {
    use super::{STATUSES, status_clause};
    use crate::columns::without_constraint;

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
