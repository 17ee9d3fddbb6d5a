//! Per-key request limits counted across instances: three spines on one database (each with
//! its own limiter, as three API processes have) share one key's allowance, on both backends.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(clippy::print_stdout)] // the figures are part of the report

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::rate_limits::RateLimitScope;
use account_spine::types::PlanCode;
use account_spine::{DatabaseConfig, OperatorPrincipal, Principal, RequestMeta, Spine, SpineError};
use account_testkit::{UrlDb, backends};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::time::{Duration, Instant};

const PEPPER: [u8; 32] = [9; 32];
/// One request a second: the allowance refills slowly enough to count exactly.
const RPM: i32 = 60;
const SPINES: usize = 3;
const CALLERS_PER_SPINE: usize = 8;
const LOAD: Duration = Duration::from_secs(3);

async fn spine(url: &str) -> Spine {
    Spine::connect(&DatabaseConfig::new(url))
        .await
        .unwrap()
        .with_pepper(ApiKeyPepper::from_bytes(&PEPPER).unwrap())
}

/// A key limited to [`RPM`], as each spine authenticates it.
async fn limited_key(spines: &[Spine]) -> Vec<Principal> {
    let operator = OperatorPrincipal {
        operator_id: "test".into(),
        request: RequestMeta::default(),
    };
    let (_, owner_key) = spines[0]
        .bootstrap(&operator, "owner@example.com", "Acme")
        .await
        .unwrap();
    let owner = spines[0]
        .authenticate_api_key(owner_key.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap();
    let issued = spines[0]
        .issue_api_key(
            &owner,
            IssueKey {
                name: "limited".into(),
                permissions: vec!["read:*".into()],
                rate_limit_rpm: Some(RPM),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    let mut principals = Vec::new();
    for spine in spines {
        principals.push(
            spine
                .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
                .await
                .unwrap(),
        );
    }
    principals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_together_admit_one_keys_limit() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = UrlDb::new(&backend, "account-rate-limits").await.unwrap();
        let mut spines = Vec::new();
        for _ in 0..SPINES {
            spines.push(spine(db.url()).await);
        }
        let principals = limited_key(&spines).await;
        let started = Instant::now();
        let mut callers = Vec::new();
        for (spine, principal) in spines.iter().zip(&principals) {
            for _ in 0..CALLERS_PER_SPINE {
                let (spine, principal) = (spine.clone(), principal.clone());
                callers.push(tokio::spawn(async move {
                    let (mut admitted, mut refused) = (0_u64, 0_u64);
                    while started.elapsed() < LOAD {
                        match spine.admit_request(&principal).await {
                            Ok(Some(_)) => admitted += 1,
                            Err(SpineError::RateLimited {
                                scope,
                                limit,
                                retry_after_seconds,
                            }) => {
                                assert_eq!(scope, RateLimitScope::Key);
                                assert_eq!(limit, 60);
                                assert_eq!(retry_after_seconds, 1, "one request a second");
                                refused += 1;
                                tokio::task::yield_now().await;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    (admitted, refused)
                }));
            }
        }
        let (mut admitted, mut refused) = (0, 0);
        for caller in callers {
            let (a, r) = caller.await.unwrap();
            admitted += a;
            refused += r;
        }
        let elapsed = started.elapsed().as_secs_f64();
        // The burst, the refill over the load, and the leases' one second of refill (the
        // bound ARCHITECTURE.md states). Three per-process limiters would admit three times
        // the burst.
        let bound = RPM as f64 + (elapsed + 1.0) * RPM as f64 / 60.0;
        assert!(
            admitted as f64 <= bound,
            "{name}: {admitted} admitted in {elapsed:.1} s, bound {bound:.0}"
        );
        assert!(
            admitted >= RPM as u64,
            "{name}: the burst is usable: {admitted}"
        );
        assert!(refused > 0, "{name}");
        let metrics: Vec<_> = spines.iter().map(|s| s.metrics().rate_limits).collect();
        let requests: u64 = metrics.iter().map(|m| m.requests).sum();
        let leases: u64 = metrics.iter().map(|m| m.leases).sum();
        // Each admitted request counted against the free plan's tenant limit too.
        assert_eq!(requests, 2 * admitted + refused, "{name}");
        assert!(
            leases * 5 < requests,
            "{name}: most requests cost no statement: {leases} leases for {requests}"
        );

        // Any instance sees the allowance spent, with the seconds until it is full again.
        for (spine, principal) in spines.iter().zip(&principals) {
            let account_spine::Actor::ApiKey { key_id, .. } = &principal.actor else {
                unreachable!()
            };
            let left = spine
                .key_allowance(principal.tenant_id, *key_id, Some(RPM))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(left.limit, 60);
            assert!(left.remaining <= 3, "{name}: {left:?}");
            assert!(
                (50..=60).contains(&left.reset_seconds()),
                "{name}: {left:?}"
            );
        }
        println!("{name}: {admitted} admitted, {refused} refused, {leases} leases, {elapsed:.1} s");
    }
}

/// Enterprise tenants have no tenant-wide limit: their unlimited keys cost nothing to count.
#[tokio::test]
async fn unlimited_keys_of_unlimited_tenants_are_not_counted() {
    for backend in backends().unwrap() {
        let db = UrlDb::new(&backend, "account-rate-limits").await.unwrap();
        let spine = spine(db.url()).await;
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, owner_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        spine
            .change_plan(&operator, created.tenant.id, PlanCode::enterprise())
            .await
            .unwrap();
        let owner = spine
            .authenticate_api_key(owner_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        for _ in 0..100 {
            assert_eq!(spine.admit_request(&owner).await.unwrap(), None);
        }
        let counted = spine.metrics().rate_limits;
        assert_eq!((counted.requests, counted.leases), (0, 0));
    }
}

/// A tenant limited to [`RPM`] requests a minute: a person and a key without a limit of its
/// own, on three instances, share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_limit_counts_every_credential_on_every_instance() {
    for backend in backends().unwrap() {
        let name = backend.name();
        let db = UrlDb::new(&backend, "account-rate-limits").await.unwrap();
        let mut spines = Vec::new();
        for _ in 0..SPINES {
            spines.push(spine(db.url()).await);
        }
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (created, owner_key) = spines[0]
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let tenant = created.tenant.id;
        let owner = spines[0]
            .authenticate_api_key(owner_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        let quotas = spines[0].tenant_quotas(&owner).await.unwrap();
        assert_eq!(
            quotas.max_requests_per_minute,
            Some(6_000),
            "{name}: the free plan's"
        );
        let raw = db.raw().await.unwrap();
        let sql = match raw.get_database_backend() {
            DbBackend::Postgres => "UPDATE tenants SET max_requests_per_minute = $1 WHERE id = $2",
            _ => "UPDATE tenants SET max_requests_per_minute = ?1 WHERE id = ?2",
        };
        raw.execute_raw(Statement::from_sql_and_values(
            raw.get_database_backend(),
            sql,
            [RPM.into(), tenant.as_uuid().into()],
        ))
        .await
        .unwrap();
        let person = spines[1]
            .user_principal(tenant, created.owner.user_id, RequestMeta::default())
            .await
            .unwrap();
        let principals = [owner.clone(), person, owner];

        let started = Instant::now();
        let mut callers = Vec::new();
        for (spine, principal) in spines.iter().zip(principals) {
            for _ in 0..CALLERS_PER_SPINE {
                let (spine, principal) = (spine.clone(), principal.clone());
                callers.push(tokio::spawn(async move {
                    let (mut admitted, mut refused) = (0_u64, 0_u64);
                    while started.elapsed() < LOAD {
                        match spine.admit_request(&principal).await {
                            Ok(None) => admitted += 1,
                            Err(error @ SpineError::RateLimited { scope, .. }) => {
                                assert_eq!(scope, RateLimitScope::Tenant);
                                assert!(
                                    error
                                        .to_string()
                                        .starts_with("this project is limited to 60")
                                );
                                refused += 1;
                                tokio::task::yield_now().await;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    (admitted, refused)
                }));
            }
        }
        let (mut admitted, mut refused) = (0, 0);
        for caller in callers {
            let (a, r) = caller.await.unwrap();
            admitted += a;
            refused += r;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let bound = RPM as f64 + (elapsed + 1.0) * RPM as f64 / 60.0;
        assert!(
            admitted as f64 <= bound,
            "{name}: {admitted} admitted in {elapsed:.1} s, bound {bound:.0}"
        );
        assert!(admitted >= RPM as u64, "{name}: {admitted}");
        assert!(refused > 0, "{name}");
        println!("{name}: tenant limit: {admitted} admitted, {refused} refused, {elapsed:.1} s");
    }
}
