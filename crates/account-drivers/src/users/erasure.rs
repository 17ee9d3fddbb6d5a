//! A user's erasure: the record (`user_erasures`), the tombstone the user row becomes, the
//! identity links dropped, and the rewrite of every stored text that names the person.
//!
//! The rewrite is a scan: [`SCRUBBED`] lists each table and the columns that can hold a
//! person's email or name, and [`scrub_table`] reads the rows whose text contains either
//! (lower-cased `LIKE`, `%` and `_` escaped), asks the caller's [`Rewrite`] for each value,
//! and writes back the values it changed, row by row, by primary key. The name is only
//! replaced in rows linked to the user (their own audit rows, tickets, keys; events naming
//! their id) or in rows that also hold their email, so another person's text that happens
//! to contain the same word is left alone. Not scoped by tenant: a person's data spans every
//! tenant they ever touched (like `users` and `identity_links`), so this is one of the few
//! scans across tenants, bounded by the rows that match.

use crate::db::{execute_raw as execute, our_table, query_raw as query};
use crate::like::LIKE_ESCAPE;
use crate::{Db, DriverError};
use account_models::entities::{identity_links, users};
use account_models::{TenantId, UserId, UserStatus};
use sea_orm::prelude::{DateTimeUtc, Json, Uuid};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
};
use sea_orm::{Statement, Value};

/// Who asked for an erasure, as `user_erasures.requested_by` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestedBy {
    /// The person, signed in.
    User,
    /// A platform operator.
    Operator,
}

impl RequestedBy {
    /// The stored text: `self` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "self",
            Self::Operator => "operator",
        }
    }
}

/// How a table's rows are addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowKey {
    /// A UUID `id`.
    Id,
    /// `(tenant_id, seq)` (the outbox).
    TenantSeq,
}

/// When a row counts as the user's own, so their name is replaced in it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Linked {
    /// Never: only the email is replaced (the name alone could be anyone's word).
    Never,
    /// Its `user_id` is the user.
    UserColumn,
    /// Its `user_id` is the user, or its `resource_id` is the user's id (audit rows).
    UserOrResource,
    /// Its first text column mentions the user's id (event payloads).
    MentionsId,
}

/// One table the erasure rewrites: its key, its text and JSON columns, and which rows are
/// the user's own.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ScrubTarget {
    /// Table name in our schema.
    pub table: &'static str,
    /// How rows are addressed.
    pub key: RowKey,
    /// Text columns that may hold the email or name.
    pub text: &'static [&'static str],
    /// JSON columns that may hold the email or name.
    pub json: &'static [&'static str],
    /// Which rows are the user's own.
    pub linked: Linked,
}

const fn target(
    table: &'static str,
    key: RowKey,
    text: &'static [&'static str],
    json: &'static [&'static str],
    linked: Linked,
) -> ScrubTarget {
    ScrubTarget {
        table,
        key,
        text,
        json,
        linked,
    }
}

/// Every table and column an erasure rewrites. Deliberately not here: `worker_runs` (a
/// finished run is immutable, and runs are the tenant's workload, not account data),
/// `users`, `identity_links` and `tenant_memberships` (the user's own rows are tombstoned or
/// deleted whole), sealed or hashed columns (no clear text).
pub const SCRUBBED: &[ScrubTarget] = &[
    target(
        "audit_log",
        RowKey::Id,
        &["reason"],
        &["old_value", "new_value"],
        Linked::UserOrResource,
    ),
    target("invitations", RowKey::Id, &["email"], &[], Linked::Never),
    target(
        "support_tickets",
        RowKey::Id,
        &["subject", "description", "resolution"],
        &[],
        Linked::UserColumn,
    ),
    target(
        "api_keys",
        RowKey::Id,
        &["name", "revoked_reason", "freeze_reason", "frozen_by"],
        &["metadata"],
        Linked::UserColumn,
    ),
    target("memory_pins", RowKey::Id, &[], &["value"], Linked::Never),
    target(
        "event_outbox",
        RowKey::TenantSeq,
        &["payload"],
        &[],
        Linked::MentionsId,
    ),
    target(
        "webhook_attempts",
        RowKey::Id,
        &["snippet"],
        &[],
        Linked::Never,
    ),
    target(
        "tenants",
        RowKey::Id,
        &["billing_email"],
        &[],
        Linked::Never,
    ),
    target(
        "lifecycle_events",
        RowKey::Id,
        &["reason"],
        &[],
        Linked::Never,
    ),
];

/// What an erasure writes in place of a value: `None` leaves the value as it is.
pub trait Rewrite: Sync {
    /// The new text of `value` (`linked`: the row is the user's own).
    fn text(&self, value: &str, linked: bool) -> Option<String>;
    /// The new JSON of `value`.
    fn json(&self, value: &Json, linked: bool) -> Option<Json>;
}

/// The person an erasure looks for, lower-cased as the scan compares.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Needles {
    /// The user.
    pub user: UserId,
    /// Their email.
    pub email: String,
    /// Their display name, if they had one.
    pub name: Option<String>,
}

impl Needles {
    /// The needles of `user` with `email` and `name`.
    pub fn new(user: UserId, email: &str, name: Option<&str>) -> Self {
        Self {
            user,
            email: email.to_lowercase(),
            name: name
                .map(str::to_lowercase)
                .filter(|name| !name.trim().is_empty()),
        }
    }
}

fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Builds one raw statement's placeholders in order.
struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    fn push(&mut self, value: Value) -> String {
        self.values.push(value);
        crate::db::param(self.backend, self.values.len())
    }
}

fn like(column: &str, placeholder: &str) -> String {
    format!("lower(CAST({column} AS TEXT)) LIKE {placeholder} ESCAPE '\\'")
}

/// Rewrites `target`'s rows that hold the needles; the number of rows changed.
pub async fn scrub_table(
    db: Db<'_>,
    target: &ScrubTarget,
    needles: &Needles,
    rewrite: &dyn Rewrite,
) -> Result<u64, DriverError> {
    let backend = db.conn().get_database_backend();
    let mut params = Params {
        backend,
        values: Vec::new(),
    };
    let columns: Vec<&str> = target.text.iter().chain(target.json).copied().collect();
    let email = params.push(Value::from(contains_pattern(&needles.email)));
    let any_email = columns
        .iter()
        .map(|c| like(c, &email))
        .collect::<Vec<_>>()
        .join(" OR ");
    let linked = match target.linked {
        Linked::Never => "1 = 0".to_owned(),
        Linked::UserColumn => format!("user_id = {}", params.push(user_value(needles.user))),
        Linked::UserOrResource => format!(
            "(user_id = {} OR resource_id = {})",
            params.push(user_value(needles.user)),
            params.push(Value::from(needles.user.to_string())),
        ),
        Linked::MentionsId => like(
            columns.first().copied().unwrap_or("''"),
            &params.push(Value::from(contains_pattern(&needles.user.to_string()))),
        ),
    };
    let mut filter = format!("({any_email})");
    if let (Some(name), false) = (&needles.name, target.linked == Linked::Never) {
        let name = params.push(Value::from(contains_pattern(name)));
        let any_name = columns
            .iter()
            .map(|c| like(c, &name))
            .collect::<Vec<_>>()
            .join(" OR ");
        filter = format!("{filter} OR ({linked} AND ({any_name}))");
    }
    let keys = match target.key {
        RowKey::Id => "id",
        RowKey::TenantSeq => "tenant_id, seq",
    };
    let selected = columns.join(", ");
    let sql = format!(
        "SELECT {keys}, {selected}, CASE WHEN {linked} THEN 1 ELSE 0 END AS linked FROM {} \
         WHERE {filter}",
        our_table(target.table)
    );
    let rows = query(db, sql, params.values).await?;
    let mut changed = 0;
    for row in rows {
        let linked: i32 = row.try_get("", "linked")?;
        let mut values = Vec::new();
        let mut sets = Vec::new();
        let mut update = Params {
            backend,
            values: Vec::new(),
        };
        for column in &columns {
            if target.json.contains(column) {
                let Some(json) = row.try_get::<Option<Json>>("", column)? else {
                    continue;
                };
                if let Some(new) = rewrite.json(&json, linked != 0) {
                    sets.push(format!("{column} = {}", update.push(Value::from(new))));
                }
                continue;
            }
            let Some(text) = row.try_get::<Option<String>>("", column)? else {
                continue;
            };
            if let Some(new) = rewrite.text(&text, linked != 0) {
                sets.push(format!("{column} = {}", update.push(Value::from(new))));
            }
        }
        if sets.is_empty() {
            continue;
        }
        let key = match target.key {
            RowKey::Id => {
                let id: Uuid = row.try_get("", "id")?;
                format!("id = {}", update.push(Value::from(id)))
            }
            RowKey::TenantSeq => {
                let tenant: Uuid = row.try_get("", "tenant_id")?;
                let seq: i64 = row.try_get("", "seq")?;
                format!(
                    "tenant_id = {} AND seq = {}",
                    update.push(Value::from(tenant)),
                    update.push(Value::from(seq)),
                )
            }
        };
        values.append(&mut update.values);
        let sql = format!(
            "UPDATE {} SET {} WHERE {key}",
            our_table(target.table),
            sets.join(", ")
        );
        changed += execute(db, sql, values).await?;
    }
    Ok(changed)
}

fn user_value(user: UserId) -> Value {
    Value::from(user.as_uuid())
}

/// Starts `user`'s erasure: records it (`completed_at` empty until
/// [`complete_erasure`]) and, on PostgreSQL, names this transaction the erasure for the audit
/// log's guard (`account.audit_erasure`, transaction-local: one statement more). `false` when
/// the user was erased before (nothing written).
pub async fn begin_erasure(
    db: Db<'_>,
    user: UserId,
    pseudonym: &str,
    requested_by: RequestedBy,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let conn = db.conn();
    let backend = conn.get_database_backend();
    let [u, p, r, t] = crate::db::params::<4>(backend);
    let sql = format!(
        "INSERT INTO {} (user_id, pseudonym, requested_by, requested_at) VALUES ({u}, {p}, {r}, {t}) \
         ON CONFLICT (user_id) DO NOTHING",
        our_table("user_erasures")
    );
    let values = vec![
        user_value(user),
        Value::from(pseudonym),
        Value::from(requested_by.as_str()),
        Value::from(now),
    ];
    if execute(db, sql, values).await? == 0 {
        return Ok(false);
    }
    if backend == DbBackend::Postgres {
        // The guard lets this transaction, and only it, rewrite audit rows' personal data.
        let allow = "SELECT set_config('account.audit_erasure', txid_current()::text, true)";
        conn.execute_raw(Statement::from_string(DbBackend::Postgres, allow))
            .await?;
    }
    Ok(true)
}

/// Completes `user`'s erasure at `now` (on SQLite this also closes the audit guard's path).
pub async fn complete_erasure(
    db: Db<'_>,
    user: UserId,
    now: DateTimeUtc,
) -> Result<(), DriverError> {
    let [t, u] = crate::db::params::<2>(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET completed_at = {t} WHERE user_id = {u}",
        our_table("user_erasures")
    );
    execute(db, sql, vec![Value::from(now), user_value(user)]).await?;
    Ok(())
}

/// A completed erasure as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErasureSnapshot {
    /// The user.
    pub user_id: UserId,
    /// Their pseudonym.
    pub pseudonym: String,
    /// `self` or `operator`.
    pub requested_by: String,
    /// When it was asked for.
    pub requested_at: DateTimeUtc,
    /// When it completed.
    pub completed_at: Option<DateTimeUtc>,
}

/// `user`'s erasure, if they were erased.
pub async fn fetch_erasure(
    db: Db<'_>,
    user: UserId,
) -> Result<Option<ErasureSnapshot>, DriverError> {
    let [u] = crate::db::params::<1>(db.conn().get_database_backend());
    let sql = format!(
        "SELECT pseudonym, requested_by, requested_at, completed_at FROM {} WHERE user_id = {u}",
        our_table("user_erasures")
    );
    let rows = query(db, sql, vec![user_value(user)]).await?;
    rows.first()
        .map(|row| {
            Ok(ErasureSnapshot {
                user_id: user,
                pseudonym: row.try_get("", "pseudonym")?,
                requested_by: row.try_get("", "requested_by")?,
                requested_at: row.try_get("", "requested_at")?,
                completed_at: row.try_get("", "completed_at")?,
            })
        })
        .transpose()
}

/// Turns the user row into a tombstone: `email` (the pseudonym's address) in place of theirs,
/// every other personal column emptied, status `deleted`; the id stays, so what points at it
/// (audit rows, tickets, runs) still does. `false` when there is no such live user.
pub async fn tombstone_user(
    db: Db<'_>,
    user: UserId,
    email: &str,
    now: DateTimeUtc,
) -> Result<bool, DriverError> {
    let result = users::Entity::update_many()
        .set(users::ActiveModel {
            email: Set(email.to_owned()),
            external_user_id: Set(None),
            name: Set(None),
            avatar_url: Set(None),
            oauth_provider: Set(None),
            oauth_provider_id: Set(None),
            email_verified: Set(false),
            email_verified_at: Set(None),
            default_tenant_id: Set(None),
            status: Set(UserStatus::Deleted),
            time_zone: Set(None),
            locale: Set(None),
            preferences: Set(None),
            last_login_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(users::Column::Id.eq(user))
        .filter(users::Column::Status.ne(UserStatus::Deleted))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Deletes every identity link of `user` (they can no longer sign in); how many.
pub async fn delete_identity_links(db: Db<'_>, user: UserId) -> Result<u64, DriverError> {
    let result = identity_links::Entity::delete_many()
        .filter(identity_links::Column::UserId.eq(user))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected)
}

/// Revokes every pending invitation to `email` (normalised), in every tenant; how many.
pub async fn revoke_invitations_to(
    db: Db<'_>,
    email: &str,
    now: DateTimeUtc,
) -> Result<u64, DriverError> {
    let [t, e] = crate::db::params::<2>(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET status = 'revoked', revoked_at = {t}, updated_at = {t} \
         WHERE lower(email) = {e} AND status = 'pending'",
        our_table("invitations")
    );
    execute(
        db,
        sql,
        vec![Value::from(now), Value::from(email.to_lowercase())],
    )
    .await
}

/// Empties the client address and user agent of every audit row the user acted in; how
/// many rows (the guard allows it only inside [`begin_erasure`]'s transaction).
pub async fn forget_audit_requests(db: Db<'_>, user: UserId) -> Result<u64, DriverError> {
    let [u] = crate::db::params::<1>(db.conn().get_database_backend());
    let sql = format!(
        "UPDATE {} SET ip_address = NULL, user_agent = NULL WHERE user_id = {u} \
         AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)",
        our_table("audit_log")
    );
    execute(db, sql, vec![user_value(user)]).await
}

/// Deletes the idempotency keys `credential` holds in `tenant` (their responses are sealed,
/// but the erased person will never replay them); how many.
pub async fn delete_idempotency_keys(
    db: Db<'_>,
    tenant: TenantId,
    credential: &str,
) -> Result<u64, DriverError> {
    let [t, c] = crate::db::params::<2>(db.conn().get_database_backend());
    let sql = format!(
        "DELETE FROM {} WHERE tenant_id = {t} AND credential = {c}",
        our_table("idempotency_keys")
    );
    let values = vec![Value::from(tenant.as_uuid()), Value::from(credential)];
    execute(db, sql, values).await
}
