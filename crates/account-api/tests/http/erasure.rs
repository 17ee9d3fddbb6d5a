//! Erasure over HTTP, on each backend: a person who accepted an invitation signed in erases
//! themselves with `POST /v1/me/erasure` (their email gone from the owner's member list and
//! audit log, their token linked to nobody afterwards), the last owner is refused with 409,
//! and an operator erases a user with `POST /v1/platform/users/{user_id}/erasure` (a tenant
//! key gets 403, an unknown user 404, a second erasure 409).

use crate::sign_in::{AUDIENCE, call, key_pair, loopback_issuer, now, token};
use crate::support::{operator, start_with_oidc};
use account_api::oidc::{Issuer, Verifier};
use account_testkit::backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_person_erases_themselves_and_an_operator_erases_a_user() {
    let (key, jwk) = key_pair();
    let issuer = loopback_issuer(jwk).await;
    for backend in backends().unwrap() {
        let name = backend.name();
        let verifier = Verifier::new(vec![Issuer::new(&issuer, AUDIENCE)], reqwest::Client::new());
        let server = start_with_oidc(&backend, verifier).await;
        let tenant = server.tenant_id.to_string();
        let owner_key = server.key.clone();
        let person = token(&key, &issuer, "erase-me", now() + 600);

        // Invited and accepted, signed in, with a name.
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/invitations",
            &owner_key,
            None,
            Some(json!({"email": "grace.hopper@example.com", "role": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let invitation = body["invitation"]["id"].as_str().unwrap().to_owned();
        let invite_token = body["token"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &server,
            Method::POST,
            &format!("/v1/invitations/{tenant}/{invitation}/accept"),
            &person,
            None,
            Some(json!({"token": invite_token, "name": "Grace Hopper"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let user_id = body["user_id"].as_str().unwrap().to_owned();

        // Erased: the answer names the pseudonym and the tenant left.
        let (status, erased) =
            call(&server, Method::POST, "/v1/me/erasure", &person, None, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {erased}");
        let pseudonym = erased["pseudonym"].as_str().unwrap().to_owned();
        assert!(pseudonym.starts_with("erased-user-"), "{name}: {erased}");
        assert_eq!(erased["user_id"], json!(user_id));
        assert_eq!(
            erased["left"],
            json!([{"tenant_id": tenant, "role": "admin"}])
        );
        assert_eq!(erased["identity_links_deleted"], json!(1));

        // The owner's views hold no trace of her; the log names the pseudonym.
        let (_, members) = call(&server, Method::GET, "/v1/users", &owner_key, None, None).await;
        let (_, audit) = call(
            &server,
            Method::GET,
            "/v1/audit?limit=100",
            &owner_key,
            None,
            None,
        )
        .await;
        for view in [&members, &audit] {
            let text = view.to_string().to_lowercase();
            assert!(!text.contains("grace"), "{name}: {text}");
        }
        assert!(audit.to_string().contains(&pseudonym), "{name}: {audit}");

        // Her token is linked to nobody now: a second request is 404.
        let (status, body) =
            call(&server, Method::POST, "/v1/me/erasure", &person, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("identity_not_linked")),
            "{name}"
        );
        let (status, _) = call(&server, Method::POST, "/v1/me/erasure", "", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");

        // Operators: the last owner is refused; a tenant key is not an operator's; unknown
        // and already erased users.
        let op_key = server
            .spine
            .create_operator_key(&operator(), "privacy desk")
            .await
            .unwrap()
            .plaintext
            .expose()
            .to_owned();
        let owner_path = format!("/v1/platform/users/{}/erasure", server.owner_id);
        let (status, body) = call(&server, Method::POST, &owner_path, &op_key, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::CONFLICT, &json!("last_owner")),
            "{name}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(&tenant),
            "{body}"
        );
        let (status, body) = call(&server, Method::POST, &owner_path, &owner_key, None, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        let unknown = format!("/v1/platform/users/{}/erasure", uuid::Uuid::now_v7());
        let (status, body) = call(&server, Method::POST, &unknown, &op_key, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::NOT_FOUND, &json!("user_not_found")),
            "{name}"
        );
        let again = format!("/v1/platform/users/{user_id}/erasure");
        let (status, body) = call(&server, Method::POST, &again, &op_key, None, None).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::CONFLICT, &json!("user_already_erased")),
            "{name}"
        );
        let (status, body) = call(
            &server,
            Method::POST,
            "/v1/platform/users/nope/erasure",
            &op_key,
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
    }
}
