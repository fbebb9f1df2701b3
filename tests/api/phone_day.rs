//! A manager's day on the phone as a person types it: multi-line text wherever prose goes.

use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, id_of, seed_customer};

const NJ: (f64, f64) = (32.060_255, 118.796_877);
const LINES: &str = "第一行：客户资金三月到期\n第二行：希望保本\r\n\t第三行：下周再访";
/// An escape character (a terminal colour code): a control character that is not prose.
const ESCAPE: &str = "正常\u{1b}[31m红色";

/// Checks in at customer `c`, the phone's clock written with `precision`; the visit.
async fn check_in(app: &TestApp, token: &str, c: i64, precision: SecondsFormat) -> Value {
    let now = Utc::now().to_rfc3339_opts(precision, true);
    app.post(
        "/api/v1/visits",
        Some(token),
        &json!({
            "customer_id": c, "purpose": "介绍大额存单", "phone_time": now,
            "latitude": NJ.0, "longitude": NJ.1, "accuracy_m": 15.0, "datum": "wgs84",
        }),
    )
    .await
    .expect(201)
    .body
}

/// Whether any string in `v` contains `part`.
fn holds(v: &Value, part: &str) -> bool {
    match v {
        Value::String(s) => s.contains(part),
        Value::Array(a) => a.iter().any(|x| holds(x, part)),
        Value::Object(o) => o.values().any(|x| holds(x, part)),
        _ => false,
    }
}

async fn multi_line_text_is_accepted_wherever_a_person_types_prose(app: TestApp) {
    let t = app.login("M0001").await;
    let l = app.login("L0001").await;
    let c = seed_customer(&app, "M0001", "王先生", Some(NJ)).await;
    // Customer traits.
    let r = app
        .patch(
            &format!("/api/v1/customers/{c}"),
            &t,
            &json!({ "traits": LINES }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["traits"], LINES);
    app.patch(
        &format!("/api/v1/customers/{c}"),
        &t,
        &json!({ "traits": ESCAPE }),
    )
    .await
    .field_error(422, "traits", "invalid_format");
    // A visit: check-out note, report summary, needs, outcome, an amendment.
    let visit = id_of(&check_in(&app, &t, c, SecondsFormat::Millis).await);
    app.post(
        &format!("/api/v1/visits/{visit}/checkout"),
        Some(&t),
        &json!({ "note": LINES }),
    )
    .await
    .expect(200);
    // The note goes to the customer's archive, lines and all.
    let timeline = app
        .get(&format!("/api/v1/customers/{c}/timeline"), &t)
        .await
        .expect(200);
    assert!(
        holds(&timeline.body, "希望保本\r\n\t第三行"),
        "{}",
        timeline.text
    );
    let report = |summary: &str| {
        json!({
            "persons_met": "王总", "summary": summary, "needs": LINES, "outcome": LINES,
            "important_change": false,
        })
    };
    let path = format!("/api/v1/visits/{visit}/report");
    app.req(Method::PUT, &path, Some(&t), Some(&report(ESCAPE)))
        .await
        .field_error(422, "summary", "invalid_format");
    let r = app
        .req(Method::PUT, &path, Some(&t), Some(&report(LINES)))
        .await
        .expect(201)
        .body;
    assert_eq!(r["summary"], LINES, "{r}");
    assert_eq!((&r["needs"], &r["outcome"]), (&r["summary"], &r["summary"]));
    app.post(
        &format!("{path}/amendments"),
        Some(&t),
        &json!({ "text": LINES }),
    )
    .await
    .expect(201);
    // An opportunity's need.
    let o = app
        .post(
            "/api/v1/opportunities",
            Some(&t),
            &json!({
                "customer_id": c, "title": "大额存单意向", "product_type": "large_cd",
                "estimated_amount": "500000.00", "need": LINES,
            }),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(o["need"], LINES);
    // The work log, and the leader's review comment.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let w = app
        .post(
            "/api/v1/worklogs",
            Some(&t),
            &json!({ "log_date": today, "content": LINES }),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(w["content"], LINES);
    let reviewed = app
        .post(
            &format!("/api/v1/worklogs/{}/review", id_of(&w)),
            Some(&l),
            &json!({ "mark": "good", "comment": LINES }),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(reviewed["review"]["comment"], LINES);
    // One-line fields stay one line.
    app.post(
        "/api/v1/opportunities",
        Some(&t),
        &json!({
            "customer_id": c, "title": "两行\n标题", "product_type": "large_cd",
            "estimated_amount": "500000.00",
        }),
    )
    .await
    .field_error(422, "title", "invalid_format");
}

/// Every instant-looking string in `v` (`YYYY-MM-DDT…`).
fn instants(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            if b.len() > 10 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' {
                out.push(s.clone());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| instants(x, out)),
        Value::Object(o) => o.values().for_each(|x| instants(x, out)),
        _ => {}
    }
}

/// Every instant the phone reads has one shape: UTC, `Z`, six fraction digits.
async fn every_instant_has_one_shape(app: TestApp) {
    let t = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "王先生", Some(NJ)).await;
    check_in(&app, &t, c, SecondsFormat::Secs).await;
    let mut seen = Vec::new();
    for path in [
        "/api/v1/me",
        "/api/v1/customers",
        &format!("/api/v1/customers/{c}"),
        &format!("/api/v1/customers/{c}/timeline"),
        "/api/v1/visits",
        "/api/v1/notifications",
        "/api/v1/me/today",
        "/api/v1/sync",
    ] {
        instants(&app.get(path, &t).await.expect(200).body, &mut seen);
    }
    assert!(seen.len() > 10, "{seen:?}");
    let shape = |s: &str| {
        let b = s.as_bytes();
        b.len() == 27
            && b[19] == b'.'
            && b[26] == b'Z'
            && b[20..26].iter().all(u8::is_ascii_digit)
            && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    };
    let odd: Vec<&String> = seen.iter().filter(|s| !shape(s)).collect();
    assert!(odd.is_empty(), "{odd:?}");
}

backend_tests!(
    multi_line_text_is_accepted_wherever_a_person_types_prose,
    every_instant_has_one_shape,
);
