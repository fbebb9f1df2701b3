//! Opportunities (create, every stage rule, history, source, pipeline summary, scope per role, validation,
//! offline replay, ETag), work logs (one per day, same-day edits, linked visits, review, scope, lists,
//! replay, ETag) and plans (weekly/monthly, items, owner-only edits, the leader's read).
//!
//! Demo tree: 鼓楼 NJ-GL (L0001, M0001–M0006), 玄武 NJ-XW (L0002, M0007–M0012), both under 南京 NJ; admin at HO.

use chrono::{Duration, NaiveDate, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, id_of, ids, seed_customer};

const OPPS: &str = "/api/v1/opportunities";
const LOGS: &str = "/api/v1/worklogs";
const PLANS: &str = "/api/v1/plans";
const NJ: (f64, f64) = (32.05, 118.78);

/// `b` with some fields replaced (a `null` value removes the field).
fn with(mut b: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v.clone();
        }
    }
    b
}

/// Today and nearby dates in Asia/Shanghai.
fn today() -> NaiveDate {
    fieldwork::domain::calendar::local_date(Utc::now())
}

fn days(n: i64) -> NaiveDate {
    today() + Duration::days(n)
}

fn etag(r: &Resp) -> String {
    r.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no ETag on {}", r.text))
        .to_owned()
}

/// A request with one extra header.
async fn with_header(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    header: (&str, &str),
    body: Option<&Value>,
) -> Resp {
    let mut rb = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .header(header.0, header.1);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    TestApp::read(rb.send().await.unwrap()).await
}

/// Checks the conditional GET of a detail view: ETag, 304 on a match (no body), 200 otherwise.
async fn check_conditional_get(app: &TestApp, path: &str, token: &str, prefix: &str) -> String {
    let r = app.get(path, token).await.expect(200);
    let tag = etag(&r);
    assert!(tag.starts_with(prefix), "{tag} starts with {prefix}");
    let again = with_header(app, Method::GET, path, token, ("If-None-Match", &tag), None)
        .await
        .expect(304);
    assert!(again.text.is_empty(), "a 304 has no body");
    assert_eq!(etag(&again), tag);
    let bare = tag.trim_start_matches("W/");
    with_header(app, Method::GET, path, token, ("If-None-Match", bare), None)
        .await
        .expect(304);
    let list = format!("\"x\", {tag}");
    with_header(
        app,
        Method::GET,
        path,
        token,
        ("If-None-Match", &list),
        None,
    )
    .await
    .expect(304);
    let other = with_header(
        app,
        Method::GET,
        path,
        token,
        ("If-None-Match", "W/\"o0-0\""),
        None,
    )
    .await
    .expect(200);
    assert_eq!(other.body, r.body);
    tag
}

async fn org_id(app: &TestApp, admin: &str, code: &str) -> i64 {
    let r = app.get("/api/v1/orgs?limit=200", admin).await.expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == code)
        .map(id_of)
        .unwrap_or_else(|| panic!("org {code}"))
}

/// A closed visit of the token's user at `customer`; returns its id.
async fn visit_done(app: &TestApp, token: &str, customer: i64) -> i64 {
    let b = json!({
        "customer_id": customer,
        "purpose": "回访",
        "phone_time": Utc::now().to_rfc3339(),
        "latitude": NJ.0,
        "longitude": NJ.1,
        "accuracy_m": 10.0,
    });
    let v = app
        .post("/api/v1/visits", Some(token), &b)
        .await
        .expect(201);
    let id = id_of(&v.body);
    app.post(
        &format!("/api/v1/visits/{id}/checkout"),
        Some(token),
        &json!({}),
    )
    .await
    .expect(200);
    id
}

/// Runs `f` on a pooled connection of the test's database.
async fn on_db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut fieldwork::db::DbConn) -> T + Send + 'static,
) -> T {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get_sync().unwrap();
        f(&mut conn)
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// Opportunities
// ---------------------------------------------------------------------------------------------------------

/// A minimal valid create body.
fn opp(customer_id: i64) -> Value {
    json!({
        "customer_id": customer_id,
        "title": "大额存单意向",
        "product_type": "large_cd",
        "estimated_amount": "500000.00",
    })
}

async fn create_opp(app: &TestApp, token: &str, b: &Value) -> Value {
    app.post(OPPS, Some(token), b).await.expect(201).body
}

async fn patch_opp(app: &TestApp, token: &str, id: i64, b: &Value) -> Resp {
    app.patch(&format!("{OPPS}/{id}"), token, b).await
}

/// (from, to, note, actor employee no.) of each history line, oldest first.
async fn history(app: &TestApp, token: &str, id: i64) -> Vec<(Value, String, Value, i64)> {
    let r = app
        .get(&format!("{OPPS}/{id}/history"), token)
        .await
        .expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert!(h["at"].as_str().unwrap().ends_with('Z'), "{h}");
            assert!(h["actor_name"].is_string());
            (
                h["from_stage"].clone(),
                h["to_stage"].as_str().unwrap().to_owned(),
                h["note"].clone(),
                h["actor_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn opportunity_create_round_trips_every_field(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, l1) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("L0001").await,
    );
    let (m1_id, m2_id, m7_id) = (
        app.user_id(&admin, "M0001").await,
        app.user_id(&admin, "M0002").await,
        app.user_id(&admin, "M0007").await,
    );
    let c1 = seed_customer(&app, "M0001", "王先生", Some(NJ)).await;
    let c1b = seed_customer(&app, "M0001", "李女士", Some(NJ)).await;
    let c2 = seed_customer(&app, "M0002", "赵总", Some(NJ)).await;
    let v1 = visit_done(&app, &m1, c1).await;
    let v2 = visit_done(&app, &m2, c2).await;

    let b = json!({
        "customer_id": c1,
        "title": "三个月后资金到期，想买大额存单",
        "product_type": "large_cd",
        "need": "到期资金约 120 万，希望保本",
        "estimated_amount": "1234567.89",
        "probability": 40,
        "expected_close_date": "2027-03-15",
        "stage": "qualified",
        "source": "visit",
        "source_visit_id": v1,
    });
    let r = create_opp(&app, &m1, &b).await;
    let id = id_of(&r);
    assert_eq!(r["customer_id"], c1);
    assert_eq!(r["customer_name"], "王先生");
    assert_eq!(r["manager_id"], m1_id);
    assert_eq!(r["title"], "三个月后资金到期，想买大额存单");
    assert_eq!(r["product_type"], "large_cd");
    assert_eq!(r["need"], "到期资金约 120 万，希望保本");
    assert_eq!(r["estimated_amount"], "1234567.89");
    assert_eq!(r["probability"], 40);
    assert_eq!(r["expected_close_date"], "2027-03-15");
    assert_eq!(r["stage"], "qualified");
    assert!(r["lost_reason"].is_null() && r["landed_amount"].is_null());
    assert_eq!(r["source"], "visit");
    assert_eq!(r["source_visit_id"], v1);
    assert!(r["referral"].is_null());
    assert!(r["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["created_at"], r["updated_at"]);
    let d = app.get(&format!("{OPPS}/{id}"), &m1).await.expect(200).body;
    assert_eq!(d, r, "the detail view is what the create answered");
    // The creation is the first history line, and a line in the customer's archive.
    assert_eq!(
        history(&app, &m1, id).await,
        [(Value::Null, "qualified".into(), Value::Null, m1_id)]
    );
    let kinds = on_db(&app, move |c| {
        use fieldwork::db::schema::customer_events as e;
        e::table
            .filter(e::ref_id.eq(id))
            .filter(e::kind.like("opportunity%"))
            .filter(e::customer_id.eq(c1))
            .select(e::kind)
            .load::<String>(c)
            .unwrap()
    })
    .await;
    assert_eq!(kinds, ["opportunity"]);

    // Amounts are exact to the fen; defaults: stage lead, probability by stage, source from what is given.
    for (sent, shown) in [
        ("100", "100.00"),
        ("0.5", "0.50"),
        ("0.01", "0.01"),
        ("0", "0.00"),
        ("99999999999.99", "99999999999.99"),
        ("1000000000000", "1000000000000.00"),
    ] {
        let r = create_opp(
            &app,
            &m1,
            &with(opp(c1), json!({ "estimated_amount": sent })),
        )
        .await;
        assert_eq!(r["estimated_amount"], shown, "{sent}");
        assert_eq!(r["stage"], "lead");
        assert_eq!(r["probability"], 10);
        assert_eq!(r["source"], "other");
        assert!(r["need"].is_null() && r["expected_close_date"].is_null());
    }
    let r = create_opp(
        &app,
        &m1,
        &with(
            opp(c1),
            json!({ "referral": "老客户张先生介绍", "stage": "proposal" }),
        ),
    )
    .await;
    assert_eq!(
        (&r["source"], &r["referral"], &r["probability"]),
        (&json!("referral"), &json!("老客户张先生介绍"), &json!(50))
    );
    let r = create_opp(&app, &m1, &with(opp(c1), json!({ "source_visit_id": v1 }))).await;
    assert_eq!(r["source"], "visit", "a visit id alone means source visit");

    // The source visit must be in scope and about the same customer.
    let bad = [
        (json!({ "source_visit_id": v2 }), c1),
        (json!({ "source_visit_id": v1 }), c1b),
        (json!({ "source_visit_id": 999_999 }), c1),
    ];
    for (change, customer) in bad {
        app.post(OPPS, Some(&m1), &with(opp(customer), change))
            .await
            .field_error(422, "source_visit_id", "not_found");
    }
    for (change, field, code) in [
        (json!({ "source": "visit" }), "source_visit_id", "required"),
        (json!({ "source": "referral" }), "referral", "required"),
        (
            json!({ "source": "other", "referral": "某人" }),
            "referral",
            "not_allowed",
        ),
        (
            json!({ "source": "referral", "referral": "某人", "source_visit_id": v1 }),
            "source_visit_id",
            "not_allowed",
        ),
    ] {
        app.post(OPPS, Some(&m1), &with(opp(c1), change))
            .await
            .field_error(422, field, code);
    }

    // A leader logs one for a manager of the subtree; that manager is then responsible and sees it.
    let r = create_opp(
        &app,
        &l1,
        &with(
            opp(c2),
            json!({ "manager_id": m2_id, "source_visit_id": v2 }),
        ),
    )
    .await;
    assert_eq!(r["manager_id"], m2_id);
    assert_eq!(r["customer_name"], "赵总");
    assert_eq!(ids(&app.get(OPPS, &m2).await.expect(200).body), [id_of(&r)]);
    // Not for a manager who does not see the customer (the opportunity would show it to them).
    app.post(
        OPPS,
        Some(&l1),
        &with(opp(c1), json!({ "manager_id": m2_id })),
    )
    .await
    .field_error(422, "manager_id", "not_allowed");
    // Not for someone outside the subtree; a manager names nobody but themself.
    app.post(
        OPPS,
        Some(&l1),
        &with(opp(c2), json!({ "manager_id": m7_id })),
    )
    .await
    .field_error(422, "manager_id", "not_found");
    app.post(
        OPPS,
        Some(&m1),
        &with(opp(c1), json!({ "manager_id": m2_id })),
    )
    .await
    .field_error(422, "manager_id", "not_found");
    let own = create_opp(&app, &m1, &with(opp(c1), json!({ "manager_id": m1_id }))).await;
    assert_eq!(own["manager_id"], m1_id);
    // Only customers in scope.
    app.post(OPPS, Some(&m1), &opp(c2))
        .await
        .field_error(422, "customer_id", "not_found");
}

async fn opportunity_stages_and_history(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, l1) = (app.login("M0001").await, app.login("L0001").await);
    let (m1_id, l1_id) = (
        app.user_id(&admin, "M0001").await,
        app.user_id(&admin, "L0001").await,
    );
    let c = seed_customer(&app, "M0001", "钱先生", Some(NJ)).await;
    let o = create_opp(&app, &m1, &opp(c)).await;
    let id = id_of(&o);
    assert_eq!(
        (&o["stage"], &o["probability"]),
        (&json!("lead"), &json!(10))
    );

    // Forward through every open stage; the probability follows the stage unless given.
    let r = patch_opp(&app, &m1, id, &json!({ "stage": "qualified" }))
        .await
        .expect(200)
        .body;
    assert_eq!(
        (&r["stage"], &r["probability"]),
        (&json!("qualified"), &json!(30))
    );
    let r = patch_opp(
        &app,
        &m1,
        id,
        &json!({ "stage": "proposal", "note": "已提交方案" }),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(
        (&r["stage"], &r["probability"]),
        (&json!("proposal"), &json!(50))
    );
    let r = patch_opp(
        &app,
        &l1,
        id,
        &json!({ "stage": "negotiation", "probability": 80 }),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(
        (&r["stage"], &r["probability"]),
        (&json!("negotiation"), &json!(80))
    );

    // Closing needs its field, and only its own field.
    let cases = [
        (json!({ "stage": "lost" }), "lost_reason", "required"),
        (json!({ "stage": "won" }), "landed_amount", "required"),
        (
            json!({ "landed_amount": "1.00" }),
            "landed_amount",
            "not_allowed",
        ),
        (
            json!({ "lost_reason": "太贵" }),
            "lost_reason",
            "not_allowed",
        ),
        (
            json!({ "stage": "won", "landed_amount": "1.00", "lost_reason": "太贵" }),
            "lost_reason",
            "not_allowed",
        ),
        (
            json!({ "stage": "lost", "lost_reason": "太贵", "landed_amount": "1.00" }),
            "landed_amount",
            "not_allowed",
        ),
        (json!({ "note": "只是备注" }), "note", "not_allowed"),
        (
            json!({ "stage": "negotiation", "note": "没变" }),
            "note",
            "not_allowed",
        ),
    ];
    for (b, field, code) in cases {
        patch_opp(&app, &m1, id, &b)
            .await
            .field_error(422, field, code);
    }
    // Re-stating the stage changes nothing (no history line, same version).
    let before = app.get(&format!("{OPPS}/{id}"), &m1).await.expect(200);
    let same = patch_opp(&app, &m1, id, &json!({ "stage": "negotiation" }))
        .await
        .expect(200);
    assert_eq!(same.body, before.body);
    assert_eq!(etag(&same), etag(&before));
    // Open stages move back and skip.
    patch_opp(&app, &m1, id, &json!({ "stage": "qualified" }))
        .await
        .expect(200);
    let won = patch_opp(
        &app,
        &m1,
        id,
        &json!({ "stage": "won", "landed_amount": "1180000.05", "note": "签约落地" }),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(won["stage"], "won");
    assert_eq!(won["landed_amount"], "1180000.05");
    assert_eq!(won["probability"], 100);
    assert!(won["lost_reason"].is_null());

    // Won is final: no way out, and nothing else changes.
    for to in ["lead", "qualified", "proposal", "negotiation"] {
        patch_opp(&app, &m1, id, &json!({ "stage": to }))
            .await
            .field_error(422, "stage", "invalid_transition");
    }
    patch_opp(
        &app,
        &l1,
        id,
        &json!({ "stage": "lost", "lost_reason": "搞错了" }),
    )
    .await
    .field_error(422, "stage", "invalid_transition");
    for b in [
        json!({ "title": "改个名" }),
        json!({ "landed_amount": "9999999.00" }),
        json!({ "stage": "won", "landed_amount": "1.00" }),
        json!({ "probability": 90 }),
    ] {
        patch_opp(&app, &l1, id, &b)
            .await
            .problem(409, "not_editable");
    }
    patch_opp(&app, &m1, id, &json!({ "stage": "won" }))
        .await
        .expect(200);
    let d = app.get(&format!("{OPPS}/{id}"), &m1).await.expect(200).body;
    assert_eq!(d["landed_amount"], "1180000.05");

    // Every change is kept, oldest first, with who and the note.
    let h = history(&app, &m1, id).await;
    let s = |v: &str| json!(v);
    assert_eq!(
        h,
        [
            (Value::Null, "lead".into(), Value::Null, m1_id),
            (s("lead"), "qualified".into(), Value::Null, m1_id),
            (s("qualified"), "proposal".into(), s("已提交方案"), m1_id),
            (s("proposal"), "negotiation".into(), Value::Null, l1_id),
            (s("negotiation"), "qualified".into(), Value::Null, m1_id),
            (s("qualified"), "won".into(), s("签约落地"), m1_id),
        ]
    );
    // Paged.
    let p1 = app
        .get(&format!("{OPPS}/{id}/history?limit=4"), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(p1["items"].as_array().unwrap().len(), 4);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&format!("{OPPS}/{id}/history?limit=4&cursor={cursor}"), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(p2["items"][1]["to_stage"], "won");
    assert_eq!(p2["items"].as_array().unwrap().len(), 2);
    assert!(p2["next_cursor"].is_null());
    app.get(&format!("{OPPS}/{id}/history?limit=0"), &m1)
        .await
        .field_error(400, "limit", "out_of_range");
    // The archive has a line per stage change.
    let kinds = on_db(&app, move |c| {
        use fieldwork::db::schema::customer_events as e;
        e::table
            .filter(e::ref_id.eq(id))
            .filter(e::kind.like("opportunity%"))
            .order(e::id.asc())
            .select(e::kind)
            .load::<String>(c)
            .unwrap()
    })
    .await;
    assert_eq!(kinds.len(), 6);
    assert_eq!(kinds[0], "opportunity");
    assert!(kinds[1..].iter().all(|k| k == "opportunity_stage"));

    // Lost with its reason, then final too.
    let o2 = id_of(&create_opp(&app, &m1, &opp(c)).await);
    let lost = patch_opp(
        &app,
        &m1,
        o2,
        &json!({ "stage": "lost", "lost_reason": "客户选择了他行产品" }),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(lost["lost_reason"], "客户选择了他行产品");
    assert_eq!(lost["probability"], 0);
    assert!(lost["landed_amount"].is_null());
    patch_opp(
        &app,
        &m1,
        o2,
        &json!({ "stage": "won", "landed_amount": "1.00" }),
    )
    .await
    .field_error(422, "stage", "invalid_transition");
    assert_eq!(history(&app, &m1, o2).await.len(), 2);

    // Created closed: won with its landed amount, lost with its reason.
    let w = create_opp(
        &app,
        &m1,
        &with(
            opp(c),
            json!({ "stage": "won", "landed_amount": "300000.50" }),
        ),
    )
    .await;
    assert_eq!(
        (&w["landed_amount"], &w["probability"]),
        (&json!("300000.50"), &json!(100))
    );
    assert_eq!(
        history(&app, &m1, id_of(&w)).await,
        [(Value::Null, "won".into(), Value::Null, m1_id)]
    );
    app.post(OPPS, Some(&m1), &with(opp(c), json!({ "stage": "won" })))
        .await
        .field_error(422, "landed_amount", "required");
    app.post(OPPS, Some(&m1), &with(opp(c), json!({ "stage": "lost" })))
        .await
        .field_error(422, "lost_reason", "required");
    app.post(
        OPPS,
        Some(&m1),
        &with(opp(c), json!({ "lost_reason": "x", "landed_amount": "1" })),
    )
    .await
    .field_error(422, "lost_reason", "not_allowed");
    let l = create_opp(
        &app,
        &m1,
        &with(
            opp(c),
            json!({ "stage": "lost", "lost_reason": "利率不合适" }),
        ),
    )
    .await;
    assert_eq!(l["lost_reason"], "利率不合适");

    // Open fields change and clear with null.
    let o3 = id_of(
        &create_opp(
            &app,
            &m1,
            &with(
                opp(c),
                json!({ "need": "想买", "expected_close_date": "2027-01-01" }),
            ),
        )
        .await,
    );
    let r = patch_opp(
        &app,
        &m1,
        o3,
        &json!({ "need": null, "expected_close_date": null, "title": "新标题", "estimated_amount": "0.07", "product_type": "fund" }),
    )
    .await
    .expect(200)
    .body;
    assert!(r["need"].is_null() && r["expected_close_date"].is_null());
    assert_eq!(r["title"], "新标题");
    assert_eq!(r["estimated_amount"], "0.07");
    assert_eq!(r["product_type"], "fund");
    assert_eq!(r["stage"], "lead", "no stage change");
    assert_eq!(history(&app, &m1, o3).await.len(), 1);
}

async fn opportunities_follow_the_callers_scope(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, m7) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("M0007").await,
    );
    let (l1, l2) = (app.login("L0001").await, app.login("L0002").await);
    let (m1_id, m2_id) = (
        app.user_id(&admin, "M0001").await,
        app.user_id(&admin, "M0002").await,
    );
    let c1 = seed_customer(&app, "M0001", "一号客户", Some(NJ)).await;
    let c2 = seed_customer(&app, "M0002", "二号客户", Some(NJ)).await;
    let c7 = seed_customer(&app, "M0007", "七号客户", Some(NJ)).await;
    let o1 = id_of(&create_opp(&app, &m1, &opp(c1)).await);
    let o1b = id_of(&create_opp(&app, &m1, &with(opp(c1), json!({ "stage": "proposal" }))).await);
    let o2 = id_of(&create_opp(&app, &m2, &opp(c2)).await);
    let o7 = id_of(&create_opp(&app, &m7, &opp(c7)).await);

    // Detail, history and update: another manager's is 404; another subtree's leader 404.
    for (token, id, status) in [
        (&m1, o1, 200),
        (&m2, o1, 404),
        (&m7, o1, 404),
        (&l1, o1, 200),
        (&l2, o1, 404),
        (&admin, o1, 200),
        (&l1, o7, 404),
        (&l2, o7, 200),
        (&m1, 999_999, 404),
    ] {
        let r = app.get(&format!("{OPPS}/{id}"), token).await;
        let h = app.get(&format!("{OPPS}/{id}/history"), token).await;
        if status == 404 {
            r.problem(404, "opportunity_not_found");
            h.problem(404, "opportunity_not_found");
            patch_opp(&app, token, id, &json!({ "title": "x" }))
                .await
                .problem(404, "opportunity_not_found");
        } else {
            r.expect(200);
            h.expect(200);
        }
    }
    // A leader of the subtree changes it; admin too.
    let r = patch_opp(&app, &l1, o1, &json!({ "stage": "qualified" }))
        .await
        .expect(200);
    assert_eq!(r.body["stage"], "qualified");
    patch_opp(&app, &admin, o1, &json!({ "probability": 35 }))
        .await
        .expect(200);

    // Team customers: a team member sees the opportunities about them but does not change them.
    let team = app
        .post(
            "/api/v1/teams",
            Some(&l1),
            &json!({ "name": "鼓楼一组", "members": [
                { "user_id": m1_id, "role": "relationship_manager" },
                { "user_id": m2_id, "role": "business_manager" }
            ]}),
        )
        .await
        .expect(201);
    let team_id = id_of(&team.body);
    on_db(&app, move |c| {
        use fieldwork::db::schema::customers;
        diesel::update(customers::table.find(c1))
            .set(customers::team_id.eq(Some(team_id)))
            .execute(c)
            .unwrap();
    })
    .await;
    app.get(&format!("{OPPS}/{o1}"), &m2).await.expect(200);
    patch_opp(&app, &m2, o1, &json!({ "title": "x" }))
        .await
        .problem(403, "forbidden");
    assert_eq!(
        ids(&app
            .get(&format!("{OPPS}?customer_id={c1}"), &m2)
            .await
            .expect(200)
            .body),
        [o1b, o1]
    );
    // A manager's own list stays their own.
    assert_eq!(ids(&app.get(OPPS, &m2).await.expect(200).body), [o2]);
    assert_eq!(ids(&app.get(OPPS, &m1).await.body), [o1b, o1]);
    assert!(ids(&app.get(&format!("{OPPS}?customer_id={c7}"), &m1).await.body).is_empty());

    // Leaders: their subtree, with filters.
    assert_eq!(
        ids(&app.get(OPPS, &l1).await.expect(200).body),
        [o2, o1b, o1]
    );
    assert_eq!(ids(&app.get(OPPS, &l2).await.body), [o7]);
    assert_eq!(ids(&app.get(OPPS, &admin).await.body), [o7, o2, o1b, o1]);
    assert_eq!(
        ids(&app
            .get(&format!("{OPPS}?manager_id={m2_id}"), &l1)
            .await
            .body),
        [o2]
    );
    assert_eq!(
        ids(&app.get(&format!("{OPPS}?stage=proposal"), &l1).await.body),
        [o1b]
    );
    assert_eq!(
        ids(&app
            .get(&format!("{OPPS}?stage=lead&customer_id={c2}"), &l1)
            .await
            .body),
        [o2]
    );
    let gl = org_id(&app, &admin, "NJ-GL").await;
    let xw = org_id(&app, &admin, "NJ-XW").await;
    assert_eq!(
        ids(&app.get(&format!("{OPPS}?org_id={xw}"), &admin).await.body),
        [o7]
    );
    assert_eq!(
        ids(&app.get(&format!("{OPPS}?org_id={gl}"), &l1).await.body).len(),
        3
    );
    app.get(&format!("{OPPS}?org_id={xw}"), &l1)
        .await
        .field_error(400, "org_id", "not_found");
    app.get(&format!("{OPPS}?org_id={gl}"), &m1)
        .await
        .problem(403, "forbidden");
    app.get(&format!("{OPPS}?stage=closed"), &l1)
        .await
        .field_error(400, "stage", "invalid_value");
    app.get(&format!("{OPPS}?sort=asc"), &l1)
        .await
        .field_error(400, "sort", "unknown_field");
    // Cursor paging, newest first.
    let p1 = app
        .get(&format!("{OPPS}?limit=2"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&p1), [o7, o2]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&format!("{OPPS}?limit=2&cursor={cursor}"), &admin)
        .await
        .body;
    assert_eq!(ids(&p2), [o1b, o1]);
    assert!(p2["next_cursor"].is_null());
    app.get(&format!("{OPPS}?cursor=junk"), &admin)
        .await
        .field_error(400, "cursor", "invalid_format");
}

/// One stage's line of a summary: (count, estimated, landed).
fn stage_of(summary: &Value, stage: &str) -> (i64, String, String) {
    let s = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap_or_else(|| panic!("{stage} in {summary}"));
    (
        s["count"].as_i64().unwrap(),
        s["estimated_amount"].as_str().unwrap().to_owned(),
        s["landed_amount"].as_str().unwrap().to_owned(),
    )
}

fn line(count: i64, estimated: &str, landed: &str) -> (i64, String, String) {
    (count, estimated.to_owned(), landed.to_owned())
}

async fn pipeline_summary_counts_and_sums_exactly(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, m7) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("M0007").await,
    );
    let (l1, l2) = (app.login("L0001").await, app.login("L0002").await);
    let c1 = seed_customer(&app, "M0001", "一号", Some(NJ)).await;
    let c2 = seed_customer(&app, "M0002", "二号", Some(NJ)).await;
    let c7 = seed_customer(&app, "M0007", "七号", Some(NJ)).await;
    let mk = |c: i64, amount: &str, extra: Value| {
        with(with(opp(c), json!({ "estimated_amount": amount })), extra)
    };
    for b in [
        mk(c1, "0.10", json!({})),
        mk(c1, "0.20", json!({})),
        mk(c1, "1234567.89", json!({ "stage": "proposal" })),
        mk(
            c1,
            "500000.00",
            json!({ "stage": "won", "landed_amount": "480000.01" }),
        ),
        mk(c2, "10.05", json!({ "stage": "qualified" })),
        mk(
            c2,
            "1.00",
            json!({ "stage": "won", "landed_amount": "2.50" }),
        ),
        mk(c7, "7777.77", json!({ "stage": "negotiation" })),
    ] {
        let token = match b["customer_id"].as_i64().unwrap() {
            c if c == c1 => &m1,
            c if c == c2 => &m2,
            _ => &m7,
        };
        create_opp(&app, token, &b).await;
    }
    // One lost opportunity of M0001's, created 40 days ago.
    let old = create_opp(
        &app,
        &m1,
        &mk(
            c1,
            "99.99",
            json!({ "stage": "lost", "lost_reason": "客户资金另有安排" }),
        ),
    )
    .await;
    let old_id = id_of(&old);
    on_db(&app, move |c| {
        use fieldwork::db::schema::opportunities as o;
        let t = Utc::now().naive_utc() - Duration::days(40);
        diesel::update(o::table.find(old_id))
            .set(o::created_at.eq(t))
            .execute(c)
            .unwrap();
    })
    .await;

    const SUMMARY: &str = "/api/v1/opportunities/summary";
    // A manager's own pipeline (the default): all six stages in order, zeros included.
    let s = app.get(SUMMARY, &m1).await.expect(200).body;
    assert_eq!(s["scope"], "me");
    let order: Vec<_> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "lead",
            "qualified",
            "proposal",
            "negotiation",
            "won",
            "lost"
        ]
    );
    assert_eq!(stage_of(&s, "lead"), line(2, "0.30", "0.00"));
    assert_eq!(stage_of(&s, "qualified"), line(0, "0.00", "0.00"));
    assert_eq!(stage_of(&s, "proposal"), line(1, "1234567.89", "0.00"));
    assert_eq!(stage_of(&s, "negotiation"), line(0, "0.00", "0.00"));
    assert_eq!(stage_of(&s, "won"), line(1, "500000.00", "480000.01"));
    assert_eq!(stage_of(&s, "lost"), line(1, "99.99", "0.00"));

    // A leader's subtree (default their org): both managers of 鼓楼, not 玄武.
    let s = app.get(SUMMARY, &l1).await.expect(200).body;
    let gl = org_id(&app, &admin, "NJ-GL").await;
    assert_eq!((&s["scope"], &s["org_id"]), (&json!("org"), &json!(gl)));
    assert_eq!(stage_of(&s, "lead"), line(2, "0.30", "0.00"));
    assert_eq!(stage_of(&s, "qualified"), line(1, "10.05", "0.00"));
    assert_eq!(stage_of(&s, "negotiation"), line(0, "0.00", "0.00"));
    assert_eq!(stage_of(&s, "won"), line(2, "500001.00", "480002.51"));
    let s = app.get(SUMMARY, &l2).await.expect(200).body;
    assert_eq!(stage_of(&s, "negotiation"), line(1, "7777.77", "0.00"));
    assert_eq!(stage_of(&s, "lead"), line(0, "0.00", "0.00"));
    // Admin: the whole bank by default, or any org below.
    let nj = org_id(&app, &admin, "NJ").await;
    let xw = org_id(&app, &admin, "NJ-XW").await;
    let all = app.get(SUMMARY, &admin).await.expect(200).body;
    let branch = app
        .get(&format!("{SUMMARY}?org_id={nj}"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(all["stages"], branch["stages"]);
    assert_eq!(stage_of(&all, "won"), line(2, "500001.00", "480002.51"));
    assert_eq!(stage_of(&all, "negotiation"), line(1, "7777.77", "0.00"));
    let s = app
        .get(&format!("{SUMMARY}?scope=org&org_id={xw}"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(stage_of(&s, "won"), line(0, "0.00", "0.00"));
    // A leader's own (`me`) pipeline is theirs alone.
    let s = app
        .get(&format!("{SUMMARY}?scope=me"), &l1)
        .await
        .expect(200)
        .body;
    assert!(
        s["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["count"] == 0)
    );

    // Period (Asia/Shanghai dates of creation, inclusive).
    let recent = format!("{SUMMARY}?from={}&to={}", days(-30), today());
    let s = app.get(&recent, &m1).await.expect(200).body;
    assert_eq!(s["from"], days(-30).to_string());
    assert_eq!(stage_of(&s, "lost"), line(0, "0.00", "0.00"));
    assert_eq!(stage_of(&s, "lead"), line(2, "0.30", "0.00"));
    let s = app
        .get(&format!("{SUMMARY}?to={}", days(-30)), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(stage_of(&s, "lost"), line(1, "99.99", "0.00"));
    assert_eq!(stage_of(&s, "lead"), line(0, "0.00", "0.00"));
    let s = app
        .get(&format!("{SUMMARY}?from={}", days(1)), &l1)
        .await
        .expect(200)
        .body;
    assert!(
        s["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["count"] == 0)
    );
    let s = app
        .get(&format!("{SUMMARY}?from={}&to={}", today(), today()), &l1)
        .await
        .body;
    assert_eq!(stage_of(&s, "won"), line(2, "500001.00", "480002.51"));

    // Who may ask what.
    app.get(&format!("{SUMMARY}?scope=org"), &m1)
        .await
        .problem(403, "forbidden");
    app.get(&format!("{SUMMARY}?org_id={gl}"), &m1)
        .await
        .problem(403, "forbidden");
    app.get(&format!("{SUMMARY}?org_id={xw}"), &l1)
        .await
        .field_error(400, "org_id", "not_found");
    app.get(&format!("{SUMMARY}?org_id={nj}"), &l1)
        .await
        .field_error(400, "org_id", "not_found");
    app.get(&format!("{SUMMARY}?scope=me&org_id={gl}"), &l1)
        .await
        .field_error(400, "org_id", "not_allowed");
    app.get(&format!("{SUMMARY}?scope=team"), &l1)
        .await
        .field_error(400, "scope", "invalid_value");
    app.get(&format!("{SUMMARY}?from={}&to={}", today(), days(-1)), &l1)
        .await
        .field_error(400, "to", "out_of_range");
    app.get(&format!("{SUMMARY}?from=2026-02-30"), &l1)
        .await
        .field_error(400, "from", "invalid_value");
}

async fn opportunity_validation_names_every_field(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let b = opp(c);
    let long = |n: usize| "商".repeat(n);
    let cases = [
        (
            json!({ "estimated_amount": "1.234" }),
            "estimated_amount",
            "too_many_decimals",
        ),
        (
            json!({ "estimated_amount": "0.001" }),
            "estimated_amount",
            "too_many_decimals",
        ),
        (
            json!({ "estimated_amount": "-1.00" }),
            "estimated_amount",
            "negative",
        ),
        (
            json!({ "estimated_amount": "abc" }),
            "estimated_amount",
            "invalid_format",
        ),
        (
            json!({ "estimated_amount": "" }),
            "estimated_amount",
            "invalid_format",
        ),
        (
            json!({ "estimated_amount": "1e5" }),
            "estimated_amount",
            "invalid_format",
        ),
        (
            json!({ "estimated_amount": 100 }),
            "estimated_amount",
            "invalid_type",
        ),
        (
            json!({ "estimated_amount": "1000000000000.01" }),
            "estimated_amount",
            "out_of_range",
        ),
        (
            json!({ "stage": "won", "landed_amount": "1.001" }),
            "landed_amount",
            "too_many_decimals",
        ),
        (
            json!({ "stage": "won", "landed_amount": "-5" }),
            "landed_amount",
            "negative",
        ),
        (json!({ "probability": 101 }), "probability", "out_of_range"),
        (json!({ "probability": -1 }), "probability", "out_of_range"),
        (
            json!({ "probability": "50" }),
            "probability",
            "invalid_type",
        ),
        (
            json!({ "probability": 50.5 }),
            "probability",
            "invalid_type",
        ),
        (
            json!({ "expected_close_date": "2026-02-30" }),
            "expected_close_date",
            "invalid_value",
        ),
        (
            json!({ "expected_close_date": "next week" }),
            "expected_close_date",
            "invalid_value",
        ),
        (json!({ "stage": "closed" }), "stage", "invalid_value"),
        (json!({ "stage": "Lead" }), "stage", "invalid_value"),
        (json!({ "source": "phone" }), "source", "invalid_value"),
        (json!({ "title": "" }), "title", "required"),
        (json!({ "title": "  " }), "title", "required"),
        (json!({ "title": long(201) }), "title", "too_long"),
        (json!({ "title": "a\u{0007}b" }), "title", "invalid_format"),
        (json!({ "need": long(2001) }), "need", "too_long"),
        (
            json!({ "stage": "lost", "lost_reason": long(501) }),
            "lost_reason",
            "too_long",
        ),
        (json!({ "referral": long(201) }), "referral", "too_long"),
        (
            json!({ "product_type": "car" }),
            "product_type",
            "invalid_value",
        ),
        (
            json!({ "product_type": long(33) }),
            "product_type",
            "too_long",
        ),
        (json!({ "product_type": "" }), "product_type", "required"),
        (
            json!({ "customer_id": 999_999 }),
            "customer_id",
            "not_found",
        ),
        (json!({ "customer_id": "x" }), "customer_id", "invalid_type"),
        (json!({ "customer_id": null }), "customer_id", "required"),
        (json!({ "title": null }), "title", "required"),
        (
            json!({ "estimated_amount": null }),
            "estimated_amount",
            "required",
        ),
        (json!({ "owner": "M0002" }), "owner", "unknown_field"),
        (json!({ "client_id": "" }), "client_id", "required"),
        (
            json!({ "client_id": "k".repeat(129) }),
            "client_id",
            "too_long",
        ),
        (
            json!({ "source_visit_id": "v1" }),
            "source_visit_id",
            "invalid_type",
        ),
    ];
    for (change, field, code) in cases {
        let body = with(b.clone(), change.clone());
        let r = app.post(OPPS, Some(&m1), &body).await;
        assert_eq!(r.status.as_u16(), 422, "{change} → {}", r.text);
        r.field_error(422, field, code);
    }
    // Several bad fields are named at once.
    let r = app
        .post(
            OPPS,
            Some(&m1),
            &with(
                b.clone(),
                json!({ "title": "", "probability": 101, "estimated_amount": "1.001" }),
            ),
        )
        .await
        .field_error(422, "title", "required");
    let fields: Vec<_> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"probability") && fields.contains(&"estimated_amount"),
        "{r}"
    );
    // Not JSON at all.
    let raw = app
        .client
        .post(format!("{}{OPPS}", app.address))
        .bearer_auth(&m1)
        .header("content-type", "application/json")
        .body("{\"title\":")
        .send()
        .await
        .unwrap();
    TestApp::read(raw).await.problem(400, "malformed_json");
    // Nothing was created by any of these.
    assert!(ids(&app.get(OPPS, &m1).await.expect(200).body).is_empty());

    // The same checks on PATCH.
    let id = id_of(&create_opp(&app, &m1, &b).await);
    for (change, field, code) in [
        (
            json!({ "estimated_amount": "1.234" }),
            "estimated_amount",
            "too_many_decimals",
        ),
        (
            json!({ "estimated_amount": "-0.01" }),
            "estimated_amount",
            "negative",
        ),
        (json!({ "probability": 200 }), "probability", "out_of_range"),
        (json!({ "stage": "closed" }), "stage", "invalid_value"),
        (json!({ "title": "" }), "title", "required"),
        (json!({ "title": long(201) }), "title", "too_long"),
        (json!({ "need": long(2001) }), "need", "too_long"),
        (
            json!({ "note": long(501), "stage": "qualified" }),
            "note",
            "too_long",
        ),
        (
            json!({ "product_type": "car" }),
            "product_type",
            "invalid_value",
        ),
        (
            json!({ "expected_close_date": "2026-13-01" }),
            "expected_close_date",
            "invalid_value",
        ),
        (json!({ "customer_id": c }), "customer_id", "unknown_field"),
        (json!({ "manager_id": 1 }), "manager_id", "unknown_field"),
    ] {
        patch_opp(&app, &m1, id, &change)
            .await
            .field_error(422, field, code);
    }
    let d = app.get(&format!("{OPPS}/{id}"), &m1).await.expect(200).body;
    assert_eq!(d["estimated_amount"], "500000.00");
    assert_eq!(d["title"], "大额存单意向");
    assert_eq!(history(&app, &m1, id).await.len(), 1);
    app.get(&format!("{OPPS}/abc"), &m1)
        .await
        .field_error(400, "id", "invalid_format");
    app.req(Method::GET, OPPS, None, None)
        .await
        .problem(401, "missing_token");
}

async fn opportunity_create_replays_and_etag(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "周先生", Some(NJ)).await;
    // client_id in the body.
    let b = with(opp(c), json!({ "client_id": "phone-opp-0001" }));
    let first = app.post(OPPS, Some(&m1), &b).await.expect(201);
    let replay = app.post(OPPS, Some(&m1), &b).await.expect(201);
    assert_eq!(replay.text, first.text);
    app.post(
        OPPS,
        Some(&m1),
        &with(b.clone(), json!({ "title": "另一个" })),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    // Idempotency-Key header.
    let b2 = opp(c);
    let k1 = with_header(
        &app,
        Method::POST,
        OPPS,
        &m1,
        ("Idempotency-Key", "opp-k-1"),
        Some(&b2),
    )
    .await
    .expect(201);
    let k2 = with_header(
        &app,
        Method::POST,
        OPPS,
        &m1,
        ("Idempotency-Key", "opp-k-1"),
        Some(&b2),
    )
    .await
    .expect(201);
    assert_eq!(k1.text, k2.text);
    let other = with(b2.clone(), json!({ "estimated_amount": "1.00" }));
    with_header(
        &app,
        Method::POST,
        OPPS,
        &m1,
        ("Idempotency-Key", "opp-k-1"),
        Some(&other),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    // Two opportunities, each with one history line.
    let (a, bb) = (id_of(&first.body), id_of(&k1.body));
    assert_eq!(ids(&app.get(OPPS, &m1).await.body), [bb, a]);
    let n: i64 = on_db(&app, |c| {
        use fieldwork::db::schema::opportunity_history as h;
        h::table.count().get_result(c).unwrap()
    })
    .await;
    assert_eq!(n, 2);

    // ETag: 304 while current; a change gives a new tag, answered by the PATCH itself.
    let path = format!("{OPPS}/{a}");
    let t1 = check_conditional_get(&app, &path, &m1, &format!("W/\"o{a}-")).await;
    let p = patch_opp(&app, &m1, a, &json!({ "stage": "qualified" }))
        .await
        .expect(200);
    let t2 = etag(&p);
    assert_ne!(t1, t2);
    let r = with_header(&app, Method::GET, &path, &m1, ("If-None-Match", &t1), None)
        .await
        .expect(200);
    assert_eq!(etag(&r), t2);
    assert_eq!(r.body, p.body);
    // The detail shows the customer's name, so renaming the customer changes the tag too.
    app.patch(
        &format!("/api/v1/customers/{c}"),
        &m1,
        &json!({ "name": "周总" }),
    )
    .await
    .expect(200);
    let r = with_header(&app, Method::GET, &path, &m1, ("If-None-Match", &t2), None)
        .await
        .expect(200);
    assert_eq!(r.body["customer_name"], "周总");
    assert_ne!(etag(&r), t2);
    // Out of scope stays 404 whatever the tag.
    let m2 = app.login("M0002").await;
    with_header(&app, Method::GET, &path, &m2, ("If-None-Match", "*"), None)
        .await
        .problem(404, "opportunity_not_found");
}

// ---------------------------------------------------------------------------------------------------------
// Work logs
// ---------------------------------------------------------------------------------------------------------

fn log_body(date: NaiveDate, content: &str, visits: &[i64]) -> Value {
    json!({ "log_date": date.to_string(), "content": content, "visit_ids": visits })
}

async fn worklog_one_per_day_editable_that_day(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, l1) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("L0001").await,
    );
    let m1_id = app.user_id(&admin, "M0001").await;
    let c1 = seed_customer(&app, "M0001", "一号", Some(NJ)).await;
    let c2 = seed_customer(&app, "M0002", "二号", Some(NJ)).await;
    let (v1, v1b) = (
        visit_done(&app, &m1, c1).await,
        visit_done(&app, &m1, c1).await,
    );
    let v2 = visit_done(&app, &m2, c2).await;

    let w = app
        .post(
            LOGS,
            Some(&m1),
            &log_body(today(), "拜访两户，发现一笔到期资金", &[v1, v1b, v1]),
        )
        .await
        .expect(201)
        .body;
    let id = id_of(&w);
    assert_eq!(w["manager_id"], m1_id);
    assert_eq!(w["log_date"], today().to_string());
    assert_eq!(w["content"], "拜访两户，发现一笔到期资金");
    assert_eq!(
        w["visit_ids"],
        json!([v1, v1b]),
        "duplicates dropped, order kept"
    );
    assert!(w["review"].is_null());
    assert_eq!(
        app.get(&format!("{LOGS}/{id}"), &m1).await.expect(200).body,
        w
    );
    // One per manager per date.
    app.post(LOGS, Some(&m1), &log_body(today(), "第二篇", &[]))
        .await
        .problem(409, "worklog_exists");
    // Others have their own day.
    app.post(LOGS, Some(&m2), &log_body(today(), "二号的日志", &[v2]))
        .await
        .expect(201);
    // Linked visits must be the author's own.
    for bad in [vec![v2], vec![v1, v2], vec![999_999]] {
        app.post(LOGS, Some(&m1), &log_body(days(-2), "x", &bad))
            .await
            .field_error(422, "visit_ids", "not_found");
    }
    // Not in the future (Asia/Shanghai).
    app.post(LOGS, Some(&m1), &log_body(days(1), "明天的", &[]))
        .await
        .field_error(422, "log_date", "in_future");

    // Editable the same day: content and visits.
    let r = app
        .patch(
            &format!("{LOGS}/{id}"),
            &m1,
            &json!({ "content": "补充：客户同意下周面谈", "visit_ids": [v1b] }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["content"], "补充：客户同意下周面谈");
    assert_eq!(r.body["visit_ids"], json!([v1b]));
    assert!(r.headers.contains_key("etag"));
    app.patch(&format!("{LOGS}/{id}"), &m1, &json!({ "visit_ids": [v2] }))
        .await
        .field_error(422, "visit_ids", "not_found");
    app.patch(&format!("{LOGS}/{id}"), &m1, &json!({ "content": "" }))
        .await
        .field_error(422, "content", "required");
    // Yesterday's log (written late, e.g. queued offline) is no longer editable.
    let y = app
        .post(LOGS, Some(&m1), &log_body(days(-1), "昨天的日志", &[]))
        .await
        .expect(201);
    app.patch(
        &format!("{LOGS}/{}", id_of(&y.body)),
        &m1,
        &json!({ "content": "改" }),
    )
    .await
    .problem(409, "not_editable");
    // Only the author edits: a leader in scope 403, another manager 404.
    app.patch(&format!("{LOGS}/{id}"), &l1, &json!({ "content": "改" }))
        .await
        .problem(403, "forbidden");
    app.patch(&format!("{LOGS}/{id}"), &m2, &json!({ "content": "改" }))
        .await
        .problem(404, "worklog_not_found");
    let d = app.get(&format!("{LOGS}/{id}"), &m1).await.expect(200).body;
    assert_eq!(d["content"], "补充：客户同意下周面谈");
}

async fn worklog_review_scope_and_lists(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, m7) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("M0007").await,
    );
    let (l1, l2) = (app.login("L0001").await, app.login("L0002").await);
    let (m1_id, m2_id, l1_id, admin_id) = (
        app.user_id(&admin, "M0001").await,
        app.user_id(&admin, "M0002").await,
        app.user_id(&admin, "L0001").await,
        app.user_id(&admin, "admin").await,
    );
    let post = |token: &str, date: NaiveDate| {
        let b = log_body(date, "今日工作", &[]);
        let t = token.to_owned();
        let app = &app;
        async move { id_of(&app.post(LOGS, Some(&t), &b).await.expect(201).body) }
    };
    let a1 = post(&m1, days(-2)).await;
    let a2 = post(&m1, today()).await;
    let b1 = post(&m2, today()).await;
    let x1 = post(&m7, today()).await;
    let l = post(&l1, today()).await;

    // Reads: own; the leaders above; nobody else.
    for (token, id, ok) in [
        (&m1, a1, true),
        (&m2, a1, false),
        (&l1, a1, true),
        (&l2, a1, false),
        (&admin, x1, true),
        (&l1, x1, false),
        (&m1, l, false),
    ] {
        let r = app.get(&format!("{LOGS}/{id}"), token).await;
        if ok {
            r.expect(200);
        } else {
            r.problem(404, "worklog_not_found");
        }
    }

    // Review (抽查) by a leader of the subtree: mark and comment.
    let path = format!("{LOGS}/{a1}/review");
    let r = app
        .post(
            &path,
            Some(&l1),
            &json!({ "mark": "good", "comment": "信息有价值" }),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["review"]["mark"], "good");
    assert_eq!(r["review"]["comment"], "信息有价值");
    assert_eq!(r["review"]["reviewed_by"], l1_id);
    assert!(r["review"]["reviewed_at"].as_str().unwrap().ends_with('Z'));
    let seen = app.get(&format!("{LOGS}/{a1}"), &m1).await.expect(200).body;
    assert_eq!(seen["review"], r["review"], "the author sees the review");
    // A later review replaces it; the comment is optional.
    let r = app
        .post(&path, Some(&admin), &json!({ "mark": "acceptable" }))
        .await
        .expect(200)
        .body;
    assert_eq!(r["review"]["mark"], "acceptable");
    assert!(r["review"]["comment"].is_null());
    assert_eq!(r["review"]["reviewed_by"], admin_id);
    app.post(
        &format!("{LOGS}/{b1}/review"),
        Some(&l1),
        &json!({ "mark": "poor", "comment": "过于简单" }),
    )
    .await
    .expect(200);
    // Managers do not review (not even their own); another subtree's leader does not see it; nobody marks
    // their own log.
    app.post(&path, Some(&m1), &json!({ "mark": "good" }))
        .await
        .problem(403, "forbidden");
    app.post(&path, Some(&m2), &json!({ "mark": "good" }))
        .await
        .problem(403, "forbidden");
    app.post(&path, Some(&l2), &json!({ "mark": "good" }))
        .await
        .problem(404, "worklog_not_found");
    app.post(
        &format!("{LOGS}/{l}/review"),
        Some(&l1),
        &json!({ "mark": "good" }),
    )
    .await
    .problem(403, "forbidden");
    app.post(
        &format!("{LOGS}/{l}/review"),
        Some(&admin),
        &json!({ "mark": "good" }),
    )
    .await
    .expect(200);
    for (b, field, code) in [
        (json!({ "mark": "excellent" }), "mark", "invalid_value"),
        (json!({}), "mark", "required"),
        (
            json!({ "mark": "good", "comment": "评".repeat(1001) }),
            "comment",
            "too_long",
        ),
        (
            json!({ "mark": "good", "score": 5 }),
            "score",
            "unknown_field",
        ),
    ] {
        app.post(&path, Some(&l1), &b)
            .await
            .field_error(422, field, code);
    }
    let after = app.get(&format!("{LOGS}/{a1}"), &m1).await.body;
    assert_eq!(
        after["review"]["mark"], "acceptable",
        "failed reviews change nothing"
    );

    // Lists: own for a manager, the subtree for a leader, with filters; newest first.
    assert_eq!(ids(&app.get(LOGS, &m1).await.expect(200).body), [a2, a1]);
    assert_eq!(ids(&app.get(LOGS, &l1).await.body), [l, b1, a2, a1]);
    assert_eq!(ids(&app.get(LOGS, &l2).await.body), [x1]);
    assert_eq!(ids(&app.get(LOGS, &admin).await.body), [l, x1, b1, a2, a1]);
    let q = |s: String| format!("{LOGS}?{s}");
    assert_eq!(
        ids(&app.get(&q(format!("manager_id={m1_id}")), &l1).await.body),
        [a2, a1]
    );
    assert_eq!(
        ids(&app.get(&q(format!("manager_id={m2_id}")), &m1).await.body),
        Vec::<i64>::new(),
        "a manager's filter stays within their own"
    );
    assert_eq!(
        ids(&app.get(&q("reviewed=true".into()), &l1).await.body),
        [l, b1, a1]
    );
    assert_eq!(
        ids(&app.get(&q("reviewed=false".into()), &l1).await.body),
        [a2]
    );
    assert_eq!(
        ids(&app.get(&q(format!("from={}", today())), &l1).await.body),
        [l, b1, a2]
    );
    assert_eq!(
        ids(&app.get(&q(format!("to={}", days(-1))), &l1).await.body),
        [a1]
    );
    assert_eq!(
        ids(&app
            .get(&q(format!("from={}&to={}", days(-2), days(-2))), &m1)
            .await
            .body),
        [a1]
    );
    app.get(&q(format!("from={}&to={}", today(), days(-1))), &l1)
        .await
        .field_error(400, "to", "out_of_range");
    app.get(&q("reviewed=maybe".into()), &l1)
        .await
        .field_error(400, "reviewed", "invalid_value");
    app.get(&q("from=2026-02-30".into()), &l1)
        .await
        .field_error(400, "from", "invalid_value");
    let p1 = app.get(&q("limit=3".into()), &l1).await.expect(200).body;
    assert_eq!(ids(&p1), [l, b1, a2]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&q(format!("limit=3&cursor={cursor}")), &l1)
        .await
        .body;
    assert_eq!(ids(&p2), [a1]);
    assert!(p2["next_cursor"].is_null());
}

async fn worklog_validation_replay_and_etag(app: TestApp) {
    let m1 = app.login("M0001").await;
    let l1 = app.login("L0001").await;
    let b = log_body(today(), "今日：拜访三户", &[]);
    let too_many: Vec<i64> = (1..=101).collect();
    for (change, field, code) in [
        (json!({ "content": "" }), "content", "required"),
        (
            json!({ "content": "志".repeat(4001) }),
            "content",
            "too_long",
        ),
        (json!({ "content": null }), "content", "required"),
        (
            json!({ "log_date": "2026-02-30" }),
            "log_date",
            "invalid_value",
        ),
        (json!({ "log_date": "today" }), "log_date", "invalid_value"),
        (json!({ "log_date": null }), "log_date", "required"),
        (json!({ "visit_ids": too_many }), "visit_ids", "too_many"),
        (json!({ "visit_ids": "1,2" }), "visit_ids", "invalid_type"),
        (json!({ "mood": "good" }), "mood", "unknown_field"),
        (json!({ "client_id": "" }), "client_id", "required"),
    ] {
        app.post(LOGS, Some(&m1), &with(b.clone(), change))
            .await
            .field_error(422, field, code);
    }
    assert!(ids(&app.get(LOGS, &m1).await.body).is_empty());

    // Replay: same key, same answer, nothing new; even though a second log for the day would be a 409.
    let keyed = with(b.clone(), json!({ "client_id": "log-0001" }));
    let first = app.post(LOGS, Some(&m1), &keyed).await.expect(201);
    let again = app.post(LOGS, Some(&m1), &keyed).await.expect(201);
    assert_eq!(again.text, first.text);
    app.post(
        LOGS,
        Some(&m1),
        &with(keyed.clone(), json!({ "content": "改了" })),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    let h = with(b.clone(), json!({ "log_date": days(-1).to_string() }));
    let k1 = with_header(
        &app,
        Method::POST,
        LOGS,
        &m1,
        ("Idempotency-Key", "log-k"),
        Some(&h),
    )
    .await
    .expect(201);
    let k2 = with_header(
        &app,
        Method::POST,
        LOGS,
        &m1,
        ("Idempotency-Key", "log-k"),
        Some(&h),
    )
    .await
    .expect(201);
    assert_eq!(k1.text, k2.text);
    let id = id_of(&first.body);
    assert_eq!(ids(&app.get(LOGS, &m1).await.body), [id_of(&k1.body), id]);

    // ETag: 304 while current; an edit and a review each give a new tag.
    let path = format!("{LOGS}/{id}");
    let t1 = check_conditional_get(&app, &path, &m1, &format!("W/\"w{id}-")).await;
    let noop = app.patch(&path, &m1, &json!({})).await.expect(200);
    assert_eq!(etag(&noop), t1, "an empty PATCH writes nothing");
    let e = app
        .patch(&path, &m1, &json!({ "content": "今日：拜访四户" }))
        .await
        .expect(200);
    let t2 = etag(&e);
    assert_ne!(t1, t2);
    with_header(&app, Method::GET, &path, &m1, ("If-None-Match", &t2), None)
        .await
        .expect(304);
    let rv = app
        .post(
            &format!("{path}/review"),
            Some(&l1),
            &json!({ "mark": "good" }),
        )
        .await
        .expect(200);
    let t3 = etag(&rv);
    assert_ne!(t3, t2);
    let r = with_header(&app, Method::GET, &path, &m1, ("If-None-Match", &t2), None)
        .await
        .expect(200);
    assert_eq!(r.body["review"]["mark"], "good");
    assert_eq!(etag(&r), t3);
    // The leader gets the same tag for the same version.
    with_header(&app, Method::GET, &path, &l1, ("If-None-Match", &t3), None)
        .await
        .expect(304);
}

// ---------------------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------------------

/// The Monday of the current week, and the first of the current month.
fn week_start() -> NaiveDate {
    use chrono::Datelike;
    today() - Duration::days(i64::from(today().weekday().num_days_from_monday()))
}

fn month_start() -> NaiveDate {
    use chrono::Datelike;
    today().with_day(1).unwrap()
}

async fn plans_owner_edits_leader_reads(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2) = (app.login("M0001").await, app.login("M0002").await);
    let (l1, l2) = (app.login("L0001").await, app.login("L0002").await);
    let m1_id = app.user_id(&admin, "M0001").await;
    let wk = json!({
        "period": "week",
        "period_start": week_start().to_string(),
        "title": "本周计划",
        "items": [
            { "text": "拜访三户存量客户" },
            { "text": "跟进大额存单商机", "status": "doing" }
        ]
    });
    let p = app.post(PLANS, Some(&m1), &wk).await.expect(201).body;
    let id = id_of(&p);
    assert_eq!(p["manager_id"], m1_id);
    assert_eq!(p["period"], "week");
    assert_eq!(p["period_start"], week_start().to_string());
    assert_eq!(
        p["period_end"],
        (week_start() + Duration::days(6)).to_string()
    );
    assert_eq!(
        p["items"],
        json!([
            { "text": "拜访三户存量客户", "status": "todo" },
            { "text": "跟进大额存单商机", "status": "doing" }
        ])
    );
    let mo = json!({ "period": "month", "period_start": month_start().to_string(), "title": "本月计划" });
    let pm = app.post(PLANS, Some(&m1), &mo).await.expect(201).body;
    assert_eq!(pm["items"], json!([]));
    let end = pm["period_end"].as_str().unwrap();
    assert!(
        end.starts_with(&month_start().to_string()[..8]),
        "{end} in the month"
    );
    let pmid = id_of(&pm);
    let p2 = id_of(
        &app.post(
            PLANS,
            Some(&m2),
            &with(wk.clone(), json!({ "title": "二号本周计划" })),
        )
        .await
        .expect(201)
        .body,
    );

    // The owner updates the items' status (the list is replaced) and the title.
    let r = app
        .patch(
            &format!("{PLANS}/{id}"),
            &m1,
            &json!({ "title": "本周计划（修订）", "items": [
                { "text": "拜访三户存量客户", "status": "done" },
                { "text": "跟进大额存单商机", "status": "dropped" },
                { "text": "整理客户档案" }
            ]}),
        )
        .await
        .expect(200);
    assert!(r.headers.contains_key("etag"));
    assert_eq!(r.body["title"], "本周计划（修订）");
    let statuses: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "dropped", "todo"]);
    // Only the owner edits; the leader of the subtree reads; others see nothing.
    app.patch(&format!("{PLANS}/{id}"), &l1, &json!({ "title": "x" }))
        .await
        .problem(403, "forbidden");
    app.patch(&format!("{PLANS}/{id}"), &admin, &json!({ "title": "x" }))
        .await
        .problem(403, "forbidden");
    for (token, ok) in [
        (&m1, true),
        (&l1, true),
        (&admin, true),
        (&m2, false),
        (&l2, false),
    ] {
        let r = app.get(&format!("{PLANS}/{id}"), token).await;
        let p = app.patch(&format!("{PLANS}/{id}"), token, &json!({})).await;
        if ok {
            assert_eq!(r.expect(200).body["title"], "本周计划（修订）");
        } else {
            r.problem(404, "plan_not_found");
            p.problem(404, "plan_not_found");
        }
    }

    // Lists and filters.
    assert_eq!(ids(&app.get(PLANS, &m1).await.expect(200).body), [pmid, id]);
    assert_eq!(ids(&app.get(PLANS, &l1).await.body), [p2, pmid, id]);
    assert!(ids(&app.get(PLANS, &l2).await.body).is_empty());
    assert_eq!(
        ids(&app.get(&format!("{PLANS}?period=week"), &l1).await.body),
        [p2, id]
    );
    assert_eq!(
        ids(&app
            .get(&format!("{PLANS}?manager_id={m1_id}&period=month"), &l1)
            .await
            .body),
        [pmid]
    );
    assert!(
        ids(&app
            .get(&format!("{PLANS}?from={}", days(8)), &l1)
            .await
            .body)
        .is_empty()
    );
    assert_eq!(
        ids(&app
            .get(
                &format!(
                    "{PLANS}?period=week&from={}&to={}",
                    week_start(),
                    week_start()
                ),
                &m1
            )
            .await
            .body),
        [id]
    );
    app.get(&format!("{PLANS}?period=year"), &l1)
        .await
        .field_error(400, "period", "invalid_value");
    app.get(&format!("{PLANS}?from={}&to={}", today(), days(-1)), &l1)
        .await
        .field_error(400, "to", "out_of_range");

    // Validation.
    let tuesday = week_start() + Duration::days(1);
    let second = month_start() + Duration::days(1);
    for (change, field, code) in [
        (
            json!({ "period_start": tuesday.to_string() }),
            "period_start",
            "invalid_value",
        ),
        (
            json!({ "period": "month", "period_start": second.to_string() }),
            "period_start",
            "invalid_value",
        ),
        (json!({ "period": "year" }), "period", "invalid_value"),
        (
            json!({ "period_start": "2026-02-30" }),
            "period_start",
            "invalid_value",
        ),
        (json!({ "title": "" }), "title", "required"),
        (json!({ "title": "划".repeat(201) }), "title", "too_long"),
        (
            json!({ "items": [{ "text": "" }] }),
            "items[0].text",
            "required",
        ),
        (
            json!({ "items": [{ "text": "a" }, { "text": "划".repeat(501) }] }),
            "items[1].text",
            "too_long",
        ),
        (
            json!({ "items": [{ "text": "a", "status": "late" }] }),
            "items[0].status",
            "invalid_value",
        ),
        (
            json!({ "items": [{ "text": "a", "owner": 1 }] }),
            "items[0].owner",
            "unknown_field",
        ),
        (
            json!({ "items": vec![json!({ "text": "a" }); 51] }),
            "items",
            "too_many",
        ),
        (json!({ "color": "red" }), "color", "unknown_field"),
        (json!({ "client_id": "" }), "client_id", "required"),
    ] {
        app.post(PLANS, Some(&m1), &with(wk.clone(), change))
            .await
            .field_error(422, field, code);
    }
    app.patch(
        &format!("{PLANS}/{id}"),
        &m1,
        &json!({ "items": [{ "text": " " }] }),
    )
    .await
    .field_error(422, "items[0].text", "required");

    // Replay and ETag.
    let keyed = with(
        wk.clone(),
        json!({ "client_id": "plan-0001", "title": "离线计划" }),
    );
    let first = app.post(PLANS, Some(&m1), &keyed).await.expect(201);
    let again = app.post(PLANS, Some(&m1), &keyed).await.expect(201);
    assert_eq!(first.text, again.text);
    app.post(
        PLANS,
        Some(&m1),
        &with(keyed.clone(), json!({ "title": "另一个" })),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    assert_eq!(ids(&app.get(PLANS, &m1).await.body).len(), 3);
    let path = format!("{PLANS}/{id}");
    let t1 = check_conditional_get(&app, &path, &m1, &format!("W/\"p{id}-")).await;
    let noop = app.patch(&path, &m1, &json!({})).await.expect(200);
    assert_eq!(etag(&noop), t1, "an empty PATCH writes nothing");
    let e = app
        .patch(&path, &m1, &json!({ "title": "再改" }))
        .await
        .expect(200);
    assert_ne!(etag(&e), t1);
    let r = with_header(&app, Method::GET, &path, &l1, ("If-None-Match", &t1), None)
        .await
        .expect(200);
    assert_eq!(r.body["title"], "再改");
    assert_eq!(etag(&r), etag(&e));
}

backend_tests!(
    opportunity_create_round_trips_every_field,
    opportunity_stages_and_history,
    opportunities_follow_the_callers_scope,
    pipeline_summary_counts_and_sums_exactly,
    opportunity_validation_names_every_field,
    opportunity_create_replays_and_etag,
    worklog_one_per_day_editable_that_day,
    worklog_review_scope_and_lists,
    worklog_validation_replay_and_etag,
    plans_owner_edits_leader_reads,
);
