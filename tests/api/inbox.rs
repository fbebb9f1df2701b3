//! Devices, preferences, the working-day calendar, the inbox, the reminders list and `/me/today`.
//!
//! The test server runs on the system clock, so notifications that are not urgent may be deferred by the
//! default quiet hours: tests that need them in the inbox first turn quiet hours off (start = end).

use chrono::Utc;
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::TestApp;

const DEVICES: &str = "/api/v1/me/devices";
const PREFS: &str = "/api/v1/me/preferences";

/// Runs `f` on a database connection of the test server.
pub async fn with_db<T: Send + 'static>(
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

fn device(token: &str) -> Value {
    json!({"provider": "fcm", "token": token, "platform": "android", "app_version": "1.2.0", "locale": "zh-CN"})
}

/// Turns the user's quiet hours off so that every notification is delivered at once.
pub async fn no_quiet_hours(app: &TestApp, token: &str) {
    app.req(
        Method::PUT,
        PREFS,
        Some(token),
        Some(&json!({"quiet_start": "00:00", "quiet_end": "00:00"})),
    )
    .await
    .expect(200);
}

async fn devices_register_list_delete(app: TestApp) {
    let m1 = app.login("M0001").await;
    let m2 = app.login("M0002").await;
    let r = app
        .post(DEVICES, Some(&m1), &device("tok-A"))
        .await
        .expect(201);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["platform"], "android");
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["token_hash"].as_str().unwrap().len(), 12);
    assert!(!r.text.contains("tok-A"), "the token is never echoed");
    // Same token again: 200, updated.
    let mut again = device("tok-A");
    again["platform"] = json!("ios");
    let r = app.post(DEVICES, Some(&m1), &again).await.expect(200);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["platform"], "ios");
    let list = app.get(DEVICES, &m1).await.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains("tok-A"));
    // Someone else's device is 404 for them.
    app.req(Method::DELETE, &format!("{DEVICES}/{id}"), Some(&m2), None)
        .await
        .problem(404, "device_not_found");
    app.req(Method::DELETE, &format!("{DEVICES}/{id}"), Some(&m1), None)
        .await
        .expect(204);
    app.req(Method::DELETE, &format!("{DEVICES}/{id}"), Some(&m1), None)
        .await
        .problem(404, "device_not_found");
    assert_eq!(
        app.get(DEVICES, &m1).await.expect(200).body["items"],
        json!([])
    );
    app.req(Method::DELETE, &format!("{DEVICES}/x"), Some(&m1), None)
        .await
        .problem(400, "invalid_path_parameter");
}

async fn devices_validation(app: TestApp) {
    let m1 = app.login("M0001").await;
    let cases = [
        (
            json!({"provider": "apns", "token": "t", "platform": "android"}),
            "provider",
            "invalid_value",
        ),
        (
            json!({"provider": "fcm", "token": " ", "platform": "android"}),
            "token",
            "required",
        ),
        (
            json!({"provider": "fcm", "token": "a b", "platform": "android"}),
            "token",
            "invalid_format",
        ),
        (
            json!({"provider": "fcm", "token": "x".repeat(4097), "platform": "android"}),
            "token",
            "too_long",
        ),
        (
            json!({"provider": "fcm", "token": "t", "platform": "windows"}),
            "platform",
            "invalid_value",
        ),
        (
            json!({"provider": "fcm", "platform": "ios"}),
            "token",
            "required",
        ),
        (
            json!({"provider": "fcm", "token": "t", "platform": "ios", "app_version": "v".repeat(33)}),
            "app_version",
            "too_long",
        ),
        (
            json!({"provider": "fcm", "token": "t", "platform": "ios", "locale": "zh CN"}),
            "locale",
            "invalid_format",
        ),
        (
            json!({"provider": "fcm", "token": "t", "platform": "ios", "extra": 1}),
            "extra",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        app.post(DEVICES, Some(&m1), &body)
            .await
            .field_error(422, field, code);
    }
    app.req(Method::POST, DEVICES, None, Some(&device("t")))
        .await
        .problem(401, "missing_token");
}

async fn device_token_moves_between_users(app: TestApp) {
    let m1 = app.login("M0001").await;
    let m2 = app.login("M0002").await;
    let first = app
        .post(DEVICES, Some(&m1), &device("shared-phone"))
        .await
        .expect(201);
    let id = first.body["id"].as_i64().unwrap();
    // The push service had rejected it: a new registration re-enables it.
    with_db(&app, move |c| {
        use fieldwork::db::schema::devices;
        diesel::update(devices::table.find(id))
            .set((
                devices::disabled_at.eq(Some(Utc::now().naive_utc())),
                devices::disabled_reason.eq(Some("unregistered")),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    let r = app
        .post(DEVICES, Some(&m2), &device("shared-phone"))
        .await
        .expect(200);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["disabled_reason"], Value::Null);
    assert_eq!(
        app.get(DEVICES, &m1).await.expect(200).body["items"],
        json!([])
    );
    let mine = app.get(DEVICES, &m2).await.expect(200);
    assert_eq!(mine.body["items"][0]["id"], id);
    // It now belongs to M0002's session: M0002's logout removes it, M0001's does not matter.
    app.post("/api/v1/auth/logout", Some(&m1), &json!({})).await;
    let left: i64 = with_db(&app, move |c| {
        use fieldwork::db::schema::devices;
        devices::table
            .filter(devices::id.eq(id))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(left, 1);
}

async fn logout_removes_the_sessions_devices(app: TestApp) {
    let a = app.login("M0003").await;
    let b = app.login("M0003").await;
    app.post(DEVICES, Some(&a), &device("phone-a"))
        .await
        .expect(201);
    app.post(DEVICES, Some(&b), &device("tablet-b"))
        .await
        .expect(201);
    assert_eq!(
        app.get(DEVICES, &a).await.expect(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = app
        .req(Method::POST, "/api/v1/auth/logout", Some(&a), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let items = app.get(DEVICES, &b).await.expect(200).body["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    let left: Vec<String> = with_db(&app, |c| {
        use fieldwork::db::schema::devices;
        devices::table.select(devices::token).load(c).unwrap()
    })
    .await;
    assert_eq!(left, vec!["tablet-b".to_owned()]);
}

async fn preferences_defaults_and_round_trip(app: TestApp) {
    let m = app.login("M0004").await;
    let d = app.get(PREFS, &m).await.expect(200).body;
    assert_eq!(d["quiet_start"], "20:00");
    assert_eq!(d["quiet_end"], "08:00");
    assert_eq!(d["language"], "zh-CN");
    assert_eq!(d["digest_enabled"], true);
    assert_eq!(d["digest_time"], "08:30");
    let kinds = d["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 9);
    let bday = kinds
        .iter()
        .find(|k| k["kind"] == "customer_birthday")
        .unwrap();
    assert_eq!(bday["enabled"], true);
    assert_eq!(bday["lead_days"], json!([3, 0]));
    let overdue = kinds.iter().find(|k| k["kind"] == "loan_overdue").unwrap();
    assert_eq!(overdue["lead_days"], Value::Null);

    let body = json!({
        "kinds": [
            {"kind": "customer_birthday", "enabled": true, "lead_days": [7, 1, 0]},
            {"kind": "holding_maturity", "enabled": false},
            {"kind": "worklog_missing", "enabled": false, "lead_days": null}
        ],
        "quiet_start": "22:30", "quiet_end": "07:15", "language": "en",
        "digest_enabled": false, "digest_time": "09:05"
    });
    let put = app
        .req(Method::PUT, PREFS, Some(&m), Some(&body))
        .await
        .expect(200)
        .body;
    let got = app.get(PREFS, &m).await.expect(200).body;
    assert_eq!(put, got);
    assert_eq!(got["quiet_start"], "22:30");
    assert_eq!(got["quiet_end"], "07:15");
    assert_eq!(got["language"], "en");
    assert_eq!(got["digest_enabled"], false);
    assert_eq!(got["digest_time"], "09:05");
    let k = |kind: &str| {
        got["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(k("customer_birthday")["lead_days"], json!([7, 1, 0]));
    assert_eq!(k("holding_maturity")["enabled"], false);
    assert_eq!(k("holding_maturity")["lead_days"], json!([7, 1]));
    assert_eq!(k("worklog_missing")["enabled"], false);
    assert_eq!(k("loan_due")["enabled"], true);
    // The scheduler's view of the same row.
    let uid = app.user_id(&app.login("admin").await, "M0004").await;
    let prefs = with_db(&app, move |c| {
        fieldwork::db::repo::preferences::load_prefs(c, &[uid]).unwrap()
    })
    .await;
    let p = &prefs[&uid];
    assert_eq!(p.quiet.start, 22 * 60 + 30);
    assert_eq!(p.digest_minute, 9 * 60 + 5);
    assert!(!p.enabled(fieldwork::domain::reminders::Kind::HoldingMaturity));
    assert_eq!(
        p.leads(fieldwork::domain::reminders::Kind::CustomerBirthday),
        vec![7, 1, 0]
    );
    // An empty PUT resets to the defaults.
    let reset = app
        .req(Method::PUT, PREFS, Some(&m), Some(&json!({})))
        .await
        .expect(200)
        .body;
    assert_eq!(reset, d);
}

async fn preferences_validation(app: TestApp) {
    let m = app.login("M0005").await;
    let bday = |leads: Value| json!({"kinds": [{"kind": "customer_birthday", "enabled": true, "lead_days": leads}]});
    let cases = [
        (
            json!({"quiet_start": "8:00"}),
            "quiet_start",
            "invalid_format",
        ),
        (json!({"quiet_end": "24:00"}), "quiet_end", "invalid_format"),
        (
            json!({"digest_time": "08:60"}),
            "digest_time",
            "invalid_format",
        ),
        (json!({"language": "fr"}), "language", "invalid_value"),
        (
            json!({"digest_enabled": "yes"}),
            "digest_enabled",
            "invalid_type",
        ),
        (bday(json!([31])), "kinds.0.lead_days.0", "out_of_range"),
        (bday(json!([3, -1])), "kinds.0.lead_days.1", "out_of_range"),
        (bday(json!([3, 3])), "kinds.0.lead_days.1", "duplicate"),
        (bday(json!([])), "kinds.0.lead_days", "required"),
        (
            bday(json!([0, 1, 2, 3, 4, 5])),
            "kinds.0.lead_days",
            "too_many",
        ),
        (
            json!({"kinds": [{"kind": "loan_overdue", "enabled": true, "lead_days": [2]}]}),
            "kinds.0.lead_days",
            "not_applicable",
        ),
        (
            json!({"kinds": [{"kind": "notice", "enabled": false}]}),
            "kinds.0.kind",
            "invalid_value",
        ),
        (
            json!({"kinds": [{"kind": "nope", "enabled": false}]}),
            "kinds[0].kind",
            "invalid_value",
        ),
        (
            json!({"kinds": [{"kind": "loan_due", "enabled": false}, {"kind": "loan_due", "enabled": true}]}),
            "kinds.1.kind",
            "duplicate",
        ),
        (
            json!({"kinds": [{"kind": "loan_due"}]}),
            "kinds[0].enabled",
            "required",
        ),
        (json!({"colour": "red"}), "colour", "unknown_field"),
    ];
    for (body, field, code) in cases {
        app.req(Method::PUT, PREFS, Some(&m), Some(&body))
            .await
            .field_error(422, field, code);
    }
    // Nothing was stored.
    assert_eq!(
        app.get(PREFS, &m).await.expect(200).body["quiet_start"],
        "20:00"
    );
}

async fn calendar_admin_puts_everyone_reads(app: TestApp) {
    let admin = app.login("admin").await;
    let m = app.login("M0001").await;
    let l = app.login("L0001").await;
    // The demo has the 2026 calendar.
    let y = app.get("/api/v1/calendar/2026", &m).await.expect(200).body;
    let days = y["days"].as_array().unwrap();
    assert_eq!(days.iter().filter(|d| d["working"] == false).count(), 33);
    assert!(
        days.iter()
            .any(|d| d["date"] == "2026-02-14" && d["working"] == true)
    );
    assert!(
        days.iter()
            .any(|d| d["date"] == "2026-10-07" && d["working"] == false && d["name"] == "国庆节")
    );
    let body = json!({"days": [
        {"date": "2027-01-01", "working": false, "name": "元旦"},
        {"date": "2027-01-04", "working": true, "name": "调休"}
    ]});
    for t in [&m, &l] {
        app.req(Method::PUT, "/api/v1/calendar/2027", Some(t), Some(&body))
            .await
            .problem(403, "forbidden");
    }
    let r = app
        .req(
            Method::PUT,
            "/api/v1/calendar/2027",
            Some(&admin),
            Some(&body),
        )
        .await
        .expect(200);
    assert_eq!(r.body["year"], 2027);
    assert_eq!(r.body["days"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get("/api/v1/calendar/2027", &l).await.expect(200).body,
        r.body
    );
    // PUT replaces the year, and only that year.
    let one = json!({"days": [{"date": "2027-05-01", "working": false, "name": "劳动节"}]});
    app.req(
        Method::PUT,
        "/api/v1/calendar/2027",
        Some(&admin),
        Some(&one),
    )
    .await
    .expect(200);
    let y27 = app.get("/api/v1/calendar/2027", &m).await.expect(200).body;
    assert_eq!(
        y27["days"],
        json!([{"date": "2027-05-01", "working": false, "name": "劳动节"}])
    );
    assert_eq!(
        app.get("/api/v1/calendar/2026", &m).await.expect(200).body["days"]
            .as_array()
            .unwrap()
            .len(),
        39
    );
    assert_eq!(
        app.get("/api/v1/calendar/2030", &m).await.expect(200).body["days"],
        json!([])
    );
    // Validation.
    let cases = [
        (
            json!({"days": [{"date": "2026-12-31", "working": false, "name": "x"}]}),
            "days.0.date",
            "out_of_range",
        ),
        (
            json!({"days": [{"date": "2027-01-01", "working": false, "name": "a"}, {"date": "2027-01-01", "working": true, "name": "b"}]}),
            "days.1.date",
            "duplicate",
        ),
        (
            json!({"days": [{"date": "2027-01-01", "working": false, "name": " "}]}),
            "days.0.name",
            "required",
        ),
        (
            json!({"days": [{"date": "2027-02-30", "working": false, "name": "x"}]}),
            "days[0].date",
            "invalid_value",
        ),
        (
            json!({"days": [{"date": "2027-01-01", "name": "x"}]}),
            "days[0].working",
            "required",
        ),
    ];
    for (b, field, code) in cases {
        app.req(Method::PUT, "/api/v1/calendar/2027", Some(&admin), Some(&b))
            .await
            .field_error(422, field, code);
    }
    app.get("/api/v1/calendar/99999", &m)
        .await
        .field_error(400, "year", "invalid_format");
    app.get("/api/v1/calendar/abc", &m)
        .await
        .field_error(400, "year", "invalid_format");
}

backend_tests!(
    devices_register_list_delete,
    devices_validation,
    device_token_moves_between_users,
    logout_removes_the_sessions_devices,
    preferences_defaults_and_round_trip,
    preferences_validation,
    calendar_admin_puts_everyone_reads,
);
