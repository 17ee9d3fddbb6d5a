//! The host's own routes: its orders. Placing one admits a run in the account domain by
//! calling the spine's use case directly, in process (no HTTP call to `/account`).

use crate::{HostError, HostState, HostUser};
use account_spine::ErrorCode;
use account_spine::runs::AdmitRun;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};
use uuid::Uuid;

/// The worker that fulfils the host's orders.
pub const FULFILMENT_WORKER: &str = "fulfilment";

/// An order, as the host stores and answers it.
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    /// The host's id.
    pub id: Uuid,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: u32,
    /// The host user who placed it.
    pub placed_by: String,
    /// The account domain's run that fulfils it.
    pub run_id: String,
}

/// The body of `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    /// What to order.
    pub item: String,
    /// How many, at least 1.
    pub quantity: u32,
}

/// The host's storage: in memory, to keep this example about HTTP. (The host-transaction
/// example stores orders in the database, in one transaction with the run.)
#[derive(Debug, Default)]
pub struct OrderBook(Mutex<Vec<Order>>);

impl OrderBook {
    fn orders(&self) -> std::sync::MutexGuard<'_, Vec<Order>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `GET /orders`: the signed-in host user's orders.
pub async fn list(State(host): State<HostState>, user: HostUser) -> Json<Vec<Order>> {
    let orders = host.orders.orders();
    let mine = orders.iter().filter(|o| o.placed_by == user.name);
    Json(mine.cloned().collect())
}

/// `POST /orders`: records the order and admits the run that fulfils it, as the principal
/// the spine verified for this host user; a quota refusal answers in our error shape (429).
pub async fn place(
    State(host): State<HostState>,
    user: HostUser,
    body: Result<Json<NewOrder>, JsonRejection>,
) -> Result<(StatusCode, Json<Order>), HostError> {
    let Json(new) = body.map_err(|_| HostError::BadRequest("send {\"item\", \"quantity\"}"))?;
    if new.item.trim().is_empty() || new.quantity == 0 {
        return Err(HostError::BadRequest(
            "an order needs an item and a quantity",
        ));
    }
    // Verified by the spine, never assembled by the host (see `HostUser::principal`).
    let principal = user.principal(&host.spine).await.map_err(|error| {
        match ErrorCode::http_status(&error) {
            // The key no longer verifies, or its tenant may no longer act.
            401 | 403 => HostError::AccountLinkInvalid,
            _ => HostError::Account(error),
        }
    })?;
    let admit = AdmitRun {
        worker_id: FULFILMENT_WORKER.into(),
        task: format!("fulfil {} x {}", new.quantity, new.item),
        input: None,
        token_estimate: 0,
    };
    let run = host
        .spine
        .admit_run(&principal, admit)
        .await
        .map_err(HostError::Account)?;
    let order = Order {
        id: Uuid::new_v4(),
        item: new.item,
        quantity: new.quantity,
        placed_by: user.name,
        run_id: run.id.to_string(),
    };
    host.orders.orders().push(order.clone());
    Ok((StatusCode::CREATED, Json(order)))
}
