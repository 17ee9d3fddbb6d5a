// Dependencies point down only: engines cannot name the spine above them.
use account_spine::Spine;

fn main() {}
