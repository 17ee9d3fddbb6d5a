//! The kit's promise: each database is isolated, and a second pool sees what the first wrote.

use account_testkit::{backends, empty_db};
use sea_orm::{ConnectionTrait, Statement};

#[tokio::test]
async fn second_connection_sees_committed_rows_and_databases_are_isolated() {
    for backend in backends().unwrap() {
        let first = empty_db(&backend).await.unwrap();
        let other = empty_db(&backend).await.unwrap();
        first
            .direct_conn()
            .execute_unprepared("CREATE TABLE probe (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        first
            .direct_conn()
            .execute_unprepared("INSERT INTO probe (id) VALUES (7)")
            .await
            .unwrap();

        let second = first.second_connection().await.unwrap();
        let backend_kind = second.get_database_backend();
        let row = second
            .query_one_raw(Statement::from_string(backend_kind, "SELECT id FROM probe"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.try_get::<i32>("", "id").unwrap(),
            7,
            "{}",
            backend.name()
        );

        let isolated = other
            .direct_conn()
            .execute_unprepared("SELECT id FROM probe")
            .await;
        assert!(
            isolated.is_err(),
            "{}: databases must not share tables",
            backend.name()
        );
    }
}
