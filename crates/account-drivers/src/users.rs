//! Users: creation, sign-in, profile.

use crate::Db;

/// Users: creation, sign-in, profile.
#[derive(Clone, Copy, Debug)]
pub struct UserWriteDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The driver on `db`.
pub fn get_user_write_driver(db: Db<'_>) -> UserWriteDriver<'_> {
    UserWriteDriver { db }
}
