//! The audit log, read: a page at a time ([`ListAuditLog`]) and streamed whole for a window
//! ([`Spine::export_audit_log`], an [`AuditExport`] that reads [`ExportAuditLog`] chunks);
//! and kept within each tenant's retention ([`purge`]). Every use case writes its own audit
//! row through the executor; nothing here writes one but the purge.
//!
//! Both reads are owners' and admins' (`audit:read` for a personal key; machine keys are
//! refused, as for billing), newest first by time then id, keyset-paged: a page or a chunk
//! costs one statement at any depth.
//!
//! **An export's consistency**: each chunk is its own read, with its own snapshot (and, with
//! replicas, possibly its own replica), rather than one long transaction: a snapshot held for
//! the minutes a million rows take would hold back vacuum on PostgreSQL and checkpoints on
//! SQLite, and pin one connection for the whole download. Chunks continue strictly after the
//! last row sent, so no row is sent twice and none is skipped that was committed before the
//! export began. Rows committed while it runs may be missing, when their time falls in the
//! part already sent (a write's time is its use case's clock reading, taken before it
//! commits), and rows the purge deleted meanwhile are. A client that needs a closed window
//! exports one that ended a little while ago.

pub mod purge;

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Context, Sealed, UseCase};
use account_engines::KeysetPage;
use account_engines::audit;

pub use account_engines::audit::{
    ActionMatch, AuditError, AuditFilter, AuditPosition, AuditRecord, EXPORT_CHUNK_ROWS,
    MAX_ACTION_CHARS, MAX_RESOURCE_ID_CHARS, MAX_RESOURCE_TYPE_CHARS, parse_action,
};

/// A page of the tenant's audit log matching `filter`, newest first, after `after` (`limit`
/// 1 to 100 entries).
#[derive(Clone, Debug)]
pub struct ListAuditLog {
    /// Which entries.
    pub filter: AuditFilter,
    /// Where the previous page ended (`None`: the newest entries).
    pub after: Option<AuditPosition>,
    /// Entries per page.
    pub limit: u64,
}

impl Sealed for ListAuditLog {}
impl UseCase for ListAuditLog {
    type Output = KeysetPage<AuditRecord, AuditPosition>;
    const OPERATION: Operation = Operation::AuditList;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Self::Output, SpineError> {
        let tenant = cx.tenant()?;
        Ok(audit::list(cx.db, tenant, &self.filter, self.after, self.limit).await?)
    }
}

/// One chunk of an export: the next [`EXPORT_CHUNK_ROWS`] entries matching `filter` after
/// `after`, in the list's order. The filter must name a window (`from` and `to`). Hosts
/// stream a whole export with [`Spine::export_audit_log`].
#[derive(Clone, Debug)]
pub struct ExportAuditLog {
    /// Which entries; `from` and `to` are required.
    pub filter: AuditFilter,
    /// Where the previous chunk ended (`None`: the start of the export).
    pub after: Option<AuditPosition>,
}

impl Sealed for ExportAuditLog {}
impl UseCase for ExportAuditLog {
    type Output = KeysetPage<AuditRecord, AuditPosition>;
    const OPERATION: Operation = Operation::AuditExport;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Self::Output, SpineError> {
        let tenant = cx.tenant()?;
        Ok(audit::export_chunk(cx.db, tenant, &self.filter, self.after).await?)
    }
}

/// An export of the tenant's audit log in progress: [`AuditExport::next_chunk`] reads the
/// next chunk (one [`ExportAuditLog`] call: authority, capability and a read of its own), so
/// the caller holds one chunk at a time whatever the export's size. It owns what it needs
/// (a handle on the spine, the principal), so it can move into a response body.
#[derive(Debug)]
pub struct AuditExport {
    spine: Spine,
    principal: Principal,
    filter: AuditFilter,
    after: Option<AuditPosition>,
    finished: bool,
}

impl AuditExport {
    /// The next chunk, newest first; `None` once the export is complete. After an error the
    /// same chunk is read again by the next call.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<AuditRecord>>, SpineError> {
        if self.finished {
            return Ok(None);
        }
        let chunk = ExportAuditLog {
            filter: self.filter.clone(),
            after: self.after,
        };
        let page = self.spine.execute(&self.principal, chunk).await?;
        self.after = page.next;
        self.finished = page.next.is_none();
        Ok(Some(page.items).filter(|items| !items.is_empty()))
    }
}

impl Spine {
    /// Executes [`ListAuditLog`].
    pub async fn list_audit_log(
        &self,
        principal: &Principal,
        filter: AuditFilter,
        after: Option<AuditPosition>,
        limit: u64,
    ) -> Result<KeysetPage<AuditRecord, AuditPosition>, SpineError> {
        let list = ListAuditLog {
            filter,
            after,
            limit,
        };
        self.execute(principal, list).await
    }

    /// An export of the tenant's audit entries matching `filter`, whose window (`from` and
    /// `to`) is required: read it with [`AuditExport::next_chunk`] until `None`. Nothing is
    /// read yet; the first chunk checks the caller's authority and the filter, so a caller
    /// that must answer refusals before sending anything reads it first. See the module's
    /// documentation for what each chunk sees.
    pub fn export_audit_log(&self, principal: &Principal, filter: AuditFilter) -> AuditExport {
        AuditExport {
            spine: self.clone(),
            principal: principal.clone(),
            filter,
            after: None,
            finished: false,
        }
    }
}
