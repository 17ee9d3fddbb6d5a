//! Audited refusals on every path, tracing spans and per-operation metrics, through the
//! spine on each backend.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_engines::lifecycle::LifecycleAction;
use account_engines::memory_pins::SavePin;
use account_spine::api_keys::IssueKey;
use account_spine::runs::{AdmitRun, RunFilter};
use account_spine::types::*;
use account_spine::{Operation, SpineError};
use account_testkit::backends;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;
use support::story::*;

/// Every refusal path is a typed error with an audit row of its own: the authority check of
/// a read, the member check before a write (`acting`), a read's capability check, and
/// operator refusals (an unidentified operator, on a write and on `lifecycle_history`).
#[tokio::test]
async fn refusals_are_typed_and_audited_on_every_path() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let other = w.other().await;
        let viewer = w.member("vic@example.com", "viewer").await;

        let refused = w
            .spine
            .billing_summary(&w.as_user(viewer, MembershipRole::Viewer, "req-read"))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        let rows = refusals(&other, Operation::BillingSummary).await;
        assert_eq!(rows.len(), 1, "{}: a read refusal is audited", w.backend);
        assert_eq!(
            (rows[0].actor_type.as_str(), rows[0].user_id),
            ("user", Some(viewer.as_uuid()))
        );
        assert_eq!(rows[0].reason.as_deref(), Some("forbidden"));
        assert_request_meta(&rows[0], "req-read");

        let (key_id, key) = w.key(&["run:*", "read:*"], "req-key").await;
        for (operation, refused) in [
            (
                Operation::AccountInviteUser,
                w.spine
                    .invite_user(&key, "x@example.com", MembershipRole::Viewer)
                    .await
                    .map(|_| ()),
            ),
            // A personal key acts for its user, but only within its permissions: `read:*`
            // does not cover `support:read`.
            (
                Operation::SupportListTickets,
                w.spine.list_tickets(&key, None, PAGE).await.map(|_| ()),
            ),
        ] {
            let refused = refused.unwrap_err();
            assert!(
                matches!(refused, SpineError::Forbidden { .. }),
                "{refused:?}"
            );
            let rows = refusals(&other, operation).await;
            assert_eq!(rows.len(), 1, "{}: {}", w.backend, operation.name());
            assert_eq!(rows[0].actor_type, "api_key");
            assert_eq!(rows[0].api_key_id, Some(key_id.as_uuid()));
            assert_request_meta(&rows[0], "req-key");
        }

        let nobody = operator("  ");
        let refused = w
            .spine
            .lifecycle_history(&nobody, w.tenant, PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        let refused = w
            .spine
            .transition_tenant(&nobody, w.tenant, LifecycleAction::Suspend, "who?")
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::Forbidden { .. }),
            "{refused:?}"
        );
        assert_eq!(count(&other, "tenants", "status = 'active'").await, 1);
        assert_eq!(count(&other, "lifecycle_events", "1 = 1").await, 0);
        for operation in [Operation::LifecycleHistory, Operation::LifecycleTransition] {
            let rows = refusals(&other, operation).await;
            assert_eq!(rows.len(), 1, "{}: {}", w.backend, operation.name());
            assert_eq!(rows[0].actor_type, "founder");
            assert_eq!(rows[0].tenant_id, Some(w.tenant.as_uuid()));
            assert_request_meta(&rows[0], "req-operator");
        }

        // An identified operator reads the history; a terminated tenant's reads are refused.
        let ops = operator("ops@example.com");
        w.spine
            .transition_tenant(&ops, w.tenant, LifecycleAction::Terminate, "closed")
            .await
            .unwrap();
        let history = w
            .spine
            .lifecycle_history(&ops, w.tenant, PAGE)
            .await
            .unwrap();
        assert_eq!(history.total, 1, "{}", w.backend);
        let refused = w
            .spine
            .list_runs(&w.owner("req-terminated"), &RunFilter::default(), PAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, SpineError::TenantStatusForbids { .. }),
            "{refused:?}"
        );
        let rows = refusals(&other, Operation::RunsList).await;
        assert_eq!(rows.len(), 1, "{}", w.backend);
        assert_eq!(rows[0].reason.as_deref(), Some("tenant_status_forbids"));
    }
}

/// What a capture layer saw of one span.
#[derive(Clone, Debug)]
struct SeenSpan {
    thread: ThreadId,
    id: u64,
    name: &'static str,
    /// Names of the enclosing spans, innermost first.
    ancestors: Vec<&'static str>,
    fields: BTreeMap<String, String>,
}

/// Records every span (with its fields) and every field value of spans and events, with the
/// thread that made them. Installed once as the global subscriber: a thread-local one races
/// with the callsite interest that parallel tests cache.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    values: Arc<Mutex<Vec<(ThreadId, String)>>>,
}

impl Capture {
    fn global() -> &'static Capture {
        static CAPTURE: OnceLock<Capture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            let capture = Capture::default();
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry::Registry::default().with(capture.clone()),
            )
            .unwrap();
            capture
        })
    }

    fn record_values<'a>(&self, values: impl IntoIterator<Item = &'a String>) {
        let thread = std::thread::current().id();
        self.values
            .lock()
            .unwrap()
            .extend(values.into_iter().map(|v| (thread, v.clone())));
    }

    /// The spans this thread made.
    fn spans_of_this_thread(&self) -> Vec<SeenSpan> {
        let thread = std::thread::current().id();
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.thread == thread)
            .cloned()
            .collect()
    }

    /// The field values this thread recorded.
    fn values_of_this_thread(&self) -> Vec<String> {
        let thread = std::thread::current().id();
        let values = self.values.lock().unwrap();
        values
            .iter()
            .filter(|(t, _)| *t == thread)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Forgets what this thread recorded.
    fn forget_this_thread(&self) {
        let thread = std::thread::current().id();
        self.spans.lock().unwrap().retain(|s| s.thread != thread);
        self.values.lock().unwrap().retain(|(t, _)| *t != thread);
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let ancestors = ctx
            .span(id)
            .map(|span| span.scope().skip(1).map(|s| s.name()).collect())
            .unwrap_or_default();
        self.record_values(fields.values());
        self.spans.lock().unwrap().push(SeenSpan {
            thread: std::thread::current().id(),
            id: id.into_u64(),
            name: attrs.metadata().name(),
            ancestors,
            fields,
        });
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        values.record(&mut Fields(&mut fields));
        self.record_values(fields.values());
        let mut spans = self.spans.lock().unwrap();
        // Ids are reused once a span closed: the newest span with this id is the open one.
        let thread = std::thread::current().id();
        if let Some(span) = spans
            .iter_mut()
            .rev()
            .find(|s| s.id == id.into_u64() && s.thread == thread)
        {
            span.fields.extend(fields);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.record_values(fields.values());
    }
}

/// Every use case runs in a span named by its operation, with request id and tenant id, and
/// no secret shows in any span or event; a write runs a `transaction` span, a read (such as
/// `get_pin`) none.
#[tokio::test]
async fn use_cases_run_in_operation_spans_without_secrets_and_reads_open_no_transaction() {
    // The test runs on one thread (a current-thread runtime): what it traced is what that
    // thread traced.
    let capture = Capture::global();
    for backend in backends().unwrap() {
        capture.forget_this_thread();
        let w = World::new(&backend, Quotas::default()).await;
        let owner = w.owner("req-trace");
        let invitation = w
            .spine
            .invite_user(&owner, "ann@example.com", MembershipRole::Member)
            .await
            .unwrap();
        let key = w
            .spine
            .issue_api_key(
                &owner,
                IssueKey {
                    name: "ci".into(),
                    ..IssueKey::default()
                },
            )
            .await
            .unwrap();
        w.spine
            .authenticate_api_key(key.plaintext.expose(), request("req-auth"))
            .await
            .unwrap();
        w.spine
            .upsert_pin(
                &owner,
                SavePin {
                    key: "agent:cfg".into(),
                    value: json!({"v": 1}),
                    source: None,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap();
        w.spine.get_pin(&owner, "agent:cfg").await.unwrap();
        w.spine
            .lifecycle_history(&operator("ops@example.com"), w.tenant, PAGE)
            .await
            .unwrap();

        let spans = capture.spans_of_this_thread();
        let span = |operation: Operation| {
            let found: Vec<_> = spans
                .iter()
                .filter(|s| s.name == operation.name())
                .collect();
            assert_eq!(
                found.len(),
                1,
                "{}: {}: {spans:#?}",
                w.backend,
                operation.name()
            );
            found[0].clone()
        };
        let transactions_in = |operation: Operation| {
            spans
                .iter()
                .filter(|s| s.name == "transaction" && s.ancestors.contains(&operation.name()))
                .count()
        };
        let tenant = w.tenant.to_string();
        for operation in [
            Operation::AccountInviteUser,
            Operation::ApiKeysIssue,
            Operation::PinsUpsert,
            Operation::PinsGet,
        ] {
            let seen = span(operation);
            assert_eq!(
                seen.fields.get("operation"),
                Some(&operation.name().to_owned())
            );
            assert_eq!(seen.fields.get("tenant_id"), Some(&tenant), "{seen:?}");
            assert_eq!(
                seen.fields.get("request_id").map(String::as_str),
                Some("req-trace"),
                "{seen:?}"
            );
            assert_eq!(seen.fields.get("actor").map(String::as_str), Some("user"));
        }
        let verify = span(Operation::ApiKeysVerify);
        assert_eq!(verify.fields.get("tenant_id"), Some(&tenant), "{verify:?}");
        assert_eq!(
            verify.fields.get("request_id").map(String::as_str),
            Some("req-auth")
        );
        let history = span(Operation::LifecycleHistory);
        assert_eq!(
            history.fields.get("actor").map(String::as_str),
            Some("operator")
        );
        assert_eq!(history.fields.get("tenant_id"), Some(&tenant));

        assert_eq!(transactions_in(Operation::PinsUpsert), 1, "{}", w.backend);
        assert_eq!(transactions_in(Operation::AccountInviteUser), 1);
        assert_eq!(
            transactions_in(Operation::PinsGet),
            0,
            "{}: a read opens no write transaction",
            w.backend
        );
        assert_eq!(transactions_in(Operation::LifecycleHistory), 0);

        let values = capture.values_of_this_thread();
        for secret in [invitation.token.expose(), key.plaintext.expose()] {
            assert!(
                values.iter().all(|v| !v.contains(secret)),
                "{}: a secret was traced",
                w.backend
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_calls_errors_by_code_and_durations_per_operation() {
    for backend in backends().unwrap() {
        let w = World::new(&backend, Quotas::default()).await;
        let owner = w.owner("req-metrics");
        let viewer = w.as_user(
            w.member("vic@example.com", "viewer").await,
            MembershipRole::Viewer,
            "req-viewer",
        );
        let admit = AdmitRun {
            worker_id: "business-builder".into(),
            task: "plan".into(),
            input: None,
            token_estimate: 0,
        };
        w.spine.admit_run(&owner, admit.clone()).await.unwrap();
        w.spine.admit_run(&owner, admit).await.unwrap();
        w.spine
            .list_runs(&viewer, &RunFilter::default(), PAGE)
            .await
            .unwrap();
        w.spine.billing_summary(&viewer).await.unwrap_err();
        w.spine
            .lifecycle_history(&operator(""), w.tenant, PAGE)
            .await
            .unwrap_err();

        let snapshot = w.spine.clone().metrics();
        assert_eq!(snapshot, w.spine.metrics(), "clones share the registry");
        assert_eq!(snapshot.operations.len(), Operation::ALL.len());
        let of = |operation: Operation| snapshot.operation(operation).unwrap().clone();
        let admitted = of(Operation::RunsAdmit);
        assert_eq!(
            (
                admitted.calls,
                admitted.duration_count,
                admitted.error_total()
            ),
            (2, 2, 0),
            "{}",
            w.backend
        );
        assert!(admitted.duration_sum > Duration::ZERO);
        assert_eq!(of(Operation::RunsList).calls, 1);
        for operation in [Operation::BillingSummary, Operation::LifecycleHistory] {
            let refused = of(operation);
            assert_eq!(refused.calls, 1, "{}", operation.name());
            assert_eq!(
                refused.errors,
                BTreeMap::from([("forbidden", 1)]),
                "{}",
                operation.name()
            );
        }
        assert_eq!(of(Operation::RunsComplete).calls, 0);
    }
}
