//! SDK attestations: evidence that an SDK connected, upserted per (tenant, hash).

use crate::{Db, DriverError};
use account_models::entities::sdk_attestations;
use account_models::{AttestationId, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

/// SDK attestation data access, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct SdkAttestationDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The attestation driver on `db`.
pub fn get_sdk_attestation_driver(db: Db<'_>) -> SdkAttestationDriver<'_> {
    SdkAttestationDriver { db }
}

/// An attestation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationSnapshot {
    /// Id.
    pub id: AttestationId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// SDK version.
    pub sdk_version: String,
    /// SDK language.
    pub sdk_language: String,
    /// Client id.
    pub client_id: Option<String>,
    /// The engine's digest of tenant, version, language and client.
    pub attestation_hash: String,
    /// Last attestation.
    pub attested_at: DateTimeUtc,
}

/// An attestation to record.
#[derive(Clone, Debug)]
pub struct NewAttestation<'a> {
    /// The tenant.
    pub tenant_id: TenantId,
    /// SDK version.
    pub sdk_version: &'a str,
    /// SDK language.
    pub sdk_language: &'a str,
    /// Client id.
    pub client_id: Option<&'a str>,
    /// The engine's digest.
    pub attestation_hash: &'a str,
}

fn snapshot(m: sdk_attestations::Model) -> AttestationSnapshot {
    AttestationSnapshot {
        id: m.id,
        tenant_id: m.tenant_id,
        sdk_version: m.sdk_version,
        sdk_language: m.sdk_language,
        client_id: m.client_id,
        attestation_hash: m.attestation_hash,
        attested_at: m.attested_at,
    }
}

impl SdkAttestationDriver<'_> {
    /// Records an attestation; a repeat refreshes `attested_at` and the version. One statement.
    pub async fn write_attestation(
        &self,
        attestation: NewAttestation<'_>,
        now: DateTimeUtc,
    ) -> Result<AttestationSnapshot, DriverError> {
        let model = sdk_attestations::ActiveModel {
            id: Set(AttestationId::new()),
            tenant_id: Set(attestation.tenant_id),
            sdk_version: Set(attestation.sdk_version.to_owned()),
            sdk_language: Set(attestation.sdk_language.to_owned()),
            client_id: Set(attestation.client_id.map(str::to_owned)),
            attestation_hash: Set(attestation.attestation_hash.to_owned()),
            attested_at: Set(now),
        };
        let row = sdk_attestations::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    sdk_attestations::Column::TenantId,
                    sdk_attestations::Column::AttestationHash,
                ])
                .update_columns([
                    sdk_attestations::Column::AttestedAt,
                    sdk_attestations::Column::SdkVersion,
                ])
                .to_owned(),
            )
            .exec_with_returning(self.db.conn())
            .await?;
        Ok(snapshot(row))
    }

    /// The tenant's latest attestation.
    pub async fn fetch_attestation(
        &self,
        tenant: TenantId,
    ) -> Result<Option<AttestationSnapshot>, DriverError> {
        let row = sdk_attestations::Entity::find()
            .filter(sdk_attestations::Column::TenantId.eq(tenant))
            .order_by_desc(sdk_attestations::Column::AttestedAt)
            .order_by_desc(sdk_attestations::Column::Id)
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Whether the tenant has any attestation (one statement).
    pub async fn has_attestation(&self, tenant: TenantId) -> Result<bool, DriverError> {
        let count = sdk_attestations::Entity::find()
            .filter(sdk_attestations::Column::TenantId.eq(tenant))
            .count(self.db.conn())
            .await?;
        Ok(count > 0)
    }
}
