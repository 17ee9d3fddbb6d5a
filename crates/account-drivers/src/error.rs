//! `DriverError`: database failures classified by what the caller can do about them.
//!
//! Constraint violations carry the constraint's name (every constraint and index is named in
//! the migrations), so an engine maps `uq_tenants_slug` to "slug taken" without parsing text.
//! PostgreSQL reports the name; SQLite reports the columns (`UNIQUE constraint failed:
//! tenants.slug`) or, for expression indexes, the index name, so [`SQLITE_UNIQUE_COLUMNS`]
//! translates columns back to names.

use sea_orm::{DbErr, RuntimeErr};

/// Why a driver call failed. No business words here: engines give them meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The row addressed (by id, always within a tenant) does not exist.
    #[error("{entity} not found")]
    NotFound {
        /// The kind of row, e.g. `tenant`.
        entity: &'static str,
    },
    /// A unique constraint refused the write.
    #[error("unique constraint {constraint} violated")]
    Conflict {
        /// The constraint's name from the migrations, e.g. `uq_tenants_slug`.
        constraint: String,
        /// The database's own report.
        #[source]
        source: DbErr,
    },
    /// A foreign key refused the write (the referenced row is missing, or still referenced).
    #[error("foreign key constraint violated")]
    ForeignKey {
        /// The constraint's name where the backend reports it (PostgreSQL does, SQLite not).
        constraint: Option<String>,
        /// The database's own report.
        #[source]
        source: DbErr,
    },
    /// A check constraint or a guard trigger refused the write (e.g. rewriting a finished run).
    #[error("the database rejected the write")]
    Rejected {
        /// The constraint or trigger's name where the backend reports it.
        constraint: Option<String>,
        /// The database's own report.
        #[source]
        source: DbErr,
    },
    /// The database cannot store a character in the text written: PostgreSQL refuses the NUL
    /// character (U+0000) in `text` and `jsonb`, and characters outside the database encoding.
    /// Engines refuse NUL before writing; this catches any path they miss, as caller input.
    #[error("the text contains a character the database cannot store")]
    UnstorableText(#[source] DbErr),
    /// A serialization failure, deadlock or lock timeout: retrying the transaction may succeed.
    #[error("transaction conflict; retry")]
    Contention(#[source] DbErr),
    /// The database could not be reached or no pooled connection was free in time.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    /// Anything else: a bug or an environment problem, never the caller's input.
    #[error("database error")]
    Other(#[source] DbErr),
}

impl DriverError {
    /// Whether the whole transaction may be retried (serialization failure, deadlock, busy).
    pub fn is_contention(&self) -> bool {
        matches!(self, DriverError::Contention(_))
    }

    /// The violated unique constraint's name, if that is what this is.
    pub fn conflicting_constraint(&self) -> Option<&str> {
        match self {
            DriverError::Conflict { constraint, .. } => Some(constraint),
            _ => None,
        }
    }
}

/// SQLite names a unique violation by its columns; this maps them to the constraint name.
/// Each entry: (the `table.column, table.column` text SQLite prints, the constraint name).
/// Expression indexes (e.g. on `lower(email)`) are reported by SQLite as `index 'name'` and
/// need no entry. A test provokes every entry on both backends.
pub const SQLITE_UNIQUE_COLUMNS: &[(&str, &str)] = &[
    ("tenants.slug", "uq_tenants_slug"),
    ("tenants.external_org_id", "uq_tenants_external_org_id"),
    ("users.email", "uq_users_email"),
    ("users.external_user_id", "uq_users_external_user_id"),
    (
        "tenant_memberships.tenant_id, tenant_memberships.user_id",
        "uq_tenant_memberships_tenant_id_user_id",
    ),
    ("api_keys.key_digest", "uq_api_keys_key_digest"),
    ("operator_keys.key_digest", "uq_operator_keys_key_digest"),
    (
        "identity_links.issuer, identity_links.subject",
        "uq_identity_links_issuer_subject",
    ),
    (
        "usage_records.tenant_id, usage_records.idempotency_key",
        "uq_usage_records_tenant_id_idempotency_key",
    ),
    (
        "subscriptions.tenant_id, subscriptions.external_id",
        "uq_subscriptions_tenant_id_external_id",
    ),
    (
        "invoices.tenant_id, invoices.external_id",
        "uq_invoices_tenant_id_external_id",
    ),
    (
        "invitations.tenant_id, invitations.token_digest",
        "uq_invitations_tenant_id_token_digest",
    ),
    (
        "memory_pins.tenant_id, memory_pins.key",
        "uq_memory_pins_tenant_id_key",
    ),
    (
        "sdk_attestations.tenant_id, sdk_attestations.attestation_hash",
        "uq_sdk_attestations_tenant_id_attestation_hash",
    ),
];

impl From<DbErr> for DriverError {
    fn from(error: DbErr) -> Self {
        classify(error)
    }
}

/// The database's own error code (SQLSTATE on PostgreSQL, the extended result code on
/// SQLite), where it reported one: for the few callers that tell one code from its class.
pub(crate) fn sqlstate(error: &DbErr) -> Option<String> {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
            match sqlx.as_ref() {
                sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

fn classify(error: DbErr) -> DriverError {
    let report = match &error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return DriverError::Unavailable(error),
        DbErr::RecordNotFound(_) | DbErr::RecordNotUpdated => {
            return DriverError::NotFound { entity: "row" };
        }
        DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
            match sqlx.as_ref() {
                sea_orm::sqlx::Error::Database(db) => DatabaseReport {
                    code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
                    constraint: db.constraint().map(str::to_owned),
                    message: db.message().to_owned(),
                },
                sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::Tls(_)
                | sea_orm::sqlx::Error::Protocol(_)
                | sea_orm::sqlx::Error::WorkerCrashed => return DriverError::Unavailable(error),
                _ => return DriverError::Other(error),
            }
        }
        _ => return DriverError::Other(error),
    };
    match report.kind() {
        ViolationKind::Unique => DriverError::Conflict {
            constraint: report.unique_constraint_name(),
            source: error,
        },
        ViolationKind::ForeignKey => DriverError::ForeignKey {
            constraint: report.constraint,
            source: error,
        },
        ViolationKind::Rejected => DriverError::Rejected {
            constraint: report
                .constraint
                .clone()
                .or_else(|| report.sqlite_check_name()),
            source: error,
        },
        ViolationKind::UnstorableText => DriverError::UnstorableText(error),
        ViolationKind::Contention => DriverError::Contention(error),
        ViolationKind::Unavailable => DriverError::Unavailable(error),
        ViolationKind::Other => DriverError::Other(error),
    }
}

/// The parts of a database-reported error that classification needs.
struct DatabaseReport {
    /// SQLSTATE on PostgreSQL; the extended result code, in decimal, on SQLite.
    code: String,
    constraint: Option<String>,
    message: String,
}

enum ViolationKind {
    Unique,
    ForeignKey,
    Rejected,
    UnstorableText,
    Contention,
    Unavailable,
    Other,
}

impl DatabaseReport {
    fn kind(&self) -> ViolationKind {
        match self.code.as_str() {
            // PostgreSQL SQLSTATEs.
            "23505" => ViolationKind::Unique,
            "23503" => ViolationKind::ForeignKey,
            "23514" | "23001" | "P0001" => ViolationKind::Rejected,
            // untranslatable_character (NUL in jsonb), character_not_in_repertoire (NUL in text).
            "22P05" | "22021" => ViolationKind::UnstorableText,
            "40001" | "40P01" | "55P03" => ViolationKind::Contention,
            "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" => ViolationKind::Unavailable,
            // SQLite extended result codes: UNIQUE, PRIMARYKEY; FOREIGNKEY; CHECK, TRIGGER;
            // BUSY (and its variants), LOCKED.
            "2067" | "1555" => ViolationKind::Unique,
            "787" => ViolationKind::ForeignKey,
            "275" | "1811" => ViolationKind::Rejected,
            "5" | "261" | "517" | "6" | "262" => ViolationKind::Contention,
            _ => ViolationKind::Other,
        }
    }

    fn unique_constraint_name(&self) -> String {
        if let Some(name) = &self.constraint {
            return name.clone();
        }
        // SQLite: "UNIQUE constraint failed: index 'uq_x'" or "... failed: t.a, t.b".
        let detail = self
            .message
            .split_once("constraint failed: ")
            .map_or(self.message.as_str(), |(_, detail)| detail);
        if let Some(index) = detail.strip_prefix("index '") {
            return index.trim_end_matches('\'').to_owned();
        }
        SQLITE_UNIQUE_COLUMNS
            .iter()
            .find(|(columns, _)| *columns == detail)
            .map_or_else(|| detail.to_owned(), |(_, name)| (*name).to_owned())
    }

    /// SQLite: "CHECK constraint failed: ck_name", or a guard trigger's RAISE text, which
    /// starts with the trigger's name ("tg_worker_runs_immutable: ...").
    fn sqlite_check_name(&self) -> Option<String> {
        if let Some(name) = self.message.strip_prefix("CHECK constraint failed: ") {
            return Some(name.to_owned());
        }
        self.message
            .split_once(':')
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("tg_"))
            .map(str::to_owned)
    }
}
