//! Every operation of [`Operation::ALL`], callable by name: [`invoke`] is one exhaustive
//! `match` (no wildcard arm) that knows how to call each operation with a principal and the
//! ids in a [`Targets`], so a new operation does not compile until it is covered here. Shared
//! by `isolation.rs` (tenant A's principal on tenant B's ids) and `permission_matrix.rs`
//! (every role and key against every operation's authority).
//!
//! Why this is not the write cases' table (`cases/`): it covers every operation, reads and
//! the ones no tenant principal can call included, and its completeness is checked by the
//! compiler (an exhaustive match over `Operation`), which a table of values cannot give. Its
//! arguments also differ on purpose: the ids come from a [`Targets`] (another tenant's, or
//! none at all) rather than an arrangement, and the other arguments are chosen so that any
//! caller allowed past authorization meets no refusal (a viewer invitation, a demotion to
//! viewer), where a write case leaves rows to check.

use account_spine::api_keys::IssueKey;
use account_spine::audit::AuditFilter;
use account_spine::memberships::UserFilter;
use account_spine::runs::{AdmitRun, RunCompletion, RunFilter};
use account_spine::support::OpenTicket;
use account_spine::tenants::ProjectFilters;
use account_spine::types::*;
use account_spine::users::ProfileUpdate;
use account_spine::webhooks::{CreateEndpoint, Replay, UpdateEndpoint};
use account_spine::{OffsetPage, Operation, Principal, Spine, SpineError};
use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;
use std::fmt::Debug;

/// The kinds of id an operation can be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A run id.
    Run,
    /// An API key id.
    ApiKey,
    /// A user id.
    User,
    /// An invitation id (with its token, for acceptance).
    Invitation,
    /// A memory pin key.
    PinKey,
    /// A project (a tenant, as its members see it).
    Project,
    /// A webhook endpoint.
    WebhookEndpoint,
}

/// The ids an invocation uses.
#[derive(Clone, Debug)]
pub(crate) struct Targets {
    /// A run.
    pub(crate) run: RunId,
    /// An API key.
    pub(crate) key: ApiKeyId,
    /// A user.
    pub(crate) user: UserId,
    /// An invitation.
    pub(crate) invitation: InvitationId,
    /// The invitation's token.
    pub(crate) invitation_token: String,
    /// A memory pin key.
    pub(crate) pin_key: String,
    /// A project (tenant) id.
    pub(crate) project: TenantId,
    /// A webhook endpoint.
    pub(crate) webhook_endpoint: WebhookEndpointId,
}

impl Targets {
    /// Fresh ids that name nothing in any database (and a well-formed token that matches
    /// no invitation).
    pub(crate) fn nonexistent() -> Self {
        Self {
            run: RunId::new(),
            key: ApiKeyId::new(),
            user: UserId::new(),
            invitation: InvitationId::new(),
            invitation_token: format!("inv_{}", "A".repeat(43)),
            pin_key: format!("agent:missing-{}", uuid::Uuid::new_v4().simple()),
            project: TenantId::new(),
            webhook_endpoint: WebhookEndpointId::new(),
        }
    }

    /// The text of the ids `takes` names (to blank them out of messages).
    pub(crate) fn texts(&self, takes: &[Target]) -> Vec<String> {
        takes
            .iter()
            .flat_map(|target| match target {
                Target::Run => vec![self.run.to_string()],
                Target::ApiKey => vec![self.key.to_string()],
                Target::User => vec![self.user.to_string()],
                Target::Invitation => {
                    vec![self.invitation.to_string(), self.invitation_token.clone()]
                }
                Target::PinKey => vec![self.pin_key.clone()],
                Target::Project => vec![self.project.to_string()],
                Target::WebhookEndpoint => vec![self.webhook_endpoint.to_string()],
            })
            .collect()
    }
}

/// A successful call's result.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// `Debug` of the returned value.
    pub(crate) debug: String,
    /// `false` when the operation reports "nothing there" in its `Ok` value rather than as an
    /// error (a delete of a missing pin answers `false`).
    pub(crate) found: bool,
}

/// What [`invoke`] did.
#[derive(Debug)]
pub(crate) enum Invocation {
    /// Called with the principal. `takes` lists the ids it was given from the targets; empty
    /// means the operation takes no id argument (it acts on the principal's tenant itself,
    /// or creates under a name of the caller's choosing).
    Called {
        /// The ids it was given.
        takes: &'static [Target],
        /// Its answer.
        outcome: Result<Reply, SpineError>,
    },
    /// The operation takes no tenant principal, so a tenant principal cannot call it at all
    /// (why, in the text): the types rule a cross-tenant call out.
    NoPrincipal(&'static str),
}

fn reply<T: Debug>(value: T) -> Reply {
    Reply {
        debug: format!("{value:?}"),
        found: true,
    }
}

fn called<T: Debug>(takes: &'static [Target], outcome: Result<T, SpineError>) -> Invocation {
    Invocation::Called {
        takes,
        outcome: outcome.map(reply),
    }
}

const NO_ID: &[Target] = &[];
const PAGE: OffsetPage = OffsetPage {
    limit: 20,
    offset: 0,
};

/// A worker every plan may run.
pub(crate) const WORKER: &str = "business-builder";

/// Calls `operation` once as `principal`, with the ids of `targets` where it takes ids. The
/// other arguments are valid and modest (a role every inviter may grant, a one-hour grace),
/// so that a caller allowed past authorization meets no refusal from the arguments.
pub(crate) async fn invoke(
    spine: &Spine,
    operation: Operation,
    principal: &Principal,
    targets: &Targets,
) -> Invocation {
    use Operation as O;
    use Target::*;
    let p = principal;
    let t = targets;
    match operation {
        O::RunsAdmit => called(
            NO_ID,
            spine
                .admit_run(
                    p,
                    AdmitRun {
                        worker_id: WORKER.into(),
                        task: "plan".into(),
                        input: None,
                        token_estimate: 0,
                    },
                )
                .await,
        ),
        O::RunsComplete => called(&[Run], spine.complete_run(p, t.run, completion()).await),
        O::RunsList => called(NO_ID, spine.list_runs(p, &RunFilter::default(), PAGE).await),
        O::RunsGet => called(&[Run], spine.get_run(p, t.run).await),
        O::RunsHeartbeat => called(&[Run], spine.heartbeat_run(p, t.run).await),
        O::RunsExpireLease => {
            Invocation::NoPrincipal("a platform job: only the spine's lease reaper runs it")
        }
        O::ApiKeysVerify => Invocation::NoPrincipal("the presented key determines the tenant"),
        O::ApiKeysIssue => called(
            NO_ID,
            spine
                .issue_api_key(
                    p,
                    IssueKey {
                        name: "invoked".into(),
                        ..IssueKey::default()
                    },
                )
                .await,
        ),
        O::ApiKeysList => called(NO_ID, spine.list_api_keys(p, true, PAGE).await),
        O::ApiKeysRevoke => called(&[ApiKey], spine.revoke_api_key(p, t.key, "invoked").await),
        O::ApiKeysRotate => called(
            &[ApiKey],
            spine.rotate_api_key(p, t.key, TimeDelta::hours(1)).await,
        ),
        O::ApiKeysUpdate => called(
            &[ApiKey],
            spine
                .update_api_key_metadata(p, t.key, Some(json!({"team": "invoked"})))
                .await,
        ),
        O::ApiKeysVerifyPresented => called(
            NO_ID,
            spine.verify_presented_key(p, "acc_live_not-a-key").await,
        ),
        O::AccountInviteUser => called(
            NO_ID,
            spine
                .invite_user(p, "invoked@example.com", MembershipRole::Viewer)
                .await,
        ),
        O::AccountResendInvitation => called(
            &[Invitation],
            spine.resend_invitation(p, t.invitation).await,
        ),
        O::AccountRevokeInvitation => called(
            &[Invitation],
            spine.revoke_invitation(p, t.invitation).await,
        ),
        O::AccountListInvitations => called(NO_ID, spine.list_invitations(p, None, PAGE).await),
        O::AccountAcceptInvitation => called(
            &[Invitation],
            spine
                .accept_invitation(
                    p.tenant_id,
                    t.invitation,
                    &t.invitation_token,
                    Default::default(),
                    p.request.clone(),
                )
                .await,
        ),
        O::AccountListUsers => called(
            NO_ID,
            spine.list_users(p, UserFilter::default(), PAGE).await,
        ),
        O::AccountListTenantUsers => called(NO_ID, spine.list_tenant_users(p, PAGE).await),
        O::AccountGetUser => called(&[User], spine.get_user(p, t.user).await),
        O::AccountListProjects => called(
            NO_ID,
            spine
                .list_projects(p, ProjectFilters::default(), PAGE)
                .await,
        ),
        O::AccountGetProject => called(&[Project], spine.get_project(p, t.project).await),
        O::AccountChangeRole => called(
            &[User],
            spine.change_role(p, t.user, MembershipRole::Viewer).await,
        ),
        O::AccountRemoveUser => called(&[User], spine.remove_user(p, t.user).await),
        O::AccountTransferOwnership => called(&[User], spine.transfer_ownership(p, t.user).await),
        O::AccountGetProfile => called(NO_ID, spine.get_profile(p).await),
        O::AccountUpdateProfile => called(
            NO_ID,
            spine
                .update_profile(p, ProfileUpdate::default().with_display_name("Invoked"))
                .await,
        ),
        O::SupportOpenTicket => called(
            NO_ID,
            spine
                .open_ticket(
                    p,
                    OpenTicket {
                        subject: "Invoked".into(),
                        description: "By the operation invoker.".into(),
                        category: TicketCategory::Billing,
                        priority: TicketPriority::Low,
                    },
                )
                .await,
        ),
        O::SupportGetContact => called(NO_ID, spine.support_contact(p).await),
        O::SupportListTickets => called(NO_ID, spine.list_tickets(p, None, PAGE).await),
        O::BillingSummary => called(NO_ID, spine.billing_summary(p).await),
        O::BillingInvoices => called(NO_ID, spine.list_invoices(p, PAGE).await),
        O::OnboardingSdkHandshake => {
            called(NO_ID, spine.sdk_handshake(p, "1.2.0", "python", None).await)
        }
        // The key is a name in the caller's own namespace: an upsert creates it there.
        O::PinsUpsert => called(
            NO_ID,
            spine
                .upsert_pin(
                    p,
                    account_spine::memory_pins::SavePin {
                        key: t.pin_key.clone(),
                        value: json!({"by": "invoker"}),
                        source: None,
                        ttl_seconds: None,
                    },
                )
                .await,
        ),
        O::PinsGet => called(&[PinKey], spine.get_pin(p, &t.pin_key).await),
        O::PinsList => called(NO_ID, spine.list_pins(p, None, true, PAGE).await),
        O::PinsDelete => Invocation::Called {
            takes: &[PinKey],
            outcome: spine.delete_pin(p, &t.pin_key).await.map(|deleted| Reply {
                debug: format!("{deleted:?}"),
                found: deleted,
            }),
        },
        O::PinsCleanup => called(NO_ID, spine.cleanup_pins(p).await),
        O::UsageSummary => {
            let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            let end = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
            called(NO_ID, spine.usage_summary(p, start, end).await)
        }
        O::BillingRecordSubscription
        | O::BillingRecordInvoice
        | O::TenantCreate
        | O::TenantChangePlan
        | O::TenantSetLimitOverride
        | O::TenantRemoveLimitOverride
        | O::TenantListLimitOverrides
        | O::PlansCreateVersion
        | O::PlansRetire
        | O::PlansList
        | O::LifecycleTransition
        | O::LifecycleHistory
        | O::OnboardingForceComplete => {
            Invocation::NoPrincipal("a platform operation: only an operator principal calls it")
        }
        O::OperatorKeysCreate | O::OperatorKeysList | O::OperatorKeysRevoke => {
            Invocation::NoPrincipal("platform tooling: only an operator principal calls it")
        }
        O::OperatorKeysVerify => {
            Invocation::NoPrincipal("the presented operator key is the only credential")
        }
        O::OnboardingStatus => called(NO_ID, spine.onboarding_status(p).await),
        O::EntitlementsGet => called(NO_ID, spine.entitlements(p).await),
        O::OnboardingAdvance => called(
            NO_ID,
            spine
                .advance_onboarding(p, OnboardingState::IdentityVerified)
                .await,
        ),
        O::TenantGetQuotas => called(NO_ID, spine.tenant_quotas(p).await),
        O::AuditList => called(
            NO_ID,
            spine
                .list_audit_log(p, AuditFilter::default(), None, 20)
                .await,
        ),
        O::AuditExport => {
            let mut window = AuditFilter::default();
            window.from = Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
            window.to = Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
            let mut export = spine.export_audit_log(p, window);
            called(NO_ID, export.next_chunk().await)
        }
        O::AuditPurge => {
            Invocation::NoPrincipal("a platform job: only the spine's audit purger runs it")
        }
        O::WebhooksCreate => called(
            NO_ID,
            spine
                .create_webhook_endpoint(p, CreateEndpoint::new("https://hooks.example.com/in"))
                .await,
        ),
        O::WebhooksList => called(NO_ID, spine.list_webhook_endpoints(p).await),
        O::WebhooksGet => called(
            &[WebhookEndpoint],
            spine.get_webhook_endpoint(p, t.webhook_endpoint).await,
        ),
        O::WebhooksUpdate => called(
            &[WebhookEndpoint],
            spine
                .update_webhook_endpoint(
                    p,
                    t.webhook_endpoint,
                    UpdateEndpoint::default().with_enabled(false),
                )
                .await,
        ),
        O::WebhooksDelete => called(
            &[WebhookEndpoint],
            spine.delete_webhook_endpoint(p, t.webhook_endpoint).await,
        ),
        O::WebhooksRotateSecret => called(
            &[WebhookEndpoint],
            spine.rotate_webhook_secret(p, t.webhook_endpoint, 60).await,
        ),
        O::WebhooksReplay => {
            let range = Replay::Range {
                from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                to: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            };
            called(
                &[WebhookEndpoint],
                spine
                    .replay_webhook_events(p, t.webhook_endpoint, range)
                    .await,
            )
        }
        O::WebhooksListAttempts => called(
            &[WebhookEndpoint],
            spine
                .list_webhook_attempts(p, t.webhook_endpoint, None, 20)
                .await,
        ),
        O::TenantExpireLimitOverrides => {
            Invocation::NoPrincipal("a platform job: only the reaper's pass reverts overrides")
        }
        O::WebhooksDisable => {
            Invocation::NoPrincipal("a platform job: only webhook delivery disables endpoints")
        }
        O::UsersEraseMe => {
            Invocation::NoPrincipal("a signed-in person erases themselves, in no tenant")
        }
        O::UsersErase => {
            Invocation::NoPrincipal("a platform operation: only an operator principal calls it")
        }
        O::AccountCreateProject | O::AccountRestoreProject => {
            Invocation::NoPrincipal("a signed-in person acts for themselves, in no tenant role")
        }
        O::AccountRenameProject => called(NO_ID, spine.rename_project(p, "Invoked").await),
        O::AccountLeaveProject => called(NO_ID, spine.leave_project(p).await),
        O::AccountDeleteProject => called(NO_ID, spine.delete_project(p).await),
        O::TenantPurge => {
            Invocation::NoPrincipal("a platform job: only the reaper's pass purges projects")
        }
        O::BillingStartTrial => {
            Invocation::NoPrincipal("a platform operation: only an operator principal calls it")
        }
        O::BillingEndTrial | O::BillingEndGrace => {
            Invocation::NoPrincipal("a platform job: only the reaper's pass ends trials and graces")
        }
        // `Operation` is non-exhaustive; every operation of `Operation::ALL` is invoked, so a
        // new one without an arm here fails the run that reaches it.
        other => panic!("no invocation for {}", other.name()),
    }
}

fn completion() -> RunCompletion {
    RunCompletion {
        success: true,
        output: Some(json!({"ok": true})),
        replay_token: None,
        error: None,
        total_tokens: 10,
        total_latency_ms: 100,
        stages_completed: 1,
        recoveries: 0,
        policy_violations: 0,
        cost_cents: 1,
    }
}
