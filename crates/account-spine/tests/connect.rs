//! The spine connects to both backends, migrates on request and answers readiness.

use account_spine::{DatabaseConfig, Spine};
use account_testkit::{backends, empty_db};

#[tokio::test]
async fn migrates_and_answers_readiness_on_every_backend() {
    for backend in backends().unwrap() {
        let db = empty_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap();
        let config = DatabaseConfig::new(db.url());
        let first = account_spine::migrate(&config).await.unwrap();
        assert_eq!(
            first.migrations.first().map(String::as_str),
            Some("m20261125_000001_create_tenants"),
            "{}",
            backend.name()
        );
        let second = account_spine::migrate(&config).await.unwrap();
        assert!(
            second.migrations.is_empty(),
            "a second run has nothing left to apply"
        );
        spine.check_database().await.unwrap();
        assert_eq!(spine.backend_name(), backend.name());
    }
}

#[tokio::test]
async fn an_unreachable_database_is_reported_as_unavailable() {
    let mut config = DatabaseConfig::new("postgres://nobody@127.0.0.1:1/none");
    config.connect_timeout = std::time::Duration::from_millis(200);
    config.acquire_timeout = std::time::Duration::from_millis(200);
    let error = Spine::connect(&config).await.unwrap_err();
    assert!(
        matches!(error, account_spine::SpineError::Unavailable(_)),
        "{error:?}"
    );
}
