//! Operator keys, by an operator acting with an operator key.

use crate::support::case::{Case, leaves, rows, uuid};
use crate::support::null;
use account_spine::operators::{CreateOperatorKey, RevokeOperatorKey};

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::operator_key(
            |_| CreateOperatorKey {
                name: "ops-2".into(),
            },
            |_, created| {
                leaves(vec![rows(
                    "operator_keys",
                    1,
                    vec![
                        ("id", uuid(created.key.id.as_uuid())),
                        ("revoked_at", null()),
                    ],
                )])
            },
        ),
        Case::operator_key(
            |g| RevokeOperatorKey {
                id: g.arranged.target_operator_key.unwrap(),
            },
            |g, _| {
                let target = g.arranged.target_operator_key.unwrap();
                leaves(vec![rows(
                    "operator_keys",
                    1,
                    vec![("id", uuid(target.as_uuid())), ("revoked_at", g.now.into())],
                )])
            },
        ),
    ]
}
