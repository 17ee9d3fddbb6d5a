//! Domain events, delivered to the host's subscriber only after the transaction committed.
//!
//! A use case collects its events from what its transaction returned and publishes them once
//! the commit succeeded, so a retried attempt never publishes twice and a rolled-back one
//! never publishes at all. The one refusal event, [`DomainEvent::QuotaRefused`], reports that
//! nothing was written.

use account_engines::types::{
    ApiKeyId, InvitationId, MembershipRole, PlanCode, RunId, TenantId, TenantStatus, UserId,
    WebhookEndpointId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Mutex;

/// A one-time secret carried by an event for the host to deliver (an invitation token). Its
/// `Debug` output is redacted, so logging an event never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeToken(String);

impl OneTimeToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// The token of an event read back without its sealed part (empty).
    fn absent() -> Self {
        Self(String::new())
    }

    /// The token text, for delivery (a link in an email); never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeToken(<redacted>)")
    }
}

/// Something that happened, for the host to react to (mail, webhooks, metrics).
///
/// Serialized as `{"type": "<event type>", "data": {...}}` ([`DomainEvent::event_type`]);
/// webhook payloads carry the same `type` and `data`. A one-time token is never serialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum DomainEvent {
    /// A run was admitted.
    #[serde(rename = "run.admitted")]
    RunAdmitted {
        /// Tenant.
        tenant_id: TenantId,
        /// Run.
        run_id: RunId,
    },
    /// A run finished.
    #[serde(rename = "run.completed")]
    RunCompleted {
        /// Tenant.
        tenant_id: TenantId,
        /// Run.
        run_id: RunId,
        /// Whether it succeeded.
        success: bool,
    },
    /// A quota refused a request (nothing was written).
    #[serde(rename = "quota.refused")]
    QuotaRefused {
        /// Tenant.
        tenant_id: TenantId,
        /// The refusing quota's code, e.g. `quota_runs_per_day`.
        #[serde(deserialize_with = "quota_code")]
        quota: &'static str,
    },
    /// A committed operation took a usage counter across a threshold of its limit: the soft
    /// limit of the tenant's plan version (`warn_at_percent`; 80 % on the built-in plans) and
    /// 100 %. Each crossing is reported once per period, by the operation that made it.
    #[serde(rename = "quota.threshold_crossed")]
    QuotaThresholdCrossed {
        /// Tenant.
        tenant_id: TenantId,
        /// The quota's code, as in [`DomainEvent::QuotaRefused`]: `quota_runs_per_day` or
        /// `quota_tokens_per_month`.
        #[serde(deserialize_with = "quota_code")]
        quota: &'static str,
        /// The threshold crossed, in percent of the limit.
        percent: u8,
        /// The counter after the operation.
        used: i64,
        /// The limit.
        limit: i64,
    },
    /// An API key was issued.
    #[serde(rename = "api_key.issued")]
    ApiKeyIssued {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
    },
    /// An API key was rotated: a new key, the old one working until its grace ends.
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated {
        /// Tenant.
        tenant_id: TenantId,
        /// The rotated key.
        previous_key_id: ApiKeyId,
        /// The key replacing it.
        new_key_id: ApiKeyId,
        /// When the rotated key stops working.
        previous_expires_at: Option<DateTime<Utc>>,
    },
    /// An API key was revoked.
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
    },
    /// An invitation was created or resent with a new token: the host delivers the token to
    /// the invitee (the spine never sends mail).
    #[serde(rename = "invitation.created")]
    InvitationCreated {
        /// Tenant.
        tenant_id: TenantId,
        /// Invitation.
        invitation_id: InvitationId,
        /// The invitee's (normalised) email.
        email: String,
        /// The role granted on acceptance.
        role: MembershipRole,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
        /// The one-time token to deliver (redacted in `Debug`, never serialized: the outbox
        /// keeps it sealed beside the event).
        #[serde(skip, default = "OneTimeToken::absent")]
        token: OneTimeToken,
        /// Whether this is a resend (the previous token no longer works).
        resent: bool,
    },
    /// An invitation was accepted: the invitee is a member now.
    #[serde(rename = "invitation.accepted")]
    InvitationAccepted {
        /// Tenant.
        tenant_id: TenantId,
        /// Invitation.
        invitation_id: InvitationId,
        /// The new member.
        user_id: UserId,
        /// Their role.
        role: MembershipRole,
    },
    /// A member's role changed.
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged {
        /// Tenant.
        tenant_id: TenantId,
        /// The member.
        user_id: UserId,
        /// Role before.
        from: MembershipRole,
        /// Role after.
        to: MembershipRole,
        /// Who changed it.
        changed_by: UserId,
    },
    /// A member was removed (or left).
    #[serde(rename = "member.removed")]
    MemberRemoved {
        /// Tenant.
        tenant_id: TenantId,
        /// The former member.
        user_id: UserId,
        /// The role they had.
        role: MembershipRole,
        /// Who removed them (themselves when they left).
        removed_by: UserId,
    },
    /// Ownership moved to another member; the previous owner is an admin now.
    #[serde(rename = "tenant.ownership_transferred")]
    OwnershipTransferred {
        /// Tenant.
        tenant_id: TenantId,
        /// The previous owner.
        from: UserId,
        /// The new owner.
        to: UserId,
    },
    /// A tenant changed lifecycle status.
    #[serde(rename = "tenant.status_changed")]
    TenantStatusChanged {
        /// Tenant.
        tenant_id: TenantId,
        /// Before.
        from: TenantStatus,
        /// After.
        to: TenantStatus,
    },
    /// A tenant was suspended (published with its [`DomainEvent::TenantStatusChanged`]), with
    /// the operator's reason, for the host to tell the tenant's owners.
    #[serde(rename = "tenant.suspended")]
    TenantSuspended {
        /// Tenant.
        tenant_id: TenantId,
        /// Why.
        reason: String,
    },
    /// A webhook endpoint was disabled by delivery: its retry schedule ran out
    /// (`reason: "failing"`) or it answered 410 Gone (`"gone"`). Its own deliveries stop, so
    /// this event reaches the tenant's other endpoints and the host.
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled {
        /// Tenant.
        tenant_id: TenantId,
        /// The endpoint.
        endpoint_id: WebhookEndpointId,
        /// `failing` or `gone`.
        reason: String,
    },
    /// A signed-in person created a project and became its owner.
    #[serde(rename = "project.created")]
    ProjectCreated {
        /// Tenant.
        tenant_id: TenantId,
        /// Its owner.
        owner: UserId,
    },
    /// A project was renamed.
    #[serde(rename = "project.renamed")]
    ProjectRenamed {
        /// Tenant.
        tenant_id: TenantId,
        /// The name before.
        from: String,
        /// The name after.
        to: String,
    },
    /// An owner deleted the project: it is gone to every request, restorable until
    /// `purge_after`, then purged (the purge publishes nothing: the tenant's event stream is
    /// among what it removes).
    #[serde(rename = "project.deleted")]
    ProjectDeleted {
        /// Tenant.
        tenant_id: TenantId,
        /// The owner who deleted it.
        deleted_by: UserId,
        /// From when the purge may remove it.
        purge_after: DateTime<Utc>,
    },
    /// An owner restored the deleted project within its window.
    #[serde(rename = "project.restored")]
    ProjectRestored {
        /// Tenant.
        tenant_id: TenantId,
        /// The owner who restored it.
        restored_by: UserId,
    },
    /// A member was erased: they left the tenant, and their personal data everywhere is
    /// replaced by `pseudonym` (hosts erase their own copies of the person).
    #[serde(rename = "user.erased")]
    UserErased {
        /// Tenant.
        tenant_id: TenantId,
        /// The erased user (the id stays; it stands for the pseudonym now).
        user_id: UserId,
        /// The pseudonym their rows carry.
        pseudonym: String,
    },
    /// A trial of a paid plan started (or was changed while still a trial); the tenant is on
    /// the plan for the trial.
    #[serde(rename = "subscription.trial_started")]
    SubscriptionTrialStarted {
        /// Tenant.
        tenant_id: TenantId,
        /// The billing system's id of the subscription.
        external_id: String,
        /// The plan tried.
        plan: PlanCode,
        /// When the trial ends.
        trial_ends_at: DateTime<Utc>,
        /// Whether it becomes the paid plan at its end.
        convert_to_paid: bool,
    },
    /// A trial ran out (published by the reaper's pass with
    /// [`DomainEvent::SubscriptionConverted`] or [`DomainEvent::SubscriptionGraceStarted`]).
    #[serde(rename = "subscription.trial_ended")]
    SubscriptionTrialEnded {
        /// Tenant.
        tenant_id: TenantId,
        /// The billing system's id of the subscription.
        external_id: String,
        /// Whether it became the paid plan.
        converted: bool,
    },
    /// The subscription is active on its paid plan: its trial converted, or a payment was
    /// reported during its grace.
    #[serde(rename = "subscription.converted")]
    SubscriptionConverted {
        /// Tenant.
        tenant_id: TenantId,
        /// The billing system's id of the subscription.
        external_id: String,
        /// The paid plan.
        plan: PlanCode,
    },
    /// A trial ended unpaid: the tenant keeps its plan until `grace_ends_at`, then is
    /// suspended unless a payment is reported.
    #[serde(rename = "subscription.grace_started")]
    SubscriptionGraceStarted {
        /// Tenant.
        tenant_id: TenantId,
        /// The billing system's id of the subscription.
        external_id: String,
        /// When the grace ends.
        grace_ends_at: DateTime<Utc>,
    },
    /// A grace ended unpaid: the subscription is cancelled (the tenant's suspension is
    /// published beside it, as [`DomainEvent::TenantSuspended`]).
    #[serde(rename = "subscription.grace_ended")]
    SubscriptionGraceEnded {
        /// Tenant.
        tenant_id: TenantId,
        /// The billing system's id of the subscription.
        external_id: String,
    },
}

/// The quota codes events name, as the static strings the engines refuse with.
const QUOTA_CODES: [&str; 6] = [
    "quota_runs_per_day",
    "quota_tokens_per_month",
    "quota_workers",
    "quota_concurrent_runs",
    "quota_key_concurrent_runs",
    "quota_pins",
];

/// Reads a quota code back as its static string (an unknown one is an error: it was not
/// written by this crate).
fn quota_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    let code = String::deserialize(deserializer)?;
    QUOTA_CODES
        .iter()
        .find(|known| **known == code)
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("unknown quota code {code:?}")))
}

impl DomainEvent {
    /// The event's type, as webhooks and the outbox name it: `run.admitted`,
    /// `api_key.revoked`, ... (the `type` of its serialized form).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RunAdmitted { .. } => "run.admitted",
            Self::RunCompleted { .. } => "run.completed",
            Self::QuotaRefused { .. } => "quota.refused",
            Self::QuotaThresholdCrossed { .. } => "quota.threshold_crossed",
            Self::ApiKeyIssued { .. } => "api_key.issued",
            Self::ApiKeyRotated { .. } => "api_key.rotated",
            Self::ApiKeyRevoked { .. } => "api_key.revoked",
            Self::InvitationCreated { .. } => "invitation.created",
            Self::InvitationAccepted { .. } => "invitation.accepted",
            Self::MemberRoleChanged { .. } => "member.role_changed",
            Self::MemberRemoved { .. } => "member.removed",
            Self::OwnershipTransferred { .. } => "tenant.ownership_transferred",
            Self::TenantStatusChanged { .. } => "tenant.status_changed",
            Self::TenantSuspended { .. } => "tenant.suspended",
            Self::WebhookEndpointDisabled { .. } => "webhook_endpoint.disabled",
            Self::ProjectCreated { .. } => "project.created",
            Self::ProjectRenamed { .. } => "project.renamed",
            Self::ProjectDeleted { .. } => "project.deleted",
            Self::ProjectRestored { .. } => "project.restored",
            Self::UserErased { .. } => "user.erased",
            Self::SubscriptionTrialStarted { .. } => "subscription.trial_started",
            Self::SubscriptionTrialEnded { .. } => "subscription.trial_ended",
            Self::SubscriptionConverted { .. } => "subscription.converted",
            Self::SubscriptionGraceStarted { .. } => "subscription.grace_started",
            Self::SubscriptionGraceEnded { .. } => "subscription.grace_ended",
        }
    }

    /// Every event type, for endpoints' subscriptions.
    pub const TYPES: &'static [&'static str] = &[
        "run.admitted",
        "run.completed",
        "quota.refused",
        "quota.threshold_crossed",
        "api_key.issued",
        "api_key.rotated",
        "api_key.revoked",
        "invitation.created",
        "invitation.accepted",
        "member.role_changed",
        "member.removed",
        "tenant.ownership_transferred",
        "tenant.status_changed",
        "tenant.suspended",
        "webhook_endpoint.disabled",
        "project.created",
        "project.renamed",
        "project.deleted",
        "project.restored",
        "user.erased",
        "subscription.trial_started",
        "subscription.trial_ended",
        "subscription.converted",
        "subscription.grace_started",
        "subscription.grace_ended",
    ];

    /// The tenant the event belongs to.
    pub fn tenant_id(&self) -> TenantId {
        match self {
            Self::RunAdmitted { tenant_id, .. }
            | Self::RunCompleted { tenant_id, .. }
            | Self::QuotaRefused { tenant_id, .. }
            | Self::QuotaThresholdCrossed { tenant_id, .. }
            | Self::ApiKeyIssued { tenant_id, .. }
            | Self::ApiKeyRotated { tenant_id, .. }
            | Self::ApiKeyRevoked { tenant_id, .. }
            | Self::InvitationCreated { tenant_id, .. }
            | Self::InvitationAccepted { tenant_id, .. }
            | Self::MemberRoleChanged { tenant_id, .. }
            | Self::MemberRemoved { tenant_id, .. }
            | Self::OwnershipTransferred { tenant_id, .. }
            | Self::TenantStatusChanged { tenant_id, .. }
            | Self::TenantSuspended { tenant_id, .. }
            | Self::WebhookEndpointDisabled { tenant_id, .. }
            | Self::ProjectCreated { tenant_id, .. }
            | Self::ProjectRenamed { tenant_id, .. }
            | Self::ProjectDeleted { tenant_id, .. }
            | Self::ProjectRestored { tenant_id, .. }
            | Self::UserErased { tenant_id, .. }
            | Self::SubscriptionTrialStarted { tenant_id, .. }
            | Self::SubscriptionTrialEnded { tenant_id, .. }
            | Self::SubscriptionConverted { tenant_id, .. }
            | Self::SubscriptionGraceStarted { tenant_id, .. }
            | Self::SubscriptionGraceEnded { tenant_id, .. } => *tenant_id,
        }
    }

    /// The one-time secret the event carries, if any (kept sealed in the outbox).
    pub(crate) fn one_time_token(&self) -> Option<&OneTimeToken> {
        match self {
            Self::InvitationCreated { token, .. } => Some(token),
            _ => None,
        }
    }

    /// Puts back the one-time secret an event was stored without.
    pub(crate) fn restore_token(&mut self, text: String) {
        if let Self::InvitationCreated { token, .. } = self {
            *token = OneTimeToken(text);
        }
    }
}

/// Receives events after commit. Implementations must be quick or hand off (a queue).
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Called once per event, in commit order, never for a rolled-back operation.
    fn publish(&self, event: &DomainEvent);
}

/// Drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _: &DomainEvent) {}
}

/// Keeps every event (tests, and hosts that poll).
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Vec<DomainEvent>>);

impl RecordedEvents {
    /// Everything published so far.
    pub fn all(&self) -> Vec<DomainEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl EventSink for RecordedEvents {
    fn publish(&self, event: &DomainEvent) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
    }
}

/// The thresholds a counter is watched at, in percent of its limit: the tenant's plan
/// version's soft limit (`warn_at`, 1 to 99; 80 on the built-in plans), then the limit itself.
/// Counters only rise within their period, so each crossing happens once per period.
fn quota_thresholds(warn_at: Option<i32>) -> Vec<u8> {
    let warn = warn_at
        .and_then(|percent| u8::try_from(percent).ok())
        .filter(|percent| (1..100).contains(percent));
    warn.into_iter().chain([100]).collect()
}

/// The [`DomainEvent::QuotaThresholdCrossed`] events of a counter that went from `before` to
/// `after` against `limit` (none for a limit of zero or less, or a counter that did not rise),
/// at the plan's soft limit `warn_at` (percent) and at the limit.
pub(crate) fn thresholds_crossed(
    tenant_id: TenantId,
    quota: &'static str,
    (before, after): (i64, i64),
    limit: i64,
    warn_at: Option<i32>,
) -> Vec<DomainEvent> {
    if limit <= 0 {
        return Vec::new();
    }
    quota_thresholds(warn_at)
        .iter()
        .filter(|&&percent| {
            let mark = i128::from(limit) * i128::from(percent);
            i128::from(before) * 100 < mark && i128::from(after) * 100 >= mark
        })
        .map(|&percent| DomainEvent::QuotaThresholdCrossed {
            tenant_id,
            quota,
            percent,
            used: after,
            limit,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percents(before: i64, after: i64, limit: i64) -> Vec<u8> {
        thresholds_crossed(TenantId::new(), "q", (before, after), limit, Some(80))
            .into_iter()
            .filter_map(|e| match e {
                DomainEvent::QuotaThresholdCrossed { percent, .. } => Some(percent),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_threshold_is_crossed_once_on_the_way_up() {
        assert_eq!(percents(3, 4, 5), vec![80]);
        assert_eq!(percents(4, 5, 5), vec![100]);
        assert_eq!(percents(0, 5, 5), vec![80, 100]);
        assert_eq!(percents(5, 6, 5), Vec::<u8>::new(), "already past");
        assert_eq!(percents(78, 79, 100), Vec::<u8>::new());
        assert_eq!(percents(79, 80, 100), vec![80]);
        assert_eq!(percents(0, 10, 0), Vec::<u8>::new(), "no limit");
        assert_eq!(percents(0, i64::MAX, i64::MAX), vec![80, 100]);
    }

    #[test]
    fn the_soft_limit_is_the_plans() {
        let at = |warn| {
            thresholds_crossed(TenantId::new(), "q", (0, 100), 100, warn)
                .into_iter()
                .filter_map(|e| match e {
                    DomainEvent::QuotaThresholdCrossed { percent, .. } => Some(percent),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(at(Some(50)), vec![50, 100]);
        assert_eq!(at(None), vec![100], "no soft limit: the limit alone");
        assert_eq!(at(Some(100)), vec![100], "not a soft limit");
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = OneTimeToken::new("inv_secret");
        assert_eq!(format!("{token:?}"), "OneTimeToken(<redacted>)");
        assert_eq!(token.expose(), "inv_secret");
    }
}
