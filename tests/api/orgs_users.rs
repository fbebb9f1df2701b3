//! Orgs, users and the audit log over the demo data: who sees and may change what, validation, paging,
//! and the audit events writes leave behind.
//!
//! Demo tree: 总行 HO → 南京分行 NJ (鼓楼支行 NJ-GL, 玄武支行 NJ-XW), 苏州分行 SZ (姑苏支行 SZ-GS, 园区支行 SZ-YQ);
//! `admin` in 总行, leaders L0001–L0004 and managers M0001–M0024 (six each) per sub-branch in that order.

use std::collections::{BTreeSet, HashMap};

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, id_of, ids, items};

const ORGS: &str = "/api/v1/orgs";
const USERS: &str = "/api/v1/users";
const AUDIT: &str = "/api/v1/audit-events";

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// One string field of every item of a list answer, as a set.
fn strs(body: &Value, key: &str) -> BTreeSet<String> {
    items(body)
        .iter()
        .map(|v| {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {v}"))
                .to_owned()
        })
        .collect()
}

/// A set of strings.
fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Employee numbers `prefix{from:04}`..=`prefix{to:04}`.
fn numbered(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..=to).map(|i| format!("{prefix}{i:04}")).collect()
}

/// The same as a set.
fn numbered_set(prefix: &str, from: usize, to: usize) -> BTreeSet<String> {
    numbered(prefix, from, to).into_iter().collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request id an answer carries in its header.
fn request_id(r: &Resp) -> String {
    r.headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id header")
        .to_owned()
}

/// Asserts a 400 `invalid_query_parameter` naming `field` (with `code`, when given).
#[track_caller]
fn query_error(r: Resp, field: &str, code: Option<&str>) {
    let body = r.problem(400, "invalid_query_parameter");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && code.is_none_or(|c| e["code"] == c)),
        "expected query error on {field} ({code:?}) in {body}"
    );
}

/// Every org the token may see, by code (one page of up to 200).
async fn orgs_by_code(app: &TestApp, token: &str) -> HashMap<String, Value> {
    let r = app
        .get(&format!("{ORGS}?limit=200"), token)
        .await
        .expect(200);
    items(&r.body)
        .into_iter()
        .map(|o| (o["code"].as_str().expect("code").to_owned(), o))
        .collect()
}

/// The org with this code, as the token sees it.
async fn org(app: &TestApp, token: &str, code: &str) -> Value {
    orgs_by_code(app, token)
        .await
        .remove(code)
        .unwrap_or_else(|| panic!("org {code} not visible"))
}

/// The id of the org with this code, as the token sees it.
async fn org_id(app: &TestApp, token: &str, code: &str) -> i64 {
    id_of(&org(app, token, code).await)
}

/// A full page (limit 200) of a list endpoint.
async fn all(app: &TestApp, path: &str, token: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = app
        .get(&format!("{path}{sep}limit=200"), token)
        .await
        .expect(200);
    assert!(
        r.body["next_cursor"].is_null(),
        "one page should hold everything: {}",
        r.text
    );
    r.body
}

/// POST /users with a valid body (and optionally a password).
async fn create_user(
    app: &TestApp,
    token: &str,
    employee_no: &str,
    role: &str,
    org_id: i64,
    password: Option<&str>,
) -> Resp {
    let mut body =
        json!({ "employee_no": employee_no, "name": "测试员工", "role": role, "org_id": org_id });
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    app.post(USERS, Some(token), &body).await
}

/// An outlet under `parent_id`, created by `token`; returns the created org.
async fn create_outlet(app: &TestApp, token: &str, parent_id: i64, code: &str) -> Value {
    let body =
        json!({ "parent_id": parent_id, "code": code, "name": "测试网点", "kind": "outlet" });
    app.post(ORGS, Some(token), &body).await.expect(201).body
}

/// Creates `A-NJ`, an admin of 南京分行, and logs it in; returns (its id, its token).
async fn nanjing_admin(app: &TestApp, admin: &str) -> (i64, String) {
    let nj = org_id(app, admin, "NJ").await;
    let r = create_user(app, admin, "A-NJ", "admin", nj, Some("branch123"))
        .await
        .expect(201);
    assert!(r.body["temporary_password"].is_null(), "{}", r.text);
    assert_eq!(r.body["user"]["role"], "admin");
    assert_eq!(r.body["user"]["org"]["id"], nj);
    let id = id_of(&r.body["user"]);
    let login = app.login_full("A-NJ", "branch123").await.expect(200);
    (
        id,
        login.body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
    )
}

/// The number of audit events the token sees (fails if more than one page).
async fn audit_count(app: &TestApp, token: &str) -> usize {
    items(&all(app, AUDIT, token).await).len()
}

// ---------------------------------------------------------------------------------------------------------
// 1. Org reads per role
// ---------------------------------------------------------------------------------------------------------

async fn org_reads_follow_the_callers_scope(app: TestApp) {
    let admin = app.login("admin").await;
    let all_orgs = all(&app, ORGS, &admin).await;
    assert_eq!(items(&all_orgs).len(), 7, "{all_orgs}");
    assert_eq!(
        strs(&all_orgs, "code"),
        set(&["HO", "NJ", "SZ", "NJ-GL", "NJ-XW", "SZ-GS", "SZ-YQ"])
    );
    let ids_in_order = ids(&all_orgs);
    assert!(
        ids_in_order.windows(2).all(|w| w[0] < w[1]),
        "orgs are listed by id: {ids_in_order:?}"
    );

    let by_code = orgs_by_code(&app, &admin).await;
    let (ho, nj, sz) = (&by_code["HO"], &by_code["NJ"], &by_code["SZ"]);
    let (gl, xw, gs) = (&by_code["NJ-GL"], &by_code["NJ-XW"], &by_code["SZ-GS"]);
    assert_eq!(ho["name"], "总行");
    assert_eq!(ho["kind"], "head_office");
    assert!(ho["parent_id"].is_null());
    assert_eq!(ho["path"], format!("/{}/", id_of(ho)));
    assert_eq!(nj["kind"], "branch");
    assert_eq!(nj["parent_id"], id_of(ho));
    assert_eq!(gl["name"], "鼓楼支行");
    assert_eq!(gl["kind"], "sub_branch");
    assert_eq!(gl["parent_id"], id_of(nj));
    assert_eq!(
        gl["path"],
        format!("/{}/{}/{}/", id_of(ho), id_of(nj), id_of(gl))
    );
    assert_eq!(gs["parent_id"], id_of(sz));

    // A leader sees exactly their sub-branch.
    let l1 = app.login("L0001").await;
    let seen = all(&app, ORGS, &l1).await;
    assert_eq!(ids(&seen), vec![id_of(gl)], "{seen}");
    app.get(&format!("{ORGS}/{}", id_of(gl)), &l1)
        .await
        .expect(200);
    app.get(&format!("{ORGS}/{}", id_of(gs)), &l1)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{}", id_of(xw)), &l1)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{}", id_of(nj)), &l1)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{}", id_of(ho)), &l1)
        .await
        .problem(404, "org_not_found");

    // A manager sees only their own org.
    let m1 = app.login("M0001").await;
    let seen = all(&app, ORGS, &m1).await;
    assert_eq!(ids(&seen), vec![id_of(gl)], "{seen}");
    let own = app
        .get(&format!("{ORGS}/{}", id_of(gl)), &m1)
        .await
        .expect(200);
    assert_eq!(own.body["code"], "NJ-GL");
    app.get(&format!("{ORGS}/{}", id_of(nj)), &m1)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{}", id_of(xw)), &m1)
        .await
        .problem(404, "org_not_found");

    // A leader elsewhere sees their own sub-branch only.
    let l3 = app.login("L0003").await;
    assert_eq!(ids(&all(&app, ORGS, &l3).await), vec![id_of(gs)]);

    // Without a token nothing is listed.
    app.req(Method::GET, ORGS, None, None)
        .await
        .problem(401, "missing_token");
    app.req(Method::GET, USERS, None, None)
        .await
        .problem(401, "missing_token");

    // An org that does not exist reads like one out of scope.
    app.get(&format!("{ORGS}/999999"), &admin)
        .await
        .problem(404, "org_not_found");

    // parent_id lists only the direct children.
    let children = all(&app, &format!("{ORGS}?parent_id={}", id_of(nj)), &admin).await;
    assert_eq!(strs(&children, "code"), set(&["NJ-GL", "NJ-XW"]));
    let children = all(&app, &format!("{ORGS}?parent_id={}", id_of(ho)), &admin).await;
    assert_eq!(strs(&children, "code"), set(&["NJ", "SZ"]));
    let children = all(&app, &format!("{ORGS}?parent_id={}", id_of(gl)), &admin).await;
    assert!(items(&children).is_empty(), "{children}");
    // ... and still only within scope.
    let children = all(&app, &format!("{ORGS}?parent_id={}", id_of(sz)), &l1).await;
    assert!(items(&children).is_empty(), "{children}");
}

// ---------------------------------------------------------------------------------------------------------
// 2. Org writes
// ---------------------------------------------------------------------------------------------------------

async fn org_create_checks_role_kind_and_fields(app: TestApp) {
    let admin = app.login("admin").await;
    let gl = org(&app, &admin, "NJ-GL").await;
    let gl_id = id_of(&gl);
    let gl_path = gl["path"].as_str().expect("path").to_owned();

    let body =
        json!({ "parent_id": gl_id, "code": "NJ-GL-01", "name": "湖南路网点", "kind": "outlet" });
    let created = app.post(ORGS, Some(&admin), &body).await.expect(201).body;
    let new_id = id_of(&created);
    assert_eq!(created["path"], format!("{gl_path}{new_id}/"));
    assert_eq!(created["parent_id"], gl_id);
    assert_eq!(created["code"], "NJ-GL-01");
    assert_eq!(created["name"], "湖南路网点");
    assert_eq!(created["kind"], "outlet");
    assert!(
        created["created_at"].is_string() && created["updated_at"].is_string(),
        "{created}"
    );
    let read = app
        .get(&format!("{ORGS}/{new_id}"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(read["path"], created["path"]);
    // The sub-branch's leader now sees it too.
    let l1 = app.login("L0001").await;
    assert_eq!(ids(&all(&app, ORGS, &l1).await), vec![gl_id, new_id]);
    // A manager of the sub-branch still sees only their own org, not the one below it.
    let m1 = app.login("M0001").await;
    assert_eq!(ids(&all(&app, ORGS, &m1).await), vec![gl_id]);
    app.get(&format!("{ORGS}/{new_id}"), &m1)
        .await
        .problem(404, "org_not_found");

    // Only admins write.
    let body = json!({ "parent_id": gl_id, "code": "NJ-GL-02", "name": "网点", "kind": "outlet" });
    app.post(ORGS, Some(&l1), &body)
        .await
        .problem(403, "forbidden");
    app.post(ORGS, Some(&m1), &body)
        .await
        .problem(403, "forbidden");

    let attempt = |over: Value| {
        let mut b =
            json!({ "parent_id": gl_id, "code": "NJ-GL-09", "name": "网点", "kind": "outlet" });
        for (k, v) in over.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    // The kind must be below the parent's.
    app.post(ORGS, Some(&admin), &attempt(json!({ "kind": "branch" })))
        .await
        .field_error(422, "kind", "invalid_value");
    app.post(
        ORGS,
        Some(&admin),
        &attempt(json!({ "kind": "sub_branch" })),
    )
    .await
    .field_error(422, "kind", "invalid_value");
    app.post(
        ORGS,
        Some(&admin),
        &attempt(json!({ "kind": "head_office" })),
    )
    .await
    .field_error(422, "kind", "invalid_value");
    // An unknown kind.
    app.post(ORGS, Some(&admin), &attempt(json!({ "kind": "region" })))
        .await
        .field_error(422, "kind", "invalid_value");
    // Codes are unique.
    app.post(ORGS, Some(&admin), &attempt(json!({ "code": "NJ-GL" })))
        .await
        .problem(409, "org_code_taken");
    app.post(ORGS, Some(&admin), &attempt(json!({ "code": "NJ-GL-01" })))
        .await
        .problem(409, "org_code_taken");
    // Names: required, at most 100 characters.
    app.post(ORGS, Some(&admin), &attempt(json!({ "name": "" })))
        .await
        .field_error(422, "name", "required");
    app.post(ORGS, Some(&admin), &attempt(json!({ "name": "   " })))
        .await
        .field_error(422, "name", "required");
    app.post(
        ORGS,
        Some(&admin),
        &attempt(json!({ "name": "网".repeat(101) })),
    )
    .await
    .field_error(422, "name", "too_long");
    app.post(ORGS, Some(&admin), &attempt(json!({ "code": "" })))
        .await
        .field_error(422, "code", "required");
    app.post(
        ORGS,
        Some(&admin),
        &attempt(json!({ "code": "C".repeat(33) })),
    )
    .await
    .field_error(422, "code", "too_long");
    // Unknown fields are refused.
    app.post(ORGS, Some(&admin), &attempt(json!({ "region": "east" })))
        .await
        .field_error(422, "region", "unknown_field");
    // A missing field is named.
    app.post(
        ORGS,
        Some(&admin),
        &json!({ "parent_id": gl_id, "code": "X1", "name": "网点" }),
    )
    .await
    .field_error(422, "kind", "required");
    // The parent must exist (in scope).
    app.post(
        ORGS,
        Some(&admin),
        &attempt(json!({ "parent_id": 999_999 })),
    )
    .await
    .field_error(422, "parent_id", "not_found");

    // Nothing of the failed attempts was stored; a 100-character name is fine.
    assert_eq!(items(&all(&app, ORGS, &admin).await).len(), 8);
    let ok = app
        .post(
            ORGS,
            Some(&admin),
            &attempt(json!({ "name": "网".repeat(100) })),
        )
        .await
        .expect(201);
    assert_eq!(
        ok.body["name"].as_str().map(|s| s.chars().count()),
        Some(100)
    );
    assert_eq!(items(&all(&app, ORGS, &admin).await).len(), 9);
}

// ---------------------------------------------------------------------------------------------------------
// 3. A branch admin is limited to their subtree
// ---------------------------------------------------------------------------------------------------------

async fn branch_admin_sees_and_writes_only_its_subtree(app: TestApp) {
    let admin = app.login("admin").await;
    let by_code = orgs_by_code(&app, &admin).await;
    let (sz, gs, xw) = (
        id_of(&by_code["SZ"]),
        id_of(&by_code["SZ-GS"]),
        id_of(&by_code["NJ-XW"]),
    );
    let (nj_admin_id, nj_admin) = nanjing_admin(&app, &admin).await;

    let orgs_seen = all(&app, ORGS, &nj_admin).await;
    assert_eq!(
        strs(&orgs_seen, "code"),
        set(&["NJ", "NJ-GL", "NJ-XW"]),
        "{orgs_seen}"
    );

    let users_seen = all(&app, USERS, &nj_admin).await;
    let mut expected: BTreeSet<String> = numbered_set("M", 1, 12);
    expected.extend(["L0001".to_owned(), "L0002".to_owned(), "A-NJ".to_owned()]);
    assert_eq!(items(&users_seen).len(), 15, "{users_seen}");
    assert_eq!(strs(&users_seen, "employee_no"), expected);
    assert!(ids(&users_seen).contains(&nj_admin_id));

    // 苏州 and 总行 are out of sight.
    app.get(&format!("{ORGS}/{sz}"), &nj_admin)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{gs}"), &nj_admin)
        .await
        .problem(404, "org_not_found");
    app.get(&format!("{ORGS}/{}", id_of(&by_code["HO"])), &nj_admin)
        .await
        .problem(404, "org_not_found");
    let l3 = app.user_id(&admin, "L0003").await;
    let m13 = app.user_id(&admin, "M0013").await;
    let admin_id = app.user_id(&admin, "admin").await;
    app.get(&format!("{USERS}/{l3}"), &nj_admin)
        .await
        .problem(404, "user_not_found");
    app.get(&format!("{USERS}/{m13}"), &nj_admin)
        .await
        .problem(404, "user_not_found");
    app.get(&format!("{USERS}/{admin_id}"), &nj_admin)
        .await
        .problem(404, "user_not_found");
    let m1 = app.user_id(&admin, "M0001").await;
    app.get(&format!("{USERS}/{m1}"), &nj_admin)
        .await
        .expect(200);

    // Writes outside the subtree fail as if the target did not exist.
    let body = json!({ "parent_id": gs, "code": "SZ-GS-01", "name": "网点", "kind": "outlet" });
    app.post(ORGS, Some(&nj_admin), &body)
        .await
        .field_error(422, "parent_id", "not_found");
    app.patch(
        &format!("{USERS}/{m13}"),
        &nj_admin,
        &json!({ "name": "改名" }),
    )
    .await
    .problem(404, "user_not_found");
    app.patch(
        &format!("{USERS}/{m1}"),
        &nj_admin,
        &json!({ "org_id": gs }),
    )
    .await
    .field_error(422, "org_id", "not_found");
    create_user(&app, &nj_admin, "X0001", "manager", gs, Some("secret123"))
        .await
        .field_error(422, "org_id", "not_found");
    app.patch(
        &format!("{ORGS}/{gs}"),
        &nj_admin,
        &json!({ "name": "改名" }),
    )
    .await
    .problem(404, "org_not_found");

    // ... and inside it they work.
    let outlet = create_outlet(&app, &nj_admin, xw, "NJ-XW-01").await;
    assert!(
        outlet["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("/{xw}/{}/", id_of(&outlet))))
    );
    let u = app
        .patch(
            &format!("{USERS}/{m1}"),
            &nj_admin,
            &json!({ "grade": "senior" }),
        )
        .await
        .expect(200);
    assert_eq!(u.body["grade"], "senior");
    let created = create_user(&app, &nj_admin, "X0002", "manager", xw, Some("secret123"))
        .await
        .expect(201);
    assert_eq!(created.body["user"]["org"]["id"], xw);
    // Nothing leaked into 苏州.
    let m13_now = app.get(&format!("{USERS}/{m13}"), &admin).await.expect(200);
    assert_ne!(m13_now.body["name"], "改名");
    assert_eq!(org(&app, &admin, "SZ-GS").await["name"], "姑苏支行");
}

// ---------------------------------------------------------------------------------------------------------
// 4. Org PATCH: rename, move, and the moves that are refused
// ---------------------------------------------------------------------------------------------------------

async fn org_patch_renames_and_moves_subtrees(app: TestApp) {
    let admin = app.login("admin").await;
    let before = orgs_by_code(&app, &admin).await;
    let (ho, nj, sz) = (
        id_of(&before["HO"]),
        id_of(&before["NJ"]),
        id_of(&before["SZ"]),
    );
    let (gl, xw, gs) = (
        id_of(&before["NJ-GL"]),
        id_of(&before["NJ-XW"]),
        id_of(&before["SZ-GS"]),
    );
    let sz_path = before["SZ"]["path"].as_str().expect("path").to_owned();

    // Rename.
    let r = app
        .patch(
            &format!("{ORGS}/{xw}"),
            &admin,
            &json!({ "name": "玄武门支行" }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["name"], "玄武门支行");
    assert_eq!(r.body["code"], "NJ-XW");
    assert_eq!(r.body["path"], before["NJ-XW"]["path"]);
    assert_eq!(
        app.get(&format!("{ORGS}/{xw}"), &admin)
            .await
            .expect(200)
            .body["name"],
        "玄武门支行"
    );
    // Recode onto a taken code; empty name.
    app.patch(&format!("{ORGS}/{xw}"), &admin, &json!({ "code": "NJ-GL" }))
        .await
        .problem(409, "org_code_taken");
    app.patch(&format!("{ORGS}/{xw}"), &admin, &json!({ "name": "" }))
        .await
        .field_error(422, "name", "required");
    app.patch(
        &format!("{ORGS}/{xw}"),
        &admin,
        &json!({ "kind": "branch" }),
    )
    .await
    .field_error(422, "kind", "unknown_field");
    app.patch(&format!("{ORGS}/999999"), &admin, &json!({ "name": "x" }))
        .await
        .problem(404, "org_not_found");
    let l2 = app.login("L0002").await;
    app.patch(&format!("{ORGS}/{xw}"), &l2, &json!({ "name": "x" }))
        .await
        .problem(403, "forbidden");

    // Move 玄武支行, with an outlet below it, under 苏州分行.
    let outlet = create_outlet(&app, &admin, xw, "NJ-XW-01").await;
    let outlet_id = id_of(&outlet);
    let moved = app
        .patch(&format!("{ORGS}/{xw}"), &admin, &json!({ "parent_id": sz }))
        .await
        .expect(200);
    assert_eq!(moved.body["parent_id"], sz);
    assert_eq!(moved.body["path"], format!("{sz_path}{xw}/"));
    let xw_now = app
        .get(&format!("{ORGS}/{xw}"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(xw_now["parent_id"], sz);
    assert_eq!(xw_now["path"], format!("{sz_path}{xw}/"));
    assert_eq!(xw_now["name"], "玄武门支行");
    let outlet_now = app
        .get(&format!("{ORGS}/{outlet_id}"), &admin)
        .await
        .expect(200)
        .body;
    assert_eq!(outlet_now["path"], format!("{sz_path}{xw}/{outlet_id}/"));
    assert_eq!(
        outlet_now["parent_id"], xw,
        "only the moved org changes parent"
    );
    // Every other org is untouched.
    let after = orgs_by_code(&app, &admin).await;
    for (code, o) in &before {
        if code != "NJ-XW" {
            assert_eq!(after[code]["path"], o["path"], "path of {code}");
            assert_eq!(after[code]["parent_id"], o["parent_id"], "parent of {code}");
        }
    }
    assert_eq!(
        strs(
            &all(&app, &format!("{ORGS}?parent_id={sz}"), &admin).await,
            "code"
        ),
        set(&["NJ-XW", "SZ-GS", "SZ-YQ"])
    );
    assert_eq!(
        strs(
            &all(&app, &format!("{ORGS}?parent_id={nj}"), &admin).await,
            "code"
        ),
        set(&["NJ-GL"])
    );
    // A sibling sub-branch's leader still does not see it; its own leader still does, at the new path.
    let l3 = app.login("L0003").await;
    app.get(&format!("{ORGS}/{xw}"), &l3)
        .await
        .problem(404, "org_not_found");
    let seen = all(&app, ORGS, &l2).await;
    assert_eq!(ids(&seen), vec![xw, outlet_id]);
    assert!(
        items(&seen)
            .iter()
            .all(|o| o["path"].as_str().is_some_and(|p| p.starts_with(&sz_path))),
        "{seen}"
    );
    assert_eq!(items(&all(&app, USERS, &l2).await).len(), 7);

    // Refused moves.
    app.patch(&format!("{ORGS}/{nj}"), &admin, &json!({ "parent_id": gl }))
        .await
        .field_error(422, "parent_id", "cycle");
    app.patch(&format!("{ORGS}/{nj}"), &admin, &json!({ "parent_id": nj }))
        .await
        .field_error(422, "parent_id", "cycle");
    app.patch(&format!("{ORGS}/{ho}"), &admin, &json!({ "parent_id": nj }))
        .await
        .field_error(422, "parent_id", "not_movable");
    app.patch(
        &format!("{ORGS}/{gs}"),
        &admin,
        &json!({ "parent_id": outlet_id }),
    )
    .await
    .field_error(422, "parent_id", "invalid_value");
    app.patch(
        &format!("{ORGS}/{gs}"),
        &admin,
        &json!({ "parent_id": 999_999 }),
    )
    .await
    .field_error(422, "parent_id", "not_found");
    // A branch admin cannot move their own org.
    let (_, nj_admin) = nanjing_admin(&app, &admin).await;
    app.patch(
        &format!("{ORGS}/{nj}"),
        &nj_admin,
        &json!({ "parent_id": gl }),
    )
    .await
    .field_error(422, "parent_id", "not_movable");
    // None of the refused moves changed anything.
    let last = orgs_by_code(&app, &admin).await;
    for (code, o) in &after {
        assert_eq!(last[code]["path"], o["path"], "path of {code}");
        assert_eq!(last[code]["parent_id"], o["parent_id"], "parent of {code}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 5. User reads per role, and the list filters
// ---------------------------------------------------------------------------------------------------------

async fn user_reads_follow_the_callers_scope(app: TestApp) {
    let admin = app.login("admin").await;
    let everyone = all(&app, USERS, &admin).await;
    assert_eq!(items(&everyone).len(), 29, "{everyone}");
    let mut expected: BTreeSet<String> = numbered("M", 1, 24)
        .into_iter()
        .chain(numbered("L", 1, 4))
        .collect();
    expected.insert("admin".to_owned());
    assert_eq!(strs(&everyone, "employee_no"), expected);
    let m1_row = items(&everyone)
        .into_iter()
        .find(|u| u["employee_no"] == "M0001")
        .expect("M0001");
    assert_eq!(m1_row["role"], "manager");
    assert_eq!(m1_row["org"]["name"], "鼓楼支行");
    assert_eq!(m1_row["active"], true);

    let l1 = app.login("L0001").await;
    let seen = all(&app, USERS, &l1).await;
    let mut gulou: BTreeSet<String> = numbered_set("M", 1, 6);
    gulou.insert("L0001".to_owned());
    assert_eq!(strs(&seen, "employee_no"), gulou);

    let m1 = app.login("M0001").await;
    let seen = all(&app, USERS, &m1).await;
    assert_eq!(strs(&seen, "employee_no"), set(&["M0001"]));

    let m1_id = app.user_id(&admin, "M0001").await;
    let m2_id = app.user_id(&admin, "M0002").await;
    let m7_id = app.user_id(&admin, "M0007").await;
    app.get(&format!("{USERS}/{m7_id}"), &l1)
        .await
        .problem(404, "user_not_found");
    assert_eq!(
        app.get(&format!("{USERS}/{m2_id}"), &l1)
            .await
            .expect(200)
            .body["employee_no"],
        "M0002"
    );
    app.get(&format!("{USERS}/{m2_id}"), &m1)
        .await
        .problem(404, "user_not_found");
    assert_eq!(
        app.get(&format!("{USERS}/{m1_id}"), &m1)
            .await
            .expect(200)
            .body["employee_no"],
        "M0001"
    );
    app.get(&format!("{USERS}/999999"), &admin)
        .await
        .problem(404, "user_not_found");

    // Filters.
    let by_role = |role: &str| format!("{USERS}?role={role}");
    assert_eq!(
        strs(&all(&app, &by_role("leader"), &admin).await, "employee_no"),
        numbered_set("L", 1, 4)
    );
    assert_eq!(
        strs(&all(&app, &by_role("admin"), &admin).await, "employee_no"),
        set(&["admin"])
    );
    let managers = all(&app, &by_role("manager"), &admin).await;
    assert_eq!(items(&managers).len(), 24);
    assert!(items(&managers).iter().all(|u| u["role"] == "manager"));
    query_error(app.get(&by_role("boss"), &admin).await, "role", None);

    let by_code = orgs_by_code(&app, &admin).await;
    let (nj, gl, xw) = (
        id_of(&by_code["NJ"]),
        id_of(&by_code["NJ-GL"]),
        id_of(&by_code["NJ-XW"]),
    );
    assert_eq!(
        strs(
            &all(&app, &format!("{USERS}?org_id={gl}"), &admin).await,
            "employee_no"
        ),
        gulou
    );
    assert!(
        items(&all(&app, &format!("{USERS}?org_id={nj}"), &admin).await).is_empty(),
        "only direct members"
    );
    assert!(
        items(&all(&app, &format!("{USERS}?org_id={xw}"), &l1).await).is_empty(),
        "filters stay in scope"
    );
    let gl_managers = all(&app, &format!("{USERS}?org_id={gl}&role=manager"), &admin).await;
    assert_eq!(strs(&gl_managers, "employee_no"), numbered_set("M", 1, 6));

    // q: employee-number or name prefix.
    let q = all(&app, &format!("{USERS}?q=M001"), &admin).await;
    assert_eq!(strs(&q, "employee_no"), numbered_set("M", 10, 19));
    let name = m1_row["name"].as_str().expect("name").to_owned();
    let q = all(&app, &format!("{USERS}?q={}", enc(&name)), &admin).await;
    assert!(ids(&q).contains(&m1_id), "{q}");
    assert!(
        items(&q)
            .iter()
            .all(|u| u["name"].as_str().is_some_and(|n| n.starts_with(&name))),
        "{q}"
    );
    assert!(items(&all(&app, &format!("{USERS}?q=ZZZ"), &admin).await).is_empty());
    assert_eq!(
        strs(
            &all(&app, &format!("{USERS}?q=M001"), &l1).await,
            "employee_no"
        ),
        BTreeSet::new()
    );

    // active.
    assert!(items(&all(&app, &format!("{USERS}?active=false"), &admin).await).is_empty());
    app.patch(
        &format!("{USERS}/{m2_id}"),
        &admin,
        &json!({ "active": false }),
    )
    .await
    .expect(200);
    assert_eq!(
        ids(&all(&app, &format!("{USERS}?active=false"), &admin).await),
        vec![m2_id]
    );
    let active = all(&app, &format!("{USERS}?active=true"), &admin).await;
    assert_eq!(items(&active).len(), 28);
    assert!(!ids(&active).contains(&m2_id));
    query_error(
        app.get(&format!("{USERS}?active=maybe"), &admin).await,
        "active",
        None,
    );
}

// ---------------------------------------------------------------------------------------------------------
// 6. User create
// ---------------------------------------------------------------------------------------------------------

async fn user_create_with_and_without_password(app: TestApp) {
    let admin = app.login("admin").await;
    let gl = org_id(&app, &admin, "NJ-GL").await;

    // Without a password: a temporary one, to be changed.
    let body = json!({
        "employee_no": "N0001", "name": "新员工", "phone": "13800138000", "role": "manager",
        "org_id": gl, "grade": "junior"
    });
    let r = app.post(USERS, Some(&admin), &body).await.expect(201);
    let temporary = r.body["temporary_password"]
        .as_str()
        .expect("temporary_password")
        .to_owned();
    assert_eq!(temporary.chars().count(), 12);
    let user = &r.body["user"];
    assert_eq!(user["must_change_password"], true);
    assert_eq!(user["employee_no"], "N0001");
    assert_eq!(user["name"], "新员工");
    assert_eq!(user["phone"], "13800138000");
    assert_eq!(user["role"], "manager");
    assert_eq!(user["grade"], "junior");
    assert_eq!(user["active"], true);
    assert_eq!(user["org"]["id"], gl);
    assert_eq!(user["org"]["name"], "鼓楼支行");
    let new_id = id_of(user);
    let read = app
        .get(&format!("{USERS}/{new_id}"), &admin)
        .await
        .expect(200);
    assert_eq!(read.body["employee_no"], "N0001");
    let login = app.login_full("N0001", &temporary).await.expect(200);
    assert_eq!(login.body["user"]["id"], new_id);
    assert_eq!(login.body["user"]["must_change_password"], true);
    app.login_full("N0001", "demo1234")
        .await
        .problem(401, "invalid_credentials");

    // With a password: none is generated.
    let r = create_user(&app, &admin, "N0002", "leader", gl, Some("secret123"))
        .await
        .expect(201);
    assert!(r.body["temporary_password"].is_null(), "{}", r.text);
    assert_eq!(r.body["user"]["must_change_password"], false);
    assert_eq!(r.body["user"]["role"], "leader");
    assert!(r.body["user"]["phone"].is_null());
    let login = app.login_full("N0002", "secret123").await.expect(200);
    assert_eq!(login.body["user"]["must_change_password"], false);

    // Employee numbers are unique.
    create_user(&app, &admin, "M0001", "manager", gl, Some("secret123"))
        .await
        .problem(409, "employee_no_taken");
    create_user(&app, &admin, "N0001", "manager", gl, None)
        .await
        .problem(409, "employee_no_taken");

    // Only admins create.
    let l1 = app.login("L0001").await;
    create_user(&app, &l1, "N0003", "manager", gl, Some("secret123"))
        .await
        .problem(403, "forbidden");
    let m1 = app.login("M0001").await;
    create_user(&app, &m1, "N0003", "manager", gl, None)
        .await
        .problem(403, "forbidden");

    // Validation names the field.
    let attempt = |over: Value| {
        let mut b =
            json!({ "employee_no": "N0009", "name": "某人", "role": "manager", "org_id": gl });
        for (k, v) in over.as_object().expect("object") {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "employee_no": "a b" }),
            "employee_no",
            "invalid_format",
        ),
        (
            json!({ "employee_no": "a" }),
            "employee_no",
            "invalid_format",
        ),
        (
            json!({ "employee_no": "客户01" }),
            "employee_no",
            "invalid_format",
        ),
        (json!({ "phone": "123" }), "phone", "invalid_format"),
        (json!({ "role": "boss" }), "role", "invalid_value"),
        (json!({ "password": "short" }), "password", "too_short"),
        (
            json!({ "password": "onlyletters" }),
            "password",
            "weak_password",
        ),
        (json!({ "name": "名".repeat(51) }), "name", "too_long"),
        (json!({ "name": "" }), "name", "required"),
        (json!({ "nickname": "小王" }), "nickname", "unknown_field"),
        (json!({ "org_id": "gl" }), "org_id", "invalid_type"),
        (json!({ "org_id": 999_999 }), "org_id", "not_found"),
    ];
    for (over, field, code) in cases {
        let r = app.post(USERS, Some(&admin), &attempt(over.clone())).await;
        assert_eq!(r.status.as_u16(), 422, "{over}: {}", r.text);
        r.field_error(422, field, code);
    }
    let missing = json!({ "employee_no": "N0009", "name": "某人", "org_id": gl });
    app.post(USERS, Some(&admin), &missing)
        .await
        .field_error(422, "role", "required");
    // A 50-character name is fine.
    let r = app
        .post(
            USERS,
            Some(&admin),
            &attempt(json!({ "name": "名".repeat(50) })),
        )
        .await
        .expect(201);
    assert_eq!(
        r.body["user"]["name"].as_str().map(|s| s.chars().count()),
        Some(50)
    );

    // Only the successful creations were stored.
    assert_eq!(items(&all(&app, USERS, &admin).await).len(), 32);
}

// ---------------------------------------------------------------------------------------------------------
// 7. User PATCH
// ---------------------------------------------------------------------------------------------------------

async fn user_patch_changes_fields_in_scope(app: TestApp) {
    let admin = app.login("admin").await;
    let admin_id = app.user_id(&admin, "admin").await;
    let m1 = app.user_id(&admin, "M0001").await;
    let m2 = app.user_id(&admin, "M0002").await;
    let xw = org_id(&app, &admin, "NJ-XW").await;
    let url = format!("{USERS}/{m1}");
    let original = app.get(&url, &admin).await.expect(200).body;
    assert!(
        original["phone"].is_string(),
        "demo users have phones: {original}"
    );

    let r = app
        .patch(&url, &admin, &json!({ "grade": "senior" }))
        .await
        .expect(200);
    assert_eq!(r.body["grade"], "senior");
    assert_eq!(r.body["phone"], original["phone"], "absent fields stay");
    assert_eq!(r.body["name"], original["name"]);

    let r = app
        .patch(&url, &admin, &json!({ "phone": null }))
        .await
        .expect(200);
    assert!(r.body["phone"].is_null(), "{}", r.text);
    assert_eq!(r.body["grade"], "senior");
    assert!(app.get(&url, &admin).await.expect(200).body["phone"].is_null());

    let r = app
        .patch(
            &url,
            &admin,
            &json!({ "phone": "+8613912345678", "name": "王新" }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["phone"], "13912345678");
    assert_eq!(r.body["name"], "王新");

    let r = app
        .patch(&url, &admin, &json!({ "grade": null }))
        .await
        .expect(200);
    assert!(r.body["grade"].is_null(), "{}", r.text);

    let r = app
        .patch(&url, &admin, &json!({ "role": "leader" }))
        .await
        .expect(200);
    assert_eq!(r.body["role"], "leader");
    assert_eq!(
        app.get(&url, &admin).await.expect(200).body["role"],
        "leader"
    );

    // Move to another org: the old sub-branch's leader loses sight, the new one gains it.
    let r = app
        .patch(&url, &admin, &json!({ "org_id": xw }))
        .await
        .expect(200);
    assert_eq!(r.body["org"]["id"], xw);
    assert_eq!(r.body["org"]["name"], "玄武支行");
    let l1 = app.login("L0001").await;
    let l2 = app.login("L0002").await;
    app.get(&url, &l1).await.problem(404, "user_not_found");
    app.get(&url, &l2).await.expect(200);

    // Only admins change users.
    app.patch(&format!("{USERS}/{m2}"), &l1, &json!({ "grade": "senior" }))
        .await
        .problem(403, "forbidden");
    let m2_token = app.login("M0002").await;
    app.patch(
        &format!("{USERS}/{m2}"),
        &m2_token,
        &json!({ "grade": "senior" }),
    )
    .await
    .problem(403, "forbidden");

    // An admin cannot deactivate or demote themself.
    app.patch(
        &format!("{USERS}/{admin_id}"),
        &admin,
        &json!({ "active": false }),
    )
    .await
    .field_error(422, "active", "cannot_change_self");
    let r = app
        .patch(
            &format!("{USERS}/{admin_id}"),
            &admin,
            &json!({ "role": "manager" }),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    let me = app
        .get(&format!("{USERS}/{admin_id}"), &admin)
        .await
        .expect(200);
    assert_eq!(me.body["active"], true);
    assert_eq!(me.body["role"], "admin");

    // Unknown ids, malformed ids, bad fields.
    app.patch(&format!("{USERS}/999999"), &admin, &json!({ "name": "x" }))
        .await
        .problem(404, "user_not_found");
    let body = app
        .patch(&format!("{USERS}/abc"), &admin, &json!({ "name": "x" }))
        .await
        .problem(400, "invalid_path_parameter");
    assert_eq!(body["errors"][0]["field"], "id");
    app.patch(&format!("{USERS}/0"), &admin, &json!({ "name": "x" }))
        .await
        .problem(400, "invalid_path_parameter");
    app.get(&format!("{USERS}/abc"), &admin)
        .await
        .problem(400, "invalid_path_parameter");
    app.patch(&url, &admin, &json!({ "phone": "123" }))
        .await
        .field_error(422, "phone", "invalid_format");
    app.patch(&url, &admin, &json!({ "org_id": 999_999 }))
        .await
        .field_error(422, "org_id", "not_found");
    app.patch(&url, &admin, &json!({ "role": "boss" }))
        .await
        .field_error(422, "role", "invalid_value");
    app.patch(&url, &admin, &json!({ "employee_no": "Z9" }))
        .await
        .field_error(422, "employee_no", "unknown_field");
    app.patch(&url, &admin, &json!({ "name": "" }))
        .await
        .field_error(422, "name", "required");
    let still = app.get(&url, &admin).await.expect(200).body;
    assert_eq!(still["name"], "王新");
    assert_eq!(still["org"]["id"], xw);

    // Deactivation ends the user's sessions and stops logins.
    let r = app
        .patch(
            &format!("{USERS}/{m2}"),
            &admin,
            &json!({ "active": false }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["active"], false);
    app.get(&format!("{USERS}/{m2}"), &m2_token)
        .await
        .problem(401, "session_ended");
    app.login_full("M0002", "demo1234")
        .await
        .problem(401, "invalid_credentials");
    // ... and reactivation lets them back in.
    app.patch(&format!("{USERS}/{m2}"), &admin, &json!({ "active": true }))
        .await
        .expect(200);
    app.login("M0002").await;
    // ... but the sessions deactivation ended stay ended.
    app.get(&format!("{USERS}/{m2}"), &m2_token)
        .await
        .problem(401, "session_ended");
}

// ---------------------------------------------------------------------------------------------------------
// 8. Paging and query parameters
// ---------------------------------------------------------------------------------------------------------

async fn user_list_pages_with_cursors(app: TestApp) {
    let admin = app.login("admin").await;
    let mut collected = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{USERS}?limit=5&cursor={}", enc(c)),
            None => format!("{USERS}?limit=5"),
        };
        let r = app.get(&path, &admin).await.expect(200);
        let page = ids(&r.body);
        assert!(page.len() <= 5, "{}", r.text);
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        collected.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(ids(&r.body).len(), 5, "only the last page may be short");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(collected.len(), 29);
    assert!(
        collected.windows(2).all(|w| w[0] < w[1]),
        "ascending and distinct: {collected:?}"
    );
    assert_eq!(collected, ids(&all(&app, USERS, &admin).await));

    // Filters and paging combine.
    let r = app
        .get(&format!("{USERS}?role=manager&limit=20"), &admin)
        .await
        .expect(200);
    assert_eq!(ids(&r.body).len(), 20);
    let c = r.body["next_cursor"]
        .as_str()
        .expect("next cursor")
        .to_owned();
    let r = app
        .get(
            &format!("{USERS}?role=manager&limit=20&cursor={}", enc(&c)),
            &admin,
        )
        .await
        .expect(200);
    assert_eq!(ids(&r.body).len(), 4);
    assert!(r.body["next_cursor"].is_null());

    // Orgs page the same way.
    let r = app
        .get(&format!("{ORGS}?limit=4"), &admin)
        .await
        .expect(200);
    let mut org_ids = ids(&r.body);
    let c = r.body["next_cursor"]
        .as_str()
        .expect("next cursor")
        .to_owned();
    let r = app
        .get(&format!("{ORGS}?limit=4&cursor={}", enc(&c)), &admin)
        .await
        .expect(200);
    assert!(r.body["next_cursor"].is_null());
    org_ids.extend(ids(&r.body));
    assert_eq!(org_ids, ids(&all(&app, ORGS, &admin).await));

    // Bad parameters.
    query_error(
        app.get(&format!("{USERS}?limit=0"), &admin).await,
        "limit",
        Some("out_of_range"),
    );
    query_error(
        app.get(&format!("{USERS}?limit=201"), &admin).await,
        "limit",
        Some("out_of_range"),
    );
    query_error(
        app.get(&format!("{USERS}?limit=-1"), &admin).await,
        "limit",
        Some("out_of_range"),
    );
    query_error(
        app.get(&format!("{USERS}?limit=abc"), &admin).await,
        "limit",
        None,
    );
    query_error(
        app.get(&format!("{USERS}?cursor=junk"), &admin).await,
        "cursor",
        Some("invalid_format"),
    );
    query_error(
        app.get(&format!("{USERS}?sort=name"), &admin).await,
        "sort",
        Some("unknown_field"),
    );
    query_error(
        app.get(&format!("{ORGS}?limit=0"), &admin).await,
        "limit",
        Some("out_of_range"),
    );
    query_error(
        app.get(&format!("{ORGS}?cursor=junk"), &admin).await,
        "cursor",
        Some("invalid_format"),
    );
    query_error(
        app.get(&format!("{ORGS}?parent_id=abc"), &admin).await,
        "parent_id",
        None,
    );
    query_error(
        app.get(&format!("{ORGS}?kind=branch"), &admin).await,
        "kind",
        Some("unknown_field"),
    );
    query_error(
        app.get(&format!("{AUDIT}?limit=201"), &admin).await,
        "limit",
        Some("out_of_range"),
    );
    app.get(&format!("{USERS}?limit=200"), &admin)
        .await
        .expect(200);
    app.get(&format!("{USERS}?limit=1"), &admin)
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------------------------
// 9. Audit events
// ---------------------------------------------------------------------------------------------------------

async fn audit_records_writes_and_logins(app: TestApp) {
    let admin = app.login("admin").await;
    let admin_id = app.user_id(&admin, "admin").await;
    let by_code = orgs_by_code(&app, &admin).await;
    let (gl, gs) = (id_of(&by_code["NJ-GL"]), id_of(&by_code["SZ-GS"]));
    let gl_path = by_code["NJ-GL"]["path"].as_str().expect("path").to_owned();

    let created = create_user(&app, &admin, "N0001", "manager", gl, Some("secret123"))
        .await
        .expect(201);
    let rid = request_id(&created);
    let new_id = id_of(&created.body["user"]);

    let events = all(&app, AUDIT, &admin).await;
    let list = items(&events);
    let event_ids: Vec<i64> = list.iter().map(id_of).collect();
    assert!(
        event_ids.windows(2).all(|w| w[0] > w[1]),
        "newest first: {event_ids:?}"
    );
    let newest = &list[0];
    assert_eq!(newest["action"], "user.create", "{events}");
    assert_eq!(newest["entity"], "user");
    assert_eq!(newest["entity_id"], new_id.to_string());
    assert_eq!(newest["actor_id"], admin_id);
    assert_eq!(newest["request_id"], rid.as_str());
    assert_eq!(newest["org_path"], gl_path.as_str());
    assert!(
        newest["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{newest}"
    );
    // The admin's own login is there too.
    assert!(
        list.iter()
            .any(|e| e["action"] == "auth.login" && e["actor_id"] == admin_id),
        "{events}"
    );

    // Filters.
    let users_only = all(&app, &format!("{AUDIT}?entity=user"), &admin).await;
    assert!(
        items(&users_only).iter().all(|e| e["entity"] == "user"),
        "{users_only}"
    );
    assert_eq!(items(&users_only)[0]["entity_id"], new_id.to_string());
    let sessions_only = all(&app, &format!("{AUDIT}?entity=session"), &admin).await;
    assert!(!items(&sessions_only).is_empty());
    assert!(
        items(&sessions_only)
            .iter()
            .all(|e| e["entity"] == "session"),
        "{sessions_only}"
    );
    let by_admin = all(&app, &format!("{AUDIT}?actor_id={admin_id}"), &admin).await;
    assert!(
        items(&by_admin).iter().all(|e| e["actor_id"] == admin_id),
        "{by_admin}"
    );
    assert!(ids(&by_admin).contains(&id_of(newest)));
    let m5 = app.user_id(&admin, "M0005").await;
    assert!(items(&all(&app, &format!("{AUDIT}?actor_id={m5}"), &admin).await).is_empty());
    let future = enc("2999-01-01T00:00:00Z");
    assert!(items(&all(&app, &format!("{AUDIT}?from={future}"), &admin).await).is_empty());
    let past = enc("2000-01-01T00:00:00+08:00");
    let since_past = all(&app, &format!("{AUDIT}?from={past}"), &admin).await;
    assert_eq!(ids(&since_past), event_ids);
    assert!(items(&all(&app, &format!("{AUDIT}?to={past}"), &admin).await).is_empty());
    assert_eq!(
        ids(&all(&app, &format!("{AUDIT}?to={future}&entity=user"), &admin).await),
        ids(&users_only)
    );
    query_error(
        app.get(&format!("{AUDIT}?from=yesterday"), &admin).await,
        "from",
        None,
    );
    // Paging goes from newest to oldest without gaps.
    let mut paged = Vec::new();
    let mut path = format!("{AUDIT}?limit=1");
    loop {
        let r = app.get(&path, &admin).await.expect(200);
        paged.extend(ids(&r.body));
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("{AUDIT}?limit=1&cursor={}", enc(c)),
            None => break,
        }
        assert!(paged.len() <= event_ids.len(), "paging does not end");
    }
    assert_eq!(paged, event_ids);

    // A failed write leaves no event.
    let before = audit_count(&app, &admin).await;
    create_user(&app, &admin, "N0001", "manager", gl, Some("secret123"))
        .await
        .problem(409, "employee_no_taken");
    create_user(&app, &admin, "N0002", "manager", 999_999, None)
        .await
        .field_error(422, "org_id", "not_found");
    let dup = json!({ "parent_id": gl, "code": "NJ-GL", "name": "网点", "kind": "outlet" });
    app.post(ORGS, Some(&admin), &dup)
        .await
        .problem(409, "org_code_taken");
    assert_eq!(audit_count(&app, &admin).await, before);

    // Successful org and user changes are recorded with what changed (names only).
    app.patch(
        &format!("{USERS}/{new_id}"),
        &admin,
        &json!({ "phone": "13800138000", "grade": "senior" }),
    )
    .await
    .expect(200);
    let newest = items(&all(&app, AUDIT, &admin).await).remove(0);
    assert_eq!(newest["action"], "user.update");
    assert_eq!(newest["entity_id"], new_id.to_string());
    assert!(
        !newest["detail"].to_string().contains("13800138000"),
        "no phone numbers in the audit log: {newest}"
    );
    let outlet = create_outlet(&app, &admin, gl, "NJ-GL-01").await;
    let newest = items(&all(&app, AUDIT, &admin).await).remove(0);
    assert_eq!(newest["action"], "org.create");
    assert_eq!(newest["entity"], "org");
    assert_eq!(newest["entity_id"], id_of(&outlet).to_string());
    assert_eq!(newest["org_path"], outlet["path"]);

    // Only admins read the log.
    let l1 = app.login("L0001").await;
    app.get(AUDIT, &l1).await.problem(403, "forbidden");
    let m1 = app.login("M0001").await;
    app.get(AUDIT, &m1).await.problem(403, "forbidden");

    // Logins are recorded, under the user's org and the login's request id.
    let login = app.login_full("L0002", "demo1234").await.expect(200);
    let l2 = id_of(&login.body["user"]);
    let xw_path = by_code["NJ-XW"]["path"].as_str().expect("path").to_owned();
    let sessions = all(
        &app,
        &format!("{AUDIT}?entity=session&actor_id={l2}"),
        &admin,
    )
    .await;
    let ev = items(&sessions).into_iter().next().expect("a login event");
    assert_eq!(ev["action"], "auth.login");
    assert_eq!(ev["entity"], "session");
    assert_eq!(ev["actor_id"], l2);
    assert_eq!(ev["org_path"], xw_path.as_str());
    assert_eq!(ev["request_id"], request_id(&login).as_str());

    // A branch admin sees events in their subtree only.
    let (_, nj_admin) = nanjing_admin(&app, &admin).await;
    let in_suzhou = create_user(&app, &admin, "S0001", "manager", gs, Some("secret123"))
        .await
        .expect(201);
    let sz_user = id_of(&in_suzhou.body["user"]).to_string();
    let in_gulou = create_user(&app, &admin, "G0001", "manager", gl, Some("secret123"))
        .await
        .expect(201);
    let gl_user = id_of(&in_gulou.body["user"]).to_string();
    // It is there for the head office.
    let head_view = all(&app, &format!("{AUDIT}?entity=user"), &admin).await;
    assert!(
        items(&head_view)
            .iter()
            .any(|e| e["entity_id"] == sz_user.as_str())
    );
    let nj_view = all(&app, AUDIT, &nj_admin).await;
    let nj_path = by_code["NJ"]["path"].as_str().expect("path").to_owned();
    assert!(
        !items(&nj_view)
            .iter()
            .any(|e| e["entity_id"] == sz_user.as_str()),
        "{nj_view}"
    );
    assert!(
        items(&nj_view)
            .iter()
            .any(|e| e["entity_id"] == gl_user.as_str()),
        "{nj_view}"
    );
    assert!(
        items(&nj_view).iter().all(|e| e["org_path"]
            .as_str()
            .is_some_and(|p| p.starts_with(&nj_path))),
        "{nj_view}"
    );
    assert!(
        !items(&nj_view)
            .iter()
            .any(|e| e["actor_id"] == admin_id && e["action"] == "auth.login")
    );
}

// ---------------------------------------------------------------------------------------------------------
// Search by employee number
// ---------------------------------------------------------------------------------------------------------

/// `q` is documented as a name or employee-number prefix, and employee numbers may contain `_`: searching for
/// one must find it (and `_` or `%` must not act as wildcards).
async fn user_search_treats_underscore_literally(app: TestApp) {
    let admin = app.login("admin").await;
    let gl = org_id(&app, &admin, "NJ-GL").await;
    create_user(&app, &admin, "X_01", "manager", gl, Some("secret123"))
        .await
        .expect(201);
    create_user(&app, &admin, "X101", "manager", gl, Some("secret123"))
        .await
        .expect(201);
    create_user(&app, &admin, "X01", "manager", gl, Some("secret123"))
        .await
        .expect(201);
    let found = all(&app, &format!("{USERS}?q=X_01"), &admin).await;
    assert_eq!(strs(&found, "employee_no"), set(&["X_01"]), "q=X_01");
    let found = all(&app, &format!("{USERS}?q=X_"), &admin).await;
    assert_eq!(strs(&found, "employee_no"), set(&["X_01"]), "q=X_");
    let found = all(&app, &format!("{USERS}?q={}", enc("X%")), &admin).await;
    assert!(items(&found).is_empty(), "q=X% is no wildcard: {found}");
}

// ---------------------------------------------------------------------------------------------------------
// 9. The user list never shows a stale row (its rows are kept rendered between requests)
// ---------------------------------------------------------------------------------------------------------

/// The one item of `USERS` with this employee number, as `token` lists it (all pages in one).
async fn listed(app: &TestApp, token: &str, employee_no: &str) -> Value {
    let body = all(app, USERS, token).await;
    items(&body)
        .iter()
        .find(|u| u["employee_no"] == employee_no)
        .cloned()
        .unwrap_or_else(|| panic!("{employee_no} not listed: {body}"))
}

async fn user_list_shows_every_change_at_once(app: TestApp) {
    let admin = app.login("admin").await;
    let l2 = app.login("L0002").await;
    let orgs = orgs_by_code(&app, &admin).await;
    let (xw, sz) = (id_of(&orgs["NJ-XW"]), id_of(&orgs["SZ"]));
    let sz_path = orgs["SZ"]["path"].as_str().expect("path").to_owned();
    // Both lists read (and keep) every row first.
    let m7 = listed(&app, &admin, "M0007").await;
    assert_eq!(listed(&app, &l2, "M0007").await, m7);
    assert_eq!(m7["org"]["name"], "玄武支行");
    let m7_id = id_of(&m7);

    // The user's own row changes.
    app.patch(
        &format!("{USERS}/{m7_id}"),
        &admin,
        &json!({ "name": "王小明", "grade": "senior" }),
    )
    .await
    .expect(200);
    for token in [&admin, &l2] {
        let now = listed(&app, token, "M0007").await;
        assert_eq!(now["name"], "王小明");
        assert_eq!(now["grade"], "senior");
        assert_ne!(now["updated_at"], m7["updated_at"]);
    }
    // A password reset shows as a pending change; deactivation as inactive.
    app.req(
        Method::POST,
        &format!("{USERS}/{m7_id}/reset-password"),
        Some(&admin),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        listed(&app, &l2, "M0007").await["must_change_password"],
        true
    );
    let m8_id = id_of(&listed(&app, &admin, "M0008").await);
    app.patch(
        &format!("{USERS}/{m8_id}"),
        &admin,
        &json!({ "active": false }),
    )
    .await
    .expect(200);
    assert_eq!(listed(&app, &l2, "M0008").await["active"], false);

    // Their org is renamed: every member's row shows the new name.
    app.patch(
        &format!("{ORGS}/{xw}"),
        &admin,
        &json!({ "name": "玄武门支行" }),
    )
    .await
    .expect(200);
    let members = all(&app, &format!("{USERS}?org_id={xw}"), &admin).await;
    assert_eq!(items(&members).len(), 7);
    for token in [&admin, &l2] {
        let body = all(&app, USERS, token).await;
        for u in items(&body).iter().filter(|u| u["org"]["id"] == xw) {
            assert_eq!(u["org"]["name"], "玄武门支行", "{u}");
        }
    }
    // Their org moves under 苏州分行: the rows show the new path; an outlet below moves with it.
    let outlet = id_of(&create_outlet(&app, &admin, xw, "NJ-XW-09").await);
    let teller = create_user(&app, &admin, "T9001", "manager", outlet, None)
        .await
        .expect(201)
        .body;
    assert_eq!(
        listed(&app, &admin, "T9001").await["org"]["path"],
        orgs["NJ-XW"]["path"]
            .as_str()
            .map(|p| format!("{p}{outlet}/"))
            .expect("path")
    );
    app.patch(&format!("{ORGS}/{xw}"), &admin, &json!({ "parent_id": sz }))
        .await
        .expect(200);
    let m7_now = listed(&app, &admin, "M0007").await;
    assert_eq!(m7_now["org"]["path"], format!("{sz_path}{xw}/"));
    assert_eq!(m7_now["name"], "王小明");
    assert_eq!(
        listed(&app, &l2, "T9001").await["org"]["path"],
        format!("{sz_path}{xw}/{outlet}/"),
        "{teller}"
    );
    // The Nanjing branch's view loses them.
    let (_, nj_admin) = nanjing_admin(&app, &admin).await;
    let nj_view = all(&app, USERS, &nj_admin).await;
    assert!(
        items(&nj_view).iter().all(|u| u["org"]["id"] != xw),
        "{nj_view}"
    );
}

backend_tests!(
    org_reads_follow_the_callers_scope,
    org_create_checks_role_kind_and_fields,
    branch_admin_sees_and_writes_only_its_subtree,
    org_patch_renames_and_moves_subtrees,
    user_reads_follow_the_callers_scope,
    user_create_with_and_without_password,
    user_patch_changes_fields_in_scope,
    user_list_pages_with_cursors,
    audit_records_writes_and_logins,
    user_search_treats_underscore_literally,
    user_list_shows_every_change_at_once,
);
