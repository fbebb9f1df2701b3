//! Tasks (`/tasks`) and notices (`/notices`): who may assign to whom (a leader within the subtree, a
//! manager only to themself), who sees a task (creator, assignees and the leaders and admins above its org; anyone else 404), completion per
//! assignee, the done / cancel transitions, the urgent `task_assigned` notification (once per assignee,
//! PII-free, with a push outbox row per enabled device), validation of every field, idempotent replays,
//! due-time edits replacing pending due reminders; notices published to an org subtree, their recipients,
//! read receipts and who may see them.
//!
//! Demo tree: 鼓楼 NJ-GL (L0001, M0001–M0006) and 玄武 NJ-XW (L0002, M0007–M0012) under 南京分行 NJ; 姑苏
//! SZ-GS (L0003, M0013–M0018) and 园区 SZ-YQ (L0004, M0019–M0024) under 苏州分行 SZ; `admin` at 总行 HO.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use diesel::prelude::*;
use fieldwork::db::schema::{
    notice_recipients, notices, notifications, orgs, push_outbox, reminders, task_assignees, tasks,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, Who, id_of, ids, items, seed_customer};
use crate::inbox::{no_quiet_hours, with_db};

const TASKS: &str = "/api/v1/tasks";
const NOTICES: &str = "/api/v1/notices";
const INBOX: &str = "/api/v1/notifications";

/// An RFC 3339 instant `d` from now, to the second.
fn in_(d: Duration) -> String {
    (Utc::now() + d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn task_path(id: i64, tail: &str) -> String {
    if tail.is_empty() {
        format!("{TASKS}/{id}")
    } else {
        format!("{TASKS}/{id}/{tail}")
    }
}

async fn create_task(app: &TestApp, token: &str, body: &Value) -> Value {
    app.post(TASKS, Some(token), body).await.expect(201).body
}

/// The assignee entry of `user` in a task answer.
fn part(task: &Value, user: i64) -> Value {
    task["assignees"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["user_id"] == user))
        .cloned()
        .unwrap_or_else(|| panic!("no assignee {user} in {task}"))
}

fn assignee_ids(task: &Value) -> Vec<i64> {
    task["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user_id"].as_i64().unwrap())
        .collect()
}

/// A stored notification: (title, body, link type, link id, urgent).
type Note = (String, String, Option<String>, Option<i64>, bool);

/// The notifications of `kind` a user has, whatever their delivery time.
async fn notes(app: &TestApp, user: i64, kind: &'static str) -> Vec<Note> {
    with_db(app, move |c| {
        notifications::table
            .filter(notifications::user_id.eq(user))
            .filter(notifications::kind.eq(kind))
            .order(notifications::id.asc())
            .select((
                notifications::title,
                notifications::body,
                notifications::link_type,
                notifications::link_id,
                notifications::urgent,
            ))
            .load(c)
            .unwrap()
    })
    .await
}

/// Push outbox rows of a user's notifications of `kind`.
async fn outbox_rows(app: &TestApp, user: i64, kind: &'static str) -> i64 {
    with_db(app, move |c| {
        push_outbox::table
            .inner_join(notifications::table)
            .filter(notifications::user_id.eq(user))
            .filter(notifications::kind.eq(kind))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await
}

async fn count_tasks(app: &TestApp) -> (i64, i64) {
    with_db(app, |c| {
        let t = tasks::table.count().get_result(c).unwrap();
        let a = task_assignees::table.count().get_result(c).unwrap();
        (t, a)
    })
    .await
}

async fn count_notices(app: &TestApp) -> (i64, i64) {
    with_db(app, |c| {
        let n = notices::table.count().get_result(c).unwrap();
        let r = notice_recipients::table.count().get_result(c).unwrap();
        (n, r)
    })
    .await
}

async fn count_notes(app: &TestApp) -> i64 {
    with_db(app, |c| notifications::table.count().get_result(c).unwrap()).await
}

async fn org_id(app: &TestApp, code: &'static str) -> i64 {
    with_db(app, move |c| {
        orgs::table
            .filter(orgs::code.eq(code))
            .select(orgs::id)
            .first(c)
            .unwrap()
    })
    .await
}

async fn register_device(app: &TestApp, token: &str, push_token: &str) {
    app.post(
        "/api/v1/me/devices",
        Some(token),
        &json!({"provider": "fcm", "token": push_token, "platform": "android"}),
    )
    .await
    .expect(201);
}

async fn deactivate(app: &TestApp, admin: &str, user: i64) {
    app.patch(
        &format!("/api/v1/users/{user}"),
        admin,
        &json!({"active": false}),
    )
    .await
    .expect(200);
}

/// Quiet hours from an hour ago to two hours ahead (local time): whatever time the test runs, now is
/// inside them.
async fn quiet_now(app: &TestApp, token: &str) {
    let local = Utc::now() + Duration::hours(8);
    let hm = |t: DateTime<Utc>| t.format("%H:%M").to_string();
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(token),
        Some(&json!({
            "quiet_start": hm(local - Duration::hours(1)),
            "quiet_end": hm(local + Duration::hours(2)),
        })),
    )
    .await
    .expect(200);
}

/// (created at, deliver at) of a user's notifications of `kind`.
async fn delivery(
    app: &TestApp,
    user: i64,
    kind: &'static str,
) -> Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> {
    with_db(app, move |c| {
        notifications::table
            .filter(notifications::user_id.eq(user))
            .filter(notifications::kind.eq(kind))
            .select((notifications::created_at, notifications::deliver_at))
            .load(c)
            .unwrap()
    })
    .await
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

/// Asserts a 422 naming `field` with `code` (the case is printed on failure).
#[track_caller]
fn expect_field(r: Resp, field: &str, code: &str, case: &str) {
    assert_eq!(r.status.as_u16(), 422, "{case}: {}", r.text);
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
// Tasks: assignment and notification
// ---------------------------------------------------------------------------------------------------------

async fn a_leader_assigns_to_managers_of_the_subtree_and_each_is_notified_once(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002", "M0003", "M0004"]).await;
    // M0001 has one phone, M0002 two, M0003 none; M0002 asked for English.
    register_device(&app, w.t("M0001"), "m1-phone").await;
    register_device(&app, w.t("M0002"), "m2-phone").await;
    register_device(&app, w.t("M0002"), "m2-tablet").await;
    // M0003 is in quiet hours right now: an assigned task is urgent and comes through all the same.
    quiet_now(&app, w.t("M0003")).await;
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(w.t("M0002")),
        Some(&json!({"language": "en"})),
    )
    .await
    .expect(200);
    let customer = seed_customer(&app, "M0001", "张三丰", None).await;
    let due = in_(Duration::days(2));
    let body = json!({
        "title": "回访张三丰的理财到期",
        "description": "带上新产品资料\n第二行",
        "due_at": due,
        "priority": "high",
        "customer_id": customer,
        "assignee_ids": [w.id("M0003"), w.id("M0001"), w.id("M0002"), w.id("M0001")],
    });
    let t = create_task(&app, w.t("L0001"), &body).await;
    let id = id_of(&t);
    assert_eq!(t["title"], "回访张三丰的理财到期");
    assert_eq!(t["description"], "带上新产品资料\n第二行");
    assert_eq!(
        t["due_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        due.parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(t["priority"], "high");
    assert_eq!(t["customer_id"], customer);
    assert_eq!(t["created_by"], w.id("L0001"));
    assert_eq!(t["status"], "open");
    assert_eq!(t["done_count"], 0);
    assert_eq!(t["assignee_count"], 3, "the duplicate counts once: {t}");
    let mut expected = vec![w.id("M0001"), w.id("M0002"), w.id("M0003")];
    expected.sort_unstable();
    assert_eq!(assignee_ids(&t), expected);
    for a in t["assignees"].as_array().unwrap() {
        assert_eq!(a["status"], "open");
        assert_eq!(a["done_at"], Value::Null);
        assert!(!a["name"].as_str().unwrap().is_empty());
    }
    // The org of the task is the creator's.
    assert_eq!(t["org_id"], org_id(&app, "NJ-GL").await);

    // Each assignee has it in the inbox exactly once, at once (urgent: through the default quiet hours),
    // with a generic text and a deep link.
    for (u, lang_en) in [("M0001", false), ("M0002", true), ("M0003", false)] {
        let inbox = app.get(INBOX, w.t(u)).await.expect(200);
        let mine: Vec<Value> = items(&inbox.body)
            .into_iter()
            .filter(|n| n["kind"] == "task_assigned")
            .collect();
        assert_eq!(mine.len(), 1, "{u}: {}", inbox.text);
        let n = &mine[0];
        assert_eq!(n["link"], json!({"type": "task", "id": id}), "{u}");
        assert_eq!(n["read_at"], Value::Null);
        let text = format!("{} {}", n["title"], n["body"]);
        assert!(!text.contains("张三丰"), "no customer name in {text}");
        assert!(!text.contains("理财"), "no task title in {text}");
        if lang_en {
            assert_eq!(n["title"], "New task");
        } else {
            assert_eq!(n["title"], "新待办");
        }
        let stored = notes(&app, w.id(u), "task_assigned").await;
        assert_eq!(stored.len(), 1, "{u}: {stored:?}");
        assert!(stored[0].4, "task_assigned is urgent");
        let unread = app
            .get(&format!("{INBOX}/unread-count"), w.t(u))
            .await
            .expect(200);
        assert_eq!(unread.body["unread"], 1, "{u}");
    }
    for u in ["M0001", "M0002", "M0003"] {
        let d = delivery(&app, w.id(u), "task_assigned").await;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1, d[0].0, "{u}: delivered at once, quiet hours or not");
    }
    // One push per enabled device: M0001 one, M0002 two, M0003 none.
    assert_eq!(outbox_rows(&app, w.id("M0001"), "task_assigned").await, 1);
    assert_eq!(outbox_rows(&app, w.id("M0002"), "task_assigned").await, 2);
    assert_eq!(outbox_rows(&app, w.id("M0003"), "task_assigned").await, 0);
    // Neither the creator nor a colleague who is not assigned hears of it.
    assert!(notes(&app, w.id("L0001"), "task_assigned").await.is_empty());
    assert!(notes(&app, w.id("M0004"), "task_assigned").await.is_empty());
    // Reading the task again, or listing, notifies nobody anew.
    app.get(&task_path(id, ""), w.t("M0001")).await.expect(200);
    app.get(TASKS, w.t("L0001")).await.expect(200);
    assert_eq!(notes(&app, w.id("M0001"), "task_assigned").await.len(), 1);
}

async fn managers_set_tasks_for_themselves_only(app: TestApp) {
    let w = Who::login(&app, &["M0001", "M0002"]).await;
    let (m1, m2) = (w.id("M0001"), w.id("M0002"));
    let before = count_tasks(&app).await;
    for (assignees, case) in [
        (json!([m2]), "someone else"),
        (json!([m1, m2]), "self and someone else"),
        (json!([w.id("admin")]), "the admin"),
    ] {
        expect_field(
            app.post(
                TASKS,
                Some(w.t("M0001")),
                &json!({"title": "x", "assignee_ids": assignees}),
            )
            .await,
            "assignee_ids",
            "not_allowed",
            case,
        );
    }
    assert_eq!(count_tasks(&app).await, before, "nothing was created");
    assert!(notes(&app, m2, "task_assigned").await.is_empty());

    // Without assignees, or naming themself (twice), a manager's task is theirs.
    let own = create_task(&app, w.t("M0001"), &json!({"title": "整理客户名单"})).await;
    assert_eq!(own["created_by"], m1);
    assert_eq!(assignee_ids(&own), vec![m1]);
    assert_eq!(own["priority"], "normal");
    assert_eq!(own["description"], Value::Null);
    assert_eq!(own["due_at"], Value::Null);
    assert_eq!(own["customer_id"], Value::Null);
    let named = create_task(
        &app,
        w.t("M0001"),
        &json!({"title": "b", "assignee_ids": [m1, m1], "priority": "low"}),
    )
    .await;
    assert_eq!(assignee_ids(&named), vec![m1]);
    assert_eq!(named["priority"], "low");
    // No notification to oneself.
    assert!(notes(&app, m1, "task_assigned").await.is_empty());
    // A manager's own customer may be the subject; a colleague's may not.
    let mine = seed_customer(&app, "M0001", "甲", None).await;
    let theirs = seed_customer(&app, "M0002", "乙", None).await;
    let t = create_task(
        &app,
        w.t("M0001"),
        &json!({"title": "c", "customer_id": mine}),
    )
    .await;
    assert_eq!(t["customer_id"], mine);
    expect_field(
        app.post(
            TASKS,
            Some(w.t("M0001")),
            &json!({"title": "c", "customer_id": theirs}),
        )
        .await,
        "customer_id",
        "not_found",
        "a colleague's customer",
    );
    // A manager completes their own task at once.
    let done = app
        .post(
            &task_path(id_of(&own), "done"),
            Some(w.t("M0001")),
            &json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(done["status"], "done");
    assert_eq!(done["done_count"], 1);
    // And may cancel another of their own.
    let c = app
        .post(
            &task_path(id_of(&named), "cancel"),
            Some(w.t("M0001")),
            &json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(c["status"], "cancelled");
}

async fn assignees_and_customers_must_be_in_the_leaders_subtree(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0002", "M0001", "M0006", "M0007", "M0013"],
    )
    .await;
    let l1 = w.t("L0001");
    let before = count_tasks(&app).await;
    let notes_before = count_notes(&app).await;
    let cases = [
        (
            json!([w.id("M0007")]),
            "not_found",
            "a manager of a sibling sub-branch",
        ),
        (
            json!([w.id("M0001"), w.id("M0013")]),
            "not_found",
            "one of them in another branch",
        ),
        (
            json!([w.id("L0002")]),
            "not_found",
            "another sub-branch's leader",
        ),
        (json!([w.id("admin")]), "not_found", "the admin above"),
        (json!([9_999_999]), "not_found", "no such user"),
        (json!([-1]), "not_found", "a negative id"),
        (json!([]), "required", "nobody"),
        (
            json!((1..=201).collect::<Vec<i64>>()),
            "too_many",
            "201 assignees",
        ),
    ];
    for (assignees, code, case) in cases {
        expect_field(
            app.post(
                TASKS,
                Some(l1),
                &json!({"title": "x", "assignee_ids": assignees}),
            )
            .await,
            "assignee_ids",
            code,
            case,
        );
    }
    // A deactivated manager can no longer be assigned.
    deactivate(&app, w.t("admin"), w.id("M0006")).await;
    expect_field(
        app.post(
            TASKS,
            Some(l1),
            &json!({"title": "x", "assignee_ids": [w.id("M0006")]}),
        )
        .await,
        "assignee_ids",
        "not_found",
        "a deactivated manager",
    );
    // The customer must be one the leader sees.
    let other = seed_customer(&app, "M0007", "外支行客户", None).await;
    for (customer, case) in [
        (json!(other), "a customer of another sub-branch"),
        (json!(9_999_999), "no such customer"),
    ] {
        expect_field(
            app.post(
                TASKS,
                Some(l1),
                &json!({"title": "x", "assignee_ids": [w.id("M0001")], "customer_id": customer}),
            )
            .await,
            "customer_id",
            "not_found",
            case,
        );
    }
    assert_eq!(count_tasks(&app).await, before, "nothing was created");
    assert_eq!(count_notes(&app).await, notes_before, "nobody was notified");

    // The leader may take a task themself, and a leader's subject may be any customer of the subtree.
    let own_customer = seed_customer(&app, "M0001", "本支行客户", None).await;
    let t = create_task(
        &app,
        l1,
        &json!({"title": "自己的", "customer_id": own_customer}),
    )
    .await;
    assert_eq!(assignee_ids(&t), vec![w.id("L0001")]);
    // The admin assigns anywhere in the bank: a leader and a manager of another branch.
    let t = create_task(
        &app,
        w.t("admin"),
        &json!({"title": "全行", "assignee_ids": [w.id("L0002"), w.id("M0013")], "customer_id": other}),
    )
    .await;
    assert_eq!(t["assignee_count"], 2);
    assert_eq!(notes(&app, w.id("L0002"), "task_assigned").await.len(), 1);
    assert_eq!(notes(&app, w.id("M0013"), "task_assigned").await.len(), 1);
}

// ---------------------------------------------------------------------------------------------------------
// Tasks: visibility, completion, transitions
// ---------------------------------------------------------------------------------------------------------

async fn a_task_is_seen_by_its_creator_assignees_and_leaders_above(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0002", "L0003", "M0001", "M0002", "M0003"],
    )
    .await;
    let t = create_task(
        &app,
        w.t("L0001"),
        &json!({"title": "走访", "assignee_ids": [w.id("M0001"), w.id("M0002")]}),
    )
    .await;
    let id = id_of(&t);
    let own = create_task(&app, w.t("M0003"), &json!({"title": "私事"})).await;
    let own_id = id_of(&own);
    // An assignee sees their own part only.
    let seen = app
        .get(&task_path(id, ""), w.t("M0001"))
        .await
        .expect(200)
        .body;
    assert_eq!(assignee_ids(&seen), vec![w.id("M0001")]);
    assert_eq!(seen["assignee_count"], 1);
    // The creator sees everyone.
    let seen = app
        .get(&task_path(id, ""), w.t("L0001"))
        .await
        .expect(200)
        .body;
    assert_eq!(seen["assignee_count"], 2);
    // Leaders and admins above the task's org oversee it: they see it with every part, but it is not
    // theirs to edit, cancel or finish (403).
    for (u, tid, parts) in [("admin", id, 2), ("L0001", own_id, 1), ("admin", own_id, 1)] {
        let tok = w.t(u);
        let seen = app.get(&task_path(tid, ""), tok).await.expect(200).body;
        assert_eq!(seen["assignee_count"], parts, "{u} sees {tid}");
        app.patch(&task_path(tid, ""), tok, &json!({"title": "改"}))
            .await
            .problem(403, "forbidden");
        for action in ["done", "cancel"] {
            app.post(&task_path(tid, action), Some(tok), &json!({}))
                .await
                .problem(403, "forbidden");
        }
        let list = app.get(TASKS, tok).await.expect(200);
        assert!(ids(&list.body).contains(&tid), "{u} lists {tid}");
    }
    // Anyone else: 404 on every route, as if it did not exist.
    for (u, tid) in [
        ("M0003", id),
        ("L0002", id),
        ("L0003", id),
        ("M0001", own_id),
        ("L0002", own_id),
    ] {
        let tok = w.t(u);
        app.get(&task_path(tid, ""), tok)
            .await
            .problem(404, "task_not_found");
        app.patch(&task_path(tid, ""), tok, &json!({"title": "改"}))
            .await
            .problem(404, "task_not_found");
        for action in ["done", "cancel"] {
            app.post(&task_path(tid, action), Some(tok), &json!({}))
                .await
                .problem(404, "task_not_found");
        }
        let list = app.get(TASKS, tok).await.expect(200);
        assert!(!ids(&list.body).contains(&tid), "{u} lists {tid}");
    }
    app.get(&task_path(9_999_999, ""), w.t("L0001"))
        .await
        .problem(404, "task_not_found");
    app.get(&format!("{TASKS}/abc"), w.t("L0001"))
        .await
        .problem(400, "invalid_path_parameter");
    app.req(Method::GET, TASKS, None, None)
        .await
        .problem(401, "missing_token");
    // Nothing changed.
    let after = app
        .get(&task_path(id, ""), w.t("L0001"))
        .await
        .expect(200)
        .body;
    assert_eq!(after["title"], "走访");
    assert_eq!(after["status"], "open");
}

async fn the_list_filters_by_side_and_status_and_pages(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001"]).await;
    let (l1, m1) = (w.t("L0001"), w.t("M0001"));
    let assigned = create_task(
        &app,
        l1,
        &json!({"title": "a", "assignee_ids": [w.id("M0001")]}),
    )
    .await;
    let own = create_task(&app, m1, &json!({"title": "b"})).await;
    let cancelled = create_task(&app, m1, &json!({"title": "c"})).await;
    app.post(
        &task_path(id_of(&cancelled), "cancel"),
        Some(m1),
        &json!({}),
    )
    .await
    .expect(200);
    let all = app.get(TASKS, m1).await.expect(200).body;
    assert_eq!(
        ids(&all),
        vec![id_of(&cancelled), id_of(&own), id_of(&assigned)],
        "newest first"
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let created = app
        .get(&format!("{TASKS}?role=created"), m1)
        .await
        .expect(200);
    assert_eq!(ids(&created.body), vec![id_of(&cancelled), id_of(&own)]);
    let a = app
        .get(&format!("{TASKS}?role=assigned"), m1)
        .await
        .expect(200);
    assert_eq!(
        ids(&a.body),
        vec![id_of(&cancelled), id_of(&own), id_of(&assigned)]
    );
    let a = app
        .get(&format!("{TASKS}?role=assigned&status=cancelled"), m1)
        .await
        .expect(200);
    assert_eq!(ids(&a.body), vec![id_of(&cancelled)]);
    let open = app
        .get(&format!("{TASKS}?status=open"), m1)
        .await
        .expect(200);
    assert_eq!(ids(&open.body), vec![id_of(&own), id_of(&assigned)]);
    // The leader's list holds what they created.
    let l = app
        .get(&format!("{TASKS}?role=created"), l1)
        .await
        .expect(200);
    assert_eq!(ids(&l.body), vec![id_of(&assigned)]);
    assert!(
        items(
            &app.get(&format!("{TASKS}?role=assigned"), l1)
                .await
                .expect(200)
                .body
        )
        .is_empty()
    );
    // Pages of one.
    let p1 = app
        .get(&format!("{TASKS}?limit=1"), m1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&p1), vec![id_of(&cancelled)]);
    let cursor = p1["next_cursor"].as_str().expect("a cursor").to_owned();
    let p2 = app
        .get(&format!("{TASKS}?limit=1&cursor={cursor}"), m1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&p2), vec![id_of(&own)]);
    let c2 = p2["next_cursor"].as_str().unwrap().to_owned();
    let p3 = app
        .get(&format!("{TASKS}?limit=2&cursor={c2}"), m1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&p3), vec![id_of(&assigned)]);
    assert_eq!(p3["next_cursor"], Value::Null);
    // Bad queries are 400 naming the parameter.
    for q in [
        "role=boss",
        "status=closed",
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=%%%",
        "colour=red",
    ] {
        app.get(&format!("{TASKS}?{q}"), m1)
            .await
            .problem(400, "invalid_query_parameter");
    }
}

async fn leaders_see_completion_per_assignee(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002", "M0003"]).await;
    let (l1, m1, m2) = (w.t("L0001"), w.t("M0001"), w.t("M0002"));
    let t = create_task(
        &app,
        l1,
        &json!({"title": "季度走访", "assignee_ids": [w.id("M0001"), w.id("M0002")]}),
    )
    .await;
    let id = id_of(&t);
    // The creator is no assignee: nothing of theirs to finish.
    app.post(&task_path(id, "done"), Some(l1), &json!({}))
        .await
        .problem(403, "forbidden");
    // M0001 finishes their part: the task stays open.
    let mine = app
        .post(&task_path(id, "done"), Some(m1), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(mine["status"], "open");
    assert_eq!(assignee_ids(&mine), vec![w.id("M0001")]);
    assert_eq!(part(&mine, w.id("M0001"))["status"], "done");
    let done_at = part(&mine, w.id("M0001"))["done_at"].clone();
    assert!(done_at.is_string(), "{mine}");
    // Again: no change.
    let again = app
        .post(&task_path(id, "done"), Some(m1), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(part(&again, w.id("M0001"))["done_at"], done_at);
    // The leader sees who has finished.
    let seen = app.get(&task_path(id, ""), l1).await.expect(200).body;
    assert_eq!(seen["status"], "open");
    assert_eq!(seen["done_count"], 1);
    assert_eq!(seen["assignee_count"], 2);
    assert_eq!(part(&seen, w.id("M0001"))["status"], "done");
    assert_eq!(part(&seen, w.id("M0001"))["done_at"], done_at);
    assert_eq!(part(&seen, w.id("M0002"))["status"], "open");
    assert_eq!(part(&seen, w.id("M0002"))["done_at"], Value::Null);
    // The same in the leader's list.
    let list = app
        .get(&format!("{TASKS}?role=created"), l1)
        .await
        .expect(200);
    let row = items(&list.body)
        .into_iter()
        .find(|x| x["id"] == id)
        .unwrap();
    assert_eq!(row["done_count"], 1);
    assert_eq!(row["assignee_count"], 2);
    // M0002 sees their own part as still open.
    let theirs = app.get(&task_path(id, ""), m2).await.expect(200).body;
    assert_eq!(part(&theirs, w.id("M0002"))["status"], "open");
    assert_eq!(theirs["done_count"], 0);
    // The last one closes the task.
    let last = app
        .post(&task_path(id, "done"), Some(m2), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(last["status"], "done");
    let seen = app.get(&task_path(id, ""), l1).await.expect(200).body;
    assert_eq!(seen["status"], "done");
    assert_eq!(seen["done_count"], 2);
    // A done task can be neither changed nor cancelled.
    app.patch(&task_path(id, ""), l1, &json!({"title": "改"}))
        .await
        .problem(409, "task_closed");
    app.post(&task_path(id, "cancel"), Some(l1), &json!({}))
        .await
        .problem(409, "task_closed");
    // Done again by an assignee: still fine, nothing changes.
    app.post(&task_path(id, "done"), Some(m1), &json!({}))
        .await
        .expect(200);
    let audit: i64 = with_db(&app, move |c| {
        use fieldwork::db::schema::audit_events;
        audit_events::table
            .filter(audit_events::action.eq("task.done"))
            .filter(audit_events::entity_id.eq(id.to_string()))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(audit, 2, "one audit entry per assignee who finished");
}

async fn cancel_and_edit_belong_to_the_creator_of_an_open_task(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002"]).await;
    let (l1, m1) = (w.t("L0001"), w.t("M0001"));
    let t = create_task(
        &app,
        l1,
        &json!({"title": "原标题", "assignee_ids": [w.id("M0001"), w.id("M0002")]}),
    )
    .await;
    let id = id_of(&t);
    // An assignee may neither edit nor cancel.
    app.patch(&task_path(id, ""), m1, &json!({"title": "改"}))
        .await
        .problem(403, "forbidden");
    app.post(&task_path(id, "cancel"), Some(m1), &json!({}))
        .await
        .problem(403, "forbidden");
    // The creator edits every field.
    let customer = seed_customer(&app, "M0002", "客户", None).await;
    let due = in_(Duration::days(5));
    let e = app
        .patch(
            &task_path(id, ""),
            l1,
            &json!({"title": " 新标题 ", "description": "说明\n两行", "due_at": due, "priority": "high", "customer_id": customer}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(e["title"], "新标题");
    assert_eq!(e["description"], "说明\n两行");
    assert_eq!(e["priority"], "high");
    assert_eq!(e["customer_id"], customer);
    assert!(e["due_at"].is_string());
    assert_eq!(e["assignee_count"], 2);
    // `null` clears the optional fields; absent ones stay.
    let e = app
        .patch(
            &task_path(id, ""),
            l1,
            &json!({"description": null, "due_at": null, "customer_id": null}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(e["description"], Value::Null);
    assert_eq!(e["due_at"], Value::Null);
    assert_eq!(e["customer_id"], Value::Null);
    assert_eq!(e["title"], "新标题");
    assert_eq!(e["priority"], "high");
    // Editing does not notify the assignees again.
    assert_eq!(notes(&app, w.id("M0001"), "task_assigned").await.len(), 1);
    // M0001 is done, then the creator cancels the task.
    app.post(&task_path(id, "done"), Some(m1), &json!({}))
        .await
        .expect(200);
    let c = app
        .post(&task_path(id, "cancel"), Some(l1), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(part(&c, w.id("M0001"))["status"], "done");
    // Nothing more happens to a cancelled task.
    app.post(&task_path(id, "cancel"), Some(l1), &json!({}))
        .await
        .problem(409, "task_closed");
    app.post(&task_path(id, "done"), Some(w.t("M0002")), &json!({}))
        .await
        .problem(409, "task_closed");
    app.post(&task_path(id, "done"), Some(m1), &json!({}))
        .await
        .problem(409, "task_closed");
    app.patch(&task_path(id, ""), l1, &json!({"priority": "low"}))
        .await
        .problem(409, "task_closed");
    let seen = app
        .get(&task_path(id, ""), w.t("M0002"))
        .await
        .expect(200)
        .body;
    assert_eq!(seen["status"], "cancelled");
    assert_eq!(part(&seen, w.id("M0002"))["status"], "open");
}

async fn concurrent_finishes_and_cancels_leave_a_consistent_task(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002"]).await;
    let (l1, m1, m2) = (w.t("L0001"), w.t("M0001"), w.t("M0002"));
    let both = json!({"title": "并发", "assignee_ids": [w.id("M0001"), w.id("M0002")]});
    // The two assignees finish at the same moment: whoever is last closes the task.
    for round in 0..12 {
        let id = id_of(&create_task(&app, l1, &both).await);
        let (path, empty) = (task_path(id, "done"), json!({}));
        let (a, b) = tokio::join!(
            app.post(&path, Some(m1), &empty),
            app.post(&path, Some(m2), &empty),
        );
        a.expect(200);
        b.expect(200);
        let t = app.get(&task_path(id, ""), l1).await.expect(200).body;
        assert_eq!(t["done_count"], 2, "round {round}: {t}");
        assert_eq!(
            t["status"], "done",
            "round {round}: every assignee is done: {t}"
        );
    }
    // The last assignee finishes while the creator cancels: one of them wins, the other is told so.
    let one = json!({"title": "抢", "assignee_ids": [w.id("M0001")]});
    for round in 0..12 {
        let id = id_of(&create_task(&app, l1, &one).await);
        let (done_path, cancel_path, empty) =
            (task_path(id, "done"), task_path(id, "cancel"), json!({}));
        let (done, cancel) = tokio::join!(
            app.post(&done_path, Some(m1), &empty),
            app.post(&cancel_path, Some(l1), &empty),
        );
        let t = app.get(&task_path(id, ""), l1).await.expect(200).body;
        let (d, c) = (done.status.as_u16(), cancel.status.as_u16());
        match t["status"].as_str().unwrap() {
            "done" => {
                assert_eq!((d, c), (200, 409), "round {round}: {t}");
                assert_eq!(part(&t, w.id("M0001"))["status"], "done");
            }
            "cancelled" => {
                assert_eq!((d, c), (409, 200), "round {round}: {t}");
                assert_eq!(part(&t, w.id("M0001"))["status"], "open");
            }
            other => panic!("round {round}: status {other}: {t}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tasks: validation
// ---------------------------------------------------------------------------------------------------------

async fn every_task_field_is_validated(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001"]).await;
    let l1 = w.t("L0001");
    let m1 = w.id("M0001");
    let base = || json!({"title": "标题", "assignee_ids": [m1]});
    let with = |changes: Value| {
        let mut b = base();
        for (k, v) in changes.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let past = in_(-Duration::minutes(1));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"title": ""}), "title", "required"),
        (json!({"title": "   "}), "title", "required"),
        (json!({"title": "x".repeat(201)}), "title", "too_long"),
        (json!({"title": "a\u{0007}b"}), "title", "invalid_format"),
        (json!({"title": "a\nb"}), "title", "invalid_format"),
        (json!({"title": 5}), "title", "invalid_type"),
        (json!({"title": null}), "title", "invalid_type"),
        (
            json!({"description": "x".repeat(4001)}),
            "description",
            "too_long",
        ),
        (
            json!({"description": "a\u{0000}b"}),
            "description",
            "invalid_character",
        ),
        (
            json!({"description": "a\u{7}b"}),
            "description",
            "invalid_format",
        ),
        (json!({"description": 1}), "description", "invalid_type"),
        (json!({"due_at": "tomorrow"}), "due_at", "invalid_value"),
        (
            json!({"due_at": "2030-13-01T00:00:00Z"}),
            "due_at",
            "invalid_value",
        ),
        (json!({"due_at": "2030-01-01"}), "due_at", "invalid_value"),
        (json!({"due_at": 1_900_000_000}), "due_at", "invalid_type"),
        (json!({"due_at": past}), "due_at", "out_of_range"),
        (json!({"priority": "urgent"}), "priority", "invalid_value"),
        (json!({"priority": "HIGH"}), "priority", "invalid_value"),
        (json!({"priority": 1}), "priority", "invalid_type"),
        (json!({"priority": null}), "priority", "invalid_type"),
        (json!({"customer_id": "x"}), "customer_id", "invalid_type"),
        (json!({"customer_id": 1.5}), "customer_id", "invalid_type"),
        (
            json!({"customer_id": 9_999_999}),
            "customer_id",
            "not_found",
        ),
        (json!({"assignee_ids": []}), "assignee_ids", "required"),
        (json!({"assignee_ids": m1}), "assignee_ids", "invalid_type"),
        (
            json!({"assignee_ids": ["a"]}),
            "assignee_ids[0]",
            "invalid_type",
        ),
        (json!({"status": "done"}), "status", "unknown_field"),
        (json!({"assignees": [m1]}), "assignees", "unknown_field"),
    ];
    let before = count_tasks(&app).await;
    for (change, field, code) in cases {
        let case = change.to_string();
        expect_field(
            app.post(TASKS, Some(l1), &with(change)).await,
            field,
            code,
            &case,
        );
    }
    expect_field(
        app.post(TASKS, Some(l1), &json!({"assignee_ids": [m1]}))
            .await,
        "title",
        "required",
        "no title",
    );
    // Several problems are named at once.
    let body = app
        .post(
            TASKS,
            Some(l1),
            &with(json!({"title": "", "description": "x".repeat(4001), "due_at": past})),
        )
        .await
        .problem(422, "validation_failed");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["title", "description", "due_at"] {
        assert!(fields.contains(&f), "{f} in {body}");
    }
    // Not JSON, not an object, not JSON at all.
    let res = app
        .client
        .post(format!("{}{TASKS}", app.address))
        .bearer_auth(l1)
        .header("content-type", "application/json")
        .body("{\"title\":")
        .send()
        .await
        .unwrap();
    TestApp::read(res).await.problem(400, "malformed_json");
    expect_field(
        app.post(TASKS, Some(l1), &json!("title")).await,
        "body",
        "invalid_type",
        "a string body",
    );
    let res = app
        .client
        .post(format!("{}{TASKS}", app.address))
        .bearer_auth(l1)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    TestApp::read(res)
        .await
        .problem(415, "unsupported_media_type");
    assert_eq!(count_tasks(&app).await, before, "nothing was created");
    // The limits themselves are fine: 200 characters of title, 4000 of description.
    let t = create_task(
        &app,
        l1,
        &with(json!({"title": "题".repeat(200), "description": "述".repeat(4000)})),
    )
    .await;
    let id = id_of(&t);

    // PATCH validates the same way and changes nothing on failure.
    let patch_cases: Vec<(Value, &str, &str)> = vec![
        (json!({"title": ""}), "title", "required"),
        (json!({"title": "x".repeat(201)}), "title", "too_long"),
        (json!({"title": 1}), "title", "invalid_type"),
        (json!({"title": null}), "title", "invalid_type"),
        (json!({"priority": null}), "priority", "invalid_type"),
        (
            json!({"description": "x".repeat(4001)}),
            "description",
            "too_long",
        ),
        (json!({"due_at": "soon"}), "due_at", "invalid_value"),
        (json!({"due_at": past}), "due_at", "out_of_range"),
        (json!({"priority": "urgent"}), "priority", "invalid_value"),
        (
            json!({"customer_id": 9_999_999}),
            "customer_id",
            "not_found",
        ),
        (json!({"customer_id": "x"}), "customer_id", "invalid_type"),
        (json!({"status": "done"}), "status", "unknown_field"),
        (
            json!({"assignee_ids": [m1]}),
            "assignee_ids",
            "unknown_field",
        ),
    ];
    for (change, field, code) in patch_cases {
        let case = format!("PATCH {change}");
        expect_field(
            app.patch(&task_path(id, ""), l1, &change).await,
            field,
            code,
            &case,
        );
    }
    let after = app.get(&task_path(id, ""), l1).await.expect(200).body;
    assert_eq!(after["title"], t["title"]);
    assert_eq!(after["description"], t["description"]);
    assert_eq!(after["updated_at"], t["updated_at"]);
}

async fn a_task_create_replays_with_its_idempotency_key(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002"]).await;
    let l1 = w.t("L0001");
    let body = json!({"title": "一次", "assignee_ids": [w.id("M0001"), w.id("M0002")]});
    let first = post_keyed(&app, TASKS, l1, "task-key-1", &body)
        .await
        .expect(201);
    let again = post_keyed(&app, TASKS, l1, "task-key-1", &body)
        .await
        .expect(201);
    assert_eq!(first.body, again.body, "the replay is the first answer");
    let (t, a) = count_tasks(&app).await;
    assert_eq!((t, a), (1, 2), "created once");
    assert_eq!(notes(&app, w.id("M0001"), "task_assigned").await.len(), 1);
    assert_eq!(notes(&app, w.id("M0002"), "task_assigned").await.len(), 1);
    // The same key with another body is refused; another user's same key is their own.
    let other = json!({"title": "两次", "assignee_ids": [w.id("M0001")]});
    expect_field(
        post_keyed(&app, TASKS, l1, "task-key-1", &other).await,
        "idempotency-key",
        "key_reused",
        "key reused",
    );
    post_keyed(
        &app,
        TASKS,
        w.t("M0001"),
        "task-key-1",
        &json!({"title": "我的"}),
    )
    .await
    .expect(201);
    // A new key creates a new task.
    let third = post_keyed(&app, TASKS, l1, "task-key-2", &body)
        .await
        .expect(201);
    assert_ne!(id_of(&third.body), id_of(&first.body));
    assert_eq!(notes(&app, w.id("M0001"), "task_assigned").await.len(), 2);
    // A failed create stores nothing: the key may be used once the body is fixed.
    expect_field(
        post_keyed(&app, TASKS, l1, "task-key-3", &json!({"title": ""})).await,
        "title",
        "required",
        "bad body",
    );
    post_keyed(&app, TASKS, l1, "task-key-3", &json!({"title": "好"}))
        .await
        .expect(201);
}

// ---------------------------------------------------------------------------------------------------------
// Tasks: due reminders
// ---------------------------------------------------------------------------------------------------------

/// Inserts a `task_due` reminder of `task` for `user` with this status and notification mark.
async fn seed_task_reminder(
    app: &TestApp,
    task: i64,
    user: i64,
    status: &'static str,
    notified: bool,
    lead: i32,
) -> i64 {
    with_db(app, move |c| {
        let now = Utc::now().naive_utc();
        let day = (Utc::now() + Duration::days(3)).date_naive();
        diesel::insert_into(reminders::table)
            .values((
                reminders::kind.eq("task_due"),
                reminders::subject_type.eq("task"),
                reminders::subject_id.eq(task),
                reminders::occasion_date.eq(day),
                reminders::lead_days.eq(lead),
                reminders::fire_date.eq(day - Duration::days(i64::from(lead))),
                reminders::user_id.eq(user),
                reminders::status.eq(status),
                reminders::due_at.eq(now + Duration::days(2)),
                reminders::notified_at.eq(notified.then_some(now)),
                reminders::created_at.eq(now),
                reminders::updated_at.eq(now),
            ))
            .returning(reminders::id)
            .get_result(c)
            .unwrap()
    })
    .await
}

/// (id, status) of the reminders of a task, by id.
async fn task_reminders(app: &TestApp, task: i64) -> Vec<(i64, String)> {
    with_db(app, move |c| {
        reminders::table
            .filter(reminders::subject_type.eq("task"))
            .filter(reminders::subject_id.eq(task))
            .order(reminders::id.asc())
            .select((reminders::id, reminders::status))
            .load(c)
            .unwrap()
    })
    .await
}

async fn a_new_due_time_replaces_the_pending_due_reminders(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001", "M0002"]).await;
    let l1 = w.t("L0001");
    let (m1, m2) = (w.id("M0001"), w.id("M0002"));
    let due = in_(Duration::days(3));
    let t = create_task(
        &app,
        l1,
        &json!({"title": "到期", "due_at": due, "assignee_ids": [m1, m2]}),
    )
    .await;
    let id = id_of(&t);
    let other = id_of(
        &create_task(
            &app,
            l1,
            &json!({"title": "另一项", "due_at": due, "assignee_ids": [m1]}),
        )
        .await,
    );
    let pending = seed_task_reminder(&app, id, m1, "pending", false, 1).await;
    let shown = seed_task_reminder(&app, id, m2, "pending", true, 2).await;
    let snoozed = seed_task_reminder(&app, id, m1, "snoozed", false, 3).await;
    let done = seed_task_reminder(&app, id, m2, "done", true, 4).await;
    let elsewhere = seed_task_reminder(&app, other, m1, "pending", false, 1).await;
    let all = vec![
        (pending, "pending".to_owned()),
        (shown, "pending".to_owned()),
        (snoozed, "snoozed".to_owned()),
        (done, "done".to_owned()),
    ];
    // Changes that leave the due time alone keep the reminders: another field, or the same instant.
    app.patch(&task_path(id, ""), l1, &json!({"title": "改名"}))
        .await
        .expect(200);
    app.patch(&task_path(id, ""), l1, &json!({"due_at": due}))
        .await
        .expect(200);
    assert_eq!(task_reminders(&app, id).await, all);
    // A new due time drops the reminders still to come for the old one (pending, shown or snoozed);
    // what the user finished stays, and other tasks' reminders are untouched.
    app.patch(
        &task_path(id, ""),
        l1,
        &json!({"due_at": in_(Duration::days(10))}),
    )
    .await
    .expect(200);
    assert_eq!(
        task_reminders(&app, id).await,
        vec![(done, "done".to_owned())]
    );
    assert_eq!(
        task_reminders(&app, other).await,
        vec![(elsewhere, "pending".to_owned())]
    );
    // Clearing the due time drops them too.
    let again = seed_task_reminder(&app, id, m1, "pending", false, 1).await;
    assert!(
        task_reminders(&app, id)
            .await
            .contains(&(again, "pending".to_owned()))
    );
    app.patch(&task_path(id, ""), l1, &json!({"due_at": null}))
        .await
        .expect(200);
    assert_eq!(
        task_reminders(&app, id).await,
        vec![(done, "done".to_owned())]
    );
    // An assignee who finishes gets no more reminders of it; the others keep theirs.
    let r1 = seed_task_reminder(&app, id, m1, "pending", false, 1).await;
    let r2 = seed_task_reminder(&app, id, m2, "pending", false, 2).await;
    app.post(&task_path(id, "done"), Some(w.t("M0001")), &json!({}))
        .await
        .expect(200);
    let left = task_reminders(&app, id).await;
    assert!(left.contains(&(r1, "cancelled".to_owned())), "{left:?}");
    assert!(left.contains(&(r2, "pending".to_owned())), "{left:?}");
    // Cancelling the task cancels the rest.
    app.post(&task_path(id, "cancel"), Some(l1), &json!({}))
        .await
        .expect(200);
    let left = task_reminders(&app, id).await;
    assert!(left.contains(&(r2, "cancelled".to_owned())), "{left:?}");
    assert!(left.contains(&(done, "done".to_owned())), "{left:?}");
    // The other task's reminder is still there.
    assert_eq!(
        task_reminders(&app, other).await,
        vec![(elsewhere, "pending".to_owned())]
    );
}

/// (user, kind, occasion date, status) of a task's reminders, sorted.
async fn reminder_rows(app: &TestApp, task: i64) -> Vec<(i64, String, chrono::NaiveDate, String)> {
    with_db(app, move |c| {
        reminders::table
            .filter(reminders::subject_type.eq("task"))
            .filter(reminders::subject_id.eq(task))
            .order((reminders::user_id, reminders::kind, reminders::id))
            .select((
                reminders::user_id,
                reminders::kind,
                reminders::occasion_date,
                reminders::status,
            ))
            .load(c)
            .unwrap()
    })
    .await
}

async fn the_scheduler_follows_a_tasks_due_time_and_assignees(app: TestApp) {
    use fieldwork::scheduler::{Settings, tick};
    let w = Who::login(&app, &["L0001", "M0001", "M0002"]).await;
    let l1 = w.t("L0001");
    let (m1, m2) = (w.id("M0001"), w.id("M0002"));
    let local = |t: DateTime<Utc>| (t + Duration::hours(8)).date_naive();
    let now = Utc::now();
    let due = now + Duration::days(3);
    let t = create_task(
        &app,
        l1,
        &json!({"title": "三天后", "due_at": due.to_rfc3339_opts(SecondsFormat::Secs, true), "assignee_ids": [m1, m2]}),
    )
    .await;
    let id = id_of(&t);
    tick(&app.db, now, Settings::default()).await.unwrap();
    let rows = reminder_rows(&app, id).await;
    for u in [m1, m2] {
        assert!(
            rows.iter()
                .any(|r| r.0 == u && r.1 == "task_due" && r.2 == local(due) && r.3 == "pending"),
            "a due reminder for {u}: {rows:?}"
        );
    }
    assert!(rows.iter().all(|r| r.2 == local(due)), "{rows:?}");
    // Ticking again creates nothing new.
    tick(&app.db, now, Settings::default()).await.unwrap();
    assert_eq!(reminder_rows(&app, id).await, rows);
    // A due time beyond the look-ahead: the old reminders go and none replace them yet.
    let far = now + Duration::days(30);
    app.patch(
        &task_path(id, ""),
        l1,
        &json!({"due_at": far.to_rfc3339_opts(SecondsFormat::Secs, true)}),
    )
    .await
    .expect(200);
    tick(&app.db, now, Settings::default()).await.unwrap();
    assert_eq!(
        reminder_rows(&app, id).await,
        vec![],
        "stale reminders remain"
    );
    // Back within the window, on another day: reminders for the new date only.
    let due2 = now + Duration::days(4);
    app.patch(
        &task_path(id, ""),
        l1,
        &json!({"due_at": due2.to_rfc3339_opts(SecondsFormat::Secs, true)}),
    )
    .await
    .expect(200);
    tick(&app.db, now, Settings::default()).await.unwrap();
    let rows = reminder_rows(&app, id).await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.2 == local(due2) && r.3 == "pending"),
        "{rows:?}"
    );
    // M0001 finishes: their reminders are cancelled and not made again; M0002 keeps theirs.
    app.post(&task_path(id, "done"), Some(w.t("M0001")), &json!({}))
        .await
        .expect(200);
    tick(&app.db, now, Settings::default()).await.unwrap();
    let rows = reminder_rows(&app, id).await;
    assert!(
        rows.iter()
            .filter(|r| r.0 == m1)
            .all(|r| r.3 == "cancelled"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.0 == m2 && r.3 == "pending"),
        "{rows:?}"
    );
    // Cancelling the task ends them all, for good.
    app.post(&task_path(id, "cancel"), Some(l1), &json!({}))
        .await
        .expect(200);
    tick(&app.db, now, Settings::default()).await.unwrap();
    let rows = reminder_rows(&app, id).await;
    assert!(rows.iter().all(|r| r.3 == "cancelled"), "{rows:?}");
    // Nobody was notified of a due task three days ahead.
    assert!(notes(&app, m2, "task_due").await.is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Notices
// ---------------------------------------------------------------------------------------------------------

async fn a_leader_publishes_to_the_subtree_and_sees_who_has_read(app: TestApp) {
    let w = Who::login(
        &app,
        &["L0001", "L0002", "M0001", "M0002", "M0006", "M0007"],
    )
    .await;
    let l1 = w.t("L0001");
    register_device(&app, w.t("M0001"), "m1-phone").await;
    no_quiet_hours(&app, w.t("M0001")).await;
    // A notice is not urgent: M0002, in quiet hours now, gets it once they are over.
    quiet_now(&app, w.t("M0002")).await;
    // A deactivated colleague receives nothing.
    deactivate(&app, w.t("admin"), w.id("M0006")).await;
    let gl = org_id(&app, "NJ-GL").await;
    let n = app
        .post(
            NOTICES,
            Some(l1),
            &json!({"title": "本周例会改到周五", "body": "  周五下午三点\n三楼会议室  "}),
        )
        .await
        .expect(201)
        .body;
    let id = id_of(&n);
    assert_eq!(n["org_id"], gl, "the caller's own org by default");
    assert_eq!(n["title"], "本周例会改到周五");
    assert_eq!(n["body"], "周五下午三点\n三楼会议室");
    assert_eq!(n["published_by"], w.id("L0001"));
    assert_eq!(n["recipient_count"], 5, "M0001–M0005: {n}");
    assert_eq!(n["read_count"], 0);
    assert_eq!(n["read"], Value::Null);
    // Each active member of the subtree but the publisher got one notification, with a generic text.
    let mut recipients = Vec::new();
    for k in 1..=12 {
        let no = format!("M{k:04}");
        let uid = app.user_id(w.t("admin"), &no).await;
        let got = notes(&app, uid, "notice").await;
        if (1..=5).contains(&k) {
            assert_eq!(got.len(), 1, "{no}: {got:?}");
            assert_eq!(got[0].2.as_deref(), Some("notice"));
            assert_eq!(got[0].3, Some(id));
            assert!(!got[0].0.contains("例会") && !got[0].1.contains("例会"));
            recipients.push(uid);
        } else {
            assert!(got.is_empty(), "{no} is no recipient: {got:?}");
        }
    }
    assert!(notes(&app, w.id("L0001"), "notice").await.is_empty());
    assert!(notes(&app, w.id("L0002"), "notice").await.is_empty());
    assert_eq!(outbox_rows(&app, w.id("M0001"), "notice").await, 1);
    // M0001 (quiet hours off) has it in the inbox and the received list, unread.
    let inbox = app.get(INBOX, w.t("M0001")).await.expect(200);
    let note: Vec<Value> = items(&inbox.body)
        .into_iter()
        .filter(|x| x["kind"] == "notice")
        .collect();
    assert_eq!(note.len(), 1, "{}", inbox.text);
    assert_eq!(note[0]["link"], json!({"type": "notice", "id": id}));
    let d = delivery(&app, w.id("M0002"), "notice").await;
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].1, d[0].0,
        "in the inbox at once, quiet hours or not: {d:?}"
    );
    let inbox2 = app.get(INBOX, w.t("M0002")).await.expect(200);
    assert!(
        items(&inbox2.body).iter().any(|x| x["kind"] == "notice"),
        "only the push waits out quiet hours: {}",
        inbox2.text
    );
    // The notice itself is there at once.
    let list = app.get(NOTICES, w.t("M0002")).await.expect(200).body;
    assert_eq!(ids(&list), vec![id]);
    let list = app.get(NOTICES, w.t("M0001")).await.expect(200).body;
    assert_eq!(ids(&list), vec![id]);
    assert_eq!(items(&list)[0]["read"], false);
    assert_eq!(items(&list)[0]["recipient_count"], Value::Null);
    // Opening it marks it read, and its notification too; the first read counts.
    let seen = app
        .get(&format!("{NOTICES}/{id}"), w.t("M0001"))
        .await
        .expect(200)
        .body;
    assert_eq!(seen["read"], true);
    let read_at = seen["read_at"].clone();
    assert!(read_at.is_string(), "{seen}");
    assert_eq!(seen["recipient_count"], Value::Null);
    let unread = app
        .get(&format!("{INBOX}/unread-count"), w.t("M0001"))
        .await
        .expect(200);
    assert_eq!(unread.body["unread"], 0);
    let again = app
        .get(&format!("{NOTICES}/{id}"), w.t("M0001"))
        .await
        .expect(200)
        .body;
    assert_eq!(again["read_at"], read_at);
    let list = app.get(NOTICES, w.t("M0001")).await.expect(200).body;
    assert_eq!(items(&list)[0]["read"], true);
    // The publisher sees the counts and who has (not) read it; opening it marks nothing.
    let p = app
        .get(&format!("{NOTICES}/{id}"), l1)
        .await
        .expect(200)
        .body;
    assert_eq!(p["recipient_count"], 5);
    assert_eq!(p["read_count"], 1);
    assert_eq!(p["read"], Value::Null);
    let reads = app
        .get(&format!("{NOTICES}/{id}/reads"), l1)
        .await
        .expect(200)
        .body;
    let read: Vec<&Value> = reads["read"].as_array().unwrap().iter().collect();
    assert_eq!(read.len(), 1, "{reads}");
    assert_eq!(read[0]["user_id"], w.id("M0001"));
    assert_eq!(read[0]["employee_no"], "M0001");
    assert_eq!(read[0]["read_at"], read_at);
    let unread: Vec<i64> = reads["unread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["read_at"], Value::Null);
            r["user_id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(unread, recipients[1..].to_vec());
    let published = app
        .get(&format!("{NOTICES}?box=published"), l1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&published), vec![id]);
    assert_eq!(items(&published)[0]["read_count"], 1);
    assert_eq!(items(&published)[0]["recipient_count"], 5);
    assert!(items(&app.get(NOTICES, l1).await.expect(200).body).is_empty());
    // A recipient may not see the receipts; anyone else does not see the notice at all.
    app.get(&format!("{NOTICES}/{id}/reads"), w.t("M0002"))
        .await
        .problem(403, "forbidden");
    for u in ["M0007", "L0002", "admin", "M0006"] {
        let tok = if u == "M0006" {
            // Deactivated: cannot even log in; covered by the recipient list above.
            continue;
        } else {
            w.t(u)
        };
        app.get(&format!("{NOTICES}/{id}"), tok)
            .await
            .problem(404, "notice_not_found");
        app.get(&format!("{NOTICES}/{id}/reads"), tok)
            .await
            .problem(404, "notice_not_found");
        assert!(items(&app.get(NOTICES, tok).await.expect(200).body).is_empty());
    }
    // M0002 reading moves them to the read side.
    app.get(&format!("{NOTICES}/{id}"), w.t("M0002"))
        .await
        .expect(200);
    let reads = app
        .get(&format!("{NOTICES}/{id}/reads"), l1)
        .await
        .expect(200)
        .body;
    assert_eq!(reads["read"].as_array().unwrap().len(), 2);
    assert_eq!(reads["unread"].as_array().unwrap().len(), 3);
    app.get(&format!("{NOTICES}/9999999"), l1)
        .await
        .problem(404, "notice_not_found");
    app.get(&format!("{NOTICES}/abc"), l1)
        .await
        .problem(400, "invalid_path_parameter");
}

async fn who_may_publish_to_which_subtree(app: TestApp) {
    let w = Who::login(&app, &["L0001", "L0003", "M0001", "M0013"]).await;
    let (gl, xw, nj, ho, sz) = (
        org_id(&app, "NJ-GL").await,
        org_id(&app, "NJ-XW").await,
        org_id(&app, "NJ").await,
        org_id(&app, "HO").await,
        org_id(&app, "SZ").await,
    );
    let before = count_notices(&app).await;
    let notes_before = count_notes(&app).await;
    // A manager may not publish, even to their own org.
    for body in [
        json!({"title": "t", "body": "b"}),
        json!({"title": "t", "body": "b", "org_id": gl}),
    ] {
        app.post(NOTICES, Some(w.t("M0001")), &body)
            .await
            .problem(403, "forbidden");
    }
    // A leader publishes within their subtree only: a sibling, the parent, the root, another branch or
    // an org that does not exist is 422 on `org_id`.
    for (org, case) in [
        (xw, "sibling"),
        (nj, "parent"),
        (ho, "root"),
        (sz, "another branch"),
        (9_999_999, "no such org"),
    ] {
        expect_field(
            app.post(
                NOTICES,
                Some(w.t("L0001")),
                &json!({"title": "t", "body": "b", "org_id": org}),
            )
            .await,
            "org_id",
            "not_found",
            case,
        );
    }
    assert_eq!(count_notices(&app).await, before, "nothing was published");
    assert_eq!(count_notes(&app).await, notes_before, "nobody was notified");
    // Naming their own org is the same as the default.
    let n = app
        .post(
            NOTICES,
            Some(w.t("L0001")),
            &json!({"title": "t", "body": "b", "org_id": gl}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(n["recipient_count"], 6);
    // The admin publishes to a branch (its two sub-branches: 2 leaders, 12 managers) or the whole bank.
    let b = app
        .post(
            NOTICES,
            Some(w.t("admin")),
            &json!({"title": "南京分行", "body": "b", "org_id": nj}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(b["recipient_count"], 14);
    assert_eq!(b["org_id"], nj);
    assert_eq!(notes(&app, w.id("L0001"), "notice").await.len(), 1);
    assert!(notes(&app, w.id("M0013"), "notice").await.is_empty());
    let all = app
        .post(
            NOTICES,
            Some(w.t("admin")),
            &json!({"title": "全行", "body": "b"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(all["org_id"], ho);
    assert_eq!(all["recipient_count"], 28, "everyone but the admin");
    assert_eq!(notes(&app, w.id("M0013"), "notice").await.len(), 1);
    // Every recipient has exactly one notification per notice.
    let dupes: i64 = with_db(&app, |c| {
        let rows: Vec<(i64, Option<i64>)> = notifications::table
            .filter(notifications::kind.eq("notice"))
            .select((notifications::user_id, notifications::link_id))
            .load(c)
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        i64::try_from(rows.into_iter().filter(|r| !seen.insert(*r)).count()).unwrap()
    })
    .await;
    assert_eq!(dupes, 0);
    let (_, recipients) = count_notices(&app).await;
    assert_eq!(recipients, 6 + 14 + 28);
    // A leader of another branch publishes to their own sub-branch only.
    let s = app
        .post(
            NOTICES,
            Some(w.t("L0003")),
            &json!({"title": "姑苏", "body": "b"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(s["recipient_count"], 6);
    app.get(&format!("{NOTICES}/{}", id_of(&s)), w.t("L0001"))
        .await
        .problem(404, "notice_not_found");
}

async fn every_notice_field_is_validated(app: TestApp) {
    let w = Who::login(&app, &["L0001"]).await;
    let l1 = w.t("L0001");
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"body": "b"}), "title", "required"),
        (json!({"title": "t"}), "body", "required"),
        (json!({"title": "", "body": "b"}), "title", "required"),
        (json!({"title": "  ", "body": "b"}), "title", "required"),
        (
            json!({"title": "x".repeat(201), "body": "b"}),
            "title",
            "too_long",
        ),
        (
            json!({"title": "a\nb", "body": "b"}),
            "title",
            "invalid_format",
        ),
        (json!({"title": 1, "body": "b"}), "title", "invalid_type"),
        (json!({"title": "t", "body": ""}), "body", "required"),
        (json!({"title": "t", "body": " \n "}), "body", "required"),
        (
            json!({"title": "t", "body": "x".repeat(10_001)}),
            "body",
            "too_long",
        ),
        (
            json!({"title": "t", "body": "a\u{0007}b"}),
            "body",
            "invalid_format",
        ),
        (json!({"title": "t", "body": null}), "body", "invalid_type"),
        (
            json!({"title": "t", "body": "b", "org_id": "x"}),
            "org_id",
            "invalid_type",
        ),
        (
            json!({"title": "t", "body": "b", "org_id": 1.5}),
            "org_id",
            "invalid_type",
        ),
        (
            json!({"title": "t", "body": "b", "to": "all"}),
            "to",
            "unknown_field",
        ),
        (json!("notice"), "body", "invalid_type"),
    ];
    for (b, field, code) in cases {
        let case = b.to_string();
        expect_field(app.post(NOTICES, Some(l1), &b).await, field, code, &case);
    }
    assert_eq!(count_notices(&app).await, (0, 0), "nothing was published");
    // The limits themselves are fine, and a body keeps its lines and tabs.
    let n = app
        .post(
            NOTICES,
            Some(l1),
            &json!({"title": "题".repeat(200), "body": format!("a\tb\r\n{}", "c".repeat(9_990))}),
        )
        .await
        .expect(201)
        .body;
    assert!(n["body"].as_str().unwrap().starts_with("a\tb\r\n"));
    for q in ["box=sent", "limit=0", "cursor=%%%", "colour=red"] {
        app.get(&format!("{NOTICES}?{q}"), l1)
            .await
            .problem(400, "invalid_query_parameter");
    }
    app.req(
        Method::POST,
        NOTICES,
        None,
        Some(&json!({"title": "t", "body": "b"})),
    )
    .await
    .problem(401, "missing_token");
}

async fn a_notice_publish_replays_with_its_idempotency_key(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001"]).await;
    let l1 = w.t("L0001");
    let body = json!({"title": "只发一次", "body": "b"});
    let first = post_keyed(&app, NOTICES, l1, "notice-key-1", &body)
        .await
        .expect(201);
    let again = post_keyed(&app, NOTICES, l1, "notice-key-1", &body)
        .await
        .expect(201);
    assert_eq!(first.body, again.body, "the replay is the first answer");
    assert_eq!(count_notices(&app).await, (1, 6), "published once");
    assert_eq!(notes(&app, w.id("M0001"), "notice").await.len(), 1);
    expect_field(
        post_keyed(
            &app,
            NOTICES,
            l1,
            "notice-key-1",
            &json!({"title": "另一条", "body": "b"}),
        )
        .await,
        "idempotency-key",
        "key_reused",
        "key reused",
    );
    // A refused publish stores nothing under its key: fixed, the same key publishes.
    let xw = org_id(&app, "NJ-XW").await;
    expect_field(
        post_keyed(
            &app,
            NOTICES,
            l1,
            "notice-key-2",
            &json!({"title": "t", "body": "b", "org_id": xw}),
        )
        .await,
        "org_id",
        "not_found",
        "out of the subtree",
    );
    post_keyed(&app, NOTICES, l1, "notice-key-2", &body)
        .await
        .expect(201);
    assert_eq!(count_notices(&app).await, (2, 12));
}

async fn notices_page_newest_first(app: TestApp) {
    let w = Who::login(&app, &["L0001", "M0001"]).await;
    let mut made = Vec::new();
    for k in 0..3 {
        let n = app
            .post(
                NOTICES,
                Some(w.t("L0001")),
                &json!({"title": format!("第{k}条"), "body": "b"}),
            )
            .await
            .expect(201)
            .body;
        made.push(id_of(&n));
    }
    made.reverse();
    for (tok, q) in [
        (w.t("M0001"), "box=received&"),
        (w.t("L0001"), "box=published&"),
    ] {
        let p1 = app
            .get(&format!("{NOTICES}?{q}limit=2"), tok)
            .await
            .expect(200)
            .body;
        assert_eq!(ids(&p1), made[..2].to_vec());
        let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
        let p2 = app
            .get(&format!("{NOTICES}?{q}limit=2&cursor={cursor}"), tok)
            .await
            .expect(200)
            .body;
        assert_eq!(ids(&p2), made[2..].to_vec());
        assert_eq!(p2["next_cursor"], Value::Null);
    }
}

backend_tests!(
    a_leader_assigns_to_managers_of_the_subtree_and_each_is_notified_once,
    managers_set_tasks_for_themselves_only,
    assignees_and_customers_must_be_in_the_leaders_subtree,
    a_task_is_seen_by_its_creator_assignees_and_leaders_above,
    the_list_filters_by_side_and_status_and_pages,
    leaders_see_completion_per_assignee,
    cancel_and_edit_belong_to_the_creator_of_an_open_task,
    concurrent_finishes_and_cancels_leave_a_consistent_task,
    every_task_field_is_validated,
    a_task_create_replays_with_its_idempotency_key,
    a_new_due_time_replaces_the_pending_due_reminders,
    the_scheduler_follows_a_tasks_due_time_and_assignees,
    a_leader_publishes_to_the_subtree_and_sees_who_has_read,
    who_may_publish_to_which_subtree,
    every_notice_field_is_validated,
    notices_page_newest_first,
    a_notice_publish_replays_with_its_idempotency_key,
);
