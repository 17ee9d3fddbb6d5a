//! A user's own profile.

use crate::support::case::{Arrange, Case, leaves, rows, uuid};
use account_spine::users::{ProfileUpdate, UpdateProfile};
use serde_json::json;

pub(super) fn cases() -> Vec<Case> {
    vec![Case::tenant(
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
    )]
}
