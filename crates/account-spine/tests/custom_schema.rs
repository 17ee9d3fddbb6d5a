//! A host picks the schema our tables live in. One process, one schema: this binary installs
//! `acct_custom` before anything queries, and a second, different name is refused.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::types::SchemaName;
use account_spine::{DatabaseConfig, OperatorPrincipal, RequestMeta, Spine, SpineError};
use account_testkit::{Backend, backends, empty_db};
use sea_orm::{ConnectionTrait, Statement};

#[tokio::test]
async fn tables_live_in_the_configured_schema_and_a_second_name_is_refused() {
    let custom = SchemaName::parse("acct_custom").unwrap();
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        let config = DatabaseConfig::new(db.url()).with_schema(custom.clone());
        let pepper = account_spine::api_keys::ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap();
        let spine = Spine::connect(&config).await.unwrap().with_pepper(pepper);
        let applied = account_spine::migrate(&config).await.unwrap();
        assert!(!applied.migrations.is_empty(), "{}", backend.name());
        let operator = OperatorPrincipal {
            operator_id: "ops@example.com".into(),
            request: RequestMeta::default(),
        };
        let (created, _) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();

        // The rows are where the schema says, and not in the default `account`.
        let (conn, sql) = match backend {
            Backend::Sqlite => (
                db.direct_conn().clone(),
                "SELECT COUNT(*) FROM tenants".to_owned(),
            ),
            Backend::Postgres { .. } => (
                db.host_conn().clone(),
                "SELECT COUNT(*) FROM acct_custom.tenants".to_owned(),
            ),
        };
        let row = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.try_get_by_index::<i64>(0).unwrap(),
            1,
            "{}",
            backend.name()
        );
        if let Backend::Postgres { .. } = backend {
            let stray = db
                .host_conn()
                .query_one_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'account'",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stray.try_get_by_index::<i64>(0).unwrap(), 0);
        }

        // The audit log's guard and its purge work in the host's schema: the guard's function
        // names no table, and the purge's permission is the transaction's, not the schema's.
        let (table, tenants, [p1, p2, p3]) = match backend {
            Backend::Sqlite => ("audit_log", "tenants", ["?"; 3]),
            Backend::Postgres { .. } => (
                "acct_custom.audit_log",
                "acct_custom.tenants",
                ["$1", "$2", "$3"],
            ),
        };
        let tenant = created.tenant.id.as_uuid();
        let sql = |text: String, values: Vec<sea_orm::Value>| {
            Statement::from_sql_and_values(conn.get_database_backend(), text, values)
        };
        let refused = conn
            .execute_raw(sql(
                format!("UPDATE {table} SET action = 'x.forged'"),
                vec![],
            ))
            .await
            .unwrap_err();
        assert!(
            format!("{refused:?}").contains("tg_audit_log_append_only"),
            "{refused:?}"
        );
        let old = chrono::Utc::now() - chrono::TimeDelta::days(400);
        let insert = format!(
            "INSERT INTO {table} (id, tenant_id, actor_type, action, resource_type, created_at) \
             VALUES ({p1}, {p2}, 'system', 'x.old', 'run', {p3})"
        );
        let values = vec![uuid::Uuid::now_v7().into(), tenant.into(), old.into()];
        conn.execute_raw(sql(insert, values)).await.unwrap();
        let retention = format!("UPDATE {tenants} SET audit_retention_days = 30 WHERE id = {p1}");
        conn.execute_raw(sql(retention, vec![tenant.into()]))
            .await
            .unwrap();
        let purged = spine.purge_audit_log(created.tenant.id, 100).await.unwrap();
        assert_eq!(purged.removed, 1, "{}", backend.name());

        let other = DatabaseConfig::new(db.url()).with_schema(SchemaName::default());
        let refused = Spine::connect(&other).await.unwrap_err();
        assert!(
            matches!(&refused, SpineError::SchemaConflict { in_force, wanted }
                if in_force == "acct_custom" && wanted == "account"),
            "{refused:?}"
        );
    }
}
