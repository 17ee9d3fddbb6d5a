//! The spine's error type: every refusal and failure a host maps to a status code.

use crate::operations::Operation;
use account_engines::api_keys::ApiKeyError;
use account_engines::audit::AuditError;
use account_engines::billing::BillingError;
use account_engines::idempotency::IdempotencyError;
use account_engines::identities::IdentityError;
use account_engines::invitations::InvitationError;
use account_engines::lifecycle::LifecycleError;
use account_engines::limits::LimitError;
use account_engines::memberships::MembershipError;
use account_engines::memory_pins::MemoryPinError;
use account_engines::onboarding::AttestationError;
use account_engines::onboarding::OnboardingError;
use account_engines::runs::RunError;
use account_engines::support::TicketError;
use account_engines::tenants::TenantError;
use account_engines::types::TenantStatus;
use account_engines::users::ProfileError;
use account_engines::users::UserError;
use account_engines::webhooks::WebhookError;
use account_engines::{DriverError, ErrorCode, StorageError};
use sea_orm::DbErr;

/// Why a spine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpineError {
    /// The database could not be reached or refused the connection.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Applying the migrations failed (the message names the migration and the database's
    /// reason); nothing of that run was kept.
    #[error("applying the database migrations failed: {0}")]
    Migration(#[from] account_migrations::MigrationError),
    /// A spine asked for a schema other than the one this process already uses.
    #[error(
        "the account tables are in schema `{in_force}` in this process; `{wanted}` cannot be used beside it"
    )]
    SchemaConflict {
        /// The schema asked for.
        wanted: String,
        /// The schema in force.
        in_force: String,
    },
    /// The principal may not call this operation.
    #[error("{operation} requires {needed}")]
    Forbidden {
        /// The operation's stable name.
        operation: &'static str,
        /// What would have been needed, for the message.
        needed: String,
    },
    /// A machine key (issued for no user) called a use case that acts as a person.
    #[error(
        "{operation} acts as a person: use a member's session or an API key issued for a user; \
         this key was issued for no user (a machine key)"
    )]
    MachineKey {
        /// The operation's stable name.
        operation: &'static str,
    },
    /// The tenant's lifecycle status does not allow the operation.
    #[error("the tenant is {status}; {operation} is not allowed in that state")]
    TenantStatusForbids {
        /// The operation's stable name.
        operation: &'static str,
        /// The tenant's status.
        status: TenantStatus,
    },
    /// The principal's tenant does not exist.
    #[error("tenant not found")]
    TenantNotFound,
    /// Runs.
    #[error(transparent)]
    Run(#[from] RunError),
    /// API keys.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// Invitations.
    #[error(transparent)]
    Invitation(#[from] InvitationError),
    /// Identity links.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Memberships.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// Tenants.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// Profiles.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Support tickets.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// Billing.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// The host configured no support contact, so there is none to show.
    #[error("no support contact is configured for this service")]
    SupportContactNotConfigured,
    /// The spine lacks a secret it needs (the host must configure it).
    #[error("the {0} is not configured")]
    NotConfigured(&'static str),
    /// An event in the outbox that this version cannot read (written by a newer one during a
    /// rolling upgrade, or damaged): its stream waits for a dispatcher that can.
    #[error("outbox event {seq} of its tenant cannot be read: {reason}")]
    UnreadableEvent {
        /// Its position in the tenant's stream.
        seq: i64,
        /// Why.
        reason: String,
    },
    /// Read replicas were configured for a SQLite database: only PostgreSQL has them.
    #[error("read replicas need PostgreSQL; this database is SQLite")]
    ReplicasNeedPostgres,
    /// Onboarding.
    #[error(transparent)]
    Onboarding(#[from] OnboardingError),
    /// Memory pins.
    #[error(transparent)]
    MemoryPin(#[from] MemoryPinError),
    /// Webhook endpoints.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// Limit overrides.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Plans.
    #[error(transparent)]
    Plan(#[from] account_engines::plans::PlanError),
    /// Self-service projects.
    #[error(transparent)]
    Project(#[from] account_engines::projects::ProjectError),
    /// SDK attestations.
    #[error(transparent)]
    Attestation(#[from] AttestationError),
    /// Users.
    #[error(transparent)]
    User(#[from] UserError),
    /// Lifecycle.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A request rate is used up, on every instance together: the API key's own or its
    /// tenant's ([`crate::Spine::admit_request`]).
    #[error(
        "{} is limited to {limit} requests per minute; retry in {retry_after_seconds} s",
        scope.subject()
    )]
    RateLimited {
        /// Whose allowance: the key's or the tenant's.
        scope: RateLimitScope,
        /// Its requests per minute.
        limit: u32,
        /// Whole seconds until a request is allowed again (at least 1).
        retry_after_seconds: u64,
    },
    /// An idempotency key could not be used: sent before with another request (422), its
    /// first request still in flight (409).
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for SpineError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl SpineError {
    pub(crate) fn forbidden(operation: Operation, needed: impl Into<String>) -> Self {
        Self::Forbidden {
            operation: operation.name(),
            needed: needed.into(),
        }
    }
}

impl SpineError {
    /// Whether this is a refusal of the caller's authority (any 403: the principal's role or
    /// permissions, the tenant's status, an engine's authority rule). Refusals are audited.
    pub fn is_refusal(&self) -> bool {
        self.http_status() == 403
    }
}

impl ErrorCode for SpineError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "storage_unavailable",
            Self::Migration(_) => "migration_failed",
            Self::SchemaConflict { .. } => "schema_conflict",
            Self::Forbidden { .. } => "forbidden",
            Self::MachineKey { .. } => "machine_key_not_allowed",
            Self::TenantStatusForbids { .. } => "tenant_status_forbids",
            Self::TenantNotFound => "tenant_not_found",
            Self::Run(e) => e.code(),
            Self::ApiKey(e) => e.code(),
            Self::Invitation(e) => e.code(),
            Self::Identity(e) => e.code(),
            Self::Membership(e) => e.code(),
            Self::Tenant(e) => e.code(),
            Self::Profile(e) => e.code(),
            Self::Ticket(e) => e.code(),
            Self::Billing(e) => e.code(),
            Self::SupportContactNotConfigured => "support_contact_not_configured",
            Self::NotConfigured(_) => "not_configured",
            Self::ReplicasNeedPostgres => "replicas_need_postgres",
            Self::UnreadableEvent { .. } => "unreadable_event",
            Self::Onboarding(e) => e.code(),
            Self::MemoryPin(e) => e.code(),
            Self::Webhook(e) => e.code(),
            Self::Limit(e) => e.code(),
            Self::Plan(e) => e.code(),
            Self::Project(e) => e.code(),
            Self::Attestation(e) => e.code(),
            Self::User(e) => e.code(),
            Self::Lifecycle(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::RateLimited { .. } => "rate_limited",
            Self::Idempotency(e) => e.code(),
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::Unavailable(_) => 503,
            Self::Migration(_) | Self::SchemaConflict { .. } => 500,
            Self::Forbidden { .. } | Self::MachineKey { .. } | Self::TenantStatusForbids { .. } => {
                403
            }
            Self::TenantNotFound => 404,
            Self::Run(e) => e.http_status(),
            Self::ApiKey(e) => e.http_status(),
            Self::Invitation(e) => e.http_status(),
            Self::Identity(e) => e.http_status(),
            Self::Membership(e) => e.http_status(),
            Self::Tenant(e) => e.http_status(),
            Self::Profile(e) => e.http_status(),
            Self::Ticket(e) => e.http_status(),
            Self::Billing(e) => e.http_status(),
            Self::SupportContactNotConfigured => 404,
            Self::NotConfigured(_) | Self::ReplicasNeedPostgres | Self::UnreadableEvent { .. } => {
                500
            }
            Self::Onboarding(e) => e.http_status(),
            Self::MemoryPin(e) => e.http_status(),
            Self::Webhook(e) => e.http_status(),
            Self::Limit(e) => e.http_status(),
            Self::Plan(e) => e.http_status(),
            Self::Project(e) => e.http_status(),
            Self::Attestation(e) => e.http_status(),
            Self::User(e) => e.http_status(),
            Self::Lifecycle(e) => e.http_status(),
            Self::Audit(e) => e.http_status(),
            Self::RateLimited { .. } => 429,
            Self::Idempotency(e) => e.http_status(),
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Run(e) => e.field(),
            Self::ApiKey(e) => e.field(),
            Self::Invitation(e) => e.field(),
            Self::Identity(e) => e.field(),
            Self::Membership(e) => e.field(),
            Self::Tenant(e) => e.field(),
            Self::Profile(e) => e.field(),
            Self::Ticket(e) => e.field(),
            Self::Billing(e) => e.field(),
            Self::Onboarding(e) => e.field(),
            Self::MemoryPin(e) => e.field(),
            Self::Webhook(e) => e.field(),
            Self::Limit(e) => e.field(),
            Self::Plan(e) => e.field(),
            Self::Project(e) => e.field(),
            Self::Attestation(e) => e.field(),
            Self::User(e) => e.field(),
            Self::Lifecycle(e) => e.field(),
            Self::Audit(e) => e.field(),
            Self::Storage(e) => e.field(),
            Self::Unavailable(_)
            | Self::Migration(_)
            | Self::SchemaConflict { .. }
            | Self::Forbidden { .. }
            | Self::MachineKey { .. }
            | Self::TenantStatusForbids { .. }
            | Self::TenantNotFound
            | Self::SupportContactNotConfigured
            | Self::NotConfigured(_)
            | Self::RateLimited { .. }
            | Self::UnreadableEvent { .. }
            | Self::Idempotency(_)
            | Self::ReplicasNeedPostgres => None,
        }
    }
}

/// Which allowance refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitScope {
    /// The API key's own (`rate_limit_rpm`).
    Key,
    /// The tenant's, every credential together (its plan's `max_requests_per_minute`).
    Tenant,
}

impl RateLimitScope {
    /// Who is limited, for messages: `this API key` or `this project`.
    pub fn subject(self) -> &'static str {
        match self {
            Self::Key => "this API key",
            Self::Tenant => "this project",
        }
    }

    /// `key` or `tenant`: the policy's name in the `RateLimit` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Tenant => "tenant",
        }
    }
}
