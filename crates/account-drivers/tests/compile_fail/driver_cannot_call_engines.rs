// Dependencies point down only: drivers cannot name the engines crate above them.
use account_engines::Db;

fn main() {}
