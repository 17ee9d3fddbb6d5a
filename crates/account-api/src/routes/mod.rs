//! Route handlers, one module per area, and the shapes they share.

pub(crate) mod accounts;
pub(crate) mod api_keys;
pub(crate) mod invitations;
pub(crate) mod memory_pins;
pub(crate) mod onboarding;
pub(crate) mod platform;
pub(crate) mod runs;
pub(crate) mod usage;

use crate::extract::FieldErrors;
use account_spine::{OffsetPage, Page};
use serde::Serialize;
use utoipa::ToSchema;

/// Largest `limit` of a list (the engines' bound).
pub(crate) const MAX_PAGE: u64 = 100;

/// `?limit=&offset=` on every list (20 and 0 by default); `limit` is 1 to [`MAX_PAGE`]. Each
/// list's query struct has both fields itself: `serde(flatten)` breaks numbers in query
/// strings.
pub(crate) fn page(limit: Option<u64>, offset: Option<u64>) -> OffsetPage {
    OffsetPage {
        limit: limit.unwrap_or(20),
        offset: offset.unwrap_or(0),
    }
}

/// Checks a list's `limit` (`offset` is any non-negative number).
pub(crate) fn validate_page(errors: &mut FieldErrors, limit: Option<u64>) {
    errors.range("limit", limit, 1, MAX_PAGE);
}

/// The list envelope every list answers with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListBody<T> {
    /// This page's items.
    items: Vec<T>,
    /// Items matching, over all pages.
    total: u64,
    /// Whether items follow this page.
    has_more: bool,
    /// The page size asked for.
    limit: u64,
    /// The offset asked for.
    offset: u64,
}

impl<T> ListBody<T> {
    pub(crate) fn from_page<S>(
        page: Page<S>,
        request: OffsetPage,
        view: impl FnMut(S) -> T,
    ) -> Self {
        Self {
            items: page.items.into_iter().map(view).collect(),
            total: page.total,
            has_more: page.has_more,
            limit: request.limit,
            offset: request.offset,
        }
    }
}
