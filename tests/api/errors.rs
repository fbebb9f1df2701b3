//! Every kind of error answers with the same problem document; request ids and compression.

use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::TestApp;

async fn unknown_route_and_wrong_method(app: TestApp) {
    app.req(Method::GET, "/api/v1/nothing-here", None, None)
        .await
        .problem(404, "route_not_found");
    app.req(Method::GET, "/", None, None)
        .await
        .problem(404, "route_not_found");
    let r = app.req(Method::DELETE, "/api/v1/users", None, None).await;
    let allow = r
        .headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.problem(405, "method_not_allowed");
    assert_eq!(allow, "GET, POST");
    let r = app.req(Method::PUT, "/api/v1/users/7", None, None).await;
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, PATCH")
    );
    r.problem(405, "method_not_allowed");
}

async fn bad_path_and_query_parameters(app: TestApp) {
    let t = app.login("admin").await;
    for bad in ["abc", "0", "-1", "99999999999999999999"] {
        app.get(&format!("/api/v1/users/{bad}"), &t)
            .await
            .field_error(400, "id", "invalid_format");
    }
    let b = app
        .get("/api/v1/users?limit=abc", &t)
        .await
        .problem(400, "invalid_query_parameter");
    assert_eq!(b["errors"][0]["field"], "limit");
    let b = app
        .get("/api/v1/users?role=boss", &t)
        .await
        .problem(400, "invalid_query_parameter");
    assert_eq!(b["errors"][0]["field"], "role");
    let b = app
        .get("/api/v1/users?colour=red", &t)
        .await
        .problem(400, "invalid_query_parameter");
    assert_eq!(b["errors"][0]["field"], "colour");
    assert_eq!(b["errors"][0]["code"], "unknown_field");
    let b = app
        .get("/api/v1/audit-events?from=yesterday", &t)
        .await
        .problem(400, "invalid_query_parameter");
    assert_eq!(b["errors"][0]["field"], "from");
}

async fn bodies_malformed_wrong_type_unknown_and_oversize(app: TestApp) {
    let t = app.login("admin").await;
    let url = format!("{}/api/v1/orgs", app.address);
    let send = |body: String, ct: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&t)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    TestApp::read(send("{\"name\":".into(), "application/json").await.unwrap())
        .await
        .problem(400, "malformed_json");
    TestApp::read(send(String::new(), "application/json").await.unwrap())
        .await
        .problem(400, "malformed_json");
    TestApp::read(send("{}".into(), "text/plain").await.unwrap())
        .await
        .problem(415, "unsupported_media_type");
    let big = json!({ "name": "x".repeat(100_000), "code": "c", "kind": "outlet", "parent_id": 1 })
        .to_string();
    TestApp::read(send(big, "application/json").await.unwrap())
        .await
        .problem(413, "payload_too_large");
    let wrong =
        json!({ "name": "n", "code": "c", "kind": "outlet", "parent_id": "one" }).to_string();
    TestApp::read(send(wrong, "application/json").await.unwrap())
        .await
        .field_error(422, "parent_id", "invalid_type");
    let extra = json!({ "name": "n", "code": "c", "kind": "outlet", "parent_id": 3, "colour": 1 })
        .to_string();
    TestApp::read(send(extra, "application/json").await.unwrap())
        .await
        .field_error(422, "colour", "unknown_field");
    let missing = json!({ "name": "n", "kind": "outlet", "parent_id": 3 }).to_string();
    TestApp::read(send(missing, "application/json").await.unwrap())
        .await
        .field_error(422, "code", "required");
    // Nothing half-written: the org list is unchanged.
    let orgs = app.get("/api/v1/orgs", &t).await.expect(200);
    assert_eq!(orgs.body["items"].as_array().unwrap().len(), 7);
}

async fn request_ids_are_echoed_or_made(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "phone-42.a")
        .send()
        .await;
    assert_eq!(r.unwrap().headers()["x-request-id"], "phone-42.a");
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "bad id <script>")
        .send();
    let made = r.await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(made.len(), 32, "a fresh id replaces an unusable one");
    let r = app.req(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    r.problem(401, "missing_token");
}

async fn responses_are_compressed_when_asked(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .header("accept-encoding", "gzip")
        .send();
    let r = r.await.unwrap();
    assert_eq!(
        r.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let r = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
}

async fn metrics_count_requests_by_route(app: TestApp) {
    let t = app.login("admin").await;
    app.get("/api/v1/users?limit=1", &t).await.expect(200);
    app.get("/api/v1/users/999999", &t).await.expect(404);
    let r = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("fieldwork_http_requests_total")
                && l.contains("route=\"/api/v1/users\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(
        text.contains("route=\"/api/v1/users/{id}\""),
        "labelled by template, not raw path"
    );
    assert!(!text.contains("999999"), "raw ids never become labels");
    assert!(text.contains("fieldwork_http_request_duration_seconds_bucket"));
    assert!(text.contains("fieldwork_db_pool_connections"));
}

backend_tests!(
    unknown_route_and_wrong_method,
    bad_path_and_query_parameters,
    bodies_malformed_wrong_type_unknown_and_oversize,
    request_ids_are_echoed_or_made,
    responses_are_compressed_when_asked,
    metrics_count_requests_by_route,
);
