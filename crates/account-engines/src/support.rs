//! Support: the contact details from configuration, and tickets with validated category,
//! priority and status, paginated.

use crate::PageRequest;
use crate::{Db, DriverError, ErrorCode, OffsetPage, Page, StorageError};
use account_drivers::get_accounts_facade_driver;
pub use account_drivers::support::TicketSnapshot as Ticket;
use account_drivers::support::{NewTicket, TicketSnapshot};
use account_drivers::types::{
    Email, TenantId, TextError, TicketCategory, TicketDescription, TicketId, TicketPriority,
    TicketStatus, TicketSubject, UserId,
};
use chrono::{DateTime, Utc};

/// Where customers reach support; the host configures it and hands it to the spine, whose
/// `support_contact` use case answers with it.
///
/// ```rust
/// use account_engines::support::SupportContact;
/// use account_engines::types::Email;
///
/// let contact = SupportContact::new(
///     Email::parse("Support@Example.com")?,
///     "Mon-Fri 09:00-17:00 CET",
///     "within one business day",
/// );
/// assert_eq!(contact.email.as_str(), "support@example.com");
/// # Ok::<(), account_engines::types::EmailError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupportContact {
    /// Support email address.
    pub email: Email,
    /// When support is staffed, e.g. "Mon-Fri 09:00-17:00 CET".
    pub hours: String,
    /// Response-time promise, e.g. "within one business day".
    pub response_time: String,
}

impl SupportContact {
    /// The contact shown to customers: where to write, when support is staffed and what
    /// response time it promises. Fields added later get defaults or `with_*` setters.
    pub fn new(email: Email, hours: impl Into<String>, response_time: impl Into<String>) -> Self {
        Self {
            email,
            hours: hours.into(),
            response_time: response_time.into(),
        }
    }
}

/// Why a ticket operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Subject or description does not fit.
    #[error(transparent)]
    InvalidText(#[from] TextError),
    /// No such ticket in this tenant.
    #[error("ticket not found")]
    NotFound,
    /// A resolution was given for a ticket that is not being resolved or closed.
    #[error("a resolution can only be given when resolving or closing a ticket")]
    ResolutionNeedsResolvedStatus,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to 100")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for TicketError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<crate::InvalidPage> for TicketError {
    fn from(_: crate::InvalidPage) -> Self {
        Self::InvalidPage
    }
}

impl ErrorCode for TicketError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidText(_) => "invalid_ticket",
            Self::NotFound => "ticket_not_found",
            Self::ResolutionNeedsResolvedStatus => "resolution_needs_resolved_status",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidText(_) | Self::ResolutionNeedsResolvedStatus | Self::InvalidPage => 422,
            Self::NotFound => 404,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// A ticket to open; category and priority arrive parsed (the enums reject unknown values).
#[derive(Clone, Debug)]
pub struct OpenTicket {
    /// Subject line (1 to 200 characters).
    pub subject: String,
    /// Body (1 to 4000 characters).
    pub description: String,
    /// Category; `general` by default.
    pub category: TicketCategory,
    /// Priority; `medium` by default.
    pub priority: TicketPriority,
}

/// Opens a ticket for `user` in `tenant`.
pub async fn create_support_ticket(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
    ticket: OpenTicket,
    now: DateTime<Utc>,
) -> Result<TicketSnapshot, TicketError> {
    let subject = TicketSubject::parse(&ticket.subject)?;
    let description = TicketDescription::parse(&ticket.description)?;
    Ok(get_accounts_facade_driver(db)
        .insert_support_ticket(
            NewTicket {
                id: TicketId::new(),
                tenant_id: tenant,
                user_id: user,
                subject: subject.into(),
                description: description.into(),
                category: ticket.category,
                priority: ticket.priority,
            },
            now,
        )
        .await?)
}

/// The tenant's tickets, newest first.
pub async fn list_support_tickets(
    db: Db<'_>,
    tenant: TenantId,
    status: Option<TicketStatus>,
    page: OffsetPage,
) -> Result<Page<TicketSnapshot>, TicketError> {
    let page = PageRequest::new(page)?.into_page();
    Ok(get_accounts_facade_driver(db)
        .fetch_support_tickets(tenant, status, page)
        .await?)
}

/// One ticket of the tenant.
pub async fn get_ticket(
    db: Db<'_>,
    tenant: TenantId,
    id: TicketId,
) -> Result<TicketSnapshot, TicketError> {
    get_accounts_facade_driver(db)
        .fetch_support_ticket(tenant, id)
        .await?
        .ok_or(TicketError::NotFound)
}

/// Moves the tenant's ticket to `status`. Resolving or closing keeps the first resolution
/// time and takes `resolution` (1 to 4000 characters) when given, else keeps the stored one;
/// reopening (`open`, `in_progress`) clears both, and refuses a resolution.
pub async fn set_ticket_status(
    db: Db<'_>,
    tenant: TenantId,
    id: TicketId,
    status: TicketStatus,
    resolution: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TicketSnapshot, TicketError> {
    let resolving = matches!(status, TicketStatus::Resolved | TicketStatus::Closed);
    if resolution.is_some() && !resolving {
        return Err(TicketError::ResolutionNeedsResolvedStatus);
    }
    // The resolution shares the description's bounds (both columns hold 4000 characters).
    let resolution = resolution
        .map(TicketDescription::parse)
        .transpose()?
        .map(String::from);
    let current = get_ticket(db, tenant, id).await?;
    let (resolution, resolved_at) = if resolving {
        (
            resolution.or(current.resolution),
            current.resolved_at.or(Some(now)),
        )
    } else {
        (None, None)
    };
    get_accounts_facade_driver(db)
        .update_support_ticket_status(tenant, id, status, resolution, resolved_at, now)
        .await?
        .ok_or(TicketError::NotFound)
}
