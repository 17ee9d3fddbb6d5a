//! Platform operator keys on each backend: created by platform tooling and audited, stored as
//! a digest only, verified into an operator; a tenant key never verifies as an operator and an
//! operator key never as a tenant; a revoked key stops at once.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::ApiKeyPepper;
use account_spine::lifecycle::LifecycleAction;
use account_spine::{DatabaseConfig, ErrorCode, OperatorPrincipal, RequestMeta, Spine};
use account_testkit::{backends, fresh_db};
use sea_orm::{ConnectionTrait, Statement};

fn cli() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "cli:test".into(),
        request: RequestMeta::default(),
    }
}

async fn count(db: &account_testkit::TestDb, sql: &str) -> i64 {
    let backend = db.conn().get_database_backend();
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test]
async fn operator_keys_verify_only_as_operators_and_stop_when_revoked() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = fresh_db(&backend).await.unwrap();
        let spine = Spine::connect(&DatabaseConfig::new(db.url()))
            .await
            .unwrap()
            .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap());
        let (created, tenant_key) = spine
            .bootstrap(&cli(), "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;

        // An unidentified operator cannot create keys; bad names are refused.
        let nobody = OperatorPrincipal {
            operator_id: " ".into(),
            request: RequestMeta::default(),
        };
        let error = spine.create_operator_key(&nobody, "x").await.unwrap_err();
        assert_eq!(error.http_status(), 403, "{name}");
        let error = spine.create_operator_key(&cli(), "  ").await.unwrap_err();
        assert_eq!(error.http_status(), 422, "{name}: {error}");

        let op = spine.create_operator_key(&cli(), "ops").await.unwrap();
        let plaintext = op.plaintext.expose().to_owned();
        assert!(plaintext.starts_with("acc_op_"), "{name}");
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM operator_keys WHERE key_digest = '{}'",
                    op.key.key_digest
                )
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM operator_keys WHERE key_digest LIKE '%{}%'",
                    &plaintext[7..20]
                )
            )
            .await,
            0,
            "{name}: the plaintext is never stored"
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'operator_key.created' AND tenant_id IS NULL"
            )
            .await,
            1,
            "{name}"
        );

        // It verifies as an operator, who may act on any tenant.
        let operator = spine
            .authenticate_operator_key(&plaintext, RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(operator.operator_id, format!("operator_key:{}", op.key.id));
        spine
            .transition_tenant(&operator, tenant, LifecycleAction::Suspend, "test")
            .await
            .unwrap();
        spine
            .transition_tenant(&operator, tenant, LifecycleAction::Resume, "test")
            .await
            .unwrap();

        // Never the other way round.
        let error = spine
            .authenticate_operator_key(tenant_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(error.http_status(), 401, "{name}: {error}");
        let error = spine
            .authenticate_api_key(&plaintext, RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(error.http_status(), 401, "{name}: {error}");

        // Revoked: refused at once, and the revocation is audited.
        spine.revoke_operator_key(&cli(), op.key.id).await.unwrap();
        let error = spine
            .authenticate_operator_key(&plaintext, RequestMeta::default())
            .await
            .unwrap_err();
        assert_eq!(error.code(), "api_key_revoked", "{name}");
        assert!(spine.revoke_operator_key(&cli(), op.key.id).await.is_err());
        let listed = spine.list_operator_keys(&cli()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'operator_key.revoked'"
            )
            .await,
            1,
            "{name}"
        );
    }
}
