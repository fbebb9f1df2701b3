//! Push delivery under faults: a push service slower than a lease with two dispatchers on one database, and a
//! dispatcher killed in the middle of a pass. Every push reaches the phone; only sends in flight at a crash
//! are repeated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::Value;

use fieldwork::clock::Clock;
use fieldwork::db::Db;
use fieldwork::db::repo::notifications::{Planned, notify};
use fieldwork::db::schema::{push_outbox, users};
use fieldwork::domain::reminders::Kind;
use fieldwork::push::outbox::{DispatchSettings, dispatch_once, dispatch_pass};

use crate::backend_tests;
use crate::fake_fcm::FakeFcm;
use crate::helpers::TestApp;
use crate::reminders::{db, device, fcm};

/// `n` urgent notifications to M0001, due at `at`, each with an outbox row for the phone `tok-m1`.
async fn pushes(app: &TestApp, n: usize, at: DateTime<Utc>) {
    device(app, "M0001", "tok-m1").await;
    db(app, move |c| {
        let user: i64 = users::table
            .filter(users::employee_no.eq("M0001"))
            .select(users::id)
            .first(c)
            .unwrap();
        let planned: Vec<Planned> = (0..n)
            .map(|i| Planned {
                user_id: user,
                kind: Kind::TaskAssigned,
                lead: 0,
                link: Some(("task", i64::try_from(i).unwrap() + 1)),
                reminder_id: None,
                dedupe_key: Some(format!("fault:{i}")),
                at: at.naive_utc(),
                push: true,
            })
            .collect();
        notify(c, &planned, at.naive_utc()).unwrap();
    })
    .await;
}

/// How many times each notification arrived in `messages`.
fn per_notification(messages: &[Value]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in messages {
        let id = m["data"]["notification_id"].as_str().unwrap().to_owned();
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

async fn sent_rows(app: &TestApp) -> i64 {
    db(app, |c| {
        push_outbox::table
            .filter(push_outbox::status.eq("sent"))
            .count()
            .get_result(c)
            .unwrap()
    })
    .await
}

/// A clock running `SPEED` times faster than real time from `start`: a send the fake answers in 300 ms
/// takes 6 s of dispatcher time.
struct FastClock {
    start: DateTime<Utc>,
    real: Instant,
}

const SPEED: i32 = 20;

impl Clock for FastClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Duration::from_std(self.real.elapsed()).unwrap();
        self.start + elapsed * SPEED
    }
}

async fn two_dispatchers_and_a_slow_push_service_deliver_each_push_once(app: TestApp) {
    let fake = FakeFcm::start().await;
    let gw = fcm(&fake).await;
    let start = Utc::now();
    pushes(&app, 500, start).await;
    // 6 s a send: a batch of 500 at 32 in flight takes 16 rounds, 96 s, longer than the 60 s lease.
    fake.set_latency(std::time::Duration::from_millis(300));
    let clock = Arc::new(FastClock {
        start,
        real: Instant::now(),
    });
    let other = Db::new(&app.database_url, 4, std::time::Duration::from_secs(5)).unwrap();
    let run = |db: Db, name: &str| {
        let (gw, clock) = (gw.clone(), clock.clone());
        let s = DispatchSettings {
            id: name.to_owned(),
            ..DispatchSettings::default()
        };
        // Each instance runs passes until every row is sent, as the scheduler loop does on every tick.
        tokio::spawn(async move {
            let mut leased = 0;
            loop {
                let r = dispatch_pass(&db, &gw, &s, clock.as_ref()).await.unwrap();
                leased += r.leased;
                let sent: i64 = db
                    .read(|c| {
                        Ok(push_outbox::table
                            .filter(push_outbox::status.eq("sent"))
                            .count()
                            .get_result(c)?)
                    })
                    .await
                    .unwrap();
                if sent == 500 {
                    return leased;
                }
                if r.leased == 0 {
                    // Nothing free to lease: the next tick (a tenth of a second of dispatcher time).
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        })
    };
    let both = async { tokio::join!(run(app.db.clone(), "instance-a"), run(other, "instance-b")) };
    // Real time: 500 sends of 300 ms at 32 in flight take about 5 s for one instance.
    let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(60), both)
        .await
        .expect("every push recorded sent within a minute");
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 500, "each row leased once between them ({a} + {b})");
    assert!(a > 0 && b > 0, "both instances worked ({a} + {b})");
    let delivered = per_notification(&fake.received());
    assert_eq!(delivered.len(), 500, "every push delivered");
    assert!(
        delivered.values().all(|n| *n == 1),
        "no push sent twice: {:?}",
        delivered.values().filter(|n| **n > 1).count()
    );
    assert_eq!(sent_rows(&app).await, 500);
}

async fn a_dispatcher_killed_mid_pass_repeats_only_its_sends_in_flight(app: TestApp) {
    let fake = FakeFcm::start().await;
    let gw = fcm(&fake).await;
    let t0 = Utc::now();
    pushes(&app, 300, t0).await;
    // The push service answers 100 sends, then stops answering: the dispatcher is stuck mid-pass.
    fake.hang_after(Some(100));
    let s = DispatchSettings::default();
    let (d, g, s2) = (app.db.clone(), gw.clone(), s.clone());
    let stuck = tokio::spawn(async move { dispatch_once(&d, &g, &s2, t0).await });
    // Each answered send is recorded as it is known, before the pass ends.
    let mut recorded = 0;
    for _ in 0..500 {
        recorded = sent_rows(&app).await;
        if recorded >= 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        recorded, 100,
        "answered sends recorded while the pass goes on"
    );
    // kill -9: the task is gone, its leases stay in the database.
    stuck.abort();
    let _ = stuck.await;
    fake.hang_after(None);
    // Once the leases expire, another dispatcher sends what is left.
    let later = t0 + Duration::seconds(61);
    let r = dispatch_once(&app.db, &gw, &s, later).await.unwrap();
    assert_eq!(r.sent, 200, "{r:?}");
    let delivered = per_notification(&fake.received());
    assert_eq!(delivered.len(), 300);
    // A send in flight at the crash may still have reached the phone (the request was on its way): those
    // are the only ones that can arrive twice.
    let twice = delivered.values().filter(|n| **n > 1).count();
    assert!(twice <= s.concurrency, "delivered twice: {twice}");
    let attempted = per_notification(&fake.attempts());
    let repeated = attempted.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= s.concurrency,
        "only the sends in flight at the crash are repeated: {repeated}"
    );
    assert_eq!(sent_rows(&app).await, 300);
}

backend_tests!(
    two_dispatchers_and_a_slow_push_service_deliver_each_push_once,
    a_dispatcher_killed_mid_pass_repeats_only_its_sends_in_flight,
);
