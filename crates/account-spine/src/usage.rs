//! Usage use cases.

use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::Subject;
use crate::{Spine, SpineError};
use account_engines::usage::{self, MeterTotal};
use chrono::{DateTime, Utc};

impl Spine {
    /// Usage per meter over `[start, end)`, including the current partial hour.
    pub async fn usage_summary(
        &self,
        principal: &Principal,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MeterTotal>, SpineError> {
        let operation = Operation::UsageSummary;
        self.observe(operation, Subject::Principal(principal), async {
            read_use_case!(self, principal, operation, |db| {
                Ok(usage::usage_summary(db, principal.tenant_id, start, end).await?)
            })
        })
        .await
    }
}
