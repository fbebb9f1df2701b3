//! Customers and what hangs off them: create (individual and corporate, "谁开拓, 谁管理"), list with every
//! filter and cursor paging, detail with masking, read audit and `ETag`, PATCH, soft delete; key contacts,
//! holdings (money, dates, loans), the admin-extensible dictionaries, notes and the timeline; scope for
//! every role (another manager's or another subtree's customer is 404), team members; validation naming
//! the field; idempotent replay of every create.
//!
//! Demo tree: 鼓楼 NJ-GL (L0001, M0001–M0006), 玄武 NJ-XW (L0002, M0007–M0012) under 南京分行; 姑苏 SZ-GS
//! (L0003, M0013–M0018), 园区 SZ-YQ (L0004, M0019–M0024) under 苏州分行.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use fieldwork::db::schema::{customer_contacts, customer_notes, customers, holdings};
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, Who, get_if_none_match, id_of, ids, items};

const CUSTOMERS: &str = "/api/v1/customers";

/// Today in Asia/Shanghai (the server's business date).
fn today() -> NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive()
}

/// The birthday in 1992 (a leap year, so 29 February exists) falling on the month and day of `d`.
fn birthday_on(d: NaiveDate) -> String {
    NaiveDate::from_ymd_opt(1992, d.month(), d.day())
        .unwrap()
        .to_string()
}

/// `b` with some fields replaced (or added).
fn with(mut b: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// `b` without `field`.
fn without(mut b: Value, field: &str) -> Value {
    b.as_object_mut().unwrap().remove(field);
    b
}

fn path(id: i64, tail: &str) -> String {
    if tail.is_empty() {
        format!("{CUSTOMERS}/{id}")
    } else {
        format!("{CUSTOMERS}/{id}/{tail}")
    }
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Resp {
    app.req(Method::DELETE, path, Some(token), None).await
}

/// POST with an `Idempotency-Key` header.
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

async fn count_customers(app: &TestApp) -> i64 {
    db(app, |c| customers::table.count().get_result(c).unwrap()).await
}

async fn count_contacts(app: &TestApp) -> i64 {
    db(app, |c| {
        customer_contacts::table.count().get_result(c).unwrap()
    })
    .await
}

async fn count_holdings(app: &TestApp) -> i64 {
    db(app, |c| holdings::table.count().get_result(c).unwrap()).await
}

async fn count_notes(app: &TestApp) -> i64 {
    db(app, |c| {
        customer_notes::table.count().get_result(c).unwrap()
    })
    .await
}

/// A complete individual customer.
fn individual(name: &str) -> Value {
    json!({
        "kind": "individual",
        "name": name,
        "category": "retail",
        "tier": "key",
        "industry": "教育",
        "phone": "13812345678",
        "id_number": "320102199001011234",
        "birthday": "1990-03-15",
        "lunar_birthday": { "month": 8, "day": 15, "leap": true },
        "gender": "female",
        "address": "南京市鼓楼区中山路1号",
        "latitude": 32.05,
        "longitude": 118.78,
        "location_datum": "wgs84",
        "traits": "喜欢钓鱼，周末有空",
        "tags": ["VIP", "代发工资"],
        "status": "active"
    })
}

/// A corporate customer.
fn corporate(name: &str) -> Value {
    json!({
        "kind": "corporate",
        "name": name,
        "category": "corporate",
        "tier": "strategic",
        "industry": "制造业",
        "phone": "13900001111",
        "id_number": "91320102MA1XYZ1234",
        "address": "南京市玄武区珠江路88号",
        "tags": ["上市公司"]
    })
}

/// Creates a customer as `token` and returns its body.
async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    app.post(CUSTOMERS, Some(token), body)
        .await
        .expect(201)
        .body
}

fn holding(product_type: &str, amount: &str) -> Value {
    json!({
        "product_type": product_type,
        "product_name": "三年期定期存款",
        "amount": amount,
        "open_date": "2025-01-10",
        "maturity_date": "2028-01-10",
        "rate": "2.15"
    })
}

/// Asserts a 422 naming `field` with `code`, with a helpful message.
#[track_caller]
fn expect_field(r: Resp, field: &str, code: &str, case: &str) {
    assert_eq!(
        r.status.as_u16(),
        422,
        "{case}: expected 422 {field}/{code}, got {}",
        r.text
    );
    let body = r.problem(422, "validation_failed");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["code"] == code && e["message"].is_string()),
        "{case}: expected {field}/{code} in {body}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Create and read
// ---------------------------------------------------------------------------------------------------------

async fn customers_are_created_and_every_field_round_trips(app: TestApp) {
    let w = Who::login(&app, &["M0001", "M0003", "M0007", "L0001", "L0002"]).await;
    let m1 = w.id("M0001");

    // A manager creates an individual customer: they are its responsible and originating manager.
    let c = create(&app, w.t("M0001"), &individual("王小明")).await;
    let cid = id_of(&c);
    for (field, want) in individual("王小明").as_object().unwrap() {
        assert_eq!(&c[field], want, "field {field} round-trips in {c}");
    }
    assert_eq!(c["manager_id"], m1);
    assert_eq!(c["originator_id"], m1);
    assert!(c["team_id"].is_null());
    assert!(c["seq"].as_i64().unwrap() > 0);
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'), "{c}");
    let detail = app.get(&path(cid, ""), w.t("M0001")).await.expect(200);
    for (field, want) in individual("王小明").as_object().unwrap() {
        assert_eq!(
            &detail.body[field], want,
            "field {field} on the detail view"
        );
    }
    // The first ownership row says who originated it.
    let own = app
        .get(&path(cid, "ownership"), w.t("M0001"))
        .await
        .expect(200);
    let own = items(&own.body);
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["manager"]["id"], m1);
    assert_eq!(own[0]["reason"], "originated");
    assert!(own[0]["effective_to"].is_null());

    // Corporate customer: optional fields absent come back null, the defaults apply.
    let k = create(&app, w.t("M0001"), &corporate("南京某某科技有限公司")).await;
    assert_eq!(k["kind"], "corporate");
    assert_eq!(k["id_number"], "91320102MA1XYZ1234");
    assert_eq!(k["status"], "active", "default status");
    assert!(k["birthday"].is_null() && k["lunar_birthday"].is_null());
    assert!(k["latitude"].is_null() && k["location_datum"].is_null());
    assert_eq!(k["tags"], json!(["上市公司"]));
    // The smallest body: kind and name.
    let min = create(
        &app,
        w.t("M0001"),
        &json!({ "kind": "individual", "name": "  李 " }),
    )
    .await;
    assert_eq!(min["name"], "李", "names are trimmed");
    assert_eq!(min["tags"], json!([]));
    assert!(min["phone"].is_null() && min["category"].is_null());
    // A lower-case x in an ID number is upper-cased; "+86" is dropped from phones.
    let x = create(
        &app,
        w.t("M0001"),
        &with(
            individual("赵"),
            json!({ "id_number": "32010219900101123x", "phone": "+8613912345678" }),
        ),
    )
    .await;
    assert_eq!(x["id_number"], "32010219900101123X");
    assert_eq!(x["phone"], "13912345678");
    // GCJ-02 coordinates (from a Chinese map) are stored as WGS-84, with the datum kept.
    let g = create(
        &app,
        w.t("M0001"),
        &with(individual("钱"), json!({ "location_datum": "gcj02" })),
    )
    .await;
    assert_eq!(g["location_datum"], "gcj02");
    let (lat, lon) = (
        g["latitude"].as_f64().unwrap(),
        g["longitude"].as_f64().unwrap(),
    );
    assert!(
        (lat - 32.05).abs() > 1e-4 && (lat - 32.05).abs() < 0.01,
        "lat {lat}"
    );
    assert!(
        (lon - 118.78).abs() > 1e-4 && (lon - 118.78).abs() < 0.01,
        "lon {lon}"
    );

    // A manager may name themself, but nobody else.
    let own_named = create(
        &app,
        w.t("M0001"),
        &with(individual("孙"), json!({ "manager_id": m1 })),
    )
    .await;
    assert_eq!(own_named["manager_id"], m1);
    expect_field(
        app.post(
            CUSTOMERS,
            Some(w.t("M0001")),
            &with(individual("孙"), json!({ "manager_id": w.id("M0003") })),
        )
        .await,
        "manager_id",
        "not_found",
        "manager naming another manager",
    );

    // A leader creates for a manager of their subtree: that manager owns and originated it.
    let by_leader = create(
        &app,
        w.t("L0001"),
        &with(individual("周"), json!({ "manager_id": w.id("M0003") })),
    )
    .await;
    assert_eq!(by_leader["manager_id"], w.id("M0003"));
    assert_eq!(by_leader["originator_id"], w.id("M0003"));
    app.get(&path(id_of(&by_leader), ""), w.t("M0003"))
        .await
        .expect(200);
    app.get(&path(id_of(&by_leader), ""), w.t("M0001"))
        .await
        .problem(404, "customer_not_found");
    // … but must name one, of their subtree, who is a manager.
    expect_field(
        app.post(CUSTOMERS, Some(w.t("L0001")), &individual("吴"))
            .await,
        "manager_id",
        "required",
        "leader without manager_id",
    );
    expect_field(
        app.post(
            CUSTOMERS,
            Some(w.t("L0001")),
            &with(individual("吴"), json!({ "manager_id": w.id("M0007") })),
        )
        .await,
        "manager_id",
        "not_found",
        "leader naming a manager of another sub-branch",
    );
    expect_field(
        app.post(
            CUSTOMERS,
            Some(w.t("L0001")),
            &with(individual("吴"), json!({ "manager_id": w.id("L0001") })),
        )
        .await,
        "manager_id",
        "invalid_value",
        "leader naming a non-manager",
    );
    // An admin may create for any manager.
    let by_admin = create(
        &app,
        w.t("admin"),
        &with(individual("郑"), json!({ "manager_id": w.id("M0007") })),
    )
    .await;
    assert_eq!(by_admin["manager_id"], w.id("M0007"));
    app.get(&path(id_of(&by_admin), ""), w.t("L0002"))
        .await
        .expect(200);
    // The create is in the archive and in the audit log.
    let t = app
        .get(&path(cid, "timeline"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(items(&t.body)[0]["kind"], "customer");
    assert_eq!(items(&t.body)[0]["actor_id"], m1);
}

async fn the_list_filters_and_pages(app: TestApp) {
    let w = Who::login(&app, &["M0001", "M0002", "M0007", "L0001"]).await;
    let t1 = w.t("M0001");
    let day = today();
    let mk = |name: &str, extra: Value| with(json!({ "kind": "individual", "name": name }), extra);
    let wang = id_of(
        &create(
            &app,
            t1,
            &mk(
                "王建国",
                json!({ "tier": "key", "category": "retail", "phone": "13800005678",
                        "birthday": birthday_on(day) }),
            ),
        )
        .await,
    );
    let wang2 = id_of(
        &create(
            &app,
            t1,
            &mk(
                "王芳",
                json!({ "tier": "ordinary", "category": "private_banking", "phone": "13911112222",
                        "birthday": birthday_on(day + Duration::days(5)) }),
            ),
        )
        .await,
    );
    let li = id_of(
        &create(
            &app,
            t1,
            &mk(
                "李四",
                json!({ "tier": "key", "category": "private_banking", "phone": "13722225678",
                        "birthday": birthday_on(day + Duration::days(40)) }),
            ),
        )
        .await,
    );
    let zhao = id_of(&create(&app, t1, &mk("赵六", json!({ "tier": "strategic" }))).await);
    let qian = id_of(&create(&app, t1, &mk("钱七", json!({}))).await);
    // Another manager's customers never show in M0001's list.
    let other = id_of(&create(&app, w.t("M0002"), &mk("王其他", json!({ "tier": "key" }))).await);
    let far = id_of(
        &create(
            &app,
            w.t("M0007"),
            &mk("王玄武", json!({ "phone": "13600005678" })),
        )
        .await,
    );
    // Holdings: one maturing in 10 days, one in 60, an archived one in 3 days.
    let mature = |d: NaiveDate| {
        with(
            holding("time_deposit", "10000.00"),
            json!({ "open_date": "2024-01-01", "maturity_date": d.to_string() }),
        )
    };
    app.post(
        &path(zhao, "holdings"),
        Some(t1),
        &mature(day + Duration::days(10)),
    )
    .await
    .expect(201);
    app.post(
        &path(qian, "holdings"),
        Some(t1),
        &mature(day + Duration::days(60)),
    )
    .await
    .expect(201);
    let gone = app
        .post(
            &path(li, "holdings"),
            Some(t1),
            &mature(day + Duration::days(3)),
        )
        .await
        .expect(201);
    delete(
        &app,
        &path(li, &format!("holdings/{}", id_of(&gone.body))),
        t1,
    )
    .await
    .expect(204);

    let list = |q: String, token: String| {
        let app = &app;
        async move {
            let r = app
                .get(&format!("{CUSTOMERS}?{q}"), &token)
                .await
                .expect(200);
            let mut v = ids(&r.body);
            v.sort_unstable();
            v
        }
    };
    let t = |u: &str| w.t(u).to_owned();
    assert_eq!(
        list(String::new(), t("M0001")).await,
        vec![wang, wang2, li, zhao, qian]
    );
    // q: a name prefix …
    assert_eq!(
        list("q=%E7%8E%8B".into(), t("M0001")).await,
        vec![wang, wang2],
        "q=王"
    );
    assert_eq!(
        list("q=%E5%BB%BA".into(), t("M0001")).await,
        Vec::<i64>::new(),
        "q=建 is no prefix"
    );
    // … or (4+ digits) a phone suffix.
    assert_eq!(list("q=5678".into(), t("M0001")).await, vec![wang, li]);
    assert_eq!(list("q=2222".into(), t("M0001")).await, vec![wang2]);
    assert_eq!(
        list("q=0000".into(), t("M0001")).await,
        Vec::<i64>::new(),
        "0000 is not a suffix here"
    );
    // A LIKE wildcard in q is a literal character.
    assert_eq!(list("q=%25".into(), t("M0001")).await, Vec::<i64>::new());
    assert_eq!(list("tier=key".into(), t("M0001")).await, vec![wang, li]);
    assert_eq!(
        list("category=private_banking".into(), t("M0001")).await,
        vec![wang2, li]
    );
    assert_eq!(
        list("tier=key&category=private_banking".into(), t("M0001")).await,
        vec![li],
        "filters combine"
    );
    assert_eq!(
        list("birthday_within_days=0".into(), t("M0001")).await,
        vec![wang]
    );
    assert_eq!(
        list("birthday_within_days=7".into(), t("M0001")).await,
        vec![wang, wang2]
    );
    assert_eq!(
        list("birthday_within_days=45".into(), t("M0001")).await,
        vec![wang, wang2, li]
    );
    assert_eq!(
        list("maturing_within_days=30".into(), t("M0001")).await,
        vec![zhao],
        "archived holdings do not count"
    );
    assert_eq!(
        list("maturing_within_days=90".into(), t("M0001")).await,
        vec![zhao, qian]
    );
    // Leaders and admins: manager and org filters over their subtree.
    assert_eq!(
        list("q=%E7%8E%8B".into(), t("L0001")).await,
        vec![wang, wang2, other],
        "L0001 sees 鼓楼 only"
    );
    assert_eq!(
        list(format!("manager_id={}", w.id("M0002")), t("L0001")).await,
        vec![other]
    );
    assert_eq!(
        list(format!("manager_id={}", w.id("M0007")), t("L0001")).await,
        Vec::<i64>::new(),
        "a manager outside the subtree yields nothing"
    );
    let orgs = app
        .get("/api/v1/orgs?limit=200", w.t("admin"))
        .await
        .expect(200);
    let org = |code: &str| {
        items(&orgs.body)
            .iter()
            .find(|o| o["code"] == code)
            .and_then(|o| o["id"].as_i64())
            .unwrap()
    };
    assert_eq!(
        list(format!("org_id={}", org("NJ-XW")), t("admin")).await,
        vec![far]
    );
    assert_eq!(
        list(format!("org_id={}&q=5678", org("NJ")), t("admin")).await,
        vec![wang, li, far]
    );
    assert_eq!(
        list(format!("org_id={}", org("NJ-XW")), t("L0001")).await,
        Vec::<i64>::new(),
        "an org outside the caller's subtree yields nothing"
    );
    assert_eq!(
        list(format!("org_id={}", org("SZ")), t("admin")).await,
        Vec::<i64>::new()
    );

    // Cursor paging: pages of 2 cover everything once, in id order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("{CUSTOMERS}?limit=2&cursor={c}"),
            None => format!("{CUSTOMERS}?limit=2"),
        };
        let r = app.get(&q, w.t("admin")).await.expect(200);
        let page = ids(&r.body);
        assert!(page.len() <= 2);
        seen.extend(page);
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    let mut all = vec![wang, wang2, li, zhao, qian, other, far];
    all.sort_unstable();
    assert_eq!(seen, all, "no duplicates, no misses, by id");
    assert_eq!(pages, 4);
    // A filter applies across pages too.
    let first = app
        .get(&format!("{CUSTOMERS}?tier=key&limit=1"), w.t("L0001"))
        .await
        .expect(200);
    assert_eq!(ids(&first.body), vec![wang]);
    let next = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("{CUSTOMERS}?tier=key&limit=1&cursor={next}"),
            w.t("L0001"),
        )
        .await
        .expect(200);
    assert_eq!(ids(&second.body), vec![li]);
    let last = app
        .get(
            &format!(
                "{CUSTOMERS}?tier=key&limit=1&cursor={}",
                second.body["next_cursor"].as_str().unwrap()
            ),
            w.t("L0001"),
        )
        .await
        .expect(200);
    assert_eq!(ids(&last.body), vec![other]);
    assert!(last.body["next_cursor"].is_null());

    // Bad list parameters are 400 naming the parameter.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nope", "cursor"),
        ("birthday_within_days=367", "birthday_within_days"),
        ("birthday_within_days=-1", "birthday_within_days"),
        ("maturing_within_days=x", "maturing_within_days"),
        ("manager_id=abc", "manager_id"),
        ("colour=red", "colour"),
        (&*format!("q={}", "x".repeat(101)), "q"),
        (&*format!("tier={}", "x".repeat(33)), "tier"),
    ] {
        let body = app
            .get(&format!("{CUSTOMERS}?{q}"), w.t("M0001"))
            .await
            .problem(400, "invalid_query_parameter");
        assert_eq!(body["errors"][0]["field"], field, "{q}: {body}");
    }
}

async fn the_birthday_filter_counts_lunar_birthdays(app: TestApp) {
    use fieldwork::domain::reminders::lunar_keys;
    let t = app.login("M0004").await;
    let day = today();
    let lunar = |d: NaiveDate| {
        let k = lunar_keys(d)[0];
        json!({ "month": k.month, "day": k.day, "leap": k.leap })
    };
    let mk = |name: &str, extra: Value| with(json!({ "kind": "individual", "name": name }), extra);
    let soon = id_of(
        &create(
            &app,
            &t,
            &mk(
                "农历近",
                json!({ "lunar_birthday": lunar(day + Duration::days(3)) }),
            ),
        )
        .await,
    );
    let later = id_of(
        &create(
            &app,
            &t,
            &mk(
                "农历远",
                json!({ "lunar_birthday": lunar(day + Duration::days(100)) }),
            ),
        )
        .await,
    );
    // Both kinds on one customer: either one in range is enough.
    let both = id_of(
        &create(
            &app,
            &t,
            &mk(
                "双生日",
                json!({ "birthday": birthday_on(day + Duration::days(200)),
                        "lunar_birthday": lunar(day) }),
            ),
        )
        .await,
    );
    let list = async |q: &str| {
        let r = app.get(&format!("{CUSTOMERS}?{q}"), &t).await.expect(200);
        let mut v = ids(&r.body);
        v.sort_unstable();
        v
    };
    assert_eq!(list("birthday_within_days=0").await, vec![both]);
    assert_eq!(list("birthday_within_days=7").await, vec![soon, both]);
    assert_eq!(
        list("birthday_within_days=120").await,
        vec![soon, later, both]
    );
    // The same lunar month and day born in a leap month is another birthday.
    let k = lunar_keys(day + Duration::days(3))[0];
    if !k.leap {
        let leap_born = id_of(
            &create(
                &app,
                &t,
                &mk(
                    "闰月生",
                    json!({ "lunar_birthday": { "month": k.month, "day": k.day, "leap": true } }),
                ),
            )
            .await,
        );
        let found = list("birthday_within_days=7").await;
        // Leap-born customers celebrate in the ordinary month only in a year without that leap month.
        let kept = lunar_keys(day + Duration::days(3))
            .iter()
            .any(|x| x.leap && x.month == k.month && x.day == k.day);
        assert_eq!(found.contains(&leap_born), kept, "{found:?}");
    }
}

async fn lists_mask_pii_and_detail_views_are_audited(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王小明")).await);
    let corp = id_of(&create(&app, w.t("M0001"), &corporate("某某公司")).await);

    for token in [w.t("M0001"), w.t("L0001"), w.t("admin")] {
        let l = app.get(CUSTOMERS, token).await.expect(200);
        let row = items(&l.body)
            .into_iter()
            .find(|c| id_of(c) == cid)
            .unwrap();
        assert_eq!(row["phone"], "138****5678");
        assert_eq!(row["id_number"], "3201**********1234");
        assert!(!l.text.contains("13812345678") && !l.text.contains("320102199001011234"));
        let row = items(&l.body)
            .into_iter()
            .find(|c| id_of(c) == corp)
            .unwrap();
        assert_eq!(row["phone"], "139****1111");
        assert_eq!(row["id_number"], "9132**********1234");
    }

    let audit_reads = async |actor: i64| -> Vec<Value> {
        let r = app
            .get(
                &format!("/api/v1/audit-events?entity=customer&actor_id={actor}&limit=200"),
                w.t("admin"),
            )
            .await
            .expect(200);
        items(&r.body)
            .into_iter()
            .filter(|e| {
                e["action"] == "customer.read"
                    && e["entity_id"].as_str() == Some(cid.to_string().as_str())
            })
            .collect()
    };

    // The responsible manager's own view: full, not audited.
    let d = app.get(&path(cid, ""), w.t("M0001")).await.expect(200);
    assert_eq!(d.body["phone"], "13812345678");
    assert_eq!(d.body["id_number"], "320102199001011234");
    app.get(&path(cid, "contacts"), w.t("M0001"))
        .await
        .expect(200);
    assert!(audit_reads(w.id("M0001")).await.is_empty());

    // A leader's view: full, and audited under the manager's org.
    let d = app.get(&path(cid, ""), w.t("L0001")).await.expect(200);
    assert_eq!(d.body["phone"], "13812345678");
    assert_eq!(d.body["id_number"], "320102199001011234");
    let events = audit_reads(w.id("L0001")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["entity"], "customer");
    assert!(events[0]["org_path"].as_str().unwrap().len() > 3);
    assert!(events[0]["detail"].is_null());
    // Its holdings list is part of the detail view, audited with the sub-view named.
    app.get(&path(cid, "holdings"), w.t("L0001"))
        .await
        .expect(200);
    let events = audit_reads(w.id("L0001")).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["detail"]["view"], "holdings");
    // So is the customer's archive (timeline and notes), newest first in the log.
    for view in ["timeline", "notes"] {
        app.get(&path(cid, view), w.t("L0001")).await.expect(200);
        app.get(&path(cid, view), w.t("M0001")).await.expect(200);
    }
    let events = audit_reads(w.id("L0001")).await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0]["detail"]["view"], "notes");
    assert_eq!(events[1]["detail"]["view"], "timeline");
    assert!(audit_reads(w.id("M0001")).await.is_empty());
    // The admin's view is audited too.
    app.get(&path(cid, ""), w.t("admin")).await.expect(200);
    assert_eq!(audit_reads(w.id("admin")).await.len(), 1);
    // A 404 is not a read.
    app.get(&path(cid + 1000, ""), w.t("L0001"))
        .await
        .problem(404, "customer_not_found");
    assert_eq!(audit_reads(w.id("L0001")).await.len(), 4);
}

async fn detail_etags_answer_304_until_a_change(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王小明")).await);
    let p = path(cid, "");
    let first = app.get(&p, w.t("M0001")).await.expect(200);
    let tag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    // The same tag again: 304 without a body, the tag repeated.
    let r = get_if_none_match(&app, &p, w.t("M0001"), &tag)
        .await
        .expect(304);
    assert!(r.text.is_empty(), "304 has no body: {}", r.text);
    assert_eq!(r.headers["etag"].to_str().unwrap(), tag);
    // A strong form of the tag and a list containing it match too; another tag does not.
    let strong = tag.trim_start_matches("W/");
    get_if_none_match(&app, &p, w.t("M0001"), strong)
        .await
        .expect(304);
    get_if_none_match(&app, &p, w.t("M0001"), &format!("\"x\", {tag}"))
        .await
        .expect(304);
    get_if_none_match(&app, &p, w.t("M0001"), "W/\"other\"")
        .await
        .expect(200);
    // A tag does not open a customer out of scope.
    let other = app.login("M0002").await;
    get_if_none_match(&app, &p, &other, &tag)
        .await
        .problem(404, "customer_not_found");

    // After a PATCH the old tag gets the new version and a new tag.
    let patched = app
        .patch(&p, w.t("M0001"), &json!({ "tier": "strategic" }))
        .await
        .expect(200);
    let patch_tag = patched.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(patch_tag, tag);
    let r = get_if_none_match(&app, &p, w.t("M0001"), &tag)
        .await
        .expect(200);
    assert_eq!(r.body["tier"], "strategic");
    let new_tag = r.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        new_tag, patch_tag,
        "PATCH answers the tag of the new version"
    );
    get_if_none_match(&app, &p, w.t("M0001"), &new_tag)
        .await
        .expect(304);
    // A change to a holding does not change the customer's own detail, nor its tag.
    app.post(
        &path(cid, "holdings"),
        Some(w.t("M0001")),
        &holding("time_deposit", "1.00"),
    )
    .await
    .expect(201);
    get_if_none_match(&app, &p, w.t("M0001"), &new_tag)
        .await
        .expect(304);
    // A leader's 304 is not audited (nothing was disclosed); the 200 is.
    let audited = async || {
        let r = app
            .get(
                &format!(
                    "/api/v1/audit-events?entity=customer&actor_id={}",
                    w.id("L0001")
                ),
                w.t("admin"),
            )
            .await
            .expect(200);
        items(&r.body)
            .iter()
            .filter(|e| e["action"] == "customer.read")
            .count()
    };
    get_if_none_match(&app, &p, w.t("L0001"), &new_tag)
        .await
        .expect(304);
    assert_eq!(audited().await, 0);
    app.get(&p, w.t("L0001")).await.expect(200);
    assert_eq!(audited().await, 1);
}

/// Lists answer from rendered rows kept by (id, version): every kind of change must show in the next list
/// at once (an edit, a transfer away, a team assignment, an archive), and a list row must be the detail view
/// with phone and ID number masked.
async fn lists_show_every_change_at_once(app: TestApp) {
    let w = Who::login(&app, &["M0001", "M0002", "M0003", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王小明")).await);
    let row_of = async |token: &str| -> Option<Value> {
        let l = app
            .get(&format!("{CUSTOMERS}?limit=200"), token)
            .await
            .expect(200);
        items(&l.body).into_iter().find(|c| id_of(c) == cid)
    };
    // Twice: the second answer comes from the rendered row.
    for _ in 0..2 {
        let row = row_of(w.t("M0001")).await.unwrap();
        let mut detail = app.get(&path(cid, ""), w.t("M0001")).await.expect(200).body;
        detail["phone"] = json!("138****5678");
        detail["id_number"] = json!("3201**********1234");
        assert_eq!(row, detail);
    }
    row_of(w.t("L0001")).await.unwrap();

    // An edit by someone else shows in everyone's next list.
    app.patch(
        &path(cid, ""),
        w.t("L0001"),
        &json!({ "name": "王晓明", "phone": "13700001234" }),
    )
    .await
    .expect(200);
    for t in [w.t("M0001"), w.t("L0001")] {
        let row = row_of(t).await.unwrap();
        assert_eq!(row["name"], "王晓明");
        assert_eq!(row["phone"], "137****1234");
    }

    // Transferred to M0002: gone from M0001's list, in M0002's, with the new manager.
    let tr = app
        .post(
            &path(cid, "transfers"),
            Some(w.t("L0001")),
            &json!({ "to_manager_id": w.id("M0002"), "reason": "调岗" }),
        )
        .await
        .expect(201);
    let admin = app.login("admin").await;
    app.post(
        &format!("/api/v1/transfers/{}/approve", id_of(&tr.body)),
        Some(&admin),
        &json!({}),
    )
    .await
    .expect(200);
    assert!(row_of(w.t("M0001")).await.is_none());
    assert_eq!(
        row_of(w.t("M0002")).await.unwrap()["manager_id"],
        w.id("M0002")
    );
    assert_eq!(
        row_of(w.t("L0001")).await.unwrap()["manager_id"],
        w.id("M0002")
    );

    // Assigned to a team: its member M0003 sees it, and M0002's kept row shows the team.
    assert!(row_of(w.t("M0003")).await.is_none());
    let team = app
        .post(
            "/api/v1/teams",
            Some(w.t("L0001")),
            &json!({ "name": "鼓楼组", "members": [
                { "user_id": w.id("M0002"), "role": "relationship_manager" },
                { "user_id": w.id("M0003"), "role": "assistant" }
            ] }),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.req(
        Method::PUT,
        &format!("/api/v1/teams/{team}/customers"),
        Some(w.t("L0001")),
        Some(&json!({ "customer_ids": [cid] })),
    )
    .await
    .expect(200);
    assert_eq!(row_of(w.t("M0002")).await.unwrap()["team_id"], team);
    assert_eq!(row_of(w.t("M0003")).await.unwrap()["team_id"], team);

    // Archived: gone from every list.
    delete(&app, &path(cid, ""), w.t("M0002")).await.expect(204);
    for t in [w.t("M0002"), w.t("M0003"), w.t("L0001")] {
        assert!(row_of(t).await.is_none());
    }
}

async fn patch_changes_and_delete_archives(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王小明")).await);
    let p = path(cid, "");
    let r = app
        .patch(
            &p,
            w.t("M0001"),
            &json!({
                "name": "王晓明",
                "tier": "strategic",
                "category": null,
                "industry": null,
                "phone": "13700001234",
                "id_number": "320102199001015678",
                "birthday": "1991-02-28",
                "lunar_birthday": null,
                "gender": "male",
                "address": "南京市玄武区",
                "traits": null,
                "tags": ["新客户"],
                "status": "dormant"
            }),
        )
        .await
        .expect(200);
    let b = &r.body;
    assert_eq!(b["name"], "王晓明");
    assert_eq!(b["tier"], "strategic");
    assert!(b["category"].is_null() && b["industry"].is_null() && b["traits"].is_null());
    assert_eq!(b["phone"], "13700001234");
    assert_eq!(b["id_number"], "320102199001015678");
    assert_eq!(b["birthday"], "1991-02-28");
    assert!(b["lunar_birthday"].is_null());
    assert_eq!(b["gender"], "male");
    assert_eq!(b["tags"], json!(["新客户"]));
    assert_eq!(b["status"], "dormant");
    assert_eq!(b["kind"], "individual", "kind is fixed");
    assert_eq!(b["latitude"], 32.05, "untouched fields stay");
    // The stored row has the new birthday key (used by the birthday filter and reminders).
    let md: Option<String> = db(&app, move |c| {
        customers::table
            .find(cid)
            .select(customers::birthday_md)
            .first(c)
            .unwrap()
    })
    .await;
    assert_eq!(md.as_deref(), Some("02-28"));
    // Coordinates change together and clear together.
    let r = app
        .patch(
            &p,
            w.t("M0001"),
            &json!({ "latitude": 31.3, "longitude": 120.6 }),
        )
        .await
        .expect(200);
    assert_eq!(
        (r.body["latitude"].clone(), r.body["longitude"].clone()),
        (json!(31.3), json!(120.6))
    );
    assert_eq!(r.body["location_datum"], "wgs84");
    let r = app
        .patch(
            &p,
            w.t("M0001"),
            &json!({ "latitude": null, "longitude": null }),
        )
        .await
        .expect(200);
    assert!(r.body["latitude"].is_null() && r.body["location_datum"].is_null());
    // An empty PATCH changes nothing visible.
    let before = app.get(&p, w.t("M0001")).await.expect(200).body;
    let after = app
        .patch(&p, w.t("M0001"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(before["name"], after["name"]);
    // The leader may edit too; the archive records both changes.
    app.patch(&p, w.t("L0001"), &json!({ "traits": "爱喝茶" }))
        .await
        .expect(200);
    let t = app
        .get(&path(cid, "timeline"), w.t("M0001"))
        .await
        .expect(200);
    let lines = items(&t.body);
    assert_eq!(lines[0]["kind"], "customer");
    assert_eq!(lines[0]["actor_id"], w.id("L0001"));
    assert!(lines[0]["summary"].as_str().unwrap().contains("traits"));
    assert!(
        !t.text.contains("13700001234"),
        "no phone numbers in the archive"
    );

    // DELETE archives: 204, then 404 everywhere, gone from lists; the row is kept.
    delete(&app, &p, w.t("M0001")).await.expect(204);
    app.get(&p, w.t("M0001"))
        .await
        .problem(404, "customer_not_found");
    app.get(&p, w.t("L0001"))
        .await
        .problem(404, "customer_not_found");
    app.patch(&p, w.t("M0001"), &json!({ "name": "x" }))
        .await
        .problem(404, "customer_not_found");
    delete(&app, &p, w.t("M0001"))
        .await
        .problem(404, "customer_not_found");
    app.get(&path(cid, "holdings"), w.t("M0001"))
        .await
        .problem(404, "customer_not_found");
    let l = app.get(CUSTOMERS, w.t("L0001")).await.expect(200);
    assert!(!ids(&l.body).contains(&cid));
    let (status, archived, name): (String, bool, String) = db(&app, move |c| {
        customers::table
            .find(cid)
            .select((
                customers::status,
                customers::archived_at.is_not_null(),
                customers::name,
            ))
            .first(c)
            .unwrap()
    })
    .await;
    assert_eq!(
        (status.as_str(), archived, name.as_str()),
        ("archived", true, "王晓明")
    );
    // A leader of the subtree may archive too.
    let c2 = id_of(&create(&app, w.t("M0001"), &individual("李")).await);
    delete(&app, &path(c2, ""), w.t("L0001")).await.expect(204);
}

// ---------------------------------------------------------------------------------------------------------
// Contacts, holdings, dictionaries
// ---------------------------------------------------------------------------------------------------------

async fn corporate_customers_have_key_contacts(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let corp = id_of(&create(&app, w.t("M0001"), &corporate("某某公司")).await);
    let person = id_of(&create(&app, w.t("M0001"), &individual("王")).await);
    let cp = path(corp, "contacts");
    let body = json!({
        "name": "张总",
        "title": "法定代表人",
        "phone": "13655556666",
        "birthday": "1970-06-01",
        "lunar_birthday": { "month": 5, "day": 8 }
    });
    let r = app.post(&cp, Some(w.t("M0001")), &body).await.expect(201);
    let contact = id_of(&r.body);
    assert_eq!(r.body["customer_id"], corp);
    for f in ["name", "title", "phone", "birthday"] {
        assert_eq!(r.body[f], body[f], "{f}");
    }
    assert_eq!(
        r.body["lunar_birthday"],
        json!({ "month": 5, "day": 8, "leap": false })
    );
    let second = app
        .post(
            &cp,
            Some(w.t("M0001")),
            &json!({ "name": "李会计", "title": "财务负责人" }),
        )
        .await
        .expect(201);
    let l = app.get(&cp, w.t("M0001")).await.expect(200);
    assert_eq!(ids(&l.body), vec![contact, id_of(&second.body)]);
    assert_eq!(
        items(&l.body)[0]["phone"],
        "13655556666",
        "contacts are part of the detail view: phones in full"
    );
    let page = app
        .get(&format!("{cp}?limit=1"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(ids(&page.body), vec![contact]);
    let next = page.body["next_cursor"].as_str().unwrap();
    let page = app
        .get(&format!("{cp}?limit=1&cursor={next}"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(ids(&page.body), vec![id_of(&second.body)]);

    // An individual customer has no key contacts: 422 on `kind`, nothing stored; its list is empty.
    let before = count_contacts(&app).await;
    expect_field(
        app.post(&path(person, "contacts"), Some(w.t("M0001")), &body)
            .await,
        "kind",
        "not_corporate",
        "contact of an individual",
    );
    assert_eq!(count_contacts(&app).await, before);
    let l = app
        .get(&path(person, "contacts"), w.t("M0001"))
        .await
        .expect(200);
    assert!(items(&l.body).is_empty());

    // PATCH and archive.
    let cpath = format!("{cp}/{contact}");
    let r = app
        .patch(
            &cpath,
            w.t("L0001"),
            &json!({ "title": "董事长", "phone": null, "birthday": null }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["title"], "董事长");
    assert!(r.body["phone"].is_null() && r.body["birthday"].is_null());
    assert_eq!(r.body["name"], "张总");
    expect_field(
        app.patch(&cpath, w.t("M0001"), &json!({ "phone": "123" }))
            .await,
        "phone",
        "invalid_format",
        "contact phone",
    );
    // A contact id of another customer is not found under this one.
    let corp2 = id_of(&create(&app, w.t("M0001"), &corporate("另一公司")).await);
    app.patch(
        &format!("{}/{contact}", path(corp2, "contacts")),
        w.t("M0001"),
        &json!({ "title": "x" }),
    )
    .await
    .problem(404, "contact_not_found");
    app.patch(&format!("{cp}/abc"), w.t("M0001"), &json!({}))
        .await
        .problem(400, "invalid_path_parameter");
    delete(&app, &cpath, w.t("M0001")).await.expect(204);
    delete(&app, &cpath, w.t("M0001"))
        .await
        .problem(404, "contact_not_found");
    let l = app.get(&cp, w.t("M0001")).await.expect(200);
    assert_eq!(ids(&l.body), vec![id_of(&second.body)]);
    let kept: i64 = db(&app, move |c| {
        customer_contacts::table
            .filter(customer_contacts::id.eq(contact))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(kept, 1, "archived contacts are kept");
    let t = app
        .get(&path(corp, "timeline"), w.t("M0001"))
        .await
        .expect(200);
    let kinds: Vec<_> = items(&t.body)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["contact", "contact", "contact", "contact", "customer"]
    );
}

async fn holdings_keep_money_exact_and_dates_consistent(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王")).await);
    let hp = path(cid, "holdings");
    let t = w.t("M0001");
    let r = app
        .post(&hp, Some(t), &holding("large_cd", "500000.5"))
        .await
        .expect(201);
    let h = id_of(&r.body);
    assert_eq!(r.body["amount"], "500000.50", "two places, exact");
    assert_eq!(r.body["product_type"], "large_cd");
    assert_eq!(r.body["product_name"], "三年期定期存款");
    assert_eq!(r.body["open_date"], "2025-01-10");
    assert_eq!(r.body["maturity_date"], "2028-01-10");
    assert_eq!(r.body["rate"], "2.15");
    assert_eq!(r.body["status"], "active");
    assert!(r.body["next_repayment_date"].is_null());
    assert_eq!(r.body["overdue"], false);
    let fen: i64 = db(&app, move |c| {
        holdings::table
            .find(h)
            .select(holdings::amount_fen)
            .first(c)
            .unwrap()
    })
    .await;
    assert_eq!(fen, 50_000_050, "stored as whole fen");
    let big = app
        .post(&hp, Some(t), &holding("fund", "999999999999.99"))
        .await
        .expect(201);
    assert_eq!(big.body["amount"], "999999999999.99");
    app.post(&hp, Some(t), &holding("fund", "0.10"))
        .await
        .expect(201);

    // Loans: next repayment date and overdue flag.
    let loan = app
        .post(
            &hp,
            Some(t),
            &with(
                holding("loan", "200000"),
                json!({ "product_name": "经营贷", "next_repayment_date": "2026-07-20", "overdue": true }),
            ),
        )
        .await
        .expect(201);
    assert_eq!(loan.body["next_repayment_date"], "2026-07-20");
    assert_eq!(loan.body["overdue"], true);
    assert_eq!(loan.body["amount"], "200000.00");
    let lp = format!("{hp}/{}", id_of(&loan.body));
    let r = app
        .patch(
            &lp,
            t,
            &json!({ "overdue": false, "next_repayment_date": "2026-08-20", "amount": "150000.25" }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["overdue"], false);
    assert_eq!(r.body["next_repayment_date"], "2026-08-20");
    assert_eq!(r.body["amount"], "150000.25");
    // Turning a loan into a deposit while it keeps a repayment date is refused.
    expect_field(
        app.patch(&lp, t, &json!({ "product_type": "time_deposit" }))
            .await,
        "next_repayment_date",
        "only_for_loans",
        "deposit with a repayment date",
    );

    // Validation, each naming the field.
    let bad = [
        (json!({ "amount": "1.234" }), "amount", "too_many_decimals"),
        (json!({ "amount": "-1" }), "amount", "negative"),
        (json!({ "amount": "-0.01" }), "amount", "negative"),
        (json!({ "amount": "abc" }), "amount", "invalid_format"),
        (json!({ "amount": "" }), "amount", "invalid_format"),
        (json!({ "amount": "1e5" }), "amount", "invalid_format"),
        (json!({ "amount": 100 }), "amount", "invalid_type"),
        (
            json!({ "amount": "1000000000000.01" }),
            "amount",
            "out_of_range",
        ),
        (
            json!({ "open_date": "2026-03-01", "maturity_date": "2026-02-28" }),
            "maturity_date",
            "before_open_date",
        ),
        (
            json!({ "open_date": "2026-02-30" }),
            "open_date",
            "invalid_value",
        ),
        (
            json!({ "maturity_date": "2026-13-01" }),
            "maturity_date",
            "invalid_value",
        ),
        (
            json!({ "product_type": "spaceship" }),
            "product_type",
            "invalid_value",
        ),
        (json!({ "product_type": "" }), "product_type", "required"),
        (
            json!({ "product_name": "x".repeat(101) }),
            "product_name",
            "too_long",
        ),
        (json!({ "rate": "abc" }), "rate", "invalid_format"),
        (json!({ "rate": "101" }), "rate", "invalid_format"),
        (json!({ "status": "lost" }), "status", "invalid_value"),
        (json!({ "overdue": true }), "overdue", "only_for_loans"),
        (json!({ "overdue": "yes" }), "overdue", "invalid_type"),
        (
            json!({ "next_repayment_date": "2026-07-01" }),
            "next_repayment_date",
            "only_for_loans",
        ),
        (json!({ "colour": "red" }), "colour", "unknown_field"),
    ];
    let before = count_holdings(&app).await;
    for (change, field, code) in bad {
        let case = change.to_string();
        let r = app
            .post(&hp, Some(t), &with(holding("time_deposit", "1.00"), change))
            .await;
        expect_field(r, field, code, &case);
    }
    expect_field(
        app.post(&hp, Some(t), &without(holding("fund", "1"), "amount"))
            .await,
        "amount",
        "required",
        "missing amount",
    );
    assert_eq!(count_holdings(&app).await, before, "nothing stored");
    let hpath = format!("{hp}/{h}");
    for (change, field, code) in [
        (json!({ "amount": "0.001" }), "amount", "too_many_decimals"),
        (json!({ "amount": "-5" }), "amount", "negative"),
        (
            json!({ "maturity_date": "2020-01-01" }),
            "maturity_date",
            "before_open_date",
        ),
        (
            json!({ "product_type": "spaceship" }),
            "product_type",
            "invalid_value",
        ),
        (json!({ "status": "archived" }), "status", "invalid_value"),
        (json!({ "id": 3 }), "id", "unknown_field"),
    ] {
        let case = change.to_string();
        expect_field(app.patch(&hpath, t, &change).await, field, code, &case);
    }
    let r = app
        .patch(
            &hpath,
            t,
            &json!({ "status": "matured", "rate": null, "maturity_date": null }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "matured");
    assert!(r.body["rate"].is_null() && r.body["maturity_date"].is_null());

    // The list, by id, and paged; archived holdings leave it.
    let l = app.get(&hp, w.t("L0001")).await.expect(200);
    assert_eq!(items(&l.body).len(), 4);
    assert_eq!(ids(&l.body)[0], h);
    delete(&app, &hpath, t).await.expect(204);
    delete(&app, &hpath, t)
        .await
        .problem(404, "holding_not_found");
    app.patch(&hpath, t, &json!({ "amount": "1" }))
        .await
        .problem(404, "holding_not_found");
    let l = app.get(&format!("{hp}?limit=2"), t).await.expect(200);
    assert_eq!(items(&l.body).len(), 2);
    assert!(!ids(&l.body).contains(&h));
    assert!(l.body["next_cursor"].is_string());
}

async fn admins_extend_dictionaries_and_holdings_accept_the_new_codes(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let cid = id_of(&create(&app, w.t("M0001"), &individual("王")).await);
    let hp = path(cid, "holdings");
    let gold = with(
        holding("gold", "100.00"),
        json!({ "product_name": "积存金" }),
    );
    expect_field(
        app.post(&hp, Some(w.t("M0001")), &gold).await,
        "product_type",
        "invalid_value",
        "not yet a product type",
    );
    // Everyone reads the lists.
    let l = app
        .get("/api/v1/dictionaries/product_type", w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(l.body["kind"], "product_type");
    let codes: Vec<_> = items(&l.body)
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect();
    for c in [
        "time_deposit",
        "large_cd",
        "notice_deposit",
        "wealth",
        "fund",
        "insurance",
        "loan",
        "acceptance_bill",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c} in {codes:?}");
    }
    for kind in ["customer_category", "customer_tier"] {
        let l = app
            .get(&format!("/api/v1/dictionaries/{kind}"), w.t("M0001"))
            .await
            .expect(200);
        assert!(!items(&l.body).is_empty());
    }
    app.get("/api/v1/dictionaries/colours", w.t("M0001"))
        .await
        .problem(400, "invalid_path_parameter");

    // Only an admin adds.
    let add = json!({ "code": "gold", "label": "贵金属" });
    for u in ["M0001", "L0001"] {
        app.post("/api/v1/dictionaries/product_type", Some(w.t(u)), &add)
            .await
            .problem(403, "forbidden");
    }
    let r = app
        .post(
            "/api/v1/dictionaries/product_type",
            Some(w.t("admin")),
            &add,
        )
        .await
        .expect(201);
    assert_eq!(r.body["code"], "gold");
    assert_eq!(r.body["label"], "贵金属");
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["position"], 9, "after the last code");
    let l = app
        .get("/api/v1/dictionaries/product_type", w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(items(&l.body).last().unwrap()["code"], "gold");
    let r = app.post(&hp, Some(w.t("M0001")), &gold).await.expect(201);
    assert_eq!(r.body["product_type"], "gold");
    // A new tier works on customers at once.
    app.post(
        "/api/v1/dictionaries/customer_tier",
        Some(w.t("admin")),
        &json!({ "code": "vip_plus", "label": "超级VIP", "position": 0 }),
    )
    .await
    .expect(201);
    let c = create(
        &app,
        w.t("M0001"),
        &with(individual("李"), json!({ "tier": "vip_plus" })),
    )
    .await;
    assert_eq!(c["tier"], "vip_plus");
    let l = app
        .get("/api/v1/dictionaries/customer_tier", w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(items(&l.body)[0]["code"], "vip_plus", "by position");

    // Validation and duplicates.
    expect_field(
        app.post(
            "/api/v1/dictionaries/product_type",
            Some(w.t("admin")),
            &add,
        )
        .await,
        "code",
        "taken",
        "duplicate code",
    );
    for (b, field, code) in [
        (
            json!({ "code": "Gold!", "label": "x" }),
            "code",
            "invalid_format",
        ),
        (
            json!({ "code": "1gold", "label": "x" }),
            "code",
            "invalid_format",
        ),
        (
            json!({ "code": "g".repeat(33), "label": "x" }),
            "code",
            "invalid_format",
        ),
        (
            json!({ "code": "silver", "label": "" }),
            "label",
            "required",
        ),
        (
            json!({ "code": "silver", "label": "x".repeat(51) }),
            "label",
            "too_long",
        ),
        (
            json!({ "code": "silver", "label": "x", "position": -1 }),
            "position",
            "out_of_range",
        ),
        (
            json!({ "code": "silver", "label": "x", "active": false }),
            "active",
            "unknown_field",
        ),
        (json!({ "code": 5, "label": "x" }), "code", "invalid_type"),
    ] {
        let case = b.to_string();
        expect_field(
            app.post("/api/v1/dictionaries/product_type", Some(w.t("admin")), &b)
                .await,
            field,
            code,
            &case,
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Scope
// ---------------------------------------------------------------------------------------------------------

/// Every read and write on customer `id` as `token`, expecting `status` (404 for out of scope).
async fn every_route(app: &TestApp, token: &str, id: i64, contact: i64, holding_id: i64, ok: bool) {
    let p = path(id, "");
    let sub = |t: &str| path(id, t);
    let reads = [
        p.clone(),
        sub("contacts"),
        sub("holdings"),
        sub("notes"),
        sub("timeline"),
        sub("ownership"),
    ];
    for r in &reads {
        let res = app.get(r, token).await;
        if ok {
            res.expect(200);
        } else {
            res.problem(404, "customer_not_found");
        }
    }
    let writes: Vec<(Method, String, Value)> = vec![
        (Method::PATCH, p.clone(), json!({ "traits": "x" })),
        (Method::POST, sub("contacts"), json!({ "name": "新联系人" })),
        (
            Method::PATCH,
            format!("{}/{contact}", sub("contacts")),
            json!({ "title": "x" }),
        ),
        (Method::POST, sub("holdings"), holding("fund", "1.00")),
        (
            Method::PATCH,
            format!("{}/{holding_id}", sub("holdings")),
            json!({ "amount": "2.00" }),
        ),
        (Method::POST, sub("notes"), json!({ "text": "备注" })),
    ];
    for (m, url, body) in writes {
        let res = app.req(m.clone(), &url, Some(token), Some(&body)).await;
        if ok {
            assert!(res.status.is_success(), "{m} {url}: {}", res.text);
        } else {
            res.problem(404, "customer_not_found");
        }
    }
    if !ok {
        for url in [
            format!("{}/{contact}", sub("contacts")),
            format!("{}/{holding_id}", sub("holdings")),
            p,
        ] {
            delete(app, &url, token)
                .await
                .problem(404, "customer_not_found");
        }
    }
}

async fn every_role_sees_only_its_scope(app: TestApp) {
    let w = Who::login(
        &app,
        &[
            "M0001", "M0002", "M0003", "M0007", "M0013", "L0001", "L0002", "L0003",
        ],
    )
    .await;
    let corp = id_of(&create(&app, w.t("M0001"), &corporate("某某公司")).await);
    let contact = id_of(
        &app.post(
            &path(corp, "contacts"),
            Some(w.t("M0001")),
            &json!({ "name": "张总" }),
        )
        .await
        .expect(201)
        .body,
    );
    let h = id_of(
        &app.post(
            &path(corp, "holdings"),
            Some(w.t("M0001")),
            &holding("time_deposit", "100"),
        )
        .await
        .expect(201)
        .body,
    );
    // Out of scope: other managers (same and other sub-branch), leaders of other sub-branches.
    for u in ["M0002", "M0007", "M0013", "L0002", "L0003"] {
        every_route(&app, w.t(u), corp, contact, h, false).await;
        let l = app.get(CUSTOMERS, w.t(u)).await.expect(200);
        assert!(!ids(&l.body).contains(&corp), "{u} does not list it");
    }
    // In scope: the manager, the leader of the sub-branch, the admin.
    for u in ["M0001", "L0001", "admin"] {
        every_route(&app, w.t(u), corp, contact, h, true).await;
        let l = app.get(CUSTOMERS, w.t(u)).await.expect(200);
        assert!(ids(&l.body).contains(&corp), "{u} lists it");
    }
    // Nothing of that was changed by the refused calls: exactly the in-scope writes happened.
    let contacts = app
        .get(&path(corp, "contacts"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(
        items(&contacts.body).len(),
        4,
        "the first and three added in scope"
    );
    // An unknown id is the same 404.
    app.get(&path(999_999, ""), w.t("admin"))
        .await
        .problem(404, "customer_not_found");
    app.get(&format!("{CUSTOMERS}/abc"), w.t("admin"))
        .await
        .problem(400, "invalid_path_parameter");
    app.get(&format!("{CUSTOMERS}/0"), w.t("admin"))
        .await
        .problem(400, "invalid_path_parameter");
    // No token: 401.
    app.req(Method::GET, CUSTOMERS, None, None)
        .await
        .problem(401, "missing_token");

    // A team: its members see the team's customers; other managers still do not.
    let team = app
        .post(
            "/api/v1/teams",
            Some(w.t("L0001")),
            &json!({
                "name": "鼓楼一组",
                "members": [
                    { "user_id": w.id("M0001"), "role": "leader" },
                    { "user_id": w.id("M0002"), "role": "assistant" }
                ]
            }),
        )
        .await
        .expect(201);
    let team_id = id_of(&team.body);
    app.req(
        Method::PUT,
        &format!("/api/v1/teams/{team_id}/customers"),
        Some(w.t("L0001")),
        Some(&json!({ "customer_ids": [corp] })),
    )
    .await
    .expect(200);
    let d = app.get(&path(corp, ""), w.t("M0002")).await.expect(200);
    assert_eq!(d.body["team_id"], team_id);
    assert_eq!(d.body["manager_id"], w.id("M0001"), "still M0001's");
    let l = app.get(CUSTOMERS, w.t("M0002")).await.expect(200);
    assert_eq!(ids(&l.body), vec![corp]);
    assert_eq!(
        items(&l.body)[0]["phone"],
        "139****1111",
        "masked for team members too"
    );
    let team_filter = app
        .get(
            &format!("{CUSTOMERS}?manager_id={}", w.id("M0001")),
            w.t("M0002"),
        )
        .await
        .expect(200);
    assert_eq!(ids(&team_filter.body), vec![corp]);
    every_route(&app, w.t("M0002"), corp, contact, h, true).await;
    // The team member's view is audited: they are not the responsible manager.
    let r = app
        .get(
            &format!(
                "/api/v1/audit-events?entity=customer&actor_id={}",
                w.id("M0002")
            ),
            w.t("admin"),
        )
        .await
        .expect(200);
    assert!(items(&r.body).iter().any(|e| e["action"] == "customer.read"
        && e["entity_id"].as_str() == Some(corp.to_string().as_str())));
    // … but only the responsible manager (or a leader) may archive it.
    delete(&app, &path(corp, ""), w.t("M0002"))
        .await
        .problem(403, "forbidden");
    for u in ["M0003", "M0007"] {
        every_route(&app, w.t(u), corp, contact, h, false).await;
    }
    // An org filter names only orgs in scope; a manager's own org works and leaves the team's customer in.
    let l = app
        .get(&format!("{CUSTOMERS}?limit=200"), w.t("L0002"))
        .await
        .expect(200);
    assert!(items(&l.body).is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

async fn every_customer_field_is_validated(app: TestApp) {
    let w = Who::login(&app, &["M0001"]).await;
    let t = w.t("M0001");
    let tomorrow = (today() + Duration::days(1)).to_string();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "name": "x".repeat(101) }), "name", "too_long"),
        (json!({ "name": "   " }), "name", "required"),
        (json!({ "name": "a\u{0007}b" }), "name", "invalid_format"),
        (json!({ "name": 5 }), "name", "invalid_type"),
        (json!({ "name": null }), "name", "invalid_type"),
        (json!({ "kind": "alien" }), "kind", "invalid_value"),
        (json!({ "kind": 1 }), "kind", "invalid_type"),
        (json!({ "category": "nope" }), "category", "invalid_value"),
        (
            json!({ "category": "x".repeat(33) }),
            "category",
            "too_long",
        ),
        (json!({ "tier": "platinum" }), "tier", "invalid_value"),
        (
            json!({ "industry": "x".repeat(51) }),
            "industry",
            "too_long",
        ),
        (json!({ "phone": "12345" }), "phone", "invalid_format"),
        (json!({ "phone": "2381234567a" }), "phone", "invalid_format"),
        (json!({ "phone": 13812345678_i64 }), "phone", "invalid_type"),
        (json!({ "id_number": "123" }), "id_number", "invalid_format"),
        (
            json!({ "id_number": "32010219900101123Y" }),
            "id_number",
            "invalid_format",
        ),
        (
            json!({ "birthday": "2026-02-30" }),
            "birthday",
            "invalid_value",
        ),
        (
            json!({ "birthday": "1990-1-1x" }),
            "birthday",
            "invalid_value",
        ),
        (json!({ "birthday": tomorrow }), "birthday", "in_future"),
        (json!({ "birthday": 19900101 }), "birthday", "invalid_type"),
        (
            json!({ "lunar_birthday": { "month": 13, "day": 1 } }),
            "lunar_birthday.month",
            "out_of_range",
        ),
        (
            json!({ "lunar_birthday": { "month": 1, "day": 31 } }),
            "lunar_birthday.day",
            "out_of_range",
        ),
        (
            json!({ "lunar_birthday": { "month": 1, "day": 1, "year": 1990 } }),
            "lunar_birthday.year",
            "unknown_field",
        ),
        (
            json!({ "lunar_birthday": { "day": 1 } }),
            "lunar_birthday.month",
            "required",
        ),
        (json!({ "gender": "x" }), "gender", "invalid_value"),
        (json!({ "address": "x".repeat(201) }), "address", "too_long"),
        (json!({ "latitude": 91.0 }), "latitude", "out_of_range"),
        (json!({ "latitude": -90.5 }), "latitude", "out_of_range"),
        (json!({ "longitude": 181.0 }), "longitude", "out_of_range"),
        (json!({ "longitude": -180.01 }), "longitude", "out_of_range"),
        (json!({ "latitude": "32.05" }), "latitude", "invalid_type"),
        (
            json!({ "location_datum": "bd09" }),
            "location_datum",
            "invalid_value",
        ),
        (json!({ "traits": "x".repeat(501) }), "traits", "too_long"),
        (
            json!({ "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
            "tags",
            "too_many",
        ),
        (json!({ "tags": ["x".repeat(21)] }), "tags.0", "too_long"),
        (json!({ "tags": "VIP" }), "tags", "invalid_type"),
        (json!({ "status": "archived" }), "status", "invalid_value"),
        (json!({ "status": "gone" }), "status", "invalid_value"),
        (json!({ "manager_id": "x" }), "manager_id", "invalid_type"),
        (
            json!({ "client_id": "x".repeat(129) }),
            "client_id",
            "invalid_format",
        ),
        (json!({ "colour": "red" }), "colour", "unknown_field"),
        (json!({ "manager": 1 }), "manager", "unknown_field"),
    ];
    let before = count_customers(&app).await;
    for (change, field, code) in cases {
        let case = change.to_string();
        let r = app
            .post(CUSTOMERS, Some(t), &with(individual("王"), change))
            .await;
        expect_field(r, field, code, &case);
    }
    // A latitude without a longitude, and a datum without coordinates.
    expect_field(
        app.post(CUSTOMERS, Some(t), &without(individual("王"), "longitude"))
            .await,
        "longitude",
        "required",
        "latitude alone",
    );
    let no_coords = without(without(individual("王"), "latitude"), "longitude");
    expect_field(
        app.post(CUSTOMERS, Some(t), &no_coords).await,
        "location_datum",
        "requires_coordinates",
        "datum alone",
    );
    for f in ["kind", "name"] {
        expect_field(
            app.post(CUSTOMERS, Some(t), &without(individual("王"), f))
                .await,
            f,
            "required",
            f,
        );
    }
    // An ID number is checked against the kind: an 18-digit ID for a person, a document code for a company.
    expect_field(
        app.post(
            CUSTOMERS,
            Some(t),
            &with(corporate("某公司"), json!({ "id_number": "有限公司" })),
        )
        .await,
        "id_number",
        "invalid_format",
        "corporate id",
    );
    // Several problems at once are all named.
    let r = app
        .post(
            CUSTOMERS,
            Some(t),
            &with(
                individual("王"),
                json!({ "name": "", "phone": "1", "latitude": 100.0 }),
            ),
        )
        .await
        .problem(422, "validation_failed");
    let fields: HashSet<_> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    for f in ["name", "phone", "latitude"] {
        assert!(fields.contains(f), "{f} in {r}");
    }
    // Not JSON, or not a JSON object.
    let res = app
        .client
        .post(format!("{}{CUSTOMERS}", app.address))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body("{\"kind\":")
        .send()
        .await
        .unwrap();
    TestApp::read(res).await.problem(400, "malformed_json");
    let res = app
        .client
        .post(format!("{}{CUSTOMERS}", app.address))
        .bearer_auth(t)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    TestApp::read(res)
        .await
        .problem(415, "unsupported_media_type");
    expect_field(
        app.post(CUSTOMERS, Some(t), &json!("customer")).await,
        "body",
        "invalid_type",
        "a string body",
    );
    assert_eq!(count_customers(&app).await, before, "nothing was created");

    // PATCH validates the same way.
    let cid = id_of(&create(&app, t, &individual("王")).await);
    let p = path(cid, "");
    let patch_cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "name": "x".repeat(101) }), "name", "too_long"),
        (json!({ "name": "" }), "name", "required"),
        (json!({ "name": null }), "name", "invalid_type"),
        (
            json!({ "birthday": "2026-02-30" }),
            "birthday",
            "invalid_value",
        ),
        (json!({ "birthday": tomorrow }), "birthday", "in_future"),
        (json!({ "tier": "platinum" }), "tier", "invalid_value"),
        (json!({ "category": "nope" }), "category", "invalid_value"),
        (json!({ "phone": "555" }), "phone", "invalid_format"),
        (
            json!({ "id_number": "91320102MA1XYZ1234" }),
            "id_number",
            "invalid_format",
        ),
        (
            json!({ "latitude": 91.0, "longitude": 118.0 }),
            "latitude",
            "out_of_range",
        ),
        (
            json!({ "latitude": 32.0, "longitude": 200.0 }),
            "longitude",
            "out_of_range",
        ),
        (json!({ "latitude": 32.0 }), "longitude", "required"),
        (json!({ "longitude": 118.0 }), "latitude", "required"),
        (json!({ "latitude": null }), "longitude", "required"),
        (
            json!({ "location_datum": "gcj02" }),
            "location_datum",
            "requires_coordinates",
        ),
        (
            json!({ "latitude": null, "longitude": 118.0 }),
            "latitude",
            "required",
        ),
        (json!({ "status": "archived" }), "status", "invalid_value"),
        (json!({ "status": null }), "status", "invalid_type"),
        (json!({ "tags": null }), "tags", "invalid_type"),
        (json!({ "gender": "robot" }), "gender", "invalid_value"),
        (json!({ "kind": "corporate" }), "kind", "unknown_field"),
        (json!({ "manager_id": 1 }), "manager_id", "unknown_field"),
        (json!({ "traits": 5 }), "traits", "invalid_type"),
        (
            json!({ "lunar_birthday": { "month": 0, "day": 1 } }),
            "lunar_birthday.month",
            "out_of_range",
        ),
    ];
    let seq_before = app.get(&p, t).await.expect(200).body["seq"].clone();
    for (change, field, code) in patch_cases {
        let case = format!("PATCH {change}");
        expect_field(app.patch(&p, t, &change).await, field, code, &case);
    }
    let after = app.get(&p, t).await.expect(200).body;
    assert_eq!(
        after["seq"], seq_before,
        "no refused PATCH changed anything"
    );
    assert_eq!(after["name"], "王");

    // Contacts and notes are validated too.
    let corp = id_of(&create(&app, t, &corporate("某公司")).await);
    let cp = path(corp, "contacts");
    for (b, field, code) in [
        (json!({ "name": "x".repeat(51) }), "name", "too_long"),
        (json!({ "name": "" }), "name", "required"),
        (json!({ "title": "x" }), "name", "required"),
        (
            json!({ "name": "张", "title": "x".repeat(51) }),
            "title",
            "too_long",
        ),
        (
            json!({ "name": "张", "phone": "123" }),
            "phone",
            "invalid_format",
        ),
        (
            json!({ "name": "张", "birthday": tomorrow }),
            "birthday",
            "in_future",
        ),
        (
            json!({ "name": "张", "birthday": "2025-02-29" }),
            "birthday",
            "invalid_value",
        ),
        (
            json!({ "name": "张", "lunar_birthday": { "month": 12, "day": 0 } }),
            "lunar_birthday.day",
            "out_of_range",
        ),
        (
            json!({ "name": "张", "email": "a@b" }),
            "email",
            "unknown_field",
        ),
        (json!({ "name": ["张"] }), "name", "invalid_type"),
    ] {
        let case = format!("contact {b}");
        expect_field(app.post(&cp, Some(t), &b).await, field, code, &case);
    }
    let np = path(corp, "notes");
    for (b, field, code) in [
        (json!({ "text": "" }), "text", "required"),
        (json!({ "text": "x".repeat(2001) }), "text", "too_long"),
        (json!({ "text": 1 }), "text", "invalid_type"),
        (
            json!({ "text": "a", "pinned": true }),
            "pinned",
            "unknown_field",
        ),
    ] {
        let case = format!("note {b}");
        expect_field(app.post(&np, Some(t), &b).await, field, code, &case);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Offline replay
// ---------------------------------------------------------------------------------------------------------

async fn every_create_replays_once(app: TestApp) {
    let w = Who::login(&app, &["M0001", "M0002"]).await;
    let t = w.t("M0001");

    // Customer, by header.
    let body = individual("王");
    let first = post_keyed(&app, CUSTOMERS, t, "cust-1", &body)
        .await
        .expect(201);
    let n = count_customers(&app).await;
    let again = post_keyed(&app, CUSTOMERS, t, "cust-1", &body)
        .await
        .expect(201);
    assert_eq!(again.body, first.body, "the same body again");
    assert_eq!(count_customers(&app).await, n, "nothing new");
    expect_field(
        post_keyed(
            &app,
            CUSTOMERS,
            t,
            "cust-1",
            &with(body.clone(), json!({ "name": "李" })),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "same key, other body",
    );
    // Keys are per user: another manager's same key is a new customer of theirs.
    let theirs = post_keyed(&app, CUSTOMERS, w.t("M0002"), "cust-1", &body)
        .await
        .expect(201);
    assert_ne!(id_of(&theirs.body), id_of(&first.body));
    assert_eq!(theirs.body["manager_id"], w.id("M0002"));
    // Customer, by client_id in the body.
    let by_client = with(corporate("某公司"), json!({ "client_id": "c-42" }));
    let first = app.post(CUSTOMERS, Some(t), &by_client).await.expect(201);
    let n = count_customers(&app).await;
    let again = app.post(CUSTOMERS, Some(t), &by_client).await.expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(count_customers(&app).await, n);
    expect_field(
        app.post(
            CUSTOMERS,
            Some(t),
            &with(by_client.clone(), json!({ "name": "另一公司" })),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "same client id, other body",
    );
    // A refused create stores nothing: fixed, the same key then creates.
    let bad = with(individual("王"), json!({ "tier": "platinum" }));
    expect_field(
        post_keyed(&app, CUSTOMERS, t, "cust-2", &bad).await,
        "tier",
        "invalid_value",
        "refused create",
    );
    post_keyed(&app, CUSTOMERS, t, "cust-2", &individual("好"))
        .await
        .expect(201);
    // The replay survives later changes: it is the first answer.
    let corp = id_of(&first.body);
    app.patch(&path(corp, ""), t, &json!({ "name": "改名公司" }))
        .await
        .expect(200);
    let again = app.post(CUSTOMERS, Some(t), &by_client).await.expect(201);
    assert_eq!(again.body["name"], "某公司");

    // Contact.
    let cp = path(corp, "contacts");
    let contact = json!({ "name": "张总", "client_id": "contact-1" });
    let first = app.post(&cp, Some(t), &contact).await.expect(201);
    let n = count_contacts(&app).await;
    let again = app.post(&cp, Some(t), &contact).await.expect(201);
    assert_eq!(again.body, first.body);
    let keyed = post_keyed(&app, &cp, t, "contact-h", &json!({ "name": "李会计" }))
        .await
        .expect(201);
    let again = post_keyed(&app, &cp, t, "contact-h", &json!({ "name": "李会计" }))
        .await
        .expect(201);
    assert_eq!(again.body, keyed.body);
    assert_eq!(count_contacts(&app).await, n + 1);
    expect_field(
        app.post(
            &cp,
            Some(t),
            &json!({ "name": "王总", "client_id": "contact-1" }),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "contact key reused",
    );

    // Holding.
    let hp = path(corp, "holdings");
    let h = with(holding("loan", "1000"), json!({ "client_id": "holding-1" }));
    let first = app.post(&hp, Some(t), &h).await.expect(201);
    let n = count_holdings(&app).await;
    let again = app.post(&hp, Some(t), &h).await.expect(201);
    assert_eq!(again.body, first.body);
    let again = post_keyed(&app, &hp, t, "holding-1", &h).await.expect(201);
    assert_eq!(
        again.body, first.body,
        "header and client id name the same key"
    );
    assert_eq!(count_holdings(&app).await, n);
    expect_field(
        app.post(&hp, Some(t), &with(h.clone(), json!({ "amount": "2000" })))
            .await,
        "idempotency-key",
        "key_reused",
        "holding key reused",
    );

    // Note.
    let np = path(corp, "notes");
    let note = json!({ "text": "客户下月有一笔资金到账", "client_id": "note-1" });
    let first = app.post(&np, Some(t), &note).await.expect(201);
    let n = count_notes(&app).await;
    let again = app.post(&np, Some(t), &note).await.expect(201);
    assert_eq!(again.body, first.body);
    let keyed = post_keyed(&app, &np, t, "note-h", &json!({ "text": "回访" }))
        .await
        .expect(201);
    let again = post_keyed(&app, &np, t, "note-h", &json!({ "text": "回访" }))
        .await
        .expect(201);
    assert_eq!(again.body, keyed.body);
    assert_eq!(count_notes(&app).await, n + 1);
    expect_field(
        app.post(
            &np,
            Some(t),
            &json!({ "text": "别的", "client_id": "note-1" }),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "note key reused",
    );
    // A key used for one kind of record is not silently reused for another.
    expect_field(
        post_keyed(&app, &np, t, "cust-1", &json!({ "text": "x" })).await,
        "idempotency-key",
        "key_reused",
        "customer key on a note",
    );
    // The same key and body sent to another customer is another request, not a replay of the first.
    let corp2 = id_of(&create(&app, t, &corporate("第二公司")).await);
    expect_field(
        post_keyed(
            &app,
            &path(corp2, "notes"),
            t,
            "note-h",
            &json!({ "text": "回访" }),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "note key on another customer",
    );
    expect_field(
        app.post(&path(corp2, "contacts"), Some(t), &contact).await,
        "idempotency-key",
        "key_reused",
        "contact client id on another customer",
    );
    let l = app.get(&path(corp2, "contacts"), t).await.expect(200);
    assert!(
        items(&l.body).is_empty(),
        "nothing was attached to the second customer"
    );
    // The timeline has each record once.
    let tl = app.get(&path(corp, "timeline"), t).await.expect(200);
    let notes = items(&tl.body)
        .iter()
        .filter(|e| e["kind"] == "note")
        .count();
    assert_eq!(notes, 2);
}

// ---------------------------------------------------------------------------------------------------------
// Timeline
// ---------------------------------------------------------------------------------------------------------

async fn the_timeline_is_newest_first(app: TestApp) {
    let w = Who::login(&app, &["M0001", "L0001"]).await;
    let t = w.t("M0001");
    let cid = id_of(&create(&app, t, &individual("王")).await);
    let h = app
        .post(&path(cid, "holdings"), Some(t), &holding("wealth", "30000"))
        .await
        .expect(201);
    let note = app
        .post(
            &path(cid, "notes"),
            Some(t),
            &json!({ "text": "客户手机 13812345678，想了解理财" }),
        )
        .await
        .expect(201);
    assert_eq!(note.body["author"]["id"], w.id("M0001"));
    assert_eq!(note.body["customer_id"], cid);
    let visit = app
        .post(
            "/api/v1/visits",
            Some(t),
            &json!({
                "customer_id": cid,
                "purpose": "介绍大额存单",
                "phone_time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "latitude": 32.05,
                "longitude": 118.78,
                "accuracy_m": 15.0,
                "datum": "wgs84",
            }),
        )
        .await
        .expect(201);
    app.patch(
        &format!("{}/{}", path(cid, "holdings"), id_of(&h.body)),
        t,
        &json!({ "status": "closed" }),
    )
    .await
    .expect(200);
    app.post(
        &path(cid, "notes"),
        Some(w.t("L0001")),
        &json!({ "text": "行长批注" }),
    )
    .await
    .expect(201);

    let r = app.get(&path(cid, "timeline"), t).await.expect(200);
    let lines = items(&r.body);
    let kinds: Vec<&str> = lines.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["note", "holding", "visit", "note", "holding", "customer"],
        "{}",
        r.text
    );
    assert_eq!(lines[0]["actor_id"], w.id("L0001"));
    assert_eq!(lines[2]["ref_id"], id_of(&visit.body));
    assert_eq!(lines[3]["ref_id"], id_of(&note.body));
    assert_eq!(lines[4]["ref_id"], id_of(&h.body));
    assert!(
        !r.text.contains("13812345678"),
        "phone numbers stay out of the archive: {}",
        r.text
    );
    let times: Vec<&str> = lines.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let stamps: Vec<chrono::DateTime<Utc>> = times.iter().map(|s| s.parse().unwrap()).collect();
    assert!(
        stamps.windows(2).all(|p| p[0] >= p[1]),
        "newest first: {times:?}"
    );
    let line_ids: Vec<i64> = lines.iter().map(id_of).collect();
    assert!(line_ids.windows(2).all(|p| p[0] > p[1]));

    // Paged: no duplicates, no misses.
    let mut seen = Vec::new();
    let mut url = format!("{}?limit=4", path(cid, "timeline"));
    loop {
        let r = app.get(&url, w.t("L0001")).await.expect(200);
        seen.extend(ids(&r.body));
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{}?limit=4&cursor={c}", path(cid, "timeline")),
            None => break,
        }
    }
    assert_eq!(seen, line_ids);

    // Notes list, newest first.
    let n = app.get(&path(cid, "notes"), t).await.expect(200);
    let notes = items(&n.body);
    let texts: Vec<&str> = notes.iter().map(|x| x["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["行长批注", "客户手机 13812345678，想了解理财"]);
}

backend_tests!(
    customers_are_created_and_every_field_round_trips,
    the_list_filters_and_pages,
    the_birthday_filter_counts_lunar_birthdays,
    lists_mask_pii_and_detail_views_are_audited,
    detail_etags_answer_304_until_a_change,
    patch_changes_and_delete_archives,
    lists_show_every_change_at_once,
    corporate_customers_have_key_contacts,
    holdings_keep_money_exact_and_dates_consistent,
    admins_extend_dictionaries_and_holdings_accept_the_new_codes,
    every_role_sees_only_its_scope,
    every_customer_field_is_validated,
    every_create_replays_once,
    the_timeline_is_newest_first,
);
