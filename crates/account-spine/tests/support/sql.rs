//! Plain SQL for seeding and checking: a test sees the database, never the drivers.

use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use std::collections::BTreeMap;

/// Rows of `table` where every `column = value` holds (`Value` nulls mean `IS NULL`).
pub(crate) async fn count(conn: &DatabaseConnection, table: &str, conds: &[(&str, Value)]) -> i64 {
    let mut filter = Cond::all();
    for (column, value) in conds {
        let column = Expr::col(Alias::new(*column));
        filter = filter.add(if is_null(value) {
            column.is_null()
        } else {
            column.eq(value.clone())
        });
    }
    let mut query = Query::select();
    query
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(Alias::new(table))
        .cond_where(filter);
    let row = conn
        .query_one_raw(conn.get_database_backend().build(&query))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn is_null(value: &Value) -> bool {
    matches!(
        value,
        Value::String(None) | Value::Uuid(None) | Value::Int(None) | Value::BigInt(None)
    )
}

/// SQL `NULL`, for [`count`].
pub(crate) fn null() -> Value {
    Value::String(None)
}

async fn strings(conn: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect()
}

/// Every table's rows, each rendered as text, sorted: two equal snapshots mean the database
/// holds exactly the same data (row counts and contents).
pub(crate) async fn snapshot(conn: &DatabaseConnection) -> BTreeMap<String, Vec<String>> {
    let backend = conn.get_database_backend();
    let tables = match backend {
        DbBackend::Sqlite => {
            strings(
                conn,
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
                "t",
            )
            .await
        }
        _ => {
            strings(
                conn,
                "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY 1",
                "t",
            )
            .await
        }
    };
    let mut snapshot = BTreeMap::new();
    for table in tables {
        let sql = match backend {
            DbBackend::Sqlite => {
                let columns = strings(
                    conn,
                    &format!("SELECT name AS c FROM pragma_table_info('{table}') ORDER BY cid"),
                    "c",
                )
                .await;
                let row = columns
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                format!("SELECT {row} AS r FROM \"{table}\"")
            }
            _ => format!("SELECT CAST(x AS TEXT) AS r FROM \"{table}\" AS x"),
        };
        let mut rows = strings(conn, &sql, "r").await;
        rows.sort();
        snapshot.insert(table, rows);
    }
    snapshot
}

/// How many audit rows each action has.
pub(crate) async fn audit_actions(conn: &DatabaseConnection) -> BTreeMap<String, i64> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT action, COUNT(*) AS n FROM audit_log GROUP BY action",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get::<String>("", "action").unwrap(),
                row.try_get::<i64>("", "n").unwrap(),
            )
        })
        .collect()
}
