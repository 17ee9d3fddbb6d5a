//! Tenant onboarding state, advanced forward only.
//!
//! The advance is one conditional `UPDATE ... WHERE onboarding_state < :target`, so two
//! concurrent advances can never move a tenant backwards (the original wrote the target
//! unconditionally).

mod attestations;

pub use attestations::*;

use crate::tenants::update_returning;
use crate::{Db, DriverError, OffsetPage, Page};
use account_models::entities::tenants;
use account_models::{OnboardingState, TenantId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// Onboarding data access, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct OnboardingDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The onboarding driver on `db`.
pub fn get_onboarding_driver(db: Db<'_>) -> OnboardingDriver<'_> {
    OnboardingDriver { db }
}

/// The result of an advance. (The state before is not reported: `RETURNING` shows only the
/// new row; callers that need it read the state first, in the same transaction.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnboardingAdvance {
    /// State after.
    pub current: OnboardingState,
    /// Whether the row changed.
    pub changed: bool,
}

/// A tenant that has not completed onboarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalledTenant {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its state.
    pub state: OnboardingState,
    /// When it was created.
    pub created_at: DateTimeUtc,
}

impl OnboardingDriver<'_> {
    /// The tenant's onboarding state, or `None` when there is no such tenant.
    pub async fn fetch_onboarding_state(
        &self,
        tenant: TenantId,
    ) -> Result<Option<OnboardingState>, DriverError> {
        Ok(tenants::Entity::find_by_id(tenant)
            .select_only()
            .column(tenants::Column::OnboardingState)
            .into_tuple()
            .one(self.db.conn())
            .await?)
    }

    /// Moves the tenant forward to `target`; never backwards. One statement when it moves;
    /// a second one reads the current state when it did not. `None`: no such tenant.
    pub async fn advance_onboarding_state(
        &self,
        tenant: TenantId,
        target: OnboardingState,
        now: DateTimeUtc,
    ) -> Result<Option<OnboardingAdvance>, DriverError> {
        let update = tenants::Entity::update_many()
            .col_expr(
                tenants::Column::OnboardingState,
                Expr::value(target.value()),
            )
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(tenant))
            .filter(tenants::Column::OnboardingState.lt(target.value()));
        if update_returning(self.db, update).await?.is_some() {
            return Ok(Some(OnboardingAdvance {
                current: target,
                changed: true,
            }));
        }
        Ok(self
            .fetch_onboarding_state(tenant)
            .await?
            .map(|current| OnboardingAdvance {
                current,
                changed: false,
            }))
    }

    /// The seeds' name for the advance: the same forward-only conditional write.
    pub async fn write_onboarding_state(
        &self,
        tenant: TenantId,
        target: OnboardingState,
        now: DateTimeUtc,
    ) -> Result<Option<OnboardingAdvance>, DriverError> {
        self.advance_onboarding_state(tenant, target, now).await
    }

    /// Tenants below COMPLETE created before `before`, oldest first. A cross-tenant,
    /// operator-only query (the spine restricts who may call it).
    pub async fn list_stalled(
        &self,
        before: DateTimeUtc,
        page: OffsetPage,
    ) -> Result<Page<StalledTenant>, DriverError> {
        let query = || {
            tenants::Entity::find()
                .filter(tenants::Column::OnboardingState.lt(OnboardingState::Complete.value()))
                .filter(tenants::Column::CreatedAt.lt(before))
        };
        let total = query().count(self.db.conn()).await?;
        let rows = query()
            .order_by_asc(tenants::Column::CreatedAt)
            .order_by_asc(tenants::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .all(self.db.conn())
            .await?;
        let items = rows
            .into_iter()
            .map(|t| StalledTenant {
                tenant_id: t.id,
                state: t.onboarding_state,
                created_at: t.created_at,
            })
            .collect();
        Ok(Page::new(items, total, page))
    }
}
