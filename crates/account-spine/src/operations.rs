//! The operations the spine offers: stable names for audit rows, traces and metrics, and the
//! authority each one needs. A test enumerates them all.

use account_engines::types::MembershipRole;

/// Which tenant capability an operation needs (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Reading (terminated and archived tenants cannot).
    Read,
    /// Writing (suspended tenants cannot).
    Write,
    /// Running workers through the SDK.
    SdkExecution,
    /// Issuing API keys.
    NewApiKeys,
    /// Platform operations work whatever the tenant's status.
    Any,
}

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// A member with at least this role, or a key holding this permission.
    Tenant {
        /// Lowest role allowed.
        min_role: MembershipRole,
        /// Permission a key needs (`run:*` grants every `run:...`).
        permission: &'static str,
    },
    /// Platform operators only.
    Operator,
}

macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, audit: $audit:expr, authority: $authority:expr, capability: $capability:expr; )+) => {
        /// Every operation of the spine.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $( $(#[$doc])* $variant, )+
        }

        impl Operation {
            /// All operations, for enumeration (docs, metrics, tests).
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),+];

            /// Stable dotted name, e.g. `runs.admit`.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$variant => $name,)+ }
            }

            /// The audit action written for a successful call, `None` for reads.
            pub fn audit_action(self) -> Option<&'static str> {
                match self { $(Operation::$variant => $audit,)+ }
            }

            /// Who may call it.
            pub fn authority(self) -> Authority {
                match self { $(Operation::$variant => $authority,)+ }
            }

            /// What the tenant must allow.
            pub fn capability(self) -> Capability {
                match self { $(Operation::$variant => $capability,)+ }
            }
        }
    };
}

const fn tenant(min_role: MembershipRole, permission: &'static str) -> Authority {
    Authority::Tenant {
        min_role,
        permission,
    }
}

operations! {
    /// Start a run.
    RunsAdmit = "runs.admit", audit: Some("run.admitted"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::SdkExecution;
    /// Record a run's results.
    RunsComplete = "runs.complete", audit: Some("run.completed"),
        authority: tenant(MembershipRole::Member, "run:*"), capability: Capability::Any;
    /// List runs.
    RunsList = "runs.list", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:runs"), capability: Capability::Read;
    /// Read one run.
    RunsGet = "runs.get", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:runs"), capability: Capability::Read;
    /// Transition a tenant's lifecycle.
    LifecycleTransition = "lifecycle.transition", audit: Some("tenant.lifecycle_changed"),
        authority: Authority::Operator, capability: Capability::Any;
    /// Read a tenant's lifecycle history.
    LifecycleHistory = "lifecycle.history", audit: None,
        authority: Authority::Operator, capability: Capability::Any;
    /// Read onboarding status.
    OnboardingStatus = "onboarding.status", audit: None,
        authority: tenant(MembershipRole::Viewer, "read:*"), capability: Capability::Read;
    /// Advance onboarding with evidence.
    OnboardingAdvance = "onboarding.advance", audit: Some("onboarding.advanced"),
        authority: tenant(MembershipRole::Admin, "keys:manage"), capability: Capability::Write;
    /// Complete onboarding without evidence.
    OnboardingForceComplete = "onboarding.force_complete", audit: Some("onboarding.force_completed"),
        authority: Authority::Operator, capability: Capability::Any;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_a_unique_name_an_authority_and_writes_are_audited() {
        let mut names = HashSet::new();
        for op in Operation::ALL {
            assert!(names.insert(op.name()), "duplicate name {}", op.name());
            let (area, verb) = op.name().split_once('.').expect("dotted name");
            assert!(!area.is_empty() && !verb.is_empty());
            let read_only = matches!(
                op,
                Operation::RunsList
                    | Operation::RunsGet
                    | Operation::LifecycleHistory
                    | Operation::OnboardingStatus
            );
            assert_eq!(op.audit_action().is_none(), read_only, "{}", op.name());
        }
    }
}
