// Engines do not depend on the ORM at all, so query builders and transactions are out of reach.
use sea_orm::{ConnectionTrait, TransactionTrait};

fn main() {}
