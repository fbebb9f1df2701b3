//! Visits: check-in with distance and each flag on known coordinate pairs (a GCJ-02 one too), the one open
//! visit per manager, check-out, the report with its 24-hour window and amendments, scope for every role,
//! lists with filters and paging, validation, offline replay, and the change sequence.
//!
//! Demo tree: 鼓楼 NJ-GL (L0001, M0001–M0006), 玄武 NJ-XW (L0002, M0007–M0012), 姑苏, 园区. Flags depend on
//! the manager's previous check-in (`impossible_travel`), so each flag test uses a manager of its own.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, get_if_none_match, id_of, ids, seed_customer};

const VISITS: &str = "/api/v1/visits";
/// A customer's registered location in Nanjing (WGS-84).
const NJ: (f64, f64) = (32.05, 118.78);
/// Tiananmen: WGS-84, and the same physical point in GCJ-02 as Chinese maps give it.
const TIANANMEN_WGS: (f64, f64) = (39.908_692, 116.397_477);
const TIANANMEN_GCJ: (f64, f64) = (39.910_096, 116.403_719);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A valid check-in body at `(lat, lon)` in WGS-84.
fn body(customer_id: i64, (lat, lon): (f64, f64)) -> Value {
    json!({
        "customer_id": customer_id,
        "purpose": "介绍大额存单",
        "phone_time": rfc3339(Utc::now()),
        "latitude": lat,
        "longitude": lon,
        "accuracy_m": 15.0,
        "datum": "wgs84",
    })
}

/// `body` with some fields replaced.
fn with(mut b: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn check_in(app: &TestApp, token: &str, b: &Value) -> Resp {
    app.post(VISITS, Some(token), b).await
}

/// Checks in and returns the created visit.
async fn visit(app: &TestApp, token: &str, b: &Value) -> Value {
    check_in(app, token, b).await.expect(201).body
}

async fn checkout(app: &TestApp, token: &str, id: i64, b: &Value) -> Resp {
    app.post(&format!("{VISITS}/{id}/checkout"), Some(token), b)
        .await
}

async fn put_report(app: &TestApp, token: &str, id: i64, b: &Value) -> Resp {
    app.req(
        Method::PUT,
        &format!("{VISITS}/{id}/report"),
        Some(token),
        Some(b),
    )
    .await
}

async fn amend(app: &TestApp, token: &str, id: i64, b: &Value) -> Resp {
    app.post(&format!("{VISITS}/{id}/report/amendments"), Some(token), b)
        .await
}

/// A POST or PUT with an `Idempotency-Key` header.
async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: &str,
    b: &Value,
) -> Resp {
    let res = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(b)
        .send()
        .await
        .unwrap();
    TestApp::read(res).await
}

fn flags(v: &Value) -> Vec<String> {
    v["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("no flags in {v}"))
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn report_body() -> Value {
    json!({
        "persons_met": "王总、财务李经理",
        "summary": "介绍了大额存单和结构性存款",
        "needs": "三个月后有一笔资金到期",
        "outcome": "同意下周提供方案",
        "important_change": false,
    })
}

/// What the database holds for a visit: (seq, flags) and the customer's archive kinds.
async fn stored(app: &TestApp, visit_id: i64) -> (i64, String, Vec<String>) {
    use fieldwork::db::schema::{customer_events, visits};
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get_sync().unwrap();
        let c: &mut fieldwork::db::DbConn = &mut conn;
        let (seq, flags, customer): (i64, String, i64) = visits::table
            .find(visit_id)
            .select((visits::seq, visits::flags, visits::customer_id))
            .first(c)
            .unwrap();
        let kinds = customer_events::table
            .filter(customer_events::customer_id.eq(customer))
            .filter(customer_events::ref_id.eq(visit_id))
            .order(customer_events::id.asc())
            .select(customer_events::kind)
            .load(c)
            .unwrap();
        (seq, flags, kinds)
    })
    .await
    .unwrap()
}

/// Moves a report's first-written time back by `hours` (the server clock is real: no sleeping).
async fn age_report(app: &TestApp, visit_id: i64, hours: i64) {
    use fieldwork::db::schema::visit_reports;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get_sync().unwrap();
        let c: &mut fieldwork::db::DbConn = &mut conn;
        let first: chrono::NaiveDateTime = visit_reports::table
            .find(visit_id)
            .select(visit_reports::created_at)
            .first(c)
            .unwrap();
        diesel::update(visit_reports::table.find(visit_id))
            .set(visit_reports::created_at.eq(first - Duration::hours(hours)))
            .execute(c)
            .unwrap();
    })
    .await
    .unwrap();
}

async fn get(app: &TestApp, token: &str, id: i64) -> Resp {
    app.get(&format!("{VISITS}/{id}"), token).await
}

async fn list(app: &TestApp, token: &str, query: &str) -> Resp {
    app.get(&format!("{VISITS}{query}"), token).await
}

async fn org_id(app: &TestApp, token: &str, code: &str) -> i64 {
    let r = app.get("/api/v1/orgs?limit=200", token).await.expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == code)
        .map(id_of)
        .unwrap_or_else(|| panic!("org {code}"))
}

// ---------------------------------------------------------------------------------------------------------

async fn check_in_measures_the_distance_and_flags(app: TestApp) {
    // 0.001° of latitude north of the customer: about 111 m, nothing unusual.
    let m1 = app.login("M0001").await;
    let c1 = seed_customer(&app, "M0001", "近处客户", Some(NJ)).await;
    let v = visit(&app, &m1, &body(c1, (NJ.0 + 0.001, NJ.1))).await;
    let d = v["distance_m"].as_f64().unwrap();
    assert!((d - 111.2).abs() < 1.0, "{v}");
    assert!(flags(&v).is_empty(), "{v}");
    assert_eq!(v["customer"], json!({ "id": c1, "name": "近处客户" }));
    assert_eq!(v["manager"]["employee_no"], "M0001");
    // The check-in answers with the name read with the session; the detail reads it from the user.
    let shown = app
        .get(&format!("/api/v1/visits/{}", v["id"]), &m1)
        .await
        .expect(200)
        .body;
    assert!(!v["manager"]["name"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(v["manager"], shown["manager"]);
    assert_eq!(shown["customer"], v["customer"]);
    assert_eq!(shown["has_report"], false);
    assert!(shown["report"].is_null(), "{shown}");
    assert_eq!(v["datum"], "wgs84");
    assert_eq!(v["has_report"], false);
    assert!(v["checked_out_at"].is_null() && v["duration_secs"].is_null());
    let server: DateTime<Utc> = v["checked_in_at"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now() - server).num_seconds().abs() < 60);
    let (seq, stored_flags, kinds) = stored(&app, id_of(&v)).await;
    assert!(seq > 0 && stored_flags.is_empty());
    assert_eq!(kinds, ["visit"]);
    let got = app
        .get(&format!("{VISITS}/{}", id_of(&v)), &m1)
        .await
        .expect(200);
    assert_eq!(got.body["distance_m"], v["distance_m"]);
    assert!(got.body["report"].is_null());
    // The check-in's answer is built from what was inserted, not read back: it must equal the stored row.
    for (field, value) in v.as_object().unwrap() {
        assert_eq!(
            &got.body[field], value,
            "{field} differs from the stored visit"
        );
    }

    // 0.01° north: about 1.1 km, beyond the 500 m radius.
    let m2 = app.login("M0002").await;
    let c2 = seed_customer(&app, "M0002", "远处客户", Some(NJ)).await;
    let v = visit(&app, &m2, &body(c2, (NJ.0 + 0.01, NJ.1))).await;
    assert!(
        (v["distance_m"].as_f64().unwrap() - 1112.0).abs() < 5.0,
        "{v}"
    );
    assert_eq!(flags(&v), ["far_from_customer"]);
    assert_eq!(stored(&app, id_of(&v)).await.1, "far_from_customer");

    // A poor fix.
    let m3 = app.login("M0003").await;
    let c3 = seed_customer(&app, "M0003", "客户三", Some(NJ)).await;
    let v = visit(&app, &m3, &with(body(c3, NJ), json!({ "accuracy_m": 250 }))).await;
    assert_eq!(flags(&v), ["poor_accuracy"]);

    // The phone's clock 11 minutes off (either way).
    let m4 = app.login("M0004").await;
    let c4 = seed_customer(&app, "M0004", "客户四", Some(NJ)).await;
    let late = rfc3339(Utc::now() - Duration::minutes(11));
    let v = visit(
        &app,
        &m4,
        &with(body(c4, NJ), json!({ "phone_time": late })),
    )
    .await;
    assert_eq!(flags(&v), ["clock_skew"]);
    checkout(&app, &m4, id_of(&v), &json!({})).await.expect(200);
    // An offset other than Z is the same instant: 5 minutes ahead is within tolerance.
    let ahead = (Utc::now() + Duration::minutes(5))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339();
    let v = visit(
        &app,
        &m4,
        &with(body(c4, NJ), json!({ "phone_time": ahead })),
    )
    .await;
    assert!(flags(&v).is_empty(), "{v}");

    // A customer without a registered location: no distance.
    let m5 = app.login("M0005").await;
    let c5 = seed_customer(&app, "M0005", "无坐标客户", None).await;
    let v = visit(&app, &m5, &body(c5, NJ)).await;
    assert!(v["distance_m"].is_null(), "{v}");
    assert_eq!(flags(&v), ["no_customer_location"]);
}

async fn impossible_travel_and_gcj02(app: TestApp) {
    // Two check-ins 1° of latitude (111 km) apart within minutes.
    let m6 = app.login("M0006").await;
    let a = seed_customer(&app, "M0006", "南京客户", Some((32.0, 118.78))).await;
    let b = seed_customer(&app, "M0006", "北边客户", Some((33.0, 118.78))).await;
    let first = visit(&app, &m6, &body(a, (32.0, 118.78))).await;
    assert!(flags(&first).is_empty());
    checkout(&app, &m6, id_of(&first), &json!({}))
        .await
        .expect(200);
    let second = visit(&app, &m6, &body(b, (33.0, 118.78))).await;
    assert_eq!(flags(&second), ["impossible_travel"]);

    // A GCJ-02 fix of a customer registered in WGS-84 at the same physical point.
    let m7 = app.login("M0007").await;
    let t = seed_customer(&app, "M0007", "天安门客户", Some(TIANANMEN_WGS)).await;
    let gcj = with(body(t, TIANANMEN_GCJ), json!({ "datum": "gcj02" }));
    let v = visit(&app, &m7, &gcj).await;
    assert!(v["distance_m"].as_f64().unwrap() < 20.0, "{v}");
    assert!(flags(&v).is_empty(), "{v}");
    assert_eq!(v["datum"], "gcj02");
    // Stored and shown in WGS-84.
    assert!(
        (v["latitude"].as_f64().unwrap() - TIANANMEN_WGS.0).abs() < 1e-4,
        "{v}"
    );
    assert!(
        (v["longitude"].as_f64().unwrap() - TIANANMEN_WGS.1).abs() < 1e-4,
        "{v}"
    );
    // The same numbers taken as WGS-84 are several hundred metres off.
    let m8 = app.login("M0008").await;
    let t8 = seed_customer(&app, "M0008", "天安门客户二", Some(TIANANMEN_WGS)).await;
    let v = visit(&app, &m8, &body(t8, TIANANMEN_GCJ)).await;
    assert!(v["distance_m"].as_f64().unwrap() > 400.0, "{v}");
    assert_eq!(flags(&v), ["far_from_customer"]);
}

async fn one_open_visit_and_checkout(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let v = visit(&app, &m1, &body(c, NJ)).await;
    let id = id_of(&v);
    let (seq0, _, _) = stored(&app, id).await;
    let p = check_in(&app, &m1, &body(c, NJ))
        .await
        .problem(409, "visit_already_open");
    assert_eq!(p["open_visit_id"], id);

    // Check-out time: not before the check-in, not in the future.
    let checked_in: DateTime<Utc> = v["checked_in_at"].as_str().unwrap().parse().unwrap();
    let early = rfc3339(checked_in - Duration::minutes(1));
    checkout(&app, &m1, id, &json!({ "time": early }))
        .await
        .field_error(422, "time", "before_check_in");
    let future = rfc3339(Utc::now() + Duration::hours(1));
    checkout(&app, &m1, id, &json!({ "time": future }))
        .await
        .field_error(422, "time", "in_future");
    checkout(&app, &m1, id, &json!({ "time": "soon" }))
        .await
        .field_error(422, "time", "invalid_value");
    checkout(&app, &m1, id, &json!({ "mood": "good" }))
        .await
        .field_error(422, "mood", "unknown_field");

    // Others: a manager who cannot see it (404), a leader who can but is not its manager (403), another
    // subtree's leader (404).
    let m2 = app.login("M0002").await;
    checkout(&app, &m2, id, &json!({}))
        .await
        .problem(404, "visit_not_found");
    let l1 = app.login("L0001").await;
    checkout(&app, &l1, id, &json!({}))
        .await
        .problem(403, "forbidden");
    let l2 = app.login("L0002").await;
    checkout(&app, &l2, id, &json!({}))
        .await
        .problem(404, "visit_not_found");
    checkout(&app, &m1, 999_999, &json!({}))
        .await
        .problem(404, "visit_not_found");

    let out = (checked_in + Duration::minutes(5)).to_rfc3339_opts(SecondsFormat::Micros, true);
    let done = checkout(&app, &m1, id, &json!({ "time": out, "note": "客户很满意" }))
        .await
        .expect(200)
        .body;
    assert_eq!(done["duration_secs"], 300);
    let at: DateTime<Utc> = done["checked_out_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, checked_in + Duration::minutes(5));
    // The check-out answers with the caller's name read with the session; the detail reads it from the
    // user, and every other field from the stored row.
    assert_eq!(done["manager"]["employee_no"], "M0001");
    let shown = get(&app, &m1, id).await.expect(200).body;
    for (field, value) in done.as_object().unwrap() {
        assert_eq!(
            &shown[field], value,
            "{field} differs from the stored visit"
        );
    }
    let (seq1, _, kinds) = stored(&app, id).await;
    assert!(seq1 > seq0);
    assert_eq!(kinds, ["visit", "visit"]);
    checkout(&app, &m1, id, &json!({}))
        .await
        .problem(409, "visit_already_closed");
    // Closed: the next check-in is accepted.
    let next = visit(&app, &m1, &body(c, NJ)).await;
    let now = checkout(&app, &m1, id_of(&next), &json!({}))
        .await
        .expect(200)
        .body;
    assert!(now["duration_secs"].as_i64().unwrap() >= 0);
}

/// The `far_from_customer` radius is a setting (`FIELDWORK_VISIT_RADIUS_M`, default 500 m).
async fn the_far_radius_is_a_setting(app: TestApp) {
    let wide = TestApp::spawn_with(app.backend, |s| s.visit_radius_m = 2_000).await;
    let m1 = wide.login("M0001").await;
    let c = seed_customer(&wide, "M0001", "客户", Some(NJ)).await;
    // About 1.1 km away: flagged under the default, not under 2 km.
    let v = visit(&wide, &m1, &body(c, (NJ.0 + 0.01, NJ.1))).await;
    assert!(flags(&v).is_empty(), "{v}");
    // About 3.3 km away: beyond it (another manager, so no travel from the first check-in).
    let m3 = wide.login("M0003").await;
    let c3 = seed_customer(&wide, "M0003", "客户三", Some(NJ)).await;
    let v = visit(&wide, &m3, &body(c3, (NJ.0 + 0.03, NJ.1))).await;
    assert_eq!(flags(&v), ["far_from_customer"]);
    // The default still applies on a server without the setting.
    let m2 = app.login("M0002").await;
    let c2 = seed_customer(&app, "M0002", "客户二", Some(NJ)).await;
    let v = visit(&app, &m2, &body(c2, (NJ.0 + 0.01, NJ.1))).await;
    assert_eq!(flags(&v), ["far_from_customer"]);
}

/// A visit queued offline: the phone checked in at 10:00 and out at 10:45 by its clock, and sends both
/// when it finds signal. The check-out is measured against the check-in's phone time (both on the phone's
/// clock), not the server's receive time, which is later than both.
async fn a_visit_queued_offline_checks_out_with_its_true_length(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let went_in = Utc::now() - Duration::minutes(60);
    let left = went_in + Duration::minutes(45);
    let v = visit(
        &app,
        &m1,
        &with(body(c, NJ), json!({ "phone_time": rfc3339(went_in) })),
    )
    .await;
    // Sent an hour late: the receive time is the server's, and the leader sees the clock flag.
    assert_eq!(flags(&v), ["clock_skew"]);
    let done = checkout(&app, &m1, id_of(&v), &json!({ "time": rfc3339(left) }))
        .await
        .expect(200)
        .body;
    assert_eq!(done["duration_secs"], 45 * 60);
    let out: DateTime<Utc> = done["checked_out_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(rfc3339(out), rfc3339(left), "the phone's time, as sent");
    // Before the phone's own check-in time is still refused.
    let v = visit(
        &app,
        &m1,
        &with(body(c, NJ), json!({ "phone_time": rfc3339(went_in) })),
    )
    .await;
    let early = rfc3339(went_in - Duration::minutes(1));
    checkout(&app, &m1, id_of(&v), &json!({ "time": early }))
        .await
        .field_error(422, "time", "before_check_in");
}

async fn report_is_replaceable_for_a_day_then_amended(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let id = id_of(&visit(&app, &m1, &body(c, NJ)).await);
    amend(&app, &m1, id, &json!({ "text": "补充" }))
        .await
        .problem(409, "not_editable");
    let (seq0, _, _) = stored(&app, id).await;

    let first = put_report(&app, &m1, id, &report_body())
        .await
        .expect(201)
        .body;
    assert_eq!(first["visit_id"], id);
    assert_eq!(first["summary"], "介绍了大额存单和结构性存款");
    let created: DateTime<Utc> = first["created_at"].as_str().unwrap().parse().unwrap();
    let until: DateTime<Utc> = first["editable_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - created, Duration::hours(24));
    let (seq1, _, _) = stored(&app, id).await;
    assert!(seq1 > seq0);

    // Replace within 24 h: 200, first-written time kept.
    let changed = with(
        report_body(),
        json!({
            "summary": "改：客户更关心理财",
            "next_visit_date": (Utc::now() + Duration::days(7)).date_naive().to_string(),
            "important_change": true,
            "important_change_text": "企业准备上市",
        }),
    );
    let second = put_report(&app, &m1, id, &changed).await.expect(200).body;
    assert_eq!(second["summary"], "改：客户更关心理财");
    assert_eq!(second["important_change"], true);
    assert_eq!(second["created_at"], first["created_at"]);
    // The same body again is naturally idempotent.
    let again = put_report(&app, &m1, id, &changed).await.expect(200).body;
    assert_eq!(again["summary"], second["summary"]);

    // Validation.
    let yesterday = (Utc::now() - Duration::days(2)).date_naive().to_string();
    put_report(
        &app,
        &m1,
        id,
        &with(report_body(), json!({ "next_visit_date": yesterday })),
    )
    .await
    .field_error(422, "next_visit_date", "in_past");
    put_report(
        &app,
        &m1,
        id,
        &with(report_body(), json!({ "next_visit_date": "2026-02-30" })),
    )
    .await
    .field_error(422, "next_visit_date", "invalid_value");
    put_report(
        &app,
        &m1,
        id,
        &with(report_body(), json!({ "important_change": true })),
    )
    .await
    .field_error(422, "important_change_text", "required");
    put_report(
        &app,
        &m1,
        id,
        &with(report_body(), json!({ "summary": "长".repeat(2001) })),
    )
    .await
    .field_error(422, "summary", "too_long");
    put_report(
        &app,
        &m1,
        id,
        &with(report_body(), json!({ "persons_met": " " })),
    )
    .await
    .field_error(422, "persons_met", "required");
    put_report(&app, &m1, id, &with(report_body(), json!({ "score": 5 })))
        .await
        .field_error(422, "score", "unknown_field");

    // Only its author writes it; others out of scope get 404.
    let l1 = app.login("L0001").await;
    put_report(&app, &l1, id, &report_body())
        .await
        .problem(403, "forbidden");
    amend(&app, &l1, id, &json!({ "text": "x" }))
        .await
        .problem(403, "forbidden");
    let m2 = app.login("M0002").await;
    put_report(&app, &m2, id, &report_body())
        .await
        .problem(404, "visit_not_found");
    amend(&app, &m2, id, &json!({ "text": "x" }))
        .await
        .problem(404, "visit_not_found");

    // 25 hours later the report is frozen; amendments are appended.
    age_report(&app, id, 25).await;
    put_report(&app, &m1, id, &report_body())
        .await
        .problem(409, "not_editable");
    amend(&app, &m1, id, &json!({ "text": " " }))
        .await
        .field_error(422, "text", "required");
    let a1 = amend(&app, &m1, id, &json!({ "text": "客户来电：资金提前到位" }))
        .await
        .expect(201)
        .body;
    assert_eq!(a1["text"], "客户来电：资金提前到位");
    amend(&app, &m1, id, &json!({ "text": "第二条补充" }))
        .await
        .expect(201);
    let (seq2, _, kinds) = stored(&app, id).await;
    assert!(seq2 > seq1);
    assert_eq!(
        kinds,
        [
            "visit",
            "visit_report",
            "visit_report",
            "visit_report",
            "visit_report",
            "visit_report"
        ]
    );

    // The detail carries the report and its amendments, oldest first, for the leader too.
    let d = app
        .get(&format!("{VISITS}/{id}"), &l1)
        .await
        .expect(200)
        .body;
    assert_eq!(d["has_report"], true);
    assert_eq!(d["report"]["summary"], "改：客户更关心理财");
    assert_eq!(d["report"]["important_change_text"], "企业准备上市");
    let texts: Vec<&str> = d["report"]["amendments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["客户来电：资金提前到位", "第二条补充"]);
}

async fn visits_follow_the_callers_scope(app: TestApp) {
    let admin = app.login("admin").await;
    let (m1, m2, m7) = (
        app.login("M0001").await,
        app.login("M0002").await,
        app.login("M0007").await,
    );
    let (l1, l2) = (app.login("L0001").await, app.login("L0002").await);
    let c1 = seed_customer(&app, "M0001", "一号客户", Some(NJ)).await;
    let c2 = seed_customer(&app, "M0002", "二号客户", Some(NJ)).await;
    let c7 = seed_customer(&app, "M0007", "七号客户", Some(NJ)).await;
    // A manager checks in only at customers they see.
    check_in(&app, &m2, &body(c1, NJ))
        .await
        .field_error(422, "customer_id", "not_found");
    let v1 = visit(&app, &m1, &body(c1, NJ)).await;
    checkout(&app, &m1, id_of(&v1), &json!({}))
        .await
        .expect(200);
    // Flagged (far) and on another customer.
    let v1b = visit(&app, &m1, &body(c1, (NJ.0 + 0.02, NJ.1))).await;
    let v2 = visit(&app, &m2, &body(c2, NJ)).await;
    let v7 = visit(&app, &m7, &body(c7, NJ)).await;
    // Any role checks in as themself, at a customer in scope.
    let lv = visit(&app, &l1, &body(c2, NJ)).await;
    assert_eq!(lv["manager"]["employee_no"], "L0001");
    check_in(&app, &l2, &body(c1, NJ))
        .await
        .field_error(422, "customer_id", "not_found");
    let (id1, id1b, id2, id7, idl) = (id_of(&v1), id_of(&v1b), id_of(&v2), id_of(&v7), id_of(&lv));

    get(&app, &m1, id1).await.expect(200);
    get(&app, &m2, id1).await.problem(404, "visit_not_found");
    get(&app, &l1, id1).await.expect(200);
    get(&app, &l2, id1).await.problem(404, "visit_not_found");
    get(&app, &admin, id7).await.expect(200);
    get(&app, &l1, id7).await.problem(404, "visit_not_found");
    get(&app, &m1, 999_999)
        .await
        .problem(404, "visit_not_found");
    // M0002 sees the leader's visit at their customer, though it is not theirs.
    get(&app, &m2, idl).await.expect(200);

    // Lists: a manager's own by default, newest first.
    assert_eq!(
        ids(&list(&app, &m1, "").await.expect(200).body),
        [id1b, id1]
    );
    // By customer: every visit to it the caller may see (the leader's too).
    assert_eq!(
        ids(&list(&app, &m2, &format!("?customer_id={c2}")).await.body),
        [idl, id2]
    );
    assert_eq!(ids(&list(&app, &m2, "").await.body), [id2]);
    assert_eq!(
        ids(&list(&app, &m2, &format!("?customer_id={c1}")).await.body),
        Vec::<i64>::new()
    );
    // Leaders: their subtree, with flags on every item.
    let all = list(&app, &l1, "").await.expect(200).body;
    assert_eq!(ids(&all), [idl, id2, id1b, id1]);
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["flags"].is_array())
    );
    assert_eq!(ids(&list(&app, &l1, "?flagged=true").await.body), [id1b]);
    assert_eq!(
        ids(&list(&app, &l1, "?flagged=false&mine=true").await.body),
        [idl]
    );
    assert_eq!(ids(&list(&app, &l2, "").await.body), [id7]);
    let gl = org_id(&app, &admin, "NJ-GL").await;
    let xw = org_id(&app, &admin, "NJ-XW").await;
    assert_eq!(
        ids(&list(&app, &admin, &format!("?org_id={xw}")).await.body),
        [id7]
    );
    assert_eq!(
        ids(&list(&app, &l1, &format!("?org_id={gl}")).await.body).len(),
        4
    );
    let r = list(&app, &l2, &format!("?org_id={gl}")).await;
    r.field_error(400, "org_id", "not_found");
    list(&app, &m1, &format!("?org_id={gl}"))
        .await
        .problem(403, "forbidden");
    // Dates are Asia/Shanghai dates of the server's check-in time.
    let today = fieldwork::domain::calendar::local_date(Utc::now());
    let tomorrow = today.succ_opt().unwrap();
    let yesterday = today.pred_opt().unwrap();
    let q = format!("?from={yesterday}&to={today}");
    let n = ids(&list(&app, &l1, &q).await.expect(200).body).len();
    assert_eq!(n, 4);
    assert!(ids(&list(&app, &l1, &format!("?from={tomorrow}")).await.body).is_empty());
    list(&app, &l1, &format!("?from={tomorrow}&to={today}"))
        .await
        .field_error(400, "to", "out_of_range");
    list(&app, &l1, "?from=yesterday")
        .await
        .field_error(400, "from", "invalid_value");
    list(&app, &l1, "?sort=asc")
        .await
        .field_error(400, "sort", "unknown_field");
    // Cursor paging, newest first.
    let p1 = list(&app, &l1, "?limit=3").await.expect(200).body;
    assert_eq!(ids(&p1), [idl, id2, id1b]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = list(&app, &l1, &format!("?limit=3&cursor={cursor}"))
        .await
        .body;
    assert_eq!(ids(&p2), [id1]);
    assert!(p2["next_cursor"].is_null());
}

async fn check_in_validates_every_field(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let b = body(c, NJ);
    let cases = [
        (json!({ "latitude": 91 }), "latitude", "out_of_range"),
        (json!({ "latitude": -90.5 }), "latitude", "out_of_range"),
        (json!({ "longitude": 181 }), "longitude", "out_of_range"),
        (json!({ "accuracy_m": -1 }), "accuracy_m", "out_of_range"),
        (
            json!({ "accuracy_m": 100_001 }),
            "accuracy_m",
            "out_of_range",
        ),
        (
            json!({ "phone_time": "2026-13-01T00:00:00Z" }),
            "phone_time",
            "invalid_value",
        ),
        (
            json!({ "phone_time": "now" }),
            "phone_time",
            "invalid_value",
        ),
        (json!({ "datum": "bd09" }), "datum", "invalid_value"),
        (
            json!({ "purpose": "目".repeat(201) }),
            "purpose",
            "too_long",
        ),
        (json!({ "purpose": "" }), "purpose", "required"),
        (json!({ "latitude": "32" }), "latitude", "invalid_type"),
        (json!({ "client_id": "" }), "client_id", "required"),
        (
            json!({ "customer_id": 999_999 }),
            "customer_id",
            "not_found",
        ),
        (json!({ "altitude": 10 }), "altitude", "unknown_field"),
    ];
    for (change, field, code) in cases {
        check_in(&app, &m1, &with(b.clone(), change))
            .await
            .field_error(422, field, code);
    }
    let mut missing = b.clone();
    missing.as_object_mut().unwrap().remove("customer_id");
    check_in(&app, &m1, &missing)
        .await
        .field_error(422, "customer_id", "required");
    // Nothing was created; the datum defaults to WGS-84.
    let mut plain = b.clone();
    plain.as_object_mut().unwrap().remove("datum");
    let v = visit(&app, &m1, &plain).await;
    assert_eq!(v["datum"], "wgs84");
    assert_eq!(ids(&app.get(VISITS, &m1).await.body), [id_of(&v)]);
    app.get(&format!("{VISITS}/abc"), &m1)
        .await
        .field_error(400, "id", "invalid_format");
    app.req(Method::GET, VISITS, None, None)
        .await
        .problem(401, "missing_token");
}

async fn offline_replays_create_nothing_new(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let b = with(body(c, NJ), json!({ "client_id": "phone-7f3a-0001" }));
    let first = check_in(&app, &m1, &b).await.expect(201);
    let replay = check_in(&app, &m1, &b).await.expect(201);
    assert_eq!(replay.text, first.text);
    assert_eq!(ids(&app.get(VISITS, &m1).await.body).len(), 1);
    // Same client id, another body.
    check_in(
        &app,
        &m1,
        &with(b.clone(), json!({ "purpose": "别的目的" })),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    let id = id_of(&first.body);

    // Check-out with a key: the retry gets the first answer, not a 409.
    let path = format!("{VISITS}/{id}/checkout");
    let out = keyed(&app, Method::POST, &path, &m1, "out-1", &json!({}))
        .await
        .expect(200);
    let again = keyed(&app, Method::POST, &path, &m1, "out-1", &json!({}))
        .await
        .expect(200);
    assert_eq!(again.text, out.text);
    checkout(&app, &m1, id, &json!({}))
        .await
        .problem(409, "visit_already_closed");
    // The check-in replay still answers as the first time, though the visit is closed now.
    assert_eq!(check_in(&app, &m1, &b).await.expect(201).text, first.text);

    // Report and amendments.
    let rpath = format!("{VISITS}/{id}/report");
    let r1 = keyed(&app, Method::PUT, &rpath, &m1, "rep-1", &report_body())
        .await
        .expect(201);
    let r2 = keyed(&app, Method::PUT, &rpath, &m1, "rep-1", &report_body())
        .await
        .expect(201);
    assert_eq!(r1.text, r2.text);
    let other = with(report_body(), json!({ "summary": "另一份" }));
    keyed(&app, Method::PUT, &rpath, &m1, "rep-1", &other)
        .await
        .field_error(422, "idempotency-key", "key_reused");
    // The key may come in the body, as on a check-in: a replay answers as the first time and writes nothing.
    let in_body = with(
        report_body(),
        json!({ "outcome": "客户要求书面方案", "client_id": "rep-2" }),
    );
    let k1 = put_report(&app, &m1, id, &in_body).await.expect(200);
    let newer = with(report_body(), json!({ "outcome": "第三版" }));
    put_report(&app, &m1, id, &newer).await.expect(200);
    let k2 = put_report(&app, &m1, id, &in_body).await.expect(200);
    assert_eq!(k1.text, k2.text);
    let d = get(&app, &m1, id).await.expect(200).body;
    assert_eq!(d["report"]["outcome"], "第三版");
    let long = with(report_body(), json!({ "client_id": "k".repeat(129) }));
    put_report(&app, &m1, id, &long)
        .await
        .field_error(422, "client_id", "too_long");
    let a = json!({ "text": "补充一", "client_id": "amend-1" });
    let a1 = amend(&app, &m1, id, &a).await.expect(201);
    let a2 = amend(&app, &m1, id, &a).await.expect(201);
    assert_eq!(a1.text, a2.text);
    let d = app
        .get(&format!("{VISITS}/{id}"), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(d["report"]["amendments"].as_array().unwrap().len(), 1);

    // A header key reused for another visit's check-out is another request.
    let v2 = visit(&app, &m1, &body(c, NJ)).await;
    keyed(
        &app,
        Method::POST,
        &format!("{VISITS}/{}/checkout", id_of(&v2)),
        &m1,
        "out-1",
        &json!({}),
    )
    .await
    .field_error(422, "idempotency-key", "key_reused");
    // Keys are per user: another manager's same client id is theirs alone.
    let m2 = app.login("M0002").await;
    let c2 = seed_customer(&app, "M0002", "客户二", Some(NJ)).await;
    let b2 = with(body(c2, NJ), json!({ "client_id": "phone-7f3a-0001" }));
    let v = check_in(&app, &m2, &b2).await.expect(201);
    assert_ne!(id_of(&v.body), id);
}

backend_tests!(
    check_in_measures_the_distance_and_flags,
    impossible_travel_and_gcj02,
    one_open_visit_and_checkout,
    a_visit_queued_offline_checks_out_with_its_true_length,
    the_far_radius_is_a_setting,
    report_is_replaceable_for_a_day_then_amended,
    visits_follow_the_callers_scope,
    check_in_validates_every_field,
    offline_replays_create_nothing_new,
    visit_detail_is_conditional,
);

async fn visit_detail_is_conditional(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "客户", Some(NJ)).await;
    let id = id_of(&visit(&app, &m1, &body(c, NJ)).await);
    let path = format!("{VISITS}/{id}");
    let first = get(&app, &m1, id).await.expect(200);
    let tag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "weak tag: {tag}");
    let cached = get_if_none_match(&app, &path, &m1, &tag).await.expect(304);
    assert_eq!(cached.headers["etag"].to_str().unwrap(), tag);
    assert!(cached.text.is_empty());
    // A report changes the visit: the old tag no longer matches.
    put_report(&app, &m1, id, &report_body()).await.expect(201);
    let fresh = get_if_none_match(&app, &path, &m1, &tag).await.expect(200);
    let tag_after_report = fresh.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(tag_after_report, tag);
    // The view shows the customer's name: renaming the customer changes the tag too.
    app.patch(
        &format!("/api/v1/customers/{c}"),
        &m1,
        &json!({ "name": "客户新名" }),
    )
    .await
    .expect(200);
    let renamed = get_if_none_match(&app, &path, &m1, &tag_after_report)
        .await
        .expect(200);
    assert_eq!(renamed.body["customer"]["name"], "客户新名");
    // Someone else's visit stays a 404 even with a matching tag.
    let m7 = app.login("M0007").await;
    get_if_none_match(&app, &path, &m7, "*")
        .await
        .problem(404, "visit_not_found");
}
