//! Customer teams, transfers with ownership history, and the customer archive (timeline, notes): who may do
//! what, the loss of access a transfer or a team change brings, the sync bookkeeping it leaves behind,
//! validation, and idempotent replays.
//!
//! Demo tree: 鼓楼 NJ-GL (L0001, M0001–M0006) and 玄武 NJ-XW (L0002, M0007–M0012) under 南京分行; 姑苏 SZ-GS
//! (L0003, M0013–M0018) and 园区 SZ-YQ (L0004, M0019–M0024) under 苏州分行.

use diesel::prelude::*;
use fieldwork::db::schema::{customers, tombstones};
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, Who, get_if_none_match, id_of, ids, items, seed_customer};

const TEAMS: &str = "/api/v1/teams";
const TRANSFERS: &str = "/api/v1/transfers";

/// Asserts a 422 naming one of `fields` (serde reports list indexes as `[N]`, our checks as `.N`).
#[track_caller]
fn field_error_in(r: Resp, fields: &[&str], code: &str) {
    let body = r.problem(422, "validation_failed");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| fields.iter().any(|f| e["field"] == *f) && e["code"] == code),
        "expected {fields:?}/{code} in {body}"
    );
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Resp {
    app.req(Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Resp {
    app.req(Method::DELETE, path, Some(token), None).await
}

/// POST with an `Idempotency-Key`.
async fn post_keyed(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> Resp {
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    TestApp::read(res).await
}

fn customer_path(id: i64, tail: &str) -> String {
    format!("/api/v1/customers/{id}/{tail}")
}

async fn propose(app: &TestApp, token: &str, customer: i64, to: i64, reason: &str) -> Resp {
    let body = json!({ "to_manager_id": to, "reason": reason });
    app.post(&customer_path(customer, "transfers"), Some(token), &body)
        .await
}

async fn decide(app: &TestApp, token: &str, transfer: i64, verb: &str, body: &Value) -> Resp {
    app.post(&format!("{TRANSFERS}/{transfer}/{verb}"), Some(token), body)
        .await
}

/// A query against the test database, off the async workers.
async fn db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut fieldwork::db::DbConn) -> T + Send + 'static,
) -> T {
    let pool = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get_sync().unwrap();
        f(&mut conn)
    })
    .await
    .unwrap()
}

/// (manager_id, originator_id, team_id, seq) of a customer.
async fn customer_row(app: &TestApp, id: i64) -> (i64, i64, Option<i64>, i64) {
    db(app, move |c| {
        customers::table
            .find(id)
            .select((
                customers::manager_id,
                customers::originator_id,
                customers::team_id,
                customers::seq,
            ))
            .first(c)
            .unwrap()
    })
    .await
}

/// (manager_id, team_id, org_id, seq) of the tombstones for `entity` `id`.
async fn tombstones_of(
    app: &TestApp,
    entity: &'static str,
    id: i64,
) -> Vec<(Option<i64>, Option<i64>, Option<i64>, i64)> {
    db(app, move |c| {
        tombstones::table
            .filter(tombstones::entity.eq(entity))
            .filter(tombstones::entity_id.eq(id))
            .order(tombstones::id.asc())
            .select((
                tombstones::manager_id,
                tombstones::team_id,
                tombstones::org_id,
                tombstones::seq,
            ))
            .load(c)
            .unwrap()
    })
    .await
}

/// Whether `user` sees customer `id` by the scope rules (manager scope), straight from the repo.
async fn manager_sees(app: &TestApp, user: i64, id: i64) -> bool {
    use fieldwork::auth::caller::{Reach, Scope};
    db(app, move |c| {
        let scope = Scope {
            user_id: user,
            org_id: 0,
            org_path: String::new(),
            reach: Reach::Own,
        };
        fieldwork::db::repo::scope::find_customer(c, &scope, id)
            .unwrap()
            .is_some()
    })
    .await
}

/// The org id of an org code, as admin sees it.
async fn org_id(app: &TestApp, admin: &str, code: &str) -> i64 {
    let r = app.get("/api/v1/orgs?limit=200", admin).await.expect(200);
    items(&r.body)
        .iter()
        .find(|o| o["code"] == code)
        .and_then(|o| o["id"].as_i64())
        .expect("org")
}

// ---------------------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------------------

async fn teams_are_made_by_leaders_and_seen_in_scope(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0003", "M0001", "M0002", "M0003", "M0007"],
    )
    .await;
    let body = json!({
        "name": "鼓楼一组",
        "members": [
            { "user_id": w.id("M0001"), "role": "relationship_manager" },
            { "user_id": w.id("M0002"), "role": "business_manager" },
            { "user_id": w.id("L0001"), "role": "leader" }
        ]
    });
    app.post(TEAMS, Some(w.t("M0001")), &body)
        .await
        .problem(403, "forbidden");
    let r = app.post(TEAMS, Some(w.t("L0001")), &body).await.expect(201);
    let team = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["name"], "鼓楼一组");
    assert_eq!(
        r.body["org"]["code"], "NJ-GL",
        "default org is the caller's"
    );
    assert_eq!(r.body["created_by"], w.id("L0001"));
    let members = r.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    let m1 = members
        .iter()
        .find(|m| m["user_id"] == w.id("M0001"))
        .unwrap();
    assert_eq!(m1["role"], "relationship_manager");
    assert_eq!(m1["employee_no"], "M0001");

    // Reads: leaders and admins above the team's org, members; everyone else 404.
    for u in ["L0001", "admin", "M0001", "M0002"] {
        app.get(&format!("{TEAMS}/{team}"), w.t(u))
            .await
            .expect(200);
        let l = app.get(TEAMS, w.t(u)).await.expect(200);
        assert!(ids(&l.body).contains(&team), "{u} lists the team");
    }
    for u in ["L0003", "M0003", "M0007"] {
        app.get(&format!("{TEAMS}/{team}"), w.t(u))
            .await
            .problem(404, "team_not_found");
        let l = app.get(TEAMS, w.t(u)).await.expect(200);
        assert!(!ids(&l.body).contains(&team), "{u} does not list the team");
    }
    let gl = org_id(&app, w.t("admin"), "NJ-GL").await;
    let xw = org_id(&app, w.t("admin"), "NJ-XW").await;
    let l = app
        .get(&format!("{TEAMS}?org_id={xw}"), w.t("admin"))
        .await
        .expect(200);
    assert!(items(&l.body).is_empty());
    let l = app
        .get(&format!("{TEAMS}?org_id={gl}&limit=1"), w.t("admin"))
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![team]);

    // An admin creates a team in another org of their subtree.
    let r = app
        .post(
            TEAMS,
            Some(w.t("admin")),
            &json!({ "name": "玄武组", "org_id": xw, "members": [{ "user_id": w.id("M0007"), "role": "assistant" }] }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["org"]["code"], "NJ-XW");
    let l = app.get(TEAMS, w.t("M0007")).await.expect(200);
    assert_eq!(ids(&l.body), vec![r.body["id"].as_i64().unwrap()]);

    // PATCH: leaders and admins only; renames and replaces the members.
    let path = format!("{TEAMS}/{team}");
    // The detail is conditional: its tag answers 304 until the team changes.
    let before = app.get(&path, w.t("L0001")).await.expect(200);
    let team_tag = before.headers["etag"].to_str().unwrap().to_owned();
    assert!(team_tag.starts_with("W/\""), "{team_tag}");
    get_if_none_match(&app, &path, w.t("L0001"), &team_tag)
        .await
        .expect(304);
    // Out of scope stays a 404, whatever tag is sent.
    get_if_none_match(&app, &path, w.t("L0003"), "*")
        .await
        .problem(404, "team_not_found");
    app.patch(&path, w.t("M0001"), &json!({ "name": "x" }))
        .await
        .problem(403, "forbidden");
    app.patch(&path, w.t("L0003"), &json!({ "name": "x" }))
        .await
        .problem(404, "team_not_found");
    let r = app
        .patch(
            &path,
            w.t("L0001"),
            &json!({ "name": "鼓楼二组", "members": [{ "user_id": w.id("M0003"), "role": "leader" }] }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["name"], "鼓楼二组");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["members"][0]["employee_no"], "M0003");
    let after = get_if_none_match(&app, &path, w.t("L0001"), &team_tag)
        .await
        .expect(200);
    assert_ne!(after.headers["etag"].to_str().unwrap(), team_tag);
    assert_eq!(after.body["name"], "鼓楼二组");
    app.get(&path, w.t("M0001"))
        .await
        .problem(404, "team_not_found");
    app.get(&path, w.t("M0003")).await.expect(200);
    let r = app
        .patch(&path, w.t("L0001"), &json!({ "name": "鼓楼三组" }))
        .await
        .expect(200);
    assert_eq!(r.body["members"][0]["employee_no"], "M0003", "members kept");

    // DELETE archives: nobody sees the team afterwards.
    delete(&app, &path, w.t("M0003"))
        .await
        .problem(403, "forbidden");
    delete(&app, &path, w.t("L0003"))
        .await
        .problem(404, "team_not_found");
    let r = delete(&app, &path, w.t("L0001")).await.expect(204);
    assert!(r.text.is_empty());
    app.get(&path, w.t("L0001"))
        .await
        .problem(404, "team_not_found");
    delete(&app, &path, w.t("L0001"))
        .await
        .problem(404, "team_not_found");
    let l = app.get(TEAMS, w.t("M0003")).await.expect(200);
    assert!(items(&l.body).is_empty());

    // Audit rows for each write.
    let a = app
        .get("/api/v1/audit-events?entity=team&limit=200", w.t("admin"))
        .await
        .expect(200);
    let actions: Vec<String> = items(&a.body)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for action in ["team.create", "team.update", "team.archive"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

async fn team_validation_names_the_field(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002", "M0007"]).await;
    let sz = org_id(&app, w.t("admin"), "SZ-GS").await;
    let member = |u: i64, role: &str| json!({ "user_id": u, "role": role });
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            json!({ "name": " ", "members": [] }),
            vec!["name"],
            "required",
        ),
        (json!({ "name": "x".repeat(101) }), vec!["name"], "too_long"),
        (json!({ "members": [] }), vec!["name"], "required"),
        (
            json!({ "name": "a", "org_id": sz }),
            vec!["org_id"],
            "not_found",
        ),
        (
            json!({ "name": "a", "members": [member(w.id("M0007"), "assistant")] }),
            vec!["members.0.user_id"],
            "not_found",
        ),
        (
            json!({ "name": "a", "members": [member(w.id("M0001"), "assistant"), member(999_999, "assistant")] }),
            vec!["members.1.user_id"],
            "not_found",
        ),
        (
            json!({ "name": "a", "members": [member(w.id("M0001"), "assistant"), member(w.id("M0001"), "leader")] }),
            vec!["members.1.user_id"],
            "duplicate",
        ),
        (
            json!({ "name": "a", "members": [member(w.id("M0001"), "boss")] }),
            vec!["members[0].role", "members.0.role"],
            "invalid_value",
        ),
        (
            json!({ "name": "a", "members": [{ "user_id": w.id("M0001") }] }),
            vec!["members[0].role", "members.0.role"],
            "required",
        ),
        (
            json!({ "name": "a", "colour": "red" }),
            vec!["colour"],
            "unknown_field",
        ),
    ];
    for (body, fields, code) in cases {
        let r = app.post(TEAMS, Some(w.t("L0001")), &body).await;
        field_error_in(r, &fields, code);
    }
    let too_many: Vec<Value> = (1..=51).map(|i| member(i, "assistant")).collect();
    let r = app
        .post(
            TEAMS,
            Some(w.t("L0001")),
            &json!({ "name": "a", "members": too_many }),
        )
        .await;
    field_error_in(r, &["members"], "too_many");

    // An inactive user cannot join.
    app.patch(
        &format!("/api/v1/users/{}", w.id("M0002")),
        w.t("admin"),
        &json!({ "active": false }),
    )
    .await
    .expect(200);
    let r = app
        .post(
            TEAMS,
            Some(w.t("L0001")),
            &json!({ "name": "a", "members": [member(w.id("M0002"), "assistant")] }),
        )
        .await;
    field_error_in(r, &["members.0.user_id"], "not_found");

    // PATCH and PUT validate too; nothing was created by the failures.
    let r = app
        .post(TEAMS, Some(w.t("L0001")), &json!({ "name": "ok" }))
        .await
        .expect(201);
    let team = r.body["id"].as_i64().unwrap();
    let path = format!("{TEAMS}/{team}");
    field_error_in(
        app.patch(&path, w.t("L0001"), &json!({ "name": "" })).await,
        &["name"],
        "required",
    );
    field_error_in(
        app.patch(
            &path,
            w.t("L0001"),
            &json!({ "members": [member(w.id("M0007"), "leader")] }),
        )
        .await,
        &["members.0.user_id"],
        "not_found",
    );
    field_error_in(
        app.patch(&path, w.t("L0001"), &json!({ "org_id": 1 }))
            .await,
        &["org_id"],
        "unknown_field",
    );
    let cust = format!("{path}/customers");
    field_error_in(
        put(
            &app,
            &cust,
            w.t("L0001"),
            &json!({ "customer_ids": [999_999] }),
        )
        .await,
        &["customer_ids.0"],
        "not_found",
    );
    field_error_in(
        put(&app, &cust, w.t("L0001"), &json!({ "customer_ids": "1" })).await,
        &["customer_ids"],
        "invalid_type",
    );
    let l = app.get(TEAMS, w.t("L0001")).await.expect(200);
    assert_eq!(ids(&l.body), vec![team]);
    app.get(&format!("{TEAMS}/abc"), w.t("L0001"))
        .await
        .problem(400, "invalid_path_parameter");
    app.get(&format!("{TEAMS}?limit=0"), w.t("L0001"))
        .await
        .problem(400, "invalid_query_parameter");
}

async fn team_membership_grants_and_removal_revokes_visibility(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0003", "M0001", "M0002", "M0003", "M0013"],
    )
    .await;
    let c1 = seed_customer(&app, "M0001", "团队客户甲", None).await;
    let c2 = seed_customer(&app, "M0003", "团队客户乙", None).await;
    let sz = seed_customer(&app, "M0013", "苏州客户", None).await;
    let timeline = customer_path(c1, "timeline");
    app.get(&timeline, w.t("M0002"))
        .await
        .problem(404, "customer_not_found");
    assert!(!manager_sees(&app, w.id("M0002"), c1).await);

    let r = app
        .post(
            TEAMS,
            Some(w.t("L0001")),
            &json!({ "name": "鼓楼组", "members": [
                { "user_id": w.id("M0001"), "role": "relationship_manager" },
                { "user_id": w.id("M0002"), "role": "assistant" }
            ] }),
        )
        .await
        .expect(201);
    let team = r.body["id"].as_i64().unwrap();
    let cust = format!("{TEAMS}/{team}/customers");

    // Assigning: leaders and admins of the team's org; customers of the team's org subtree in their scope.
    put(&app, &cust, w.t("M0001"), &json!({ "customer_ids": [c1] }))
        .await
        .problem(403, "forbidden");
    put(&app, &cust, w.t("L0003"), &json!({ "customer_ids": [c1] }))
        .await
        .problem(404, "team_not_found");
    field_error_in(
        put(
            &app,
            &cust,
            w.t("L0001"),
            &json!({ "customer_ids": [c1, sz] }),
        )
        .await,
        &["customer_ids.1"],
        "not_found",
    );
    field_error_in(
        put(
            &app,
            &cust,
            w.t("admin"),
            &json!({ "customer_ids": [c1, sz] }),
        )
        .await,
        &["customer_ids.1"],
        "not_found",
    );
    field_error_in(
        put(
            &app,
            &cust,
            w.t("L0001"),
            &json!({ "customer_ids": [c1, c1] }),
        )
        .await,
        &["customer_ids.1"],
        "duplicate",
    );
    let (_, _, team_before, seq_before) = customer_row(&app, c1).await;
    assert_eq!(team_before, None);
    let r = put(
        &app,
        &cust,
        w.t("L0001"),
        &json!({ "customer_ids": [c2, c1] }),
    )
    .await
    .expect(200);
    let mut both = vec![c1, c2];
    both.sort_unstable();
    assert_eq!(r.body["team_id"], team);
    assert_eq!(r.body["customer_ids"], json!(both));
    let (_, _, team_now, seq_now) = customer_row(&app, c1).await;
    assert_eq!(team_now, Some(team));
    assert!(seq_now > seq_before, "assignment bumps the customer's seq");

    // A member manager now sees the team's customers: archive, notes, the team's customer list.
    assert!(manager_sees(&app, w.id("M0002"), c1).await);
    let detail = app
        .get(&format!("/api/v1/customers/{c1}"), w.t("M0002"))
        .await;
    if detail.body["code"] != "route_not_found" {
        // The customers API answers the detail view once it is built.
        assert_eq!(detail.status.as_u16(), 200, "{}", detail.text);
    }
    let t = app.get(&timeline, w.t("M0002")).await.expect(200);
    assert_eq!(items(&t.body)[0]["kind"], "team");
    app.post(
        &customer_path(c1, "notes"),
        Some(w.t("M0002")),
        &json!({ "text": "团队成员的备注" }),
    )
    .await
    .expect(201);
    let l = app.get(&cust, w.t("M0002")).await.expect(200);
    assert_eq!(ids(&l.body), both);
    assert_eq!(items(&l.body)[0]["name"], "团队客户甲");
    let l = app
        .get(&format!("{cust}?limit=1"), w.t("M0002"))
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![both[0]]);
    let next = l.body["next_cursor"].as_str().unwrap().to_owned();
    let l = app
        .get(&format!("{cust}?limit=1&cursor={next}"), w.t("M0002"))
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![both[1]]);
    assert!(l.body["next_cursor"].is_null());
    app.get(&cust, w.t("M0003"))
        .await
        .problem(404, "team_not_found");
    // Team membership does not make a manager the responsible one: no transfers of others' customers.
    propose(&app, w.t("M0002"), c1, w.id("M0003"), "我来管")
        .await
        .problem(403, "forbidden");

    // Removing M0002 from the team revokes it, with tombstones for M0002 (not for the owner M0001).
    app.patch(
        &format!("{TEAMS}/{team}"),
        w.t("L0001"),
        &json!({ "members": [{ "user_id": w.id("M0001"), "role": "relationship_manager" }] }),
    )
    .await
    .expect(200);
    app.get(&timeline, w.t("M0002"))
        .await
        .problem(404, "customer_not_found");
    assert!(!manager_sees(&app, w.id("M0002"), c1).await);
    let stones = tombstones_of(&app, "customer", c1).await;
    assert!(
        stones.iter().any(|s| s.0 == Some(w.id("M0002"))),
        "{stones:?}"
    );
    assert!(!stones.iter().any(|s| s.0 == Some(w.id("M0001"))));
    // M0001 still sees c2 (M0003's customer) through the team, and their own c1.
    app.get(&customer_path(c2, "timeline"), w.t("M0001"))
        .await
        .expect(200);

    // Taking c2 out of the team: the team's members lose it (tombstone for the team), its owner keeps it.
    let r = put(&app, &cust, w.t("L0001"), &json!({ "customer_ids": [c1] }))
        .await
        .expect(200);
    assert_eq!(r.body["customer_ids"], json!([c1]));
    app.get(&customer_path(c2, "timeline"), w.t("M0001"))
        .await
        .problem(404, "customer_not_found");
    app.get(&customer_path(c2, "timeline"), w.t("M0003"))
        .await
        .expect(200);
    let (_, _, team_c2, seq_c2) = customer_row(&app, c2).await;
    assert_eq!(team_c2, None);
    let stones = tombstones_of(&app, "customer", c2).await;
    let for_team: Vec<_> = stones.iter().filter(|s| s.1 == Some(team)).collect();
    assert_eq!(for_team.len(), 1, "{stones:?}");
    assert_eq!(
        for_team[0].3, seq_c2,
        "tombstone and row share the change's seq"
    );

    // Archiving the team takes its customers out.
    delete(&app, &format!("{TEAMS}/{team}"), w.t("L0001"))
        .await
        .expect(204);
    assert_eq!(customer_row(&app, c1).await.2, None);
    assert!(
        tombstones_of(&app, "customer", c1)
            .await
            .iter()
            .any(|s| s.1 == Some(team))
    );
    let t = app.get(&timeline, w.t("M0001")).await.expect(200);
    assert_eq!(items(&t.body)[0]["kind"], "team");
}

// ---------------------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------------------

async fn transfer_round_trip_moves_the_customer(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0002", "L0003", "M0001", "M0002", "M0003"],
    )
    .await;
    let c = seed_customer(&app, "M0001", "移交客户", None).await;
    let (_, _, _, seq0) = customer_row(&app, c).await;
    let r = propose(&app, w.t("L0001"), c, w.id("M0002"), "客户搬家到新区")
        .await
        .expect(201);
    let t = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["customer_id"], c);
    assert_eq!(r.body["from_manager"]["employee_no"], "M0001");
    assert_eq!(r.body["to_manager"]["employee_no"], "M0002");
    assert_eq!(r.body["proposed_by"]["employee_no"], "L0001");
    assert_eq!(r.body["reason"], "客户搬家到新区");
    assert!(r.body["decided_by"].is_null() && r.body["decided_at"].is_null());
    // One pending transfer per customer.
    let again = propose(&app, w.t("M0001"), c, w.id("M0003"), "再来一次").await;
    assert_eq!(again.status.as_u16(), 409, "{}", again.text);

    // Who sees the pending transfer.
    for u in ["L0001", "admin", "M0001", "M0002"] {
        let l = app
            .get(&format!("{TRANSFERS}?status=pending"), w.t(u))
            .await
            .expect(200);
        assert_eq!(ids(&l.body), vec![t], "{u}");
        app.get(&format!("{TRANSFERS}/{t}"), w.t(u))
            .await
            .expect(200);
    }
    for u in ["L0002", "L0003", "M0003"] {
        let l = app.get(TRANSFERS, w.t(u)).await.expect(200);
        assert!(items(&l.body).is_empty(), "{u}");
        app.get(&format!("{TRANSFERS}/{t}"), w.t(u))
            .await
            .problem(404, "transfer_not_found");
    }
    let l = app
        .get(&format!("{TRANSFERS}?status=approved"), w.t("L0001"))
        .await
        .expect(200);
    assert!(items(&l.body).is_empty());

    // The detail is conditional: its tag answers 304 until the transfer is decided.
    let tpath = format!("{TRANSFERS}/{t}");
    let pending = app.get(&tpath, w.t("L0001")).await.expect(200);
    let pending_tag = pending.headers["etag"].to_str().unwrap().to_owned();
    get_if_none_match(&app, &tpath, w.t("L0001"), &pending_tag)
        .await
        .expect(304);
    get_if_none_match(&app, &tpath, w.t("L0003"), &pending_tag)
        .await
        .problem(404, "transfer_not_found");

    // Who may decide.
    decide(&app, w.t("L0003"), t, "approve", &json!({}))
        .await
        .problem(404, "transfer_not_found");
    decide(&app, w.t("M0001"), t, "approve", &json!({}))
        .await
        .problem(403, "forbidden");
    decide(&app, w.t("M0002"), t, "reject", &json!({}))
        .await
        .problem(403, "forbidden");
    // Maker-checker: the leader who proposed it may not approve it, and the refusal changes nothing; the
    // admin (above the sub-branch) approves.
    decide(&app, w.t("L0001"), t, "approve", &json!({}))
        .await
        .problem(403, "proposer_cannot_approve");
    get_if_none_match(&app, &tpath, w.t("L0001"), &pending_tag)
        .await
        .expect(304);
    let r = decide(&app, w.t("admin"), t, "approve", &json!({ "note": "同意" }))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["decided_by"]["employee_no"], "admin");
    assert_eq!(r.body["decision_note"], "同意");
    let decided_at = r.body["decided_at"].as_str().unwrap().to_owned();
    let decided = get_if_none_match(&app, &tpath, w.t("L0001"), &pending_tag)
        .await
        .expect(200);
    assert_eq!(decided.body["status"], "approved");
    decide(&app, w.t("L0001"), t, "approve", &json!({}))
        .await
        .problem(409, "transfer_already_decided");
    decide(&app, w.t("admin"), t, "reject", &json!({}))
        .await
        .problem(409, "transfer_already_decided");

    // The old manager loses the customer; the new one has it.
    for tail in ["timeline", "ownership", "notes"] {
        app.get(&customer_path(c, tail), w.t("M0001"))
            .await
            .problem(404, "customer_not_found");
        app.get(&customer_path(c, tail), w.t("M0002"))
            .await
            .expect(200);
    }
    propose(&app, w.t("M0001"), c, w.id("M0003"), "拿回来")
        .await
        .problem(404, "customer_not_found");
    let detail = app
        .get(&format!("/api/v1/customers/{c}"), w.t("M0001"))
        .await;
    if detail.body["code"] != "route_not_found" {
        detail.problem(404, "customer_not_found");
    }
    // The transfer itself stays visible to those it is about.
    app.get(&format!("{TRANSFERS}/{t}"), w.t("M0001"))
        .await
        .expect(200);

    // Ownership history: two rows, newest first, the first closed at the approval.
    let o = app
        .get(&customer_path(c, "ownership"), w.t("L0001"))
        .await
        .expect(200);
    let rows = items(&o.body);
    assert_eq!(rows.len(), 2, "{}", o.text);
    assert_eq!(rows[0]["manager"]["employee_no"], "M0002");
    assert_eq!(rows[0]["transfer_id"], t);
    assert_eq!(rows[0]["reason"], "客户搬家到新区");
    assert!(rows[0]["effective_to"].is_null());
    assert_eq!(rows[0]["effective_from"], decided_at.as_str());
    assert_eq!(rows[1]["manager"]["employee_no"], "M0001");
    assert_eq!(rows[1]["effective_to"], decided_at.as_str());
    assert_eq!(rows[1]["reason"], "originated");
    assert!(rows[1]["transfer_id"].is_null());
    let o1 = app
        .get(
            &format!("{}?limit=1", customer_path(c, "ownership")),
            w.t("L0001"),
        )
        .await
        .expect(200);
    assert_eq!(ids(&o1.body), vec![ids(&o.body)[0]]);
    assert!(o1.body["next_cursor"].is_string());

    // The database: owner changed, originator kept, seq bumped, tombstone for the old manager.
    let (manager, originator, _, seq1) = customer_row(&app, c).await;
    assert_eq!(manager, w.id("M0002"));
    assert_eq!(originator, w.id("M0001"));
    assert!(seq1 > seq0);
    let stones = tombstones_of(&app, "customer", c).await;
    assert_eq!(stones.len(), 1, "{stones:?}");
    assert_eq!(stones[0].0, Some(w.id("M0001")));
    assert_eq!(stones[0].2, None, "same org: the leaders still see it");
    assert_eq!(stones[0].3, seq1);

    // The archive and the audit log record it.
    let tl = app
        .get(&customer_path(c, "timeline"), w.t("M0002"))
        .await
        .expect(200);
    let first = &items(&tl.body)[0];
    assert_eq!(first["kind"], "transfer");
    assert_eq!(first["ref_id"], t);
    assert_eq!(first["actor_id"], w.id("admin"));
    assert!(first["summary"].as_str().unwrap().contains("M0002"));
    let a = app
        .get("/api/v1/audit-events?entity=transfer", w.t("admin"))
        .await
        .expect(200);
    let actions: Vec<String> = items(&a.body)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for action in ["transfer.propose", "transfer.approve"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let l = app
        .get(
            &format!("{TRANSFERS}?status=approved&customer_id={c}"),
            w.t("M0002"),
        )
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![t]);
}

async fn rejected_transfer_changes_nothing(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002", "M0003"]).await;
    let c = seed_customer(&app, "M0001", "留下的客户", None).await;
    // Another manager cannot see the customer at all.
    propose(&app, w.t("M0002"), c, w.id("M0003"), "想要")
        .await
        .problem(404, "customer_not_found");
    // The responsible manager proposes, with an idempotency key: a retry gets the same answer.
    let body = json!({ "to_manager_id": w.id("M0003"), "reason": "工作调整" });
    let path = customer_path(c, "transfers");
    let first = post_keyed(&app, &path, w.t("M0001"), "tr-1", &body)
        .await
        .expect(201);
    let replay = post_keyed(&app, &path, w.t("M0001"), "tr-1", &body)
        .await
        .expect(201);
    assert_eq!(first.text, replay.text);
    let other = json!({ "to_manager_id": w.id("M0003"), "reason": "别的理由" });
    field_error_in(
        post_keyed(&app, &path, w.t("M0001"), "tr-1", &other).await,
        &["idempotency-key"],
        "key_reused",
    );
    let t = first.body["id"].as_i64().unwrap();
    assert_eq!(first.body["proposed_by"]["employee_no"], "M0001");
    let l = app
        .get(&format!("{TRANSFERS}?customer_id={c}"), w.t("L0001"))
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![t], "one transfer despite the retry");
    // The proposing manager cannot decide.
    decide(&app, w.t("M0001"), t, "approve", &json!({}))
        .await
        .problem(403, "forbidden");
    let (_, _, _, seq0) = customer_row(&app, c).await;
    let r = decide(
        &app,
        w.t("L0001"),
        t,
        "reject",
        &json!({ "note": "暂不调整" }),
    )
    .await
    .expect(200);
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(r.body["decision_note"], "暂不调整");
    decide(&app, w.t("L0001"), t, "approve", &json!({}))
        .await
        .problem(409, "transfer_already_decided");

    // Nothing changed hands.
    let (manager, _, _, seq1) = customer_row(&app, c).await;
    assert_eq!(manager, w.id("M0001"));
    assert_eq!(seq1, seq0);
    assert!(tombstones_of(&app, "customer", c).await.is_empty());
    let o = app
        .get(&customer_path(c, "ownership"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(items(&o.body).len(), 1);
    assert!(items(&o.body)[0]["effective_to"].is_null());
    app.get(&customer_path(c, "timeline"), w.t("M0003"))
        .await
        .problem(404, "customer_not_found");
    let tl = app
        .get(&customer_path(c, "timeline"), w.t("M0001"))
        .await
        .expect(200);
    let kinds: Vec<String> = items(&tl.body)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, vec!["transfer_rejected", "transfer_proposed"]);
    // A new proposal is possible once the first is decided.
    let again = propose(&app, w.t("M0001"), c, w.id("M0002"), "再申请")
        .await
        .expect(201);
    decide(&app, w.t("L0001"), id_of(&again.body), "reject", &json!({}))
        .await
        .expect(200);

    // A leader withdraws their own proposal by rejecting it (maker-checker forbids only approving it).
    let own = propose(&app, w.t("L0001"), c, w.id("M0002"), "撤回测试")
        .await
        .expect(201);
    let withdrawn = decide(&app, w.t("L0001"), id_of(&own.body), "reject", &json!({}))
        .await
        .expect(200);
    assert_eq!(withdrawn.body["status"], "rejected");
    assert_eq!(withdrawn.body["decided_by"]["employee_no"], "L0001");
    let (manager, _, _, _) = customer_row(&app, c).await;
    assert_eq!(manager, w.id("M0001"));
}

async fn transfers_across_sub_branches_and_validation(app: TestApp) {
    let w = Who::login(&app, &["L0001", "L0002", "M0001", "M0007", "M0013"]).await;
    let c = seed_customer(&app, "M0001", "跨支行客户", None).await;
    let path = customer_path(c, "transfers");
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            json!({ "to_manager_id": w.id("M0007"), "reason": "" }),
            vec!["reason"],
            "required",
        ),
        (
            json!({ "to_manager_id": w.id("M0007"), "reason": "长".repeat(501) }),
            vec!["reason"],
            "too_long",
        ),
        (
            json!({ "to_manager_id": w.id("M0007") }),
            vec!["reason"],
            "required",
        ),
        (
            json!({ "to_manager_id": "M0007", "reason": "r" }),
            vec!["to_manager_id"],
            "invalid_type",
        ),
        (
            json!({ "to_manager_id": w.id("M0007"), "reason": "r", "urgent": true }),
            vec!["urgent"],
            "unknown_field",
        ),
        (
            json!({ "to_manager_id": 999_999, "reason": "r" }),
            vec!["to_manager_id"],
            "not_found",
        ),
        (
            json!({ "to_manager_id": w.id("L0002"), "reason": "r" }),
            vec!["to_manager_id"],
            "not_found",
        ),
        (
            json!({ "to_manager_id": w.id("M0013"), "reason": "another branch" }),
            vec!["to_manager_id"],
            "not_found",
        ),
        (
            json!({ "to_manager_id": w.id("M0001"), "reason": "r" }),
            vec!["to_manager_id"],
            "same_manager",
        ),
    ];
    for (body, fields, code) in cases {
        field_error_in(
            app.post(&path, Some(w.t("L0001")), &body).await,
            &fields,
            code,
        );
    }
    app.post(
        &path,
        Some(w.t("L0002")),
        &json!({ "to_manager_id": w.id("M0007"), "reason": "r" }),
    )
    .await
    .problem(404, "customer_not_found");
    app.post(
        "/api/v1/customers/999999/transfers",
        Some(w.t("L0001")),
        &json!({ "to_manager_id": w.id("M0007"), "reason": "r" }),
    )
    .await
    .problem(404, "customer_not_found");
    let l = app.get(TRANSFERS, w.t("L0001")).await.expect(200);
    assert!(items(&l.body).is_empty(), "failed proposals leave nothing");

    // Within the branch (南京分行) a customer may move to the other sub-branch.
    let r = propose(&app, w.t("L0001"), c, w.id("M0007"), "跨支行调整")
        .await
        .expect(201);
    let t = r.body["id"].as_i64().unwrap();
    // The receiving sub-branch's leader sees it but may not decide.
    app.get(&format!("{TRANSFERS}/{t}"), w.t("L0002"))
        .await
        .expect(200);
    decide(&app, w.t("L0002"), t, "approve", &json!({}))
        .await
        .problem(403, "forbidden");
    field_error_in(
        decide(
            &app,
            w.t("L0001"),
            t,
            "approve",
            &json!({ "note": "长".repeat(501) }),
        )
        .await,
        &["note"],
        "too_long",
    );
    field_error_in(
        decide(&app, w.t("L0001"), t, "approve", &json!({ "reason": "x" })).await,
        &["reason"],
        "unknown_field",
    );
    decide(&app, w.t("L0001"), 999_999, "approve", &json!({}))
        .await
        .problem(404, "transfer_not_found");
    // L0001 proposed it, so the admin approves it.
    decide(&app, w.t("L0001"), t, "approve", &json!({}))
        .await
        .problem(403, "proposer_cannot_approve");
    decide(&app, w.t("admin"), t, "approve", &json!({}))
        .await
        .expect(200);
    // The customer left 鼓楼: its leader no longer sees it, 玄武's does; the tombstone names the old org.
    app.get(&customer_path(c, "timeline"), w.t("L0001"))
        .await
        .problem(404, "customer_not_found");
    app.get(&customer_path(c, "timeline"), w.t("L0002"))
        .await
        .expect(200);
    app.get(&customer_path(c, "timeline"), w.t("M0007"))
        .await
        .expect(200);
    let gl = org_id(&app, w.t("admin"), "NJ-GL").await;
    let stones = tombstones_of(&app, "customer", c).await;
    assert_eq!(stones.len(), 1);
    assert_eq!(stones[0].0, Some(w.id("M0001")));
    assert_eq!(stones[0].2, Some(gl));

    // Query validation.
    app.get(&format!("{TRANSFERS}?status=bogus"), w.t("L0001"))
        .await
        .problem(400, "invalid_query_parameter");
    app.get(&format!("{TRANSFERS}?limit=201"), w.t("L0001"))
        .await
        .problem(400, "invalid_query_parameter");
    app.get(&format!("{TRANSFERS}?colour=red"), w.t("L0001"))
        .await
        .problem(400, "invalid_query_parameter");
    app.get(&format!("{TRANSFERS}/0"), w.t("L0001"))
        .await
        .problem(400, "invalid_path_parameter");
}

// ---------------------------------------------------------------------------------------------------------
// The archive: notes and timeline
// ---------------------------------------------------------------------------------------------------------

async fn notes_and_timeline_follow_customer_visibility(app: TestApp) {
    let w = Who::login(&app, &["L0001", "L0003", "M0001", "M0002"]).await;
    let c = seed_customer(&app, "M0001", "备注客户", None).await;
    let notes = customer_path(c, "notes");
    let timeline = customer_path(c, "timeline");

    // Create with an idempotency key: the retry replays the first answer and creates nothing.
    let body = json!({ "text": "客户手机 13812345678，下午回电" });
    let first = post_keyed(&app, &notes, w.t("M0001"), "note-1", &body)
        .await
        .expect(201);
    let replay = post_keyed(&app, &notes, w.t("M0001"), "note-1", &body)
        .await
        .expect(201);
    assert_eq!(first.text, replay.text);
    assert_eq!(first.body["author"]["employee_no"], "M0001");
    assert_eq!(first.body["customer_id"], c);
    assert_eq!(first.body["text"], "客户手机 13812345678，下午回电");
    field_error_in(
        post_keyed(
            &app,
            &notes,
            w.t("M0001"),
            "note-1",
            &json!({ "text": "别的" }),
        )
        .await,
        &["idempotency-key"],
        "key_reused",
    );
    // Or with a client id in the body.
    let cid = json!({ "text": "第二条\n分两行", "client_id": "c-42" });
    let a = app.post(&notes, Some(w.t("M0001")), &cid).await.expect(201);
    let b = app.post(&notes, Some(w.t("M0001")), &cid).await.expect(201);
    assert_eq!(a.text, b.text);
    // Leaders and admins above the manager may write too.
    app.post(&notes, Some(w.t("L0001")), &json!({ "text": "支行长备注" }))
        .await
        .expect(201);
    app.post(&notes, Some(w.t("admin")), &json!({ "text": "管理员备注" }))
        .await
        .expect(201);

    // Reads per role.
    for u in ["M0001", "L0001", "admin"] {
        let l = app.get(&notes, w.t(u)).await.expect(200);
        assert_eq!(items(&l.body).len(), 4, "{u}: {}", l.text);
        assert_eq!(items(&l.body)[0]["text"], "管理员备注", "newest first");
        app.get(&timeline, w.t(u)).await.expect(200);
    }
    for u in ["M0002", "L0003"] {
        app.get(&notes, w.t(u))
            .await
            .problem(404, "customer_not_found");
        app.get(&timeline, w.t(u))
            .await
            .problem(404, "customer_not_found");
        app.post(&notes, Some(w.t(u)), &json!({ "text": "x" }))
            .await
            .problem(404, "customer_not_found");
    }
    app.get("/api/v1/customers/999999/timeline", w.t("admin"))
        .await
        .problem(404, "customer_not_found");

    // The timeline: one line per note, newest first, phone numbers masked, paged with cursors.
    let tl = app.get(&timeline, w.t("M0001")).await.expect(200);
    let lines = items(&tl.body);
    assert_eq!(lines.len(), 4, "{}", tl.text);
    assert!(lines.iter().all(|e| e["kind"] == "note"));
    let oldest = &lines[3];
    assert_eq!(oldest["ref_id"], first.body["id"]);
    assert_eq!(oldest["actor_id"], w.id("M0001"));
    let summary = oldest["summary"].as_str().unwrap();
    assert!(!summary.contains("13812345678"), "{summary}");
    assert!(summary.contains("下午回电"), "{summary}");
    assert!(oldest["at"].as_str().unwrap().ends_with('Z'));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let p = app
            .get(&format!("{timeline}?limit=3{q}"), w.t("M0001"))
            .await
            .expect(200);
        seen.extend(ids(&p.body));
        match p.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&tl.body));
    let p = app
        .get(&format!("{notes}?limit=2"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(items(&p.body).len(), 2);
    assert!(p.body["next_cursor"].is_string());

    // Validation.
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "text": "  " }), "text", "required"),
        (json!({ "text": "长".repeat(2001) }), "text", "too_long"),
        (json!({ "text": "a\u{0}b" }), "text", "invalid_character"),
        (json!({}), "text", "required"),
        (
            json!({ "text": "a", "mood": "happy" }),
            "mood",
            "unknown_field",
        ),
        (
            json!({ "text": "a", "client_id": "x".repeat(129) }),
            "client_id",
            "too_long",
        ),
    ];
    for (body, field, code) in cases {
        field_error_in(
            app.post(&notes, Some(w.t("M0001")), &body).await,
            &[field],
            code,
        );
    }
    app.post(
        &notes,
        Some(w.t("M0001")),
        &json!({ "text": "长".repeat(2000) }),
    )
    .await
    .expect(201);
    app.get(&format!("{timeline}?cursor=junk"), w.t("M0001"))
        .await
        .problem(400, "invalid_query_parameter");
    app.get(&format!("{notes}?limit=0"), w.t("M0001"))
        .await
        .problem(400, "invalid_query_parameter");
}

backend_tests!(
    teams_are_made_by_leaders_and_seen_in_scope,
    team_validation_names_the_field,
    team_membership_grants_and_removal_revokes_visibility,
    transfer_round_trip_moves_the_customer,
    rejected_transfer_changes_nothing,
    transfers_across_sub_branches_and_validation,
    notes_and_timeline_follow_customer_visibility,
);
