//! The operations the spine offers: stable names for audit rows, traces and metrics, and the
//! authority each one needs. A test enumerates them all.

use account_engines::types::MembershipRole;

/// Which tenant capability an operation needs (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// Reading (terminated and archived tenants cannot).
    Read,
    /// Writing (suspended tenants cannot).
    Write,
    /// Running workers through the SDK.
    SdkExecution,
    /// Issuing API keys.
    NewApiKeys,
    /// Platform operations work whatever the tenant's status.
    Any,
}

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authority {
    /// A member with at least this role, or a key holding this permission.
    Tenant {
        /// Lowest role allowed.
        min_role: MembershipRole,
        /// Permission a key needs (`run:*` grants every `run:...`).
        permission: &'static str,
    },
    /// Platform operators only.
    Operator,
    /// The spine itself, in a platform job (the lease reaper): no principal may call it.
    System,
    /// Whoever holds a one-time token (invitation acceptance): no principal.
    Token,
    /// A signed-in person acting for themselves, in no tenant's role (creating a project,
    /// restoring one they own): the use case checks what it needs of them.
    Person,
}

macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, audit: $audit:expr, authority: $authority:expr, capability: $capability:expr; )+) => {
        /// Every operation of the spine.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $( $(#[$doc])* $variant, )+
        }

        impl Operation {
            /// All operations, for enumeration (docs, metrics, tests).
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),+];

            /// Stable dotted name, e.g. `runs.admit`.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$variant => $name,)+ }
            }

            /// The audit action written for a successful call, `None` for reads.
            pub fn audit_action(self) -> Option<&'static str> {
                match self { $(Operation::$variant => $audit,)+ }
            }

            /// Whether it changes anything (and so runs in a write transaction and is
            /// audited): every operation with an audit action.
            pub fn writes(self) -> bool {
                self.audit_action().is_some()
            }

            /// Who may call it.
            pub fn authority(self) -> Authority {
                match self { $(Operation::$variant => $authority,)+ }
            }

            /// What the tenant must allow.
            pub fn capability(self) -> Capability {
                match self { $(Operation::$variant => $capability,)+ }
            }

            /// A span for one call, named by [`Operation::name`] (span names must be static,
            /// so each operation has its own call site). The caller records the empty fields;
            /// no field ever holds a secret.
            pub(crate) fn span(self) -> tracing::Span {
                match self {
                    $(Operation::$variant => tracing::info_span!(
                        $name,
                        operation = $name,
                        request_id = tracing::field::Empty,
                        tenant_id = tracing::field::Empty,
                        actor = tracing::field::Empty,
                        error_code = tracing::field::Empty,
                    ),)+
                }
            }
        }
    };
}

const fn tenant(min_role: MembershipRole, permission: &'static str) -> Authority {
    Authority::Tenant {
        min_role,
        permission,
    }
}

operations! {
    /// Start a run.
    RunsAdmit = "runs.admit", audit: Some("run.admitted"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::SdkExecution;
    /// Record a run's results.
    RunsComplete = "runs.complete", audit: Some("run.completed"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Any;
    /// List runs.
    RunsList = "runs.list", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:runs"), capability: Capability::Read;
    /// Read one run.
    RunsGet = "runs.get", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:runs"), capability: Capability::Read;
    /// Renew a run's lease (its worker's heartbeat); audited only when it starts the run.
    RunsHeartbeat = "runs.heartbeat", audit: Some("run.started"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Any;
    /// Expire a run whose lease lapsed (the reaper).
    RunsExpireLease = "runs.expire_lease", audit: Some("run.lease_expired"),
        authority: Authority::System, capability: Capability::Any;
    /// Verify an API key (builds the principal).
    ApiKeysVerify = "api_keys.verify", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Any;
    /// Issue an API key.
    ApiKeysIssue = "api_keys.issue", audit: Some("api_key.created"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::NewApiKeys;
    /// List API keys.
    ApiKeysList = "api_keys.list", audit: None,
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Read;
    /// Revoke an API key.
    ApiKeysRevoke = "api_keys.revoke", audit: Some("api_key.revoked"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Any;
    /// Rotate an API key.
    ApiKeysRotate = "api_keys.rotate", audit: Some("api_key.rotated"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::NewApiKeys;
    /// Replace an API key's metadata.
    ApiKeysUpdate = "api_keys.update", audit: Some("api_key.updated"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Write;
    /// Verify a key presented to one of the host's services (a service credential asks).
    ApiKeysVerifyPresented = "api_keys.verify_presented", audit: None,
        authority: tenant(MembershipRole::Owner, "keys:verify"), capability: Capability::Read;
    /// Invite a user.
    AccountInviteUser = "account.invite_user", audit: Some("invitation.created"),
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Write;
    /// Resend an invitation.
    AccountResendInvitation = "account.resend_invitation", audit: Some("invitation.resent"),
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Write;
    /// Revoke an invitation.
    AccountRevokeInvitation = "account.revoke_invitation", audit: Some("invitation.revoked"),
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Write;
    /// List invitations.
    AccountListInvitations = "account.list_invitations", audit: None,
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Read;
    /// Accept an invitation (the token is the authority).
    AccountAcceptInvitation = "account.accept_invitation", audit: Some("invitation.accepted"),
        authority: Authority::Token, capability: Capability::Write;
    /// List the tenant's users.
    AccountListUsers = "account.list_users", audit: None,
        authority: tenant(MembershipRole::Viewer, "users:read"), capability: Capability::Read;
    /// List the tenant's members, oldest membership first.
    AccountListTenantUsers = "account.list_tenant_users", audit: None,
        authority: tenant(MembershipRole::Viewer, "users:read"), capability: Capability::Read;
    /// Read one user of the tenant.
    AccountGetUser = "account.get_user", audit: None,
        authority: tenant(MembershipRole::Viewer, "users:read"), capability: Capability::Read;
    /// List the projects (tenants) the caller is a member of.
    AccountListProjects = "account.list_projects", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Read one project (tenant) the caller is a member of.
    AccountGetProject = "account.get_project", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Change a member's role.
    AccountChangeRole = "account.change_role", audit: Some("membership.role_changed"),
        authority: tenant(MembershipRole::Owner, "users:manage"), capability: Capability::Write;
    /// Remove a member.
    AccountRemoveUser = "account.remove_user", audit: Some("membership.removed"),
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Write;
    /// Transfer ownership.
    AccountTransferOwnership = "account.transfer_ownership", audit: Some("membership.ownership_transferred"),
        authority: tenant(MembershipRole::Owner, "users:manage"), capability: Capability::Write;
    /// Read one's profile.
    AccountGetProfile = "account.get_profile", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Update one's profile.
    AccountUpdateProfile = "account.update_profile", audit: Some("user.profile_updated"),
        authority: tenant(MembershipRole::Viewer, "profile:write"), capability: Capability::Write;
    /// Open a support ticket.
    SupportOpenTicket = "support.open_ticket", audit: Some("support_ticket.created"),
        authority: tenant(MembershipRole::Viewer, "support:write"), capability: Capability::Read;
    /// List support tickets.
    SupportListTickets = "support.list_tickets", audit: None,
        authority: tenant(MembershipRole::Viewer, "support:read"), capability: Capability::Read;
    /// Read where customers reach support (platform configuration, so in any tenant status).
    SupportGetContact = "support.get_contact", audit: None,
        authority: tenant(MembershipRole::Viewer, "support:read"), capability: Capability::Any;
    /// Read the billing summary.
    BillingSummary = "billing.summary", audit: None,
        authority: tenant(MembershipRole::Admin, "billing:read"), capability: Capability::Read;
    /// List invoices.
    BillingInvoices = "billing.invoices", audit: None,
        authority: tenant(MembershipRole::Admin, "billing:read"), capability: Capability::Read;
    /// Record an SDK handshake (attestation).
    OnboardingSdkHandshake = "onboarding.sdk_handshake", audit: Some("sdk.attested"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Write;
    /// Save a memory pin.
    PinsUpsert = "memory_pins.upsert", audit: Some("memory_pin.saved"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Write;
    /// Read a memory pin.
    PinsGet = "memory_pins.get", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// List memory pins.
    PinsList = "memory_pins.list", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Delete a memory pin.
    PinsDelete = "memory_pins.delete", audit: Some("memory_pin.deleted"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Write;
    /// Remove the tenant's expired pins.
    PinsCleanup = "memory_pins.cleanup", audit: Some("memory_pin.cleanup"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Any;
    /// Usage per meter over a period.
    UsageSummary = "usage.summary", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:usage"), capability: Capability::Read;
    /// Record a subscription change (billing integration).
    BillingRecordSubscription = "billing.record_subscription", audit: Some("subscription.recorded"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Record an invoice (billing integration).
    BillingRecordInvoice = "billing.record_invoice", audit: Some("invoice.recorded"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Create a tenant with its first owner (bootstrap).
    TenantCreate = "tenant.create", audit: Some("tenant.created"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Change a tenant's plan.
    TenantChangePlan = "tenant.change_plan", audit: Some("tenant.plan_changed"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Transition a tenant's lifecycle.
    LifecycleTransition = "lifecycle.transition", audit: Some("tenant.lifecycle_changed"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Read a tenant's lifecycle history.
    LifecycleHistory = "lifecycle.history", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Read onboarding status.
    OnboardingStatus = "onboarding.status", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Advance onboarding with evidence.
    OnboardingAdvance = "onboarding.advance", audit: Some("onboarding.advanced"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Write;
    /// Complete onboarding without evidence.
    OnboardingForceComplete = "onboarding.force_complete", audit: Some("onboarding.force_completed"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Verify a platform operator key (builds the operator principal).
    OperatorKeysVerify = "operator_keys.verify", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Create a platform operator key (platform tooling only).
    OperatorKeysCreate = "operator_keys.create", audit: Some("operator_key.created"),
        authority: Authority::Operator, capability: Capability::Any;
    /// List platform operator keys.
    OperatorKeysList = "operator_keys.list", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Revoke a platform operator key.
    OperatorKeysRevoke = "operator_keys.revoke", audit: Some("operator_key.revoked"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Read the tenant's quotas and current counters.
    TenantGetQuotas = "tenant.get_quotas", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Read a page of the tenant's audit log.
    AuditList = "audit.list", audit: None,
        authority: tenant(MembershipRole::Admin, "audit:read"), capability: Capability::Read;
    /// Read one chunk of an export of the tenant's audit log.
    AuditExport = "audit.export", audit: None,
        authority: tenant(MembershipRole::Admin, "audit:read"), capability: Capability::Read;
    /// Delete a batch of the tenant's audit rows past its retention (the purge job).
    AuditPurge = "audit.purge", audit: Some("audit.purged"),
        authority: Authority::System, capability: Capability::Any;
    /// Set a tenant's override of one of its plan's limits (platform operators).
    TenantSetLimitOverride = "tenant.set_limit_override", audit: Some("tenant.limit_overridden"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Remove a tenant's override of a limit (platform operators).
    TenantRemoveLimitOverride = "tenant.remove_limit_override", audit: Some("tenant.limit_override_removed"),
        authority: Authority::Operator, capability: Capability::Any;
    /// List a tenant's limit overrides (platform operators).
    TenantListLimitOverrides = "tenant.list_limit_overrides", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Revert a tenant's expired limit overrides (the reaper's pass).
    TenantExpireLimitOverrides = "tenant.expire_limit_overrides", audit: Some("tenant.limit_override_expired"),
        authority: Authority::System, capability: Capability::Any;
    /// Create a plan, or the next version of one (platform operators).
    PlansCreateVersion = "plans.create_version", audit: Some("plan.version_created"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Retire a plan version: it takes no new tenants (platform operators).
    PlansRetire = "plans.retire", audit: Some("plan.retired"),
        authority: Authority::Operator, capability: Capability::Any;
    /// List every version of every plan (platform operators).
    PlansList = "plans.list", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Read the tenant's plan, entitlements and limits with their usage.
    EntitlementsGet = "entitlements.get", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Register a webhook endpoint (its secret is shown once).
    WebhooksCreate = "webhooks.create", audit: Some("webhook_endpoint.created"),
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Write;
    /// List the tenant's webhook endpoints.
    WebhooksList = "webhooks.list", audit: None,
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Read;
    /// Read one webhook endpoint.
    WebhooksGet = "webhooks.get", audit: None,
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Read;
    /// Change a webhook endpoint (URL, event types, description, enabled).
    WebhooksUpdate = "webhooks.update", audit: Some("webhook_endpoint.updated"),
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Write;
    /// Delete a webhook endpoint.
    WebhooksDelete = "webhooks.delete", audit: Some("webhook_endpoint.deleted"),
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Write;
    /// Give a webhook endpoint a new secret (the old one signs too for a grace period).
    WebhooksRotateSecret = "webhooks.rotate_secret", audit: Some("webhook_endpoint.secret_rotated"),
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Write;
    /// Send one event, or every event of a time range, to an endpoint again.
    WebhooksReplay = "webhooks.replay", audit: Some("webhook_endpoint.replay_requested"),
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Write;
    /// Read a page of a webhook endpoint's delivery attempts.
    WebhooksListAttempts = "webhooks.list_attempts", audit: None,
        authority: tenant(MembershipRole::Admin, "webhooks:manage"), capability: Capability::Read;
    /// Disable an endpoint whose retry schedule ran out or that answered 410 (delivery).
    WebhooksDisable = "webhooks.disable", audit: Some("webhook_endpoint.disabled"),
        authority: Authority::System, capability: Capability::Any;
    /// Create a project of one's own (a signed-in person; they become its owner).
    AccountCreateProject = "account.create_project", audit: Some("project.created"),
        authority: Authority::Person, capability: Capability::Any;
    /// Rename the project.
    AccountRenameProject = "account.rename_project", audit: Some("project.renamed"),
        authority: tenant(MembershipRole::Admin, "users:manage"), capability: Capability::Write;
    /// Leave the project (not as its last owner).
    AccountLeaveProject = "account.leave_project", audit: Some("membership.left"),
        authority: tenant(MembershipRole::Viewer, "profile:write"), capability: Capability::Any;
    /// Delete the project softly (restorable within the window).
    AccountDeleteProject = "account.delete_project", audit: Some("project.deleted"),
        authority: tenant(MembershipRole::Owner, "users:manage"), capability: Capability::Any;
    /// Restore a deleted project within its window (a signed-in owner).
    AccountRestoreProject = "account.restore_project", audit: Some("project.restored"),
        authority: Authority::Person, capability: Capability::Any;
    /// Remove a batch of a deleted project's rows once its window closed (the reaper's pass).
    TenantPurge = "tenant.purge", audit: Some("project.purged"),
        authority: Authority::System, capability: Capability::Any;
    /// Erase one's own account: personal data pseudonymised everywhere (a signed-in person).
    UsersEraseMe = "account.erase_me", audit: Some("user.erased"),
        authority: Authority::Person, capability: Capability::Any;
    /// Erase a user's account (platform operators).
    UsersErase = "account.erase_user", audit: Some("user.erased_by_operator"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Start a trial of a paid plan (or change one still in its trial); the tenant moves to
    /// the plan (platform operators, the billing integration).
    BillingStartTrial = "billing.start_trial", audit: Some("subscription.trial_started"),
        authority: Authority::Operator, capability: Capability::Any;
    /// End a trial that ran out: active on the paid plan, or grace (the reaper's pass).
    BillingEndTrial = "billing.end_trial", audit: Some("subscription.trial_ended"),
        authority: Authority::System, capability: Capability::Any;
    /// End a grace that ran out unpaid: cancelled, tenant suspended (the reaper's pass).
    BillingEndGrace = "billing.end_grace", audit: Some("subscription.grace_ended"),
        authority: Authority::System, capability: Capability::Any;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_a_unique_name_an_authority_and_writes_are_audited() {
        let mut names = HashSet::new();
        for op in Operation::ALL {
            assert!(names.insert(op.name()), "duplicate name {}", op.name());
            let (area, verb) = op.name().split_once('.').expect("dotted name");
            assert!(!area.is_empty() && !verb.is_empty());
            // Reads are named by their verb; everything else writes and must be audited.
            let read_only = verb.starts_with("list")
                || verb.starts_with("get")
                || verb.starts_with("verify")
                || ["status", "history", "summary", "invoices", "export"].contains(&verb);
            assert_eq!(op.audit_action().is_none(), read_only, "{}", op.name());
        }
    }

    #[test]
    fn every_permission_the_table_names_is_in_the_key_vocabulary_and_grantable() {
        use account_engines::api_keys::Permission;
        use account_engines::api_keys::permissions::role_may_grant;
        for op in Operation::ALL {
            if let Authority::Tenant {
                min_role,
                permission,
            } = op.authority()
            {
                let parsed = Permission::parse(permission).unwrap_or_else(|_| {
                    panic!("{}: `{permission}` is not a key permission", op.name())
                });
                assert!(
                    role_may_grant(min_role, &parsed) || permission == "keys:manage",
                    "{}: the {min_role} role cannot grant `{permission}`",
                    op.name()
                );
            }
        }
    }
}
