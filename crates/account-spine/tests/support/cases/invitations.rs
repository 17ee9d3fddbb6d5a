//! Inviting, resending, revoking and accepting invitations.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::invitations::{
    AcceptInvitation, InviteUser, Invitee, ResendInvitation, RevokeInvitation,
};
use account_spine::types::MembershipRole;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::tenant(
            Arrange::Nothing,
            |_| InviteUser {
                email: "new@example.com".into(),
                role: MembershipRole::Member,
            },
            |_, issued| {
                leaves(vec![rows(
                    "invitations",
                    1,
                    vec![
                        ("id", uuid(issued.invitation.id.as_uuid())),
                        ("status", "pending".into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::Invitation,
            |g| ResendInvitation {
                id: g.invitation().0,
            },
            |g, issued| {
                leaves(vec![rows(
                    "invitations",
                    1,
                    vec![
                        ("id", uuid(g.invitation().0.as_uuid())),
                        ("status", "pending".into()),
                        ("expires_at", issued.invitation.expires_at.into()),
                    ],
                )])
            },
        ),
        Case::tenant(
            Arrange::Invitation,
            |g| RevokeInvitation {
                id: g.invitation().0,
            },
            |g, _| {
                leaves(vec![rows(
                    "invitations",
                    1,
                    vec![
                        ("id", uuid(g.invitation().0.as_uuid())),
                        ("status", "revoked".into()),
                    ],
                )])
            },
        ),
        Case::token(
            |g| {
                let (id, token) = g.invitation();
                AcceptInvitation {
                    tenant: g.world.tenant,
                    id,
                    token,
                    invitee: Invitee::default(),
                }
            },
            |g, membership| {
                leaves(vec![
                    rows(
                        "tenant_memberships",
                        1,
                        vec![
                            ("tenant_id", g.tenant.clone()),
                            ("user_id", uuid(membership.user_id.as_uuid())),
                            ("role", "admin".into()),
                        ],
                    ),
                    rows(
                        "invitations",
                        1,
                        vec![
                            ("id", uuid(g.invitation().0.as_uuid())),
                            ("status", "accepted".into()),
                        ],
                    ),
                ])
            },
        ),
    ]
}
