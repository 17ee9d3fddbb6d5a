//! A tenant's users list: offset pages (the total from the tenant row, the page by an
//! index-only scan read from the nearer end), keyset pages, and the count.
//!
//! Unfiltered lists are served by the index on `tenant_memberships (tenant_id, member_email,
//! user_id)`: the membership carries its member's email, so the list order (email, then id)
//! is an index order, and nothing grows with the tenant but the rows an offset skips.

use super::{
    MemberRow, UserFilter, UserPosition, UserSnapshot, filtered, member, members_of,
    with_membership_columns,
};
use crate::tenants::fetch_totals;
use crate::{AccountsFacadeDriver, DriverError, KeysetPage, OffsetPage, Page};
use account_models::TenantId;
use account_models::entities::{memberships, tenants};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ColumnTrait, EntityName, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

/// A member row of an unfiltered page, with the tenant's membership total as the page's own
/// snapshot saw it.
#[derive(Debug, sea_orm::FromQueryResult)]
struct PagedMemberRow {
    #[sea_orm(nested)]
    member: MemberRow,
    list_total: i64,
}

/// How often an unfiltered page read from the end is retried when the membership total moved
/// between its two statements, before it is read from the start instead (exact whatever
/// changes).
const FROM_END_ATTEMPTS: usize = 3;

/// Where an unfiltered offset page of `total` members is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadFrom {
    /// Past the end: no rows.
    Nowhere,
    /// From the start, skipping `offset`: the page is in the front half.
    Start,
    /// From the end, skipping the `skip` rows after the page: it is in the back half.
    End { limit: u64, skip: u64 },
}

fn read_from(page: OffsetPage, total: u64) -> ReadFrom {
    if page.offset >= total {
        return ReadFrom::Nowhere;
    }
    let end = std::cmp::min(page.offset.saturating_add(page.limit), total);
    // Rows after the page, when read from the start: at least as many as it skips.
    if total - end >= page.offset {
        return ReadFrom::Start;
    }
    ReadFrom::End {
        limit: end - page.offset,
        skip: total - end,
    }
}

/// The list's order, email then id, on the membership's copies of them: the order of the
/// index on `(tenant_id, member_email, user_id)`, the same as `users.email, users.id`.
fn in_list_order<Q: QueryOrder>(query: Q, order: Order) -> Q {
    query
        .order_by(memberships::Column::MemberEmail, order.clone())
        .order_by(memberships::Column::UserId, order)
}

/// `(SELECT member_count FROM tenants WHERE id = ?)`.
fn member_total(tenant: TenantId) -> Expr {
    let mut query = Query::select();
    query
        .column(tenants::Column::MemberCount)
        .from(tenants::Entity.table_ref())
        .and_where(Expr::col(tenants::Column::Id).eq(tenant));
    Expr::SubQuery(None, Box::new(query.into()))
}

impl AccountsFacadeDriver<'_> {
    /// The tenant's users matching `filter`, by email then id. Two statements: the total and
    /// the page.
    ///
    /// Unfiltered, the total is the tenant row's membership total (one read, no count) and
    /// the page is found by an index-only scan of `(tenant_id, member_email, user_id)` that
    /// skips `offset` entries and joins only the page's rows (a deferred join). A page in the
    /// back half is read from the end, so no page skips more than half the members; its
    /// statement also reads the total, and is read again (a bounded number of
    /// times, then from the start) if the total moved since the first statement, so the page
    /// is exactly the one at `offset`. A page past the end costs the total alone.
    ///
    /// Filtered (by role or status), the total is counted and the page sorted, as the filter
    /// may keep any share of the members: both grow with the tenant.
    pub async fn fetch_users(
        &self,
        tenant: TenantId,
        filter: UserFilter,
        page: OffsetPage,
    ) -> Result<Page<UserSnapshot>, DriverError> {
        if filter != UserFilter::default() {
            let total = self.count_users(tenant, filter).await?;
            let query = with_membership_columns(filtered(tenant, filter));
            let rows = in_list_order(query, Order::Asc)
                .limit(page.limit)
                .offset(page.sql_offset())
                .into_model::<MemberRow>()
                .all(self.db.conn())
                .await?;
            let items = rows.into_iter().map(member).collect();
            return Ok(Page::new(items, total, page));
        }
        let mut total = fetch_totals(self.db, tenant).await?.members;
        for _ in 0..FROM_END_ATTEMPTS {
            let (limit, skip) = match read_from(page, total) {
                ReadFrom::Nowhere => return Ok(Page::new(Vec::new(), total, page)),
                ReadFrom::Start => break,
                ReadFrom::End { limit, skip } => (limit, skip),
            };
            let (rows, seen) = self.members_page(tenant, Order::Desc, limit, skip).await?;
            match seen {
                Some(seen) if seen == total => {
                    let items = rows.into_iter().rev().map(member).collect();
                    return Ok(Page::new(items, total, page));
                }
                Some(seen) => total = seen,
                None => total = fetch_totals(self.db, tenant).await?.members,
            }
        }
        let (rows, seen) = self
            .members_page(tenant, Order::Asc, page.limit, page.sql_offset())
            .await?;
        let items = rows.into_iter().map(member).collect();
        Ok(Page::new(items, seen.unwrap_or(total), page))
    }

    /// `limit` of the tenant's members after skipping `skip` in `order` (a deferred join: the
    /// ids from the index alone, then their rows), with the membership total the statement
    /// saw (`None` when no row came back).
    async fn members_page(
        &self,
        tenant: TenantId,
        order: Order,
        limit: u64,
        skip: u64,
    ) -> Result<(Vec<MemberRow>, Option<u64>), DriverError> {
        let mut ids = Query::select();
        ids.column(memberships::Column::UserId)
            .from(memberships::Entity.table_ref())
            .and_where(Expr::col(memberships::Column::TenantId).eq(tenant))
            .order_by(memberships::Column::MemberEmail, order.clone())
            .order_by(memberships::Column::UserId, order.clone())
            .limit(limit)
            .offset(skip);
        let query = with_membership_columns(members_of(tenant))
            .expr_as(member_total(tenant), "list_total")
            .filter(memberships::Column::UserId.in_subquery(ids));
        let rows = in_list_order(query, order)
            .into_model::<PagedMemberRow>()
            .all(self.db.conn())
            .await?;
        let seen = rows
            .first()
            .map(|r| u64::try_from(r.list_total).unwrap_or_default());
        Ok((rows.into_iter().map(|r| r.member).collect(), seen))
    }

    /// The same list by keyset: the tenant's users matching `filter` that sort after `after`
    /// (by email then id), in one statement and with no total, so a deep page costs what the
    /// first one does: the position is a range start in the index on `(tenant_id,
    /// member_email, user_id)`. `after` is only a position: rows of another tenant never
    /// match, since the tenant filter applies as on every page.
    pub async fn fetch_users_after(
        &self,
        tenant: TenantId,
        filter: UserFilter,
        after: Option<UserPosition>,
        limit: u64,
    ) -> Result<KeysetPage<UserSnapshot, UserPosition>, DriverError> {
        use memberships::Column as C;
        let mut query = filtered(tenant, filter);
        if let Some(UserPosition { email, id }) = after {
            // A row value, which both backends take as the index range's start.
            query = query.filter(
                Expr::tuple([Expr::col(C::MemberEmail), Expr::col(C::UserId)])
                    .gt(Expr::tuple([Expr::value(email), Expr::value(id)])),
            );
        }
        let rows = in_list_order(with_membership_columns(query), Order::Asc)
            .limit(limit.saturating_add(1))
            .into_model::<MemberRow>()
            .all(self.db.conn())
            .await?;
        let items = rows.into_iter().map(member).collect();
        Ok(KeysetPage::from_overfetched(items, limit, UserPosition::of))
    }

    /// How many of the tenant's users match `filter`, in one statement: unfiltered, the
    /// tenant row's membership total; filtered, a count.
    pub async fn count_users(
        &self,
        tenant: TenantId,
        filter: UserFilter,
    ) -> Result<u64, DriverError> {
        if filter == UserFilter::default() {
            return Ok(fetch_totals(self.db, tenant).await?.members);
        }
        Ok(filtered(tenant, filter).count(self.db.conn()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_read_from_the_nearer_end() {
        let page = |offset, limit| OffsetPage { limit, offset };
        // 10 members: pages starting before the middle read from the start.
        assert_eq!(read_from(page(0, 3), 10), ReadFrom::Start);
        assert_eq!(read_from(page(4, 2), 10), ReadFrom::Start);
        assert_eq!(
            read_from(page(5, 2), 10),
            ReadFrom::End { limit: 2, skip: 3 }
        );
        assert_eq!(
            read_from(page(8, 5), 10),
            ReadFrom::End { limit: 2, skip: 0 },
            "a short last page"
        );
        assert_eq!(read_from(page(10, 5), 10), ReadFrom::Nowhere);
        assert_eq!(read_from(page(u64::MAX, 5), 10), ReadFrom::Nowhere);
        assert_eq!(read_from(page(0, 5), 0), ReadFrom::Nowhere);
        // 100,000 members, 50 a page: the 90 % page skips 9,950 from the end, the middle
        // one 50,000 from the start (the most any page skips).
        assert_eq!(
            read_from(page(90_000, 50), 100_000),
            ReadFrom::End {
                limit: 50,
                skip: 9_950
            }
        );
        assert_eq!(read_from(page(49_950, 50), 100_000), ReadFrom::Start);
    }
}
