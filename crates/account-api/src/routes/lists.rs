//! What every list shares: the page a client asks for ([`PageQuery`], or [`CursorPageQuery`]
//! on lists that also page by cursor; read with [`ListQuery`](crate::extract::ListQuery)
//! next to the list's own filters) and the envelope it answers with ([`ListBody`]).

use crate::extract::{FieldErrors, Validate};
use account_spine::{KeysetPage, OffsetPage, Page};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest `limit` of a list: the engines' bound (the OpenAPI `maximum` below repeats it as a
/// literal, which attributes need; a test holds the two together).
pub(crate) const MAX_PAGE: u64 = account_spine::MAX_PAGE_LIMIT;

/// Items per page when the client names no `limit`.
const DEFAULT_LIMIT: u64 = 20;

/// `?limit=&offset=`: the page of a list, 20 items from the start by default. `limit` is 1 to
/// [`MAX_PAGE`]; `offset` is any non-negative number.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0).
    offset: Option<u64>,
}

impl Validate for PageQuery {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("limit", self.limit, 1, MAX_PAGE);
    }
}

impl PageQuery {
    /// The page asked for, defaults filled in.
    pub(crate) fn offset_page(self) -> OffsetPage {
        OffsetPage {
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            offset: self.offset.unwrap_or(0),
        }
    }
}

/// `?limit=&offset=` or `?limit=&cursor=`: the page of a list that also pages by cursor
/// (`offset` and `cursor` exclude each other). `K` is the position a cursor carries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, bound(deserialize = "K: DeserializeOwned"))]
#[into_params(parameter_in = Query)]
pub(crate) struct CursorPageQuery<K> {
    /// Page size, 1 to 100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// Items to skip (0). Not with `cursor`.
    offset: Option<u64>,
    /// Continue after the page that answered this `next_cursor` (opaque; pass it unchanged,
    /// with the same filters). Cursor pages cost the same at any depth and carry no `total`.
    /// Not with `offset`.
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor<K>>,
}

impl<K> Validate for CursorPageQuery<K> {
    fn validate(&self, errors: &mut FieldErrors) {
        errors.range("limit", self.limit, 1, MAX_PAGE);
        if self.offset.is_some() && self.cursor.is_some() {
            errors.add(
                "cursor",
                "cannot be combined with offset; page by one or the other",
            );
        }
    }
}

/// The page a [`CursorPageQuery`] asks for.
pub(crate) enum CursorPage<K> {
    /// By offset (no cursor given).
    Offset(OffsetPage),
    /// `limit` items after `position`.
    After {
        /// Where the previous page ended.
        position: K,
        /// Items per page.
        limit: u64,
    },
}

impl<K> CursorPageQuery<K> {
    /// The page asked for, defaults filled in.
    pub(crate) fn page(self) -> CursorPage<K> {
        let offset = PageQuery {
            limit: self.limit,
            offset: self.offset,
        }
        .offset_page();
        match self.cursor {
            Some(Cursor(position)) => CursorPage::After {
                position,
                limit: offset.limit,
            },
            None => CursorPage::Offset(offset),
        }
    }
}

/// Longest cursor accepted: far above any position this API issues, so a huge value is
/// refused before it is decoded.
const MAX_CURSOR_CHARS: usize = 1024;

/// Where a keyset page continues, as clients see it: an opaque string (base64url of the
/// position's JSON) that they pass back unchanged. It is decoded strictly; a cursor that does
/// not decode to a position is a 400 `invalid_query`. A position is not a grant: the list is
/// still scoped to the caller's tenant, so a cursor read from another tenant just pages this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor<K>(pub(crate) K);

impl<K: Serialize> Cursor<K> {
    /// The opaque text of this position.
    pub(crate) fn encode(&self) -> String {
        // A position is plain data (strings, ids); serialising it cannot fail.
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }
}

impl<K: DeserializeOwned> Cursor<K> {
    /// The position `text` encodes, or `None` when it is not a cursor this API issued.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(text).ok()?;
        serde_json::from_slice(&json).ok().map(Self)
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Cursor<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::decode(&text).ok_or_else(|| {
            D::Error::custom(
                "is not a cursor this API issued; pass `next_cursor` from a previous page unchanged",
            )
        })
    }
}

/// The list envelope every list answers with. Offset pages carry `offset` and `total`; lists
/// that also page by cursor add `next_cursor` while rows follow, and their cursor pages carry
/// neither `offset` nor `total` (counting every row would make a deep page cost what the whole
/// list does).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListBody<T> {
    /// This page's items.
    items: Vec<T>,
    /// Items matching, over all pages (offset pages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    /// Whether items follow this page.
    has_more: bool,
    /// The page size asked for.
    limit: u64,
    /// The offset asked for (offset pages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    /// Pass as `cursor` to read the page after this one; present only on lists that page by
    /// cursor, while items follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl<T> ListBody<T> {
    pub(crate) fn from_page<S>(
        page: Page<S>,
        request: OffsetPage,
        view: impl FnMut(S) -> T,
    ) -> Self {
        Self {
            items: page.items.into_iter().map(view).collect(),
            total: Some(page.total),
            has_more: page.has_more,
            limit: request.limit,
            offset: Some(request.offset),
            next_cursor: None,
        }
    }

    /// The offset page `request` of `all`, a list small enough to read whole (a tenant's
    /// webhook endpoints or limit overrides, the plan catalogue): the spine reads it all and
    /// the page is cut here.
    pub(crate) fn from_all<S>(all: Vec<S>, request: OffsetPage, view: impl FnMut(S) -> T) -> Self {
        let total = all.len() as u64;
        let skip = usize::try_from(request.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let items = all.into_iter().skip(skip).take(take).collect();
        Self::from_page(Page::new(items, total, request), request, view)
    }

    /// An offset page of a list that also pages by cursor: `next_cursor` continues after its
    /// last item, so a client can switch to cursors after any offset page.
    pub(crate) fn from_page_with_cursor<S, K: Serialize>(
        page: Page<S>,
        request: OffsetPage,
        position: impl Fn(&S) -> K,
        view: impl FnMut(S) -> T,
    ) -> Self {
        let next_cursor = page
            .has_more
            .then(|| {
                page.items
                    .last()
                    .map(|last| Cursor(position(last)).encode())
            })
            .flatten();
        Self {
            next_cursor,
            ..Self::from_page(page, request, view)
        }
    }

    /// A cursor page; `position` turns where it continues into what its cursor carries.
    pub(crate) fn from_keyset_page<S, K, P: Serialize>(
        page: KeysetPage<S, K>,
        limit: u64,
        position: impl FnOnce(K) -> P,
        view: impl FnMut(S) -> T,
    ) -> Self {
        Self {
            has_more: page.has_more(),
            next_cursor: page.next.map(|next| Cursor(position(next)).encode()),
            items: page.items.into_iter().map(view).collect(),
            total: None,
            limit,
            offset: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, MAX_PAGE};

    #[test]
    fn every_documented_limit_is_the_engines_bound() {
        let document = serde_json::to_value(crate::openapi()).unwrap_or_default();
        let mut limits = 0;
        for operation in document["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
        {
            for method in operation.as_object().into_iter().flat_map(|m| m.values()) {
                let parameters = method["parameters"].as_array().cloned().unwrap_or_default();
                // The page's `limit` (a path's `{limit}` names a tenant limit instead).
                let pages = parameters
                    .iter()
                    .filter(|p| p["name"] == "limit" && p["in"] == "query");
                for limit in pages {
                    assert_eq!(limit["schema"]["maximum"], MAX_PAGE, "{limit}");
                    limits += 1;
                }
            }
        }
        assert!(limits >= 10, "only {limits} paged lists found");
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_encodes_and_nothing_else_decodes() {
        let position = Cursor(("ann@example.com".to_owned(), 7_u64));
        let text = position.encode();
        assert_eq!(Cursor::decode(&text), Some(position));
        let padded = format!("{text}=");
        let long = "A".repeat(2000);
        for bad in ["", "not base64!", "e30", padded.as_str(), long.as_str()] {
            assert_eq!(Cursor::<(String, u64)>::decode(bad), None, "{bad:?}");
        }
    }
}
