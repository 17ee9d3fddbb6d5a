// A driver only ever borrows the spine's handle: there is nothing it could commit.
use account_drivers::Db;

async fn revoke_and_commit(db: Db<'_>) {
    db.commit().await;
}

fn main() {}
