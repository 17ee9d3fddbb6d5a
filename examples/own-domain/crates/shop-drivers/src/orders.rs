//! The `orders` table: an order of a tenant, and the account run that fulfils it.

use crate::{ShopDb, StorageError};
use sea_orm::sea_query::{ColumnDef, Expr, ExprTrait, Query, Table};
use sea_orm::{ConnectionTrait, Order};

const ORDERS: &str = "orders";

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    /// Its id (a UUID, as text).
    pub id: String,
    /// The account tenant that placed it.
    pub tenant_id: String,
    /// The stock-keeping unit ordered.
    pub sku: String,
    /// How many.
    pub quantity: i32,
    /// The account run that fulfils it.
    pub run_id: String,
}

/// Creates the table unless it exists.
pub async fn create_table(db: ShopDb<'_>) -> Result<(), StorageError> {
    let table = Table::create()
        .table(ORDERS)
        .if_not_exists()
        .col(ColumnDef::new("id").string_len(36).not_null().primary_key())
        .col(ColumnDef::new("tenant_id").string_len(36).not_null())
        .col(ColumnDef::new("sku").string_len(40).not_null())
        .col(ColumnDef::new("quantity").integer().not_null())
        .col(ColumnDef::new("run_id").string_len(36).not_null())
        .to_owned();
    db.txn.execute(&table).await?;
    Ok(())
}

/// Inserts `order`.
pub async fn insert(db: ShopDb<'_>, order: &OrderRow) -> Result<(), StorageError> {
    let insert = Query::insert()
        .into_table(ORDERS)
        .columns(["id", "tenant_id", "sku", "quantity", "run_id"])
        .values_panic([
            order.id.clone().into(),
            order.tenant_id.clone().into(),
            order.sku.clone().into(),
            order.quantity.into(),
            order.run_id.clone().into(),
        ])
        .to_owned();
    db.txn.execute(&insert).await?;
    Ok(())
}

/// The tenant's orders, oldest id first; scoped by `tenant_id` like every query of tenant
/// data.
pub async fn list_for_tenant(
    db: ShopDb<'_>,
    tenant_id: &str,
) -> Result<Vec<OrderRow>, StorageError> {
    let select = Query::select()
        .columns(["id", "tenant_id", "sku", "quantity", "run_id"])
        .from(ORDERS)
        .and_where(Expr::col("tenant_id").eq(tenant_id))
        .order_by("id", Order::Asc)
        .to_owned();
    let rows = db.txn.query_all(&select).await?;
    rows.iter()
        .map(|row| {
            Ok(OrderRow {
                id: row.try_get("", "id")?,
                tenant_id: row.try_get("", "tenant_id")?,
                sku: row.try_get("", "sku")?,
                quantity: row.try_get("", "quantity")?,
                run_id: row.try_get("", "run_id")?,
            })
        })
        .collect()
}
