//! The authorization matrix, generated from the operation invoker (`support/invoke.rs`): for
//! every operation with `Authority::Tenant { min_role, permission }`, every role, and API keys
//! that hold exactly `permission` or everything but it (machine keys, and personal keys whose
//! user has each role).
//!
//! A *refusal* is the spine's authorization answer: HTTP 403 with code `forbidden` (role or
//! key permissions too low, from the operation table) or `machine_key_not_allowed` (a key
//! issued for no user calling a use case that acts as a person), audited once as
//! `authorization.refused`. *Allowed past authorization* means no 403 of any kind
//! ([`SpineError::is_refusal`]) and no refusal audited: the call may still fail with a
//! not-found or validation error, since the invoker passes ids that name nothing.
//!
//! Personal keys are bounded by their user's current role in the use cases that act as a
//! person (the `account.`, `support.`, `billing.` and `audit.` areas) and in those that take
//! `keys:manage` (owner powers) or `webhooks:manage` (where the tenant's events go); elsewhere a key is bounded by its permissions alone (by
//! design: a `run:*` key is a standing machine credential, see
//! `account_engines::api_keys::permissions`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::api_keys::Permission;
use account_engines::api_keys::permissions::granted;
use account_engines::roles::rank;
use account_spine::api_keys::IssueKey;
use account_spine::invitations::Invitee;
use account_spine::types::*;
use account_spine::{
    Actor, Authority, ErrorCode, Operation, OperatorPrincipal, Principal, RequestMeta, Spine,
    SpineError, VerifyCacheSettings,
};
use account_testkit::backends;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use std::collections::BTreeMap;
use support::invoke::{Invocation, Targets, invoke};

const ROLES: [MembershipRole; 4] = [
    MembershipRole::Viewer,
    MembershipRole::Member,
    MembershipRole::Admin,
    MembershipRole::Owner,
];

/// Operations whose allowed call changes the world the next callers need (the caller's
/// membership, the tenant itself): a fresh world follows each success.
const CHANGES_WORLD: &[Operation] = &[
    Operation::AccountLeaveProject,
    Operation::AccountDeleteProject,
];

/// Every permission a key can hold (a named worker included).
const VOCABULARY: &[&str] = &[
    "run:*",
    "run:business-builder",
    "read:*",
    "read:runs",
    "read:usage",
    "keys:manage",
    "keys:verify",
    "users:read",
    "users:manage",
    "profile:write",
    "support:read",
    "support:write",
    "billing:read",
    "audit:read",
    "webhooks:manage",
];

/// The vocabulary minus every permission that grants `required`.
fn lacking(required: &str) -> Vec<String> {
    let required = Permission::parse(required).unwrap();
    VOCABULARY
        .iter()
        .map(|p| (*p).to_owned())
        .filter(|p| !granted(std::slice::from_ref(p), &required))
        .collect()
}

/// Whether the operation's use case acts as a person (so machine keys are refused and a
/// personal key is bounded by its user's role).
fn acts_as_person(operation: Operation) -> bool {
    let area = operation.name().split('.').next().unwrap();
    ["account", "support", "billing", "audit"].contains(&area)
}

fn operator() -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta::default(),
    }
}

fn user(tenant: TenantId, user_id: UserId, role: MembershipRole) -> Principal {
    Principal {
        tenant_id: tenant,
        actor: Actor::User { user_id, role },
        request: RequestMeta::default(),
    }
}

async fn set(
    conn: &DatabaseConnection,
    table: &str,
    column: &str,
    value: Value,
    id: (&str, Value),
    tenant: TenantId,
) {
    let mut update = Query::update();
    update
        .table(Alias::new(table))
        .value(Alias::new(column), Expr::val(value))
        .and_where(Expr::col(Alias::new(id.0)).eq(Expr::val(id.1)));
    if table == "tenant_memberships" {
        update.and_where(Expr::col(Alias::new("tenant_id")).eq(Expr::val(tenant.as_uuid())));
    }
    let done = conn.execute(&update).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{table}.{column}");
}

async fn issue(spine: &Spine, issuer: &Principal, permissions: &[String]) -> Principal {
    let issued = spine
        .issue_api_key(
            issuer,
            IssueKey {
                name: "matrix".into(),
                permissions: permissions.to_vec(),
                ..IssueKey::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("issuing {permissions:?}: {e:?}"));
    spine
        .authenticate_api_key(issued.plaintext.expose(), RequestMeta::default())
        .await
        .unwrap()
}

/// What a caller must meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A refusal with this code.
    Refused(&'static str),
    /// No refusal.
    Allowed,
}

/// Tenant A with a user of each role, and their keys.
struct World {
    tenant: TenantId,
    users: BTreeMap<&'static str, UserId>,
    /// Personal keys holding exactly one permission, by (the user's role, permission).
    personal: BTreeMap<(&'static str, String), Principal>,
    /// The owner's personal keys holding everything but what grants a permission.
    personal_lacking: BTreeMap<String, Principal>,
    /// Machine keys holding exactly one permission (none for `keys:manage`, which no key may
    /// grant: only owners may, and a key issues with the admin ceiling).
    machine: BTreeMap<String, Principal>,
    /// Machine keys holding everything they can but what grants a permission.
    machine_lacking: BTreeMap<String, Principal>,
}

async fn world(spine: &Spine, conn: &DatabaseConnection, permissions: &[&'static str]) -> World {
    // Addresses of this world's own: a fresh world follows a call that changed the last one.
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (created, _) = spine
        .bootstrap(
            &operator(),
            &format!("owner-{tag}@example.com"),
            &format!("Matrix {tag}"),
        )
        .await
        .unwrap();
    let tenant = created.tenant.id;
    let owner = user(tenant, created.owner.user_id, MembershipRole::Owner);
    set(
        conn,
        "tenants",
        "max_api_keys",
        10_000.into(),
        ("id", tenant.as_uuid().into()),
        tenant,
    )
    .await;
    let mut users = BTreeMap::new();
    for role in ROLES {
        let invited = spine
            .invite_user(
                &owner,
                &format!("{role}-user-{tag}@example.com"),
                MembershipRole::Viewer,
            )
            .await
            .unwrap();
        let joined = spine
            .accept_invitation(
                tenant,
                invited.invitation.id,
                invited.token.expose(),
                Invitee::default(),
                RequestMeta::default(),
            )
            .await
            .unwrap();
        users.insert(role.as_str(), joined.user_id);
    }
    // Each user issues their personal keys as an owner (any permission is grantable), then
    // takes their role: a key outlives a demotion, which is what the role bound is for.
    let mut personal = BTreeMap::new();
    for role in ROLES {
        let user_id = users[role.as_str()];
        let id = ("user_id", user_id.as_uuid().into());
        set(
            conn,
            "tenant_memberships",
            "role",
            "owner".into(),
            id.clone(),
            tenant,
        )
        .await;
        let issuer = user(tenant, user_id, MembershipRole::Owner);
        for p in permissions {
            personal.insert(
                (role.as_str(), (*p).to_owned()),
                issue(spine, &issuer, &[(*p).to_owned()]).await,
            );
        }
        set(
            conn,
            "tenant_memberships",
            "role",
            role.as_str().into(),
            id,
            tenant,
        )
        .await;
    }
    let all: Vec<String> = VOCABULARY.iter().map(|p| (*p).to_owned()).collect();
    let minter = issue(spine, &owner, &all).await;
    let mut personal_lacking = BTreeMap::new();
    let mut machine = BTreeMap::new();
    let mut machine_lacking = BTreeMap::new();
    for p in permissions {
        let without = lacking(p);
        personal_lacking.insert((*p).to_owned(), issue(spine, &owner, &without).await);
        if *p != "keys:manage" {
            machine.insert(
                (*p).to_owned(),
                issue(spine, &minter, &[(*p).to_owned()]).await,
            );
        }
        let grantable: Vec<String> = without.into_iter().filter(|q| q != "keys:manage").collect();
        machine_lacking.insert((*p).to_owned(), issue(spine, &minter, &grantable).await);
    }
    for key in machine.values().chain(machine_lacking.values()) {
        assert!(
            matches!(key.actor, Actor::ApiKey { user_id: None, .. }),
            "a machine key"
        );
    }
    World {
        tenant,
        users,
        personal,
        personal_lacking,
        machine,
        machine_lacking,
    }
}

/// How many `authorization.refused` rows carry this request id, and their reasons.
async fn refusal_rows(conn: &DatabaseConnection, request_id: &str) -> Vec<(String, String)> {
    let mut query = Query::select();
    query
        .columns([Alias::new("resource_id"), Alias::new("reason")])
        .from(Alias::new("audit_log"))
        .and_where(Expr::col(Alias::new("action")).eq("authorization.refused"))
        .and_where(Expr::col(Alias::new("request_id")).eq(request_id));
    let rows = conn
        .query_all_raw(conn.get_database_backend().build(&query))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "resource_id").unwrap(),
                r.try_get::<String>("", "reason").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_tenant_operation_refuses_exactly_the_roles_and_keys_below_its_authority() {
    let tenant_operations: Vec<(Operation, MembershipRole, &'static str)> = Operation::ALL
        .iter()
        .filter_map(|&op| match op.authority() {
            Authority::Tenant {
                min_role,
                permission,
            } => Some((op, min_role, permission)),
            Authority::Operator | Authority::Token | Authority::System | Authority::Person => None,
            other => panic!(
                "{}: an authority this matrix does not know: {other:?}",
                op.name()
            ),
        })
        .collect();
    let mut permissions: Vec<&'static str> = tenant_operations.iter().map(|t| t.2).collect();
    permissions.sort_unstable();
    permissions.dedup();
    for backend in backends().unwrap() {
        let env = support::env(&backend).await;
        let spine = &env.spine;
        let name = env.backend;
        let conn = env.second().await;
        let mut world = world(spine, &conn, &permissions).await;
        // The world set the roles behind the spine's back (plain SQL, as another process
        // would): start from empty caches, not the roles they held while issuing keys.
        let fresh = spine
            .clone()
            .with_verify_cache(VerifyCacheSettings::default());
        let spine = &fresh;
        let mut problems = Vec::new();
        let (mut calls, mut refusals, mut operations, mut not_callable) = (0, 0, 0, 0);
        for &(operation, min_role, permission) in &tenant_operations {
            let person = acts_as_person(operation);
            operations += 1;
            // The cases are built from the current world: an allowed call that changes it
            // (a member left, the tenant deleted) is followed by a fresh world.
            let mut n = 0;
            loop {
                let mut cases: Vec<(String, Principal, Expect)> = Vec::new();
                let by_role = |role: MembershipRole, refused: &'static str| {
                    if rank(role) < rank(min_role) {
                        Expect::Refused(refused)
                    } else {
                        Expect::Allowed
                    }
                };
                for role in ROLES {
                    cases.push((
                        format!("the {role} user"),
                        user(world.tenant, world.users[role.as_str()], role),
                        by_role(role, "forbidden"),
                    ));
                    let key = world.personal[&(role.as_str(), permission.to_owned())].clone();
                    let expect =
                        if person || ["keys:manage", "webhooks:manage"].contains(&permission) {
                            by_role(role, "forbidden")
                        } else {
                            Expect::Allowed
                        };
                    cases.push((
                        format!("a {role}'s key holding `{permission}`"),
                        key,
                        expect,
                    ));
                }
                cases.push((
                    format!("the owner's key holding all but `{permission}`"),
                    world.personal_lacking[permission].clone(),
                    Expect::Refused("forbidden"),
                ));
                if let Some(key) = world.machine.get(permission) {
                    let expect = if person {
                        Expect::Refused("machine_key_not_allowed")
                    } else {
                        Expect::Allowed
                    };
                    cases.push((
                        format!("a machine key holding `{permission}`"),
                        key.clone(),
                        expect,
                    ));
                }
                let expect = if person {
                    Expect::Refused("machine_key_not_allowed")
                } else {
                    Expect::Refused("forbidden")
                };
                cases.push((
                    format!("a machine key holding all but `{permission}`"),
                    world.machine_lacking[permission].clone(),
                    expect,
                ));

                let Some((who, mut principal, expect)) = cases.into_iter().nth(n) else {
                    break;
                };
                let request_id = format!("matrix-{}-{n}", operation.name());
                principal.request.request_id = Some(request_id.clone());
                let label = format!("{name}: {} by {who}", operation.name());
                let outcome =
                    match invoke(spine, operation, &principal, &Targets::nonexistent()).await {
                        Invocation::NoPrincipal(_) => {
                            not_callable += 1;
                            break;
                        }
                        Invocation::Called { outcome, .. } => outcome,
                    };
                calls += 1;
                let audited = refusal_rows(&conn, &request_id).await;
                match expect {
                    Expect::Refused(code) => {
                        refusals += 1;
                        let ok = matches!(&outcome, Err(e) if e.code() == code && e.http_status() == 403);
                        if !ok {
                            problems.push(format!(
                                "{label}: expected a `{code}` refusal, got {outcome:?}"
                            ));
                        }
                        if audited != [(operation.name().to_owned(), code.to_owned())] {
                            problems.push(format!("{label}: refusal audit rows {audited:?}"));
                        }
                    }
                    Expect::Allowed => {
                        if let Err(e) = &outcome
                            && SpineError::is_refusal(e)
                        {
                            problems.push(format!(
                                "{label}: expected past authorization, refused: {e:?}"
                            ));
                        }
                        if !audited.is_empty() {
                            problems.push(format!("{label}: refusal audited {audited:?}"));
                        }
                    }
                }
                if CHANGES_WORLD.contains(&operation) && outcome.is_ok() {
                    world = crate::world(&env.spine, &conn, &permissions).await;
                }
                n += 1;
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
        assert!(
            operations >= 30 && refusals > 100,
            "{name}: the matrix is exercised"
        );
        eprintln!(
            "{name}: {operations} tenant operations ({not_callable} not callable with a principal), \
             {calls} calls, {refusals} expected refusals, {} allowed",
            calls - refusals
        );
    }
}
