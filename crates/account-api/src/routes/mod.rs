//! Route handlers, one module per area, and the shapes they share.

pub(crate) mod api_keys;
pub(crate) mod invitations;
pub(crate) mod memory_pins;
pub(crate) mod onboarding;
pub(crate) mod runs;
pub(crate) mod usage;

use account_spine::{OffsetPage, Page};
use serde::Serialize;

/// `?limit=&offset=` on every list (20 and 0 by default); the engines bound the limit (1 to
/// 100). Each list's query struct has both fields itself: `serde(flatten)` breaks numbers in
/// query strings.
pub(crate) fn page(limit: Option<u64>, offset: Option<u64>) -> OffsetPage {
    OffsetPage {
        limit: limit.unwrap_or(20),
        offset: offset.unwrap_or(0),
    }
}

/// The list envelope every list answers with.
#[derive(Debug, Serialize)]
pub(crate) struct ListBody<T> {
    items: Vec<T>,
    total: u64,
    has_more: bool,
    limit: u64,
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
