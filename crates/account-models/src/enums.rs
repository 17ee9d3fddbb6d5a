//! Text-backed enums for every status, role, category and priority.
//!
//! Stored in one casing (lower snake case). serde and `parse_exact` accept exactly that
//! spelling, as the OpenAPI document shows it (`owner`; not `OWNER`, not ` owner `): that is
//! the HTTP API's contract. `FromStr` is lenient (trimmed, any case) for people typing at a
//! command line or in a host's configuration, where `Owner` plainly means `owner`; anything
//! else is a typed [`EnumError`] naming the accepted values. Text
//! columns (not native PostgreSQL enums) keep the same migrations valid on SQLite, and the
//! migrations add a named CHECK constraint per column so no other value is ever stored.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text given is not one of an enum's values.
///
/// # Examples
///
/// ```rust
/// use account_models::{EnumError, MembershipRole};
///
/// assert_eq!("Owner".parse::<MembershipRole>()?, MembershipRole::Owner);
/// assert_eq!(MembershipRole::Owner.as_str(), "owner");
/// let error = "superuser".parse::<MembershipRole>().unwrap_err();
/// assert_eq!(error.kind, "membership role");
/// # Ok::<(), EnumError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind}; expected one of: {expected}")]
#[non_exhaustive]
pub struct EnumError {
    /// What was being parsed, e.g. `membership role`.
    pub kind: &'static str,
    /// The rejected text, cut to 64 characters.
    pub input: String,
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

macro_rules! text_enum {
    (
        $(#[$doc:meta])* $name:ident, $kind:literal, $expected:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $( $(#[$vdoc])* #[sea_orm(string_value = $value)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (lower-case) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }
        }

        impl $name {
            /// Parses exactly the stored spelling, as serde and the HTTP API do.
            pub fn parse_exact(input: &str) -> Result<Self, EnumError> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == input)
                    .ok_or_else(|| Self::refused(input))
            }

            fn refused(input: &str) -> EnumError {
                EnumError {
                    kind: $kind,
                    input: input.chars().take(64).collect(),
                    expected: $expected,
                }
            }
        }

        /// Lenient: trimmed, any case (see the module's documentation).
        impl std::str::FromStr for $name {
            type Err = EnumError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                let wanted = input.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| Self::refused(input))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse_exact(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum!(
    /// A tenant's lifecycle status (the state machine lives in the engines).
    TenantStatus, "tenant status", "active, suspended, terminated, archived" {
        /// Fully usable.
        Active = "active",
        /// Read-only until resumed.
        Suspended = "suspended",
        /// Offboarded; irreversible.
        Terminated = "terminated",
        /// Terminal after termination.
        Archived = "archived",
    }
);

text_enum!(
    /// A member's role in a tenant, highest first.
    MembershipRole, "membership role", "owner, admin, member, viewer" {
        /// Full control, including roles and ownership.
        Owner = "owner",
        /// Manages keys and users.
        Admin = "admin",
        /// Runs workers.
        Member = "member",
        /// Reads only.
        Viewer = "viewer",
    }
);

text_enum!(
    /// A user account's status.
    #[non_exhaustive]
    UserStatus, "user status", "active, suspended, deleted" {
        /// May sign in.
        Active = "active",
        /// Blocked for now.
        Suspended = "suspended",
        /// Gone; kept for references.
        Deleted = "deleted",
    }
);

text_enum!(
    /// An API key's stored status (expiry is also computed from `expires_at`).
    #[non_exhaustive]
    ApiKeyStatus, "API key status", "active, revoked, expired" {
        /// Usable.
        Active = "active",
        /// Revoked by a user; permanent.
        Revoked = "revoked",
        /// Past its expiry.
        Expired = "expired",
    }
);

text_enum!(
    /// A worker run's status.
    #[non_exhaustive]
    RunStatus, "run status", "queued, running, completed, failed, crashed" {
        /// Admitted, not started.
        Queued = "queued",
        /// Executing.
        Running = "running",
        /// Finished successfully; immutable.
        Completed = "completed",
        /// Finished unsuccessfully; immutable.
        Failed = "failed",
        /// Lost its worker (orphan recovery).
        Crashed = "crashed",
    }
);

text_enum!(
    /// An invitation's status.
    InvitationStatus, "invitation status", "pending, accepted, expired, revoked" {
        /// Waiting for the invitee.
        Pending = "pending",
        /// Accepted; a membership exists.
        Accepted = "accepted",
        /// Past its expiry.
        Expired = "expired",
        /// Withdrawn by the tenant.
        Revoked = "revoked",
    }
);

text_enum!(
    /// A support ticket's category.
    #[non_exhaustive]
    TicketCategory, "ticket category", "general, billing, technical, feature_request" {
        /// Anything else.
        General = "general",
        /// Payments and invoices.
        Billing = "billing",
        /// Something does not work.
        Technical = "technical",
        /// Something is missing.
        FeatureRequest = "feature_request",
    }
);

text_enum!(
    /// A support ticket's priority.
    #[non_exhaustive]
    TicketPriority, "ticket priority", "low, medium, high, critical" {
        /// Whenever convenient.
        Low = "low",
        /// The default.
        Medium = "medium",
        /// Soon.
        High = "high",
        /// Production is down.
        Critical = "critical",
    }
);

text_enum!(
    /// A support ticket's status.
    #[non_exhaustive]
    TicketStatus, "ticket status", "open, in_progress, resolved, closed" {
        /// New.
        Open = "open",
        /// Being worked on.
        InProgress = "in_progress",
        /// Answered.
        Resolved = "resolved",
        /// Done.
        Closed = "closed",
    }
);

text_enum!(
    /// A subscription's status at the billing provider.
    #[non_exhaustive]
    SubscriptionStatus, "subscription status", "active, canceled, past_due, trialing, grace" {
        /// Paid and current.
        Active = "active",
        /// Ended.
        Canceled = "canceled",
        /// Payment failed.
        PastDue = "past_due",
        /// In its trial.
        Trialing = "trialing",
        /// The trial ended unpaid: still served until `grace_ends_at`, then cancelled and the
        /// tenant suspended (set only by the trial pass; a payment reported ends it).
        Grace = "grace",
    }
);

text_enum!(
    /// How often a subscription bills.
    #[non_exhaustive]
    BillingPeriod, "billing period", "monthly, annual" {
        /// Every month.
        Monthly = "monthly",
        /// Every year.
        Annual = "annual",
    }
);

text_enum!(
    /// An invoice's status at the billing provider.
    #[non_exhaustive]
    InvoiceStatus, "invoice status", "draft, open, paid, void, uncollectible" {
        /// Not finalised.
        Draft = "draft",
        /// Finalised, awaiting payment.
        Open = "open",
        /// Paid.
        Paid = "paid",
        /// Cancelled.
        Void = "void",
        /// Written off.
        Uncollectible = "uncollectible",
    }
);

text_enum!(
    /// The unit a usage meter counts in.
    #[non_exhaustive]
    UsageUnit, "usage unit", "count, tokens, seconds" {
        /// Occurrences.
        Count = "count",
        /// Model tokens.
        Tokens = "tokens",
        /// Wall-clock seconds.
        Seconds = "seconds",
    }
);

text_enum!(
    /// Who performed an action, for audit and lifecycle history.
    #[non_exhaustive]
    ActorType, "actor type", "user, api_key, founder, system, operator" {
        /// A signed-in human.
        User = "user",
        /// A machine caller holding an API key.
        ApiKey = "api_key",
        /// Staff of the platform.
        Founder = "founder",
        /// The platform itself.
        System = "system",
        /// An integration acting for the platform (e.g. billing).
        Operator = "operator",
    }
);

/// A tenant's onboarding progress; stored as its number, ordered, forward-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i16", db_type = "SmallInteger")]
pub enum OnboardingState {
    /// The tenant exists.
    #[sea_orm(num_value = 0)]
    Created,
    /// A human signed in.
    #[sea_orm(num_value = 1)]
    IdentityVerified,
    /// The first API key exists.
    #[sea_orm(num_value = 2)]
    ApiKeyCreated,
    /// An SDK connected.
    #[sea_orm(num_value = 3)]
    SdkConnected,
    /// Activated.
    #[sea_orm(num_value = 4)]
    Complete,
}

impl OnboardingState {
    /// Every state, in order.
    pub const ALL: &'static [Self] = &[
        Self::Created,
        Self::IdentityVerified,
        Self::ApiKeyCreated,
        Self::SdkConnected,
        Self::Complete,
    ];

    /// The stored number (0..=4).
    pub fn value(self) -> i16 {
        self as i16
    }

    /// The state with this number.
    pub fn from_value(value: i16) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.value() == value)
    }

    /// The upper snake case name, e.g. `API_KEY_CREATED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::IdentityVerified => "IDENTITY_VERIFIED",
            Self::ApiKeyCreated => "API_KEY_CREATED",
            Self::SdkConnected => "SDK_CONNECTED",
            Self::Complete => "COMPLETE",
        }
    }
}

impl OnboardingState {
    /// Parses exactly the upper snake case name, as serde and the HTTP API do.
    pub fn parse_exact(input: &str) -> Result<Self, EnumError> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.name() == input)
            .ok_or_else(|| Self::refused(input))
    }

    fn refused(input: &str) -> EnumError {
        EnumError {
            kind: "onboarding state",
            input: input.chars().take(64).collect(),
            expected: "CREATED, IDENTITY_VERIFIED, API_KEY_CREATED, SDK_CONNECTED, COMPLETE",
        }
    }
}

/// Lenient: trimmed, any case (see the module's documentation).
impl std::str::FromStr for OnboardingState {
    type Err = EnumError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let wanted = input.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| Self::refused(input))
    }
}

impl std::fmt::Display for OnboardingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for OnboardingState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for OnboardingState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_exact(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + std::fmt::Display + std::str::FromStr,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for value in all {
            let text = value.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *value);
            assert_eq!(text.to_uppercase().parse::<T>().unwrap(), *value);
            assert_eq!(format!("  {text} ").parse::<T>().unwrap(), *value);
        }
    }

    #[test]
    fn every_enum_round_trips_in_any_case() {
        round_trips(TenantStatus::ALL);
        round_trips(MembershipRole::ALL);
        round_trips(UserStatus::ALL);
        round_trips(ApiKeyStatus::ALL);
        round_trips(RunStatus::ALL);
        round_trips(InvitationStatus::ALL);
        round_trips(TicketCategory::ALL);
        round_trips(TicketPriority::ALL);
        round_trips(TicketStatus::ALL);
        round_trips(SubscriptionStatus::ALL);
        round_trips(BillingPeriod::ALL);
        round_trips(InvoiceStatus::ALL);
        round_trips(UsageUnit::ALL);
        round_trips(ActorType::ALL);
        round_trips(OnboardingState::ALL);
    }

    /// What the database holds is exactly `as_str`, lower snake case, and only that casing
    /// reads back (so a row can never hold `OWNER` next to `owner`).
    fn stored_in_one_casing<T>(all: &[T])
    where
        T: ActiveEnum<Value = String> + Copy + std::fmt::Debug + PartialEq + std::fmt::Display,
    {
        for value in all {
            let stored = value.to_value();
            assert_eq!(stored, value.to_string());
            assert!(
                stored.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{stored}"
            );
            assert_eq!(T::try_from_value(&stored).unwrap(), *value);
            assert!(T::try_from_value(&stored.to_uppercase()).is_err());
        }
        assert_eq!(T::iter().count(), all.len(), "ALL lists every variant");
    }

    #[test]
    fn every_text_enum_is_stored_in_one_casing() {
        stored_in_one_casing(TenantStatus::ALL);
        stored_in_one_casing(MembershipRole::ALL);
        stored_in_one_casing(UserStatus::ALL);
        stored_in_one_casing(ApiKeyStatus::ALL);
        stored_in_one_casing(RunStatus::ALL);
        stored_in_one_casing(InvitationStatus::ALL);
        stored_in_one_casing(TicketCategory::ALL);
        stored_in_one_casing(TicketPriority::ALL);
        stored_in_one_casing(TicketStatus::ALL);
        stored_in_one_casing(SubscriptionStatus::ALL);
        stored_in_one_casing(BillingPeriod::ALL);
        stored_in_one_casing(InvoiceStatus::ALL);
        stored_in_one_casing(UsageUnit::ALL);
        stored_in_one_casing(ActorType::ALL);
        assert_eq!(
            <OnboardingState as sea_orm::Iterable>::iter().count(),
            OnboardingState::ALL.len()
        );
        for state in OnboardingState::ALL {
            assert_eq!(OnboardingState::from_value(state.value()), Some(*state));
            assert_eq!(
                OnboardingState::try_from_value(&state.to_value()).unwrap(),
                *state
            );
        }
    }

    #[test]
    fn stored_text_is_lower_snake_case() {
        assert_eq!(
            "IN_PROGRESS".parse::<TicketStatus>().unwrap().as_str(),
            "in_progress"
        );
        assert_eq!(MembershipRole::Owner.to_value(), "owner".to_owned());
        assert_eq!(OnboardingState::SdkConnected.to_value(), 3);
    }

    #[test]
    fn unknown_values_are_typed_errors_naming_the_choices() {
        let error = "superuser".parse::<MembershipRole>().unwrap_err();
        assert_eq!(error.kind, "membership role");
        assert!(error.to_string().contains("owner, admin, member, viewer"));
        assert!("".parse::<TenantStatus>().is_err());
        assert!("in progress".parse::<TicketStatus>().is_err());
        assert!("inprogress".parse::<TicketStatus>().is_err());
        assert_eq!(
            "x".repeat(500)
                .parse::<TenantStatus>()
                .unwrap_err()
                .input
                .len(),
            64
        );
        assert!("churned".parse::<TenantStatus>().is_err());
        assert!("5".parse::<OnboardingState>().is_err());
        assert_eq!(OnboardingState::from_value(5), None);
    }

    #[test]
    fn serde_takes_only_the_stored_text_and_from_str_any_case() {
        let json = serde_json::to_string(&TicketPriority::Critical).unwrap();
        assert_eq!(json, "\"critical\"");
        let parsed: TicketPriority = serde_json::from_str("\"high\"").unwrap();
        assert_eq!(parsed, TicketPriority::High);
        for refused in ["\"HIGH\"", "\" high\"", "\"urgent\""] {
            let error = serde_json::from_str::<TicketPriority>(refused).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("expected one of: low, medium, high, critical"),
                "{refused}: {error}"
            );
        }
        assert_eq!(" HIGH ".parse::<TicketPriority>(), Ok(TicketPriority::High));
        assert_eq!(
            TenantStatus::parse_exact("Active").unwrap_err().input,
            "Active"
        );
        let state: OnboardingState = serde_json::from_str("\"COMPLETE\"").unwrap();
        assert_eq!(state, OnboardingState::Complete);
        assert!(serde_json::from_str::<OnboardingState>("\"complete\"").is_err());
        assert_eq!(
            "complete".parse::<OnboardingState>(),
            Ok(OnboardingState::Complete)
        );
    }

    #[test]
    fn onboarding_states_are_ordered() {
        assert!(OnboardingState::Created < OnboardingState::Complete);
        assert_eq!(
            OnboardingState::from_value(2),
            Some(OnboardingState::ApiKeyCreated)
        );
    }
}
