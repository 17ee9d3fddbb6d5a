//! Per-key rate limits (429 `rate_limited` with `Retry-After`), and quota refusals that say
//! which limit refused and when it resets, with `Retry-After` too.

use crate::support::{Answer, start};
use account_spine::RequestMeta;
use account_spine::runs::{AdmitRun, RunCompletion};
use account_testkit::backends;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn retry_after(answer: &Answer) -> u64 {
    answer
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("a Retry-After header: {}", answer.body))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn resets_at(answer: &Answer) -> Option<DateTime<Utc>> {
    answer.body["quota"]["resets_at"]
        .as_str()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
}

fn next_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + Days::new(1))
        .and_time(NaiveTime::MIN)
        .and_utc()
}

fn first_of_next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .unwrap()
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// `at` is `expected` as computed just before or just after the request (a boundary may pass
/// in between), and `Retry-After` is the whole seconds up to it.
fn assert_reset(answer: &Answer, expected: [DateTime<Utc>; 2], sent: DateTime<Utc>) {
    let at = resets_at(answer).unwrap_or_else(|| panic!("resets_at: {}", answer.body));
    assert!(expected.contains(&at), "{at} not in {expected:?}");
    let seconds = retry_after(answer);
    let upper = u64::try_from((at - sent).num_seconds()).unwrap() + 1;
    assert!(
        seconds >= 1 && seconds <= upper && seconds + 5 >= upper,
        "{seconds} vs {upper}"
    );
    assert_eq!(answer.body["quota"]["retry_after_seconds"], seconds);
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let issued = server
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "slow", "permissions": ["read:*"], "rate_limit_rpm": 2})),
            )
            .await;
        assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
        let slow = issued.body["secret"].as_str().unwrap().to_owned();

        for _ in 0..2 {
            let answer = server.call_as(&slow, Method::GET, "/v1/runs", None).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
        let answer = server.call_as(&slow, Method::GET, "/v1/runs", None).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"], "rate_limited");
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains("2 requests per minute")
        );
        let seconds = retry_after(&answer);
        // The plan's tenant-wide limit is shown with the quotas (the free plan's).
        let quotas = server.call(Method::GET, "/v1/quotas", None).await;
        assert_eq!(
            quotas.body["max_requests_per_minute"], 6_000,
            "{}",
            quotas.body
        );
        // And the audit log's retention (the free plan's 30 days).
        assert_eq!(quotas.body["audit_retention_days"], 30, "{}", quotas.body);
        assert!(
            (1..=30).contains(&seconds),
            "one request per 30 s: {seconds}"
        );
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("ratelimit-policy").as_deref(),
            Some("\"key\";q=2;w=60")
        );
        assert_eq!(
            header("ratelimit"),
            Some(format!("\"key\";r=0;t={seconds}"))
        );
        // Every route counts, the refusal holds, and X-API-Key is the same key.
        let answer = server
            .send(
                server
                    .request(Method::GET, "/v1/usage")
                    .header("x-api-key", &slow),
            )
            .await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);

        // Per key: the owner's key (no limit) is unaffected.
        for _ in 0..5 {
            assert_eq!(
                server.call(Method::GET, "/v1/runs", None).await.status,
                StatusCode::OK
            );
        }
    }
}

#[tokio::test]
async fn quota_refusals_say_which_limit_and_when_it_resets() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        let run = json!({"worker_id": "business-builder", "task": "plan"});

        // Concurrent runs: no fixed reset.
        let mut ids = Vec::new();
        for _ in 0..5 {
            let answer = server
                .call(Method::POST, "/v1/runs", Some(run.clone()))
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
            ids.push(answer.body["id"].as_str().unwrap().to_owned());
        }
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"], "quota_concurrent_runs");
        let quota = &answer.body["quota"];
        assert_eq!(
            (&quota["limit"], &quota["period"], &quota["resets_at"]),
            (
                &json!("concurrent_runs"),
                &json!("concurrent"),
                &json!(null)
            ),
            "{quota}"
        );
        assert!(
            quota["reset"]
                .as_str()
                .unwrap()
                .starts_with("no fixed reset"),
            "{quota}"
        );
        assert_eq!(retry_after(&answer), 10);

        // Monthly tokens: the first of next month, 00:00 UTC.
        for (i, id) in ids.iter().enumerate() {
            let tokens = if i == 0 { 1_000_000 } else { 0 };
            let answer = server
                .call(
                    Method::POST,
                    &format!("/v1/runs/{id}/complete"),
                    Some(json!({"success": true, "total_tokens": tokens})),
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
        let sent = Utc::now();
        let answer = server
            .call(Method::POST, "/v1/runs", Some(run.clone()))
            .await;
        let after = Utc::now();
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"], "quota_tokens_per_month");
        assert_eq!(answer.body["quota"]["limit"], "tokens_per_month");
        assert_eq!(answer.body["quota"]["period"], "month");
        assert_reset(
            &answer,
            [first_of_next_month(sent), first_of_next_month(after)],
            sent,
        );

        // Daily runs (the other tenant): the next midnight UTC.
        let principal = server
            .spine
            .authenticate_api_key(&server.other_key, RequestMeta::default())
            .await
            .unwrap();
        for _ in 0..100 {
            let admitted = server
                .spine
                .admit_run(
                    &principal,
                    AdmitRun {
                        worker_id: "w".into(),
                        task: "t".into(),
                        input: None,
                        token_estimate: 0,
                    },
                )
                .await
                .unwrap();
            let done = RunCompletion {
                success: true,
                ..RunCompletion::default()
            };
            server
                .spine
                .complete_run(&principal, admitted.id, done)
                .await
                .unwrap();
        }
        let sent = Utc::now();
        let answer = server
            .call_as(
                &server.other_key.clone(),
                Method::POST,
                "/v1/runs",
                Some(run),
            )
            .await;
        let after = Utc::now();
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
        assert_eq!(answer.body["error"], "quota_runs_per_day");
        assert_eq!(answer.body["quota"]["period"], "day");
        assert_reset(&answer, [next_midnight(sent), next_midnight(after)], sent);
    }
}

#[tokio::test]
async fn a_declared_token_estimate_is_reserved_until_the_run_finishes() {
    for backend in backends().unwrap() {
        let server = start(&backend).await;
        // The free plan's month: 1,000,000 tokens.
        let run = |estimate: i64| json!({"worker_id": "business-builder", "task": "plan", "token_estimate": estimate});
        let bad = server.call(Method::POST, "/v1/runs", Some(run(-1))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert!(
            bad.body["fields"]["token_estimate"].is_string(),
            "{}",
            bad.body
        );

        let first = server
            .call(Method::POST, "/v1/runs", Some(run(600_000)))
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert_eq!(first.body["token_estimate"], 600_000);
        let over = server
            .call(Method::POST, "/v1/runs", Some(run(400_001)))
            .await;
        assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
        assert_eq!(over.body["error"], "quota_tokens_per_month");
        let fits = server
            .call(Method::POST, "/v1/runs", Some(run(400_000)))
            .await;
        assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.body);
        // The quotas and the project show what is in flight.
        let in_flight = |used: i64, reserved: i64, runs: i64| {
            json!({"tokens_this_month": used, "tokens_reserved": reserved,
                   "active_runs": runs, "active_workers": i64::from(runs > 0)})
        };
        let project = format!("/v1/projects/{}", server.tenant_id);
        for path in ["/v1/quotas", project.as_str()] {
            let read = server.call(Method::GET, path, None).await;
            assert_eq!(read.status, StatusCode::OK, "{path}: {}", read.body);
            assert_eq!(counters(&read), in_flight(0, 1_000_000, 2), "{path}");
        }

        // The first run used 100,000: its other 500,000 are free again.
        let id = first.body["id"].as_str().unwrap();
        let done = server
            .call(
                Method::POST,
                &format!("/v1/runs/{id}/complete"),
                Some(json!({"success": true, "total_tokens": 100_000})),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        let again = server
            .call(Method::POST, "/v1/runs", Some(run(500_000)))
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        for path in ["/v1/quotas", project.as_str()] {
            let read = server.call(Method::GET, path, None).await;
            assert_eq!(counters(&read), in_flight(100_000, 900_000, 2), "{path}");
        }
    }
}

/// The in-flight counters of a quotas or project answer.
fn counters(answer: &Answer) -> serde_json::Value {
    let names = [
        "tokens_this_month",
        "tokens_reserved",
        "active_runs",
        "active_workers",
    ];
    serde_json::Value::Object(
        names
            .into_iter()
            .map(|name| (name.to_owned(), answer.body[name].clone()))
            .collect(),
    )
}
