//! The scheduler's rules beyond the date kinds: task reminders per assignee, "work log missing" on
//! working days only, each user's reminder preferences, reminders replaced when a date is edited, the
//! important-change notice to leaders, and the morning digest.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::json;

use fieldwork::db::schema::{
    customers, devices, notifications, push_outbox, reminders, tasks, users, worklogs,
};
use fieldwork::scheduler::{Settings, tick};

use crate::backend_tests;
use crate::helpers::{TestApp, seed_customer};
use crate::inbox::with_db;
use crate::inbox_reminders::user_id;

backend_tests!(
    task_reminders_reach_each_open_assignee,
    worklog_missing_on_working_days_only,
    preferences_mute_kinds_and_choose_leads,
    edited_and_archived_subjects_replace_their_reminders,
    important_change_reaches_the_leaders_at_once,
    the_digest_bundles_the_morning_and_later_ones_push_alone,
);

/// `h:m` Asia/Shanghai on the date, as UTC.
fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap() - Duration::hours(8)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn run(app: &TestApp, now: DateTime<Utc>) {
    tick(&app.db, now, Settings::default()).await.unwrap();
}

/// Gives these customers a solar birthday on `md` (`MM-DD`), straight in the database.
async fn birthday_on(app: &TestApp, ids: Vec<i64>, md: &'static str) {
    with_db(app, move |c| {
        diesel::update(customers::table.filter(customers::id.eq_any(ids)))
            .set(customers::birthday_md.eq(md))
            .execute(c)
            .unwrap();
    })
    .await;
}

/// (user id, lead, fire date, status) of the reminders of `kind` on a subject, by user and lead.
async fn rows(
    app: &TestApp,
    kind: &'static str,
    subject_type: &'static str,
    subject_id: i64,
) -> Vec<(i64, i32, NaiveDate, String)> {
    with_db(app, move |c| {
        reminders::table
            .filter(reminders::kind.eq(kind))
            .filter(reminders::subject_type.eq(subject_type))
            .filter(reminders::subject_id.eq(subject_id))
            .order((reminders::user_id.asc(), reminders::lead_days.asc()))
            .select((
                reminders::user_id,
                reminders::lead_days,
                reminders::fire_date,
                reminders::status,
            ))
            .load(c)
            .unwrap()
    })
    .await
}

/// Kinds of the notifications a user has, oldest first.
async fn notification_kinds(app: &TestApp, user: i64) -> Vec<String> {
    with_db(app, move |c| {
        notifications::table
            .filter(notifications::user_id.eq(user))
            .order(notifications::id.asc())
            .select(notifications::kind)
            .load(c)
            .unwrap()
    })
    .await
}

async fn task_reminders_reach_each_open_assignee(app: TestApp) {
    let (m1, m2) = (user_id(&app, "M0001").await, user_id(&app, "M0002").await);
    let l1 = app.login("L0001").await;
    // Due 10 December 2026, 10:00 China time. The API takes only a due time in the future, and the
    // scheduler runs below at fixed instants of that week: the task is made due tomorrow, then moved there.
    let due = local(2026, 12, 10, 10, 0);
    let id = app
        .post(
            "/api/v1/tasks",
            Some(&l1),
            &json!({"title": "回访到期客户", "due_at": (Utc::now() + Duration::days(1)).to_rfc3339(),
                    "priority": "high", "assignee_ids": [m1, m2]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    with_db(&app, move |c| {
        diesel::update(tasks::table.find(id))
            .set(tasks::due_at.eq(Some(due.naive_utc())))
            .execute(c)
            .unwrap();
    })
    .await;
    // Two days before: nothing yet for "due"; the window holds it though (fire date 9 December).
    run(&app, local(2026, 12, 8, 9, 0)).await;
    let due_rows = rows(&app, "task_due", "task", id).await;
    assert_eq!(
        due_rows,
        [
            (m1, 1, date(2026, 12, 9), "pending".to_owned()),
            (m2, 1, date(2026, 12, 9), "pending".to_owned()),
        ],
        "one per assignee, the day before"
    );
    // M0001 finishes it: their reminders are cancelled, M0002's stay.
    let m1_token = app.login("M0001").await;
    app.post(
        &format!("/api/v1/tasks/{id}/done"),
        Some(&m1_token),
        &json!({}),
    )
    .await
    .expect(200);
    // The morning before: M0002 is reminded; the overdue reminder fires at the due time itself.
    run(&app, local(2026, 12, 9, 9, 0)).await;
    run(&app, local(2026, 12, 10, 10, 1)).await;
    let overdue = rows(&app, "task_overdue", "task", id).await;
    assert_eq!(
        overdue,
        [
            (m1, 0, date(2026, 12, 10), "cancelled".to_owned()),
            (m2, 0, date(2026, 12, 10), "pending".to_owned()),
        ],
        "the finished assignee's reminders are cancelled"
    );
    let n2 = notification_kinds(&app, m2).await;
    assert!(n2.contains(&"task_due".to_owned()), "{n2:?}");
    assert!(n2.contains(&"task_overdue".to_owned()), "{n2:?}");
    let n1 = notification_kinds(&app, m1).await;
    assert!(
        !n1.contains(&"task_due".to_owned()),
        "done: no reminder: {n1:?}"
    );
    assert!(!n1.contains(&"task_overdue".to_owned()));
    // Ticking again changes nothing.
    run(&app, local(2026, 12, 10, 10, 2)).await;
    assert_eq!(rows(&app, "task_overdue", "task", id).await.len(), 2);
}

async fn worklog_missing_on_working_days_only(app: TestApp) {
    let m1 = user_id(&app, "M0001").await;
    let managers: i64 = with_db(&app, |c| {
        users::table
            .filter(users::role.eq("manager"))
            .filter(users::active.eq(true))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    let count = |d: NaiveDate| {
        let app = &app;
        async move {
            with_db(app, move |c| {
                reminders::table
                    .filter(reminders::kind.eq("worklog_missing"))
                    .filter(reminders::occasion_date.eq(d))
                    .count()
                    .get_result::<i64>(c)
                    .unwrap()
            })
            .await
        }
    };
    // Tuesday 1 December 2026: M0001 filed a log, the others did not.
    let tuesday = date(2026, 12, 1);
    with_db(&app, move |c| {
        let now = Utc::now().naive_utc();
        diesel::insert_into(worklogs::table)
            .values((
                worklogs::manager_id.eq(m1),
                worklogs::log_date.eq(tuesday),
                worklogs::content.eq("拜访三家企业"),
                worklogs::visit_ids.eq("[]"),
                worklogs::seq.eq(0_i64),
                worklogs::created_at.eq(now),
                worklogs::updated_at.eq(now),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    run(&app, local(2026, 12, 1, 17, 59)).await;
    assert_eq!(count(tuesday).await, 0, "not before 18:00");
    run(&app, local(2026, 12, 1, 18, 0)).await;
    assert_eq!(count(tuesday).await, managers - 1, "everyone without a log");
    assert!(rows(&app, "worklog_missing", "user", m1).await.is_empty());
    run(&app, local(2026, 12, 1, 18, 5)).await;
    assert_eq!(count(tuesday).await, managers - 1, "once");
    // A public holiday (National Day) and a Sunday: nothing. A 调休 Saturday (10 October): reminded.
    for (d, want) in [
        (date(2026, 10, 1), 0),
        (date(2026, 11, 29), 0),
        (date(2026, 10, 10), managers),
    ] {
        run(&app, local(2026, d.month0() + 1, d.day0() + 1, 18, 30)).await;
        assert_eq!(count(d).await, want, "{d}");
    }
}

async fn preferences_mute_kinds_and_choose_leads(app: TestApp) {
    let (m1, m2) = (user_id(&app, "M0001").await, user_id(&app, "M0002").await);
    let c1 = seed_customer(&app, "M0001", "王一", None).await;
    let c2 = seed_customer(&app, "M0002", "王二", None).await;
    // Both customers: birthday on 5 December; a deposit maturing 20 December.
    birthday_on(&app, vec![c1, c2], "12-05").await;
    let h1 = holding(&app, c1, date(2026, 12, 20)).await;
    let h2 = holding(&app, c2, date(2026, 12, 20)).await;
    let t1 = app.login("M0001").await;
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(&t1),
        Some(&json!({"kinds": [
            {"kind": "customer_birthday", "enabled": false},
            {"kind": "holding_maturity", "enabled": true, "lead_days": [10]},
        ]})),
    )
    .await
    .expect(200);
    run(&app, local(2026, 12, 4, 9, 0)).await;
    // M0001: birthday off, so its reminder (on the day, 5 December) is muted; M0002 keeps the default.
    let b1 = rows(&app, "customer_birthday", "customer", c1).await;
    assert!(
        !b1.is_empty() && b1.iter().all(|r| r.3 == "muted"),
        "{b1:?}"
    );
    let b2 = rows(&app, "customer_birthday", "customer", c2).await;
    assert!(
        !b2.is_empty() && b2.iter().all(|r| r.3 == "pending" && r.0 == m2),
        "{b2:?}"
    );
    // M0001 chose 10 days before (fires 10 December, in the window) instead of 7 and 1.
    let leads = |h: i64| {
        let app = &app;
        async move {
            rows(app, "holding_maturity", "holding", h)
                .await
                .into_iter()
                .map(|r| (r.1, r.3))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(leads(h1).await, [(10, "pending".to_owned())]);
    assert_eq!(
        leads(h2).await,
        [(10, "muted".to_owned())],
        "M0002 did not choose the 10-day lead: muted"
    );
    run(&app, local(2026, 12, 12, 9, 0)).await;
    assert_eq!(
        leads(h1).await,
        [
            (1, "muted".to_owned()),
            (7, "muted".to_owned()),
            (10, "pending".to_owned())
        ],
        "the default leads are muted for M0001"
    );
    assert_eq!(
        leads(h2).await,
        [
            (1, "pending".to_owned()),
            (7, "pending".to_owned()),
            (10, "muted".to_owned())
        ],
        "M0002: the defaults"
    );
    // Nothing muted reaches the inbox; the chosen lead does.
    let kinds = notification_kinds(&app, m1).await;
    assert!(
        !kinds.contains(&"customer_birthday".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "holding_maturity").count(),
        1,
        "{kinds:?}"
    );
    // Back to the defaults: what has not passed is unmuted, the past birthday stays silent.
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(&t1),
        Some(&json!({"kinds": []})),
    )
    .await
    .expect(200);
    run(&app, local(2026, 12, 12, 9, 5)).await;
    assert_eq!(
        leads(h1).await,
        [
            (1, "pending".to_owned()),
            (7, "pending".to_owned()),
            (10, "pending".to_owned())
        ],
        "7 and 1 back on; 10 was already sent"
    );
    let b1 = rows(&app, "customer_birthday", "customer", c1).await;
    assert!(b1.iter().all(|r| r.3 == "muted"), "{b1:?}");
    // A chosen lead dropped before it fired is muted too: 20 days before a maturity on 13 January.
    let h3 = holding(&app, c1, date(2027, 1, 13)).await;
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(&t1),
        Some(&json!({"kinds": [{"kind": "holding_maturity", "enabled": true, "lead_days": [20, 7, 1]}]})),
    )
    .await
    .expect(200);
    run(&app, local(2026, 12, 18, 9, 0)).await;
    assert_eq!(leads(h3).await, [(20, "pending".to_owned())]);
    app.req(
        Method::PUT,
        "/api/v1/me/preferences",
        Some(&t1),
        Some(&json!({"kinds": []})),
    )
    .await
    .expect(200);
    run(&app, local(2026, 12, 18, 9, 1)).await;
    assert_eq!(leads(h3).await, [(20, "muted".to_owned())]);
}

/// A time deposit of `customer` maturing on `maturity`.
async fn holding(app: &TestApp, customer: i64, maturity: NaiveDate) -> i64 {
    let manager: i64 = with_db(app, move |c| {
        customers::table
            .find(customer)
            .select(customers::manager_id)
            .first(c)
            .unwrap()
    })
    .await;
    let employee_no: String = with_db(app, move |c| {
        users::table
            .find(manager)
            .select(users::employee_no)
            .first(c)
            .unwrap()
    })
    .await;
    let token = app.login(&employee_no).await;
    app.post(
        &format!("/api/v1/customers/{customer}/holdings"),
        Some(&token),
        &json!({"product_type": "time_deposit", "product_name": "三年期定期存款", "amount": "100000.00",
                "open_date": "2025-12-20", "maturity_date": maturity.to_string()}),
    )
    .await
    .expect(201)
    .body["id"]
    .as_i64()
    .unwrap()
}

async fn edited_and_archived_subjects_replace_their_reminders(app: TestApp) {
    let cust = seed_customer(&app, "M0001", "李四", None).await;
    let h = holding(&app, cust, date(2026, 12, 20)).await;
    let t1 = app.login("M0001").await;
    app.req(
        Method::PATCH,
        &format!("/api/v1/customers/{cust}"),
        Some(&t1),
        Some(&json!({"birthday": "1980-12-15"})),
    )
    .await
    .expect(200);
    run(&app, local(2026, 12, 12, 9, 0)).await;
    let before = rows(&app, "customer_birthday", "customer", cust).await;
    assert_eq!(before.len(), 2, "3 days before and on the day: {before:?}");
    assert_eq!(
        rows(&app, "holding_maturity", "holding", h).await.len(),
        2,
        "7 days and 1 day before the 20th"
    );
    // The birthday was wrong: it is 16 December. The pending reminders go, the next pass makes new ones.
    app.req(
        Method::PATCH,
        &format!("/api/v1/customers/{cust}"),
        Some(&t1),
        Some(&json!({"birthday": "1980-12-16"})),
    )
    .await
    .expect(200);
    let pending_now: Vec<_> = rows(&app, "customer_birthday", "customer", cust)
        .await
        .into_iter()
        .filter(|r| r.3 == "pending" && r.2 > date(2026, 12, 12))
        .collect();
    assert!(pending_now.is_empty(), "{pending_now:?}");
    run(&app, local(2026, 12, 12, 9, 5)).await;
    let fires: Vec<NaiveDate> = rows(&app, "customer_birthday", "customer", cust)
        .await
        .into_iter()
        .filter(|r| r.3 == "pending")
        .map(|r| r.2)
        .collect();
    assert!(
        fires.contains(&date(2026, 12, 13)),
        "3 days before the 16th: {fires:?}"
    );
    assert!(fires.contains(&date(2026, 12, 16)), "{fires:?}");
    assert!(!fires.contains(&date(2026, 12, 15)), "{fires:?}");
    // Archiving the holding drops its pending reminder; the next pass does not bring it back.
    app.req(
        Method::DELETE,
        &format!("/api/v1/customers/{cust}/holdings/{h}"),
        Some(&t1),
        None,
    )
    .await
    .expect(204);
    run(&app, local(2026, 12, 13, 9, 0)).await;
    let left: Vec<_> = rows(&app, "holding_maturity", "holding", h)
        .await
        .into_iter()
        .filter(|r| r.3 == "pending")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

async fn important_change_reaches_the_leaders_at_once(app: TestApp) {
    let (l1, l2) = (user_id(&app, "L0001").await, user_id(&app, "L0002").await);
    let cust = seed_customer(&app, "M0001", "赵总", Some((39.9, 116.4))).await;
    let t1 = app.login("M0001").await;
    let visit = app
        .post(
            "/api/v1/visits",
            Some(&t1),
            &json!({"customer_id": cust, "purpose": "走访", "phone_time": Utc::now().to_rfc3339(),
                    "latitude": 39.9, "longitude": 116.4, "accuracy_m": 10.0, "datum": "wgs84"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let report = json!({"persons_met": "赵总", "summary": "介绍理财", "needs": "无", "outcome": "待跟进",
                        "important_change": false});
    app.req(
        Method::PUT,
        &format!("/api/v1/visits/{visit}/report"),
        Some(&t1),
        Some(&report),
    )
    .await
    .expect(201);
    assert!(
        !notification_kinds(&app, l1)
            .await
            .contains(&"important_change".to_owned())
    );
    let mut changed = report.clone();
    changed["important_change"] = json!(true);
    changed["important_change_text"] = json!("企业准备搬迁到外省");
    for _ in 0..2 {
        app.req(
            Method::PUT,
            &format!("/api/v1/visits/{visit}/report"),
            Some(&t1),
            Some(&changed),
        )
        .await
        .expect(200);
    }
    let kinds = notification_kinds(&app, l1).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "important_change").count(),
        1,
        "once, however often the report is saved: {kinds:?}"
    );
    assert!(
        notification_kinds(&app, l2).await.is_empty(),
        "another sub-branch's leader"
    );
    // Urgent: visible at once whatever the hour, and the text names no customer.
    let lt = app.login("L0001").await;
    let inbox = app.get("/api/v1/notifications", &lt).await.expect(200);
    let item = inbox.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "important_change")
        .cloned()
        .expect("in the inbox now");
    assert_eq!(item["link"], json!({"type": "visit", "id": visit}));
    assert!(!inbox.text.contains("赵总") && !inbox.text.contains("搬迁"));
}

async fn the_digest_bundles_the_morning_and_later_ones_push_alone(app: TestApp) {
    let m1 = user_id(&app, "M0001").await;
    let a = seed_customer(&app, "M0001", "甲", None).await;
    let b = seed_customer(&app, "M0001", "乙", None).await;
    birthday_on(&app, vec![a, b], "12-07").await;
    with_db(&app, move |c| {
        let now = Utc::now().naive_utc();
        diesel::insert_into(devices::table)
            .values((
                devices::user_id.eq(m1),
                devices::provider.eq("fcm"),
                devices::token.eq("digest-test-token"),
                devices::platform.eq("android"),
                devices::created_at.eq(now),
                devices::updated_at.eq(now),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    // 08:30 on 7 December: two birthdays today → one digest carrying "2 个生日", the reminders inbox-only.
    run(&app, local(2026, 12, 7, 8, 30)).await;
    let digest: Vec<(String, bool)> = with_db(&app, move |c| {
        notifications::table
            .filter(notifications::user_id.eq(m1))
            .order(notifications::id.asc())
            .select((
                notifications::kind,
                diesel::dsl::exists(
                    push_outbox::table.filter(push_outbox::notification_id.eq(notifications::id)),
                ),
            ))
            .load(c)
            .unwrap()
    })
    .await;
    // The two birthday reminders of today (the 3-day ones fired earlier in the window are not due yet).
    let pushed: Vec<(&str, bool)> = digest.iter().map(|d| (d.0.as_str(), d.1)).collect();
    assert_eq!(
        pushed,
        [
            ("customer_birthday", false),
            ("customer_birthday", false),
            ("digest", true)
        ],
        "the digest is the one push"
    );
    let body: String = with_db(&app, move |c| {
        notifications::table
            .filter(notifications::user_id.eq(m1))
            .filter(notifications::kind.eq("digest"))
            .select(notifications::body)
            .first(c)
            .unwrap()
    })
    .await;
    assert!(body.contains("2 个生日"), "{body}");
    // A third birthday snoozed into the afternoon falls due after the digest: it has a notification of
    // its own rather than a second digest.
    let c3 = seed_customer(&app, "M0001", "丙", None).await;
    birthday_on(&app, vec![c3], "12-07").await;
    run(&app, local(2026, 12, 7, 14, 0)).await;
    let outbox: i64 = with_db(&app, move |c| {
        push_outbox::table
            .inner_join(notifications::table)
            .filter(notifications::user_id.eq(m1))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(outbox, 2, "the digest and the late reminder");
    let kinds = notification_kinds(&app, m1).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "digest").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "customer_birthday").count(),
        3,
        "{kinds:?}"
    );
}
