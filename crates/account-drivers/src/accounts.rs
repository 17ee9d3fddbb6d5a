//! `AccountsFacadeDriver`: the data access behind the accounts facade (projects, users,
//! memberships, profile, billing, invitations, tickets). Its methods live in the table modules.

use crate::Db;

/// Data access for the accounts facade, bound to one handle.
#[derive(Clone, Copy, Debug)]
pub struct AccountsFacadeDriver<'a> {
    pub(crate) db: Db<'a>,
}

/// The accounts facade driver on `db`.
pub fn get_accounts_facade_driver(db: Db<'_>) -> AccountsFacadeDriver<'_> {
    AccountsFacadeDriver { db }
}
