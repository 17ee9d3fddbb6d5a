// The handle implements no `TransactionTrait`, so a driver cannot open a transaction (or a
// savepoint) of its own.
use account_drivers::Db;
use sea_orm::TransactionTrait;

async fn insert_in_own_transaction(db: Db<'_>) {
    let _txn = db.begin().await;
}

fn main() {}
