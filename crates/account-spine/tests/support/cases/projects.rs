//! Self-service projects: created and restored by a signed-in person, renamed and deleted by
//! the owner, left by a member, purged by the reaper's pass once the window closed.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::projects::{DeleteProject, LeaveProject, RenameProject};

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::create_project("Side Project", |g, created| {
            let new = uuid(created.tenant.id.as_uuid());
            leaves(vec![
                rows(
                    "tenants",
                    1,
                    vec![("id", new.clone()), ("name", "Side Project".into())],
                ),
                rows(
                    "tenant_memberships",
                    1,
                    vec![
                        ("tenant_id", new),
                        ("user_id", uuid(g.world.owner.as_uuid())),
                        ("role", "owner".into()),
                    ],
                ),
            ])
        }),
        Case::tenant(
            Arrange::Nothing,
            |_| RenameProject {
                name: "Acme Labs".into(),
            },
            |g, _| {
                leaves(vec![rows(
                    "tenants",
                    1,
                    vec![("id", g.tenant.clone()), ("name", "Acme Labs".into())],
                )])
            },
        ),
        // The owner is the last one: a member leaves.
        Case::member(
            Arrange::Nothing,
            |_| LeaveProject,
            |g, _| {
                leaves(vec![rows(
                    "tenant_memberships",
                    0,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("user_id", uuid(g.world.member.as_uuid())),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::Nothing,
            |_| DeleteProject,
            |g, deletion| {
                leaves(vec![rows(
                    "tenant_deletions",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("deleted_by", uuid(g.world.owner.as_uuid())),
                        ("purge_after", deletion.purge_after.into()),
                    ],
                )])
            },
        ),
        Case::restore_project(|g, _| {
            leaves(vec![
                rows("tenant_deletions", 0, vec![("tenant_id", g.tenant.clone())]),
                rows("tenants", 1, vec![("id", g.tenant.clone())]),
            ])
        }),
        Case::project_purge(|g, _| {
            leaves(vec![
                rows("tenants", 0, vec![("id", g.tenant.clone())]),
                rows("tenant_deletions", 0, vec![("tenant_id", g.tenant.clone())]),
                rows(
                    "tenant_memberships",
                    0,
                    vec![("tenant_id", g.tenant.clone())],
                ),
            ])
        }),
    ]
}
