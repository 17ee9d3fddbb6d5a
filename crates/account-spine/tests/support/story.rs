//! The stories of `events_and_authority.rs` and `audit_and_observability.rs`: one tenant
//! seeded with plain SQL ([`World`]), its members and keys, and readers of its audit rows.

#![allow(dead_code)] // each test file uses a part

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::types::*;
use account_spine::{
    Actor, DomainEvent, FixedClock, OffsetPage, Operation, OperatorPrincipal, Principal,
    RecordedEvents, RequestMeta, Spine,
};
use account_testkit::fixtures::{Limits, TenantSeed, insert_membership, insert_user, seed_tenant};
use account_testkit::{Backend, TestDb, fresh_db};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::sync::Arc;

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

pub(crate) const PAGE: OffsetPage = OffsetPage {
    limit: 50,
    offset: 0,
};

pub(crate) async fn count(conn: &DatabaseConnection, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// One audit row, as far as these tests look at it.
#[derive(Debug)]
pub(crate) struct AuditRow {
    pub(crate) tenant_id: Option<uuid::Uuid>,
    pub(crate) actor_type: String,
    pub(crate) user_id: Option<uuid::Uuid>,
    pub(crate) api_key_id: Option<uuid::Uuid>,
    pub(crate) resource_id: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) ip_address: Option<String>,
    pub(crate) user_agent: Option<String>,
}

pub(crate) async fn audit_rows(conn: &DatabaseConnection, action: &str) -> Vec<AuditRow> {
    let sql = format!(
        "SELECT tenant_id, actor_type, user_id, api_key_id, resource_id, reason, request_id, \
         ip_address, user_agent FROM audit_log WHERE action = '{action}' ORDER BY created_at, id"
    );
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| AuditRow {
            tenant_id: row.try_get("", "tenant_id").unwrap(),
            actor_type: row.try_get("", "actor_type").unwrap(),
            user_id: row.try_get("", "user_id").unwrap(),
            api_key_id: row.try_get("", "api_key_id").unwrap(),
            resource_id: row.try_get("", "resource_id").unwrap(),
            reason: row.try_get("", "reason").unwrap(),
            request_id: row.try_get("", "request_id").unwrap(),
            ip_address: row.try_get("", "ip_address").unwrap(),
            user_agent: row.try_get("", "user_agent").unwrap(),
        })
        .collect()
}

/// The refusal rows of one operation.
pub(crate) async fn refusals(conn: &DatabaseConnection, operation: Operation) -> Vec<AuditRow> {
    audit_rows(conn, "authorization.refused")
        .await
        .into_iter()
        .filter(|row| row.resource_id.as_deref() == Some(operation.name()))
        .collect()
}

pub(crate) fn request(id: &str) -> RequestMeta {
    RequestMeta::default()
        .with_request_id(id)
        .with_ip_address("203.0.113.7")
        .with_user_agent("events-test/1.0")
}

pub(crate) fn operator(id: &str) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: id.to_owned(),
        request: request("req-operator"),
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Quotas {
    pub(crate) runs_per_day: i32,
    pub(crate) concurrent_runs: i32,
    pub(crate) tokens_per_month: i64,
}

impl Default for Quotas {
    fn default() -> Self {
        let free = account_spine::types::PlanQuotas::built_in(&PlanCode::free()).unwrap();
        Self {
            runs_per_day: free.max_runs_per_day,
            concurrent_runs: free.max_concurrent_runs,
            tokens_per_month: free.max_tokens_per_month,
        }
    }
}

pub(crate) struct World {
    pub(crate) backend: &'static str,
    pub(crate) db: TestDb,
    pub(crate) spine: Spine,
    pub(crate) events: Arc<RecordedEvents>,
    pub(crate) tenant: TenantId,
    pub(crate) owner: UserId,
}

impl World {
    pub(crate) async fn new(backend: &Backend, quotas: Quotas) -> Self {
        let db = fresh_db(backend).await.unwrap();
        let limits = Limits {
            runs_per_day: quotas.runs_per_day,
            concurrent_runs: quotas.concurrent_runs,
            tokens_per_month: quotas.tokens_per_month,
            ..super::limits(PlanCode::free())
        };
        let seed = TenantSeed::new("Acme", "free", limits, now()).user("owner", Some("owner"));
        let seeded = seed_tenant(db.conn(), &seed).await;
        let events = Arc::new(RecordedEvents::default());
        let spine = Spine::from_connection(db.host_conn().clone())
            .with_clock(Arc::new(FixedClock::new(now())))
            .with_events(events.clone())
            .with_pepper(ApiKeyPepper::from_bytes(&[9u8; 32]).unwrap());
        Self {
            backend: backend.name(),
            db,
            spine,
            events,
            tenant: TenantId::from_uuid(seeded.id),
            owner: UserId::from_uuid(seeded.users[0]),
        }
    }

    /// A user with a membership in the tenant.
    pub(crate) async fn member(&self, email: &str, role: &str) -> UserId {
        let user = UserId::new();
        insert_user(self.db.conn(), user.as_uuid(), email, now()).await;
        insert_membership(
            self.db.conn(),
            self.tenant.as_uuid(),
            user.as_uuid(),
            role,
            now(),
        )
        .await;
        user
    }

    pub(crate) fn as_user(
        &self,
        user: UserId,
        role: MembershipRole,
        request_id: &str,
    ) -> Principal {
        Principal {
            tenant_id: self.tenant,
            actor: Actor::User {
                user_id: user,
                role,
            },
            request: request(request_id),
        }
    }

    pub(crate) fn owner(&self, request_id: &str) -> Principal {
        self.as_user(self.owner, MembershipRole::Owner, request_id)
    }

    /// An API key of the tenant with `permissions`, authenticated as a principal.
    pub(crate) async fn key(
        &self,
        permissions: &[&str],
        request_id: &str,
    ) -> (ApiKeyId, Principal) {
        let issued = self
            .spine
            .issue_api_key(
                &self.owner("req-setup"),
                IssueKey {
                    name: format!("key-{request_id}"),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let principal = self
            .spine
            .authenticate_api_key(issued.plaintext.expose(), request(request_id))
            .await
            .unwrap();
        (issued.key.id, principal)
    }

    pub(crate) async fn other(&self) -> DatabaseConnection {
        self.db.second_connection().await.unwrap()
    }

    pub(crate) fn events_since(&self, seen: usize) -> Vec<DomainEvent> {
        self.events.all().split_off(seen)
    }
}

pub(crate) fn assert_request_meta(row: &AuditRow, request_id: &str) {
    assert_eq!(row.request_id.as_deref(), Some(request_id), "{row:?}");
    assert_eq!(row.ip_address.as_deref(), Some("203.0.113.7"), "{row:?}");
    assert_eq!(
        row.user_agent.as_deref(),
        Some("events-test/1.0"),
        "{row:?}"
    );
}
