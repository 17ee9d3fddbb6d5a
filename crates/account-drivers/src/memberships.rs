//! `tenant_memberships`: who belongs to a tenant and with which role.
//!
//! Writes return the membership together with the member's email and name in the same
//! statement: the `RETURNING` list reads them with a correlated subquery on `users`, which
//! both PostgreSQL and SQLite accept, so no write is followed by a re-query.
//!
//! Every insert and delete also moves the tenant's membership total (`tenants.member_count`)
//! by one in a second statement on the same handle, so the total changes in the writer's
//! transaction. It cannot share the membership's statement: SQLite has no data-modifying
//! `WITH`. An insert copies the member's email into `member_email` (the list order's index).

use crate::tenants::{add_to_totals, fetch_totals};
use crate::users::{UserAccountSnapshot, account};
use crate::{AccountsFacadeDriver, Db, DriverError, OffsetPage, Page, TenantDriver};
use account_models::entities::{memberships, users};
use account_models::{MembershipId, MembershipRole, TenantId, UserId};
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query, ReturningClause};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityName, EntityTrait, FromQueryResult, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait, Select,
};

/// A membership with the member's email and name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MembershipSnapshot {
    /// Membership id.
    pub id: MembershipId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The member.
    pub user_id: UserId,
    /// The member's normalised email.
    pub email: String,
    /// The member's display name.
    pub name: Option<String>,
    /// Role in the tenant.
    pub role: MembershipRole,
    /// Who invited the member, if anyone.
    pub invited_by: Option<UserId>,
    /// When the member joined.
    pub created_at: DateTimeUtc,
    /// Last role change.
    pub updated_at: DateTimeUtc,
}

/// A membership together with the member's whole user account (the seed's
/// `fetch_membership_with_user` pair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipWithUserSnapshot {
    /// The membership, with the member's email and name.
    pub membership: MembershipSnapshot,
    /// The member's user account.
    pub user: UserAccountSnapshot,
}

/// A membership row with the member's email and name.
#[derive(Debug, FromQueryResult)]
struct MembershipRow {
    #[sea_orm(nested)]
    membership: memberships::Model,
    email: String,
    name: Option<String>,
}

fn snapshot(r: MembershipRow) -> MembershipSnapshot {
    MembershipSnapshot {
        id: r.membership.id,
        tenant_id: r.membership.tenant_id,
        user_id: r.membership.user_id,
        email: r.email,
        name: r.name,
        role: r.membership.role,
        invited_by: r.membership.invited_by,
        created_at: r.membership.created_at,
        updated_at: r.membership.updated_at,
    }
}

/// The tenant's memberships joined with their users.
fn with_users(tenant: TenantId) -> Select<memberships::Entity> {
    memberships::Entity::find()
        .join(JoinType::InnerJoin, memberships::Relation::User.def())
        .column_as(users::Column::Email, "email")
        .column_as(users::Column::Name, "name")
        .filter(memberships::Column::TenantId.eq(tenant))
}

/// `RETURNING` every membership column plus the member's email and name.
fn returning_with_user() -> ReturningClause {
    Query::returning().exprs([
        Expr::col(memberships::Column::Id),
        Expr::col(memberships::Column::TenantId),
        Expr::col(memberships::Column::UserId),
        Expr::col(memberships::Column::Role),
        Expr::col(memberships::Column::InvitedBy),
        Expr::col(memberships::Column::CreatedAt),
        Expr::col(memberships::Column::UpdatedAt),
        Expr::col(memberships::Column::MemberEmail),
        Expr::cust(member_column("email")),
        Expr::cust(member_column("name")),
    ])
}

/// `(SELECT users.<column> ...) AS <column>`: the member's user column, from our schema's
/// `users` (a host may have a `users` table of its own in its default schema).
fn member_column(column: &str) -> String {
    let schema = crate::schema::current();
    format!(
        "(SELECT users.{column} FROM \"{schema}\".users WHERE users.id = tenant_memberships.user_id) AS {column}"
    )
}

/// `INSERT ... RETURNING` the membership with the member's email and name, then the
/// tenant's membership total plus one.
async fn insert(
    db: Db<'_>,
    tenant: TenantId,
    user: UserId,
    role: MembershipRole,
    invited_by: Option<UserId>,
    now: DateTimeUtc,
) -> Result<MembershipSnapshot, DriverError> {
    use memberships::Column as C;
    // The email is read in the insert itself. `COALESCE` keeps a missing user's insert
    // failing on its foreign key (`DriverError::ForeignKey`), as it did before the copy.
    let mut of_user = Query::select();
    of_user
        .column(users::Column::Email)
        .from(users::Entity.table_ref())
        .and_where(Expr::col(users::Column::Id).eq(user));
    let email = Func::coalesce([
        Expr::SubQuery(None, Box::new(of_user.into())),
        Expr::value(""),
    ])
    .into();
    let mut insert = Query::insert();
    insert
        .into_table(memberships::Entity.table_ref())
        .columns([
            C::Id,
            C::TenantId,
            C::UserId,
            C::Role,
            C::InvitedBy,
            C::CreatedAt,
            C::UpdatedAt,
            C::MemberEmail,
        ])
        .values_panic([
            Expr::value(MembershipId::new()),
            Expr::value(tenant),
            Expr::value(user),
            Expr::value(role.as_str()),
            Expr::value(invited_by),
            Expr::value(now),
            Expr::value(now),
            email,
        ])
        .returning(returning_with_user());
    let row = db
        .conn()
        .query_one(&insert)
        .await?
        .ok_or(DriverError::NotFound {
            entity: "membership",
        })?;
    let membership = snapshot(MembershipRow::from_query_result(&row, "")?);
    add_to_totals(db, tenant, 1, 0).await?;
    Ok(membership)
}

impl TenantDriver<'_> {
    /// Makes `user` a member of `tenant` and returns the membership, in one statement (the
    /// seed's TenantDriver exports it too; the same insert as
    /// [`AccountsFacadeDriver::insert_membership`]). An existing membership surfaces as
    /// [`DriverError::Conflict`] on `uq_tenant_memberships_tenant_id_user_id`.
    pub async fn insert_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: MembershipRole,
        invited_by: Option<UserId>,
        now: DateTimeUtc,
    ) -> Result<MembershipSnapshot, DriverError> {
        insert(self.db, tenant, user, role, invited_by, now).await
    }
}

impl AccountsFacadeDriver<'_> {
    /// The tenant's members, oldest membership first (ties by membership id). Two
    /// statements: the tenant row's membership total (no count) and the page.
    pub async fn fetch_tenant_memberships(
        &self,
        tenant: TenantId,
        page: OffsetPage,
    ) -> Result<Page<MembershipSnapshot>, DriverError> {
        let total = fetch_totals(self.db, tenant).await?.members;
        let rows = with_users(tenant)
            .order_by_asc(memberships::Column::CreatedAt)
            .order_by_asc(memberships::Column::Id)
            .limit(page.limit)
            .offset(page.sql_offset())
            .into_model::<MembershipRow>()
            .all(self.db.conn())
            .await?;
        Ok(Page::new(
            rows.into_iter().map(snapshot).collect(),
            total,
            page,
        ))
    }

    /// The user's membership in `tenant`, with email and name, in one query.
    pub async fn fetch_membership(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<MembershipSnapshot>, DriverError> {
        let row = with_users(tenant)
            .filter(memberships::Column::UserId.eq(user))
            .into_model::<MembershipRow>()
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// The tenant's member with this normalised email (exact match), with their name, in one
    /// query served by the index on `(tenant_id, member_email, user_id)`; `None` when no
    /// member of `tenant` has it.
    pub async fn fetch_membership_by_email(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> Result<Option<MembershipSnapshot>, DriverError> {
        let row = with_users(tenant)
            .filter(memberships::Column::MemberEmail.eq(email))
            .into_model::<MembershipRow>()
            .one(self.db.conn())
            .await?;
        Ok(row.map(snapshot))
    }

    /// Every tenant `user` is a member of, with the role, oldest membership first: what a
    /// signed-in person sees of themselves (scoped by the person, not by a tenant).
    pub async fn fetch_user_memberships(
        &self,
        user: UserId,
    ) -> Result<Vec<(TenantId, MembershipRole, DateTimeUtc)>, DriverError> {
        let rows = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user))
            .order_by_asc(memberships::Column::CreatedAt)
            .order_by_asc(memberships::Column::Id)
            .all(self.db.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.tenant_id, row.role, row.created_at))
            .collect())
    }

    /// How many owners the tenant has.
    pub async fn count_owners(&self, tenant: TenantId) -> Result<u64, DriverError> {
        Ok(memberships::Entity::find()
            .filter(memberships::Column::TenantId.eq(tenant))
            .filter(memberships::Column::Role.eq(MembershipRole::Owner))
            .count(self.db.conn())
            .await?)
    }

    /// The user's membership in `tenant` together with the user's account, in one query
    /// (an inner join); `None` when the user is not a member of `tenant`.
    pub async fn fetch_membership_with_user(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<MembershipWithUserSnapshot>, DriverError> {
        let row = memberships::Entity::find()
            .find_both_related(users::Entity)
            .filter(memberships::Column::TenantId.eq(tenant))
            .filter(memberships::Column::UserId.eq(user))
            .one(self.db.conn())
            .await?;
        Ok(row.map(|(membership, user)| MembershipWithUserSnapshot {
            membership: snapshot(MembershipRow {
                membership,
                email: user.email.clone(),
                name: user.name.clone(),
            }),
            user: account(user),
        }))
    }

    /// Makes `user` a member of `tenant` and returns the membership, in one statement. An
    /// existing membership surfaces as [`DriverError::Conflict`] on
    /// `uq_tenant_memberships_tenant_id_user_id`.
    pub async fn insert_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: MembershipRole,
        invited_by: Option<UserId>,
        now: DateTimeUtc,
    ) -> Result<MembershipSnapshot, DriverError> {
        insert(self.db, tenant, user, role, invited_by, now).await
    }

    /// Sets the member's role in one conditional statement and returns the membership;
    /// `None` (nothing changed) when the user is not a member of `tenant` or, if
    /// `expected_role` is given, the current role differs from it.
    pub async fn update_membership_role(
        &self,
        tenant: TenantId,
        user: UserId,
        new_role: MembershipRole,
        expected_role: Option<MembershipRole>,
        now: DateTimeUtc,
    ) -> Result<Option<MembershipSnapshot>, DriverError> {
        let mut update = memberships::Entity::update_many()
            .col_expr(memberships::Column::Role, Expr::value(new_role.as_str()))
            .col_expr(memberships::Column::UpdatedAt, Expr::value(now))
            .filter(memberships::Column::TenantId.eq(tenant))
            .filter(memberships::Column::UserId.eq(user));
        if let Some(expected) = expected_role {
            update = update.filter(memberships::Column::Role.eq(expected));
        }
        let mut update = update.into_query();
        update.returning(returning_with_user());
        let row = self.db.conn().query_one(&update).await?;
        row.map(|row| MembershipRow::from_query_result(&row, "").map(snapshot))
            .transpose()
            .map_err(DriverError::from)
    }

    /// Removes the user from `tenant`; whether a membership was deleted. A deletion takes it
    /// out of the tenant's membership total in a second statement.
    pub async fn delete_membership(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<bool, DriverError> {
        let result = memberships::Entity::delete_many()
            .filter(memberships::Column::TenantId.eq(tenant))
            .filter(memberships::Column::UserId.eq(user))
            .exec(self.db.conn())
            .await?;
        let deleted = i64::try_from(result.rows_affected).unwrap_or(i64::MAX);
        add_to_totals(self.db, tenant, -deleted, 0).await?;
        Ok(deleted > 0)
    }
}
