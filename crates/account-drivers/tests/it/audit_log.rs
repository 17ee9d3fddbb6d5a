//! `audit_log` driver tests.

use crate::support::*;
use account_drivers::audit::NewAuditEntry;
use account_drivers::types::*;
use account_drivers::{OffsetPage, StatementCounter, get_tenant_driver};
use serde_json::json;

fn entry(tenant: TenantId, action: &str) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: Some(tenant),
        actor_type: ActorType::User,
        user_id: None,
        api_key_id: None,
        action: action.into(),
        resource_type: "api_key".into(),
        resource_id: Some("k1".into()),
        reason: Some("rotation".into()),
        old_value: Some(json!({})),
        new_value: Some(json!({"status": "revoked"})),
        ip_address: None,
        user_agent: None,
        request_id: Some("req-1".into()),
    }
}

#[tokio::test]
async fn entries_are_appended_in_one_statement_and_listed_per_tenant() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let driver = get_tenant_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "audit").await;
        let other = seed_tenant(db, "audit-other").await;
        let written = driver
            .insert_audit_log(entry(tenant, "api_key.revoked"), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(
            written.old_value, None,
            "an empty object is stored as nothing"
        );
        assert_eq!(written.new_value, Some(json!({"status": "revoked"})));
        driver
            .insert_audit_log(entry(tenant, "api_key.created"), later(1))
            .await
            .unwrap();
        driver
            .insert_audit_log(entry(other, "tenant.created"), later(2))
            .await
            .unwrap();
        counter.take();

        let page = driver
            .fetch_audit_log(
                tenant,
                OffsetPage {
                    limit: 10,
                    offset: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 2, "fetch_audit_log: count and page");
        let actions: Vec<_> = page.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, vec!["api_key.created", "api_key.revoked"]);
        assert_eq!(page.total, 2);
    })
    .await;
}
