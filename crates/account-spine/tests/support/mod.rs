//! The write use cases of the spine as a table, shared by `every_write_commits.rs`,
//! `fault_injection.rs` and `operations_table.rs`.
//!
//! Each [`UseCase`] names one public write method of the spine and the [`Operation`] it runs
//! as. [`arrange`] gives it what it needs in a fresh database of its own ([`Env`]: a SQLite
//! *file* with the production connection settings, or a fresh PostgreSQL database), and
//! [`act`] calls it and says what must then be visible from a second connection: rows
//! ([`Effect`]) and the audit row ([`AuditExpect`]). `act` can be called again on the same
//! arrangement after a failed call, which is what the fault-injection test does.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)] // each test file uses a part

pub(crate) mod invoke;

use account_engines::FaultInjector;
use account_engines::billing::{InvoiceUpsert, SubscriptionUpsert};
use account_engines::invitations::Invitee;
use account_engines::lifecycle::LifecycleAction;
use account_engines::memory_pins::SavePin;
use account_engines::support::OpenTicket;
use account_engines::tenants::CreateTenant;
use account_engines::users::ProfileUpdate;
use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::runs::{AdmitRun, RunCompletion};
use account_spine::types::*;
use account_spine::{
    Actor, Clock, DatabaseConfig, FixedClock, Operation, OperatorPrincipal, Principal,
    RecordedEvents, RequestMeta, Spine, SpineError,
};
use account_testkit::fixtures::{TenantRow, insert_membership, insert_tenant, insert_user};
use account_testkit::{Backend, UrlDb};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The instant every case starts at.
pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

macro_rules! use_cases {
    ($( $(#[$doc:meta])* $case:ident => $operation:ident, )+) => {
        /// One public write method of the spine.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) enum UseCase {
            $( $(#[$doc])* $case, )+
        }

        impl UseCase {
            /// Every case (the macro keeps this list and the enum the same).
            pub(crate) const ALL: &'static [UseCase] = &[$(UseCase::$case),+];

            /// The operation the method runs as.
            pub(crate) fn operation(self) -> Operation {
                match self { $(UseCase::$case => Operation::$operation,)+ }
            }
        }
    };
}

use_cases! {
    /// `admit_run`.
    AdmitRun => RunsAdmit,
    /// `complete_run`.
    CompleteRun => RunsComplete,
    /// `issue_api_key`.
    IssueApiKey => ApiKeysIssue,
    /// `revoke_api_key`.
    RevokeApiKey => ApiKeysRevoke,
    /// `rotate_api_key`.
    RotateApiKey => ApiKeysRotate,
    /// `invite_user`.
    InviteUser => AccountInviteUser,
    /// `resend_invitation`.
    ResendInvitation => AccountResendInvitation,
    /// `revoke_invitation`.
    RevokeInvitation => AccountRevokeInvitation,
    /// `accept_invitation` (no principal: the token is the authority).
    AcceptInvitation => AccountAcceptInvitation,
    /// `change_role`.
    ChangeRole => AccountChangeRole,
    /// `remove_user`.
    RemoveUser => AccountRemoveUser,
    /// `transfer_ownership`.
    TransferOwnership => AccountTransferOwnership,
    /// `update_profile`.
    UpdateProfile => AccountUpdateProfile,
    /// `open_ticket`.
    OpenTicket => SupportOpenTicket,
    /// `sdk_handshake`.
    SdkHandshake => OnboardingSdkHandshake,
    /// `upsert_pin`.
    UpsertPin => PinsUpsert,
    /// `get_pin`: a read by its operation, but it writes the pin trail (on the pool).
    GetPin => PinsGet,
    /// `delete_pin`.
    DeletePin => PinsDelete,
    /// `cleanup_pins`.
    CleanupPins => PinsCleanup,
    /// `record_subscription`.
    RecordSubscription => BillingRecordSubscription,
    /// `record_invoice`.
    RecordInvoice => BillingRecordInvoice,
    /// `create_tenant`.
    CreateTenant => TenantCreate,
    /// `bootstrap`: user, tenant and key in one transaction, audited as `tenant.create`.
    Bootstrap => TenantCreate,
    /// `change_plan`.
    ChangePlan => TenantChangePlan,
    /// `transition_tenant`.
    TransitionTenant => LifecycleTransition,
    /// `advance_onboarding`.
    AdvanceOnboarding => OnboardingAdvance,
    /// `force_complete_onboarding`.
    ForceCompleteOnboarding => OnboardingForceComplete,
    /// `create_operator_key`, by an operator acting with an operator key.
    CreateOperatorKey => OperatorKeysCreate,
    /// `revoke_operator_key`, by an operator acting with an operator key.
    RevokeOperatorKey => OperatorKeysRevoke,
}

/// Operations without an audit action whose use case still writes (the pin trail), on the
/// pool rather than in a write transaction.
pub(crate) const WRITING_READS: &[Operation] = &[Operation::PinsGet];

impl UseCase {
    /// The request id the case's principal carries.
    pub(crate) fn request_id(self) -> String {
        format!("req-{self:?}")
    }

    /// Whether the case runs in a write transaction (every audited write does).
    pub(crate) fn transactional(self) -> bool {
        !WRITING_READS.contains(&self.operation())
    }
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
        Database::connect(self.db.url()).await.unwrap()
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
    if !db.is_migrated() {
        spine.migrate().await.unwrap();
    }
    Env {
        backend: backend.name(),
        spine,
        clock,
        events,
        faults,
        db,
    }
}

// ---------------------------------------------------------------------------------------
// Plain SQL for seeding and checking (the test sees the database, never the drivers).

/// Rows of `table` where every `column = value` holds (`Value` nulls mean `IS NULL`).
pub(crate) async fn count(conn: &DatabaseConnection, table: &str, conds: &[(&str, Value)]) -> i64 {
    let mut filter = Cond::all();
    for (column, value) in conds {
        let column = Expr::col(Alias::new(*column));
        filter = filter.add(if is_null(value) {
            column.is_null()
        } else {
            column.eq(value.clone())
        });
    }
    let mut query = Query::select();
    query
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from(Alias::new(table))
        .cond_where(filter);
    let row = conn
        .query_one_raw(conn.get_database_backend().build(&query))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn is_null(value: &Value) -> bool {
    matches!(
        value,
        Value::String(None) | Value::Uuid(None) | Value::Int(None) | Value::BigInt(None)
    )
}

/// SQL `NULL`, for [`count`].
pub(crate) fn null() -> Value {
    Value::String(None)
}

async fn strings(conn: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect()
}

/// Every table's rows, each rendered as text, sorted: two equal snapshots mean the database
/// holds exactly the same data (row counts and contents).
pub(crate) async fn snapshot(conn: &DatabaseConnection) -> BTreeMap<String, Vec<String>> {
    let backend = conn.get_database_backend();
    let tables = match backend {
        DbBackend::Sqlite => {
            strings(
                conn,
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
                "t",
            )
            .await
        }
        _ => {
            strings(
                conn,
                "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY 1",
                "t",
            )
            .await
        }
    };
    let mut snapshot = BTreeMap::new();
    for table in tables {
        let sql = match backend {
            DbBackend::Sqlite => {
                let columns = strings(
                    conn,
                    &format!("SELECT name AS c FROM pragma_table_info('{table}') ORDER BY cid"),
                    "c",
                )
                .await;
                let row = columns
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                format!("SELECT {row} AS r FROM \"{table}\"")
            }
            _ => format!("SELECT CAST(x AS TEXT) AS r FROM \"{table}\" AS x"),
        };
        let mut rows = strings(conn, &sql, "r").await;
        rows.sort();
        snapshot.insert(table, rows);
    }
    snapshot
}

/// How many audit rows each action has.
pub(crate) async fn audit_actions(conn: &DatabaseConnection) -> BTreeMap<String, i64> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT action, COUNT(*) AS n FROM audit_log GROUP BY action",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get::<String>("", "action").unwrap(),
                row.try_get::<i64>("", "n").unwrap(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Arrangement.

/// A tenant with an owner and a member, seeded with plain SQL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct World {
    /// The tenant.
    pub(crate) tenant: TenantId,
    /// Its owner (the acting principal of tenant cases).
    pub(crate) owner: UserId,
    /// A member with the `member` role.
    pub(crate) member: UserId,
}

/// What a case needs besides the world.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arranged {
    /// A running run.
    pub(crate) run: Option<RunId>,
    /// An active key.
    pub(crate) key: Option<ApiKeyId>,
    /// A pending invitation and its token.
    pub(crate) invitation: Option<(InvitationId, String)>,
    /// An operator key the case's operator acts with: its id and plaintext.
    pub(crate) operator_key: Option<(OperatorKeyId, String)>,
    /// Another operator key, to act on.
    pub(crate) target_operator_key: Option<OperatorKeyId>,
}

async fn seed(conn: &DatabaseConnection) -> World {
    let now = start();
    let world = World {
        tenant: TenantId::new(),
        owner: UserId::new(),
        member: UserId::new(),
    };
    let q = Plan::Free.quotas();
    insert_tenant(
        conn,
        &TenantRow {
            id: world.tenant.as_uuid(),
            name: "Acme",
            slug: "acme",
            plan: "free",
            max_workers: q.max_workers,
            max_runs_per_day: q.max_runs_per_day,
            max_concurrent_runs: q.max_concurrent_runs,
            max_tokens_per_month: q.max_tokens_per_month,
            max_api_keys: q.max_api_keys,
            at: now,
        },
    )
    .await;
    for (user, email, role) in [
        (world.owner, "owner@example.com", "owner"),
        (world.member, "member@example.com", "member"),
    ] {
        insert_user(conn, user.as_uuid(), email, now).await;
        insert_membership(conn, world.tenant.as_uuid(), user.as_uuid(), role, now).await;
    }
    world
}

/// The owner, acting with the case's request id.
pub(crate) fn owner(world: &World, case: UseCase) -> Principal {
    Principal {
        tenant_id: world.tenant,
        actor: Actor::User {
            user_id: world.owner,
            role: MembershipRole::Owner,
        },
        request: RequestMeta {
            request_id: Some(case.request_id()),
            ip_address: Some("192.0.2.1".into()),
            user_agent: Some("spine-tests".into()),
        },
    }
}

/// A platform operator, acting with the case's request id.
pub(crate) fn operator(case: UseCase) -> OperatorPrincipal {
    OperatorPrincipal {
        operator_id: "ops@example.com".into(),
        request: RequestMeta {
            request_id: Some(case.request_id()),
            ip_address: Some("192.0.2.2".into()),
            user_agent: Some("spine-tests".into()),
        },
    }
}

/// Arrangement steps run with the request id `arrange`, so they never match a case's.
fn arranging(world: &World) -> Principal {
    Principal {
        request: RequestMeta {
            request_id: Some("arrange".into()),
            ..RequestMeta::default()
        },
        ..owner(world, UseCase::AdmitRun)
    }
}

fn admit() -> AdmitRun {
    AdmitRun {
        worker_id: "business-builder".into(),
        task: "plan".into(),
        input: None,
    }
}

fn pin(ttl_seconds: Option<i32>) -> SavePin {
    SavePin {
        key: "agent:cfg".into(),
        value: json!({"v": 1}),
        source: None,
        ttl_seconds,
    }
}

/// Seeds the world and whatever `case` acts on, through the spine where the state needs the
/// engines' rules (runs, keys, invitations, pins).
pub(crate) async fn arrange(env: &Env, case: UseCase) -> (World, Arranged) {
    let conn = env.second().await;
    let world = seed(&conn).await;
    let by = arranging(&world);
    let spine = &env.spine;
    let mut arranged = Arranged::default();
    match case {
        UseCase::CompleteRun => {
            arranged.run = Some(spine.admit_run(&by, admit()).await.unwrap().id);
        }
        UseCase::RevokeApiKey | UseCase::RotateApiKey => {
            let issued = spine
                .issue_api_key(
                    &by,
                    IssueKey {
                        name: "ci".into(),
                        ..IssueKey::default()
                    },
                )
                .await
                .unwrap();
            arranged.key = Some(issued.key.id);
        }
        UseCase::ResendInvitation | UseCase::RevokeInvitation | UseCase::AcceptInvitation => {
            let issued = spine
                .invite_user(&by, "invitee@example.com", MembershipRole::Admin)
                .await
                .unwrap();
            arranged.invitation = Some((issued.invitation.id, issued.token.expose().to_owned()));
            // A resend an hour later has a new expiry to show.
            env.clock.advance(TimeDelta::hours(1));
        }
        UseCase::GetPin | UseCase::DeletePin => {
            spine.upsert_pin(&by, pin(None)).await.unwrap();
        }
        UseCase::CleanupPins => {
            spine.upsert_pin(&by, pin(Some(30))).await.unwrap();
            env.clock.advance(TimeDelta::seconds(60));
        }
        UseCase::CreateOperatorKey | UseCase::RevokeOperatorKey => {
            let tooling = OperatorPrincipal {
                operator_id: "cli:arrange".into(),
                request: RequestMeta {
                    request_id: Some("arrange".into()),
                    ..RequestMeta::default()
                },
            };
            let acting = spine.create_operator_key(&tooling, "ops").await.unwrap();
            arranged.operator_key = Some((acting.key.id, acting.plaintext.expose().to_owned()));
            let target = spine.create_operator_key(&tooling, "old").await.unwrap();
            arranged.target_operator_key = Some(target.key.id);
        }
        _ => {}
    }
    (world, arranged)
}

// ---------------------------------------------------------------------------------------
// The calls and what they must leave behind.

/// `rows` rows of `table` match every condition.
#[derive(Clone, Debug)]
pub(crate) struct Effect {
    /// Table.
    pub(crate) table: &'static str,
    /// `column = value` conditions.
    pub(crate) conds: Vec<(&'static str, Value)>,
    /// How many rows must match.
    pub(crate) rows: i64,
}

fn rows(table: &'static str, rows: i64, conds: Vec<(&'static str, Value)>) -> Effect {
    Effect { table, conds, rows }
}

/// Who the audit row must name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActorExpect {
    /// `actor_type = 'user'` and this `user_id`.
    User(UserId),
    /// `actor_type = 'founder'`, no user, no key (the operator's id has no column).
    Operator,
    /// `actor_type = 'operator'`, no user, and this operator key in `api_key_id`.
    OperatorKey(OperatorKeyId),
}

/// The audit row a successful call must have written.
#[derive(Clone, Debug)]
pub(crate) struct AuditExpect {
    /// `audit_log.action`.
    pub(crate) action: &'static str,
    /// `audit_log.tenant_id` (`None`: a platform-wide row).
    pub(crate) tenant: Option<TenantId>,
    /// Who.
    pub(crate) actor: ActorExpect,
}

impl AuditExpect {
    /// The conditions that find the row; `request_id` as given (`None`: `IS NULL`).
    pub(crate) fn conds(&self, request_id: Option<String>) -> Vec<(&'static str, Value)> {
        let mut conds: Vec<(&'static str, Value)> = vec![
            ("action", self.action.into()),
            (
                "tenant_id",
                self.tenant.map_or_else(null, |t| t.as_uuid().into()),
            ),
            ("request_id", request_id.map_or_else(null, Value::from)),
        ];
        match self.actor {
            ActorExpect::User(user) => {
                conds.push(("actor_type", "user".into()));
                conds.push(("user_id", user.as_uuid().into()));
                conds.push(("api_key_id", null()));
            }
            ActorExpect::Operator => {
                conds.push(("actor_type", "founder".into()));
                conds.push(("user_id", null()));
                conds.push(("api_key_id", null()));
            }
            ActorExpect::OperatorKey(key) => {
                conds.push(("actor_type", "operator".into()));
                conds.push(("user_id", null()));
                conds.push(("api_key_id", key.as_uuid().into()));
            }
        }
        conds
    }
}

/// What a successful call must have left behind.
#[derive(Clone, Debug)]
pub(crate) struct Done {
    /// Rows that must be visible.
    pub(crate) effects: Vec<Effect>,
    /// The audit row (none for [`WRITING_READS`]).
    pub(crate) audit: Option<AuditExpect>,
}

fn uuid(id: uuid::Uuid) -> Value {
    id.into()
}

/// Calls the case's method once. Callable again on the same arrangement after a failure.
pub(crate) async fn act(
    env: &Env,
    case: UseCase,
    world: &World,
    arranged: &Arranged,
) -> Result<Done, SpineError> {
    let spine = &env.spine;
    let p = owner(world, case);
    let op = operator(case);
    let now = env.clock.now();
    let tenant = uuid(world.tenant.as_uuid());
    let by_owner = |action| {
        Some(AuditExpect {
            action,
            tenant: Some(world.tenant),
            actor: ActorExpect::User(world.owner),
        })
    };
    let by_operator = |action, tenant| {
        Some(AuditExpect {
            action,
            tenant: Some(tenant),
            actor: ActorExpect::Operator,
        })
    };
    let action = case.operation().audit_action().unwrap_or("none");
    let done = match case {
        UseCase::AdmitRun => {
            let run = spine.admit_run(&p, admit()).await?;
            Done {
                effects: vec![
                    rows(
                        "worker_runs",
                        1,
                        vec![
                            ("id", uuid(run.id.as_uuid())),
                            ("tenant_id", tenant.clone()),
                        ],
                    ),
                    rows("tenants", 1, vec![("id", tenant), ("runs_today", 1.into())]),
                ],
                audit: by_owner(action),
            }
        }
        UseCase::CompleteRun => {
            let run = arranged.run.unwrap();
            let completion = RunCompletion {
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
            };
            spine.complete_run(&p, run, completion).await?;
            Done {
                effects: vec![rows(
                    "worker_runs",
                    1,
                    vec![
                        ("id", uuid(run.as_uuid())),
                        ("status", "completed".into()),
                        ("total_tokens", 120i64.into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::IssueApiKey => {
            let issued = spine
                .issue_api_key(
                    &p,
                    IssueKey {
                        name: "deploy".into(),
                        ..IssueKey::default()
                    },
                )
                .await?;
            Done {
                effects: vec![rows(
                    "api_keys",
                    1,
                    vec![
                        ("id", uuid(issued.key.id.as_uuid())),
                        ("tenant_id", tenant),
                        ("status", "active".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::RevokeApiKey => {
            let key = arranged.key.unwrap();
            spine.revoke_api_key(&p, key, "leaked").await?;
            Done {
                effects: vec![rows(
                    "api_keys",
                    1,
                    vec![("id", uuid(key.as_uuid())), ("status", "revoked".into())],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::RotateApiKey => {
            let key = arranged.key.unwrap();
            let rotated = spine.rotate_api_key(&p, key, TimeDelta::hours(1)).await?;
            Done {
                effects: vec![rows(
                    "api_keys",
                    1,
                    vec![
                        ("id", uuid(rotated.issued.key.id.as_uuid())),
                        ("rotated_from_id", uuid(key.as_uuid())),
                        ("status", "active".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::InviteUser => {
            let issued = spine
                .invite_user(&p, "new@example.com", MembershipRole::Member)
                .await?;
            Done {
                effects: vec![rows(
                    "invitations",
                    1,
                    vec![
                        ("id", uuid(issued.invitation.id.as_uuid())),
                        ("status", "pending".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::ResendInvitation => {
            let (id, _) = arranged.invitation.clone().unwrap();
            let issued = spine.resend_invitation(&p, id).await?;
            Done {
                effects: vec![rows(
                    "invitations",
                    1,
                    vec![
                        ("id", uuid(id.as_uuid())),
                        ("status", "pending".into()),
                        ("expires_at", issued.invitation.expires_at.into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::RevokeInvitation => {
            let (id, _) = arranged.invitation.clone().unwrap();
            spine.revoke_invitation(&p, id).await?;
            Done {
                effects: vec![rows(
                    "invitations",
                    1,
                    vec![("id", uuid(id.as_uuid())), ("status", "revoked".into())],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::AcceptInvitation => {
            let (id, token) = arranged.invitation.clone().unwrap();
            let membership = spine
                .accept_invitation(
                    world.tenant,
                    id,
                    &token,
                    Invitee::default(),
                    p.request.clone(),
                )
                .await?;
            Done {
                effects: vec![
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", tenant),
                            ("user_id", uuid(membership.user_id.as_uuid())),
                            ("role", "admin".into()),
                        ],
                    ),
                    rows(
                        "invitations",
                        1,
                        vec![("id", uuid(id.as_uuid())), ("status", "accepted".into())],
                    ),
                ],
                audit: Some(AuditExpect {
                    action,
                    tenant: Some(world.tenant),
                    actor: ActorExpect::User(membership.user_id),
                }),
            }
        }
        UseCase::ChangeRole => {
            spine
                .change_role(&p, world.member, MembershipRole::Admin)
                .await?;
            Done {
                effects: vec![rows(
                    "tenant_memberships",
                    1,
                    vec![
                        ("tenant_id", tenant),
                        ("user_id", uuid(world.member.as_uuid())),
                        ("role", "admin".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::RemoveUser => {
            spine.remove_user(&p, world.member).await?;
            Done {
                effects: vec![rows(
                    "tenant_memberships",
                    0,
                    vec![
                        ("tenant_id", tenant),
                        ("user_id", uuid(world.member.as_uuid())),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::TransferOwnership => {
            spine.transfer_ownership(&p, world.member).await?;
            Done {
                effects: vec![
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", tenant.clone()),
                            ("user_id", uuid(world.member.as_uuid())),
                            ("role", "owner".into()),
                        ],
                    ),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", tenant),
                            ("user_id", uuid(world.owner.as_uuid())),
                            ("role", "admin".into()),
                        ],
                    ),
                ],
                audit: by_owner(action),
            }
        }
        UseCase::UpdateProfile => {
            let update = ProfileUpdate {
                display_name: Some("Olive Owner".into()),
                time_zone: None,
                preferences: Some(json!({"theme": "dark"})),
            };
            spine.update_profile(&p, update).await?;
            Done {
                effects: vec![rows(
                    "users",
                    1,
                    vec![
                        ("id", uuid(world.owner.as_uuid())),
                        ("name", "Olive Owner".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::OpenTicket => {
            let ticket = OpenTicket {
                subject: "Invoices".into(),
                description: "Where do I find them?".into(),
                category: TicketCategory::Billing,
                priority: TicketPriority::Low,
            };
            let opened = spine.open_ticket(&p, ticket).await?;
            Done {
                effects: vec![rows(
                    "support_tickets",
                    1,
                    vec![
                        ("id", uuid(opened.id.as_uuid())),
                        ("tenant_id", tenant),
                        ("category", "billing".into()),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::SdkHandshake => {
            spine.sdk_handshake(&p, "1.2.0", "python", None).await?;
            Done {
                effects: vec![
                    rows(
                        "sdk_attestations",
                        1,
                        vec![
                            ("tenant_id", tenant.clone()),
                            ("sdk_version", "1.2.0".into()),
                        ],
                    ),
                    rows(
                        "tenants",
                        1,
                        vec![
                            ("id", tenant),
                            ("onboarding_state", Value::SmallInt(Some(3))),
                        ],
                    ),
                ],
                audit: by_owner(action),
            }
        }
        UseCase::UpsertPin => {
            spine.upsert_pin(&p, pin(None)).await?;
            Done {
                effects: vec![
                    rows(
                        "memory_pins",
                        1,
                        vec![("tenant_id", tenant.clone()), ("key", "agent:cfg".into())],
                    ),
                    rows(
                        "memory_pin_audit",
                        1,
                        vec![("tenant_id", tenant), ("operation", "upsert".into())],
                    ),
                ],
                audit: by_owner(action),
            }
        }
        UseCase::GetPin => {
            spine.get_pin(&p, "agent:cfg").await?;
            Done {
                effects: vec![rows(
                    "memory_pin_audit",
                    1,
                    vec![("tenant_id", tenant), ("operation", "get".into())],
                )],
                audit: None,
            }
        }
        UseCase::DeletePin => {
            spine.delete_pin(&p, "agent:cfg").await?; // `false` shows as a missing audit row
            Done {
                effects: vec![rows(
                    "memory_pins",
                    0,
                    vec![("tenant_id", tenant), ("key", "agent:cfg".into())],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::CleanupPins => {
            spine.cleanup_pins(&p).await?;
            Done {
                effects: vec![rows("memory_pins", 0, vec![("tenant_id", tenant)])],
                audit: by_owner(action),
            }
        }
        UseCase::RecordSubscription => {
            let change = SubscriptionUpsert {
                id: SubscriptionId::new(),
                tenant_id: world.tenant,
                external_id: "sub_1".into(),
                plan: Plan::Pro,
                status: SubscriptionStatus::Active,
                billing_period: BillingPeriod::Monthly,
                current_period_start: Some(now),
                current_period_end: Some(now + TimeDelta::days(30)),
                trial_ends_at: None,
                canceled_at: None,
                cancel_at_period_end: false,
            };
            spine.record_subscription(&op, change).await?;
            Done {
                effects: vec![rows(
                    "subscriptions",
                    1,
                    vec![
                        ("tenant_id", tenant),
                        ("external_id", "sub_1".into()),
                        ("status", "active".into()),
                    ],
                )],
                audit: by_operator(action, world.tenant),
            }
        }
        UseCase::RecordInvoice => {
            let invoice = InvoiceUpsert {
                id: InvoiceId::new(),
                tenant_id: world.tenant,
                external_id: "in_1".into(),
                number: Some("A-0001".into()),
                status: InvoiceStatus::Open,
                currency: "usd".into(),
                amount_due_cents: 4900,
                amount_paid_cents: 0,
                period_start: now - TimeDelta::days(30),
                period_end: now,
                issued_at: now,
                due_at: Some(now + TimeDelta::days(14)),
                paid_at: None,
                hosted_url: None,
            };
            spine.record_invoice(&op, invoice).await?;
            Done {
                effects: vec![rows(
                    "invoices",
                    1,
                    vec![
                        ("tenant_id", tenant),
                        ("external_id", "in_1".into()),
                        ("amount_due_cents", 4900i64.into()),
                    ],
                )],
                audit: by_operator(action, world.tenant),
            }
        }
        UseCase::CreateTenant => {
            let created = spine
                .create_tenant(
                    &op,
                    CreateTenant {
                        name: "Globex".into(),
                        slug: None,
                        plan: Plan::Free,
                        owner: world.member,
                        billing_email: None,
                    },
                )
                .await?;
            let new = uuid(created.tenant.id.as_uuid());
            Done {
                effects: vec![
                    rows(
                        "tenants",
                        1,
                        vec![("id", new.clone()), ("slug", "globex".into())],
                    ),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", new),
                            ("user_id", uuid(world.member.as_uuid())),
                            ("role", "owner".into()),
                        ],
                    ),
                ],
                audit: by_operator(action, created.tenant.id),
            }
        }
        UseCase::Bootstrap => {
            let (created, key) = spine
                .bootstrap(&op, "founder@example.com", "Initech")
                .await?;
            let new = uuid(created.tenant.id.as_uuid());
            Done {
                effects: vec![
                    rows("users", 1, vec![("email", "founder@example.com".into())]),
                    rows("tenants", 1, vec![("id", new.clone())]),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![("tenant_id", new.clone()), ("role", "owner".into())],
                    ),
                    rows(
                        "api_keys",
                        1,
                        vec![("id", uuid(key.key.id.as_uuid())), ("tenant_id", new)],
                    ),
                ],
                audit: by_operator(action, created.tenant.id),
            }
        }
        UseCase::ChangePlan => {
            spine.change_plan(&op, world.tenant, Plan::Pro).await?;
            Done {
                effects: vec![rows(
                    "tenants",
                    1,
                    vec![("id", tenant), ("plan", "pro".into())],
                )],
                audit: by_operator(action, world.tenant),
            }
        }
        UseCase::TransitionTenant => {
            spine
                .transition_tenant(&op, world.tenant, LifecycleAction::Suspend, "unpaid")
                .await?;
            Done {
                effects: vec![
                    rows(
                        "tenants",
                        1,
                        vec![("id", tenant.clone()), ("status", "suspended".into())],
                    ),
                    rows(
                        "lifecycle_events",
                        1,
                        vec![("tenant_id", tenant), ("to_status", "suspended".into())],
                    ),
                ],
                audit: by_operator(action, world.tenant),
            }
        }
        UseCase::AdvanceOnboarding => {
            spine
                .advance_onboarding(&p, OnboardingState::IdentityVerified)
                .await?;
            Done {
                effects: vec![rows(
                    "tenants",
                    1,
                    vec![
                        ("id", tenant),
                        ("onboarding_state", Value::SmallInt(Some(1))),
                    ],
                )],
                audit: by_owner(action),
            }
        }
        UseCase::ForceCompleteOnboarding => {
            spine
                .force_complete_onboarding(&op, world.tenant, "pilot customer")
                .await?;
            Done {
                effects: vec![rows(
                    "tenants",
                    1,
                    vec![
                        ("id", tenant),
                        ("onboarding_state", Value::SmallInt(Some(4))),
                    ],
                )],
                audit: by_operator(action, world.tenant),
            }
        }
        UseCase::CreateOperatorKey => {
            let (acting, operator) = key_operator(env, arranged, &op).await?;
            let created = spine.create_operator_key(&operator, "ops-2").await?;
            Done {
                effects: vec![rows(
                    "operator_keys",
                    1,
                    vec![
                        ("id", uuid(created.key.id.as_uuid())),
                        ("revoked_at", null()),
                    ],
                )],
                audit: Some(AuditExpect {
                    action,
                    tenant: None,
                    actor: ActorExpect::OperatorKey(acting),
                }),
            }
        }
        UseCase::RevokeOperatorKey => {
            let (acting, operator) = key_operator(env, arranged, &op).await?;
            let target = arranged.target_operator_key.unwrap();
            spine.revoke_operator_key(&operator, target).await?;
            Done {
                effects: vec![rows(
                    "operator_keys",
                    1,
                    vec![("id", uuid(target.as_uuid())), ("revoked_at", now.into())],
                )],
                audit: Some(AuditExpect {
                    action,
                    tenant: None,
                    actor: ActorExpect::OperatorKey(acting),
                }),
            }
        }
    };
    Ok(done)
}

/// The operator the arranged operator key verifies as, with `op`'s request metadata.
async fn key_operator(
    env: &Env,
    arranged: &Arranged,
    op: &OperatorPrincipal,
) -> Result<(OperatorKeyId, OperatorPrincipal), SpineError> {
    let (id, plaintext) = arranged.operator_key.clone().unwrap();
    let operator = env
        .spine
        .authenticate_operator_key(&plaintext, op.request.clone())
        .await?;
    Ok((id, operator))
}

// ---------------------------------------------------------------------------------------
// The commit check (test 1), shared with the operations table's audit check (test 3).

/// What one committed case wrote to the audit log.
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    /// The case.
    pub(crate) case: UseCase,
    /// Audit actions whose row count the call raised.
    pub(crate) new_audit_actions: Vec<String>,
}

/// Runs every case on `backend`, each in its own database, and checks from a second
/// connection that its rows and its audit row (action, tenant, actor, request id) are there.
/// Returns what each call added to the audit log; panics listing every failed check.
pub(crate) async fn commit_every_case(backend: &Backend) -> Vec<Committed> {
    let mut problems = Vec::new();
    let mut committed = Vec::new();
    for &case in UseCase::ALL {
        let env = env(backend).await;
        let (world, arranged) = arrange(&env, case).await;
        let before = audit_actions(&env.second().await).await;
        let done = match act(&env, case, &world, &arranged).await {
            Ok(done) => done,
            Err(error) => {
                problems.push(format!("{}: {case:?} failed: {error:?}", env.backend));
                continue;
            }
        };
        // A new pool, opened after the call returned: only committed data is visible.
        let other = env.second().await;
        for effect in &done.effects {
            let found = count(&other, effect.table, &effect.conds).await;
            if found != effect.rows {
                problems.push(format!(
                    "{}: {case:?}: {} has {found} rows matching {:?}, expected {}",
                    env.backend, effect.table, effect.conds, effect.rows
                ));
            }
        }
        match &done.audit {
            Some(audit) => {
                let found = count(&other, "audit_log", &audit.conds(Some(case.request_id()))).await;
                if found != 1 {
                    let without = count(&other, "audit_log", &audit.conds(None)).await;
                    problems.push(format!(
                        "{}: {case:?}: {found} audit rows {audit:?} with the request id \
                         ({without} without it)",
                        env.backend
                    ));
                }
            }
            None => {
                let rows = count(
                    &other,
                    "audit_log",
                    &[("request_id", case.request_id().into())],
                )
                .await;
                if rows != 0 {
                    problems.push(format!(
                        "{}: {case:?} has no audit action but wrote {rows} audit rows",
                        env.backend
                    ));
                }
            }
        }
        let after = audit_actions(&other).await;
        let new_audit_actions = after
            .iter()
            .filter(|(action, n)| before.get(*action).copied().unwrap_or(0) < **n)
            .map(|(action, _)| action.clone())
            .collect();
        committed.push(Committed {
            case,
            new_audit_actions,
        });
    }
    assert!(
        problems.is_empty(),
        "{} failed checks:\n{}",
        problems.len(),
        problems.join("\n")
    );
    committed
}
