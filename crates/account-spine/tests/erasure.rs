//! User erasure on each backend (issue 23): after a person who was invited, signed in, named
//! themselves, opened a ticket, issued a key, was invited elsewhere and was written about in
//! a pin erases their account, no text or JSON column of any table (read from the database's
//! own schema, so a new table is scanned without being listed here) holds their email or
//! name, and their audit history is found by their user id and by the pseudonym. The last
//! owner is refused first, the audit guard still refuses every other update, and a second
//! erasure is refused.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use account_spine::api_keys::{ApiKeyPepper, IssueKey};
use account_spine::identities::SignedIn;
use account_spine::invitations::Invitee;
use account_spine::memory_pins::SavePin;
use account_spine::support::OpenTicket;
use account_spine::types::*;
use account_spine::users::ProfileUpdate;
use account_spine::{DomainEvent, ErrorCode, RequestMeta, SpineError};
use account_testkit::backends;
use account_testkit::fixtures::{TenantSeed, seed_tenant};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;
use support::{env, limits, operator, owner, start, world};

const EMAIL: &str = "ada.lovelace@example.com";
const NAME: &str = "Ada Lovelace";
const ADA_IP: &str = "198.51.100.7";

fn ada_request(id: &str) -> RequestMeta {
    RequestMeta::default()
        .with_request_id(id)
        .with_ip_address(ADA_IP)
        .with_user_agent("ada-browser")
}

fn code<T: std::fmt::Debug>(result: Result<T, SpineError>) -> &'static str {
    result.expect_err("refused").code()
}

async fn rows(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<Vec<String>> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    let found = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    found
        .iter()
        .map(|row| {
            (0..)
                .map_while(|i| row.try_get_by_index::<Option<String>>(i).ok())
                .map(Option::unwrap_or_default)
                .collect()
        })
        .collect()
}

/// Every column of every table of the schema that holds text or JSON, read from the
/// database itself.
async fn text_columns(conn: &DatabaseConnection) -> Vec<(String, String)> {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND (lower(p.type) LIKE '%char%' OR lower(p.type) LIKE '%text%' \
                  OR lower(p.type) LIKE '%json%' OR lower(p.type) LIKE '%clob%')"
        }
        _ => {
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        }
    };
    rows(conn, sql, vec![])
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// `(table, column, value)` of every stored text or JSON value containing `needle` in any
/// case.
async fn traces(conn: &DatabaseConnection, needle: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for (table, column) in text_columns(conn).await {
        let sql = format!(
            "SELECT CAST({column} AS TEXT) FROM {table} \
             WHERE lower(CAST({column} AS TEXT)) LIKE $1"
        );
        let pattern = format!("%{}%", needle.to_lowercase());
        for row in rows(conn, &sql, vec![Value::from(pattern)]).await {
            found.push((table.clone(), column.clone(), row[0].clone()));
        }
    }
    found
}

async fn scalar(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) -> String {
    rows(conn, sql, values).await.remove(0).remove(0)
}

#[tokio::test]
async fn an_erased_person_leaves_no_trace_but_the_pseudonym_and_their_history_stays_linked() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let conn = env.second().await;
        let w = world(&env.entities().await).await;
        let spine = &env.spine;
        let columns = text_columns(&conn).await;
        assert!(
            columns
                .iter()
                .any(|(t, c)| t == "user_erasures" && c == "pseudonym"),
            "{}: the scan reads the schema: {columns:?}",
            env.backend
        );

        // Ada is invited to Acme and accepts, signed in through an identity provider.
        let invited = spine
            .invite_user(&owner(&w, "inv"), EMAIL, MembershipRole::Member)
            .await
            .unwrap();
        let ada_id = SignedIn::new("https://idp.example", "sub-ada");
        let membership = spine
            .accept_invitation_signed_in(
                w.tenant,
                invited.invitation.id,
                invited.token.expose(),
                Invitee {
                    external_user_id: Some("ext-ada".into()),
                    name: Some(NAME.into()),
                },
                ada_id.clone(),
                ada_request("accept"),
            )
            .await
            .unwrap();
        let ada = membership.user_id;
        let as_ada = |id: &str| spine.identity_principal(&ada_id, w.tenant, ada_request(id));

        // She names herself, opens a ticket about herself; the owner makes her an admin; she
        // issues a key named after her; an agent writes her address into a pin.
        let update = ProfileUpdate::default()
            .with_display_name(NAME)
            .with_preferences(json!({"signature": format!("{NAME} <{EMAIL}>")}));
        spine
            .update_profile(&as_ada("profile").await.unwrap(), update)
            .await
            .unwrap();
        let ticket = OpenTicket {
            subject: format!("Access for {NAME}"),
            description: format!("Please write to {EMAIL}. Regards, {NAME}"),
            category: TicketCategory::General,
            priority: TicketPriority::Medium,
        };
        spine
            .open_ticket(&as_ada("ticket").await.unwrap(), ticket)
            .await
            .unwrap();
        spine
            .change_role(&owner(&w, "promote"), ada, MembershipRole::Admin)
            .await
            .unwrap();
        let key = IssueKey {
            name: format!("{NAME}'s laptop"),
            permissions: vec!["read:*".into()],
            metadata: Some(json!({"owner": EMAIL})),
            ..IssueKey::default()
        };
        spine
            .issue_api_key(&as_ada("key").await.unwrap(), key)
            .await
            .unwrap();
        let pin = SavePin {
            key: "agent:contact".into(),
            value: json!({"contact": EMAIL, "note": "prefers mail"}),
            source: None,
            ttl_seconds: None,
        };
        spine.upsert_pin(&owner(&w, "pin"), pin).await.unwrap();

        // Beta, another tenant, invites her too (pending).
        let beta = seed_tenant(
            &env.entities().await,
            &TenantSeed::new("Beta", "free", limits(PlanCode::free()), start())
                .user("bob", Some("owner")),
        )
        .await;
        let bob = support::owner(
            &support::World {
                tenant: TenantId::from_uuid(beta.id),
                owner: UserId::from_uuid(beta.users[0]),
                member: UserId::from_uuid(beta.users[0]),
            },
            "beta-invite",
        );
        spine
            .invite_user(&bob, EMAIL, MembershipRole::Viewer)
            .await
            .unwrap();
        assert!(!traces(&conn, EMAIL).await.is_empty());
        assert!(!traces(&conn, NAME).await.is_empty());
        let ada_value = || Value::from(ada.as_uuid());
        let ada_rows_before: i64 = scalar(
            &conn,
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE user_id = $1",
            vec![ada_value()],
        )
        .await
        .parse()
        .unwrap();
        assert!(ada_rows_before >= 3, "{}", env.backend);

        // As Acme's only owner she is refused, naming Acme; nothing is erased.
        spine
            .transfer_ownership(&owner(&w, "transfer"), ada)
            .await
            .unwrap();
        let refused = spine.erase_me(&ada_id, ada_request("erase-1")).await;
        let error = refused.expect_err("the last owner is refused");
        assert_eq!(
            (error.code(), error.http_status()),
            ("last_owner", 409),
            "{}",
            env.backend
        );
        assert!(error.to_string().contains(&w.tenant.to_string()), "{error}");
        assert!(!traces(&conn, EMAIL).await.is_empty(), "nothing erased");
        let back = as_ada("transfer-back").await.unwrap();
        spine.transfer_ownership(&back, w.owner).await.unwrap();

        // She erases herself.
        let erased = spine
            .erase_me(&ada_id, ada_request("erase-2"))
            .await
            .unwrap();
        let pepper = ApiKeyPepper::from_bytes(&[7u8; 32]).unwrap();
        let pseudonym = account_engines::users::erasure::pseudonym(&pepper, ada).unwrap();
        assert_eq!(
            erased.pseudonym, pseudonym,
            "stable and keyed by the pepper"
        );
        assert_eq!(erased.left, vec![(w.tenant, MembershipRole::Admin)]);
        assert_eq!(erased.counts.identity_links, 1);
        assert_eq!(erased.counts.invitations_revoked, 1, "Beta's");

        // No text or JSON column of any table holds her email or name.
        for needle in [EMAIL, NAME, ADA_IP] {
            let left = traces(&conn, needle).await;
            assert!(
                left.is_empty(),
                "{}: {needle} left in {left:?}",
                env.backend
            );
        }
        // Her history: every row she acted in is still hers, and the rows that named her
        // name the pseudonym.
        let ada_rows_after: i64 = scalar(
            &conn,
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE user_id = $1",
            vec![ada_value()],
        )
        .await
        .parse()
        .unwrap();
        // Transfer back, the request, Acme's row and the completion were added.
        assert_eq!(ada_rows_after, ada_rows_before + 4, "{}", env.backend);
        let named = rows(
            &conn,
            "SELECT action FROM audit_log WHERE lower(CAST(new_value AS TEXT)) LIKE $1 \
             OR lower(CAST(old_value AS TEXT)) LIKE $1 ORDER BY created_at, action",
            vec![Value::from(format!("%{pseudonym}%"))],
        )
        .await;
        let actions: Vec<&str> = named.iter().map(|r| r[0].as_str()).collect();
        for action in [
            "invitation.created",
            "user.profile_updated",
            "user.erasure_requested",
            "user.erased",
        ] {
            assert!(
                actions.contains(&action),
                "{}: {action} in {actions:?}",
                env.backend
            );
        }
        let invitation_rows = rows(
            &conn,
            "SELECT CAST(new_value AS TEXT) FROM audit_log WHERE action = 'invitation.created'",
            vec![],
        )
        .await;
        assert!(
            invitation_rows
                .iter()
                .all(|r| r[0].contains(&format!("{pseudonym}@erased.invalid"))),
            "{invitation_rows:?}"
        );
        let tombstone = rows(
            &conn,
            "SELECT email, status FROM users WHERE id = $1",
            vec![ada_value()],
        )
        .await;
        assert_eq!(
            tombstone,
            vec![vec![
                format!("{pseudonym}@erased.invalid"),
                "deleted".to_owned()
            ]]
        );
        let no_address: i64 = scalar(
            &conn,
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log WHERE user_id = $1 \
             AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)",
            vec![ada_value()],
        )
        .await
        .parse()
        .unwrap();
        assert_eq!(no_address, 0, "{}", env.backend);
        let recorded = rows(
            &conn,
            "SELECT pseudonym, requested_by FROM user_erasures WHERE completed_at IS NOT NULL",
            vec![],
        )
        .await;
        assert_eq!(recorded, vec![vec![pseudonym.clone(), "self".to_owned()]]);

        // Acme's stream says so; her identity leads nowhere; her key is revoked.
        assert!(env.events.all().iter().any(|e| matches!(
            e,
            DomainEvent::UserErased { tenant_id, user_id, pseudonym: p }
                if *tenant_id == w.tenant && *user_id == ada && *p == pseudonym
        )));
        assert_eq!(code(spine.me(&ada_id).await), "identity_not_linked");
        assert_eq!(
            code(spine.erase_me(&ada_id, ada_request("erase-3")).await),
            "identity_not_linked"
        );
        let active_keys: i64 = scalar(
            &conn,
            "SELECT CAST(COUNT(*) AS TEXT) FROM api_keys WHERE user_id = $1 AND status = 'active'",
            vec![ada_value()],
        )
        .await
        .parse()
        .unwrap();
        assert_eq!(active_keys, 0);

        // An operator cannot erase her twice, nor a user who does not exist.
        let again = spine.erase_user(&operator("again"), ada).await;
        assert_eq!(code(again), "user_already_erased");
        let nobody = spine.erase_user(&operator("nobody"), UserId::new()).await;
        assert_eq!(code(nobody), "user_not_found");

        // The guard still refuses every other update of the audit log.
        let refused = conn
            .execute_unprepared("UPDATE audit_log SET reason = 'tampered'")
            .await
            .expect_err("the guard refuses");
        assert!(
            refused.to_string().contains("tg_audit_log_append_only"),
            "{}: {refused}",
            env.backend
        );
    }
}

#[tokio::test]
async fn an_operator_erases_a_member_and_the_tenant_keeps_its_history() {
    for backend in backends().unwrap() {
        let env = env(&backend).await;
        let conn = env.second().await;
        let w = world(&env.entities().await).await;
        let spine = &env.spine;
        let member_email = scalar(
            &conn,
            "SELECT email FROM users WHERE id = $1",
            vec![Value::from(w.member.as_uuid())],
        )
        .await;
        spine
            .change_role(&owner(&w, "demote"), w.member, MembershipRole::Viewer)
            .await
            .unwrap();

        // The owner alone owns Acme: the operator is refused too.
        assert_eq!(
            code(spine.erase_user(&operator("owner"), w.owner).await),
            "last_owner"
        );
        let erased = spine
            .erase_user(&operator("erase"), w.member)
            .await
            .unwrap();
        assert_eq!(erased.left, vec![(w.tenant, MembershipRole::Viewer)]);
        assert!(
            traces(&conn, &member_email).await.is_empty(),
            "{}",
            env.backend
        );
        let acme_rows = rows(
            &conn,
            "SELECT action, actor_type FROM audit_log WHERE tenant_id = $1 \
             AND action LIKE 'user.erase%'",
            vec![Value::from(w.tenant.as_uuid())],
        )
        .await;
        assert_eq!(
            acme_rows,
            vec![vec![
                "user.erased_by_operator".to_owned(),
                "founder".to_owned()
            ]]
        );
        let platform = rows(
            &conn,
            "SELECT action, actor_type FROM audit_log WHERE tenant_id IS NULL ORDER BY action",
            vec![],
        )
        .await;
        assert_eq!(
            platform,
            vec![
                vec!["user.erased_by_operator".to_owned(), "operator".to_owned()],
                vec!["user.erasure_requested".to_owned(), "operator".to_owned()],
            ],
            "{}",
            env.backend
        );
        let by = scalar(
            &conn,
            "SELECT requested_by FROM user_erasures WHERE user_id = $1",
            vec![Value::from(w.member.as_uuid())],
        )
        .await;
        assert_eq!(by, "operator");

        // Once the owner deleted Acme (on its way to the purge), Acme holds them back no more.
        spine.delete_project(&owner(&w, "delete")).await.unwrap();
        let erased = spine
            .erase_user(&operator("after delete"), w.owner)
            .await
            .unwrap();
        assert_eq!(
            erased.left,
            vec![(w.tenant, MembershipRole::Owner)],
            "{}",
            env.backend
        );
    }
}
