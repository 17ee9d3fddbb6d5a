//! Support: where customers reach it, and their tickets.
//!
//! These routes act as a person, so they answer only to a key issued for a user (a personal
//! key, as bootstrap issues the owner's): it acts on that user's behalf, within both its
//! permissions and the user's current role. A machine key (issued for no user) gets a 403.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, FieldErrors, ListQuery, Validate};
use crate::idempotency::Idempotency;
use crate::routes::lists::{ListBody, PageQuery};
use account_spine::idempotency::AsTenant;
use account_spine::support::{OpenSupportTicket, OpenTicket};
use account_spine::types::{TicketCategory, TicketId, TicketPriority, TicketStatus, UserId};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where customers reach support.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SupportContactView {
    /// Support email address.
    #[schema(format = "email")]
    email: String,
    /// When support is staffed.
    hours: String,
    /// The response-time promise.
    response_time: String,
}

/// Where customers reach support, as the service is configured.
#[utoipa::path(
    get,
    path = "/v1/support",
    tag = "support",
    operation_id = "support_contact",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The support contact.", body = SupportContactView),
        (status = 403, description = "A machine key (`machine_key_not_allowed`) or a key without `support:read` (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "The service has no support contact configured (`support_contact_not_configured`).", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn support_contact(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<SupportContactView>, ApiError> {
    let contact = state.spine.support_contact(&principal).await?;
    Ok(Json(SupportContactView {
        email: contact.email.as_str().to_owned(),
        hours: contact.hours,
        response_time: contact.response_time,
    }))
}

/// A support ticket.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketView {
    /// Id.
    #[schema(value_type = String, format = "uuid")]
    id: TicketId,
    /// Who opened it.
    #[schema(value_type = String, format = "uuid")]
    user_id: UserId,
    /// Subject line.
    subject: String,
    /// Body.
    description: String,
    /// Category.
    #[schema(value_type = String)]
    category: TicketCategory,
    /// Priority.
    #[schema(value_type = String)]
    priority: TicketPriority,
    /// Status.
    #[schema(value_type = String)]
    status: TicketStatus,
    /// Opening time.
    created_at: DateTime<Utc>,
}

fn ticket_view(t: account_spine::support::Ticket) -> TicketView {
    TicketView {
        id: t.id,
        user_id: t.user_id,
        subject: t.subject,
        description: t.description,
        category: t.category,
        priority: t.priority,
        status: t.status,
        created_at: t.created_at,
    }
}

/// `POST /v1/support/tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TicketBody {
    /// Subject line, 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    /// Body, 1 to 4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    description: String,
    /// Category (`general` by default).
    #[schema(value_type = Option<String>)]
    category: Option<TicketCategory>,
    /// Priority (`medium` by default).
    #[schema(value_type = Option<String>)]
    priority: Option<TicketPriority>,
}

impl Validate for TicketBody {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("subject", Some(self.subject.trim()), 1, 200);
        errors.length("description", Some(self.description.trim()), 1, 4000);
    }
}

/// Opens a support ticket as the caller.
#[utoipa::path(
    post,
    path = "/v1/support/tickets",
    tag = "support",
    operation_id = "open_ticket",
    security(("bearer" = []), ("api_key" = [])),
    request_body = TicketBody,
    responses((status = 201, description = "Opened.", body = TicketView))
)]
pub(crate) async fn open_ticket(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    idempotency: Idempotency,
    ApiJson(body): ApiJson<TicketBody>,
) -> Result<Response, ApiError> {
    let ticket = OpenTicket {
        subject: body.subject,
        description: body.description,
        category: body.category.unwrap_or(TicketCategory::General),
        priority: body.priority.unwrap_or(TicketPriority::Medium),
    };
    let render = |opened| (StatusCode::CREATED, Json(ticket_view(opened)));
    let open = OpenSupportTicket { ticket };
    idempotency
        .answer(&state, AsTenant(&principal, open), render)
        .await
}

/// The filters of `GET /v1/support/tickets?status=` (its page is a [`PageQuery`]).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TicketsFilter {
    /// Only tickets in this status.
    #[param(value_type = Option<String>)]
    status: Option<TicketStatus>,
}

impl Validate for TicketsFilter {
    fn validate(&self, _errors: &mut FieldErrors) {}
}

/// The tenant's support tickets.
#[utoipa::path(
    get,
    path = "/v1/support/tickets",
    tag = "support",
    operation_id = "list_tickets",
    security(("bearer" = []), ("api_key" = [])),
    params(TicketsFilter, PageQuery),
    responses((status = 200, description = "A page of tickets.", body = ListBody<TicketView>))
)]
pub(crate) async fn list_tickets(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<TicketsFilter, PageQuery>,
) -> Result<Json<ListBody<TicketView>>, ApiError> {
    let page = page.offset_page();
    let found = state
        .spine
        .list_tickets(&principal, filter.status, page)
        .await?;
    Ok(Json(ListBody::from_page(found, page, ticket_view)))
}
