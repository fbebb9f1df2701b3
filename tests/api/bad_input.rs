//! Input the server refuses with a problem naming the field, on both databases: the NUL character in any
//! text (PostgreSQL cannot store it), dates not written `YYYY-MM-DD` or outside 1900–2100, and amounts not
//! written as plain decimals. Nothing is stored.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, items, seed_customer};

const CUSTOMERS: &str = "/api/v1/customers";

async fn customer_count(app: &TestApp, token: &str) -> usize {
    items(
        &app.get(&format!("{CUSTOMERS}?limit=200"), token)
            .await
            .expect(200)
            .body,
    )
    .len()
}

async fn nul_characters_are_bad_input(app: TestApp) {
    let t = app.login("M0001").await;
    let admin = app.login("admin").await;
    for (path, field) in [
        ("/api/v1/customers?q=%00", "q"),
        ("/api/v1/customers?tier=a%00", "tier"),
        ("/api/v1/customers?category=%00x", "category"),
    ] {
        app.get(path, &t)
            .await
            .field_error(400, field, "invalid_character");
    }
    app.get("/api/v1/audit-events?entity=%00", &admin)
        .await
        .field_error(400, "entity", "invalid_character");
    app.post(
        "/api/v1/auth/login",
        None,
        &json!({ "employee_no": "M0001\u{0}", "password": "demo1234" }),
    )
    .await
    .field_error(422, "employee_no", "invalid_character");
    let before = customer_count(&app, &t).await;
    app.post(
        CUSTOMERS,
        Some(&t),
        &json!({ "kind": "individual", "name": "李雷", "client_id": "c-\u{0}-1" }),
    )
    .await
    .field_error(422, "client_id", "invalid_character");
    assert_eq!(customer_count(&app, &t).await, before, "nothing stored");
    let c = seed_customer(&app, "M0001", "韩梅梅", None).await;
    app.post(
        &format!("{CUSTOMERS}/{c}/holdings"),
        Some(&t),
        &json!({
            "client_id": "\u{0}", "product_type": "time_deposit",
            "product_name": "三年定期", "amount": "100.00"
        }),
    )
    .await
    .field_error(422, "client_id", "invalid_character");
    app.post(
        &format!("{CUSTOMERS}/{c}/contacts"),
        Some(&t),
        &json!({ "client_id": "x\u{0}", "name": "王经理" }),
    )
    .await
    .field_error(422, "client_id", "invalid_character");
}

async fn dates_are_written_one_way_and_plausible(app: TestApp) {
    let t = app.login("M0001").await;
    let before = customer_count(&app, &t).await;
    for bad in [
        "1800-05-01",
        "0000-01-01",
        "2026-2-3",
        "2026-02-30",
        "03/02/2026",
    ] {
        app.post(
            CUSTOMERS,
            Some(&t),
            &json!({ "kind": "individual", "name": "李雷", "birthday": bad }),
        )
        .await
        .field_error(422, "birthday", "invalid_value");
    }
    assert_eq!(customer_count(&app, &t).await, before, "nothing stored");
    app.get("/api/v1/worklogs?from=2026-2-3", &t)
        .await
        .field_error(400, "from", "invalid_value");
    let c = seed_customer(&app, "M0001", "韩梅梅", None).await;
    app.req(
        reqwest::Method::PATCH,
        &format!("{CUSTOMERS}/{c}"),
        Some(&t),
        Some(&json!({ "birthday": "1799-12-31" })),
    )
    .await
    .field_error(422, "birthday", "invalid_value");
    // A well-written date in range, and null in a patch, are fine.
    app.patch(
        &format!("{CUSTOMERS}/{c}"),
        &t,
        &json!({ "birthday": "1988-02-29" }),
    )
    .await
    .expect(200);
    app.patch(
        &format!("{CUSTOMERS}/{c}"),
        &t,
        &json!({ "birthday": Value::Null }),
    )
    .await
    .expect(200);
}

async fn amounts_are_plain_decimals(app: TestApp) {
    let t = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "韩梅梅", None).await;
    let holdings = format!("{CUSTOMERS}/{c}/holdings");
    for bad in [" 100.00", "100.00 ", ".5", "5.", "+5", "1,000.00"] {
        app.post(
            &holdings,
            Some(&t),
            &json!({ "product_type": "time_deposit", "product_name": "三年定期", "amount": bad }),
        )
        .await
        .field_error(422, "amount", "invalid_format");
    }
    let listed = app.get(&holdings, &t).await.expect(200);
    assert!(items(&listed.body).is_empty(), "nothing stored");
    app.post(
        &holdings,
        Some(&t),
        &json!({ "product_type": "time_deposit", "product_name": "三年定期", "amount": "0.5" }),
    )
    .await
    .expect(201);
}

/// A time without its offset is ambiguous (Beijing time or UTC?): refused, and the message says why.
async fn a_time_without_an_offset_says_so(app: TestApp) {
    let t = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "韩梅梅", Some((32.06, 118.79))).await;
    let body = json!({
        "customer_id": c, "purpose": "介绍大额存单", "phone_time": "2026-12-08T09:30:00",
        "latitude": 32.06, "longitude": 118.79, "accuracy_m": 15.0, "datum": "wgs84",
    });
    let problem = app
        .post("/api/v1/visits", Some(&t), &body)
        .await
        .field_error(422, "phone_time", "invalid_value");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no UTC offset"),
        "{problem}"
    );
    let admin = app.login("admin").await;
    app.get("/api/v1/audit-events?from=2026-12-08T09:30:00", &admin)
        .await
        .field_error(400, "from", "invalid_value");
}

backend_tests!(
    a_time_without_an_offset_says_so,
    nul_characters_are_bad_input,
    dates_are_written_one_way_and_plausible,
    amounts_are_plain_decimals,
);
