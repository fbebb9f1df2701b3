//! The OpenAPI document is the contract: the committed file must equal what the binary generates, the
//! server must serve it, and every operation must document its errors and security.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::TestApp;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = fieldwork::api::openapi().to_pretty_json().unwrap();
    assert!(
        generated.trim() == COMMITTED.trim(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
}

/// Operations anyone may call without a token (`/metrics` is the operator's: its own token, or loopback).
const PUBLIC: [&str; 4] = [
    "/healthz",
    "/readyz",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
];

#[test]
fn every_operation_documents_errors_and_security() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut ops = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: operationId"));
            assert!(ops.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{id}: summary");
            let responses = op["responses"].as_object().unwrap();
            for (status, r) in responses {
                assert!(r["description"].is_string(), "{id} {status}: description");
            }
            if path.starts_with("/api/") {
                assert!(
                    responses.keys().any(|k| k.starts_with('4')) && responses.contains_key("5XX"),
                    "{id}: 4XX and 5XX problem responses"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !PUBLIC.contains(&path.as_str()), "{id}: security");
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
}

/// Every `$ref` names a schema the document has: a generator drops an operation whose parameter it cannot
/// resolve (a client without the task or notice list).
#[test]
fn every_reference_resolves() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    let missing: Vec<&String> = all
        .iter()
        .filter(|r| {
            let name = r.trim_start_matches("#/components/schemas/");
            doc["components"]["schemas"].get(name).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "unresolved: {missing:?}");
}

/// Every create that honours `Idempotency-Key` (its handler takes an `IdempotentJson` body) declares the
/// header, so a generated client can send it.
#[test]
fn every_idempotent_create_declares_its_header() {
    fn sources(dir: &std::path::Path, out: &mut usize) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                *out += std::fs::read_to_string(&path)
                    .unwrap()
                    .matches(": IdempotentJson<")
                    .count();
            }
        }
    }
    let mut honoured = 0;
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api"),
        &mut honoured,
    );
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let declared = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|op| {
            op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key")
            })
        })
        .count();
    assert!(honoured >= 14, "{honoured}");
    assert_eq!(declared, honoured, "operations declaring Idempotency-Key");
}

async fn served_document_and_docs_ui(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    let committed: Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(served, committed);
    let r = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "Swagger UI page");
    let r = app
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "vendored Swagger UI asset");
    let r = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .unwrap();
    let init = r.text().await.unwrap();
    assert!(
        init.replace(": ", ":").contains(r#""validatorUrl":"none""#),
        "no online validator: {init}"
    );
    let r = app
        .client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308, "/docs redirects");
    assert_eq!(r.headers()["location"], "/docs/");
}

async fn migrations_go_up_down_up(app: TestApp) {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl;
        let mut conn = db.get_sync().unwrap();
        let reverted = fieldwork::db::revert_all_migrations(&mut conn).unwrap();
        assert!(reverted >= 1);
        assert!(
            diesel::sql_query("SELECT id FROM users")
                .execute(&mut *conn)
                .is_err(),
            "tables gone after down"
        );
        let applied = fieldwork::db::run_migrations(&mut conn).unwrap();
        assert_eq!(applied, reverted);
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let c: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM users")
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(c.n, 0, "empty after up");
        assert_eq!(
            fieldwork::db::run_migrations(&mut conn).unwrap(),
            0,
            "nothing pending"
        );
    })
    .await
    .unwrap();
}

/// Query structs read by the strict `ApiQuery` extractor must be documented as query parameters: a
/// parameter `in: path` must name a `{segment}` of its path, and every segment must be documented.
#[test]
fn parameters_are_where_the_paths_say() {
    let doc = serde_json::to_value(fieldwork::api::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is documented as a path parameter"
                    );
                }
            }
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    params
                        .iter()
                        .any(|p| p["in"] == "path" && p["name"] == name),
                    "{method} {path}: path segment `{name}` undocumented"
                );
            }
        }
    }
}

#[test]
fn migration_trees_match() {
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("migrations/sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        names("migrations/postgres"),
        "both backends have the same migrations"
    );
}

backend_tests!(served_document_and_docs_ui, migrations_go_up_down_up);

/// Logs written to a file or a pipe (a log shipper, `journald`) carry no terminal colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("logs.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fieldwork"))
        .args(["serve", "--bind", "127.0.0.1:0", "--tick-secs", "0"])
        .env("DATABASE_URL", &url)
        .env_remove("FIELDWORK_JWT_SECRET")
        .env_remove("FIELDWORK_LOG_JSON")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The server logs at start-up (the database it is ready on).
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("INFO"), "{line:?}");
    assert!(!line.contains('\u{1b}'), "colour codes in {line:?}");
}
