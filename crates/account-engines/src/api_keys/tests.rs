//! Unit tests of the key rules (no database).

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

fn request(role: MembershipRole) -> IssueKeyRequest {
    IssueKeyRequest {
        tenant_id: TenantId::new(),
        issuer: Issuer {
            user_id: None,
            role,
            issuing_key: None,
            audit: KeyAudit::NONE,
        },
        name: "  ci  ".into(),
        permissions: vec![],
        allowed_workers: None,
        rate_limit_rpm: None,
        max_concurrent_runs: None,
        expires_at: None,
        metadata: None,
    }
}

#[test]
fn issue_requests_are_validated_before_storage() {
    let ok = validate_issue(&request(MembershipRole::Admin), now()).unwrap();
    assert_eq!(ok.name, "ci");
    assert_eq!(ok.permissions, vec!["run:*", "read:*"]);
    for role in [MembershipRole::Member, MembershipRole::Viewer] {
        assert!(matches!(
            validate_issue(&request(role), now()),
            Err(ApiKeyError::Forbidden)
        ));
    }
    let check = |edit: fn(&mut IssueKeyRequest)| {
        let mut r = request(MembershipRole::Owner);
        edit(&mut r);
        validate_issue(&r, now()).err()
    };
    assert!(matches!(
        check(|r| r.name = "   ".into()),
        Some(ApiKeyError::InvalidName)
    ));
    assert!(matches!(
        check(|r| r.name = "a".repeat(101)),
        Some(ApiKeyError::InvalidName)
    ));
    assert!(
        check(|r| r.name = "é".repeat(100)).is_none(),
        "characters, not bytes"
    );
    assert!(matches!(
        check(|r| r.name = "a\nb".into()),
        Some(ApiKeyError::InvalidName)
    ));
    assert!(matches!(
        check(|r| r.rate_limit_rpm = Some(0)),
        Some(ApiKeyError::InvalidLimit {
            field: "rate_limit_rpm",
            min: 1,
            max: 1000
        })
    ));
    assert!(check(|r| r.rate_limit_rpm = Some(1000)).is_none());
    assert!(matches!(
        check(|r| r.rate_limit_rpm = Some(1001)),
        Some(ApiKeyError::InvalidLimit { .. })
    ));
    assert!(matches!(
        check(|r| r.max_concurrent_runs = Some(101)),
        Some(ApiKeyError::InvalidLimit {
            field: "max_concurrent_runs",
            ..
        })
    ));
    assert!(check(|r| r.max_concurrent_runs = Some(1)).is_none());
    assert!(matches!(
        check(|r| r.expires_at = Some(now())),
        Some(ApiKeyError::ExpiryInPast)
    ));
    assert!(check(|r| r.expires_at = Some(now() + TimeDelta::seconds(1))).is_none());
    assert!(matches!(
        check(|r| r.allowed_workers = Some(vec![])),
        Some(ApiKeyError::InvalidAllowedWorkers)
    ));
    assert!(matches!(
        check(|r| r.allowed_workers = Some(vec!["Bad Worker".into()])),
        Some(ApiKeyError::InvalidAllowedWorkers)
    ));
    assert!(matches!(
        check(|r| r.permissions = vec!["keys:*".into()]),
        Some(ApiKeyError::UnknownPermission { .. })
    ));
    let mut r = request(MembershipRole::Owner);
    r.allowed_workers = Some(vec!["a".into(), "b".into(), "a".into()]);
    r.permissions = vec!["keys:manage".into()];
    let ok = validate_issue(&r, now()).unwrap();
    assert_eq!(ok.allowed_workers, Some(vec!["a".into(), "b".into()]));
    assert_eq!(ok.permissions, vec!["keys:manage"]);
    // A key issuing keys grants only what it holds; its defaults narrow to that.
    let mut by_key = request(MembershipRole::Admin);
    by_key.issuer.issuing_key = Some(IssuingKey {
        permissions: vec!["read:*".into(), "keys:manage".into()],
        ..IssuingKey::default()
    });
    assert_eq!(
        validate_issue(&by_key, now()).unwrap().permissions,
        vec!["read:*"]
    );
    by_key.permissions = vec!["read:runs".into(), "run:x".into()];
    assert!(matches!(
        validate_issue(&by_key, now()),
        Err(ApiKeyError::PermissionNotHeld { permission }) if permission == "run:x"
    ));
}

#[test]
fn a_key_issues_keys_no_wider_than_itself() {
    let mut by_key = request(MembershipRole::Admin);
    by_key.permissions = vec!["run:*".into()];
    by_key.issuer.issuing_key = Some(IssuingKey {
        permissions: vec!["run:*".into(), "keys:manage".into()],
        allowed_workers: Some(vec!["builder".into(), "critic".into()]),
        max_concurrent_runs: Some(3),
        rate_limit_rpm: Some(60),
    });
    // What the request leaves out, the new key inherits.
    let inherited = validate_issue(&by_key, now()).unwrap();
    assert_eq!(
        inherited.allowed_workers,
        Some(vec!["builder".into(), "critic".into()])
    );
    assert_eq!(inherited.max_concurrent_runs, Some(3));
    assert_eq!(inherited.rate_limit_rpm, Some(60));
    // Narrower is fine.
    by_key.allowed_workers = Some(vec!["critic".into()]);
    by_key.max_concurrent_runs = Some(1);
    by_key.rate_limit_rpm = Some(60);
    let narrower = validate_issue(&by_key, now()).unwrap();
    assert_eq!(narrower.allowed_workers, Some(vec!["critic".into()]));
    assert_eq!(narrower.max_concurrent_runs, Some(1));
    // Wider is refused, naming the setting.
    let wider = |change: fn(&mut IssueKeyRequest)| {
        let mut r = by_key.clone();
        change(&mut r);
        match validate_issue(&r, now()) {
            Err(ApiKeyError::WiderThanIssuer { field }) => field,
            Err(other) => panic!("expected wider_than_issuing_key, got {other:?}"),
            Ok(_) => panic!("a wider key was accepted"),
        }
    };
    assert_eq!(
        wider(|r| r.allowed_workers = Some(vec!["critic".into(), "deployer".into()])),
        "allowed_workers"
    );
    assert_eq!(
        wider(|r| r.max_concurrent_runs = Some(4)),
        "max_concurrent_runs"
    );
    assert_eq!(wider(|r| r.rate_limit_rpm = Some(61)), "rate_limit_rpm");
    // People are bounded by their role only.
    let mut by_person = by_key.clone();
    by_person.issuer.issuing_key = None;
    by_person.allowed_workers = None;
    by_person.max_concurrent_runs = None;
    assert_eq!(
        validate_issue(&by_person, now()).unwrap().allowed_workers,
        None
    );
}

#[test]
fn reasons_and_pages_are_bounded() {
    assert_eq!(validate_reason("  leaked ").unwrap(), "leaked");
    assert!(matches!(
        validate_reason(" "),
        Err(ApiKeyError::InvalidReason)
    ));
    assert!(validate_reason(&"r".repeat(255)).is_ok());
    assert!(matches!(
        validate_reason(&"r".repeat(256)),
        Err(ApiKeyError::InvalidReason)
    ));
}

#[test]
fn caller_errors_are_4xx_with_stable_codes() {
    let errors = [
        ApiKeyError::Malformed,
        ApiKeyError::InvalidKey,
        ApiKeyError::NotFound,
        ApiKeyError::Revoked,
        ApiKeyError::Expired,
        ApiKeyError::Frozen,
        ApiKeyError::NotRotatable { state: "revoked" },
        ApiKeyError::AlreadyRotated,
        ApiKeyError::LastKeyManager,
        ApiKeyError::InvalidMetadata {
            problem: "must be a JSON object",
        },
        ApiKeyError::TenantInactive {
            status: TenantStatus::Suspended,
        },
        ApiKeyError::TenantNotFound,
        ApiKeyError::Forbidden,
        ApiKeyError::PermissionTooWide {
            permission: "keys:manage".into(),
            role: MembershipRole::Member,
        },
        ApiKeyError::PermissionNotHeld {
            permission: "run:*".into(),
        },
        ApiKeyError::UnknownPermission {
            permission: "x".into(),
        },
        ApiKeyError::InvalidPermissionCount { max: 50 },
        ApiKeyError::InvalidName,
        ApiKeyError::InvalidLimit {
            field: "rate_limit_rpm",
            min: 1,
            max: 1000,
        },
        ApiKeyError::InvalidAllowedWorkers,
        ApiKeyError::ExpiryInPast,
        ApiKeyError::InvalidReason,
        ApiKeyError::InvalidGrace,
        ApiKeyError::InvalidPage,
        ApiKeyError::QuotaExceeded {
            limit: 5,
            current: 5,
        },
        ApiKeyError::PermissionDenied {
            required: "run:x".into(),
        },
        ApiKeyError::WorkerNotAllowed { worker: "x".into() },
    ];
    let mut codes = std::collections::HashSet::new();
    for error in &errors {
        assert!((400..500).contains(&error.http_status()), "{error:?}");
        let code = error.code();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        assert!(codes.insert(code), "duplicate code {code}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(ApiKeyError::Malformed.http_status(), 401);
    assert_eq!(ApiKeyError::Forbidden.http_status(), 403);
    assert_eq!(
        ApiKeyError::QuotaExceeded {
            limit: 5,
            current: 5
        }
        .to_string(),
        "api_keys quota exceeded: 5/5; revoke an unused key or change plan"
    );
    let storage = ApiKeyError::from(DriverError::NotFound { entity: "row" });
    assert_eq!(storage.http_status(), 500);
    assert_eq!(ApiKeyError::RandomnessUnavailable.http_status(), 503);
}

fn stored(status: ApiKeyStatus, expires_at: Option<DateTime<Utc>>, frozen: bool) -> APIKeySnapshot {
    let mut key = APIKeySnapshot::sample();
    key.name = "k".into();
    key.status = status;
    key.allowed_workers = Some(vec!["a".into()]);
    key.expires_at = expires_at;
    key.is_frozen = frozen;
    key.created_at = now();
    key
}

#[test]
fn usability_is_status_then_expiry_then_freeze() {
    use ApiKeyStatus::*;
    assert!(unusable(&stored(Active, None, false), now()).is_none());
    assert!(
        unusable(
            &stored(Active, Some(now() + TimeDelta::seconds(1)), false),
            now()
        )
        .is_none()
    );
    assert!(matches!(
        unusable(&stored(Active, Some(now()), false), now()),
        Some(ApiKeyError::Expired)
    ));
    assert!(matches!(
        unusable(&stored(Expired, None, false), now()),
        Some(ApiKeyError::Expired)
    ));
    assert!(matches!(
        unusable(&stored(Revoked, Some(now()), true), now()),
        Some(ApiKeyError::Revoked)
    ));
    assert!(matches!(
        unusable(&stored(Active, Some(now()), true), now()),
        Some(ApiKeyError::Expired)
    ));
    assert!(matches!(
        unusable(&stored(Active, None, true), now()),
        Some(ApiKeyError::Frozen)
    ));
}

#[test]
fn principals_check_permissions_and_workers() {
    let principal = VerifiedPrincipal {
        tenant_id: TenantId::new(),
        key_id: ApiKeyId::new(),
        permissions: vec!["run:*".into(), "read:runs".into()],
        allowed_workers: Some(vec!["a".into()]),
        rate_limit_rpm: None,
        max_concurrent_runs: None,
        user_id: None,
    };
    assert!(principal.has_permission(&Permission::RunWorker("a".into())));
    assert!(!principal.has_permission(&Permission::ReadUsage));
    assert!(principal.may_use_worker("a"));
    assert!(!principal.may_use_worker("b"));
    let all = VerifiedPrincipal {
        allowed_workers: None,
        ..principal
    };
    assert!(all.may_use_worker("b"));
}
