//! Changing roles, removing members, transferring ownership.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::memberships::{ChangeRole, RemoveUser, TransferOwnership};
use account_spine::types::MembershipRole;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |g| ChangeRole {
                user: g.world.member,
                role: MembershipRole::Admin,
            },
            |g, _| {
                leaves(vec![rows(
                    "tenant_memberships",
                    1,
                    vec![
                        ("tenant_id", g.tenant.clone()),
                        ("user_id", uuid(g.world.member.as_uuid())),
                        ("role", "admin".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::Nothing,
            |g| RemoveUser {
                user: g.world.member,
            },
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
            |g| TransferOwnership {
                new_owner: g.world.member,
            },
            |g, _| {
                leaves(vec![
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("user_id", uuid(g.world.member.as_uuid())),
                            ("role", "owner".into()),
                        ],
                    ),
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("user_id", uuid(g.world.owner.as_uuid())),
                            ("role", "admin".into()),
                        ],
                    ),
                ])
            },
        ),
    ]
}
