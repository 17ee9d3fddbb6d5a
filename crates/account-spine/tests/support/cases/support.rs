//! Support tickets.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::support::{OpenSupportTicket, OpenTicket};
use account_spine::types::{TicketCategory, TicketPriority};

pub(super) fn cases() -> Vec<Case> {
    vec![Case::tenant(
        Arrange::Nothing,
        |_| OpenSupportTicket {
            ticket: OpenTicket {
                subject: "Invoices".into(),
                description: "Where do I find them?".into(),
                category: TicketCategory::Billing,
                priority: TicketPriority::Low,
            },
        },
        |g, opened| {
            leaves(vec![rows(
                "support_tickets",
                1,
                vec![
                    ("id", uuid(opened.id.as_uuid())),
                    ("tenant_id", g.tenant.clone()),
                    ("category", "billing".into()),
                ],
            )])
        },
    )]
}
