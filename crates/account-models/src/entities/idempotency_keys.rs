//! `idempotency_keys`: a client's `Idempotency-Key` per tenant and credential, with the hash
//! of the request it was first sent with and, once that request's write committed, its
//! response (sealed: it may hold a one-time secret).

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One claimed idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    /// Who sent it within the tenant: `key:<api key id>`, `user:<user id>` or
    /// `operator:<operator id>`; keys of different credentials never meet.
    #[sea_orm(primary_key, auto_increment = false)]
    pub credential: String,
    /// The client's key (1 to 255 visible ASCII characters).
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 of the request's method, path and body.
    #[sea_orm(column_type = "Blob")]
    pub request_hash: Vec<u8>,
    /// The stored response's status; `None` while the first request is in flight.
    pub status_code: Option<i16>,
    /// The stored response's body, sealed (AES-256-GCM); `None` while in flight.
    #[sea_orm(column_type = "Blob", nullable)]
    pub response: Option<Vec<u8>>,
    /// When the key was claimed.
    pub created_at: DateTimeUtc,
    /// From when the key may be claimed anew (and the row purged).
    pub expires_at: DateTimeUtc,
}

crate::schema::table!("idempotency_keys");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
