//! The audit log: a page at a time (`GET /v1/audit`, by cursor only, newest first) and a
//! whole window streamed as NDJSON (`GET /v1/audit/export`), for owners and admins.
//!
//! These routes act as a person, as billing's do: they answer only to a key issued for a user
//! (a personal key holding `audit:read`, which `read:*` does not include), within both its
//! permissions and the user's current role. A machine key gets a 403.
//!
//! The export holds one chunk of the spine's export (1,000 rows) at a time: each is read when
//! the client has taken the one before (the body is a stream, polled as the connection drains
//! it), so a million rows take no more memory than a thousand. The first chunk is read before
//! the answer starts, so refusals are ordinary error answers; a failure after that ends the
//! body early (the connection is cut), never a silently short file that looks complete.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{FieldErrors, ListQuery, Validate};
use crate::routes::lists::{Cursor, ListBody};
use account_spine::audit::{
    AuditExport, AuditFilter, AuditPosition, AuditRecord, MAX_ACTION_CHARS, MAX_RESOURCE_ID_CHARS,
    MAX_RESOURCE_TYPE_CHARS, parse_action,
};
use account_spine::types::{ActorType, ApiKeyId, AuditEntryId, UserId};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The media type of an export: one JSON object per line.
const NDJSON: &str = "application/x-ndjson";

/// Entries per page when the client names no `limit`.
const DEFAULT_LIMIT: u64 = 20;

/// An entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntryView {
    /// The entry's id.
    #[schema(value_type = String, format = "uuid")]
    id: AuditEntryId,
    /// Who acted: `user`, `api_key`, `founder` (a platform operator), `system` (the
    /// platform's own jobs) or `operator`.
    #[schema(schema_with = crate::openapi::actor_type)]
    actor_type: ActorType,
    /// The acting user, when a person acted.
    #[schema(value_type = Option<String>, format = "uuid")]
    user_id: Option<UserId>,
    /// The acting API key, when a key acted.
    #[schema(value_type = Option<String>, format = "uuid")]
    api_key_id: Option<ApiKeyId>,
    /// What happened, e.g. `api_key.revoked`.
    action: String,
    /// The kind of resource it happened to.
    resource_type: String,
    /// The resource's id.
    resource_id: Option<String>,
    /// The actor's reason, or the refusal's code for `authorization.refused`.
    reason: Option<String>,
    /// The state before (secrets redacted).
    #[schema(value_type = Option<Object>)]
    old_value: Option<serde_json::Value>,
    /// The state after (secrets redacted).
    #[schema(value_type = Option<Object>)]
    new_value: Option<serde_json::Value>,
    /// The client's address.
    ip_address: Option<String>,
    /// The client's agent.
    user_agent: Option<String>,
    /// The request's correlation id (`x-request-id`).
    request_id: Option<String>,
    /// When it happened.
    created_at: DateTime<Utc>,
}

fn entry_view(e: AuditRecord) -> AuditEntryView {
    AuditEntryView {
        id: e.id,
        actor_type: e.actor_type,
        user_id: e.user_id,
        api_key_id: e.api_key_id,
        action: e.action,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        reason: e.reason,
        old_value: e.old_value,
        new_value: e.new_value,
        ip_address: e.ip_address,
        user_agent: e.user_agent,
        request_id: e.request_id,
        created_at: e.created_at,
    }
}

/// Who acted, on what, and what: the filters both routes share. Each given narrows the
/// entries; none keeps every entry.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries by this user.
    #[param(value_type = Option<String>, format = "uuid")]
    user_id: Option<UserId>,
    /// Only entries by this API key.
    #[param(value_type = Option<String>, format = "uuid")]
    api_key_id: Option<ApiKeyId>,
    /// Only entries by this kind of actor.
    #[param(schema_with = crate::openapi::actor_type)]
    actor_type: Option<ActorType>,
    /// Only this action (`api_key.revoked`), or a family of actions ending in `.*`
    /// (`api_key.*`).
    #[param(min_length = 1, max_length = 100)]
    action: Option<String>,
    /// Only entries about this kind of resource (`run`, `api_key`, ...).
    #[param(min_length = 1, max_length = 50)]
    resource_type: Option<String>,
    /// Only entries about the resource with this id.
    #[param(min_length = 1, max_length = 100)]
    resource_id: Option<String>,
}

impl Validate for AuditQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.length("action", self.action.as_deref(), 1, MAX_ACTION_CHARS);
        if let Some(action) = &self.action
            && let Err(refused) = parse_action(action)
        {
            errors.add("action", refused.to_string());
        }
        let resource_type = self.resource_type.as_deref();
        errors.length("resource_type", resource_type, 1, MAX_RESOURCE_TYPE_CHARS);
        let resource_id = self.resource_id.as_deref();
        errors.length("resource_id", resource_id, 1, MAX_RESOURCE_ID_CHARS);
    }
}

impl AuditQuery {
    /// The spine's filter over `[from, to)`.
    fn into_filter(
        self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<AuditFilter, ApiError> {
        let mut filter = AuditFilter::default();
        filter.action = (self.action.as_deref().map(parse_action).transpose())
            .map_err(account_spine::SpineError::from)?;
        (filter.user_id, filter.api_key_id) = (self.user_id, self.api_key_id);
        filter.actor_type = self.actor_type;
        (filter.resource_type, filter.resource_id) = (self.resource_type, self.resource_id);
        (filter.from, filter.to) = (from, to);
        Ok(filter)
    }
}

/// Where a page of the log continues, as its cursor carries it: `[created_at, id]`.
type AuditCursor = (DateTime<Utc>, AuditEntryId);

/// `?from=&to=&limit=&cursor=`: the window a page is read in and the page itself.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditPage {
    /// Only entries at or after this time (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Continue after the page that answered this `next_cursor` (opaque; pass it unchanged,
    /// with the same filters). Every page costs the same at any depth.
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor<AuditCursor>>,
}

impl Validate for AuditPage {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("limit", self.limit, 1, crate::routes::lists::MAX_PAGE);
        window(errors, self.from, self.to);
    }
}

/// `from` must come before `to` when both are given.
fn window(errors: &mut FieldErrors, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) {
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        errors.add("from", "must be before to");
    }
}

/// The tenant's audit log, newest first, a page at a time by cursor: every page that has more
/// answers `next_cursor`; pass it as `cursor` for the next (owners and admins).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "list_audit_log",
    security(("bearer" = []), ("api_key" = [])),
    params(AuditQuery, AuditPage),
    responses((status = 200, description = "A page of audit entries.", body = ListBody<AuditEntryView>))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<AuditQuery, AuditPage>,
) -> Result<Json<ListBody<AuditEntryView>>, ApiError> {
    let filter = filter.into_filter(page.from, page.to)?;
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    let after = page
        .cursor
        .map(|Cursor((created_at, id))| AuditPosition { created_at, id });
    let found = state
        .spine
        .list_audit_log(&principal, filter, after, limit)
        .await?;
    Ok(Json(ListBody::from_keyset_page(
        found,
        limit,
        |next| (next.created_at, next.id),
        entry_view,
    )))
}

/// `?from=&to=`: the window an export covers; `from` is required, `to` is now by default.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportWindow {
    /// Entries at or after this time (RFC 3339).
    from: DateTime<Utc>,
    /// Entries before this time (RFC 3339; now).
    to: Option<DateTime<Utc>>,
}

impl Validate for ExportWindow {
    fn validate(&self, errors: &mut FieldErrors) {
        window(errors, Some(self.from), self.to);
    }
}

/// Every entry of the window as NDJSON (`application/x-ndjson`: one entry per line, each as
/// the list shows it, newest first), streamed: the server holds a thousand entries at a time
/// whatever the window holds. Each thousand is read on its own, so entries written while the
/// export runs may be missing from it; export a window that has ended for a closed set
/// (owners and admins).
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    tag = "audit",
    operation_id = "export_audit_log",
    security(("bearer" = []), ("api_key" = [])),
    params(AuditQuery, ExportWindow),
    responses((
        status = 200,
        description = "The window's entries, one JSON object per line.",
        content_type = "application/x-ndjson",
        body = AuditEntryView,
        headers((
            "Content-Disposition" = String,
            description = "`attachment; filename=\"audit-<from>-<to>.ndjson\"` (UTC, to the second)"
        ))
    ))
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ListQuery { filter, page }: ListQuery<AuditQuery, ExportWindow>,
) -> Result<Response, ApiError> {
    let (from, to) = (page.from, page.to.unwrap_or_else(Utc::now));
    let filter = filter.into_filter(Some(from), Some(to))?;
    let mut export = state.spine.export_audit_log(&principal, filter);
    // Read before answering: a refusal or a bad window is an error answer, not a cut stream.
    let first = export.next_chunk().await?;
    let stamp = |at: DateTime<Utc>| at.format("%Y%m%dT%H%M%SZ").to_string();
    let disposition = format!(
        "attachment; filename=\"audit-{}-{}.ndjson\"",
        stamp(from),
        stamp(to)
    );
    let headers = [
        (header::CONTENT_TYPE, NDJSON.to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, Body::from_stream(lines(first, export))).into_response())
}

/// The export's chunks as NDJSON, `first` (already read) then each next one when the body is
/// polled for it.
fn lines(
    first: Option<Vec<AuditRecord>>,
    export: AuditExport,
) -> impl futures_util::TryStream<Ok = Vec<u8>, Error = std::io::Error> + Send + 'static {
    futures_util::stream::try_unfold(
        Some((first, export)),
        |state: Option<(Option<Vec<AuditRecord>>, AuditExport)>| async move {
            let Some((pending, mut export)) = state else {
                return Ok(None);
            };
            let chunk = match pending {
                Some(chunk) => Some(chunk),
                None => export.next_chunk().await.map_err(|error| {
                    tracing::warn!(%error, "an audit export failed part way; the body ends early");
                    std::io::Error::other(error.to_string())
                })?,
            };
            match chunk {
                Some(chunk) => Ok(Some((ndjson(chunk)?, Some((None, export))))),
                None => Ok(None),
            }
        },
    )
}

/// One line per entry. Serialising a view of strings, ids, numbers and JSON values does not
/// fail; if it ever did, the body would end early rather than leave an entry out.
fn ndjson(chunk: Vec<AuditRecord>) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::with_capacity(chunk.len() * 512);
    for entry in chunk {
        serde_json::to_writer(&mut out, &entry_view(entry))?;
        out.push(b'\n');
    }
    Ok(out)
}
