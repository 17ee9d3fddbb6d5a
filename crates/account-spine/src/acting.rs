//! Who acts behind a tenant principal: a member as their membership has them now, or a
//! personal key's user bounded by both the key and that user's current role.

use crate::authorize::authorize;
use crate::database::Spine;
use crate::error::SpineError;
use crate::operations::{Authority, Operation};
use crate::principal::{Actor, Principal};
use account_engines::memberships::{self, Acting};
use account_engines::roles::rank;
use account_engines::types::UserId;

impl Spine {
    /// `principal` for `user_id` with the role their membership of the principal's tenant has
    /// now; [`SpineError::TenantNotFound`] when they have none, so a made-up or removed user
    /// learns nothing about the tenant.
    pub(crate) async fn member_principal(
        &self,
        principal: &Principal,
        user_id: UserId,
    ) -> Result<Principal, SpineError> {
        let tenant = principal.tenant_id;
        let role = match self.member_roles.get(tenant, user_id) {
            Some(role) => role,
            None => {
                let generation = self.member_roles.generation();
                match memberships::get_user_detail(self.pool_db(), tenant, user_id).await {
                    Ok((detail, _)) => {
                        self.member_roles
                            .insert(tenant, user_id, detail.role, generation);
                        detail.role
                    }
                    Err(memberships::MembershipError::NotAMember) => {
                        return Err(SpineError::TenantNotFound);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        };
        Ok(Principal {
            actor: Actor::User { user_id, role },
            ..principal.clone()
        })
    }

    /// The member acting behind `principal`. A member the host authenticated acts as
    /// themselves. A personal API key (issued for a user) acts on that user's behalf, bounded
    /// by both its permissions and the user's current role in the tenant, re-read from the
    /// membership now: a demoted or removed user's keys lose the power at once. A machine key
    /// (issued for no user) is refused.
    pub(crate) async fn acting(
        &self,
        principal: &Principal,
        operation: Operation,
    ) -> Result<Acting, SpineError> {
        match &principal.actor {
            Actor::User { user_id, role } => Ok(Acting {
                user_id: *user_id,
                role: *role,
            }),
            Actor::ApiKey { user_id: None, .. } => Err(SpineError::MachineKey {
                operation: operation.name(),
            }),
            Actor::ApiKey {
                user_id: Some(user_id),
                ..
            } => {
                self.personal_key_acting(principal, *user_id, operation)
                    .await
            }
        }
    }

    /// A personal key's user, with their role as it stands now, if both the key and the role
    /// allow `operation`.
    async fn personal_key_acting(
        &self,
        principal: &Principal,
        user_id: UserId,
        operation: Operation,
    ) -> Result<Acting, SpineError> {
        authorize(principal, operation)?;
        let current = match memberships::get_user_detail(
            self.pool_db(),
            principal.tenant_id,
            user_id,
        )
        .await
        {
            Ok((detail, _)) => Some(detail.role),
            Err(memberships::MembershipError::NotAMember) => None,
            Err(error) => return Err(error.into()),
        };
        let Some(role) = current else {
            return Err(SpineError::forbidden(
                operation,
                "an API key whose user is still a member of the tenant",
            ));
        };
        if let Authority::Tenant { min_role, .. } = operation.authority()
            && rank(role) < rank(min_role)
        {
            return Err(SpineError::forbidden(
                operation,
                format!(
                    "an API key whose user has the {min_role} role or higher (they are {role})"
                ),
            ));
        }
        Ok(Acting { user_id, role })
    }
}

/// Permissions whose personal keys act with their user's powers as they stand now: the one
/// that makes a key an owner key (key management, pin cleanup, onboarding), and webhook
/// management (an admin's: it decides where the tenant's events go).
const ROLE_BOUNDED: [&str; 2] = ["keys:manage", "webhooks:manage"];

/// Whether `principal` is a personal key calling an operation that takes one of the
/// [`ROLE_BOUNDED`] permissions: such a key uses its user's powers on their behalf, so it is
/// bounded by the user's role as it stands now, like a person's use case (a demoted owner's
/// key stops minting keys at once; a demoted admin's stops managing webhooks). Machine keys
/// stay bounded by their permissions alone.
pub(crate) fn acts_with_users_role(principal: &Principal, operation: Operation) -> bool {
    matches!(
        principal.actor,
        Actor::ApiKey {
            user_id: Some(_),
            ..
        }
    ) && matches!(
        operation.authority(),
        Authority::Tenant { permission, .. } if ROLE_BOUNDED.contains(&permission)
    )
}
