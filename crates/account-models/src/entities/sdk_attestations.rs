//! `sdk_attestations`: evidence that an SDK connected for a tenant (used by onboarding activation).

use crate::ids::*;
use sea_orm::entity::prelude::*;

/// One attestation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AttestationId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// SDK version.
    pub sdk_version: String,
    /// SDK language.
    pub sdk_language: String,
    /// Client id, if the SDK sent one.
    pub client_id: Option<String>,
    /// Digest of tenant, version, language and client; unique per tenant.
    pub attestation_hash: String,
    /// Last attestation time.
    pub attested_at: DateTimeUtc,
}

crate::schema::table!("sdk_attestations");

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are navigated through the ORM; drivers join explicitly.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
