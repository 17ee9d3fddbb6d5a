//! Domain events, delivered to the host's subscriber only after the transaction committed.
//!
//! A use case collects its events from what its transaction returned and publishes them once
//! the commit succeeded, so a retried attempt never publishes twice and a rolled-back one
//! never publishes at all. The one refusal event, [`DomainEvent::QuotaRefused`], reports that
//! nothing was written.

use account_engines::types::{
    ApiKeyId, InvitationId, MembershipRole, RunId, TenantId, TenantStatus, UserId,
};
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// A one-time secret carried by an event for the host to deliver (an invitation token). Its
/// `Debug` output is redacted, so logging an event never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeToken(String);

impl OneTimeToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.to_owned())
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
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainEvent {
    /// A run was admitted.
    RunAdmitted {
        /// Tenant.
        tenant_id: TenantId,
        /// Run.
        run_id: RunId,
    },
    /// A run finished.
    RunCompleted {
        /// Tenant.
        tenant_id: TenantId,
        /// Run.
        run_id: RunId,
        /// Whether it succeeded.
        success: bool,
    },
    /// A quota refused a request (nothing was written).
    QuotaRefused {
        /// Tenant.
        tenant_id: TenantId,
        /// The refusing quota's code, e.g. `quota_runs_per_day`.
        quota: &'static str,
    },
    /// A committed operation took a usage counter across a threshold of its limit (80 % and
    /// 100 %): each crossing is reported once, by the operation that made it.
    QuotaThresholdCrossed {
        /// Tenant.
        tenant_id: TenantId,
        /// The quota's code, as in [`DomainEvent::QuotaRefused`]: `quota_runs_per_day` or
        /// `quota_tokens_per_month`.
        quota: &'static str,
        /// The threshold crossed, in percent of the limit.
        percent: u8,
        /// The counter after the operation.
        used: i64,
        /// The limit.
        limit: i64,
    },
    /// An API key was issued.
    ApiKeyIssued {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
    },
    /// An API key was rotated: a new key, the old one working until its grace ends.
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
    ApiKeyRevoked {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
    },
    /// An invitation was created or resent with a new token: the host delivers the token to
    /// the invitee (the spine never sends mail).
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
        /// The one-time token to deliver (redacted in `Debug`).
        token: OneTimeToken,
        /// Whether this is a resend (the previous token no longer works).
        resent: bool,
    },
    /// An invitation was accepted: the invitee is a member now.
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
    OwnershipTransferred {
        /// Tenant.
        tenant_id: TenantId,
        /// The previous owner.
        from: UserId,
        /// The new owner.
        to: UserId,
    },
    /// A tenant changed lifecycle status.
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
    TenantSuspended {
        /// Tenant.
        tenant_id: TenantId,
        /// Why.
        reason: String,
    },
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

/// The thresholds a counter is watched at, in percent of its limit.
pub(crate) const QUOTA_THRESHOLDS: [u8; 2] = [80, 100];

/// The [`DomainEvent::QuotaThresholdCrossed`] events of a counter that went from `before` to
/// `after` against `limit` (none for a limit of zero or less, or a counter that did not rise).
pub(crate) fn thresholds_crossed(
    tenant_id: TenantId,
    quota: &'static str,
    before: i64,
    after: i64,
    limit: i64,
) -> Vec<DomainEvent> {
    if limit <= 0 {
        return Vec::new();
    }
    QUOTA_THRESHOLDS
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
        thresholds_crossed(TenantId::new(), "q", before, after, limit)
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
    fn a_token_never_shows_in_debug_output() {
        let token = OneTimeToken::new("inv_secret");
        assert_eq!(format!("{token:?}"), "OneTimeToken(<redacted>)");
        assert_eq!(token.expose(), "inv_secret");
    }
}
