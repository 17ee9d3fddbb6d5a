//! Round trips per operation, counted through [`Spine::with_statement_counter`] on both
//! backends: the statement budget of every hot path is asserted here, not only timed.
//!
//! Counts are statements the use case sends through the engines; a write use case adds its
//! own `BEGIN` and `COMMIT`, which the counter does not see. Where a count is higher than
//! the operation needs, the assertion says why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use account_engines::invitations::Invitee;
use account_engines::lifecycle::LifecycleAction;
use account_engines::memory_pins::SavePin;
use account_spine::api_keys::{ApiKeyPepper, IssueKey, PlaintextApiKey};
use account_spine::memberships::UserFilter;
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::{MembershipRole, TenantId, UserId};
use account_spine::{
    Actor, Clock, DatabaseConfig, ErrorCode, FixedClock, OffsetPage, OperatorPrincipal, Principal,
    RequestMeta, Spine, SpineError, StatementCounter, VerifyCacheSettings,
};
use account_testkit::{Backend, UrlDb, backends};
use chrono::{TimeDelta, TimeZone, Utc};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn pepper() -> ApiKeyPepper {
    ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap()
}

/// A tenant (bootstrapped through the spine) with an owner and a member, on a database of
/// its own: a SQLite *file* with the production settings, or a fresh PostgreSQL database.
struct Env {
    backend: &'static str,
    spine: Spine,
    clock: Arc<FixedClock>,
    tenant: TenantId,
    owner: Principal,
    member: UserId,
    db: UrlDb,
}

impl Env {
    /// Another pool on the same database, as another process would have.
    async fn second(&self) -> DatabaseConnection {
        self.db.raw().await.unwrap()
    }
}

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

async fn env(backend: &Backend) -> Env {
    let db = UrlDb::new(backend, "account-spine-counts").await.unwrap();
    let mut config = DatabaseConfig::new(db.url());
    config.max_connections = 4;
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap(),
    ));
    let spine = Spine::connect(&config)
        .await
        .unwrap()
        .with_clock(clock.clone())
        .with_pepper(pepper());
    let (created, _) = spine
        .bootstrap(&operator(), "owner@example.com", "Acme")
        .await
        .unwrap();
    let owner = Principal {
        tenant_id: created.tenant.id,
        actor: Actor::User {
            user_id: created.owner.user_id,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    };
    let invited = spine
        .invite_user(&owner, "member@example.com", MembershipRole::Member)
        .await
        .unwrap();
    let member = spine
        .accept_invitation(
            created.tenant.id,
            invited.invitation.id,
            invited.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap()
        .user_id;
    Env {
        backend: backend.name(),
        spine,
        clock,
        tenant: created.tenant.id,
        owner,
        member,
        db,
    }
}

/// A long flush interval: only the test's own `flush_key_usage` calls write last use.
fn quiet_cache() -> VerifyCacheSettings {
    VerifyCacheSettings::default().with_flush_interval(Duration::from_secs(3600))
}

fn counted(spine: &Spine) -> (Spine, Arc<StatementCounter>) {
    let counter = Arc::new(StatementCounter::new());
    let spine = spine
        .clone()
        .with_verify_cache(quiet_cache())
        .with_statement_counter(counter.clone());
    (spine, counter)
}

async fn issue(spine: &Spine, by: &Principal, name: &str) -> PlaintextApiKey {
    let request = IssueKey {
        name: name.into(),
        ..IssueKey::default()
    };
    spine.issue_api_key(by, request).await.unwrap().plaintext
}

async fn verify(spine: &Spine, key: &str) -> Result<Principal, SpineError> {
    spine
        .authenticate_api_key(key, RequestMeta::default())
        .await
}

fn is_key_error(result: &Result<Principal, SpineError>, expected: &str) -> bool {
    matches!(result, Err(e @ SpineError::ApiKey(_)) if e.code() == expected)
}

/// `(last_used_at is set, total_requests)` of the key with this display prefix.
async fn key_usage(conn: &DatabaseConnection, prefix: &str) -> (bool, i64) {
    let sql = format!(
        "SELECT CASE WHEN last_used_at IS NULL THEN 0 ELSE 1 END AS used, total_requests \
         FROM api_keys WHERE key_prefix = '{prefix}'"
    );
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get::<i32>("", "used").unwrap() == 1,
        row.try_get::<i64>("", "total_requests").unwrap(),
    )
}

#[tokio::test]
async fn verify_costs_nothing_on_a_hit_one_read_on_a_miss_and_writes_only_when_flushed() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, statements) = counted(&env.spine);
        let by = env.owner.clone();
        let key = issue(&spine, &by, "hot").await;
        let key = key.expose();
        let second = env.second().await;
        statements.take();

        let malformed = verify(&spine, "acc_live_not-a-key").await;
        assert!(
            is_key_error(&malformed, "malformed_api_key"),
            "{malformed:?}"
        );
        assert_eq!(
            statements.take(),
            0,
            "{}: malformed: no statement",
            env.backend
        );

        verify(&spine, key).await.unwrap();
        assert_eq!(statements.take(), 1, "{}: miss: one read", env.backend);
        for _ in 0..3 {
            verify(&spine, key).await.unwrap();
        }
        assert_eq!(statements.take(), 0, "{}: hits: no statement", env.backend);
        let cache = spine.metrics().verify_cache;
        assert_eq!((cache.hits, cache.misses), (3, 1), "{}", env.backend);

        // A well-formed key nobody issued: one read each time (not cached).
        let unknown = PlaintextApiKey::generate().unwrap();
        for _ in 0..2 {
            let refused = verify(&spine, unknown.expose()).await;
            assert!(is_key_error(&refused, "invalid_api_key"), "{refused:?}");
        }
        assert_eq!(
            statements.take(),
            2,
            "{}: unknown key: one read each",
            env.backend
        );

        // The verify path wrote nothing; the flush writes every use in one statement.
        let prefix = &key[..16];
        assert_eq!(
            key_usage(&second, prefix).await,
            (false, 0),
            "{}",
            env.backend
        );
        assert_eq!(spine.flush_key_usage().await.unwrap(), 1);
        assert_eq!(
            statements.take(),
            1,
            "{}: one statement per flush",
            env.backend
        );
        assert_eq!(
            key_usage(&second, prefix).await,
            (true, 4),
            "{}",
            env.backend
        );
        assert_eq!(spine.flush_key_usage().await.unwrap(), 0);
        assert_eq!(statements.take(), 0, "{}: nothing to flush", env.backend);
        assert_eq!(spine.metrics().verify_cache.usage_flushes, 1);
    }
}

#[tokio::test]
async fn a_revoked_key_costs_one_read_then_none() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, statements) = counted(&env.spine);
        let by = env.owner.clone();
        let issued = spine
            .issue_api_key(
                &by,
                IssueKey {
                    name: "doomed".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let key = issued.plaintext.expose();
        verify(&spine, key).await.unwrap();
        spine
            .revoke_api_key(&by, issued.key.id, "leaked")
            .await
            .unwrap();
        statements.take();

        let refused = verify(&spine, key).await;
        assert!(is_key_error(&refused, "api_key_revoked"), "{refused:?}");
        assert_eq!(
            statements.take(),
            1,
            "{}: revoked, first: one read",
            env.backend
        );
        let refused = verify(&spine, key).await;
        assert!(is_key_error(&refused, "api_key_revoked"), "{refused:?}");
        assert_eq!(
            statements.take(),
            0,
            "{}: revoked, cached: none",
            env.backend
        );
    }
}

/// The cache never outlives what it caches in this process: revocation, rotation, expiry
/// and tenant lifecycle changes apply to the very next verification. Another process (a
/// second spine on the same database) sees a revocation once its TTL has passed.
#[tokio::test]
async fn key_and_tenant_changes_take_effect_at_once_despite_the_cache() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let spine = env.spine.clone().with_verify_cache(quiet_cache());
        let by = env.owner.clone();

        // Revocation, seen here at once and by another process within its TTL.
        let issued = spine
            .issue_api_key(
                &by,
                IssueKey {
                    name: "revoked".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        let revoked = issued.plaintext.expose();
        let ttl = Duration::from_millis(300);
        let other_pool = Database::connect(DatabaseConfig::new(env.db.url()).connect_options())
            .await
            .unwrap();
        let other_process = Spine::from_connection(other_pool)
            .with_pepper(pepper())
            .with_verify_cache(quiet_cache().with_ttl(ttl));
        verify(&spine, revoked).await.unwrap();
        verify(&other_process, revoked).await.unwrap();
        spine
            .revoke_api_key(&by, issued.key.id, "leaked")
            .await
            .unwrap();
        assert!(is_key_error(
            &verify(&spine, revoked).await,
            "api_key_revoked"
        ));
        assert!(
            verify(&other_process, revoked).await.is_ok(),
            "{}: another process may accept it until its TTL ends",
            env.backend
        );
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        assert!(is_key_error(
            &verify(&other_process, revoked).await,
            "api_key_revoked"
        ));

        // Rotation without grace: the old key stops at once, the new one works.
        let rotating = issue(&spine, &by, "rotating").await;
        let old = verify(&spine, rotating.expose()).await.unwrap();
        let account_spine::Actor::ApiKey { key_id, .. } = old.actor else {
            panic!("a key principal");
        };
        let rotated = spine
            .rotate_api_key(&by, key_id, TimeDelta::zero())
            .await
            .unwrap();
        assert!(is_key_error(
            &verify(&spine, rotating.expose()).await,
            "api_key_expired"
        ));
        verify(&spine, rotated.issued.plaintext.expose())
            .await
            .unwrap();

        // Expiry is checked against the clock on every hit.
        let expiring = spine
            .issue_api_key(
                &by,
                IssueKey {
                    name: "expiring".into(),
                    expires_at: Some(env.clock.now() + TimeDelta::minutes(1)),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        verify(&spine, expiring.plaintext.expose()).await.unwrap();
        env.clock.advance(TimeDelta::minutes(2));
        let hits = spine.metrics().verify_cache.hits;
        assert!(is_key_error(
            &verify(&spine, expiring.plaintext.expose()).await,
            "api_key_expired"
        ));
        assert_eq!(
            spine.metrics().verify_cache.hits,
            hits + 1,
            "decided on a hit"
        );

        // Tenant lifecycle: a suspended tenant's keys still read; a terminated one's stop.
        let live = rotated.issued.plaintext.expose();
        let ops = operator();
        spine
            .transition_tenant(&ops, env.tenant, LifecycleAction::Suspend, "billing")
            .await
            .unwrap();
        verify(&spine, live).await.unwrap();
        spine
            .transition_tenant(&ops, env.tenant, LifecycleAction::Terminate, "closed")
            .await
            .unwrap();
        let refused = verify(&spine, live).await;
        assert!(is_key_error(&refused, "tenant_inactive"), "{refused:?}");
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
        token_estimate: 0,
    }
}

fn completion() -> RunCompletion {
    RunCompletion {
        success: true,
        output: Some(json!({"ok": true})),
        replay_token: None,
        error: None,
        total_tokens: 120,
        total_latency_ms: 900,
        stages_completed: 3,
        recoveries: 0,
        policy_violations: 0,
        cost_cents: 2,
    }
}

fn pin(key: &str, ttl_seconds: Option<i32>) -> SavePin {
    SavePin {
        key: key.into(),
        value: json!({"v": 1}),
        source: None,
        ttl_seconds,
    }
}

const fn page(offset: u64) -> OffsetPage {
    OffsetPage { limit: 2, offset }
}

/// The statements each operation of the benchmark list costs today, one row per operation.
#[tokio::test]
async fn every_benchmarked_operation_has_its_statement_count() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let (spine, statements) = counted(&env.spine);
        let by = env.owner.clone();
        let backend = env.backend;
        let mut counts: Vec<(&str, u64)> = Vec::new();
        macro_rules! count {
            ($name:expr, $call:expr) => {{
                statements.take();
                let value = $call.await.unwrap();
                counts.push(($name, statements.take()));
                value
            }};
        }

        // A member's role is read from the membership once per cache lifetime (the verify
        // cache's): the first request pays one statement more, the rest none.
        count!("member's first request", spine.tenant_quotas(&by));
        let run = count!("run admission", spine.admit_run(&by, admit()));
        count!(
            "run completion",
            spine.complete_run(&by, run.id, completion())
        );
        count!("tenant detail", spine.get_project(&by, env.tenant));
        count!("tenant quotas", spine.tenant_quotas(&by));
        count!("user detail", spine.get_user(&by, env.member));
        let first = count!(
            "users list, first page",
            spine.list_users(&by, UserFilter::default(), page(0))
        );
        assert_eq!(first.items.len(), 2);
        count!(
            "users list, deep page by offset",
            spine.list_users(&by, UserFilter::default(), page(1))
        );
        let by_cursor = count!(
            "users list, first page by cursor",
            spine.list_users_after(&by, UserFilter::default(), None, 1)
        );
        assert_eq!((by_cursor.items.len(), by_cursor.has_more()), (1, true));
        let deep = count!(
            "users list, deep page by cursor",
            spine.list_users_after(&by, UserFilter::default(), by_cursor.next, 1)
        );
        assert_eq!((deep.items.len(), deep.next), (1, None));
        let (start, end) = (env.clock.now() - TimeDelta::days(1), env.clock.now());
        count!("usage summary", spine.usage_summary(&by, start, end));
        count!("pin upsert", spine.upsert_pin(&by, pin("agent:cfg", None)));
        count!(
            "pin upsert (update)",
            spine.upsert_pin(&by, pin("agent:cfg", None))
        );
        count!("pin get", spine.get_pin(&by, "agent:cfg"));
        count!(
            "pin list by prefix",
            spine.list_pins(&by, Some("agent:"), false, page(0))
        );
        spine
            .upsert_pin(&by, pin("agent:short", Some(30)))
            .await
            .unwrap();
        env.clock.advance(TimeDelta::seconds(60));
        let removed = count!("pin cleanup", spine.cleanup_pins(&by));
        assert_eq!(removed, 1);
        let invited = count!(
            "invitation create",
            spine.invite_user(&by, "invitee@example.com", MembershipRole::Admin)
        );
        count!(
            "invitation accept",
            spine.accept_invitation(
                env.tenant,
                invited.invitation.id,
                invited.token.expose(),
                Invitee::default(),
                RequestMeta::default(),
            )
        );
        count!(
            "role change",
            spine.change_role(&by, env.member, MembershipRole::Admin)
        );
        let issued = count!(
            "key issue",
            spine.issue_api_key(
                &by,
                IssueKey {
                    name: "counted".into(),
                    ..IssueKey::default()
                }
            )
        );
        count!(
            "key revocation",
            spine.revoke_api_key(&by, issued.key.id, "done")
        );
        count!("member removal", spine.remove_user(&by, env.member));

        // Admission on PostgreSQL is one statement: the counters, the run, its usage record
        // and hourly total and its audit row (data-modifying CTEs); the tenant's status is
        // one of its conditions, so no capability read before it. SQLite has no
        // data-modifying CTEs: its single writer takes the worker's row, the tenant's, the
        // run, the record, the hourly total and the audit row one by one.
        let admission = if backend == "postgres" { 1 } else { 6 };
        // Writes that make cached keys or roles stale tell other instances in their own
        // transaction on PostgreSQL: one statement (the version bump and `pg_notify`).
        let notify = u64::from(backend == "postgres");
        // Issue 22: a write that publishes events appends them to the outbox in its own
        // transaction, last: one statement on PostgreSQL (the tenant's stream counter and the
        // rows, a data-modifying `WITH`), two on SQLite.
        let outbox = if backend == "postgres" { 1 } else { 2 };
        let expected: &[(&str, u64)] = &[
            ("member's first request", 3),
            ("run admission", admission + outbox),
            // The capability read, the run, its worker's and tenant's counters (released
            // and charged), the tokens' usage record and hourly total, the audit row.
            ("run completion", 8 + outbox),
            ("tenant detail", 3),
            ("tenant quotas", 2),
            ("user detail", 2),
            ("users list, first page", 3),
            ("users list, deep page by offset", 3),
            // The member check, then the page: no count, whatever the depth.
            ("users list, first page by cursor", 2),
            ("users list, deep page by cursor", 2),
            ("usage summary", 2),
            ("pin upsert", 8),
            ("pin upsert (update)", 8),
            ("pin get", 3),
            ("pin list by prefix", 3),
            ("pin cleanup", 3),
            // Issue 23's seats: the tenant row locked, then members and live invitations
            // counted in a statement of their own (+2).
            ("invitation create", 8 + outbox),
            // Includes making the tenant the user's default when they had none, and (issue
            // 20) the tenant's membership total: SQLite has no data-modifying `WITH` to
            // fold it into the membership's insert.
            ("invitation accept", 9 + outbox),
            ("role change", 6 + notify + outbox),
            // Issue 20: one `UPDATE tenants ... RETURNING` locks the tenant, reads its quota
            // and counts the new key in its total (was a lock and a read, 2); the active keys
            // are counted only when the keys not revoked reach the quota (was always, 1). So
            // 4, was 6: that update, the insert, the audit row, and the actor's membership.
            ("key issue", 4 + outbox),
            // The revocation takes the key out of the tenant's key total: one more (was 5).
            ("key revocation", 6 + notify + outbox),
            // The deletion takes the member out of the tenant's membership total: one more
            // (was 8). They held no personal key, so no key total moves.
            ("member removal", 9 + notify + outbox),
        ];
        assert_eq!(counts, expected, "{backend}");
    }
}
