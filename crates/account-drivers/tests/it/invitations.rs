//! `invitations` driver tests.
