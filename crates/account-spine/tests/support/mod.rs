//! The spine's test harness: a database of its own per test ([`Env`]), the one seeded tenant
//! of the write cases ([`World`]), plain SQL to check what is stored ([`sql`]), and the write
//! use cases as a table ([`case`], [`cases`]), shared by `every_write_commits.rs`,
//! `fault_injection.rs` and `operations_table.rs`; [`invoke`] calls every operation by name
//! for `isolation.rs` and `permission_matrix.rs`; [`story`] is the seeded tenant of
//! `events_and_authority.rs` and `audit_and_observability.rs`.
//!
//! A new write use case is registered once: one entry in its area's file under `cases/`
//! (how to arrange it, the use-case value to run, the rows it must leave). Its operation, its
//! audit row and every count follow from that entry.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)] // each test file uses a part

pub(crate) mod case;
pub(crate) mod cases;
pub(crate) mod invoke;
pub(crate) mod sql;
pub(crate) mod story;

#[allow(unused_imports)] // each test file uses a part
pub(crate) use case::{Case, WRITING_READS, commit_every_case};
#[allow(unused_imports)]
pub(crate) use sql::{audit_actions, count, null, snapshot};

use account_engines::FaultInjector;
use account_spine::api_keys::ApiKeyPepper;
use account_spine::types::*;
use account_spine::{
    Actor, DatabaseConfig, FixedClock, OperatorPrincipal, Principal, RecordedEvents, RequestMeta,
    Spine,
};
use account_testkit::fixtures::{Limits, TenantSeed, seed_tenant};
use account_testkit::{Backend, UrlDb};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::sync::Arc;

/// The instant every case starts at.
pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

/// A database of its own for one case, the spine on it, and what the spine reports to.
pub(crate) struct Env {
    /// `sqlite` or `postgres`.
    pub(crate) backend: &'static str,
    /// The spine under test: production connection settings, fixed clock, recorded events,
    /// and a fault injector (disarmed: it only counts).
    pub(crate) spine: Spine,
    /// The spine's clock.
    pub(crate) clock: Arc<FixedClock>,
    /// Every event the spine published.
    pub(crate) events: Arc<RecordedEvents>,
    /// The spine's fault injector.
    pub(crate) faults: Arc<FaultInjector>,
    db: UrlDb,
}

impl Env {
    /// A second, independent pool on the same database: what another process would see.
    pub(crate) async fn second(&self) -> DatabaseConnection {
        self.db.raw().await.unwrap()
    }

    /// A pool on which our entities resolve (qualified names), for calling engines directly
    /// where a test arranges what no use case writes yet (identity links).
    pub(crate) async fn entities(&self) -> DatabaseConnection {
        account_testkit::schema_connection(self.db.url())
            .await
            .unwrap()
    }
}

/// A migrated database of its own, and a spine on it through [`Spine::connect`]. On SQLite
/// it is a file (WAL, as in production), so a second connection is a real second connection.
pub(crate) async fn env(backend: &Backend) -> Env {
    let db = UrlDb::new(backend, "account-spine").await.unwrap();
    let mut config = DatabaseConfig::new(db.url());
    config.max_connections = 4;
    let clock = Arc::new(FixedClock::new(start()));
    let events = Arc::new(RecordedEvents::default());
    let faults = Arc::new(FaultInjector::new());
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_clock(clock.clone())
        .with_events(events.clone())
        .with_pepper(ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap())
        .with_fault_injector(faults.clone());
    Env {
        backend: backend.name(),
        spine,
        clock,
        events,
        faults,
        db,
    }
}

/// A plan's quotas as the tenant seed stores them.
pub(crate) fn limits(plan: PlanCode) -> Limits {
    let q = account_spine::types::PlanQuotas::built_in(&plan).expect("a built-in plan");
    Limits {
        workers: q.max_workers,
        runs_per_day: q.max_runs_per_day,
        concurrent_runs: q.max_concurrent_runs,
        tokens_per_month: q.max_tokens_per_month,
        api_keys: q.max_api_keys,
    }
}

/// The tenant every case acts in: an owner and a member, seeded with plain SQL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct World {
    /// The tenant.
    pub(crate) tenant: TenantId,
    /// Its owner (the acting principal of tenant cases).
    pub(crate) owner: UserId,
    /// A member with the `member` role.
    pub(crate) member: UserId,
}

/// Seeds the [`World`]: `Acme` on the free plan, `owner@` and `member@example.com`.
pub(crate) async fn world(conn: &impl ConnectionTrait) -> World {
    let seed = TenantSeed::new("Acme", "free", limits(PlanCode::free()), start())
        .user("owner", Some("owner"))
        .user("member", Some("member"));
    let seeded = seed_tenant(conn, &seed).await;
    World {
        tenant: TenantId::from_uuid(seeded.id),
        owner: UserId::from_uuid(seeded.users[0]),
        member: UserId::from_uuid(seeded.users[1]),
    }
}

/// The request metadata of a call with `request_id`.
pub(crate) fn request(request_id: &str, ip: &str) -> RequestMeta {
    RequestMeta::default()
        .with_request_id(request_id)
        .with_ip_address(ip)
        .with_user_agent("spine-tests")
}

/// The world's owner, acting with `request_id`.
pub(crate) fn owner(world: &World, request_id: &str) -> Principal {
    Principal {
        tenant_id: world.tenant,
        actor: Actor::User {
            user_id: world.owner,
            role: MembershipRole::Owner,
        },
        request: request(request_id, "192.0.2.1"),
    }
}

/// A platform operator, acting with `request_id`.
pub(crate) fn operator(request_id: &str) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: request(request_id, "192.0.2.2"),
    }
}
