//! `memory_pins` driver tests.

use crate::support::*;
use account_drivers::memory_pins::NewPinAudit;
use account_drivers::{DriverError, OffsetPage, StatementCounter, get_memory_pins_driver};
use serde_json::json;

const PAGE: OffsetPage = OffsetPage {
    limit: 50,
    offset: 0,
};

#[tokio::test]
async fn upsert_is_one_statement_and_renews_the_ttl_from_each_write() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let pins = get_memory_pins_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "pins").await;
        let first = pins
            .upsert_pin(tenant, "cfg:a", json!({"v": 1}), "api", Some(60), now())
            .await
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(first.expires_at, Some(later(60)));

        // Expired at +61; re-saving at +100 makes it visible again until +160.
        assert!(
            pins.get_pin(tenant, "cfg:a", later(61))
                .await
                .unwrap()
                .is_none()
        );
        let renewed = pins
            .upsert_pin(
                tenant,
                "cfg:a",
                json!({"v": 2}),
                "seed",
                Some(60),
                later(100),
            )
            .await
            .unwrap();
        assert_eq!(counter.take(), 2);
        assert_eq!(
            (renewed.id, renewed.created_at, renewed.expires_at),
            (first.id, now(), Some(later(160)))
        );
        let read = pins
            .get_pin(tenant, "cfg:a", later(101))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter.take(), 1);
        assert_eq!(
            (read.value, read.source.as_str()),
            (json!({"v": 2}), "seed")
        );

        // No TTL clears the expiry.
        let forever = pins
            .upsert_pin(tenant, "cfg:a", json!({}), "api", None, later(200))
            .await
            .unwrap();
        assert_eq!(forever.expires_at, None);
    })
    .await;
}

#[tokio::test]
async fn pins_are_tenant_scoped() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let pins = get_memory_pins_driver(handle(db).counting(&counter));
        let mine = seed_tenant(db, "mine").await;
        let theirs = seed_tenant(db, "theirs").await;
        pins.upsert_pin(mine, "k", json!({"owner": "mine"}), "api", None, now())
            .await
            .unwrap();
        pins.upsert_pin(theirs, "k", json!({"owner": "theirs"}), "api", None, now())
            .await
            .unwrap();
        assert_eq!(
            pins.get_pin(mine, "k", now()).await.unwrap().unwrap().value,
            json!({"owner": "mine"})
        );
        counter.take();
        assert!(pins.delete_pin(mine, "k").await.unwrap());
        assert_eq!(counter.take(), 1, "delete_pin is one statement");
        assert!(!pins.delete_pin(mine, "k").await.unwrap());
        assert!(
            pins.get_pin(theirs, "k", now()).await.unwrap().is_some(),
            "the other tenant's pin is untouched"
        );
        counter.take();
        assert_eq!(
            pins.list_pins(mine, None, true, now(), PAGE)
                .await
                .unwrap()
                .total,
            0
        );
        assert_eq!(counter.take(), 2, "list_pins: count and page");
        let theirs_listed = pins
            .list_pins_after(theirs, None, false, now(), None, 10)
            .await
            .unwrap();
        assert_eq!(counter.take(), 1, "list_pins_after: one keyset page");
        assert_eq!(
            theirs_listed
                .items
                .iter()
                .map(|p| p.tenant_id)
                .collect::<Vec<_>>(),
            vec![theirs]
        );
        assert!(
            pins.list_pins_after(mine, None, true, now(), None, 10)
                .await
                .unwrap()
                .items
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn prefixes_match_literally_and_lists_page_both_ways() {
    each_backend(async |db| {
        let pins = get_memory_pins_driver(handle(db));
        let tenant = seed_tenant(db, "prefix").await;
        for (i, key) in ["a%", "ab", "a_", "A1", "a%b"].iter().enumerate() {
            pins.upsert_pin(tenant, key, json!({}), "api", None, later(i as i64))
                .await
                .unwrap();
        }
        let keys = |page: account_drivers::Page<account_drivers::memory_pins::MemoryPinRow>| {
            page.items.into_iter().map(|p| p.key).collect::<Vec<_>>()
        };
        assert_eq!(
            keys(
                pins.list_pins(tenant, Some("a%"), false, now(), PAGE)
                    .await
                    .unwrap()
            ),
            vec!["a%b", "a%"]
        );
        assert_eq!(
            keys(
                pins.list_pins(tenant, Some("a_"), false, now(), PAGE)
                    .await
                    .unwrap()
            ),
            vec!["a_"]
        );
        assert_eq!(
            keys(
                pins.list_pins(tenant, Some("a"), false, now(), PAGE)
                    .await
                    .unwrap()
            )
            .len(),
            4,
            "case-sensitive on both backends"
        );

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = pins
                .list_pins_after(tenant, None, false, now(), after, 2)
                .await
                .unwrap();
            seen.extend(page.items.into_iter().map(|p| p.key));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, vec!["a%b", "A1", "a_", "ab", "a%"]);
    })
    .await;
}

#[tokio::test]
async fn expired_pins_are_hidden_unless_asked_and_cleaned_in_batches() {
    each_backend(async |db| {
        let pins = get_memory_pins_driver(handle(db));
        let tenant = seed_tenant(db, "cleanup").await;
        let other = seed_tenant(db, "cleanup-other").await;
        for i in 0..5 {
            pins.upsert_pin(
                tenant,
                &format!("old{i}"),
                json!({}),
                "api",
                Some(10),
                now(),
            )
            .await
            .unwrap();
        }
        pins.upsert_pin(tenant, "kept", json!({}), "api", Some(3600), now())
            .await
            .unwrap();
        pins.upsert_pin(other, "old", json!({}), "api", Some(10), now())
            .await
            .unwrap();
        assert_eq!(
            pins.list_pins(tenant, None, false, later(11), PAGE)
                .await
                .unwrap()
                .total,
            1
        );
        assert_eq!(
            pins.list_pins(tenant, None, true, later(11), PAGE)
                .await
                .unwrap()
                .total,
            6
        );

        assert_eq!(
            pins.cleanup_expired(Some(tenant), later(11), 2)
                .await
                .unwrap(),
            5
        );
        assert_eq!(
            pins.list_pins(tenant, None, true, later(11), PAGE)
                .await
                .unwrap()
                .total,
            1
        );
        assert_eq!(
            pins.list_pins(other, None, true, later(11), PAGE)
                .await
                .unwrap()
                .total,
            1,
            "another tenant's pins stay"
        );
        assert_eq!(pins.cleanup_expired(None, later(11), 2).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn audit_entries_are_written_and_listed() {
    each_backend(async |db| {
        let counter = StatementCounter::new();
        let pins = get_memory_pins_driver(handle(db).counting(&counter));
        let tenant = seed_tenant(db, "audit-pins").await;
        let other = seed_tenant(db, "audit-pins-other").await;
        let entry = NewPinAudit {
            tenant_id: tenant,
            operation: "upsert".into(),
            key: "k".into(),
            source: Some("api".into()),
            agent_id: None,
            success: true,
            error_message: None,
            old_value_hash: None,
            new_value_hash: Some("abcd".into()),
        };
        let written = pins.write_audit(entry, now()).await.unwrap();
        assert_eq!(counter.take(), 1, "write_audit is one statement");
        let page = pins.fetch_audit(tenant, PAGE).await.unwrap();
        assert_eq!(counter.take(), 2, "fetch_audit: count and page");
        assert_eq!(
            (page.total, page.items[0].operation.as_str()),
            (1, "upsert")
        );
        assert_eq!(page.items, vec![written]);
        assert_eq!(pins.fetch_audit(other, PAGE).await.unwrap().total, 0);
    })
    .await;
}

/// Found by schemathesis: PostgreSQL cannot store NUL in `jsonb` (SQLSTATE 22P05) or `text`
/// (22021). Engines refuse it first; should one miss a path, the driver reports caller input
/// (`UnstorableText`), not an internal error. SQLite stores it.
#[tokio::test]
async fn text_postgres_cannot_store_is_reported_as_unstorable_text() {
    each_backend(async |db| {
        let pins = get_memory_pins_driver(handle(db));
        let tenant = seed_tenant(db, "nul-pins").await;
        let in_jsonb = pins
            .upsert_pin(tenant, "k", json!({"a": "x\u{0}y"}), "api", None, now())
            .await;
        let in_text = pins
            .upsert_pin(tenant, "k\u{0}", json!({}), "api", None, now())
            .await;
        match db.backend() {
            account_testkit::Backend::Postgres { .. } => {
                for result in [in_jsonb, in_text] {
                    assert!(
                        matches!(result, Err(DriverError::UnstorableText(_))),
                        "{result:?}"
                    );
                }
            }
            account_testkit::Backend::Sqlite => {
                assert!(in_jsonb.is_ok() && in_text.is_ok());
            }
        }
    })
    .await;
}
