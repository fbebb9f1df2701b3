//! The scheduler and the dispatcher, at chosen instants (never sleeping): each date kind at each lead
//! (lunar birthdays, 29 February in common and leap years, the year boundary, a maturity on a holiday),
//! exactly-once under repeated and concurrent ticks, reminders following transfers and archiving, and push
//! delivery to the fake FCM server — PII-free payloads, dead tokens, retries, and lease expiry after a crash.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::json;

use fieldwork::clock::SystemClock;
use fieldwork::db::repo::notifications::{Planned, notify};
use fieldwork::db::schema::{customers, devices, notifications, push_outbox, reminders, users};
use fieldwork::domain::reminders::Kind;
use fieldwork::push::outbox::{DispatchSettings, dispatch_once, lease};
use fieldwork::push::{FcmGateway, PushGateway};
use fieldwork::scheduler::{Settings, tick};

use crate::backend_tests;
use crate::fake_fcm::{FakeFcm, Mode, Target};
use crate::helpers::{TestApp, seed_customer, transfer_customer};

backend_tests!(
    birthdays_at_each_lead_solar_lunar_and_29_february,
    maturities_and_loans_at_each_lead,
    ticks_are_idempotent_and_concurrent_safe,
    reminders_follow_transfers_and_archiving,
    due_reminders_reach_the_phone_without_pii,
    dead_tokens_retries_and_lease_expiry,
    quiet_hours_defer_and_urgent_bypasses,
);

/// 09:00 Asia/Shanghai on `d`.
fn morning(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 1, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub async fn db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut fieldwork::db::DbConn) -> T + Send + 'static,
) -> T {
    let pool = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get_sync().unwrap();
        f(&mut conn)
    })
    .await
    .unwrap()
}

/// A customer of `manager` with this solar `MM-DD` (or none) and lunar birthday (or none).
async fn customer(
    app: &TestApp,
    manager: &str,
    md: Option<&str>,
    lunar: Option<(i32, i32, bool)>,
) -> i64 {
    let id = seed_customer(app, manager, "王小明", None).await;
    let md = md.map(str::to_owned);
    db(app, move |c| {
        diesel::update(customers::table.find(id))
            .set((
                customers::birthday_md.eq(md),
                customers::lunar_month.eq(lunar.map(|l| l.0)),
                customers::lunar_day.eq(lunar.map(|l| l.1)),
                customers::lunar_leap.eq(lunar.is_some_and(|l| l.2)),
            ))
            .execute(c)
            .unwrap();
    })
    .await;
    id
}

type Row = (String, i64, NaiveDate, i32, NaiveDate, i64, String);

async fn reminders_of(app: &TestApp, subject_type: &'static str, id: i64) -> Vec<Row> {
    db(app, move |c| {
        reminders::table
            .filter(reminders::subject_type.eq(subject_type))
            .filter(reminders::subject_id.eq(id))
            .order((reminders::fire_date.asc(), reminders::kind.asc()))
            .select((
                reminders::kind,
                reminders::subject_id,
                reminders::occasion_date,
                reminders::lead_days,
                reminders::fire_date,
                reminders::user_id,
                reminders::status,
            ))
            .load::<Row>(c)
            .unwrap()
    })
    .await
}

/// (kind, occasion, lead, fire) of the rows.
fn shape(rows: &[Row]) -> Vec<(String, NaiveDate, i32, NaiveDate)> {
    rows.iter().map(|r| (r.0.clone(), r.2, r.3, r.4)).collect()
}

fn b(
    kind: &str,
    occasion: NaiveDate,
    lead: i32,
    fire: NaiveDate,
) -> (String, NaiveDate, i32, NaiveDate) {
    (kind.to_owned(), occasion, lead, fire)
}

async fn run(app: &TestApp, now: DateTime<Utc>) -> fieldwork::scheduler::TickReport {
    tick(&app.db, now, Settings::default()).await.unwrap()
}

async fn birthdays_at_each_lead_solar_lunar_and_29_february(app: TestApp) {
    let feb29 = customer(&app, "M0001", Some("02-29"), None).await;
    let new_year = customer(&app, "M0001", Some("01-01"), None).await;
    let spring = customer(&app, "M0001", None, Some((1, 1, false))).await;
    let none = customer(&app, "M0001", None, None).await;

    // Common year 2027: 29 February is kept on 28 February, 3 days before and on the day.
    run(&app, morning(2027, 2, 25)).await;
    assert_eq!(
        shape(&reminders_of(&app, "customer", feb29).await),
        [
            b("customer_birthday", date(2027, 2, 28), 3, date(2027, 2, 25)),
            b("customer_birthday", date(2027, 2, 28), 0, date(2027, 2, 28)),
        ]
    );
    // Leap year 2028: on its own day.
    run(&app, morning(2028, 2, 26)).await;
    let rows = reminders_of(&app, "customer", feb29).await;
    assert!(shape(&rows).contains(&b(
        "customer_birthday",
        date(2028, 2, 29),
        3,
        date(2028, 2, 26)
    )));
    assert!(shape(&rows).contains(&b(
        "customer_birthday",
        date(2028, 2, 29),
        0,
        date(2028, 2, 29)
    )));
    assert!(
        !rows.iter().any(|r| r.2 == date(2028, 2, 28)),
        "no 28 February in a leap year"
    );

    // Year boundary: from 29 December, a 1 January birthday of next year.
    run(&app, morning(2026, 12, 29)).await;
    assert_eq!(
        shape(&reminders_of(&app, "customer", new_year).await),
        [
            b("customer_birthday", date(2027, 1, 1), 3, date(2026, 12, 29)),
            b("customer_birthday", date(2027, 1, 1), 0, date(2027, 1, 1)),
        ]
    );

    // Lunar 正月初一 is 17 February 2026.
    run(&app, morning(2026, 2, 14)).await;
    assert_eq!(
        shape(&reminders_of(&app, "customer", spring).await),
        [
            b("customer_birthday", date(2026, 2, 17), 3, date(2026, 2, 14)),
            b("customer_birthday", date(2026, 2, 17), 0, date(2026, 2, 17)),
        ]
    );
    assert!(reminders_of(&app, "customer", none).await.is_empty());
    // Reminders go to the responsible manager.
    let m1 = db(&app, |c| {
        users::table
            .filter(users::employee_no.eq("M0001"))
            .select(users::id)
            .first::<i64>(c)
            .unwrap()
    })
    .await;
    assert!(
        reminders_of(&app, "customer", spring)
            .await
            .iter()
            .all(|r| r.5 == m1)
    );
}

async fn holding(app: &TestApp, token: &str, customer: i64, body: serde_json::Value) -> i64 {
    let r = app
        .post(
            &format!("/api/v1/customers/{customer}/holdings"),
            Some(token),
            &body,
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn maturities_and_loans_at_each_lead(app: TestApp) {
    let m1 = app.login("M0001").await;
    let c = customer(&app, "M0001", None, None).await;
    // National Day: a maturity on a holiday is reminded 7 and 1 days before, as any other.
    let cd = holding(
        &app,
        &m1,
        c,
        json!({ "product_type": "large_cd", "product_name": "大额存单", "amount": "200000.00",
                "open_date": "2025-10-01", "maturity_date": "2026-10-01" }),
    )
    .await;
    let loan = holding(
        &app,
        &m1,
        c,
        json!({ "product_type": "loan", "product_name": "经营贷", "amount": "300000.00",
                "open_date": "2026-01-02", "next_repayment_date": "2026-12-02" }),
    )
    .await;
    run(&app, morning(2026, 9, 24)).await;
    assert_eq!(
        shape(&reminders_of(&app, "holding", cd).await),
        [
            b("holding_maturity", date(2026, 10, 1), 7, date(2026, 9, 24)),
            b("holding_maturity", date(2026, 10, 1), 1, date(2026, 9, 30)),
        ]
    );
    run(&app, morning(2026, 11, 28)).await;
    assert_eq!(
        shape(&reminders_of(&app, "holding", loan).await),
        [
            b("loan_due", date(2026, 12, 2), 3, date(2026, 11, 29)),
            b("loan_overdue", date(2026, 12, 2), -1, date(2026, 12, 3)),
        ]
    );
}

async fn count_reminders(app: &TestApp) -> i64 {
    db(app, |c| {
        reminders::table.count().get_result::<i64>(c).unwrap()
    })
    .await
}

async fn ticks_are_idempotent_and_concurrent_safe(app: TestApp) {
    for i in 0..5 {
        customer(&app, "M0001", Some(&format!("11-{:02}", 23 + i)), None).await;
    }
    let now = morning(2026, 11, 23);
    let first = run(&app, now).await;
    let n = count_reminders(&app).await;
    assert_eq!(first.created as i64, n);
    assert_eq!(
        n, 7,
        "five on the day (lead 0) and two 3 days ahead (26th, 27th fire on 23rd, 24th)"
    );
    let again = run(&app, now).await;
    assert_eq!(again.created, 0);
    // Two scheduler loops at once (two instances on one database).
    let (a, b) = tokio::join!(
        tick(&app.db, now + Duration::minutes(1), Settings::default()),
        tick(&app.db, now + Duration::minutes(1), Settings::default())
    );
    assert_eq!(a.unwrap().created + b.unwrap().created, 0);
    assert_eq!(count_reminders(&app).await, n);
    // A second server process's pool on the same database (PostgreSQL: really concurrent).
    let other =
        fieldwork::db::Db::new(&app.database_url, 4, std::time::Duration::from_secs(5)).unwrap();
    let (a, b) = tokio::join!(
        tick(&app.db, now + Duration::days(1), Settings::default()),
        tick(&other, now + Duration::days(1), Settings::default())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let after = count_reminders(&app).await;
    assert_eq!(
        (a.created + b.created) as i64,
        after - n,
        "each created once between the two"
    );
    let notified: i64 = db(&app, |c| {
        notifications::table.count().get_result(c).unwrap()
    })
    .await;
    let distinct: i64 = db(&app, |c| {
        notifications::table
            .select(notifications::reminder_id)
            .distinct()
            .load::<Option<i64>>(c)
            .unwrap()
            .into_iter()
            .flatten()
            .count() as i64
    })
    .await;
    let digests: i64 = db(&app, |c| {
        notifications::table
            .filter(notifications::kind.eq("digest"))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(
        notified,
        distinct + digests,
        "one notification per reminder, plus digests"
    );
    assert_eq!(digests, 2, "one digest per day for the manager");
}

async fn reminders_follow_transfers_and_archiving(app: TestApp) {
    let moved = customer(&app, "M0001", Some("11-26"), None).await;
    let gone = customer(&app, "M0001", Some("11-27"), None).await;
    let now = morning(2026, 11, 22);
    run(&app, now).await;
    let m2: i64 = db(&app, |c| {
        users::table
            .filter(users::employee_no.eq("M0002"))
            .select(users::id)
            .first(c)
            .unwrap()
    })
    .await;
    // Approved transfer through the API; archive through the API.
    let l1 = app.login("L0001").await;
    transfer_customer(&app, &l1, moved, m2).await;
    let m1 = app.login("M0001").await;
    app.req(
        reqwest::Method::DELETE,
        &format!("/api/v1/customers/{gone}"),
        Some(&m1),
        None,
    )
    .await
    .expect(204);
    run(&app, now + Duration::minutes(1)).await;
    let rows = reminders_of(&app, "customer", moved).await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.5 == m2),
        "pending reminders moved to the new manager"
    );
    let rows = reminders_of(&app, "customer", gone).await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.6 == "cancelled"),
        "archived customer: cancelled"
    );
    // Nothing of the archived customer is notified later.
    run(&app, morning(2026, 11, 27)).await;
    let leaked: i64 = db(&app, move |c| {
        notifications::table
            .inner_join(
                reminders::table.on(notifications::reminder_id.eq(reminders::id.nullable())),
            )
            .filter(reminders::subject_id.eq(gone))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await;
    assert_eq!(leaked, 0);
}

/// Registers a device for `employee_no` directly (the devices API has its own tests).
pub async fn device(app: &TestApp, employee_no: &'static str, token: &'static str) -> i64 {
    db(app, move |c| {
        let user: i64 = users::table
            .filter(users::employee_no.eq(employee_no))
            .select(users::id)
            .first(c)
            .unwrap();
        let now = Utc::now().naive_utc();
        diesel::insert_into(devices::table)
            .values((
                devices::user_id.eq(user),
                devices::provider.eq("fcm"),
                devices::token.eq(token),
                devices::platform.eq("android"),
                devices::created_at.eq(now),
                devices::updated_at.eq(now),
            ))
            .returning(devices::id)
            .get_result(c)
            .unwrap()
    })
    .await
}

pub async fn fcm(fake: &FakeFcm) -> Arc<dyn PushGateway> {
    Arc::new(FcmGateway::new(fake.config(), Arc::new(SystemClock)).unwrap())
}

async fn due_reminders_reach_the_phone_without_pii(app: TestApp) {
    let fake = FakeFcm::start().await;
    let gw = fcm(&fake).await;
    device(&app, "M0001", "tok-m1-phone").await;
    let c = customer(&app, "M0001", Some("11-23"), None).await;
    db(&app, move |conn| {
        diesel::update(customers::table.find(c))
            .set((
                customers::name.eq("欧阳娜娜"),
                customers::phone.eq("13900001111"),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
    // Generated before 08:30: not due yet.
    let early = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    let r = run(&app, early).await;
    assert_eq!(r.notified, 0);
    let r = run(&app, morning(2026, 11, 23)).await;
    assert_eq!(r.notified, 2, "the birthday in the inbox and the digest");
    let s = DispatchSettings::default();
    let rep = dispatch_once(&app.db, &gw, &s, morning(2026, 11, 23))
        .await
        .unwrap();
    assert_eq!((rep.leased, rep.sent), (1, 1), "only the digest is pushed");
    let got = fake.received();
    assert_eq!(got.len(), 1);
    let text = got[0].to_string();
    for secret in ["欧阳娜娜", "13900001111", "1111"] {
        assert!(!text.contains(secret), "PII in push: {text}");
    }
    assert_eq!(got[0]["token"], "tok-m1-phone");
    assert_eq!(got[0]["notification"]["title"], "今日提醒");
    assert_eq!(got[0]["notification"]["body"], "今天: 1 个生日");
    assert_eq!(got[0]["data"]["kind"], "digest");
    let nid = got[0]["data"]["notification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(got[0]["android"]["collapse_key"], format!("n{nid}"));
    // Nothing left to send; a second pass sends nothing twice.
    let rep = dispatch_once(
        &app.db,
        &gw,
        &s,
        morning(2026, 11, 23) + Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(rep.leased, 0);
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
}

async fn outbox_status(app: &TestApp) -> Vec<(String, i32, NaiveDateTime)> {
    db(app, |c| {
        push_outbox::table
            .order(push_outbox::id.asc())
            .select((
                push_outbox::status,
                push_outbox::attempts,
                push_outbox::next_attempt_at,
            ))
            .load(c)
            .unwrap()
    })
    .await
}

async fn urgent_note(app: &TestApp, employee_no: &'static str, at: DateTime<Utc>) {
    db(app, move |c| {
        let user: i64 = users::table
            .filter(users::employee_no.eq(employee_no))
            .select(users::id)
            .first(c)
            .unwrap();
        notify(
            c,
            &[Planned {
                user_id: user,
                kind: Kind::TaskAssigned,
                lead: 0,
                link: Some(("task", 1)),
                reminder_id: None,
                dedupe_key: None,
                at: at.naive_utc(),
                push: true,
            }],
            at.naive_utc(),
        )
        .unwrap();
    })
    .await;
}

async fn dead_tokens_retries_and_lease_expiry(app: TestApp) {
    let fake = FakeFcm::start().await;
    let gw = fcm(&fake).await;
    let dead = device(&app, "M0001", "tok-dead").await;
    device(&app, "M0002", "tok-busy").await;
    device(&app, "M0003", "tok-crash").await;
    fake.set_mode(Target::from("tok-dead"), Mode::Unregistered);
    fake.set_mode_times(
        Target::from("tok-busy"),
        Mode::TooManyRequests {
            retry_after: Some("120".into()),
        },
        1,
    );
    let now = morning(2026, 11, 23);
    for who in ["M0003", "M0001", "M0002"] {
        urgent_note(&app, who, now).await;
    }
    // A dispatcher leases the third row and crashes before sending.
    let crashed = db(&app, move |c| {
        let ids: Vec<i64> = push_outbox::table
            .select(push_outbox::id)
            .order(push_outbox::id.asc())
            .load(c)
            .unwrap();
        let _ = ids;
        lease(
            c,
            "crashed",
            now.naive_utc(),
            chrono::Duration::seconds(60),
            1,
        )
        .unwrap()
    })
    .await;
    assert_eq!(crashed.len(), 1);
    let s = DispatchSettings::default();
    let rep = dispatch_once(&app.db, &gw, &s, now).await.unwrap();
    assert_eq!(rep.leased, 2, "the crashed dispatcher's row stays leased");
    assert_eq!((rep.sent, rep.retried, rep.dead), (0, 1, 1));
    let disabled: Option<NaiveDateTime> = db(&app, move |c| {
        devices::table
            .find(dead)
            .select(devices::disabled_at)
            .first(c)
            .unwrap()
    })
    .await;
    assert!(disabled.is_some(), "UNREGISTERED disables the device");
    let rows = outbox_status(&app).await;
    let busy = rows.iter().find(|r| r.0 == "retry").unwrap();
    assert!(
        busy.2 >= (now + Duration::seconds(120)).naive_utc(),
        "Retry-After honoured: {busy:?}"
    );
    // Before the lease expires nothing is re-sent; after it, the crashed row goes out once.
    let rep = dispatch_once(&app.db, &gw, &s, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(rep.leased, 0);
    let rep = dispatch_once(&app.db, &gw, &s, now + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!((rep.leased, rep.sent), (1, 1));
    // The retried one after its backoff.
    let rep = dispatch_once(&app.db, &gw, &s, now + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!((rep.leased, rep.sent), (1, 1));
    let tokens: Vec<String> = fake
        .received()
        .iter()
        .map(|m| m["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens, ["tok-crash", "tok-busy"], "each delivered once");
    let rows = outbox_status(&app).await;
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["sent", "dead", "sent"]
    );
    // Urgent: high priority.
    assert_eq!(fake.received()[0]["android"]["priority"], "HIGH");
    // A new notification for the disabled device creates no outbox row.
    urgent_note(&app, "M0001", now + Duration::hours(3)).await;
    assert_eq!(outbox_status(&app).await.len(), 3);
}

async fn quiet_hours_defer_and_urgent_bypasses(app: TestApp) {
    let evening = Utc.with_ymd_and_hms(2026, 11, 23, 13, 30, 0).unwrap(); // 21:30 Shanghai
    device(&app, "M0004", "tok-m4-evening").await;
    let user: i64 = db(&app, |c| {
        users::table
            .filter(users::employee_no.eq("M0004"))
            .select(users::id)
            .first(c)
            .unwrap()
    })
    .await;
    db(&app, move |c| {
        let plan = |kind| Planned {
            user_id: user,
            kind,
            lead: 0,
            link: None,
            reminder_id: None,
            dedupe_key: None,
            at: evening.naive_utc(),
            push: true,
        };
        notify(
            c,
            &[plan(Kind::TaskDue), plan(Kind::ImportantChange)],
            evening.naive_utc(),
        )
        .unwrap();
    })
    .await;
    let rows: Vec<(String, NaiveDateTime, NaiveDateTime)> = db(&app, |c| {
        push_outbox::table
            .inner_join(notifications::table)
            .order(notifications::id.asc())
            .select((
                notifications::kind,
                notifications::deliver_at,
                push_outbox::next_attempt_at,
            ))
            .load(c)
            .unwrap()
    })
    .await;
    let eight = Utc
        .with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
        .unwrap()
        .naive_utc();
    let at = evening.naive_utc();
    assert_eq!(
        rows,
        [
            ("task_due".into(), at, eight),
            ("important_change".into(), at, at)
        ],
        "in the inbox at once; the push deferred to 08:00 Shanghai unless urgent"
    );
}
