//! Orders: validation, recording an order with the run that fulfils it, listing.

use crate::ShopDb;
use shop_drivers::StorageError;
use shop_drivers::orders as rows;

pub use shop_drivers::orders::OrderRow as Order;

/// The most items of one kind an order may take.
pub const MAX_QUANTITY: i32 = 50;

/// What a customer asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Stock-keeping unit: 1 to 40 of `A-Z`, `0-9` and `-`.
    pub sku: String,
    /// How many: 1 to [`MAX_QUANTITY`].
    pub quantity: i32,
}

/// Why an order was refused or not stored.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The SKU is not 1 to 40 of `A-Z`, `0-9` and `-`.
    #[error("sku must be 1 to 40 of A-Z, 0-9 and -")]
    InvalidSku,
    /// The quantity is out of range.
    #[error("quantity must be 1 to {MAX_QUANTITY}")]
    InvalidQuantity,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks an order before anything is admitted or written.
pub fn validate(order: &NewOrder) -> Result<(), OrderError> {
    let sku_ok = (1..=40).contains(&order.sku.len())
        && order
            .sku
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if !sku_ok {
        return Err(OrderError::InvalidSku);
    }
    if !(1..=MAX_QUANTITY).contains(&order.quantity) {
        return Err(OrderError::InvalidQuantity);
    }
    Ok(())
}

/// The task the fulfilment run is admitted with.
pub fn fulfilment_task(order: &NewOrder) -> String {
    format!("ship {} x {}", order.quantity, order.sku)
}

/// Records a validated order of `tenant_id`, fulfilled by the run `run_id`.
pub async fn record(
    db: ShopDb<'_>,
    tenant_id: &str,
    run_id: &str,
    order: NewOrder,
) -> Result<Order, OrderError> {
    validate(&order)?;
    let row = Order {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.to_owned(),
        sku: order.sku,
        quantity: order.quantity,
        run_id: run_id.to_owned(),
    };
    rows::insert(db, &row).await?;
    Ok(row)
}

/// The orders of `tenant_id`, oldest first.
pub async fn list(db: ShopDb<'_>, tenant_id: &str) -> Result<Vec<Order>, OrderError> {
    Ok(rows::list_for_tenant(db, tenant_id).await?)
}

/// Creates the shop's table unless it exists.
pub async fn install(db: ShopDb<'_>) -> Result<(), OrderError> {
    Ok(rows::create_table(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(sku: &str, quantity: i32) -> NewOrder {
        NewOrder {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn an_order_needs_a_well_formed_sku_and_a_quantity_in_range() {
        assert!(validate(&order("TEA-42", 1)).is_ok());
        assert!(validate(&order("TEA-42", MAX_QUANTITY)).is_ok());
        for sku in ["", "tea-42", "TEA 42", "TÉ", &"X".repeat(41)] {
            assert!(
                matches!(validate(&order(sku, 1)), Err(OrderError::InvalidSku)),
                "{sku}"
            );
        }
        for quantity in [0, -1, MAX_QUANTITY + 1] {
            let refused = validate(&order("TEA-42", quantity));
            assert!(
                matches!(refused, Err(OrderError::InvalidQuantity)),
                "{quantity}"
            );
        }
    }

    #[test]
    fn the_task_names_what_to_ship() {
        assert_eq!(fulfilment_task(&order("TEA-42", 3)), "ship 3 x TEA-42");
    }
}
