// An engine holds the opaque handle: it can pass it to drivers but not run a statement.
use account_engines::Db;

async fn purge_tenant(db: Db<'_>) {
    db.execute_unprepared("DELETE FROM tenants").await;
}

fn main() {}
