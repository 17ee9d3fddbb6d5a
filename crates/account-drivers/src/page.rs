//! Pages of rows: offset pages with a total, and keyset pages for large tenants.
//!
//! Every list has a stable order with the id as the last tie-breaker, so a row never shows up
//! on two pages or on none while the data is unchanged.

/// Which slice of an offset-paginated list to read. Bounds are the engine's to enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetPage {
    /// Rows per page.
    pub limit: u64,
    /// Rows to skip.
    pub offset: u64,
}

impl OffsetPage {
    /// The offset as SQL binds it (a signed 64-bit integer): larger offsets are cut to
    /// `i64::MAX`, which skips every row just the same, instead of failing to bind.
    pub fn sql_offset(self) -> u64 {
        self.offset.min(i64::MAX.unsigned_abs())
    }
}

/// The most rows one page may hold, on every list.
pub const MAX_PAGE_LIMIT: u64 = 100;

/// A page request whose bounds were checked once, where it enters the engines: a limit of 1
/// to [`MAX_PAGE_LIMIT`] rows.
///
/// ```rust
/// use account_drivers::{InvalidPage, OffsetPage, PageRequest};
///
/// let page = PageRequest::new(OffsetPage { limit: 20, offset: 40 })?;
/// assert_eq!(page.into_page(), OffsetPage { limit: 20, offset: 40 });
/// assert_eq!(PageRequest::new(OffsetPage { limit: 0, offset: 0 }), Err(InvalidPage));
/// assert_eq!(PageRequest::new(OffsetPage { limit: 101, offset: 0 }), Err(InvalidPage));
/// assert_eq!(PageRequest::limit(100), Ok(100));
/// # Ok::<(), InvalidPage>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest(OffsetPage);

impl PageRequest {
    /// `page`, if its limit is 1 to [`MAX_PAGE_LIMIT`].
    pub fn new(page: OffsetPage) -> Result<Self, InvalidPage> {
        Self::limit(page.limit)?;
        Ok(Self(page))
    }

    /// A keyset page's `limit`, if it is 1 to [`MAX_PAGE_LIMIT`].
    pub fn limit(limit: u64) -> Result<u64, InvalidPage> {
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(InvalidPage);
        }
        Ok(limit)
    }

    /// The checked page, as the drivers read it.
    pub fn into_page(self) -> OffsetPage {
        self.0
    }
}

/// A page limit outside 1 to [`MAX_PAGE_LIMIT`]; every engine error turns it into its
/// `InvalidPage` variant (`invalid_page`, 422).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("limit must be 1 to {MAX_PAGE_LIMIT}")]
pub struct InvalidPage;

/// One page of an offset-paginated list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The rows of this page, in list order.
    pub items: Vec<T>,
    /// Rows matching the filters on all pages.
    pub total: u64,
    /// Whether rows follow this page.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Assembles a page from its rows and the total; `has_more` follows from the offset.
    pub fn new(items: Vec<T>, total: u64, request: OffsetPage) -> Self {
        let seen = request.offset.saturating_add(items.len() as u64);
        Self {
            has_more: seen < total,
            items,
            total,
        }
    }

    /// The same page with each row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            has_more: self.has_more,
        }
    }
}

/// One page of a keyset-paginated list: `next` is the position to continue after.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeysetPage<T, K> {
    /// The rows of this page, in list order.
    pub items: Vec<T>,
    /// Where the next page starts, or `None` on the last page.
    pub next: Option<K>,
}

impl<T, K> KeysetPage<T, K> {
    /// Assembles a page from rows read with `LIMIT limit + 1`: the extra row, when present,
    /// only says that more follow (so the page needs no second statement) and is dropped.
    pub fn from_overfetched(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> K) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }

    /// Whether rows follow this page.
    pub fn has_more(&self) -> bool {
        self.next.is_some()
    }

    /// The same page with each row converted; the position is unchanged.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> KeysetPage<U, K> {
        KeysetPage {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_more_follows_from_offset_rows_and_total() {
        let request = OffsetPage {
            limit: 2,
            offset: 2,
        };
        assert!(Page::new(vec![1, 2], 5, request).has_more);
        assert!(!Page::new(vec![1], 3, request).has_more);
        assert!(!Page::new(Vec::<u8>::new(), 0, request).has_more);
    }

    #[test]
    fn an_overfetched_row_means_more_and_is_dropped() {
        let page = KeysetPage::from_overfetched(vec![1, 2, 3], 2, |r| *r);
        assert_eq!((page.items.as_slice(), page.next), (&[1, 2][..], Some(2)));
        let last = KeysetPage::from_overfetched(vec![1, 2], 2, |r| *r);
        assert_eq!((last.items.as_slice(), last.next), (&[1, 2][..], None));
        assert!(!KeysetPage::from_overfetched(Vec::<u8>::new(), 2, |r| *r).has_more());
    }

    #[test]
    fn offsets_past_what_sql_binds_are_cut_to_i64_max() {
        let page = |offset| OffsetPage { limit: 1, offset };
        assert_eq!(page(7).sql_offset(), 7);
        assert_eq!(page(u64::MAX).sql_offset(), i64::MAX.unsigned_abs());
    }
}
