//! Tenant isolation, generated from the operation invoker (`support/invoke.rs`): every
//! operation of [`Operation::ALL`] is called with tenant A's principals on tenant B's ids (a
//! run, a key, a member, a pending invitation with its valid token, a pin key, B itself as a
//! project) and on ids that name nothing. Both must answer not-found, in the same shape (status,
//! code, and message once the id itself is blanked out), so the answer never tells "exists
//! elsewhere" from "does not exist" (OWASP multi-tenant: 404, never 403, for another tenant's
//! resource); and none of B's rows may change. Operations that take no id must not mention
//! any of B's ids in what they return.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::IssueKey;
use account_spine::invitations::Invitee;
use account_spine::memory_pins::SavePin;
use account_spine::runs::AdmitRun;
use account_spine::support::OpenTicket;
use account_spine::types::*;
use account_spine::{
    Actor, ErrorCode, Operation, OperatorPrincipal, Principal, RequestMeta, Spine, SpineError,
};
use account_testkit::backends;
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::BTreeMap;
use support::invoke::{Invocation, Reply, Targets, invoke};

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

fn as_owner(tenant: TenantId, user: UserId) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User {
            user_id: user,
            role: MembershipRole::Owner,
        },
        request: RequestMeta::default(),
    }
}

/// Tenant B with one of everything an id can name, created through the spine.
struct Victim {
    targets: Targets,
    /// Every id of B's, as text in each form a row dump can show it.
    markers: Vec<String>,
}

async fn victim(spine: &Spine) -> Victim {
    let (created, bootstrap_key) = spine
        .bootstrap(&operator(), "owner-b@example.com", "Tenant B")
        .await
        .unwrap();
    let tenant = created.tenant.id;
    let owner = as_owner(tenant, created.owner.user_id);
    let run = spine
        .admit_run(
            &owner,
            AdmitRun {
                worker_id: support::invoke::WORKER.into(),
                task: "b's work".into(),
                input: None,
                token_estimate: 0,
            },
        )
        .await
        .unwrap();
    let key = spine
        .issue_api_key(
            &owner,
            IssueKey {
                name: "b's key".into(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap();
    // A member of B, joined through an invitation of its own.
    let joined = spine
        .invite_user(&owner, "member-b@example.com", MembershipRole::Member)
        .await
        .unwrap();
    let member = spine
        .accept_invitation(
            tenant,
            joined.invitation.id,
            joined.token.expose(),
            Invitee::default(),
            RequestMeta::default(),
        )
        .await
        .unwrap();
    // And one still pending, with its valid token.
    let pending = spine
        .invite_user(&owner, "pending-b@example.com", MembershipRole::Viewer)
        .await
        .unwrap();
    spine
        .upsert_pin(
            &owner,
            SavePin {
                key: "agent:cfg".into(),
                value: json!({"owner": "b"}),
                source: None,
                ttl_seconds: None,
            },
        )
        .await
        .unwrap();
    let ticket = spine
        .open_ticket(
            &owner,
            OpenTicket {
                subject: "B's question".into(),
                description: "Only B may see this.".into(),
                category: TicketCategory::Billing,
                priority: TicketPriority::Low,
            },
        )
        .await
        .unwrap();
    let endpoint = spine
        .create_webhook_endpoint(
            &owner,
            account_spine::webhooks::CreateEndpoint::new("https://hooks.example.com/b"),
        )
        .await
        .unwrap()
        .endpoint;
    let uuids = [
        endpoint.id.as_uuid(),
        tenant.as_uuid(),
        created.owner.user_id.as_uuid(),
        member.user_id.as_uuid(),
        run.id.as_uuid(),
        key.key.id.as_uuid(),
        bootstrap_key.key.id.as_uuid(),
        joined.invitation.id.as_uuid(),
        pending.invitation.id.as_uuid(),
        ticket.id.as_uuid(),
    ];
    let markers = uuids
        .iter()
        .flat_map(|u| {
            [
                u.hyphenated().to_string(),
                u.simple().to_string(),
                u.simple().to_string().to_uppercase(),
            ]
        })
        .collect();
    Victim {
        targets: Targets {
            run: run.id,
            key: key.key.id,
            user: member.user_id,
            invitation: pending.invitation.id,
            invitation_token: pending.token.expose().to_owned(),
            pin_key: "agent:cfg".into(),
            project: tenant,
            webhook_endpoint: endpoint.id,
        },
        markers,
    }
}

/// Every row (of every table) that mentions one of B's ids.
async fn rows_of(conn: &DatabaseConnection, markers: &[String]) -> BTreeMap<String, Vec<String>> {
    support::snapshot(conn)
        .await
        .into_iter()
        .map(|(table, rows)| {
            let mine = rows
                .into_iter()
                .filter(|row| markers.iter().any(|m| row.contains(m.as_str())))
                .collect();
            (table, mine)
        })
        .collect()
}

/// The answer's shape: status, code and message with the ids it was given blanked out.
fn shape(outcome: &Result<Reply, SpineError>, ids: &[String]) -> (u16, String, String) {
    let blank = |text: String| {
        ids.iter()
            .fold(text, |text, id| text.replace(id.as_str(), "<id>"))
    };
    match outcome {
        Ok(reply) => (
            200,
            format!("found={}", reply.found),
            blank(reply.debug.clone()),
        ),
        Err(error) => (
            error.http_status(),
            error.code().to_owned(),
            blank(error.to_string()),
        ),
    }
}

fn not_found(outcome: &Result<Reply, SpineError>) -> bool {
    match outcome {
        Ok(reply) => !reply.found,
        Err(error) => error.http_status() == 404,
    }
}

#[tokio::test]
async fn tenant_a_never_reaches_tenant_b_and_cannot_tell_its_ids_from_missing_ones() {
    for backend in backends().unwrap() {
        let env = support::env(&backend).await;
        let spine = &env.spine;
        let name = env.backend;
        let (a, a_key) = spine
            .bootstrap(&operator(), "owner-a@example.com", "Tenant A")
            .await
            .unwrap();
        let b = victim(spine).await;
        // A's owner signed in, and A's owner key (a personal key holding every permission).
        let principals = [
            ("owner", as_owner(a.tenant.id, a.owner.user_id)),
            (
                "owner key",
                spine
                    .authenticate_api_key(a_key.plaintext.expose(), RequestMeta::default())
                    .await
                    .unwrap(),
            ),
        ];
        let conn = env.second().await;
        let before = rows_of(&conn, &b.markers).await;
        assert!(
            before.values().map(Vec::len).sum::<usize>() > 10,
            "{name}: B's rows are found by its ids: {before:?}"
        );

        let mut problems = Vec::new();
        let (mut with_ids, mut without_ids, mut no_principal) = (0, 0, 0);
        // The pin upsert goes last: it saves A's own pin under B's pin key (which must leave
        // B's pin alone), and the get and delete before it must not find that one.
        let mut operations: Vec<Operation> = Operation::ALL.to_vec();
        operations.sort_by_key(|op| *op == Operation::PinsUpsert);
        for operation in operations {
            for (who, principal) in &principals {
                let label = format!("{name}: {} as A's {who}", operation.name());
                let missing = Targets::nonexistent();
                match invoke(spine, operation, principal, &b.targets).await {
                    Invocation::NoPrincipal(_) => {
                        no_principal += 1;
                        continue;
                    }
                    Invocation::Called { takes: [], outcome } => {
                        without_ids += 1;
                        let text = format!("{:?}", outcome.as_ref().map(|r| &r.debug));
                        if let Some(m) = b.markers.iter().find(|m| text.contains(m.as_str())) {
                            problems.push(format!("{label} answered with B's id {m}: {text}"));
                        }
                    }
                    Invocation::Called { takes, outcome } => {
                        with_ids += 1;
                        let Invocation::Called {
                            outcome: missing_outcome,
                            ..
                        } = invoke(spine, operation, principal, &missing).await
                        else {
                            unreachable!("the invoker answers the same way for any targets")
                        };
                        if !not_found(&outcome) {
                            problems.push(format!(
                                "{label} on B's ids is not a not-found: {outcome:?}"
                            ));
                        }
                        if !not_found(&missing_outcome) {
                            problems.push(format!(
                                "{label} on missing ids is not a not-found: {missing_outcome:?}"
                            ));
                        }
                        let other = shape(&outcome, &b.targets.texts(takes));
                        let none = shape(&missing_outcome, &missing.texts(takes));
                        if other != none {
                            problems.push(format!(
                                "{label}: B's ids answer {other:?}, missing ones {none:?}"
                            ));
                        }
                    }
                }
                let after = rows_of(&conn, &b.markers).await;
                if after != before {
                    problems.push(format!(
                        "{label} changed B's rows:\nbefore {before:?}\nafter  {after:?}"
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        // Every operation is accounted for, and the id-taking ones are really exercised.
        assert_eq!(
            with_ids + without_ids + no_principal,
            Operation::ALL.len() * principals.len()
        );
        assert!(with_ids >= 2 * 13, "{name}: {with_ids} id-taking calls");
        eprintln!(
            "{name}: {} operations x {} principals: {with_ids} calls on B's ids (each also on \
             missing ids), {without_ids} id-less calls, {no_principal} not callable by a \
             tenant principal",
            Operation::ALL.len(),
            principals.len()
        );
    }
}
