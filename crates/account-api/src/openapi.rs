//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes as the
//! router is assembled (utoipa-axum), so a route cannot be served without being documented.
//! The error answers every operation can give are added here once, from what the operation
//! is: authenticated or not, with a body or not.
//!
//! Paths are relative to where the router is mounted: a host that nests it
//! (`Router::new().nest("/account", router(state))`) serves a document naming `/account` as
//! its server ([`served_at`]); unnested, the document has no `servers`.

use crate::error::ErrorBody;
use crate::quota::{QuotaInfo, QuotaPeriod};
use account_spine::DomainEvent;
use account_spine::limits::LimitName;
use account_spine::types::{
    ActorType, ApiKeyStatus, BillingPeriod, MembershipRole, OnboardingState, PlanCode, RunStatus,
    SubscriptionStatus, TenantStatus, UserStatus,
};
use axum::Json;
use axum::extract::NestedPath;
use axum::extract::rejection::NestedPathRejection;
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi as _};

/// The security scheme name of `Authorization: Bearer <key>`.
pub(crate) const BEARER: &str = "bearer";
/// The security scheme name of `X-API-Key: <key>`.
pub(crate) const API_KEY: &str = "api_key";

/// The document's fixed parts; paths are added by the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "account API",
        description = "Tenants, API keys, runs and quotas, memory pins, onboarding, usage, the \
            audit log and webhooks. \
            Authenticate with an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. \
            Every error is `{\"error\": code, \"message\": ...}`, with `fields` when input was \
            refused and `quota` (plus `Retry-After`) when a limit was reached. \
            When the server reads from replicas, authenticated responses carry a \
            `Consistency-Token` header: send the latest one back in the same header and your \
            reads see your writes whichever server answers (a malformed one is refused with \
            400 `invalid_header`). \
            Webhooks (Standard Webhooks, https://www.standardwebhooks.com): each endpoint \
            registered with `POST /v1/webhooks` receives the tenant's events of the types it \
            takes, in order, at least once, each as a `POST` of `Content-Type: \
            application/json` with the body `{\"type\": \"api_key.revoked\", \"timestamp\": \
            <RFC 3339>, \"data\": {...}}` and three headers: `webhook-id` (`msg_` and the event \
            id's 32 hex digits, the same on every attempt and replay: deduplicate by it), \
            `webhook-timestamp` (Unix seconds when it was signed; refuse one far from your \
            clock, e.g. by more than 5 minutes) and `webhook-signature` (space-separated \
            `v1,<base64 HMAC-SHA256>` entries over `{webhook-id}.{webhook-timestamp}.{body}`, \
            keyed by the base64-decoded part of the secret after `whsec_`; during a rotation's \
            grace there is one entry per valid secret: accept the message if any matches, \
            comparing in constant time). Answer 2xx within the timeout to acknowledge; \
            redirects are not followed. A failed delivery holds the endpoint at that event and \
            is retried with exponential backoff and jitter (5 s, 5 min, 30 min, 2 h, 5 h, 8 h, \
            8 h; a `Retry-After` on 429, 502, 503 or 504 is honoured); when that runs out, or the \
            endpoint answers 410, it is disabled and a `webhook_endpoint.disabled` event is \
            sent to the tenant's other endpoints. Each attempt is listed under \
            `GET /v1/webhooks/{endpoint_id}/attempts`."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, QuotaInfo, QuotaPeriod))
)]
pub(crate) struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("acc_live_...")
                    .description(Some(
                        "An API key (`Authorization: Bearer <key>`), or a signed-in person's \
                         JWT from a configured OpenID Connect issuer, with `X-Tenant-Id: \
                         <tenant id>` naming the tenant they act in.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key in the `X-API-Key` header.",
            ))),
        );
        let error = |description: &str| -> Response {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        components
            .responses
            .insert("Error".into(), RefOr::T(error("The request was refused.")));
        let mut limited = error(
            "A limit was reached: a request rate (`rate_limited`: the key's own, or the whole \
             tenant's, counted across servers) or a tenant quota (`quota_*`, with `quota` \
             saying which and when it resets).",
        );
        limited.headers.insert(
            "Retry-After".into(),
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
        for (name, description) in [
            (
                "RateLimit-Policy",
                "On `rate_limited`: the refusing limit, `\"key\";q=<requests>;w=60` or `\"tenant\";q=<requests>;w=60` (IETF RateLimit fields).",
            ),
            (
                "RateLimit",
                "On `rate_limited`: `\"<key or tenant>\";r=0;t=<seconds until a request is allowed>`.",
            ),
        ] {
            limited.headers.insert(
                name.into(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(description))
                    .build(),
            );
        }
        components
            .responses
            .insert("Limited".into(), RefOr::T(limited));
    }
}

/// The error answers an operation can give besides the ones it documents itself.
fn add_error_responses(path: &str, operation: &mut Operation) {
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| r != &Default::default()));
    let mut codes = vec!["500"];
    let probe =
        path == "/healthz" || path == "/readyz" || path == "/openapi.json" || path == "/metrics";
    if !probe {
        codes.extend(["400", "404", "409", "422", "503"]);
    }
    if authenticated {
        codes.extend(["401", "403"]);
    }
    if operation.request_body.is_some() {
        // 408: the body stalled past the body read timeout.
        codes.extend(["408", "413", "415"]);
    }
    for code in codes {
        operation
            .responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Error")));
    }
    if authenticated {
        operation
            .responses
            .responses
            .entry("429".to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Limited")));
    }
}

/// The `Idempotency-Key` header of a write that takes it, and the replay's marker on its
/// successes (see [`crate::idempotency`]).
fn add_idempotency_key(operation: &mut Operation) {
    let takes_keys = operation
        .operation_id
        .as_deref()
        .is_some_and(|id| !crate::idempotency::WITHOUT_KEYS.contains(&id));
    if !takes_keys {
        return;
    }
    // A structured-field string of 1 to 255 visible ASCII characters (`\"` and `\\`
    // escaped), or the key bare (not starting with a quote).
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(
            r#"^(?:"(?:[!#-\[\]-~]|\\["\\]){1,255}"|[!#-~][!-~]{0,254})$"#,
        ))
        .build();
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: a later request with the same key and the same method, path \
             and body answers with this request's first response (with `Idempotent-Replayed: \
             true`) instead of writing again. The key is 1 to 255 visible ASCII characters, \
             sent as a structured-field string (`\"8e03978e-...\"`, RFC 8941) or bare; it \
             belongs to the credential that sent it and is kept 24 hours. Only successes are \
             kept: a refused request stores nothing and its retry runs again. The same key \
             with another request is refused with 422 `idempotency_key_reused`; a retry while \
             the first is still running waits for it, then is refused with 409 \
             `idempotency_key_in_flight` if it has not finished within a few seconds. A \
             malformed key is refused with 400 `invalid_header`.",
        ))
        .schema(Some(key))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(parameter);
    for (code, response) in &mut operation.responses.responses {
        if let (true, RefOr::T(response)) = (code.starts_with('2'), response) {
            response.headers.insert(
                "Idempotent-Replayed".into(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["true"])),
                    )
                    .description(Some(
                        "`true` when this answer is the stored response of an earlier request \
                         with the same `Idempotency-Key`.",
                    ))
                    .build(),
            );
        }
    }
}

/// Finishes a collected document: the shared error answers on every operation, and the
/// `Idempotency-Key` header on the writes that take it.
pub(crate) fn finish(mut openapi: OpenApi) -> OpenApi {
    for (path, item) in &mut openapi.paths.paths {
        if let Some(post) = &mut item.post {
            add_idempotency_key(post);
        }
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.options,
            &mut item.head,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            add_error_responses(path, operation);
        }
    }
    openapi
}

/// The document the server serves.
pub(crate) fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| finish(crate::api_routes().split_for_parts().1))
}

/// The fixed parts, for the router to extend.
pub(crate) fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// The document as served by a router mounted at `prefix` (axum's [`NestedPath`], e.g.
/// `/account`): the same paths, with the prefix as the one server (OpenAPI's `servers`, which
/// clients resolve against the document's own address). Unmounted, or mounted at `/`, it is
/// [`document`] unchanged. A prefix with path parameters (`/t/{id}`) would need server
/// variables the document cannot know, so it names no server either.
pub(crate) fn served_at(prefix: Option<&str>) -> OpenApi {
    let mut served = document().clone();
    let prefix = prefix
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty() && !p.contains('{'));
    if let Some(prefix) = prefix {
        served.servers = Some(vec![Server::new(prefix)]);
    }
    served
}

/// The OpenAPI 3 document of this API (generated from the code); mounted under a prefix, it
/// names the prefix as its server.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3 document.", body = Object))
)]
pub(crate) async fn openapi_json(
    mounted_at: Result<NestedPath, NestedPathRejection>,
) -> Json<OpenApi> {
    Json(served_at(mounted_at.ok().as_ref().map(NestedPath::as_str)))
}

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// A run's status.
pub(crate) fn run_status() -> Object {
    string_enum(RunStatus::ALL.iter().map(|s| s.as_str()))
}

/// An API key's status.
pub(crate) fn key_status() -> Object {
    string_enum(ApiKeyStatus::ALL.iter().map(|s| s.as_str()))
}

/// A membership role.
pub(crate) fn role() -> Object {
    string_enum(MembershipRole::ALL.iter().map(|s| s.as_str()))
}

/// An onboarding state.
pub(crate) fn onboarding_state() -> Object {
    string_enum(OnboardingState::ALL.iter().map(|s| s.name()))
}

/// A tenant's lifecycle status.
pub(crate) fn tenant_status() -> Object {
    string_enum(TenantStatus::ALL.iter().map(|s| s.as_str()))
}

/// A plan's code (plans are data: any code an operator created; `free`, `pro` and
/// `enterprise` are built in).
pub(crate) fn plan() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z][a-z0-9_-]*$"))
        .min_length(Some(1))
        .max_length(Some(PlanCode::MAX))
        .examples(["pro"])
        .build()
}

/// A subscription's status.
pub(crate) fn subscription_status() -> Object {
    string_enum(SubscriptionStatus::ALL.iter().map(|s| s.as_str()))
}

/// How often a subscription bills.
pub(crate) fn billing_period() -> Object {
    string_enum(BillingPeriod::ALL.iter().map(|s| s.as_str()))
}

/// A user's account status.
pub(crate) fn user_status() -> Object {
    string_enum(UserStatus::ALL.iter().map(|s| s.as_str()))
}

/// A limit a platform operator can override for one tenant.
pub(crate) fn limit_name() -> Object {
    string_enum(LimitName::ALL.iter().map(|l| l.as_str()))
}

/// Who performed an audited action.
pub(crate) fn actor_type() -> Object {
    string_enum(ActorType::ALL.iter().map(|s| s.as_str()))
}

/// The event types a webhook endpoint may name: `*`, each family (`api_key.*`) and each type
/// the spine publishes, at most 64 of them.
pub(crate) fn event_type_patterns() -> Array {
    let types = DomainEvent::TYPES;
    let mut patterns = vec!["*".to_owned()];
    for event_type in types {
        if let Some((family, _)) = event_type.split_once('.') {
            let family = format!("{family}.*");
            if !patterns.contains(&family) {
                patterns.push(family);
            }
        }
    }
    patterns.extend(types.iter().map(|&t| t.to_owned()));
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(patterns));
    ArrayBuilder::new()
        .description(Some(
            "The event types the endpoint takes: exact (`api_key.revoked`), a family \
             (`api_key.*`) or `*` (every type); empty takes every type. At most 64.",
        ))
        .items(item)
        // The engines' `MAX_EVENT_TYPES`, which the spine does not re-export.
        .max_items(Some(64))
        .build()
}

/// Why a webhook endpoint is disabled, or `null` while it is enabled.
pub(crate) fn disabled_reason() -> Object {
    let reasons = ["by_request", "failing", "gone"].map(serde_json::Value::from);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "Why the endpoint is disabled: `by_request` (its owner disabled it), `failing` (its \
             retry schedule ran out, about a day of failures) or `gone` (it answered 410); \
             `null` while it is enabled. Enabling it again clears this and sends the event it \
             stopped at again.",
        ))
        .enum_values(Some(reasons.into_iter().chain([serde_json::Value::Null])))
        .build()
}

#[cfg(test)]
mod tests {
    use super::served_at;

    #[test]
    fn a_fixed_prefix_is_the_one_server() {
        let url = |prefix| served_at(Some(prefix)).servers.unwrap()[0].url.clone();
        assert_eq!(url("/account"), "/account");
        assert_eq!(url("/api/account/"), "/api/account");
        // Not nested, nested at the root, or at a path with parameters: no server.
        for prefix in [None, Some("/"), Some("/t/{tenant}")] {
            assert!(served_at(prefix).servers.is_none(), "{prefix:?}");
        }
    }
}
