//! A user's own profile, and a user's erasure by an operator.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use crate::support::null;
use account_spine::users::erasure::EraseUser;
use account_spine::users::{ProfileUpdate, UpdateProfile};
use serde_json::json;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::erase_me(|g, erased| {
            leaves(vec![
                rows(
                    "users",
                    1,
                    vec![
                        ("id", uuid(g.world.member.as_uuid())),
                        ("status", "deleted".into()),
                        (
                            "email",
                            format!("{}@erased.invalid", erased.pseudonym).into(),
                        ),
                    ],
                ),
                rows(
                    "identity_links",
                    0,
                    vec![("user_id", uuid(g.world.member.as_uuid()))],
                ),
                rows(
                    "user_erasures",
                    1,
                    vec![
                        ("user_id", uuid(g.world.member.as_uuid())),
                        ("requested_by", "self".into()),
                        ("completed_at", g.now.into()),
                    ],
                ),
            ])
        }),
        Case::operator_key(
            |g| EraseUser {
                user_id: g.world.member,
            },
            |g, erased| {
                leaves(vec![
                    rows(
                        "users",
                        1,
                        vec![
                            ("id", uuid(g.world.member.as_uuid())),
                            ("status", "deleted".into()),
                            ("name", null()),
                        ],
                    ),
                    rows(
                        "user_erasures",
                        1,
                        vec![
                            ("user_id", uuid(g.world.member.as_uuid())),
                            ("pseudonym", erased.pseudonym.clone().into()),
                        ],
                    ),
                    rows(
                        "tenant_memberships",
                        0,
                        vec![("user_id", uuid(g.world.member.as_uuid()))],
                    ),
                ])
            },
        ),
        Case::tenant(
            Arrange::Nothing,
            |_| UpdateProfile {
                update: ProfileUpdate::default()
                    .with_display_name("Olive Owner")
                    .with_preferences(json!({"theme": "dark"})),
            },
            |g, _| {
                leaves(vec![rows(
                    "users",
                    1,
                    vec![
                        ("id", uuid(g.world.owner.as_uuid())),
                        ("name", "Olive Owner".into()),
                    ],
                )])
            },
        ),
    ]
}
