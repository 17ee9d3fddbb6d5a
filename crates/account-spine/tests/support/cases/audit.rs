//! Purging the audit log past the tenant's retention (the only audited write of the area).

use crate::support::case::{Case, leaves, rows};

pub(super) fn cases() -> Vec<Case> {
    vec![Case::purge(|g, purged| {
        assert_eq!(purged.removed, 1, "the arranged admission's row");
        leaves(vec![rows(
            "audit_log",
            0,
            vec![
                ("tenant_id", g.tenant.clone()),
                ("action", "run.admitted".into()),
            ],
        )])
    })]
}
