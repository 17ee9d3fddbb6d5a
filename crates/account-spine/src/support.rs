//! Support use cases: tickets and where customers reach support.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::support;
use account_engines::types::TicketStatus;
use account_engines::{OffsetPage, Page};
use serde_json::json;

pub use account_engines::support::{OpenTicket, SupportContact, Ticket};

/// Opens a support ticket as the acting member.
#[derive(Clone, Debug)]
pub struct OpenSupportTicket {
    /// The ticket.
    pub ticket: OpenTicket,
}

impl Sealed for OpenSupportTicket {}
impl UseCase for OpenSupportTicket {
    type Output = Ticket;
    const OPERATION: Operation = Operation::SupportOpenTicket;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Ticket, SpineError> {
        let (tenant, user) = (cx.tenant()?, cx.member()?.user_id);
        let opened =
            support::create_support_ticket(cx.db, tenant, user, self.ticket.clone(), cx.now)
                .await?;
        let after = json!({"category": opened.category, "priority": opened.priority});
        cx.audit(Change::of("support_ticket", opened.id).after(after))
            .await?;
        Ok(opened)
    }
}

/// Where customers reach support, as the host configured it
/// ([`Spine::with_support_contact`]); without one, `support_contact_not_configured` (404).
#[derive(Clone, Copy, Debug, Default)]
pub struct GetSupportContact;

impl Sealed for GetSupportContact {}
impl UseCase for GetSupportContact {
    type Output = SupportContact;
    const OPERATION: Operation = Operation::SupportGetContact;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<SupportContact, SpineError> {
        cx.spine
            .support
            .as_deref()
            .cloned()
            .ok_or(SpineError::SupportContactNotConfigured)
    }
}

/// The tenant's tickets.
#[derive(Clone, Copy, Debug)]
pub struct ListTickets {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Which page.
    pub page: OffsetPage,
}

impl Sealed for ListTickets {}
impl UseCase for ListTickets {
    type Output = Page<Ticket>;
    const OPERATION: Operation = Operation::SupportListTickets;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Page<Ticket>, SpineError> {
        let tenant = cx.tenant()?;
        Ok(support::list_support_tickets(cx.db, tenant, self.status, self.page).await?)
    }
}

impl Spine {
    /// Executes [`OpenSupportTicket`].
    pub async fn open_ticket(
        &self,
        principal: &Principal,
        ticket: OpenTicket,
    ) -> Result<Ticket, SpineError> {
        self.execute(principal, OpenSupportTicket { ticket }).await
    }

    /// Executes [`GetSupportContact`].
    pub async fn support_contact(
        &self,
        principal: &Principal,
    ) -> Result<SupportContact, SpineError> {
        self.execute(principal, GetSupportContact).await
    }

    /// Executes [`ListTickets`].
    pub async fn list_tickets(
        &self,
        principal: &Principal,
        status: Option<TicketStatus>,
        page: OffsetPage,
    ) -> Result<Page<Ticket>, SpineError> {
        self.execute(principal, ListTickets { status, page }).await
    }
}
