//! SDK attestations: evidence that an SDK connected.

use crate::Db;

/// SDK attestations: evidence that an SDK connected.
#[derive(Clone, Copy, Debug)]
pub struct SdkAttestationDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_sdk_attestation_driver(db: Db<'_>) -> SdkAttestationDriver<'_> {
    SdkAttestationDriver { db }
}
