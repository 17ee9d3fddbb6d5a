//! The permission vocabulary of API keys and what each membership role may grant.
//!
//! Over 600 lines: the vocabulary, its matching and role caps are short; most of the file is their
//! unit tests, kept beside the table they check.
//!
//! # Grammar
//!
//! ```text
//! permission := "run:*"            run any worker
//!             | "run:" worker      run this worker; worker = 1..=100 of [a-z0-9_-]
//!             | "read:*"           read everything of the read family below
//!             | "read:runs"        read runs
//!             | "read:usage"       read usage and quotas
//!             | "keys:manage"      issue, list, update, revoke and rotate keys (and verify)
//!             | "keys:verify"      verify presented keys for a host's service (`POST /v1/keys/verify`)
//!             | "users:read"       list the tenant's users
//!             | "users:manage"     invite, change roles, remove, transfer ownership (and read)
//!             | "profile:write"    update one's own profile
//!             | "support:read"     list support tickets
//!             | "support:write"    open support tickets (and read them)
//!             | "billing:read"     read the billing summary and invoices
//!             | "audit:read"       read and export the tenant's audit log
//!             | "webhooks:manage"  manage webhook endpoints, their secrets, attempts and replays
//! ```
//!
//! Matching ([`Permission::covers`]): `run:*` covers every `run:<worker>`, `read:*` covers
//! `read:runs` and `read:usage`, `users:manage` covers `users:read`, `support:write` covers
//! `support:read`, `keys:manage` covers `keys:verify` (who manages every key may check one);
//! otherwise only the same permission covers. There is no global `*`: a key
//! holds an explicit list, so widening the vocabulary later never widens existing keys.
//!
//! `read:*` deliberately does **not** cover `billing:read` (nor `users:read`, nor
//! `audit:read`): `read:*` is the default of every key a member may issue, while billing and
//! the audit log are admin-only and the member list is account data. Billing and the audit log
//! live in families of their own so that an operational read key never reads invoices, nor
//! who did what in the account.
//!
//! The `users:`, `profile:`, `support:`, `billing:` and `audit:` families only work on a key
//! issued for a user (a personal key): the spine then bounds them by that user's current role
//! as well.
//!
//! # Role caps ([`role_may_grant`])
//!
//! | role | may grant |
//! |---|---|
//! | viewer | `read:*` family, `users:read`, `profile:write`, `support:*` |
//! | member | the viewer's, and the `run:*` family |
//! | admin | the member's, and `users:manage`, `billing:read`, `audit:read`, `webhooks:manage` |
//! | owner | everything, including `keys:manage` and `keys:verify` |
//!
//! Each cap is the lowest role the operations a permission unlocks need, so a personal key
//! never holds what its user could not do anyway.
//!
//! `keys:manage` is owner-only to grant. A key holding it is an *owner key*: a standing,
//! non-human credential that acts with the owner's ceiling (the spine gives it the owner role
//! for key management), so it issues keys with anything it holds itself, `keys:manage`
//! included, and rotates and revokes every key of the tenant (the bootstrap key included).
//! It outlives its issuer's membership; admins manage keys themselves, but delegating that
//! authority to a machine is the owners' decision (as Unkey's root keys need an explicit
//! permission to attach permissions to the keys they create). So no admin can mint a key wider
//! than an admin. `keys:verify` is owner-only for the same reason: a service holding it learns
//! what every key of the tenant may do. Among admins and members the caps only matter
//! together with [`can_manage_keys`]: members may not issue keys at all.

use super::ApiKeyError;
use account_drivers::types::MembershipRole;

/// Longest accepted worker id (the same rule as run admission).
pub const MAX_WORKER_ID: usize = 100;
/// Most permissions one key may hold.
pub const MAX_PERMISSIONS: usize = 50;

/// Permissions a key gets when the request names none (then capped to the issuer's role).
pub const DEFAULT_PERMISSIONS: &[&str] = &["run:*", "read:*"];

/// Permissions of the owner's key that bootstrap issues: everything, so the owner can run the
/// whole account over HTTP with it.
pub const OWNER_KEY_PERMISSIONS: &[&str] = &[
    "run:*",
    "read:*",
    "keys:manage",
    "users:manage",
    "profile:write",
    "support:write",
    "billing:read",
    "audit:read",
    "webhooks:manage",
];

/// One parsed permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Permission {
    /// `run:*`.
    RunAll,
    /// `run:<worker>`.
    RunWorker(String),
    /// `read:*`.
    ReadAll,
    /// `read:runs`.
    ReadRuns,
    /// `read:usage`.
    ReadUsage,
    /// `keys:manage`.
    KeysManage,
    /// `keys:verify`.
    KeysVerify,
    /// `users:read`.
    UsersRead,
    /// `users:manage`.
    UsersManage,
    /// `profile:write`.
    ProfileWrite,
    /// `support:read`.
    SupportRead,
    /// `support:write`.
    SupportWrite,
    /// `billing:read`.
    BillingRead,
    /// `audit:read`.
    AuditRead,
    /// `webhooks:manage`.
    WebhooksManage,
}

/// The family a permission belongs to, which is what role caps are stated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionFamily {
    /// `run:...`.
    Run,
    /// `read:...`.
    Read,
    /// `keys:...`.
    Keys,
    /// `users:...`.
    Users,
    /// `profile:...`.
    Profile,
    /// `support:...`.
    Support,
    /// `billing:...`.
    Billing,
    /// `audit:...`.
    Audit,
    /// `webhooks:...`.
    Webhooks,
}

impl Permission {
    /// Parses one permission of the grammar; anything else is
    /// [`ApiKeyError::UnknownPermission`].
    pub fn parse(text: &str) -> Result<Self, ApiKeyError> {
        let unknown = || ApiKeyError::UnknownPermission {
            permission: truncate(text),
        };
        let (action, scope) = text.split_once(':').ok_or_else(unknown)?;
        match (action, scope) {
            ("run", "*") => Ok(Self::RunAll),
            ("run", worker) if is_worker_id(worker) => Ok(Self::RunWorker(worker.to_owned())),
            ("read", "*") => Ok(Self::ReadAll),
            ("read", "runs") => Ok(Self::ReadRuns),
            ("read", "usage") => Ok(Self::ReadUsage),
            ("keys", "manage") => Ok(Self::KeysManage),
            ("keys", "verify") => Ok(Self::KeysVerify),
            ("users", "read") => Ok(Self::UsersRead),
            ("users", "manage") => Ok(Self::UsersManage),
            ("profile", "write") => Ok(Self::ProfileWrite),
            ("support", "read") => Ok(Self::SupportRead),
            ("support", "write") => Ok(Self::SupportWrite),
            ("billing", "read") => Ok(Self::BillingRead),
            ("audit", "read") => Ok(Self::AuditRead),
            ("webhooks", "manage") => Ok(Self::WebhooksManage),
            _ => Err(unknown()),
        }
    }

    /// The permission's canonical text.
    pub fn as_string(&self) -> String {
        match self {
            Self::RunAll => "run:*".into(),
            Self::RunWorker(worker) => format!("run:{worker}"),
            Self::ReadAll => "read:*".into(),
            Self::ReadRuns => "read:runs".into(),
            Self::ReadUsage => "read:usage".into(),
            Self::KeysManage => "keys:manage".into(),
            Self::KeysVerify => "keys:verify".into(),
            Self::UsersRead => "users:read".into(),
            Self::UsersManage => "users:manage".into(),
            Self::ProfileWrite => "profile:write".into(),
            Self::SupportRead => "support:read".into(),
            Self::SupportWrite => "support:write".into(),
            Self::BillingRead => "billing:read".into(),
            Self::AuditRead => "audit:read".into(),
            Self::WebhooksManage => "webhooks:manage".into(),
        }
    }

    /// Its family.
    pub fn family(&self) -> PermissionFamily {
        match self {
            Self::RunAll | Self::RunWorker(_) => PermissionFamily::Run,
            Self::ReadAll | Self::ReadRuns | Self::ReadUsage => PermissionFamily::Read,
            Self::KeysManage | Self::KeysVerify => PermissionFamily::Keys,
            Self::UsersRead | Self::UsersManage => PermissionFamily::Users,
            Self::ProfileWrite => PermissionFamily::Profile,
            Self::SupportRead | Self::SupportWrite => PermissionFamily::Support,
            Self::BillingRead => PermissionFamily::Billing,
            Self::AuditRead => PermissionFamily::Audit,
            Self::WebhooksManage => PermissionFamily::Webhooks,
        }
    }

    /// Whether holding `self` grants `required`.
    pub fn covers(&self, required: &Permission) -> bool {
        match (self, required) {
            (Self::RunAll, Self::RunWorker(_)) => true,
            (Self::ReadAll, Self::ReadRuns | Self::ReadUsage) => true,
            (Self::UsersManage, Self::UsersRead) => true,
            (Self::SupportWrite, Self::SupportRead) => true,
            (Self::KeysManage, Self::KeysVerify) => true,
            (held, required) => held == required,
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// Whether `worker` is a valid worker id: 1..=100 of `a-z`, `0-9`, `-`, `_`.
pub fn is_worker_id(worker: &str) -> bool {
    !worker.is_empty()
        && worker.len() <= MAX_WORKER_ID
        && worker
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether a member with `role` may put `permission` on a key (the table above).
pub fn role_may_grant(role: MembershipRole, permission: &Permission) -> bool {
    crate::roles::rank(role) >= crate::roles::rank(lowest_role_to_grant(permission))
}

/// The lowest role that may put `permission` on a key (the table above).
pub fn lowest_role_to_grant(permission: &Permission) -> MembershipRole {
    match permission.family() {
        PermissionFamily::Keys => MembershipRole::Owner,
        PermissionFamily::Billing | PermissionFamily::Audit | PermissionFamily::Webhooks => {
            MembershipRole::Admin
        }
        PermissionFamily::Users if *permission == Permission::UsersManage => MembershipRole::Admin,
        PermissionFamily::Run => MembershipRole::Member,
        PermissionFamily::Read
        | PermissionFamily::Users
        | PermissionFamily::Profile
        | PermissionFamily::Support => MembershipRole::Viewer,
    }
}

/// Whether `role` may issue, revoke and rotate keys (§3.1 `can_manage_keys`).
pub fn can_manage_keys(role: MembershipRole) -> bool {
    matches!(role, MembershipRole::Owner | MembershipRole::Admin)
}

/// The permissions a new key gets: the requested ones, parsed, deduplicated (first occurrence
/// wins the order) and each within `role`; or, when none were requested (an empty list), the
/// [`DEFAULT_PERMISSIONS`] that `role` may grant.
///
/// Refuses more than [`MAX_PERMISSIONS`], any unknown permission, and any permission above
/// the role.
pub fn resolve(role: MembershipRole, requested: &[String]) -> Result<Vec<Permission>, ApiKeyError> {
    if requested.is_empty() {
        return Ok(DEFAULT_PERMISSIONS
            .iter()
            .filter_map(|p| Permission::parse(p).ok())
            .filter(|p| role_may_grant(role, p))
            .collect());
    }
    if requested.len() > MAX_PERMISSIONS {
        return Err(ApiKeyError::InvalidPermissionCount {
            max: MAX_PERMISSIONS,
        });
    }
    let mut resolved: Vec<Permission> = Vec::with_capacity(requested.len());
    for text in requested {
        let permission = Permission::parse(text.trim())?;
        if !role_may_grant(role, &permission) {
            return Err(ApiKeyError::PermissionTooWide {
                permission: permission.as_string(),
                role,
            });
        }
        if !resolved.contains(&permission) {
            resolved.push(permission);
        }
    }
    Ok(resolved)
}

/// Whether any of the stored permission strings grants `required`. Stored strings that do not
/// parse grant nothing (fail closed).
pub fn granted(held: &[String], required: &Permission) -> bool {
    held.iter()
        .filter_map(|text| Permission::parse(text).ok())
        .any(|p| p.covers(required))
}

/// At most 100 characters of caller input, for error messages.
fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use MembershipRole::*;

    fn p(text: &str) -> Permission {
        Permission::parse(text).unwrap()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_grammar_accepts_the_vocabulary_and_round_trips() {
        for text in [
            "run:*",
            "run:business-builder",
            "run:w_1",
            "read:*",
            "read:runs",
            "read:usage",
            "keys:manage",
            "keys:verify",
            "users:read",
            "users:manage",
            "profile:write",
            "support:read",
            "support:write",
            "billing:read",
            "audit:read",
            "webhooks:manage",
        ] {
            assert_eq!(p(text).as_string(), text);
            assert_eq!(p(text).to_string(), text);
        }
        assert_eq!(p("run:x"), Permission::RunWorker("x".into()));
    }

    #[test]
    fn the_grammar_refuses_everything_else() {
        let long = format!("run:{}", "a".repeat(101));
        for text in [
            "",
            "*",
            "run",
            "run:",
            "run:Upper",
            "run:a b",
            "read:keys",
            "read:",
            "keys:*",
            "keys:read",
            "read:billing",
            "users:*",
            "billing:*",
            "billing:write",
            "audit:*",
            "audit:write",
            "read:audit",
            "profile:read",
            "admin:*",
            "RUN:*",
            "run:*:x",
            long.as_str(),
        ] {
            let error = Permission::parse(text).unwrap_err();
            assert!(
                matches!(&error, ApiKeyError::UnknownPermission { permission } if permission.chars().count() <= 100),
                "{text:?}: {error:?}"
            );
        }
    }

    #[test]
    fn wildcards_cover_their_family_only() {
        assert!(p("run:*").covers(&p("run:x")));
        assert!(p("run:*").covers(&p("run:*")));
        assert!(!p("run:x").covers(&p("run:*")));
        assert!(!p("run:x").covers(&p("run:y")));
        assert!(p("run:x").covers(&p("run:x")));
        assert!(p("read:*").covers(&p("read:runs")));
        assert!(p("read:*").covers(&p("read:usage")));
        assert!(!p("read:runs").covers(&p("read:usage")));
        assert!(!p("read:*").covers(&p("run:x")));
        assert!(!p("run:*").covers(&p("keys:manage")));
        assert!(p("keys:manage").covers(&p("keys:verify")));
        assert!(!p("keys:verify").covers(&p("keys:manage")));
        assert!(!p("read:*").covers(&p("keys:manage")));
        assert!(p("users:manage").covers(&p("users:read")));
        assert!(!p("users:read").covers(&p("users:manage")));
        assert!(p("support:write").covers(&p("support:read")));
        assert!(!p("support:read").covers(&p("support:write")));
        assert!(granted(&strings(&["garbage", "run:*"]), &p("run:a")));
        assert!(!granted(&strings(&["garbage", "*"]), &p("run:a")));
    }

    #[test]
    fn read_all_never_reads_billing_or_account_data() {
        let read_all = strings(&["read:*"]);
        for text in [
            "billing:read",
            "users:read",
            "users:manage",
            "support:read",
            "audit:read",
            "webhooks:manage",
        ] {
            assert!(!granted(&read_all, &p(text)), "{text}");
        }
        assert!(granted(&strings(&["billing:read"]), &p("billing:read")));
    }

    #[test]
    fn account_permissions_are_capped_by_the_role_the_operations_need() {
        for text in [
            "users:read",
            "profile:write",
            "support:read",
            "support:write",
        ] {
            for role in [Owner, Admin, Member, Viewer] {
                assert!(role_may_grant(role, &p(text)), "{role} {text}");
            }
        }
        for text in [
            "users:manage",
            "billing:read",
            "audit:read",
            "webhooks:manage",
        ] {
            assert!(role_may_grant(Owner, &p(text)) && role_may_grant(Admin, &p(text)));
            assert!(!role_may_grant(Member, &p(text)) && !role_may_grant(Viewer, &p(text)));
        }
        for text in OWNER_KEY_PERMISSIONS {
            assert!(role_may_grant(Owner, &p(text)), "{text}");
        }
        assert_eq!(
            resolve(Owner, &strings(OWNER_KEY_PERMISSIONS))
                .unwrap()
                .len(),
            OWNER_KEY_PERMISSIONS.len()
        );
    }

    #[test]
    fn roles_cap_what_they_may_grant() {
        for text in ["read:*", "read:runs", "read:usage"] {
            for role in [Owner, Admin, Member, Viewer] {
                assert!(role_may_grant(role, &p(text)), "{role} {text}");
            }
        }
        for text in ["run:*", "run:x"] {
            assert!(role_may_grant(Member, &p(text)));
            assert!(!role_may_grant(Viewer, &p(text)));
        }
        assert!(role_may_grant(Owner, &p("keys:manage")));
        assert!(
            !role_may_grant(Admin, &p("keys:manage")),
            "delegating key management is the owners' call"
        );
        for text in ["run:*", "run:x", "read:*"] {
            assert!(role_may_grant(Admin, &p(text)), "{text}");
        }
        assert!(!role_may_grant(Member, &p("keys:manage")));
        assert!(role_may_grant(Owner, &p("keys:verify")));
        assert!(!role_may_grant(Admin, &p("keys:verify")));
        assert!(!role_may_grant(Viewer, &p("keys:manage")));
        assert!(can_manage_keys(Owner) && can_manage_keys(Admin));
        assert!(!can_manage_keys(Member) && !can_manage_keys(Viewer));
    }

    #[test]
    fn resolve_defaults_caps_and_refuses() {
        assert_eq!(resolve(Admin, &[]).unwrap(), vec![p("run:*"), p("read:*")]);
        assert_eq!(resolve(Member, &[]).unwrap(), vec![p("run:*"), p("read:*")]);
        assert_eq!(resolve(Viewer, &[]).unwrap(), vec![p("read:*")], "capped");
        assert_eq!(
            resolve(Member, &strings(&["read:runs", "run:a", "read:runs"])).unwrap(),
            vec![p("read:runs"), p("run:a")],
            "deduplicated, order kept"
        );
        assert!(matches!(
            resolve(Member, &strings(&["run:*", "keys:manage"])),
            Err(ApiKeyError::PermissionTooWide { permission, role: Member }) if permission == "keys:manage"
        ));
        assert!(matches!(
            resolve(Viewer, &strings(&["run:x"])),
            Err(ApiKeyError::PermissionTooWide { .. })
        ));
        assert!(matches!(
            resolve(Admin, &strings(&["read:*", "keys:manage"])),
            Err(ApiKeyError::PermissionTooWide { permission, role: Admin }) if permission == "keys:manage"
        ));
        assert_eq!(
            resolve(Owner, &strings(&["keys:manage"])).unwrap(),
            vec![p("keys:manage")]
        );
        assert!(matches!(
            resolve(Owner, &strings(&["run:*", "admin:*"])),
            Err(ApiKeyError::UnknownPermission { permission }) if permission == "admin:*"
        ));
        let many: Vec<String> = (0..51).map(|i| format!("run:w{i}")).collect();
        assert!(matches!(
            resolve(Owner, &many),
            Err(ApiKeyError::InvalidPermissionCount { max: 50 })
        ));
    }

    /// Text of a permission of the grammar: the fixed vocabulary or `run:<worker>`.
    fn permission_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let fixed: Vec<String> = OWNER_KEY_PERMISSIONS
            .iter()
            .chain(&["read:runs", "read:usage", "users:read", "support:read"])
            .map(|p| (*p).to_owned())
            .collect();
        prop_oneof![
            proptest::sample::select(fixed),
            "[a-z0-9_-]{1,100}".prop_map(|worker| format!("run:{worker}")),
        ]
    }

    // Hostile input: never a panic, the canonical text round-trips, every refusal is typed and
    // bounded, and the worker-id and list-length bounds hold at their edges.
    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_refusals_are_typed(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            match Permission::parse(&text) {
                Ok(permission) => {
                    // Nothing is normalised: only canonical text is accepted.
                    proptest::prop_assert_eq!(permission.as_string(), &*text);
                }
                Err(ApiKeyError::UnknownPermission { permission }) => {
                    proptest::prop_assert_eq!(permission, text.chars().take(100).collect::<String>());
                }
                Err(other) => proptest::prop_assert!(false, "{:?} gave {:?}", text, other),
            }
            proptest::prop_assert!(!granted(&[text.into_owned()], &Permission::KeysManage)
                || bytes == b"keys:manage");
        }

        #[test]
        fn the_canonical_text_round_trips(text in permission_text()) {
            let permission = Permission::parse(&text).unwrap();
            proptest::prop_assert_eq!(permission.as_string(), text.clone());
            proptest::prop_assert_eq!(Permission::parse(&permission.to_string()).unwrap(), permission.clone());
            proptest::prop_assert!(permission.covers(&permission));
            proptest::prop_assert!(granted(&[text], &permission));
        }

        #[test]
        fn worker_ids_are_bounded_at_exactly_100(
            length in 98usize..=102,
            letter in "[a-z0-9_-]",
        ) {
            let text = format!("run:{}", letter.repeat(length));
            proptest::prop_assert_eq!(Permission::parse(&text).is_ok(), length <= MAX_WORKER_ID);
        }

        #[test]
        fn resolve_never_panics_dedupes_and_bounds_the_list(
            requested in proptest::collection::vec(
                proptest::prop_oneof![permission_text(), "[ -~]{0,12}"], 0..60),
        ) {
            match resolve(MembershipRole::Owner, &requested) {
                Ok(resolved) => {
                    proptest::prop_assert!(requested.len() <= MAX_PERMISSIONS);
                    for (i, p) in resolved.iter().enumerate() {
                        proptest::prop_assert!(!resolved[i + 1..].contains(p), "deduplicated");
                        proptest::prop_assert!(
                            requested.is_empty() || requested.iter().any(|r| r.trim() == p.as_string())
                        );
                    }
                }
                Err(ApiKeyError::InvalidPermissionCount { max }) => {
                    proptest::prop_assert_eq!(max, MAX_PERMISSIONS);
                    proptest::prop_assert!(requested.len() > MAX_PERMISSIONS);
                }
                Err(ApiKeyError::UnknownPermission { .. }) => proptest::prop_assert!(
                    requested.iter().any(|r| Permission::parse(r.trim()).is_err())
                ),
                Err(other) => proptest::prop_assert!(false, "the owner may grant all: {:?}", other),
            }
        }
    }

    #[test]
    fn worker_ids() {
        assert!(is_worker_id("business-builder_2"));
        assert!(!is_worker_id(""));
        assert!(!is_worker_id("Worker"));
        assert!(!is_worker_id("a/b"));
        assert!(is_worker_id(&"a".repeat(100)));
        assert!(!is_worker_id(&"a".repeat(101)));
    }
}
