//! `invitations`.
