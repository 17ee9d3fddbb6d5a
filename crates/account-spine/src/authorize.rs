//! Authority checks: the principal's role or key permissions, then the tenant's capability.

use crate::error::SpineError;
use crate::operations::{Authority, Capability, Operation};
use crate::principal::{Actor, OperatorPrincipal, Principal};
use account_engines::api_keys::{Permission, permissions};
use account_engines::lifecycle::capabilities;
use account_engines::roles::rank;
use account_engines::types::TenantStatus;

/// Whether `granted` covers `required`, by the key vocabulary's own matching
/// ([`account_engines::api_keys::Permission::covers`]: `run:*` covers `run:<worker>`, `read:*`
/// the read family only, never `billing:read`). A required permission outside the vocabulary
/// is granted by nothing (fail closed; a test keeps the operation table inside it).
pub(crate) fn permission_grants(granted: &[String], required: &str) -> bool {
    Permission::parse(required).is_ok_and(|required| permissions::granted(granted, &required))
}

/// Checks the principal's authority for `operation` (not the tenant's status).
pub(crate) fn authorize(principal: &Principal, operation: Operation) -> Result<(), SpineError> {
    match (operation.authority(), &principal.actor) {
        (Authority::Operator, _) => Err(SpineError::forbidden(operation, "a platform operator")),
        (Authority::System, _) => Err(SpineError::forbidden(operation, "the platform itself")),
        (Authority::Token, _) => Ok(()),
        (Authority::Person, _) => Err(SpineError::forbidden(
            operation,
            "a signed-in person (an identity provider's token)",
        )),
        (Authority::Tenant { min_role, .. }, Actor::User { role, .. }) => {
            if rank(*role) >= rank(min_role) {
                Ok(())
            } else {
                Err(SpineError::forbidden(
                    operation,
                    format!("the {min_role} role or higher"),
                ))
            }
        }
        (Authority::Tenant { permission, .. }, Actor::ApiKey { permissions, .. }) => {
            if permission_grants(permissions, permission) {
                Ok(())
            } else {
                Err(SpineError::forbidden(
                    operation,
                    format!("an API key with the `{permission}` permission"),
                ))
            }
        }
    }
}

/// Checks an operator's authority for `operation`: only operations declared for operators,
/// and only by an identified operator (the audit trail must say who acted).
pub(crate) fn authorize_operator(
    operator: &OperatorPrincipal,
    operation: Operation,
) -> Result<(), SpineError> {
    if operation.authority() != Authority::Operator {
        return Err(SpineError::forbidden(operation, "a tenant principal"));
    }
    if operator.operator_id.trim().is_empty() {
        return Err(SpineError::forbidden(
            operation,
            "an identified platform operator",
        ));
    }
    Ok(())
}

/// Checks that a tenant in `status` allows `operation`.
pub(crate) fn check_capability(
    status: TenantStatus,
    operation: Operation,
) -> Result<(), SpineError> {
    let allowed = capabilities(status);
    let ok = match operation.capability() {
        Capability::Read => allowed.allows_reads,
        Capability::Write => allowed.allows_writes,
        Capability::SdkExecution => allowed.allows_sdk_execution,
        Capability::NewApiKeys => allowed.allows_new_api_keys,
        Capability::Any => true,
    };
    if ok {
        Ok(())
    } else {
        Err(SpineError::TenantStatusForbids {
            operation: operation.name(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_their_area_only() {
        let granted = vec!["run:*".to_owned(), "read:runs".to_owned()];
        assert!(permission_grants(&granted, "run:*"));
        assert!(permission_grants(&granted, "run:business-builder"));
        assert!(permission_grants(&granted, "read:runs"));
        assert!(!permission_grants(&granted, "read:usage"));
        assert!(!permission_grants(&granted, "keys:manage"));
        let read_all = vec!["read:*".to_owned()];
        assert!(
            !permission_grants(&read_all, "billing:read"),
            "billing is admin-only"
        );
        assert!(!permission_grants(&read_all, "users:read"));
        assert!(permission_grants(
            &["users:manage".to_owned()],
            "users:read"
        ));
    }

    #[test]
    fn operators_must_be_identified_and_call_operator_operations_only() {
        let operator = |id: &str| OperatorPrincipal {
            operator_id: id.to_owned(),
            request: Default::default(),
        };
        assert!(
            authorize_operator(&operator("ops@example.com"), Operation::LifecycleHistory).is_ok()
        );
        assert!(authorize_operator(&operator("  "), Operation::LifecycleHistory).is_err());
        assert!(authorize_operator(&operator("ops@example.com"), Operation::RunsList).is_err());
    }

    #[test]
    fn suspended_tenants_read_but_do_not_write() {
        assert!(check_capability(TenantStatus::Suspended, Operation::RunsList).is_ok());
        assert!(check_capability(TenantStatus::Suspended, Operation::RunsAdmit).is_err());
        assert!(check_capability(TenantStatus::Terminated, Operation::RunsList).is_err());
        assert!(check_capability(TenantStatus::Archived, Operation::LifecycleTransition).is_ok());
    }
}
