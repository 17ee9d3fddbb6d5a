//! Usage use cases.

use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::Operation;
use crate::principal::Principal;
use crate::use_case::{Context, Sealed, UseCase};
use account_engines::usage::{self, MeterTotal};
use chrono::{DateTime, Utc};

/// Usage per meter over `[start, end)`, including the current partial hour.
#[derive(Clone, Copy, Debug)]
pub struct UsageSummary {
    /// From (inclusive).
    pub start: DateTime<Utc>,
    /// To (exclusive).
    pub end: DateTime<Utc>,
}

impl Sealed for UsageSummary {}
impl UseCase for UsageSummary {
    type Output = Vec<MeterTotal>;
    const OPERATION: Operation = Operation::UsageSummary;

    async fn run(&self, cx: &mut Context<'_>) -> Result<Vec<MeterTotal>, SpineError> {
        Ok(usage::usage_summary(cx.db, cx.tenant()?, self.start, self.end).await?)
    }
}

impl Spine {
    /// Executes [`UsageSummary`].
    pub async fn usage_summary(
        &self,
        principal: &Principal,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MeterTotal>, SpineError> {
        self.execute(principal, UsageSummary { start, end }).await
    }
}
