//! Self-service projects: a signed-in person creates a project of their own (they become its
//! owner; at most [`MAX_OWNED_PROJECTS`] owned at once), an admin renames it, a member leaves
//! it (not as its last owner), and an owner deletes it. A deletion is soft: from its commit
//! the tenant is gone to every request (its keys answer like missing ones, its members'
//! principals and every use case meet `tenant_not_found`), until a signed-in owner restores
//! it within [`RESTORE_WINDOW_DAYS`]. After that the reaper's pass purges it
//! ([`Spine::purge_deleted_projects`]): the tenant's rows table by table, at most a batch per
//! statement and transaction, the tenant row last; the one record left is a platform-wide
//! audit row (`project.purged`, no tenant, no personal data: the tenant id and the rows
//! removed per table). The purge publishes no event: the tenant's outbox is among what it
//! removes; subscribers learned the date from `project.deleted`.

use crate::database::Spine;
use crate::error::SpineError;
use crate::events::DomainEvent;
use crate::identities::SignedIn;
use crate::operations::Operation;
use crate::principal::{Principal, RequestMeta};
use crate::use_case::{Change, Context, Sealed, UseCase};
use account_engines::identities::IdentityError;
use account_engines::memberships::{self, Membership};
use account_engines::projects::{self as projects, PurgeStep};
use account_engines::tenants::CreatedTenant;
use account_engines::types::TenantId;
use serde_json::{Map, json};
use std::collections::BTreeMap;

pub use account_engines::projects::{
    MAX_OWNED_PROJECTS, ProjectDeletion, ProjectError, RESTORE_WINDOW_DAYS,
};

/// Creates a project owned by the signed-in person, on the default plan.
#[derive(Clone, Debug)]
pub struct CreateProject {
    /// Its name (a slug is derived from it).
    pub name: String,
}

impl Sealed for CreateProject {}
impl UseCase for CreateProject {
    type Output = CreatedTenant;
    const OPERATION: Operation = Operation::AccountCreateProject;

    async fn run(&self, cx: &mut Context<'_>) -> Result<CreatedTenant, SpineError> {
        let owner = cx.person()?;
        let created = projects::create_project(cx.db, owner, &self.name, cx.now).await?;
        let id = created.tenant.id;
        let after = json!({
            "name": created.tenant.name,
            "slug": created.tenant.slug,
            "plan": created.tenant.plan,
            "owner": owner,
        });
        cx.audit(Change::of("tenant", id).in_tenant(id).after(after))
            .await?;
        cx.publish(DomainEvent::ProjectCreated {
            tenant_id: id,
            owner,
        });
        Ok(created)
    }
}

/// Renames the principal's project.
#[derive(Clone, Debug)]
pub struct RenameProject {
    /// The new name.
    pub name: String,
}

impl Sealed for RenameProject {}
impl UseCase for RenameProject {
    type Output = String;
    const OPERATION: Operation = Operation::AccountRenameProject;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<String, SpineError> {
        let tenant = cx.tenant()?;
        let (from, to) = projects::rename_project(cx.db, tenant, &self.name, cx.now).await?;
        let change = Change::of("tenant", tenant)
            .before(json!({"name": from}))
            .after(json!({"name": to}));
        cx.audit(change).await?;
        cx.publish(DomainEvent::ProjectRenamed {
            tenant_id: tenant,
            from,
            to: to.clone(),
        });
        Ok(to)
    }
}

/// The acting member leaves the principal's project (refused for its last owner,
/// `last_owner`); their personal keys of it are revoked with the membership.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeaveProject;

impl Sealed for LeaveProject {}
impl UseCase for LeaveProject {
    type Output = Membership;
    const OPERATION: Operation = Operation::AccountLeaveProject;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Membership, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        let removal =
            memberships::remove_member(cx.db, tenant, actor, actor.user_id, cx.now).await?;
        let before = json!({
            "role": removal.membership.role,
            "personal_keys_revoked": removal.revoked_keys,
        });
        cx.audit(Change::of("membership", actor.user_id).before(before))
            .await?;
        for key in &removal.revoked_keys {
            cx.forget_key(tenant, *key);
        }
        cx.forget_member(tenant, actor.user_id);
        cx.publish(DomainEvent::MemberRemoved {
            tenant_id: tenant,
            user_id: actor.user_id,
            role: removal.membership.role,
            removed_by: actor.user_id,
        });
        Ok(removal.membership)
    }
}

/// Deletes the principal's project softly (owners): gone from the commit, restorable by a
/// signed-in owner until the deletion's `purge_after`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteProject;

impl Sealed for DeleteProject {}
impl UseCase for DeleteProject {
    type Output = ProjectDeletion;
    const OPERATION: Operation = Operation::AccountDeleteProject;
    const ACTS_AS_MEMBER: bool = true;

    async fn run(&self, cx: &mut Context<'_>) -> Result<ProjectDeletion, SpineError> {
        let (tenant, actor) = (cx.tenant()?, cx.member()?);
        // The role as the membership has it now (the principal's is a claim).
        projects::require_owner(cx.db, tenant, actor.user_id).await?;
        let deletion = projects::delete_project(cx.db, tenant, actor.user_id, cx.now).await?;
        let after = json!({"purge_after": deletion.purge_after});
        cx.audit(Change::of("tenant", tenant).after(after)).await?;
        // Every cached key and role of the tenant goes, here and on the other instances.
        cx.forget_tenant(tenant);
        cx.publish(DomainEvent::ProjectDeleted {
            tenant_id: tenant,
            deleted_by: actor.user_id,
            purge_after: deletion.purge_after,
        });
        Ok(deletion)
    }
}

/// Restores a deleted project within its window (a signed-in owner of it).
#[derive(Clone, Copy, Debug)]
pub struct RestoreProject {
    /// The project.
    pub project: TenantId,
}

impl Sealed for RestoreProject {}
impl UseCase for RestoreProject {
    type Output = ProjectDeletion;
    const OPERATION: Operation = Operation::AccountRestoreProject;

    async fn run(&self, cx: &mut Context<'_>) -> Result<ProjectDeletion, SpineError> {
        let user = cx.person()?;
        projects::require_owner(cx.db, self.project, user).await?;
        let deletion = projects::restore_project(cx.db, self.project, cx.now).await?;
        let before =
            json!({"deleted_at": deletion.deleted_at, "purge_after": deletion.purge_after});
        cx.audit(Change::of("tenant", self.project).before(before))
            .await?;
        cx.forget_tenant(self.project);
        cx.publish(DomainEvent::ProjectRestored {
            tenant_id: self.project,
            restored_by: user,
        });
        Ok(deletion)
    }
}

/// One step of a due project's purge (a platform job: [`Spine::purge_project`] runs it).
/// The step that removes the tenant row writes the purge's one audit row, platform-wide.
#[derive(Clone, Debug)]
pub struct PurgeProject {
    tenant: TenantId,
    batch: u64,
    /// Rows removed per table by the steps before this one.
    removed: BTreeMap<&'static str, u64>,
}

impl Sealed for PurgeProject {}
impl UseCase for PurgeProject {
    type Output = PurgeStep;
    const OPERATION: Operation = Operation::TenantPurge;

    async fn run(&self, cx: &mut Context<'_>) -> Result<PurgeStep, SpineError> {
        let step = projects::purge_step(cx.db, self.tenant, self.batch, cx.now).await?;
        if step == PurgeStep::Done {
            let removed: Map<String, serde_json::Value> = self
                .removed
                .iter()
                .map(|(table, rows)| ((*table).to_owned(), json!(rows)))
                .collect();
            let change = Change::of("tenant", self.tenant)
                .reason("restore window closed")
                .after(json!({"rows_removed": removed}))
                .platform_wide();
            cx.audit(change).await?;
        }
        Ok(step)
    }
}

/// What a pass of the purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectsPurged {
    /// Tenants purged completely by this pass.
    pub purged: Vec<TenantId>,
    /// Rows removed, over every tenant and table.
    pub rows: u64,
    /// Tenants whose purge failed (logged; the next pass goes on where it stopped).
    pub failed: u64,
}

impl Spine {
    /// Executes [`CreateProject`] for the signed-in person (`identity_not_linked` before their
    /// identity is linked to a user, as `GET /v1/me`).
    pub async fn create_project(
        &self,
        signed_in: &SignedIn,
        name: &str,
        request: RequestMeta,
    ) -> Result<CreatedTenant, SpineError> {
        let user = self
            .linked_user(signed_in)
            .await?
            .ok_or(IdentityError::NotLinked)?;
        let create = CreateProject {
            name: name.to_owned(),
        };
        self.execute_as_person(user, None, &request, create).await
    }

    /// Executes [`RenameProject`].
    pub async fn rename_project(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<String, SpineError> {
        let rename = RenameProject {
            name: name.to_owned(),
        };
        self.execute(principal, rename).await
    }

    /// Executes [`LeaveProject`].
    pub async fn leave_project(&self, principal: &Principal) -> Result<Membership, SpineError> {
        self.execute(principal, LeaveProject).await
    }

    /// Executes [`DeleteProject`].
    pub async fn delete_project(
        &self,
        principal: &Principal,
    ) -> Result<ProjectDeletion, SpineError> {
        self.execute(principal, DeleteProject).await
    }

    /// Executes [`RestoreProject`] for the signed-in person.
    pub async fn restore_project(
        &self,
        signed_in: &SignedIn,
        project: TenantId,
        request: RequestMeta,
    ) -> Result<ProjectDeletion, SpineError> {
        let user = self
            .linked_user(signed_in)
            .await?
            .ok_or(IdentityError::NotLinked)?;
        let restore = RestoreProject { project };
        self.execute_as_person(user, Some(project), &request, restore)
            .await
    }

    /// Purges one deleted project whose window closed by the clock's now: steps of at most
    /// `batch` rows ([`PurgeProject`]), each one statement in a transaction of its own, until
    /// the tenant row is gone; the rows removed. A project not due (restored, or purged by
    /// another instance meanwhile) stops the purge with what it did so far; of two instances
    /// purging one project, one removes the tenant row and audits it.
    pub async fn purge_project(&self, tenant: TenantId, batch: u64) -> Result<u64, SpineError> {
        let mut purge = PurgeProject {
            tenant,
            batch: batch.max(1),
            removed: BTreeMap::new(),
        };
        let mut rows = 0;
        loop {
            match self.execute_as_system(tenant, purge.clone()).await? {
                PurgeStep::Rows { table, rows: n } => {
                    *purge.removed.entry(table).or_default() += n;
                    rows += n;
                }
                PurgeStep::DefaultTenants { rows: n } => {
                    *purge.removed.entry("users.default_tenant_id").or_default() += n;
                    rows += n;
                }
                _ => return Ok(rows),
            }
        }
    }

    /// One pass of the purge: up to `limit` deleted projects whose window closed, each purged
    /// with [`Spine::purge_project`] in batches of `batch` rows. A failed purge is logged and
    /// counted, and the pass goes on. The reaper's pass runs it.
    pub async fn purge_deleted_projects(
        &self,
        limit: u64,
        batch: u64,
    ) -> Result<ProjectsPurged, SpineError> {
        let due = projects::due_for_purge(self.pool_db(), self.clock.now(), limit).await?;
        let mut pass = ProjectsPurged::default();
        for deletion in due {
            match self.purge_project(deletion.tenant_id, batch).await {
                Ok(rows) => {
                    pass.rows += rows;
                    pass.purged.push(deletion.tenant_id);
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        tenant_id = %deletion.tenant_id,
                        "purging a deleted project failed; the next pass goes on"
                    );
                    pass.failed += 1;
                }
            }
        }
        if !pass.purged.is_empty() {
            tracing::info!(
                purged = pass.purged.len(),
                rows = pass.rows,
                "purged deleted projects past their restore window"
            );
        }
        Ok(pass)
    }
}

/// The tables a purge empties, in its order (besides `tenant_deletions` and the tenant row,
/// last, and users' default tenant): the one list, which a test checks against the schema.
pub fn purged_tables() -> &'static [&'static str] {
    projects::purged_tables()
}
