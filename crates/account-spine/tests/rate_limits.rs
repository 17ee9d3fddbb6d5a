//! Per-key request limits counted across instances: three spines on one database (each with
//! its own limiter, as three API processes have) share one key's allowance, on both backends.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::{DatabaseConfig, OperatorPrincipal, Principal, RequestMeta, Spine, SpineError};
use account_testkit::{UrlDb, backends};
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
                                limit,
                                retry_after_seconds,
                            }) => {
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
        assert_eq!(requests, admitted + refused, "{name}");
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

#[tokio::test]
async fn keys_without_a_limit_and_people_are_not_counted() {
    for backend in backends().unwrap() {
        let db = UrlDb::new(&backend, "account-rate-limits").await.unwrap();
        let spine = spine(db.url()).await;
        let operator = OperatorPrincipal {
            operator_id: "test".into(),
            request: RequestMeta::default(),
        };
        let (_, owner_key) = spine
            .bootstrap(&operator, "owner@example.com", "Acme")
            .await
            .unwrap();
        let owner = spine
            .authenticate_api_key(owner_key.plaintext.expose(), RequestMeta::default())
            .await
            .unwrap();
        for _ in 0..100 {
            assert_eq!(spine.admit_request(&owner).await.unwrap(), None);
        }
        assert_eq!(spine.metrics().rate_limits.requests, 0);
    }
}
