//! What a bank's security review asks of authentication: guesses are limited however they arrive, a stolen
//! access token cannot take an account over, temporary passwords are changed first, a phone that lost a
//! refresh answer stays logged in, brute force is visible, and `/metrics` is for the operator.

use chrono::Duration;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, items};
use crate::{backend_tests, backend_tests_with};

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const PASSWORD: &str = "/api/v1/me/password";

/// Statuses of a burst of concurrent logins of `employee_no`, one per password.
async fn burst(app: &TestApp, employee_no: &str, passwords: &[String]) -> Vec<u16> {
    let logins = passwords.iter().map(|pw| app.login_full(employee_no, pw));
    join_all(logins)
        .await
        .into_iter()
        .map(|r| r.status.as_u16())
        .collect()
}

/// A login with a wrong password, refused as such (not locked).
async fn wrong(app: &TestApp, employee_no: &str, password: &str) {
    app.login_full(employee_no, password)
        .await
        .problem(401, "invalid_credentials");
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// The audit rows about logins (as the admin sees them), newest first.
async fn login_events(app: &TestApp) -> Vec<Value> {
    let admin = app.login("admin").await;
    let r = app
        .get("/api/v1/audit-events?entity=login&limit=200", &admin)
        .await
        .expect(200);
    items(&r.body)
}

async fn a_burst_of_guesses_verifies_at_most_five(app: TestApp) {
    let wrong: Vec<String> = (0..60).map(|i| format!("wrong{i:02}x")).collect();
    let statuses = burst(&app, "M0001", &wrong).await;
    assert_eq!(
        count(&statuses, 401),
        5,
        "five guesses verified: {statuses:?}"
    );
    assert_eq!(count(&statuses, 429), 55, "{statuses:?}");
    let failed = login_events(&app).await;
    let failed = failed
        .iter()
        .filter(|e| e["action"] == "auth.login_failed" && e["entity_id"] == "M0001")
        .count();
    assert_eq!(failed, 5, "each verified guess audited once");
    app.login_full("M0001", "demo1234")
        .await
        .problem(429, "too_many_attempts");

    // The right password among 30 concurrent guesses: at most five of them are verified, so it gets in
    // only if it is one of those.
    let mut guesses: Vec<String> = (0..29).map(|i| format!("guess{i:02}x")).collect();
    guesses.insert(17, "demo1234".into());
    let statuses = burst(&app, "M0002", &guesses).await;
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 200),
        5.min(statuses.len())
    );
    assert_eq!(count(&statuses, 429), 25, "{statuses:?}");
}

async fn changing_a_password_counts_against_the_lockout(app: TestApp) {
    let token = app.login("M0003").await;
    let put = |current: &str| {
        let body = json!({ "current_password": current, "new_password": "brandnew123" });
        let (app, token) = (&app, token.clone());
        async move {
            app.req(Method::PUT, PASSWORD, Some(&token), Some(&body))
                .await
        }
    };
    for i in 0..5 {
        put(&format!("nottheone{i}"))
            .await
            .field_error(422, "current_password", "wrong_password");
    }
    // A stolen access token cannot go on guessing: the right current password is refused now too.
    put("demo1234").await.problem(429, "too_many_attempts");
    app.login_full("M0003", "demo1234")
        .await
        .problem(429, "too_many_attempts");
    let events = login_events(&app).await;
    let actions: Vec<&Value> = events.iter().map(|e| &e["action"]).collect();
    assert_eq!(
        actions,
        ["auth.login_locked"],
        "password checks are filed under the user"
    );
    let admin = app.login("admin").await;
    let r = app
        .get("/api/v1/audit-events?entity=user&limit=200", &admin)
        .await
        .expect(200);
    let actions: Vec<Value> = items(&r.body).iter().map(|e| e["action"].clone()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "auth.password_check_failed")
            .count(),
        5
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "auth.password_check_locked")
            .count(),
        1
    );
    // Fifteen minutes on, the right one changes it.
    app.clock.advance(Duration::minutes(15));
    put("demo1234").await.expect(204);
    app.login_full("M0003", "brandnew123").await.expect(200);
}

async fn a_temporary_password_must_be_changed_first(app: TestApp) {
    let admin = app.login("admin").await;
    let id = app.user_id(&admin, "M0004").await;
    let reset = format!("/api/v1/users/{id}/reset-password");
    let b = app
        .req(Method::POST, &reset, Some(&admin), None)
        .await
        .expect(200)
        .body;
    let temporary = b["temporary_password"].as_str().unwrap().to_owned();
    let r = app.login_full("M0004", &temporary).await.expect(200);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    // Nothing but /me, the password change and logout.
    app.get("/api/v1/customers", &token)
        .await
        .problem(403, "password_change_required");
    app.get("/api/v1/me/today", &token)
        .await
        .problem(403, "password_change_required");
    app.get("/api/v1/tasks", &token)
        .await
        .problem(403, "password_change_required");
    assert_eq!(
        app.get("/api/v1/me", &token).await.expect(200).body["must_change_password"],
        true
    );
    app.req(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await
        .expect(204);
    let r = app.login_full("M0004", &temporary).await.expect(200);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let body = json!({ "current_password": temporary, "new_password": "chosen12345" });
    app.req(Method::PUT, PASSWORD, Some(&token), Some(&body))
        .await
        .expect(204);
    app.get("/api/v1/customers", &token).await.expect(200);

    // An admin with a temporary password cannot create orgs or admins either.
    let head = app.get("/api/v1/me", &admin).await.expect(200).body["org"]["id"].clone();
    let a2 = app
        .post(
            "/api/v1/users",
            Some(&admin),
            &json!({ "employee_no": "A0099", "name": "新管理员", "role": "admin", "org_id": head }),
        )
        .await
        .expect(201)
        .body;
    let temp = a2["temporary_password"].as_str().unwrap().to_owned();
    let a2_token = app.login_full("A0099", &temp).await.expect(200).body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        "/api/v1/users",
        Some(&a2_token),
        &json!({ "employee_no": "A0100", "name": "又一位", "role": "admin", "org_id": head }),
    )
    .await
    .problem(403, "password_change_required");
    // And an admin does not reset their own password through the admin endpoint.
    let me = app.user_id(&admin, "admin").await;
    app.req(
        Method::POST,
        &format!("/api/v1/users/{me}/reset-password"),
        Some(&admin),
        None,
    )
    .await
    .problem(403, "reset_own_password");
}

/// Logs in and returns (access, refresh).
async fn pair(app: &TestApp, employee_no: &str) -> (String, String) {
    let b = app
        .login_full(employee_no, "demo1234")
        .await
        .expect(200)
        .body;
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post(REFRESH, None, &json!({ "refresh_token": token }))
        .await
}

async fn a_lost_refresh_answer_does_not_log_the_phone_out(app: TestApp) {
    let (_, rt1) = pair(&app, "M0001").await;
    // Ten concurrent refreshes of one token (a phone retrying on a flaky network): every one answers.
    let answers = join_all((0..10).map(|_| refresh(&app, &rt1))).await;
    let mut handed = Vec::new();
    for a in answers {
        let b = a.expect(200).body;
        handed.push(b["refresh_token"].as_str().unwrap().to_owned());
        app.get("/api/v1/me", b["access_token"].as_str().unwrap())
            .await
            .expect(200);
    }
    // The phone keeps whichever answer it read last, and carries on with it.
    let kept = handed.pop().unwrap();
    let b = refresh(&app, &kept).await.expect(200).body;
    let access = b["access_token"].as_str().unwrap().to_owned();
    app.get("/api/v1/me", &access).await.expect(200);
    // The pairs it did not keep died with that refresh: presenting one gets nothing (and ends nothing).
    refresh(&app, &handed[0])
        .await
        .problem(401, "invalid_refresh_token");
    app.get("/api/v1/me", &access).await.expect(200);
    // Once the phone has moved on, the first token presented again is a reuse: the session ends.
    reuse_ends_the_session(&app, &rt1, &access).await;

    // Past the grace window, a retry is a reuse too.
    let (_, rt1) = pair(&app, "M0002").await;
    let b = refresh(&app, &rt1).await.expect(200).body;
    let access = b["access_token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::seconds(31));
    reuse_ends_the_session(&app, &rt1, &access).await;
}

/// Presents a spent refresh token that is no longer a retry: refused, and the session (of `access`) ended.
async fn reuse_ends_the_session(app: &TestApp, spent: &str, access: &str) {
    refresh(app, spent)
        .await
        .problem(401, "invalid_refresh_token");
    app.get("/api/v1/me", access)
        .await
        .problem(401, "session_ended");
}

async fn refused_logins_are_audited_and_counted(app: TestApp) {
    wrong(&app, "M0001", "wrong-password1").await;
    wrong(&app, "NOSUCH99", "wrong-password1").await;
    for _ in 0..5 {
        wrong(&app, "M0005", "wrong-password1").await;
    }
    app.login_full("M0005", "demo1234")
        .await
        .problem(429, "too_many_attempts");
    let events = login_events(&app).await;
    let of = |no: &str, action: &str| {
        events
            .iter()
            .filter(|e| e["entity_id"] == no && e["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    let m1 = of("M0001", "auth.login_failed");
    assert_eq!(m1.len(), 1, "{events:?}");
    assert_eq!(m1[0]["client_ip"], "127.0.0.1");
    assert_eq!(m1[0]["actor_id"], Value::Null);
    assert_eq!(
        of("NOSUCH99", "auth.login_failed").len(),
        1,
        "unknown numbers too"
    );
    assert_eq!(of("M0005", "auth.login_failed").len(), 5);
    assert_eq!(of("M0005", "auth.login_locked").len(), 1);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fieldwork_auth_failures_total{reason=\"wrong\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fieldwork_auth_failures_total{reason=\"locked\"} 1"),
        "{metrics}"
    );
}

/// Counts rows of the guessing state.
async fn throttle_rows(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use fieldwork::db::schema::login_throttle;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        login_throttle::table
            .count()
            .get_result(&mut db.get_sync().unwrap())
            .unwrap()
    })
    .await
    .unwrap()
}

async fn guesses_from_one_address_over_many_accounts_are_limited(app: TestApp) {
    // Four guesses on each of three accounts stays under each account's limit, not the address's (10).
    for no in ["M0001", "M0002"] {
        for i in 0..4 {
            wrong(&app, no, &format!("spray{i}xx")).await;
        }
    }
    wrong(&app, "M0003", "spray0xx").await;
    wrong(&app, "M0003", "spray1xx").await;
    // The address has made ten wrong guesses: locked, whichever account it tries.
    app.login_full("M0004", "demo1234")
        .await
        .problem(429, "too_many_attempts");
    assert!(throttle_rows(&app).await >= 4);
    // Rows whose window is over are forgotten by the scheduler pass.
    let later = app.clock_now() + Duration::minutes(16);
    fieldwork::scheduler::tick(&app.db, later, Default::default())
        .await
        .unwrap();
    assert_eq!(throttle_rows(&app).await, 0);
}

/// A right password gives back the address's guess: a busy branch office behind one address logs in all
/// day without locking itself out.
async fn right_passwords_do_not_use_up_the_address(app: TestApp) {
    for _ in 0..12 {
        app.login_full("M0001", "demo1234").await.expect(200);
    }
    app.login_full("M0002", "demo1234").await.expect(200);
}

backend_tests!(
    a_burst_of_guesses_verifies_at_most_five,
    changing_a_password_counts_against_the_lockout,
    a_temporary_password_must_be_changed_first,
    a_lost_refresh_answer_does_not_log_the_phone_out,
    refused_logins_are_audited_and_counted,
);

fn ten_per_address(s: &mut fieldwork::config::Settings) {
    s.login_address_limit = 10;
}

backend_tests_with!(ten_per_address =>
    guesses_from_one_address_over_many_accounts_are_limited,
    right_passwords_do_not_use_up_the_address,
);

/// Behind a reverse proxy that appends `X-Forwarded-For`, each phone's address is counted apart.
async fn forwarded_addresses_are_counted_apart(app: TestApp) {
    let login = |ip: &'static str, no: &'static str, pw: &'static str| {
        app.client
            .post(format!("{}{LOGIN}", app.address))
            .header("x-forwarded-for", format!("198.51.100.1, {ip}"))
            .json(&json!({ "employee_no": no, "password": pw }))
            .send()
    };
    for (no, pw, n) in [
        ("M0001", "wrong1xx", 4),
        ("M0002", "wrong2xx", 4),
        ("M0003", "wrong3xx", 2),
    ] {
        for _ in 0..n {
            let r = login("203.0.113.7", no, pw).await.unwrap();
            assert_eq!(r.status(), 401);
        }
    }
    let r = login("203.0.113.7", "M0004", "demo1234").await.unwrap();
    assert_eq!(r.status(), 429, "that address is locked");
    let r = login("203.0.113.8", "M0004", "demo1234").await.unwrap();
    assert_eq!(r.status(), 200, "another is not");
    let events = login_events(&app).await;
    assert!(events.iter().any(|e| e["client_ip"] == "203.0.113.7"));
}

fn trusted_proxy(s: &mut fieldwork::config::Settings) {
    s.login_address_limit = 10;
    s.trust_forwarded_for = true;
}

backend_tests_with!(trusted_proxy => forwarded_addresses_are_counted_apart);

/// An access token that lives longer than the server's maximum is refused though signed with its key.
async fn over_long_access_tokens_are_refused(app: TestApp) {
    let (access, _) = pair(&app, "M0001").await;
    let claims: Value = {
        use base64::Engine;
        let payload = access.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let (sub, sid) = (
        claims["sub"].as_str().unwrap(),
        claims["sid"].as_str().unwrap(),
    );
    let lax = fieldwork::auth::jwt::JwtKeys::new(b"test-secret-test-secret-test-secret!", 86_400);
    let day_long = lax
        .issue(sub.parse().unwrap(), sid, chrono::Utc::now().timestamp())
        .unwrap();
    app.get("/api/v1/me", &day_long)
        .await
        .problem(401, "invalid_token");
    app.get("/api/v1/me", &access).await.expect(200);
}

/// `/metrics` without a token: loopback only, never through a proxy.
async fn metrics_are_for_the_operator(app: TestApp) {
    let get = |header: Option<(&'static str, &'static str)>| {
        let mut rb = app.client.get(format!("{}/metrics", app.address));
        if let Some((k, v)) = header {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 200);
    let proxied = get(Some(("x-forwarded-for", "198.51.100.1")))
        .await
        .unwrap();
    assert_eq!(
        proxied.status(),
        404,
        "a request through a proxy is not the operator's"
    );
    let proxied = get(Some(("forwarded", "for=198.51.100.1"))).await.unwrap();
    assert_eq!(proxied.status(), 404);
}

backend_tests!(
    over_long_access_tokens_are_refused,
    metrics_are_for_the_operator
);

fn metrics_token(s: &mut fieldwork::config::Settings) {
    s.metrics_token = Some("operator-metrics-token-0123".into());
}

async fn only_the_token_reads_metrics(app: TestApp) {
    let get = |auth: Option<&'static str>| {
        let mut rb = app.client.get(format!("{}/metrics", app.address));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        rb.send()
    };
    assert_eq!(
        get(None).await.unwrap().status(),
        404,
        "not even from loopback"
    );
    let wrong = get(Some("Bearer operator-metrics-token-0124"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    let right = get(Some("Bearer operator-metrics-token-0123"))
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("fieldwork_http_requests")
    );
}

backend_tests_with!(metrics_token => only_the_token_reads_metrics);
