//! Domain events, delivered to the host's subscriber only after the transaction committed.

use account_engines::types::{ApiKeyId, RunId, TenantId, TenantStatus};
use std::sync::Mutex;

/// Something that happened, for the host to react to (mail, webhooks, metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// A quota refused a request.
    QuotaRefused {
        /// Tenant.
        tenant_id: TenantId,
        /// The refusing quota's code, e.g. `quota_runs_per_day`.
        quota: &'static str,
    },
    /// An API key was issued.
    ApiKeyIssued {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
    },
    /// An API key was revoked.
    ApiKeyRevoked {
        /// Tenant.
        tenant_id: TenantId,
        /// Key.
        key_id: ApiKeyId,
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
