// Transactions belong to the spine: an engine's handle cannot commit or roll back.
use account_engines::Db;

async fn approve(db: Db<'_>) {
    db.rollback().await;
}

fn main() {}
