//! The issue-8 operations: the fixture they run on and one case per operation.

use crate::capture::{Inputs, marker};
use crate::{Harness, call, prepare, seed};
use account_models::entities::{invitations, memberships};
use account_spine::api_keys::{IssueKey, PlaintextApiKey};
use account_spine::invitations::Invitee;
use account_spine::memberships::{UserFilter, UserPosition};
use account_spine::memory_pins::SavePin;
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::{InvitationId, MembershipRole, RunId, TenantId, UserId};
use account_spine::{Actor, OffsetPage, OperatorPrincipal, Principal, RequestMeta, Spine};
use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Value};
use std::sync::Arc;

/// A tenant and its owner.
#[derive(Clone, Copy, Debug)]
struct Owned {
    tenant: TenantId,
    owner: UserId,
}

impl Owned {
    fn principal(self) -> Principal {
        Principal {
            tenant_id: self.tenant,
            actor: Actor::User {
                user_id: self.owner,
                role: MembershipRole::Owner,
            },
            request: RequestMeta::default(),
        }
    }

    fn inputs(self, iteration: u64) -> Inputs {
        Inputs {
            values: vec![
                uuid_value(self.tenant.as_uuid()),
                uuid_value(self.owner.as_uuid()),
            ],
            iteration,
        }
    }
}

fn uuid_value(id: uuid::Uuid) -> Value {
    Value::Uuid(Some(id))
}

pub(crate) fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "account-bench".to_owned(),
        request: RequestMeta::default(),
    }
}

async fn bootstrap(spine: &Spine, label: &str) -> Result<(Owned, String)> {
    let (created, key) = spine
        .bootstrap(&operator(), &format!("owner-{label}@bench.test"), label)
        .await
        .with_context(|| format!("bootstrapping tenant {label}"))?;
    Ok((
        Owned {
            tenant: created.tenant.id,
            owner: created.owner.user_id,
        },
        key.plaintext.expose().to_owned(),
    ))
}

fn fixed(inputs: Inputs) -> crate::Prepare {
    prepare(move |_| {
        let inputs = inputs.clone();
        async move { Ok(inputs) }
    })
}

/// Seeds the datasets, then measures every operation.
pub(crate) async fn run_all(h: &mut Harness) -> Result<()> {
    let sizes = h.sizes;
    let spine = h.spine.clone();
    eprintln!("    {}: seeding", h.backend);
    let (hot, hot_key) = bootstrap(&spine, "hot").await?;
    let (pins_tenant, _) = bootstrap(&spine, "pins").await?;
    let mut spread = Vec::with_capacity(sizes.spread_tenants);
    for i in 0..sizes.spread_tenants {
        spread.push(bootstrap(&spine, &format!("spread-{i}")).await?.0);
    }
    seed::lift_quotas(h.db()).await?;
    seed::members(h.db(), hot.tenant.as_uuid(), sizes.members).await?;
    seed::usage(h.db(), hot.tenant.as_uuid(), sizes.usage_records).await?;
    let revoked = spine
        .issue_api_key(
            &hot.principal(),
            IssueKey {
                name: "revoked".to_owned(),
                ..IssueKey::default()
            },
        )
        .await?;
    spine
        .revoke_api_key(&hot.principal(), revoked.key.id, "benchmark")
        .await?;
    let revoked_key = revoked.plaintext.expose().to_owned();
    let member: UserId = memberships::Entity::find()
        .filter(memberships::Column::TenantId.eq(hot.tenant))
        .filter(memberships::Column::Role.eq(MembershipRole::Member))
        .one(h.db())
        .await?
        .context("no seeded member")?
        .user_id;
    // Pins the get/list cases read.
    for i in 0..200u64 {
        spine
            .upsert_pin(&hot.principal(), pin(i))
            .await
            .context("seeding pins")?;
    }
    seed::analyze(h.db()).await?;

    verify(h, &hot, &hot_key, &revoked_key).await?;
    crate::rate_limits::run(h, &hot.principal()).await?;
    reads(h, hot).await?;
    pins(h, hot, pins_tenant).await?;
    accounts(h, hot, member).await?;
    runs(h, hot, &spread).await?;
    crate::replicas::run(h, &hot.principal()).await
}

fn pin(i: u64) -> SavePin {
    SavePin {
        key: format!("pin:{}", marker(i)),
        value: serde_json::json!({"n": i, "note": "benchmark pin"}),
        source: None,
        ttl_seconds: Some(3600),
    }
}

async fn verify(h: &mut Harness, hot: &Owned, key: &str, revoked: &str) -> Result<()> {
    let inputs = hot.inputs(0);
    for (name, presented) in [
        ("verify.hit (same key)", key.to_owned()),
        ("verify.revoked", revoked.to_owned()),
        ("verify.malformed", "sk_not-a-key".to_owned()),
    ] {
        let presented = Arc::new(presented);
        let expect_ok = name.starts_with("verify.hit");
        h.latency(
            name,
            false,
            false,
            fixed(inputs.clone()),
            call(move |spine, _| {
                let presented = presented.clone();
                async move {
                    let outcome = spine
                        .authenticate_api_key(&presented, RequestMeta::default())
                        .await;
                    match (outcome, expect_ok) {
                        (Ok(_), true) | (Err(_), false) => Ok(()),
                        (Ok(_), false) => anyhow::bail!("a bad key was accepted"),
                        (Err(e), true) => Err(e.into()),
                    }
                }
            }),
        )
        .await?;
    }
    // A miss: a well-formed key never seen before, so no cache can hold it.
    h.latency(
        "verify.miss (unknown well-formed key)",
        false,
        false,
        fixed(inputs),
        call(|spine, _| async move {
            let fresh = PlaintextApiKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            match spine
                .authenticate_api_key(fresh.expose(), RequestMeta::default())
                .await
            {
                Ok(_) => anyhow::bail!("an unknown key was accepted"),
                Err(_) => Ok(()),
            }
        }),
    )
    .await
}

async fn reads(h: &mut Harness, hot: Owned) -> Result<()> {
    h.latency(
        "tenant.detail (billing summary)",
        false,
        false,
        fixed(hot.inputs(0)),
        call(move |spine, _| {
            let p = hot.principal();
            async move {
                spine.billing_summary(&p).await?;
                Ok(())
            }
        }),
    )
    .await?;
    h.latency(
        "user.detail (profile)",
        false,
        false,
        fixed(hot.inputs(0)),
        call(move |spine, _| {
            let p = hot.principal();
            async move {
                spine.get_profile(&p).await?;
                Ok(())
            }
        }),
    )
    .await?;
    let members = h.sizes.members;
    // Issue 20: the middle page is the most an offset page skips (a back-half page is read
    // from the end), so it is measured beside the 90 % one.
    for (name, offset) in [
        ("users.page first (50 of N members)", 0),
        ("users.page middle by offset (50 %)", members / 2),
        ("users.page deep by offset (90 %)", members / 10 * 9),
    ] {
        h.latency(
            name,
            false,
            false,
            fixed(hot.inputs(0)),
            call(move |spine, _| {
                let p = hot.principal();
                async move {
                    let page = spine
                        .list_users(&p, UserFilter::default(), OffsetPage { limit: 50, offset })
                        .await?;
                    anyhow::ensure!(page.items.len() == 50, "short page: {}", page.items.len());
                    Ok(())
                }
            }),
        )
        .await?;
    }
    h.latency(
        "users.page first by cursor",
        false,
        false,
        fixed(hot.inputs(0)),
        call(move |spine, _| {
            let p = hot.principal();
            async move {
                let page = spine
                    .list_users_after(&p, UserFilter::default(), None, 50)
                    .await?;
                anyhow::ensure!(page.items.len() == 50, "short page: {}", page.items.len());
                Ok(())
            }
        }),
    )
    .await?;
    let deep_by_cursor = "users.page deep by cursor (90 %)";
    if h.wanted(deep_by_cursor) {
        // The position the deep offset page starts after, read once: the case then costs
        // what a client holding that page's cursor pays.
        let deep = members / 10 * 9;
        let before = h
            .spine
            .list_users(
                &hot.principal(),
                UserFilter::default(),
                OffsetPage {
                    limit: 1,
                    offset: deep.saturating_sub(1),
                },
            )
            .await?;
        let after = before.items.first().map(UserPosition::of);
        anyhow::ensure!(after.is_some(), "no member at the deep position {deep}");
        h.latency(
            deep_by_cursor,
            false,
            false,
            fixed(hot.inputs(0)),
            call(move |spine, _| {
                let p = hot.principal();
                let after = after.clone();
                async move {
                    let page = spine
                        .list_users_after(&p, UserFilter::default(), after, 50)
                        .await?;
                    anyhow::ensure!(page.items.len() == 50, "short page: {}", page.items.len());
                    Ok(())
                }
            }),
        )
        .await?;
    }
    h.latency(
        "usage.summary (N records, one month)",
        false,
        true,
        fixed(hot.inputs(0)),
        call(move |spine, _| {
            let p = hot.principal();
            async move {
                let start = Utc
                    .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                    .single()
                    .context("start")?;
                let end = Utc
                    .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                    .single()
                    .context("end")?;
                let totals = spine.usage_summary(&p, start, end).await?;
                anyhow::ensure!(!totals.is_empty(), "empty usage summary");
                Ok(())
            }
        }),
    )
    .await
}

async fn pins(h: &mut Harness, hot: Owned, pins_tenant: Owned) -> Result<()> {
    h.latency(
        "pins.upsert",
        true,
        false,
        prepare(move |i| async move { Ok(hot.inputs(i % 200)) }),
        call(|spine, inputs| async move {
            let p = principal_of(&inputs);
            spine.upsert_pin(&p, pin(inputs.iteration)).await?;
            Ok(())
        }),
    )
    .await?;
    h.latency(
        "pins.get",
        false,
        false,
        fixed(hot.inputs(1)),
        call(|spine, inputs| async move {
            let p = principal_of(&inputs);
            spine.get_pin(&p, &format!("pin:{}", marker(1))).await?;
            Ok(())
        }),
    )
    .await?;
    h.latency(
        "pins.list by prefix (50)",
        false,
        false,
        fixed(hot.inputs(0)),
        call(|spine, inputs| async move {
            let p = principal_of(&inputs);
            let page = spine
                .list_pins(
                    &p,
                    Some("pin:"),
                    false,
                    OffsetPage {
                        limit: 50,
                        offset: 0,
                    },
                )
                .await?;
            anyhow::ensure!(page.items.len() == 50, "short pin page");
            Ok(())
        }),
    )
    .await?;
    let db = h.db().clone();
    let count = h.sizes.expired_pins;
    h.one_shot(
        "pins.cleanup (N expired pins)",
        true,
        move || {
            let db = db.clone();
            async move {
                seed::remove_pins(&db, pins_tenant.tenant.as_uuid()).await?;
                seed::expired_pins(&db, pins_tenant.tenant.as_uuid(), count).await?;
                seed::analyze(&db).await
            }
        },
        fixed(pins_tenant.inputs(0)),
        call(move |spine, inputs| async move {
            let p = principal_of(&inputs);
            spine.cleanup_pins(&p).await?;
            Ok(())
        }),
    )
    .await
}

fn principal_of(inputs: &Inputs) -> Principal {
    let id = |index: usize| match inputs.values.get(index) {
        Some(Value::Uuid(Some(id))) => *id,
        _ => uuid::Uuid::nil(),
    };
    Owned {
        tenant: TenantId::from_uuid(id(0)),
        owner: UserId::from_uuid(id(1)),
    }
    .principal()
}

async fn accounts(h: &mut Harness, hot: Owned, member: UserId) -> Result<()> {
    h.latency(
        "invitation.create",
        true,
        false,
        prepare(move |i| async move { Ok(hot.inputs(i)) }),
        call(|spine, inputs| async move {
            let p = principal_of(&inputs);
            let email = format!("create-{}@bench.test", marker(inputs.iteration));
            spine
                .invite_user(&p, &email, MembershipRole::Member)
                .await?;
            Ok(())
        }),
    )
    .await?;
    // Each accept consumes an invitation issued (untimed) just before it.
    let spine = h.spine.clone();
    let db = h.db().clone();
    h.latency(
        "invitation.accept",
        true,
        false,
        prepare(move |i| {
            let (spine, db) = (spine.clone(), db.clone());
            async move {
                let email = format!("accept-{}@bench.test", marker(i));
                let issued = spine
                    .invite_user(&hot.principal(), &email, MembershipRole::Member)
                    .await?;
                let id: InvitationId = issued.invitation.id;
                let digest = invitations::Entity::find_by_id(id)
                    .one(&db)
                    .await?
                    .context("invitation row")?
                    .token_digest;
                let mut inputs = hot.inputs(i);
                inputs.values.push(uuid_value(id.as_uuid()));
                inputs.values.push(Value::String(Some(digest)));
                inputs
                    .values
                    .push(Value::String(Some(issued.token.expose().to_owned())));
                Ok(inputs)
            }
        }),
        call(|spine, inputs| async move {
            let (Some(Value::Uuid(Some(id))), Some(Value::String(Some(token)))) =
                (inputs.values.get(2), inputs.values.get(4))
            else {
                anyhow::bail!("accept inputs");
            };
            spine
                .accept_invitation(
                    TenantId::from_uuid(match inputs.values.first() {
                        Some(Value::Uuid(Some(t))) => *t,
                        _ => uuid::Uuid::nil(),
                    }),
                    InvitationId::from_uuid(*id),
                    token,
                    Invitee {
                        external_user_id: None,
                        name: Some("Bench Invitee".to_owned()),
                    },
                    RequestMeta::default(),
                )
                .await?;
            Ok(())
        }),
    )
    .await?;
    // Every call promotes the same member; the preparation (untimed) demotes it again.
    let db = h.db().clone();
    h.latency(
        "role.change",
        true,
        false,
        prepare(move |i| {
            let db = db.clone();
            async move {
                seed::demote(&db, hot.tenant.as_uuid(), member.as_uuid()).await?;
                Ok(hot.inputs(i))
            }
        }),
        call(move |spine, inputs| async move {
            let p = principal_of(&inputs);
            spine.change_role(&p, member, MembershipRole::Admin).await?;
            Ok(())
        }),
    )
    .await
}

fn admit_request() -> AdmitRun {
    AdmitRun {
        worker_id: "bench-worker".to_owned(),
        task: "benchmark".to_owned(),
        input: None,
        token_estimate: 0,
    }
}

async fn runs(h: &mut Harness, hot: Owned, spread: &[Owned]) -> Result<()> {
    let admit = call(|spine, inputs| async move {
        spine
            .admit_run(&principal_of(&inputs), admit_request())
            .await?;
        Ok(())
    });
    let hot_prepare = fixed(hot.inputs(0));
    if h.wanted("run.admit") {
        let captured = h
            .capture("run.admit", true, true, &hot_prepare, &admit)
            .await?;
        let spread = Arc::new(spread.to_vec());
        for callers in [1, 8, 32] {
            h.throughput(
                "run.admit hot tenant",
                &captured,
                callers,
                hot_prepare.clone(),
                admit.clone(),
            )
            .await?;
            let spread = spread.clone();
            h.throughput(
                "run.admit spread tenants",
                &captured,
                callers,
                prepare(move |i| {
                    let tenant = spread[(i as usize) % spread.len()];
                    async move { Ok(tenant.inputs(i)) }
                }),
                admit.clone(),
            )
            .await?;
        }
    }
    // Each completion finishes a run admitted (untimed) just before it.
    let spine = h.spine.clone();
    h.latency(
        "run.complete",
        true,
        false,
        prepare(move |i| {
            let spine = spine.clone();
            async move {
                let run = spine.admit_run(&hot.principal(), admit_request()).await?;
                let mut inputs = hot.inputs(i);
                inputs.values.push(uuid_value(run.id.as_uuid()));
                Ok(inputs)
            }
        }),
        call(|spine, inputs| async move {
            let Some(Value::Uuid(Some(run))) = inputs.values.get(2) else {
                anyhow::bail!("complete inputs");
            };
            spine
                .complete_run(
                    &principal_of(&inputs),
                    RunId::from_uuid(*run),
                    RunCompletion {
                        success: true,
                        output: None,
                        replay_token: None,
                        error: None,
                        total_tokens: 10,
                        total_latency_ms: 5,
                        stages_completed: 1,
                        recoveries: 0,
                        policy_violations: 0,
                        cost_cents: 1,
                    },
                )
                .await?;
            Ok(())
        }),
    )
    .await
}
