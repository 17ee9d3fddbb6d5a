//! What each membership role may do (§3.1), and how roles compare.

use account_drivers::types::MembershipRole;

/// A role's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleCapabilities {
    /// Issue, rotate and revoke API keys.
    pub can_manage_keys: bool,
    /// Start runs.
    pub can_run_workers: bool,
    /// Read runs.
    pub can_view_runs: bool,
    /// Invite, list invitations, remove users.
    pub can_manage_users: bool,
    /// Change other members' roles.
    pub can_change_roles: bool,
}

/// The capability table.
pub fn capabilities(role: MembershipRole) -> RoleCapabilities {
    let position = rank(role);
    RoleCapabilities {
        can_manage_keys: position >= rank(MembershipRole::Admin),
        can_run_workers: position >= rank(MembershipRole::Member),
        can_view_runs: true,
        can_manage_users: position >= rank(MembershipRole::Admin),
        can_change_roles: role == MembershipRole::Owner,
    }
}

/// Position in the hierarchy: owner 4, admin 3, member 2, viewer 1.
pub fn rank(role: MembershipRole) -> u8 {
    match role {
        MembershipRole::Owner => 4,
        MembershipRole::Admin => 3,
        MembershipRole::Member => 2,
        MembershipRole::Viewer => 1,
    }
}

/// Whether someone with `granter` may hand out `granted` (never above their own role).
pub fn may_grant(granter: MembershipRole, granted: MembershipRole) -> bool {
    capabilities(granter).can_manage_users && rank(granted) <= rank(granter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MembershipRole::*;

    #[test]
    fn the_table_matches_the_specification() {
        assert!(capabilities(Owner).can_change_roles);
        assert!(!capabilities(Admin).can_change_roles);
        assert!(capabilities(Admin).can_manage_keys && capabilities(Admin).can_manage_users);
        assert!(capabilities(Member).can_run_workers && !capabilities(Member).can_manage_keys);
        assert!(!capabilities(Viewer).can_run_workers && capabilities(Viewer).can_view_runs);
    }

    #[test]
    fn nobody_grants_above_their_own_role() {
        assert!(may_grant(Owner, Owner));
        assert!(may_grant(Admin, Admin));
        assert!(
            !may_grant(Admin, Owner),
            "an admin inviting an owner is refused"
        );
        assert!(!may_grant(Member, Viewer), "members manage no users");
    }
}
