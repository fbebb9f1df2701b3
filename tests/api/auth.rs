//! Login, lockout, request validation, refresh-token rotation with reuse detection, logout, access-token
//! verification, password change, deactivation and admin password reset.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp};

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";
const ME: &str = "/api/v1/me";
const PASSWORD: &str = "/api/v1/me/password";
/// The home screen checks the session in its own combined statement, so it is tried alongside `/me`.
const TODAY: &str = "/api/v1/me/today";
const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

/// Logs in and returns (access token, refresh token).
async fn pair(app: &TestApp, employee_no: &str, password: &str) -> (String, String) {
    let b = app.login_full(employee_no, password).await.expect(200).body;
    (
        str_of(&b, "access_token").to_owned(),
        str_of(&b, "refresh_token").to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post(REFRESH, None, &json!({ "refresh_token": token }))
        .await
}

async fn put_password(app: &TestApp, token: &str, current: &str, new: &str) -> Resp {
    let body = json!({ "current_password": current, "new_password": new });
    app.req(Method::PUT, PASSWORD, Some(token), Some(&body))
        .await
}

/// POSTs a raw body to the login route.
async fn raw_login(app: &TestApp, content_type: &str, body: Vec<u8>) -> Resp {
    let res = app
        .client
        .post(format!("{}{LOGIN}", app.address))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    TestApp::read(res).await
}

/// GET /me with a literal Authorization header.
async fn me_with_header(app: &TestApp, authorization: &str) -> Resp {
    let res = app
        .client
        .get(format!("{}{ME}", app.address))
        .header("authorization", authorization)
        .send()
        .await;
    TestApp::read(res.unwrap()).await
}

/// The decoded payload of a JWT.
fn payload_of(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Claims like the server's, for the session of `real`, valid from `iat` for `ttl` seconds.
fn claims_like(real: &str, iat: i64, ttl: i64, typ: &str) -> Value {
    let p = payload_of(real);
    json!({
        "sub": p["sub"], "sid": p["sid"], "iat": iat, "exp": iat + ttl,
        "iss": "fieldwork", "aud": "fieldwork-api", "typ": typ,
    })
}

fn without_request_id(mut v: Value) -> Value {
    v.as_object_mut().expect("object").remove("request_id");
    v
}

async fn login_success_returns_working_tokens(app: TestApp) {
    let b = app.login_full("M0001", "demo1234").await.expect(200).body;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["user"]["employee_no"], "M0001");
    assert_eq!(b["user"]["role"], "manager");
    assert_eq!(b["user"]["org"]["name"], "鼓楼支行");
    assert!(b.get("password_hash").is_none() && b["user"].get("password_hash").is_none());
    let access = str_of(&b, "access_token");
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(str_of(&b, "refresh_token").len() >= 32);
    let p = payload_of(access);
    assert_eq!(p["sub"], b["user"]["id"].to_string());
    assert_eq!(p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap(), 900);
    let me = app.get(ME, access).await.expect(200).body;
    assert_eq!(me["employee_no"], "M0001");
    assert_eq!(me["id"], b["user"]["id"]);
    let path: Vec<&str> = me["org_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(path, ["总行", "南京分行", "鼓楼支行"]);
}

async fn login_failure_does_not_reveal_existence(app: TestApp) {
    let wrong = app.login_full("M0001", "wrong-password1").await;
    assert_eq!(
        wrong
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let wrong = wrong.problem(401, "invalid_credentials");
    let unknown = app.login_full("Z9999", "demo1234").await;
    assert!(unknown.headers.contains_key("www-authenticate"));
    let unknown = unknown.problem(401, "invalid_credentials");
    assert_eq!(wrong["detail"], unknown["detail"]);
    assert_eq!(
        without_request_id(wrong),
        without_request_id(unknown),
        "identical answers"
    );
}

async fn repeated_failures_lock_the_employee_number(app: TestApp) {
    for i in 0..5 {
        let r = app.login_full("M0001", &format!("wrong-{i}")).await;
        r.problem(401, "invalid_credentials");
    }
    let locked = app.login_full("M0001", "demo1234").await;
    let secs: u64 = locked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("numeric Retry-After");
    assert!((1..=900).contains(&secs), "Retry-After {secs}");
    let body = locked.problem(429, "too_many_attempts");
    // Other employee numbers are unaffected.
    app.login("M0002").await;
    // Unknown employee numbers lock the same way, so a lock does not reveal existence.
    for _ in 0..5 {
        app.login_full("Z9999", "whatever1")
            .await
            .problem(401, "invalid_credentials");
    }
    let unknown = app.login_full("Z9999", "whatever1").await;
    assert!(unknown.headers.contains_key("retry-after"));
    let unknown = unknown.problem(429, "too_many_attempts");
    assert_eq!(unknown["title"], body["title"]);
    // Still locked: the right password does not count as a success.
    app.login_full("M0001", "demo1234")
        .await
        .problem(429, "too_many_attempts");
}

async fn login_body_is_validated(app: TestApp) {
    app.post(LOGIN, None, &json!({ "employee_no": "M0001" }))
        .await
        .field_error(422, "password", "required");
    app.post(
        LOGIN,
        None,
        &json!({ "employee_no": "a", "password": "b", "x": 1 }),
    )
    .await
    .field_error(422, "x", "unknown_field");
    app.post(
        LOGIN,
        None,
        &json!({ "employee_no": "M0001", "password": 5 }),
    )
    .await
    .field_error(422, "password", "invalid_type");
    app.post(
        LOGIN,
        None,
        &json!({ "employee_no": "", "password": "demo1234" }),
    )
    .await
    .field_error(422, "employee_no", "invalid_format");
    app.post(
        LOGIN,
        None,
        &json!({ "employee_no": "   ", "password": "demo1234" }),
    )
    .await
    .field_error(422, "employee_no", "invalid_format");
    app.post(
        LOGIN,
        None,
        &json!({ "employee_no": "M0001", "password": "" }),
    )
    .await
    .field_error(422, "password", "invalid_format");
    raw_login(&app, "application/json", br#"{"employee_no":"#.to_vec())
        .await
        .problem(400, "malformed_json");
    raw_login(
        &app,
        "application/json",
        br#"{"employee_no":"M0001","password":"demo1234"} x"#.to_vec(),
    )
    .await
    .problem(400, "malformed_json");
    let ok = br#"{"employee_no":"M0001","password":"demo1234"}"#.to_vec();
    raw_login(&app, "text/plain", ok.clone())
        .await
        .problem(415, "unsupported_media_type");
    raw_login(&app, "application/json; charset=utf-8", ok)
        .await
        .expect(200);
    let big = format!(
        r#"{{"employee_no":"M0001","password":"{}"}}"#,
        "a".repeat(70 * 1024)
    );
    raw_login(&app, "application/json", big.into_bytes())
        .await
        .problem(413, "payload_too_large");
}

async fn refresh_rotates_and_reuse_revokes_the_session(app: TestApp) {
    let (access1, rt1) = pair(&app, "M0001", "demo1234").await;
    let b = refresh(&app, &rt1).await.expect(200).body;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["user"]["employee_no"], "M0001");
    let rt2 = str_of(&b, "refresh_token").to_owned();
    let access2 = str_of(&b, "access_token").to_owned();
    assert_ne!(rt2, rt1, "a new refresh token");
    assert_eq!(
        payload_of(&access2)["sid"],
        payload_of(&access1)["sid"],
        "same session"
    );
    assert_eq!(
        app.get(ME, &access2).await.expect(200).body["employee_no"],
        "M0001"
    );
    // The spent token presented again after the grace window is refused and ends the whole session.
    app.clock.advance(chrono::Duration::seconds(31));
    refresh(&app, &rt1)
        .await
        .problem(401, "invalid_refresh_token");
    refresh(&app, &rt2)
        .await
        .problem(401, "invalid_refresh_token");
    app.get(ME, &access2).await.problem(401, "session_ended");
    app.get(ME, &access1).await.problem(401, "session_ended");
    refresh(&app, "no-such-refresh-token")
        .await
        .problem(401, "invalid_refresh_token");
    app.post(REFRESH, None, &json!({ "refresh_token": "" }))
        .await
        .field_error(422, "refresh_token", "invalid_format");
    app.post(REFRESH, None, &json!({}))
        .await
        .field_error(422, "refresh_token", "required");
}

async fn logout_ends_only_that_session(app: TestApp) {
    let (access1, rt1) = pair(&app, "M0001", "demo1234").await;
    let (access2, rt2) = pair(&app, "M0001", "demo1234").await;
    let r = app
        .req(Method::POST, LOGOUT, Some(&access1), None)
        .await
        .expect(204);
    assert!(r.text.is_empty());
    app.get(ME, &access1).await.problem(401, "session_ended");
    app.get(TODAY, &access1).await.problem(401, "session_ended");
    refresh(&app, &rt1)
        .await
        .problem(401, "invalid_refresh_token");
    app.req(Method::POST, LOGOUT, Some(&access1), None)
        .await
        .problem(401, "session_ended");
    app.get(ME, &access2).await.expect(200);
    app.get(TODAY, &access2).await.expect(200);
    refresh(&app, &rt2).await.expect(200);
    app.req(Method::POST, LOGOUT, None, None)
        .await
        .problem(401, "missing_token");
}

async fn missing_and_malformed_tokens_are_refused(app: TestApp) {
    let r = app.req(Method::GET, ME, None, None).await;
    assert!(r.headers.contains_key("www-authenticate"));
    r.problem(401, "missing_token");
    app.get(ME, "garbage").await.problem(401, "invalid_token");
    app.get(ME, "a.b.c").await.problem(401, "invalid_token");
    let access = app.login("M0001").await;
    me_with_header(&app, &format!("Basic {access}"))
        .await
        .problem(401, "invalid_token");
    me_with_header(&app, &format!("Bearer {access}"))
        .await
        .expect(200);
}

async fn forged_and_expired_tokens_are_refused(app: TestApp) {
    let real = app.login("M0001").await;
    let admin_id = app.login_full("admin", "demo1234").await.expect(200).body["user"]["id"].clone();
    let now = chrono::Utc::now().timestamp();
    // Sanity check: a token crafted this way with valid claims is accepted, so each refusal below is
    // caused by the one thing that differs.
    app.get(ME, &sign(&claims_like(&real, now, 600, "access"), SECRET))
        .await
        .expect(200);
    let expired = sign(&claims_like(&real, now - 7200, 3600, "access"), SECRET);
    app.get(ME, &expired).await.problem(401, "invalid_token");
    let refresh_typ = sign(&claims_like(&real, now, 600, "refresh"), SECRET);
    app.get(ME, &refresh_typ)
        .await
        .problem(401, "invalid_token");
    let foreign = sign(
        &claims_like(&real, now, 600, "access"),
        b"another-secret-another-secret-another!",
    );
    app.get(ME, &foreign).await.problem(401, "invalid_token");
    let mut wrong_aud = claims_like(&real, now, 600, "access");
    wrong_aud["aud"] = json!("someone-else");
    app.get(ME, &sign(&wrong_aud, SECRET))
        .await
        .problem(401, "invalid_token");
    // Tampered: another subject in the payload, the original signature kept.
    let parts: Vec<&str> = real.split('.').collect();
    let mut p = payload_of(&real);
    p["sub"] = json!(admin_id.to_string());
    let forged_payload = URL_SAFE_NO_PAD.encode(p.to_string());
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    app.get(ME, &tampered).await.problem(401, "invalid_token");
    // alg none, with and without the original signature.
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    app.get(ME, &format!("{none}.{}.", parts[1]))
        .await
        .problem(401, "invalid_token");
    app.get(ME, &format!("{none}.{}.{}", parts[1], parts[2]))
        .await
        .problem(401, "invalid_token");
    // The real token is untouched by all this.
    app.get(ME, &real).await.expect(200);
}

async fn password_change_checks_and_ends_other_sessions(app: TestApp) {
    let (earlier, earlier_rt) = pair(&app, "M0001", "demo1234").await;
    let (current, _) = pair(&app, "M0001", "demo1234").await;
    put_password(&app, &current, "not-my-password1", "newpass123")
        .await
        .field_error(422, "current_password", "wrong_password");
    put_password(&app, &current, "demo1234", "password")
        .await
        .field_error(422, "new_password", "weak_password");
    put_password(&app, &current, "demo1234", "abc1")
        .await
        .field_error(422, "new_password", "too_short");
    put_password(&app, &current, "demo1234", "demo1234")
        .await
        .field_error(422, "new_password", "same_as_current");
    let extra = json!({ "current_password": "demo1234", "new_password": "newpass123", "x": 1 });
    app.req(Method::PUT, PASSWORD, Some(&current), Some(&extra))
        .await
        .field_error(422, "x", "unknown_field");
    // None of the refusals changed anything.
    app.get(ME, &earlier).await.expect(200);
    let r = put_password(&app, &current, "demo1234", "newpass123")
        .await
        .expect(204);
    assert!(r.text.is_empty());
    app.login_full("M0001", "demo1234")
        .await
        .problem(401, "invalid_credentials");
    app.login_full("M0001", "newpass123").await.expect(200);
    app.get(ME, &current).await.expect(200);
    app.get(ME, &earlier).await.problem(401, "session_ended");
    refresh(&app, &earlier_rt)
        .await
        .problem(401, "invalid_refresh_token");
    let anon = json!({ "current_password": "newpass123", "new_password": "other1234" });
    app.req(Method::PUT, PASSWORD, None, Some(&anon))
        .await
        .problem(401, "missing_token");
}

async fn deactivation_ends_sessions_and_blocks_login(app: TestApp) {
    let admin = app.login("admin").await;
    let (access, rt) = pair(&app, "M0003", "demo1234").await;
    let id = app.user_id(&admin, "M0003").await;
    let path = format!("/api/v1/users/{id}");
    let b = app
        .patch(&path, &admin, &json!({ "active": false }))
        .await
        .expect(200)
        .body;
    assert_eq!(b["active"], false);
    app.get(ME, &access).await.problem(401, "session_ended");
    app.get(TODAY, &access).await.problem(401, "session_ended");
    refresh(&app, &rt)
        .await
        .problem(401, "invalid_refresh_token");
    let denied = app
        .login_full("M0003", "demo1234")
        .await
        .problem(401, "invalid_credentials");
    let unknown = app
        .login_full("Z9999", "demo1234")
        .await
        .problem(401, "invalid_credentials");
    assert_eq!(without_request_id(denied), without_request_id(unknown));
    // Reactivated, the user can log in again: the refusal was the deactivation.
    app.patch(&path, &admin, &json!({ "active": true }))
        .await
        .expect(200);
    app.login("M0003").await;
    // A manager may not deactivate anyone.
    let manager = app.login("M0004").await;
    app.patch(&path, &manager, &json!({ "active": false }))
        .await
        .problem(403, "forbidden");
}

async fn admin_reset_gives_a_temporary_password(app: TestApp) {
    let admin = app.login("admin").await;
    let (access, rt) = pair(&app, "M0004", "demo1234").await;
    let id = app.user_id(&admin, "M0004").await;
    let path = format!("/api/v1/users/{id}/reset-password");
    let manager = app.login("M0005").await;
    app.req(Method::POST, &path, Some(&manager), None)
        .await
        .problem(403, "forbidden");
    app.get(ME, &access).await.expect(200);
    let b = app
        .req(Method::POST, &path, Some(&admin), None)
        .await
        .expect(200)
        .body;
    let temporary = str_of(&b, "temporary_password").to_owned();
    assert!(temporary.len() >= 8);
    app.get(ME, &access).await.problem(401, "session_ended");
    refresh(&app, &rt)
        .await
        .problem(401, "invalid_refresh_token");
    app.login_full("M0004", "demo1234")
        .await
        .problem(401, "invalid_credentials");
    let b = app.login_full("M0004", &temporary).await.expect(200).body;
    assert_eq!(b["user"]["must_change_password"], true);
    let access = str_of(&b, "access_token").to_owned();
    assert_eq!(
        app.get(ME, &access).await.expect(200).body["must_change_password"],
        true
    );
    // Changing it clears the flag.
    put_password(&app, &access, &temporary, "mine12345")
        .await
        .expect(204);
    assert_eq!(
        app.get(ME, &access).await.expect(200).body["must_change_password"],
        false
    );
}

backend_tests!(
    login_success_returns_working_tokens,
    login_failure_does_not_reveal_existence,
    repeated_failures_lock_the_employee_number,
    login_body_is_validated,
    refresh_rotates_and_reuse_revokes_the_session,
    logout_ends_only_that_session,
    missing_and_malformed_tokens_are_refused,
    forged_and_expired_tokens_are_refused,
    password_change_checks_and_ends_other_sessions,
    deactivation_ends_sessions_and_blocks_login,
    admin_reset_gives_a_temporary_password,
);
