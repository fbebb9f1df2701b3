//! The inbox (`/notifications`), the reminders list with done and snooze, and `/me/today`.
//!
//! The test server runs on the system clock, so instants are chosen relative to now; the scheduler is
//! driven by `tick` at chosen instants. Where a test needs time to pass (a snooze ending, a deferred
//! notification falling due) it moves the stored instant into the past instead of sleeping.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, SubsecRound, Timelike, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use fieldwork::db::schema::{customers, notifications, reminders, tasks, users};
use fieldwork::domain::calendar::{local_date, month_day};
use fieldwork::domain::reminders::{local_instant, lunar_keys};
use fieldwork::scheduler::{Settings, tick};

use crate::backend_tests;
use crate::helpers::{Resp, TestApp, id_of, seed_customer, transfer_customer};
use crate::inbox::{no_quiet_hours, with_db};

backend_tests!(
    notifications_page_by_cursor_and_filter_unread,
    read_read_all_and_unread_count_agree,
    notifications_of_others_and_unknown_ids_are_404,
    bad_inbox_queries_are_400,
    inbox_and_reminders_speak_the_users_language,
    quiet_hours_hold_the_push_never_the_inbox,
    reminders_list_done_and_snooze,
    snoozed_reminder_is_notified_again,
    reminders_of_others_and_unknown_ids_are_404,
    bad_reminder_queries_and_snoozes_are_rejected,
    today_shows_each_section,
    today_birthdays_follow_every_change_at_once,
    today_reminders_follow_every_change_at_once,
);

const INBOX: &str = "/api/v1/notifications";
const UNREAD: &str = "/api/v1/notifications/unread-count";
const READ_ALL: &str = "/api/v1/notifications/read-all";
const REMINDERS: &str = "/api/v1/reminders";
const TODAY: &str = "/api/v1/me/today";
const PREFS: &str = "/api/v1/me/preferences";
/// A customer's registered location in Nanjing (WGS-84).
const NJ: (f64, f64) = (32.05, 118.78);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An RFC 3339 field of a body as an instant.
#[track_caller]
fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 instant: {v}"))
}

/// Today in Asia/Shanghai.
fn today() -> NaiveDate {
    local_date(Utc::now())
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Asserts a problem document with `status` and `code` whose `errors` name `field` with `field_code`.
#[track_caller]
fn bad(r: Resp, status: u16, code: &str, field: &str, field_code: &str) -> Value {
    let body = r.problem(status, code);
    assert!(
        body["errors"].as_array().is_some_and(|es| es
            .iter()
            .any(|e| e["field"] == field && e["code"] == field_code && e["message"].is_string())),
        "expected {field}/{field_code} in {body}"
    );
    body
}

/// A demo user's id, read from the database.
pub async fn user_id(app: &TestApp, employee_no: &'static str) -> i64 {
    with_db(app, move |c| {
        users::table
            .filter(users::employee_no.eq(employee_no))
            .select(users::id)
            .first(c)
            .unwrap()
    })
    .await
}

/// A task created by `token` for `assignees` (the caller when empty), due at `due`; returns its id.
async fn task(
    app: &TestApp,
    token: &str,
    assignees: &[i64],
    due: Option<DateTime<Utc>>,
    extra: Value,
) -> i64 {
    let mut body = json!({"title": "回访客户", "priority": "normal"});
    if !assignees.is_empty() {
        body["assignee_ids"] = json!(assignees);
    }
    if let Some(d) = due {
        body["due_at"] = json!(rfc3339(d));
    }
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post("/api/v1/tasks", Some(token), &body)
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

/// A notice from `token` to its org subtree; returns its id.
async fn notice(app: &TestApp, token: &str) -> i64 {
    let body = json!({"title": "季度营销会议", "body": "周五下午三点开会"});
    app.post("/api/v1/notices", Some(token), &body)
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

async fn unread(app: &TestApp, token: &str) -> i64 {
    app.get(UNREAD, token).await.expect(200).body["unread"]
        .as_i64()
        .unwrap()
}

async fn items(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    app.get(path, token).await.expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|n| n["id"].as_i64().unwrap()).collect()
}

async fn read(app: &TestApp, token: &str, id: i64) -> Resp {
    app.req(
        Method::POST,
        &format!("{INBOX}/{id}/read"),
        Some(token),
        None,
    )
    .await
}

async fn read_all(app: &TestApp, token: &str) -> i64 {
    app.req(Method::POST, READ_ALL, Some(token), None)
        .await
        .expect(200)
        .body["marked"]
        .as_i64()
        .unwrap()
}

/// Sets the caller's preferences (a PUT replaces them all: quiet hours stay off unless given).
async fn prefs(app: &TestApp, token: &str, body: Value) {
    let mut b = json!({"quiet_start": "00:00", "quiet_end": "00:00"});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    app.req(Method::PUT, PREFS, Some(token), Some(&b))
        .await
        .expect(200);
}

/// A customer of `manager` with a solar birthday on `birthday`'s month and day.
async fn birthday_customer(app: &TestApp, manager: &str, name: &str, birthday: NaiveDate) -> i64 {
    let id = seed_customer(app, manager, name, None).await;
    let md = month_day(birthday);
    with_db(app, move |c| {
        diesel::update(customers::table.find(id))
            .set(customers::birthday_md.eq(md))
            .execute(c)
            .unwrap();
    })
    .await;
    id
}

/// The scheduler at `now`.
async fn run(app: &TestApp, now: DateTime<Utc>) {
    tick(&app.db, now, Settings::default()).await.unwrap();
}

/// The customer reminders (birthdays, maturities…) of a reminders list, leaving out the work-log ones the
/// scheduler writes for every manager.
async fn births(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    items(app, path, token)
        .await
        .into_iter()
        .filter(|r| r["customer_id"].is_i64())
        .collect()
}

/// The customer reminders on the caller's `/me/today`.
async fn on_screen(app: &TestApp, token: &str) -> Vec<Value> {
    app.get(TODAY, token).await.expect(200).body["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["customer_id"].is_i64())
        .cloned()
        .collect()
}

/// Finds the item about `customer` at `lead` days in a reminders list.
#[track_caller]
fn about(items: &[Value], customer: i64, lead: i64) -> Value {
    items
        .iter()
        .find(|r| r["customer_id"] == customer && r["lead_days"] == lead)
        .cloned()
        .unwrap_or_else(|| panic!("no reminder of customer {customer} at lead {lead} in {items:?}"))
}

async fn notifications_page_by_cursor_and_filter_unread(app: TestApp) {
    let l1 = app.login("L0001").await;
    let m1 = app.login("M0001").await;
    let m1_id = user_id(&app, "M0001").await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(task(&app, &l1, &[m1_id], None, json!({})).await);
    }
    // Newest first, in pages of 2: 2 + 2 + 1, the last page without a cursor.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let q = cursor
            .as_ref()
            .map_or("?limit=2".to_owned(), |c| format!("?limit=2&cursor={c}"));
        let page = app.get(&format!("{INBOX}{q}"), &m1).await.expect(200).body;
        let got = page["items"].as_array().unwrap().clone();
        sizes.push(got.len());
        seen.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    let links: Vec<i64> = seen
        .iter()
        .map(|n| n["link"]["id"].as_i64().unwrap())
        .collect();
    made.reverse();
    assert_eq!(links, made, "newest first, each once");
    let all = ids(&seen);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "{all:?}");
    let now = Utc::now();
    for n in &seen {
        assert_eq!(n["kind"], "task_assigned");
        assert_eq!(n["title"], "新待办");
        assert_eq!(n["body"], "领导给您分配了 1 项待办");
        assert_eq!(n["link"]["type"], "task");
        assert_eq!(n["read_at"], Value::Null);
        let (created, deliver) = (instant(&n["created_at"]), instant(&n["deliver_at"]));
        assert!(created <= now && deliver <= now, "{n}");
        assert_eq!(deliver, created, "urgent: delivered at once");
    }
    // The whole inbox in one page: the same list, without a cursor.
    let one = app.get(&format!("{INBOX}?limit=5"), &m1).await.expect(200);
    assert_eq!(ids(one.body["items"].as_array().unwrap()), all);
    assert_eq!(one.body["next_cursor"], Value::Null);
    // Unread filter with paging.
    read(&app, &m1, all[1]).await.expect(200);
    read(&app, &m1, all[3]).await.expect(200);
    let unread_ids = vec![all[0], all[2], all[4]];
    assert_eq!(
        ids(&items(&app, &format!("{INBOX}?unread=true"), &m1).await),
        unread_ids
    );
    let p1 = app
        .get(&format!("{INBOX}?unread=true&limit=2"), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(p1["items"].as_array().unwrap()), unread_ids[..2]);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&format!("{INBOX}?unread=true&limit=2&cursor={c}"), &m1)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(p2["items"].as_array().unwrap()), unread_ids[2..]);
    assert_eq!(p2["next_cursor"], Value::Null);
    assert_eq!(
        ids(&items(&app, &format!("{INBOX}?unread=false"), &m1).await),
        all
    );
    // Nobody else sees them.
    let m2 = app.login("M0002").await;
    assert!(items(&app, INBOX, &m2).await.is_empty());
    assert!(items(&app, INBOX, &l1).await.is_empty());
}

async fn read_read_all_and_unread_count_agree(app: TestApp) {
    let l1 = app.login("L0001").await;
    let m1 = app.login("M0001").await;
    let m1_id = user_id(&app, "M0001").await;
    assert_eq!(unread(&app, &m1).await, 0);
    for _ in 0..4 {
        task(&app, &l1, &[m1_id], None, json!({})).await;
    }
    assert_eq!(unread(&app, &m1).await, 4);
    let all = ids(&items(&app, INBOX, &m1).await);
    // Reading one: read_at set, the count down by one; reading it again keeps the first read time.
    let first = read(&app, &m1, all[2]).await.expect(200).body;
    assert_eq!(first["id"], all[2]);
    let at = instant(&first["read_at"]);
    assert_eq!(unread(&app, &m1).await, 3);
    let again = read(&app, &m1, all[2]).await.expect(200).body;
    assert_eq!(instant(&again["read_at"]), at);
    assert_eq!(unread(&app, &m1).await, 3);
    let today = app.get(TODAY, &m1).await.expect(200).body;
    assert_eq!(today["unread_count"], 3);
    // Read all: exactly the unread ones are marked.
    assert_eq!(read_all(&app, &m1).await, 3);
    assert_eq!(unread(&app, &m1).await, 0);
    assert_eq!(
        app.get(TODAY, &m1).await.expect(200).body["unread_count"],
        0
    );
    assert!(
        items(&app, &format!("{INBOX}?unread=true"), &m1)
            .await
            .is_empty()
    );
    let listed = items(&app, INBOX, &m1).await;
    assert!(
        listed.iter().all(|n| n["read_at"].is_string()),
        "{listed:?}"
    );
    let kept = listed.iter().find(|n| n["id"] == all[2]).unwrap();
    assert_eq!(
        instant(&kept["read_at"]),
        at,
        "read-all keeps earlier reads"
    );
    assert_eq!(read_all(&app, &m1).await, 0);
    // A new one is unread again, everywhere.
    task(&app, &l1, &[m1_id], None, json!({})).await;
    assert_eq!(unread(&app, &m1).await, 1);
    let fresh = items(&app, &format!("{INBOX}?unread=true"), &m1).await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        app.get(TODAY, &m1).await.expect(200).body["unread_count"],
        1
    );
    assert_eq!(read_all(&app, &m1).await, 1);
}

async fn notifications_of_others_and_unknown_ids_are_404(app: TestApp) {
    let l1 = app.login("L0001").await;
    let m1 = app.login("M0001").await;
    let m2 = app.login("M0002").await;
    let m1_id = user_id(&app, "M0001").await;
    task(&app, &l1, &[m1_id], None, json!({})).await;
    let id = ids(&items(&app, INBOX, &m1).await)[0];
    read(&app, &m2, id)
        .await
        .problem(404, "notification_not_found");
    read(&app, &l1, id)
        .await
        .problem(404, "notification_not_found");
    assert_eq!(read_all(&app, &m2).await, 0, "read-all touches only mine");
    assert_eq!(unread(&app, &m1).await, 1, "still unread for its owner");
    read(&app, &m1, id + 1000)
        .await
        .problem(404, "notification_not_found");
    read(&app, &m1, i64::MAX)
        .await
        .problem(404, "notification_not_found");
    for bad_id in ["abc", "0", "-1", "1.5", "99999999999999999999"] {
        bad(
            app.req(
                Method::POST,
                &format!("{INBOX}/{bad_id}/read"),
                Some(&m1),
                None,
            )
            .await,
            400,
            "invalid_path_parameter",
            "id",
            "invalid_format",
        );
    }
    // Without a token: 401 everywhere.
    for (m, path) in [
        (Method::GET, INBOX.to_owned()),
        (Method::GET, UNREAD.to_owned()),
        (Method::POST, READ_ALL.to_owned()),
        (Method::POST, format!("{INBOX}/{id}/read")),
        (Method::GET, REMINDERS.to_owned()),
        (Method::POST, format!("{REMINDERS}/1/done")),
        (Method::GET, TODAY.to_owned()),
    ] {
        app.req(m, &path, None, None)
            .await
            .problem(401, "missing_token");
    }
    assert_eq!(unread(&app, &m1).await, 1);
}

async fn bad_inbox_queries_are_400(app: TestApp) {
    let m1 = app.login("M0001").await;
    let cases = [
        ("cursor=garbage", "cursor", "invalid_format"),
        ("cursor=djI6Mw", "cursor", "invalid_format"), // "v2:3"
        ("cursor=djE6LTM", "cursor", "invalid_format"), // "v1:-3"
        ("limit=0", "limit", "out_of_range"),
        ("limit=201", "limit", "out_of_range"),
        ("limit=-5", "limit", "out_of_range"),
        ("limit=ten", "limit", "invalid_value"),
        ("unread=maybe", "unread", "invalid_value"),
        ("sort=asc", "sort", "unknown_field"),
    ];
    for (q, field, code) in cases {
        let r = app.get(&format!("{INBOX}?{q}"), &m1).await;
        bad(r, 400, "invalid_query_parameter", field, code);
    }
    // The edges are fine; an empty cursor is the first page.
    for q in ["limit=1", "limit=200", "cursor=", "unread=true&limit=200"] {
        app.get(&format!("{INBOX}?{q}"), &m1).await.expect(200);
    }
}

async fn inbox_and_reminders_speak_the_users_language(app: TestApp) {
    let l1 = app.login("L0001").await;
    let m1 = app.login("M0001").await;
    no_quiet_hours(&app, &m1).await;
    // Chinese by default.
    let n1 = notice(&app, &l1).await;
    let got = items(&app, INBOX, &m1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["kind"], "notice");
    assert_eq!(got[0]["title"], "新通知");
    assert_eq!(got[0]["body"], "您有 1 条新通知");
    assert_eq!(got[0]["link"], json!({"type": "notice", "id": n1}));
    let c = birthday_customer(&app, "M0001", "李四", today() + Duration::days(3)).await;
    run(&app, Utc::now()).await;
    let r = about(&items(&app, REMINDERS, &m1).await, c, 3);
    assert_eq!(r["title"], "客户生日提醒");
    assert_eq!(r["body"], "您有 1 位客户 3 天后过生日");
    // English from now on: new notifications, and the ones already in the inbox, read in English.
    prefs(&app, &m1, json!({"language": "en"})).await;
    let n2 = notice(&app, &l1).await;
    let got: Vec<Value> = items(&app, INBOX, &m1)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "notice")
        .collect();
    assert_eq!(
        got.iter()
            .map(|n| n["link"]["id"].clone())
            .collect::<Vec<_>>(),
        [json!(n2), json!(n1)]
    );
    for n in &got {
        assert_eq!(n["title"], "New notice", "{n}");
        assert_eq!(n["body"], "You have a new notice", "{n}");
    }
    let one = read(&app, &m1, got[1]["id"].as_i64().unwrap())
        .await
        .expect(200)
        .body;
    assert_eq!(one["title"], "New notice");
    let r = about(&items(&app, REMINDERS, &m1).await, c, 3);
    assert_eq!(r["title"], "Customer birthday");
    assert_eq!(r["body"], "A customer's birthday is in 3 days");
    let t = app.get(TODAY, &m1).await.expect(200).body;
    let r = about(t["reminders"].as_array().unwrap(), c, 3);
    assert_eq!(r["body"], "A customer's birthday is in 3 days");
    // And back to Chinese.
    prefs(&app, &m1, json!({"language": "zh-CN"})).await;
    let got = items(&app, INBOX, &m1).await;
    let n = got.iter().find(|n| n["link"]["id"] == n2).unwrap();
    assert_eq!(n["title"], "新通知");
    let r = about(&items(&app, REMINDERS, &m1).await, c, 0);
    assert_eq!(r["body"], "您有 1 位客户今天过生日");
    // Someone else's language is theirs: M0002 never chose English.
    let m2 = app.login("M0002").await;
    no_quiet_hours(&app, &m2).await;
    notice(&app, &l1).await;
    // (Only the notices: after the working day's end the scheduler run above also left M0002 a
    // work-log reminder, in Chinese too.)
    let theirs: Vec<Value> = items(&app, INBOX, &m2)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "notice")
        .collect();
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|n| n["title"] == "新通知"), "{theirs:?}");
    assert!(
        theirs.iter().all(|n| n["body"] == "您有 1 条新通知"),
        "{theirs:?}"
    );
}

async fn quiet_hours_hold_the_push_never_the_inbox(app: TestApp) {
    let l1 = app.login("L0001").await;
    let m3 = app.login("M0003").await;
    let m3_id = user_id(&app, "M0003").await;
    crate::reminders::device(&app, "M0003", "tok-m3-quiet").await;
    // Quiet from an hour ago to two hours ahead, Shanghai time.
    let local = app.clock_now() + Duration::hours(8);
    let minute = i64::from(local.hour() * 60 + local.minute());
    let hhmm = |m: i64| {
        let m = m.rem_euclid(1440);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let quiet = json!({"quiet_start": hhmm(minute - 60), "quiet_end": hhmm(minute + 120)});
    prefs(&app, &m3, quiet).await;
    let before = app.clock_now();
    let n = notice(&app, &l1).await;
    let t = task(&app, &l1, &[m3_id], None, json!({})).await;
    // Both are in the inbox at once, unread.
    let got = items(&app, INBOX, &m3).await;
    let kinds: Vec<&Value> = got.iter().map(|g| &g["kind"]).collect();
    assert_eq!(kinds, ["task_assigned", "notice"], "{got:?}");
    assert_eq!(
        (&got[0]["link"]["id"], &got[1]["link"]["id"]),
        (&json!(t), &json!(n))
    );
    assert_eq!(unread(&app, &m3).await, 2);
    assert_eq!(
        app.get(TODAY, &m3).await.expect(200).body["unread_count"],
        2
    );
    // The urgent task is pushed at once; the notice's push waits for the end of the quiet hours.
    let pushes: Vec<(String, chrono::NaiveDateTime)> = with_db(&app, move |c| {
        use fieldwork::db::schema::push_outbox;
        push_outbox::table
            .inner_join(notifications::table)
            .filter(notifications::user_id.eq(m3_id))
            .order(push_outbox::id.asc())
            .select((notifications::kind, push_outbox::next_attempt_at))
            .load(c)
            .unwrap()
    })
    .await;
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    let at = |kind: &str| pushes.iter().find(|p| p.0 == kind).unwrap().1.and_utc();
    assert!(at("task_assigned") <= before + Duration::seconds(5));
    let deferred = at("notice");
    assert!(
        deferred > before + Duration::minutes(118) && deferred <= before + Duration::minutes(121),
        "deferred to the end of the quiet hours: {deferred}"
    );
    assert_eq!(
        deferred.timestamp() % 60,
        0,
        "the quiet period ends on a minute"
    );
    read(&app, &m3, id_of(&got[1])).await.expect(200);
    assert_eq!(unread(&app, &m3).await, 1);
}

async fn reminders_list_done_and_snooze(app: TestApp) {
    let m4 = app.login("M0004").await;
    let today = today();
    let a = birthday_customer(&app, "M0004", "今天生日", today).await;
    let b = birthday_customer(&app, "M0004", "三天后生日", today + Duration::days(3)).await;
    run(&app, Utc::now()).await;
    // Default span: today and the next 7 days.
    let all = births(&app, REMINDERS, &m4).await;
    assert_eq!(all.len(), 3, "{all:?}");
    let ra = about(&all, a, 0);
    assert_eq!(ra["kind"], "customer_birthday");
    assert_eq!(ra["title"], "客户生日提醒");
    assert_eq!(ra["body"], "您有 1 位客户今天过生日");
    assert_eq!(ra["subject"], json!({"type": "customer", "id": a}));
    assert_eq!(ra["customer_name"], "今天生日");
    assert_eq!(ra["occasion_date"], day(today));
    assert_eq!(ra["fire_date"], day(today));
    assert_eq!(ra["status"], "pending");
    assert_eq!(instant(&ra["due_at"]), local_instant(today, 8, 30));
    assert_eq!(ra["snoozed_until"], Value::Null);
    assert_eq!(ra["done_at"], Value::Null);
    let rb3 = about(&all, b, 3);
    assert_eq!(rb3["fire_date"], day(today));
    assert_eq!(rb3["occasion_date"], day(today + Duration::days(3)));
    let rb0 = about(&all, b, 0);
    assert_eq!(all.last().unwrap()["id"], rb0["id"], "by due time");
    // Paged like every list: one a page, the same reminders in the same order.
    let whole = ids(&items(&app, REMINDERS, &m4).await);
    let mut paged = Vec::new();
    let mut path = format!("{REMINDERS}?limit=1");
    loop {
        let page = app.get(&path, &m4).await.expect(200).body;
        paged.extend(ids(page["items"].as_array().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{REMINDERS}?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    assert!(whole.len() >= 3);
    app.get(&format!("{REMINDERS}?limit=0"), &m4)
        .await
        .field_error(400, "limit", "out_of_range");
    let someone_elses = fieldwork::domain::paging::encode_cursor(i64::MAX);
    app.get(&format!("{REMINDERS}?cursor={someone_elses}"), &m4)
        .await
        .field_error(400, "cursor", "invalid_format");
    let (ida, idb3, idb0) = (
        ra["id"].as_i64().unwrap(),
        rb3["id"].as_i64().unwrap(),
        rb0["id"].as_i64().unwrap(),
    );
    let span =
        |from: NaiveDate, to: NaiveDate| format!("{REMINDERS}?from={}&to={}", day(from), day(to));
    let mut on_today = ids(&births(&app, &span(today, today), &m4).await);
    on_today.sort_unstable();
    let mut want = vec![ida, idb3];
    want.sort_unstable();
    assert_eq!(on_today, want);
    assert_eq!(
        ids(&births(
            &app,
            &span(today + Duration::days(1), today + Duration::days(7)),
            &m4
        )
        .await),
        [idb0]
    );
    assert_eq!(
        ids(&births(
            &app,
            &format!("{REMINDERS}?from={}", day(today + Duration::days(3))),
            &m4
        )
        .await),
        [idb0],
        "`to` defaults to `from` + 7 days"
    );
    let t = app.get(TODAY, &m4).await.expect(200).body;
    assert_eq!(t["date"], day(today));
    let mut shown = ids(&on_screen(&app, &m4).await);
    shown.sort_unstable();
    assert_eq!(shown, want, "today's reminders, not those of later days");

    // Done: gone from the list and from today; done again changes nothing; it cannot be snoozed.
    let done = app
        .post(&format!("{REMINDERS}/{ida}/done"), Some(&m4), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(done["status"], "done");
    let done_at = instant(&done["done_at"]);
    assert_eq!(ids(&births(&app, REMINDERS, &m4).await), [idb3, idb0]);
    assert_eq!(ids(&on_screen(&app, &m4).await), [idb3]);
    let again = app
        .req(
            Method::POST,
            &format!("{REMINDERS}/{ida}/done"),
            Some(&m4),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(instant(&again["done_at"]), done_at);
    let later = rfc3339(local_instant(today + Duration::days(1), 10, 0));
    app.post(
        &format!("{REMINDERS}/{ida}/snooze"),
        Some(&m4),
        &json!({"until": later}),
    )
    .await
    .problem(409, "not_editable");

    // Snooze to the day after tomorrow, 10:00: it leaves today and moves to that day.
    let until = local_instant(today + Duration::days(2), 10, 0);
    let s = app
        .post(
            &format!("{REMINDERS}/{idb3}/snooze"),
            Some(&m4),
            &json!({"until": rfc3339(until)}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(s["status"], "snoozed");
    assert_eq!(instant(&s["snoozed_until"]), until);
    assert_eq!(instant(&s["due_at"]), until);
    assert_eq!(s["notified_at"], Value::Null);
    assert!(on_screen(&app, &m4).await.is_empty());
    assert!(births(&app, &span(today, today), &m4).await.is_empty());
    let moved = births(
        &app,
        &span(today + Duration::days(2), today + Duration::days(2)),
        &m4,
    )
    .await;
    assert_eq!(ids(&moved), [idb3]);
    assert_eq!(moved[0]["status"], "snoozed");
    assert_eq!(
        ids(&births(&app, REMINDERS, &m4).await),
        [idb3, idb0],
        "by due time"
    );
    // Snoozing again moves it again.
    let sooner = local_instant(today + Duration::days(1), 9, 15);
    app.post(
        &format!("{REMINDERS}/{idb3}/snooze"),
        Some(&m4),
        &json!({"until": rfc3339(sooner)}),
    )
    .await
    .expect(200);
    assert_eq!(
        ids(&births(
            &app,
            &span(today + Duration::days(1), today + Duration::days(1)),
            &m4
        )
        .await),
        [idb3]
    );
    // The snooze ends: it is back on today's screen and in today's list.
    let ended = (Utc::now() - Duration::seconds(30)).naive_utc();
    with_db(&app, move |c| {
        diesel::update(reminders::table.find(idb3))
            .set((
                reminders::due_at.eq(ended),
                reminders::snoozed_until.eq(Some(ended)),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    let back = on_screen(&app, &m4).await;
    assert_eq!(ids(&back), [idb3]);
    assert_eq!(back[0]["status"], "snoozed");
    assert_eq!(
        ids(&births(
            &app,
            &span(local_date(ended.and_utc()), local_date(ended.and_utc())),
            &m4
        )
        .await),
        [idb3]
    );
    // Done after a snooze: gone everywhere.
    app.post(&format!("{REMINDERS}/{idb3}/done"), Some(&m4), &json!({}))
        .await
        .expect(200);
    assert!(on_screen(&app, &m4).await.is_empty());
    assert_eq!(ids(&births(&app, REMINDERS, &m4).await), [idb0]);
}

async fn snoozed_reminder_is_notified_again(app: TestApp) {
    let m5 = app.login("M0005").await;
    let today = today();
    let c = birthday_customer(&app, "M0005", "王五", today).await;
    run(&app, Utc::now()).await;
    let id = about(&items(&app, REMINDERS, &m5).await, c, 0)["id"]
        .as_i64()
        .unwrap();
    // Notified at 09:00 (due 08:30).
    run(&app, local_instant(today, 9, 0)).await;
    assert_eq!(sent(&app, id).await.len(), 1);
    let until = local_instant(today + Duration::days(1), 10, 0);
    app.post(
        &format!("{REMINDERS}/{id}/snooze"),
        Some(&m5),
        &json!({"until": rfc3339(until)}),
    )
    .await
    .expect(200);
    // Not before the snooze ends; once after it.
    run(&app, until - Duration::minutes(1)).await;
    assert_eq!(sent(&app, id).await.len(), 1);
    run(&app, until + Duration::minutes(1)).await;
    run(&app, until + Duration::minutes(2)).await;
    let got = sent(&app, id).await;
    assert_eq!(got.len(), 2, "notified again after the snooze: {got:?}");
    assert_eq!(got[1].and_utc(), until);
}

/// Delivery times of the notifications of a reminder, oldest first.
async fn sent(app: &TestApp, reminder: i64) -> Vec<chrono::NaiveDateTime> {
    with_db(app, move |c| {
        notifications::table
            .filter(notifications::reminder_id.eq(reminder))
            .order(notifications::id.asc())
            .select(notifications::deliver_at)
            .load(c)
            .unwrap()
    })
    .await
}

async fn reminders_of_others_and_unknown_ids_are_404(app: TestApp) {
    let m4 = app.login("M0004").await;
    let m5 = app.login("M0005").await;
    let l1 = app.login("L0001").await;
    let c = birthday_customer(&app, "M0004", "赵六", today()).await;
    run(&app, Utc::now()).await;
    let id = about(&items(&app, REMINDERS, &m4).await, c, 0)["id"]
        .as_i64()
        .unwrap();
    let until = json!({"until": rfc3339(Utc::now() + Duration::hours(2))});
    for who in [&m5, &l1] {
        assert!(births(&app, REMINDERS, who).await.is_empty());
        app.post(&format!("{REMINDERS}/{id}/done"), Some(who), &json!({}))
            .await
            .problem(404, "reminder_not_found");
        app.post(&format!("{REMINDERS}/{id}/snooze"), Some(who), &until)
            .await
            .problem(404, "reminder_not_found");
    }
    for unknown in [id + 1000, i64::MAX] {
        app.post(
            &format!("{REMINDERS}/{unknown}/done"),
            Some(&m4),
            &json!({}),
        )
        .await
        .problem(404, "reminder_not_found");
        app.post(&format!("{REMINDERS}/{unknown}/snooze"), Some(&m4), &until)
            .await
            .problem(404, "reminder_not_found");
    }
    for bad_id in ["abc", "0"] {
        bad(
            app.post(&format!("{REMINDERS}/{bad_id}/done"), Some(&m4), &json!({}))
                .await,
            400,
            "invalid_path_parameter",
            "id",
            "invalid_format",
        );
    }
    // Untouched by all that.
    let r = about(&items(&app, REMINDERS, &m4).await, c, 0);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["snoozed_until"], Value::Null);
}

async fn bad_reminder_queries_and_snoozes_are_rejected(app: TestApp) {
    let m4 = app.login("M0004").await;
    let today = today();
    let c = birthday_customer(&app, "M0004", "孙七", today).await;
    run(&app, Utc::now()).await;
    let id = about(&items(&app, REMINDERS, &m4).await, c, 0)["id"]
        .as_i64()
        .unwrap();
    let d = |n: i64| day(today + Duration::days(n));
    let cases = [
        (format!("from={}", "2026-02-30"), "from", "invalid_value"),
        ("from=today".to_owned(), "from", "invalid_value"),
        ("to=2026-1-5x".to_owned(), "to", "invalid_value"),
        (format!("from={}&to={}", d(0), d(-1)), "to", "out_of_range"),
        (format!("to={}", d(-1)), "to", "out_of_range"),
        (format!("from={}&to={}", d(0), d(93)), "to", "out_of_range"),
        ("days=3".to_owned(), "days", "unknown_field"),
    ];
    for (q, field, code) in cases {
        let r = app.get(&format!("{REMINDERS}?{q}"), &m4).await;
        bad(r, 400, "invalid_query_parameter", field, code);
    }
    app.get(&format!("{REMINDERS}?from={}&to={}", d(0), d(92)), &m4)
        .await
        .expect(200);
    // Snooze bodies.
    let path = format!("{REMINDERS}/{id}/snooze");
    let now = Utc::now();
    let cases = [
        (
            json!({"until": rfc3339(now - Duration::minutes(1))}),
            "until",
            "out_of_range",
        ),
        (
            json!({"until": rfc3339(now - Duration::days(400))}),
            "until",
            "out_of_range",
        ),
        (
            json!({"until": rfc3339(now + Duration::days(31))}),
            "until",
            "out_of_range",
        ),
        (json!({"until": "tomorrow"}), "until", "invalid_value"),
        (
            json!({"until": "2026-13-01T10:00:00Z"}),
            "until",
            "invalid_value",
        ),
        (
            json!({"until": "2026-12-01 10:00"}),
            "until",
            "invalid_value",
        ),
        (json!({"until": 1_800_000_000}), "until", "invalid_type"),
        (json!({"until": null}), "until", "invalid_type"),
        (json!({}), "until", "required"),
        (
            json!({"until": rfc3339(now + Duration::hours(1)), "minutes": 5}),
            "minutes",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        let r = app.post(&path, Some(&m4), &body).await;
        bad(r, 422, "validation_failed", field, code);
    }
    let raw = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&m4)
        .header("content-type", "application/json")
        .body("{\"until\": ")
        .send()
        .await
        .unwrap();
    TestApp::read(raw).await.problem(400, "malformed_json");
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&m4)
        .body("until=tomorrow")
        .send()
        .await
        .unwrap();
    assert_eq!(TestApp::read(r).await.status.as_u16(), 415);
    // Nothing changed.
    let r = about(&items(&app, REMINDERS, &m4).await, c, 0);
    assert_eq!(r["status"], "pending");
    assert_eq!(r["snoozed_until"], Value::Null);
}

async fn today_shows_each_section(app: TestApp) {
    let m6 = app.login("M0006").await;
    let l1 = app.login("L0001").await;
    let m6_id = user_id(&app, "M0006").await;
    let today = today();
    let empty = app.get(TODAY, &m6).await.expect(200).body;
    assert_eq!(
        empty,
        json!({"date": day(today), "reminders": [], "tasks": [], "open_visit": null,
               "unread_count": 0, "birthdays_this_week": []})
    );

    // Open visit: after a check-in, until the check-out.
    let visited = seed_customer(&app, "M0006", "走访客户", Some(NJ)).await;
    let v = app
        .post(
            "/api/v1/visits",
            Some(&m6),
            &json!({"customer_id": visited, "purpose": "介绍大额存单", "phone_time": rfc3339(Utc::now()),
                    "latitude": NJ.0, "longitude": NJ.1, "accuracy_m": 15.0, "datum": "wgs84"}),
        )
        .await
        .expect(201)
        .body;
    let visit = v["id"].as_i64().unwrap();
    let t = app.get(TODAY, &m6).await.expect(200).body;
    assert_eq!(t["open_visit"]["id"], visit);
    assert_eq!(t["open_visit"]["customer_id"], visited);
    assert_eq!(
        instant(&t["open_visit"]["checked_in_at"]),
        instant(&v["checked_in_at"])
    );

    // Tasks: overdue and due today, by due time; not later ones, not done ones, not someone else's.
    let now = Utc::now();
    let end_of_today = local_instant(today + Duration::days(1), 0, 0);
    let soon = now + Duration::minutes(5);
    let from_leader = task(&app, &l1, &[m6_id], Some(soon), json!({"priority": "high"})).await;
    let overdue = task(
        &app,
        &m6,
        &[],
        Some(now + Duration::hours(1)),
        json!({"customer_id": visited}),
    )
    .await;
    let yesterday = (now - Duration::days(1)).naive_utc().trunc_subsecs(6);
    with_db(&app, move |c| {
        diesel::update(tasks::table.find(overdue))
            .set(tasks::due_at.eq(Some(yesterday)))
            .execute(c)
            .unwrap();
    })
    .await;
    task(&app, &m6, &[], Some(now + Duration::days(3)), json!({})).await;
    task(&app, &m6, &[], None, json!({})).await;
    let finished = task(&app, &m6, &[], Some(now + Duration::minutes(3)), json!({})).await;
    app.post(
        &format!("/api/v1/tasks/{finished}/done"),
        Some(&m6),
        &json!({}),
    )
    .await
    .expect(200);
    let m5 = app.login("M0005").await;
    task(&app, &m5, &[], Some(now + Duration::minutes(5)), json!({})).await;
    let t = app.get(TODAY, &m6).await.expect(200).body;
    let got = t["tasks"].as_array().unwrap();
    let mut want = vec![overdue];
    if soon < end_of_today {
        want.push(from_leader);
    }
    assert_eq!(ids(got), want, "{got:?}");
    assert_eq!(got[0]["overdue"], true);
    assert_eq!(got[0]["customer_id"], visited);
    assert_eq!(got[0]["title"], "回访客户");
    assert_eq!(instant(&got[0]["due_at"]).naive_utc(), yesterday);
    if let Some(t) = got.get(1) {
        assert_eq!(t["overdue"], false);
        assert_eq!(t["priority"], "high");
        assert_eq!(t["customer_id"], Value::Null);
    }
    // The leader's assignment is the one unread notification.
    assert_eq!(t["unread_count"], 1);
    assert_eq!(unread(&app, &m6).await, 1);

    // Birthdays this week (Monday to Sunday): solar and lunar, only the caller's, not archived ones.
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let sunday = monday + Duration::days(6);
    let in_two = today + Duration::days(2);
    let x = birthday_customer(&app, "M0006", "两天后", in_two).await;
    let y = birthday_customer(&app, "M0006", "周一", monday).await;
    let z = birthday_customer(&app, "M0006", "下周一", monday + Duration::days(7)).await;
    let lunar = lunar_keys(today)[0];
    let w = seed_customer(&app, "M0006", "农历今天", None).await;
    with_db(&app, move |c| {
        diesel::update(customers::table.find(w))
            .set((
                customers::birthday_md.eq(None::<String>),
                customers::lunar_month.eq(Some(lunar.month)),
                customers::lunar_day.eq(Some(lunar.day)),
                customers::lunar_leap.eq(lunar.leap),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    birthday_customer(&app, "M0001", "别人的客户", today).await;
    let archived = birthday_customer(&app, "M0006", "已归档", today).await;
    with_db(&app, move |c| {
        diesel::update(customers::table.find(archived))
            .set(customers::archived_at.eq(Some(Utc::now().naive_utc())))
            .execute(c)
            .unwrap();
    })
    .await;
    let mut want: Vec<(NaiveDate, i64, bool)> = vec![(monday, y, false), (today, w, true)];
    if in_two <= sunday {
        want.push((in_two, x, false));
    }
    want.sort_unstable();
    let t = app.get(TODAY, &m6).await.expect(200).body;
    let got: Vec<(NaiveDate, i64, bool)> = t["birthdays_this_week"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["date"].as_str().unwrap().parse().unwrap(),
                b["customer_id"].as_i64().unwrap(),
                b["lunar"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want, "z ({z}) is next week");
    let names: Vec<&str> = t["birthdays_this_week"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"周一") && names.contains(&"农历今天"),
        "{names:?}"
    );

    // Reminders: the scheduler's for today (the lunar birthday among them), none of a later day.
    run(&app, Utc::now()).await;
    let t = app.get(TODAY, &m6).await.expect(200).body;
    let rs = t["reminders"].as_array().unwrap();
    about(rs, w, 0);
    assert!(
        rs.iter()
            .all(|r| r["fire_date"].as_str().unwrap() <= day(today).as_str()),
        "{rs:?}"
    );
    assert_eq!(
        t["unread_count"],
        unread(&app, &m6).await,
        "the badge agrees"
    );

    // Check-out closes the visit.
    app.post(
        &format!("/api/v1/visits/{visit}/checkout"),
        Some(&m6),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(
        app.get(TODAY, &m6).await.expect(200).body["open_visit"],
        Value::Null
    );
}

/// A new customer "寿星" of the caller, born in 1988 (a leap year, so 29 February exists) on `day`'s month
/// and day: (id, path). Created through the API (not `birthday_customer`, which writes the row straight
/// into the database) so that it takes its `seq` as every real write does: the home screen's kept answers
/// are keyed by it.
async fn api_birthday_customer(app: &TestApp, token: &str, day: NaiveDate) -> (i64, String) {
    let born = format!("1988-{:02}-{:02}", day.month(), day.day());
    let body = json!({"kind": "individual", "name": "寿星", "birthday": born});
    let c = app
        .post("/api/v1/customers", Some(token), &body)
        .await
        .expect(201);
    let id = c.body["id"].as_i64().unwrap();
    (id, format!("/api/v1/customers/{id}"))
}

/// The names in this week's birthdays of `/me/today`.
async fn birthday_names(app: &TestApp, token: &str) -> Vec<String> {
    let t = app.get(TODAY, token).await.expect(200).body;
    t["birthdays_this_week"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The server keeps each manager's week of birthdays while their customers stay the same: every change
/// through the API (new customer, rename, birthday moved away and back, archive, transfer in and out)
/// shows on the very next home screen.
async fn today_birthdays_follow_every_change_at_once(app: TestApp) {
    let m6 = app.login("M0006").await;
    let m5 = app.login("M0005").await;
    let l1 = app.login("L0001").await;
    let today = today();
    let on = |d: NaiveDate| format!("1988-{:02}-{:02}", d.month(), d.day());
    let next_week = today + Duration::days(7);
    assert!(birthday_names(&app, &m6).await.is_empty());
    let (id, path) = api_birthday_customer(&app, &m6, today).await;
    assert_eq!(birthday_names(&app, &m6).await, ["寿星"]);
    app.patch(&path, &m6, &json!({"name": "老寿星"}))
        .await
        .expect(200);
    assert_eq!(birthday_names(&app, &m6).await, ["老寿星"]);
    app.patch(&path, &m6, &json!({"birthday": on(next_week)}))
        .await
        .expect(200);
    assert!(birthday_names(&app, &m6).await.is_empty());
    app.patch(&path, &m6, &json!({"birthday": on(today)}))
        .await
        .expect(200);
    assert_eq!(birthday_names(&app, &m6).await, ["老寿星"]);

    // A transfer moves the birthday to the new manager's home screen at once, and back again.
    assert!(birthday_names(&app, &m5).await.is_empty());
    let m5_id = user_id(&app, "M0005").await;
    let m6_id = user_id(&app, "M0006").await;
    for (to, gains, loses) in [(m5_id, &m5, &m6), (m6_id, &m6, &m5)] {
        transfer_customer(&app, &l1, id, to).await;
        assert_eq!(birthday_names(&app, gains).await, ["老寿星"]);
        assert!(birthday_names(&app, loses).await.is_empty());
    }

    // Archived: gone, also when it is not the manager's latest-changed customer (a newer one stays).
    let other = json!({"kind": "individual", "name": "邻居"});
    app.post("/api/v1/customers", Some(&m6), &other)
        .await
        .expect(201);
    assert_eq!(birthday_names(&app, &m6).await, ["老寿星"]);
    app.req(Method::DELETE, &path, Some(&m6), None)
        .await
        .expect(204);
    assert!(birthday_names(&app, &m6).await.is_empty());
}

/// The customer's reminder at lead 0 as `/me/today` shows it, checked against the same reminder in the
/// reminders list (which renders every row afresh).
async fn today_reminder(app: &TestApp, token: &str, customer: i64) -> Value {
    let today = today();
    let home = app.get(TODAY, token).await.expect(200).body;
    let shown = about(home["reminders"].as_array().unwrap(), customer, 0);
    let list = format!("{REMINDERS}?from={}&to={}", day(today), day(today));
    let fresh = about(&items(app, &list, token).await, customer, 0);
    assert_eq!(
        shown, fresh,
        "the home screen shows the reminder as it is now"
    );
    shown
}

/// The server keeps each reminder rendered by version: a notification, a customer renamed, transferred or
/// archived and a change of language each show on the very next home screen.
async fn today_reminders_follow_every_change_at_once(app: TestApp) {
    let m6 = app.login("M0006").await;
    let today = today();
    let (id, path) = api_birthday_customer(&app, &m6, today).await;
    // Generated before it is due (08:30), so not yet notified.
    run(&app, local_instant(today, 0, 1)).await;
    let r = today_reminder(&app, &m6, id).await;
    assert_eq!(r["notified_at"], Value::Null);
    assert_eq!(r["customer_name"], "寿星");
    run(&app, local_instant(today, 9, 0)).await;
    let r = today_reminder(&app, &m6, id).await;
    assert!(r["notified_at"].is_string(), "{r}");
    app.patch(&path, &m6, &json!({"name": "老寿星"}))
        .await
        .expect(200);
    assert_eq!(
        today_reminder(&app, &m6, id).await["customer_name"],
        "老寿星"
    );
    let zh = today_reminder(&app, &m6, id).await["title"].clone();
    prefs(&app, &m6, json!({"language": "en"})).await;
    let en = today_reminder(&app, &m6, id).await["title"].clone();
    assert_ne!(en, zh);
    prefs(&app, &m6, json!({"language": "zh-CN"})).await;
    assert_eq!(today_reminder(&app, &m6, id).await["title"], zh);
    // Transferred: the next pass hands the reminder to the new manager (not yet notified to them), and
    // the old manager's home screen no longer lists it.
    let l1 = app.login("L0001").await;
    let m5 = app.login("M0005").await;
    transfer_customer(&app, &l1, id, user_id(&app, "M0005").await).await;
    run(&app, local_instant(today, 9, 1)).await;
    today_reminder(&app, &m5, id).await;
    let old = app.get(TODAY, &m6).await.expect(200).body;
    assert!(
        !old["reminders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["customer_id"] == id),
        "{old}"
    );
    // Archived: the name is gone at once (the next scheduler pass cancels the reminder).
    app.req(Method::DELETE, &path, Some(&m5), None)
        .await
        .expect(204);
    assert_eq!(
        today_reminder(&app, &m5, id).await["customer_name"],
        Value::Null
    );
}
