//! Webhook endpoints: what a tenant may register and how its events are matched to them.
//!
//! A URL is an absolute `http` or `https` URL with a host, no credentials and no fragment
//! (where it may point is checked when sending, against the addresses its host resolves to).
//! Event types are exact (`api_key.revoked`), a family (`api_key.*`) or everything (`*`),
//! checked against the types the spine publishes; none means every type. A tenant holds at
//! most [`MAX_ENDPOINTS`]. Secrets arrive sealed: this layer never sees one in clear.

use crate::{Db, DriverError, ErrorCode, StorageError};
use account_drivers::types::{TenantId, WebhookEndpointId};
use account_drivers::webhooks::{self as store, EndpointChanges, NewEndpoint};
use chrono::{DateTime, Utc};

pub use account_drivers::webhooks::{
    AttemptRow as WebhookAttempt, DueReplay, EndpointRow, NewAttempt, Progress, ReplaySelection,
    claim_endpoints, disable_endpoint, due_replays, insert_attempts, purge_attempts,
    record_progress, release_endpoint, settle_replay,
};

/// Endpoints a tenant may hold.
pub const MAX_ENDPOINTS: u64 = 50;
/// Longest URL.
pub const MAX_URL_LENGTH: usize = 2048;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LENGTH: usize = 256;
/// Most event types one endpoint names.
pub const MAX_EVENT_TYPES: usize = 64;
/// Most events one replay request queues.
pub const MAX_REPLAY_EVENTS: u64 = 10_000;
/// Attempts listed per page, at most.
pub const MAX_ATTEMPTS_PAGE: u64 = 100;

/// Why a webhook operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is not one events can be sent to.
    #[error(
        "url must be an absolute http or https URL with a host, no user name or password, no fragment, at most {MAX_URL_LENGTH} characters"
    )]
    InvalidUrl,
    /// An event type is unknown or malformed.
    #[error(
        "event_types[{index}] is not an event type, a family (`api_key.*`) or `*`; see the documented event types"
    )]
    InvalidEventType {
        /// Its position in the list.
        index: usize,
    },
    /// Too many event types.
    #[error("event_types names at most {MAX_EVENT_TYPES} types")]
    TooManyEventTypes,
    /// The description is too long or holds a NUL character.
    #[error(
        "description must be at most {MAX_DESCRIPTION_LENGTH} characters without NUL characters"
    )]
    InvalidDescription,
    /// The tenant already holds [`MAX_ENDPOINTS`] endpoints.
    #[error("the tenant already has {MAX_ENDPOINTS} webhook endpoints; delete one first")]
    TooManyEndpoints,
    /// No such endpoint in this tenant.
    #[error("webhook endpoint not found; check the id")]
    NotFound,
    /// A replay names no event of this tenant that is still kept.
    #[error("no such event is kept for this tenant (events are kept for a limited time)")]
    EventNotFound,
    /// A replay's time range is empty or reversed.
    #[error("`from` must be before `to`")]
    InvalidRange,
    /// A replay named both an event and a range, or neither.
    #[error("give either `event_id` or both `from` and `to`")]
    InvalidReplay,
    /// The rotation's grace period is out of range.
    #[error("grace_seconds must be 0 to 604800 (7 days)")]
    InvalidGrace,
    /// The page asked for is out of bounds.
    #[error("limit must be 1 to {MAX_ATTEMPTS_PAGE}")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<DriverError> for WebhookError {
    fn from(error: DriverError) -> Self {
        Self::Storage(error.into())
    }
}

impl ErrorCode for WebhookError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_webhook_url",
            Self::InvalidEventType { .. } | Self::TooManyEventTypes => "invalid_event_types",
            Self::InvalidDescription => "invalid_description",
            Self::TooManyEndpoints => "too_many_webhook_endpoints",
            Self::NotFound => "webhook_endpoint_not_found",
            Self::EventNotFound => "event_not_found",
            Self::InvalidRange | Self::InvalidReplay => "invalid_replay",
            Self::InvalidGrace => "invalid_grace",
            Self::InvalidPage => "invalid_page",
            Self::Storage(e) => e.code(),
        }
    }

    fn http_status(&self) -> u16 {
        match self {
            Self::InvalidUrl
            | Self::InvalidEventType { .. }
            | Self::TooManyEventTypes
            | Self::InvalidDescription
            | Self::InvalidRange
            | Self::InvalidReplay
            | Self::InvalidGrace
            | Self::InvalidPage => 422,
            Self::TooManyEndpoints => 409,
            Self::NotFound | Self::EventNotFound => 404,
            Self::Storage(e) => e.http_status(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidUrl => Some("url"),
            Self::InvalidEventType { .. } | Self::TooManyEventTypes => Some("event_types"),
            Self::InvalidDescription => Some("description"),
            Self::EventNotFound => Some("event_id"),
            Self::InvalidRange => Some("from"),
            Self::InvalidGrace => Some("grace_seconds"),
            Self::InvalidPage => Some("limit"),
            _ => None,
        }
    }
}

/// A URL events may be sent to (parsed, not yet resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        if text.len() > MAX_URL_LENGTH {
            return Err(WebhookError::InvalidUrl);
        }
        let url = url::Url::parse(text).map_err(|_| WebhookError::InvalidUrl)?;
        let usable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|host| !host.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none();
        if !usable {
            return Err(WebhookError::InvalidUrl);
        }
        Ok(Self(url.to_string()))
    }

    /// The URL, normalised.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event types an endpoint takes (empty: every type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventTypes(Vec<String>);

impl EventTypes {
    /// Parses `given` against the `known` types: each exact, `family.*` of a known family, or
    /// `*`. Duplicates are dropped, the order kept.
    pub fn parse(given: &[String], known: &[&str]) -> Result<Self, WebhookError> {
        if given.len() > MAX_EVENT_TYPES {
            return Err(WebhookError::TooManyEventTypes);
        }
        let mut types: Vec<String> = Vec::with_capacity(given.len());
        for (index, pattern) in given.iter().enumerate() {
            let valid = pattern == "*"
                || known.contains(&pattern.as_str())
                || pattern.strip_suffix(".*").is_some_and(|family| {
                    known
                        .iter()
                        .any(|t| t.split_once('.').is_some_and(|(f, _)| f == family))
                });
            if !valid {
                return Err(WebhookError::InvalidEventType { index });
            }
            if !types.contains(pattern) {
                types.push(pattern.clone());
            }
        }
        Ok(Self(types))
    }

    /// Reads the stored JSON array back (as written by [`EventTypes::to_json`]).
    pub fn from_json(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    /// The stored form, a JSON array.
    pub fn to_json(&self) -> String {
        serde_json::Value::from(self.0.clone()).to_string()
    }

    /// The patterns.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether an event of `event_type` goes to the endpoint.
    pub fn matches(&self, event_type: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|pattern| {
                pattern == "*"
                    || pattern == event_type
                    || pattern.strip_suffix(".*").is_some_and(|family| {
                        event_type.split_once('.').is_some_and(|(f, _)| f == family)
                    })
            })
    }
}

/// A checked description.
fn description(text: &str) -> Result<&str, WebhookError> {
    if text.chars().count() > MAX_DESCRIPTION_LENGTH || text.contains('\0') {
        return Err(WebhookError::InvalidDescription);
    }
    Ok(text)
}

/// An endpoint as its owner sees it: no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookEndpoint {
    /// Id.
    pub id: WebhookEndpointId,
    /// Where events are sent.
    pub url: String,
    /// The owner's note.
    pub description: String,
    /// The event types it takes (empty: every type).
    pub event_types: Vec<String>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// Why it was disabled: `by_request`, `failing` (the retry schedule ran out) or `gone`
    /// (it answered 410).
    pub disabled_reason: Option<String>,
    /// Since when its attempts fail.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed by its owner.
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            description: row.description,
            event_types: EventTypes::from_json(&row.event_types).0,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since,
            previous_secret_until: row.previous_secret_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// What a new endpoint is, as asked for.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CreateEndpoint {
    /// Where events are sent.
    pub url: String,
    /// A note.
    pub description: String,
    /// The event types it takes (empty: every type).
    pub event_types: Vec<String>,
    /// Whether it starts disabled.
    pub disabled: bool,
}

impl CreateEndpoint {
    /// An enabled endpoint for every event type at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The same, taking only `types`.
    pub fn with_event_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The same with a description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// The same, starting disabled when `disabled` says so.
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

/// Checks `new` against the `known` event types: its URL and its event types in their
/// stored forms.
pub fn check_new(
    new: &CreateEndpoint,
    known: &[&str],
) -> Result<(EndpointUrl, EventTypes), WebhookError> {
    let url = EndpointUrl::parse(&new.url)?;
    let types = EventTypes::parse(&new.event_types, known)?;
    description(&new.description)?;
    Ok((url, types))
}

/// Creates the endpoint with id `id` and the sealed secret `sealed` (checked by
/// [`check_new`]); it receives the tenant's events written from now on.
pub async fn create(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    new: &CreateEndpoint,
    known: &[&str],
    sealed: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookEndpoint, WebhookError> {
    let (url, types) = check_new(new, known)?;
    // Locked first, so the insert's count (a statement of its own, a fresh snapshot) sees
    // every endpoint a concurrent creation committed: the limit is exact.
    if !account_drivers::get_tenant_driver(db)
        .lock_tenant(tenant)
        .await?
    {
        return Err(WebhookError::NotFound);
    }
    let row = store::insert_endpoint(
        db,
        NewEndpoint {
            id,
            tenant_id: tenant,
            url: url.as_str(),
            description: &new.description,
            event_types: &types.to_json(),
            secret: sealed,
            enabled: !new.disabled,
        },
        MAX_ENDPOINTS,
        now,
    )
    .await?;
    row.map(WebhookEndpoint::from)
        .ok_or(WebhookError::TooManyEndpoints)
}

/// The tenant's endpoints, oldest first.
pub async fn list(db: Db<'_>, tenant: TenantId) -> Result<Vec<WebhookEndpoint>, WebhookError> {
    let rows = store::list_endpoints(db, tenant).await?;
    Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
}

/// One of the tenant's endpoints, as stored (the spine needs its sealed secret).
pub async fn get_row(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> Result<EndpointRow, WebhookError> {
    store::get_endpoint(db, tenant, id)
        .await?
        .ok_or(WebhookError::NotFound)
}

/// What an owner changes; `None` keeps the field.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct UpdateEndpoint {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New event types (empty: every type).
    pub event_types: Option<Vec<String>>,
    /// Enable (the failure state is cleared: the next attempt is due at once) or disable.
    pub enabled: Option<bool>,
}

impl UpdateEndpoint {
    /// The same, enabling or disabling the endpoint.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// The same, moving the endpoint to `url`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The same, with a new description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The same, taking only `types`.
    pub fn with_event_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.event_types = Some(types.into_iter().map(Into::into).collect());
        self
    }
}

/// Applies `changes` to one of the tenant's endpoints.
pub async fn update(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    changes: &UpdateEndpoint,
    known: &[&str],
    now: DateTime<Utc>,
) -> Result<WebhookEndpoint, WebhookError> {
    let url = changes.url.as_deref().map(EndpointUrl::parse).transpose()?;
    let types = changes
        .event_types
        .as_deref()
        .map(|types| EventTypes::parse(types, known))
        .transpose()?
        .map(|types| types.to_json());
    let description = changes
        .description
        .as_deref()
        .map(description)
        .transpose()?;
    let stored = EndpointChanges {
        url: url.as_ref().map(EndpointUrl::as_str),
        description,
        event_types: types.as_deref(),
        enabled: changes.enabled,
    };
    store::update_endpoint(db, tenant, id, stored, now)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or(WebhookError::NotFound)
}

/// Deletes one of the tenant's endpoints.
pub async fn delete(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> Result<(), WebhookError> {
    if store::delete_endpoint(db, tenant, id).await? {
        Ok(())
    } else {
        Err(WebhookError::NotFound)
    }
}

/// Longest grace a rotation may give the previous secret: 7 days.
pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;

/// Makes the sealed `secret` the endpoint's, keeping the current one valid for
/// `grace_seconds`.
pub async fn rotate_secret(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    secret: &[u8],
    grace_seconds: u32,
    now: DateTime<Utc>,
) -> Result<WebhookEndpoint, WebhookError> {
    if grace_seconds > MAX_GRACE_SECONDS {
        return Err(WebhookError::InvalidGrace);
    }
    let until = now + chrono::Duration::seconds(i64::from(grace_seconds));
    store::rotate_secret(db, tenant, id, secret, until, now)
        .await?
        .map(WebhookEndpoint::from)
        .ok_or(WebhookError::NotFound)
}

/// Queues events of the tenant for the endpoint again; how many. A single event that is not
/// kept is refused; a range may hold none.
pub async fn queue_replay(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    selection: ReplaySelection,
    now: DateTime<Utc>,
) -> Result<u64, WebhookError> {
    if let ReplaySelection::Range { from, to } = selection
        && from >= to
    {
        return Err(WebhookError::InvalidRange);
    }
    get_row(db, tenant, id).await?;
    let queued = store::queue_replays(db, tenant, id, selection, MAX_REPLAY_EVENTS, now).await?;
    if let ReplaySelection::Event(event) = selection
        && queued == 0
        // Either it is not kept, or it is queued already: only the first is an error.
        && account_drivers::outbox::event_seq(db, tenant, event)
            .await?
            .is_none()
    {
        return Err(WebhookError::EventNotFound);
    }
    Ok(queued)
}

/// A page of the endpoint's attempts, newest first, after the attempt `before`.
pub async fn list_attempts(
    db: Db<'_>,
    tenant: TenantId,
    id: WebhookEndpointId,
    before: Option<uuid::Uuid>,
    limit: u64,
) -> Result<Vec<WebhookAttempt>, WebhookError> {
    if !(1..=MAX_ATTEMPTS_PAGE).contains(&limit) {
        return Err(WebhookError::InvalidPage);
    }
    get_row(db, tenant, id).await?;
    Ok(store::list_attempts(db, tenant, id, before, limit).await?)
}
