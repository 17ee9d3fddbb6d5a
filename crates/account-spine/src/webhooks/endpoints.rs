//! Webhook endpoint use cases: a tenant's admins register where its events go, read them,
//! change them, rotate their secrets, look at delivery attempts and ask for events again.
//!
//! A secret is generated here, shown once (in [`CreatedWebhookEndpoint`] or
//! [`RotatedWebhookSecret`]) and stored sealed (AES-256-GCM under a key derived from the
//! pepper for this purpose alone, bound to tenant and endpoint). Audit rows name the URL's
//! origin only: a path or query may carry the receiver's own token.

use super::signature::WebhookSecret;
use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::sealing::{SealedBytes, Sealer};
use account_engines::types::{TenantId, WebhookEndpointId};
use account_engines::webhooks::{self, EndpointRow, ReplaySelection};
pub use account_engines::webhooks::{
    CreateEndpoint, MAX_ATTEMPTS_PAGE, MAX_DESCRIPTION_LENGTH, MAX_ENDPOINTS, MAX_EVENT_TYPES,
    MAX_GRACE_SECONDS, MAX_REPLAY_EVENTS, MAX_URL_LENGTH, UpdateEndpoint, WebhookAttempt,
    WebhookEndpoint, WebhookError,
};
use chrono::{DateTime, Utc};
use sea_orm::prelude::Uuid;
use serde_json::json;

/// The sealing key's purpose: its own key, independent of every other use of the pepper.
const SEALING_PURPOSE: &str = "account.webhooks.endpoint-secret.v1";

/// The grace a rotation gives the previous secret unless asked otherwise: 24 hours.
pub const DEFAULT_ROTATION_GRACE_SECONDS: u32 = 24 * 3600;

impl Spine {
    fn webhook_sealer(&self) -> Result<Sealer, SpineError> {
        Sealer::derive(self.pepper()?, SEALING_PURPOSE)
            .map_err(|_| SpineError::NotConfigured("pepper"))
    }

    /// `secret` sealed for `endpoint` of `tenant`.
    fn seal_secret(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        secret: &WebhookSecret,
    ) -> Result<Vec<u8>, SpineError> {
        let (tenant, endpoint) = (tenant.as_uuid(), endpoint.as_uuid());
        let context: [&[u8]; 2] = [tenant.as_bytes(), endpoint.as_bytes()];
        self.webhook_sealer()?
            .seal(secret.expose().as_bytes(), &context)
            .map(SealedBytes::into_vec)
            .map_err(|_| SpineError::NotConfigured("pepper"))
    }

    /// The secrets an endpoint signs with at `now`: the current one, and the previous one
    /// during its grace. A secret that no longer opens (the pepper changed) is left out.
    pub(crate) fn endpoint_secrets(
        &self,
        row: &EndpointRow,
        now: DateTime<Utc>,
    ) -> Vec<WebhookSecret> {
        let Ok(sealer) = self.webhook_sealer() else {
            return Vec::new();
        };
        let (tenant, endpoint) = (row.tenant_id.as_uuid(), row.id.as_uuid());
        let context: [&[u8]; 2] = [tenant.as_bytes(), endpoint.as_bytes()];
        let open = |sealed: &[u8]| {
            let bytes = sealer
                .open(&SealedBytes::from_stored(sealed.to_vec()), &context)
                .ok()?;
            WebhookSecret::parse(std::str::from_utf8(&bytes).ok()?).ok()
        };
        let previous = row
            .previous_secret
            .as_deref()
            .filter(|_| row.previous_secret_until.is_some_and(|until| until > now));
        std::iter::once(row.secret.as_slice())
            .chain(previous)
            .filter_map(open)
            .collect()
    }
}

/// Scheme, host and port of `url`: what an audit row says of it.
fn origin(url: &str) -> String {
    url::Url::parse(url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}

fn described(endpoint: &WebhookEndpoint) -> serde_json::Value {
    json!({
        "url_origin": origin(&endpoint.url),
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    })
}

/// A new endpoint and its secret, shown this once. `Debug` leaves the secret out.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CreatedWebhookEndpoint {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its signing secret (`whsec_...`): give it to the receiver; it is not shown again.
    pub secret: WebhookSecret,
}

/// Registers an endpoint; it receives the tenant's events written from now on.
#[derive(Clone, Debug)]
pub struct CreateWebhookEndpoint {
    /// The endpoint.
    pub endpoint: CreateEndpoint,
}

impl Sealed for CreateWebhookEndpoint {}
impl UseCase for CreateWebhookEndpoint {
    type Output = CreatedWebhookEndpoint;
    const OPERATION: Operation = Operation::WebhooksCreate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<CreatedWebhookEndpoint, SpineError> {
        let tenant = cx.tenant()?;
        webhooks::check_new(&self.endpoint, DomainEvent::TYPES)?;
        let id = WebhookEndpointId::new();
        let secret = WebhookSecret::generate().map_err(|_| SpineError::NotConfigured("random"))?;
        let sealed = cx.spine.seal_secret(tenant, id, &secret)?;
        let endpoint = webhooks::create(
            cx.db,
            tenant,
            id,
            &self.endpoint,
            DomainEvent::TYPES,
            &sealed,
            cx.now,
        )
        .await?;
        cx.audit(Change::of("webhook_endpoint", endpoint.id).after(described(&endpoint)))
            .await?;
        Ok(CreatedWebhookEndpoint { endpoint, secret })
    }
}

/// The tenant's endpoints, oldest first (at most [`webhooks::MAX_ENDPOINTS`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListWebhookEndpoints;

impl Sealed for ListWebhookEndpoints {}
impl UseCase for ListWebhookEndpoints {
    type Output = Vec<WebhookEndpoint>;
    const OPERATION: Operation = Operation::WebhooksList;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<WebhookEndpoint>, SpineError> {
        Ok(webhooks::list(cx.db, cx.tenant()?).await?)
    }
}

/// One endpoint.
#[derive(Clone, Copy, Debug)]
pub struct GetWebhookEndpoint {
    /// The endpoint.
    pub id: WebhookEndpointId,
}

impl Sealed for GetWebhookEndpoint {}
impl UseCase for GetWebhookEndpoint {
    type Output = WebhookEndpoint;
    const OPERATION: Operation = Operation::WebhooksGet;

    async fn run(&self, cx: &mut Context<'_>) -> Result<WebhookEndpoint, SpineError> {
        let row = webhooks::get_row(cx.db, cx.tenant()?, self.id).await?;
        Ok(row.into())
    }
}

/// Changes an endpoint. Enabling a disabled one clears its failure state: the event it
/// stopped at is tried again at once.
#[derive(Clone, Debug)]
pub struct UpdateWebhookEndpoint {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// What changes.
    pub changes: UpdateEndpoint,
}

impl Sealed for UpdateWebhookEndpoint {}
impl UseCase for UpdateWebhookEndpoint {
    type Output = WebhookEndpoint;
    const OPERATION: Operation = Operation::WebhooksUpdate;

    async fn run(&self, cx: &mut Context<'_>) -> Result<WebhookEndpoint, SpineError> {
        let tenant = cx.tenant()?;
        let before: WebhookEndpoint = webhooks::get_row(cx.db, tenant, self.id).await?.into();
        let after = webhooks::update(
            cx.db,
            tenant,
            self.id,
            &self.changes,
            DomainEvent::TYPES,
            cx.now,
        )
        .await?;
        let change = Change::of("webhook_endpoint", self.id)
            .before(described(&before))
            .after(described(&after));
        cx.audit(change).await?;
        if after.enabled && !before.enabled {
            cx.wake_dispatcher();
        }
        Ok(after)
    }
}

/// Deletes an endpoint, its attempts log and its queued replays.
#[derive(Clone, Copy, Debug)]
pub struct DeleteWebhookEndpoint {
    /// The endpoint.
    pub id: WebhookEndpointId,
}

impl Sealed for DeleteWebhookEndpoint {}
impl UseCase for DeleteWebhookEndpoint {
    type Output = ();
    const OPERATION: Operation = Operation::WebhooksDelete;

    async fn run(&self, cx: &mut Context<'_>) -> Result<(), SpineError> {
        webhooks::delete(cx.db, cx.tenant()?, self.id).await?;
        cx.audit(Change::of("webhook_endpoint", self.id)).await?;
        Ok(())
    }
}

/// An endpoint's new secret, shown this once, and until when the previous one signs too.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotatedWebhookSecret {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its new signing secret (`whsec_...`).
    pub secret: WebhookSecret,
}

/// Gives an endpoint a new secret; deliveries carry a signature by each secret until the
/// grace ends, so receivers can switch without losing a message.
#[derive(Clone, Copy, Debug)]
pub struct RotateWebhookSecret {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// How long the previous secret keeps signing (default
    /// [`DEFAULT_ROTATION_GRACE_SECONDS`], at most 7 days; 0 ends it now).
    pub grace_seconds: u32,
}

impl Sealed for RotateWebhookSecret {}
impl UseCase for RotateWebhookSecret {
    type Output = RotatedWebhookSecret;
    const OPERATION: Operation = Operation::WebhooksRotateSecret;

    async fn run(&self, cx: &mut Context<'_>) -> Result<RotatedWebhookSecret, SpineError> {
        let tenant = cx.tenant()?;
        let secret = WebhookSecret::generate().map_err(|_| SpineError::NotConfigured("random"))?;
        let sealed = cx.spine.seal_secret(tenant, self.id, &secret)?;
        let endpoint =
            webhooks::rotate_secret(cx.db, tenant, self.id, &sealed, self.grace_seconds, cx.now)
                .await?;
        let after = json!({"previous_secret_until": endpoint.previous_secret_until});
        cx.audit(Change::of("webhook_endpoint", self.id).after(after))
            .await?;
        Ok(RotatedWebhookSecret { endpoint, secret })
    }
}

/// Which events a replay sends again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// The event with this id (the `webhook-id` it was sent with is `msg_` and its simple
    /// form).
    Event(Uuid),
    /// Every event that occurred in `[from, to)` and the endpoint already got past, of the
    /// types it takes (at most [`webhooks::MAX_REPLAY_EVENTS`] per request).
    Range {
        /// First instant included.
        from: DateTime<Utc>,
        /// First instant excluded.
        to: DateTime<Utc>,
    },
}

/// Sends events to an endpoint again, beside its stream (each with its own retries); how
/// many were queued. Only events still kept (see [`crate::DispatchSettings::retention`]).
#[derive(Clone, Copy, Debug)]
pub struct ReplayWebhookEvents {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// Which events.
    pub replay: Replay,
}

impl Sealed for ReplayWebhookEvents {}
impl UseCase for ReplayWebhookEvents {
    type Output = u64;
    const OPERATION: Operation = Operation::WebhooksReplay;

    async fn run(&self, cx: &mut Context<'_>) -> Result<u64, SpineError> {
        let selection = match self.replay {
            Replay::Event(event) => ReplaySelection::Event(event),
            Replay::Range { from, to } => ReplaySelection::Range { from, to },
        };
        let queued =
            webhooks::queue_replay(cx.db, cx.tenant()?, self.id, selection, cx.now).await?;
        let after = match self.replay {
            Replay::Event(event) => json!({"event_id": event, "queued": queued}),
            Replay::Range { from, to } => json!({"from": from, "to": to, "queued": queued}),
        };
        cx.audit(Change::of("webhook_endpoint", self.id).after(after))
            .await?;
        cx.wake_dispatcher();
        Ok(queued)
    }
}

/// A page of an endpoint's delivery attempts, newest first.
#[derive(Clone, Copy, Debug)]
pub struct ListWebhookAttempts {
    /// The endpoint.
    pub id: WebhookEndpointId,
    /// Only attempts older than this one (the previous page's last).
    pub before: Option<Uuid>,
    /// At most this many (1 to 100).
    pub limit: u64,
}

impl Sealed for ListWebhookAttempts {}
impl UseCase for ListWebhookAttempts {
    type Output = Vec<WebhookAttempt>;
    const OPERATION: Operation = Operation::WebhooksListAttempts;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<WebhookAttempt>, SpineError> {
        let tenant = cx.tenant()?;
        Ok(webhooks::list_attempts(cx.db, tenant, self.id, self.before, self.limit).await?)
    }
}

impl Spine {
    /// Executes [`CreateWebhookEndpoint`].
    pub async fn create_webhook_endpoint(
        &self,
        principal: &Principal,
        endpoint: CreateEndpoint,
    ) -> Result<CreatedWebhookEndpoint, SpineError> {
        self.execute(principal, CreateWebhookEndpoint { endpoint })
            .await
    }

    /// Executes [`ListWebhookEndpoints`].
    pub async fn list_webhook_endpoints(
        &self,
        principal: &Principal,
    ) -> Result<Vec<WebhookEndpoint>, SpineError> {
        self.execute(principal, ListWebhookEndpoints).await
    }

    /// Executes [`GetWebhookEndpoint`].
    pub async fn get_webhook_endpoint(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
    ) -> Result<WebhookEndpoint, SpineError> {
        self.execute(principal, GetWebhookEndpoint { id }).await
    }

    /// Executes [`UpdateWebhookEndpoint`].
    pub async fn update_webhook_endpoint(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
        changes: UpdateEndpoint,
    ) -> Result<WebhookEndpoint, SpineError> {
        self.execute(principal, UpdateWebhookEndpoint { id, changes })
            .await
    }

    /// Executes [`DeleteWebhookEndpoint`].
    pub async fn delete_webhook_endpoint(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
    ) -> Result<(), SpineError> {
        self.execute(principal, DeleteWebhookEndpoint { id }).await
    }

    /// Executes [`RotateWebhookSecret`].
    pub async fn rotate_webhook_secret(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
        grace_seconds: u32,
    ) -> Result<RotatedWebhookSecret, SpineError> {
        self.execute(principal, RotateWebhookSecret { id, grace_seconds })
            .await
    }

    /// Executes [`ReplayWebhookEvents`].
    pub async fn replay_webhook_events(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
        replay: Replay,
    ) -> Result<u64, SpineError> {
        self.execute(principal, ReplayWebhookEvents { id, replay })
            .await
    }

    /// Executes [`ListWebhookAttempts`].
    pub async fn list_webhook_attempts(
        &self,
        principal: &Principal,
        id: WebhookEndpointId,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<WebhookAttempt>, SpineError> {
        let list = ListWebhookAttempts { id, before, limit };
        self.execute(principal, list).await
    }
}
