//! The served OpenAPI document against the router: its paths and methods are exactly the
//! routes the router answers, every operation documents its error answers, and the key
//! security schemes are there; nested in a host's app, it names the prefix as its server.

use crate::support::start;
use account_api::{AppState, router};
use account_testkit::backends;
use axum::Router;
use axum::routing::get;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

/// The paths the router itself holds, read from its `Debug` form (axum has no route listing;
/// its path table prints as `paths: {RouteId(..): "/path", ...}`).
fn router_paths(state: AppState) -> BTreeSet<String> {
    let debug = format!("{:?}", router(state));
    let table = debug
        .split_once("path_router")
        .and_then(|(_, rest)| rest.split_once("paths: {"))
        .expect("the router's path table in its Debug form")
        .1;
    // The quoted strings up to the table's closing brace (paths hold braces, in quotes).
    let (mut paths, mut current, mut quoted) = (BTreeSet::new(), String::new(), false);
    for c in table.chars() {
        match (c, quoted) {
            ('"', false) => quoted = true,
            ('"', true) => {
                quoted = false;
                paths.insert(std::mem::take(&mut current));
            }
            (c, true) => current.push(c),
            ('}', false) => break,
            _ => {}
        }
    }
    paths
}

/// A concrete URL for a path template: every `{param}` becomes a well-formed id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190a8b6-5c3e-7d2a-9f11-123456789abc"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_matches_the_routes_exactly() {
    let backend = backends().unwrap().remove(0); // routes do not depend on the backend
    let server = start(&backend).await;
    let served: Value = server
        .send(server.request(Method::GET, "/openapi.json"))
        .await
        .body;
    assert_eq!(
        served,
        serde_json::to_value(account_api::openapi()).unwrap()
    );
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3"
    );
    assert!(served.get("servers").is_none(), "unnested: no server");

    let documented: BTreeSet<(String, String)> = served["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|method| (path.clone(), method.clone()))
                .collect::<Vec<_>>()
        })
        .collect();

    // The router's own paths, each probed with every method: 405 means "not routed".
    let paths = router_paths(AppState::new(server.spine.clone()));
    assert!(paths.contains("/v1/runs/{id}/complete"), "{paths:?}");
    let mut routed = BTreeSet::new();
    for path in &paths {
        for method in METHODS {
            let answer = server
                .send(server.request(method.to_uppercase().parse().unwrap(), &concrete(path)))
                .await;
            assert_ne!(answer.body["error"], "route_not_found", "{method} {path}");
            if answer.status != StatusCode::METHOD_NOT_ALLOWED {
                routed.insert((path.clone(), method.to_owned()));
            }
        }
    }
    assert_eq!(
        documented.symmetric_difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not routed, or routed but not documented"
    );
    assert!(documented.len() >= 20, "{documented:?}");

    // Security schemes, and each authenticated operation accepts both.
    let schemes = &served["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    let error_body = &served["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error_body["required"],
        serde_json::json!(["error", "message"])
    );
    for (path, method) in &documented {
        let operation = &served["paths"][path][method];
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {path}: a success answer"
        );
        assert!(
            responses.contains_key("500"),
            "{method} {path}: errors documented"
        );
        let public = ["/healthz", "/readyz", "/openapi.json", "/metrics"].contains(&path.as_str())
            || (path.starts_with("/v1/invitations/") && path.ends_with("/accept"));
        if public {
            assert!(operation["security"].is_null(), "{method} {path}");
        } else if path == "/v1/me"
            || path.starts_with("/v1/me/")
            || (*method == "post"
                && (path == "/v1/projects" || path == "/v1/projects/{id}/restore"))
        {
            // A signed-in person only: an identity provider's token, never an API key (a
            // person creates or restores a project as themselves, in no tenant).
            assert_eq!(
                operation["security"],
                serde_json::json!([{"bearer": []}]),
                "{method} {path}"
            );
        } else {
            assert_eq!(
                operation["security"],
                serde_json::json!([{"bearer": []}, {"api_key": []}]),
                "{method} {path}"
            );
            for code in ["401", "422", "429"] {
                assert!(responses.contains_key(code), "{method} {path}: {code}");
            }
            assert!(
                served["components"]["responses"]["Limited"]["headers"]["Retry-After"].is_object()
            );
        }
        if operation["requestBody"].is_object() {
            for code in ["408", "413", "415"] {
                assert!(responses.contains_key(code), "{method} {path}: {code}");
            }
        }
    }
}

/// A host's app with a route of its own and our router nested at `/account` and at
/// `/api/account`, served on a loopback port; its base URL.
async fn serve_host_app(state: AppState) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/orders", get(|| async { "the host's own route" }))
        .nest("/account", router(state.clone()))
        .nest("/api/account", router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

#[tokio::test]
async fn a_nested_router_names_its_prefix_as_the_server() {
    let backend = backends().unwrap().remove(0); // routes do not depend on the backend
    let server = start(&backend).await;
    let (base, task) = serve_host_app(AppState::new(server.spine.clone())).await;
    let client = reqwest::Client::new();
    let get_json = |path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };

    let unnested = serde_json::to_value(account_api::openapi()).unwrap();
    for prefix in ["/account", "/api/account"] {
        let (status, mut served) = get_json(&format!("{prefix}/openapi.json")).await;
        assert_eq!(status, StatusCode::OK, "{prefix}");
        assert_eq!(served["servers"], serde_json::json!([{"url": prefix}]));
        // Paths stay relative to the server; nothing else differs.
        assert!(served["paths"]["/healthz"].is_object(), "{prefix}");
        served.as_object_mut().unwrap().remove("servers");
        assert_eq!(served, unnested, "{prefix}");

        let (status, health) = get_json(&format!("{prefix}/healthz")).await;
        assert_eq!((status, &health["status"]), (StatusCode::OK, &"ok".into()));
        // Our own answers for unknown routes under the prefix, as unnested.
        let (status, missing) = get_json(&format!("{prefix}/v1/no-such-route")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{prefix}");
        assert_eq!(missing["error"], "route_not_found", "{prefix}");
        let message = missing["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(" {prefix}/openapi.json ")),
            "{message}"
        );
        let wrong_method = client.delete(format!("{base}{prefix}/healthz")).send();
        let wrong_method: Value = wrong_method.await.unwrap().json().await.unwrap();
        assert_eq!(wrong_method["error"], "method_not_allowed", "{prefix}");
        let message = wrong_method["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(" {prefix}/openapi.json ")),
            "{message}"
        );
    }
    let own = client.get(format!("{base}/orders")).send().await.unwrap();
    assert_eq!(own.text().await.unwrap(), "the host's own route");
    task.abort();
}
