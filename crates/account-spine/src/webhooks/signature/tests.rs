//! Signing and verification, and interoperability with the `standardwebhooks` crate.

use super::*;
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Standard Webhooks reference vector (from the specification's libraries).
const REFERENCE_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const REFERENCE_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const REFERENCE_TIMESTAMP: i64 = 1_649_367_553;
const REFERENCE_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const REFERENCE_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const NOW: i64 = 1_700_000_000;

fn secret() -> WebhookSecret {
    WebhookSecret::generate().unwrap()
}

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

fn check(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), VerifyError> {
    let headers = SignedHeaders::new(id, timestamp, signature);
    verify(secrets, &headers, body, NOW, DEFAULT_TOLERANCE)
}

#[test]
fn signing_matches_the_reference_vector() {
    let secret = WebhookSecret::parse(REFERENCE_SECRET).unwrap();
    let signature = sign(&secret, REFERENCE_ID, REFERENCE_TIMESTAMP, REFERENCE_BODY);
    assert_eq!(signature, REFERENCE_SIGNATURE);
}

#[test]
fn a_signature_verifies_with_its_secret() {
    let secret = secret();
    let signature = sign(&secret, "msg_1", NOW, b"{}");
    assert_eq!(
        check(&[secret], "msg_1", &NOW.to_string(), &signature, b"{}"),
        Ok(())
    );
}

#[test]
fn during_rotation_either_secret_verifies() {
    let (old, new) = (secret(), secret());
    let header = signature_header(&[old.clone(), new.clone()], "msg_1", NOW, b"{}");
    assert_eq!(header.split(' ').count(), 2);
    let ts = NOW.to_string();
    assert_eq!(
        check(std::slice::from_ref(&old), "msg_1", &ts, &header, b"{}"),
        Ok(())
    );
    assert_eq!(
        check(std::slice::from_ref(&new), "msg_1", &ts, &header, b"{}"),
        Ok(())
    );
    // A receiver holding both secrets accepts a sender that signs with only one of them.
    let only_new = sign(&new, "msg_1", NOW, b"{}");
    assert_eq!(check(&[old, new], "msg_1", &ts, &only_new, b"{}"), Ok(()));
    assert_eq!(
        check(&[secret()], "msg_1", &ts, &header, b"{}"),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn tampering_with_body_id_or_timestamp_fails() {
    let secret = secret();
    let signature = sign(&secret, "msg_1", NOW, br#"{"a":1}"#);
    let secrets = [secret];
    let ts = NOW.to_string();
    let tampered = [
        check(&secrets, "msg_1", &ts, &signature, br#"{"a":2}"#),
        check(&secrets, "msg_2", &ts, &signature, br#"{"a":1}"#),
        check(
            &secrets,
            "msg_1",
            &(NOW - 1).to_string(),
            &signature,
            br#"{"a":1}"#,
        ),
    ];
    assert_eq!(tampered, [Err(VerifyError::NoMatchingSignature); 3]);
}

#[test]
fn truncated_foreign_and_garbled_signatures_do_not_match() {
    let secret = secret();
    let signature = sign(&secret, "msg_1", NOW, b"{}");
    let ts = NOW.to_string();
    let secrets = [secret];
    let mac = signature.trim_start_matches("v1,");
    for presented in [
        "v1,".to_owned(),
        signature[..12].to_owned(),
        format!("v1a,{mac}"),
        format!("v2,{mac}"),
        format!("v1,{}", &mac[..mac.len() - 4]),
        "v1,not base64!".to_owned(),
        String::new(),
    ] {
        assert_eq!(
            check(&secrets, "msg_1", &ts, &presented, b"{}"),
            Err(VerifyError::NoMatchingSignature),
            "{presented:?}"
        );
    }
    // Unknown schemes beside a good one are ignored, not fatal.
    let mixed = format!("v1a,AAAA {signature}");
    assert_eq!(check(&secrets, "msg_1", &ts, &mixed, b"{}"), Ok(()));
}

#[test]
fn timestamps_outside_the_tolerance_fail_both_ways() {
    let secret = secret();
    let tolerance = i64::try_from(DEFAULT_TOLERANCE.as_secs()).unwrap();
    let at = |timestamp: i64| {
        let signature = sign(&secret, "msg_1", timestamp, b"{}");
        check(
            std::slice::from_ref(&secret),
            "msg_1",
            &timestamp.to_string(),
            &signature,
            b"{}",
        )
    };
    assert_eq!(at(NOW - tolerance), Ok(()));
    assert_eq!(at(NOW + tolerance), Ok(()));
    assert_eq!(at(NOW - tolerance - 1), Err(VerifyError::TooOld));
    assert_eq!(at(NOW + tolerance + 1), Err(VerifyError::TooNew));
    assert_eq!(at(i64::MIN), Err(VerifyError::TooOld));
    assert_eq!(at(i64::MAX), Err(VerifyError::TooNew));
}

#[test]
fn missing_headers_and_bad_timestamps_are_named() {
    let secrets = [secret()];
    let full = SignedHeaders::new("msg_1", "1700000000", "v1,AAAA");
    let run =
        |headers: SignedHeaders<'_>| verify(&secrets, &headers, b"{}", NOW, DEFAULT_TOLERANCE);
    assert_eq!(
        run(SignedHeaders { id: None, ..full }),
        Err(VerifyError::MissingHeader(ID_HEADER))
    );
    assert_eq!(
        run(SignedHeaders {
            timestamp: None,
            ..full
        }),
        Err(VerifyError::MissingHeader(TIMESTAMP_HEADER))
    );
    assert_eq!(
        run(SignedHeaders {
            signature: None,
            ..full
        }),
        Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
    );
    for timestamp in ["", "1700000000.5", "soon", "0x10"] {
        assert_eq!(
            run(SignedHeaders {
                timestamp: Some(timestamp),
                ..full
            }),
            Err(VerifyError::BadTimestamp),
            "{timestamp:?}"
        );
    }
}

#[test]
fn headers_are_read_from_an_http_header_map() {
    let mut map = HeaderMap::new();
    map.insert("Webhook-Id", HeaderValue::from_static("msg_1"));
    map.insert("webhook-timestamp", HeaderValue::from_static("17"));
    map.insert(
        "webhook-signature",
        HeaderValue::from_bytes(b"v1,\xff").unwrap(),
    );
    let headers = SignedHeaders::from_http(&map);
    assert_eq!(headers.id, Some("msg_1"));
    assert_eq!(headers.timestamp, Some("17"));
    // Present but not text: malformed, not missing.
    assert_eq!(headers.signature, Some(""));
}

#[test]
fn secrets_parse_from_their_text_form_within_the_length_bounds() {
    let of_len = |len: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; len]));
    assert!(WebhookSecret::parse(&of_len(MIN_SECRET_BYTES)).is_ok());
    assert!(WebhookSecret::parse(&of_len(MAX_SECRET_BYTES)).is_ok());
    assert_eq!(
        WebhookSecret::parse(&of_len(MIN_SECRET_BYTES - 1)).err(),
        Some(SecretError::WrongLength { len: 23 })
    );
    assert_eq!(
        WebhookSecret::parse(&of_len(MAX_SECRET_BYTES + 1)).err(),
        Some(SecretError::WrongLength { len: 65 })
    );
    let body = STANDARD.encode([7u8; 32]);
    assert_eq!(
        WebhookSecret::parse(&body).err(),
        Some(SecretError::MissingPrefix)
    );
    assert_eq!(
        WebhookSecret::parse("whsec_not*base64").err(),
        Some(SecretError::NotBase64)
    );
    let round_trip: WebhookSecret = of_len(40).parse().unwrap();
    assert_eq!(round_trip.expose(), of_len(40));
}

#[test]
fn generated_secrets_are_32_random_bytes_that_never_show_in_debug() {
    let (a, b) = (secret(), secret());
    assert_eq!(a.key.len(), 32);
    assert_ne!(a.expose(), b.expose());
    let text = a.expose();
    assert!(text.starts_with("whsec_"));
    assert_eq!(WebhookSecret::parse(&text).unwrap().key, a.key);
    let debug = format!("{a:?}");
    assert_eq!(debug, "WebhookSecret(<redacted>)");
    assert!(!debug.contains(&text[6..]));
}

/// Their verifier checks against the real clock, so these sign at the current time.
fn their_headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(ID_HEADER, HeaderValue::from_str(id).unwrap());
    map.insert(
        TIMESTAMP_HEADER,
        HeaderValue::from_str(&timestamp.to_string()).unwrap(),
    );
    map.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
    map
}

#[test]
fn the_standardwebhooks_crate_accepts_our_signatures() {
    let (old, new) = (secret(), secret());
    let now = unix_now();
    let body = br#"{"type":"run.admitted","data":{"n":1}}"#;
    let header = signature_header(&[old.clone(), new.clone()], "msg_ours", now, body);
    let headers = their_headers("msg_ours", now, &header);
    for secret in [&old, &new] {
        let theirs = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        theirs.verify(body, &headers).unwrap();
        assert!(theirs.verify(b"{}", &headers).is_err());
    }
    let stranger = standardwebhooks::Webhook::new(&secret().expose()).unwrap();
    assert!(stranger.verify(body, &headers).is_err());
}

#[test]
fn we_accept_the_standardwebhooks_crates_signatures() {
    let secret = secret();
    let now = unix_now();
    let body = br#"{"type":"run.admitted"}"#;
    let theirs = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
    let signature = theirs.sign("msg_theirs", now, body).unwrap();
    assert_eq!(signature, sign(&secret, "msg_theirs", now, body));
    let map = their_headers("msg_theirs", now, &signature);
    let headers = SignedHeaders::from_http(&map);
    assert_eq!(
        verify(&[secret], &headers, body, now, DEFAULT_TOLERANCE),
        Ok(())
    );
}
