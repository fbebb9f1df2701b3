//! Delta sync: a full first sync in small pages sees everything once; deltas carry only what changed; a
//! customer moved out of scope or archived arrives as a removal (with its contacts and holdings), and the
//! new manager receives it whole; scope holds; bad tokens are 400s.

use std::collections::{BTreeSet, HashMap};

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, seed_customer};

const SYNC: &str = "/api/v1/sync";

backend_tests!(
    full_sync_in_pages_then_deltas,
    moves_and_removals_reach_both_phones,
    sync_is_scoped_and_validates_its_query,
);

/// What a phone holds after applying pages: ids per entity.
#[derive(Default, Debug)]
struct Phone {
    have: HashMap<&'static str, BTreeSet<i64>>,
    token: Option<String>,
}

const LISTS: [(&str, &str); 6] = [
    ("customers", "customer"),
    ("contacts", "contact"),
    ("holdings", "holding"),
    ("visits", "visit"),
    ("opportunities", "opportunity"),
    ("worklogs", "worklog"),
];

impl Phone {
    /// Syncs until `has_more` is false; returns every page.
    async fn sync(&mut self, app: &TestApp, token: &str, limit: i64) -> Vec<Value> {
        let mut pages = Vec::new();
        loop {
            let path = match &self.token {
                Some(t) => format!("{SYNC}?since={t}&limit={limit}"),
                None => format!("{SYNC}?limit={limit}"),
            };
            let page = app.get(&path, token).await.expect(200).body;
            for r in page["removed"].as_array().unwrap() {
                let entity = entity_name(r["entity"].as_str().unwrap());
                let id = r["id"].as_i64().unwrap();
                self.have.entry(entity).or_default().remove(&id);
                if entity == "customer" {
                    // The phone drops a removed customer's children with it (documented contract); the
                    // server also sends their own removals, which this test checks separately.
                }
            }
            for (list, entity) in LISTS {
                let rows = page["changes"][list].as_array().unwrap();
                assert!(rows.len() as i64 <= limit, "page larger than limit");
                for row in rows {
                    let id = row["id"].as_i64().unwrap();
                    self.have.entry(entity).or_default().insert(id);
                }
            }
            let total: usize = LISTS
                .iter()
                .map(|(l, _)| page["changes"][l].as_array().unwrap().len())
                .sum::<usize>()
                + page["removed"].as_array().unwrap().len();
            assert!(total as i64 <= limit, "page of {total} over limit {limit}");
            self.token = Some(page["next_token"].as_str().unwrap().to_owned());
            let more = page["has_more"].as_bool().unwrap();
            pages.push(page);
            if !more {
                return pages;
            }
            assert!(pages.len() < 200, "sync does not end");
        }
    }

    fn ids(&self, entity: &str) -> BTreeSet<i64> {
        self.have.get(entity).cloned().unwrap_or_default()
    }
}

fn entity_name(s: &str) -> &'static str {
    LISTS
        .iter()
        .map(|(_, e)| *e)
        .find(|e| *e == s)
        .unwrap_or_else(|| panic!("unknown entity {s}"))
}

/// Ids of one list across pages, with repeats.
/// The rows of one list (`customers`, `contacts`, …) over all pages, in order.
fn changes_of(pages: &[Value], list: &str) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["changes"][list].as_array().unwrap().clone())
        .collect()
}

fn delivered(pages: &[Value], list: &str) -> Vec<i64> {
    changes_of(pages, list)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn removed(pages: &[Value], entity: &str) -> Vec<i64> {
    pages
        .iter()
        .flat_map(|p| p["removed"].as_array().unwrap().clone())
        .filter(|r| r["entity"] == entity)
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> i64 {
    app.post(path, Some(token), &body).await.expect(201).body["id"]
        .as_i64()
        .unwrap()
}

/// A corporate customer of the caller with one contact and one holding; returns (customer, contact, holding).
async fn customer_with_children(app: &TestApp, token: &str, name: &str) -> (i64, i64, i64) {
    let c = create(
        app,
        token,
        "/api/v1/customers",
        json!({ "kind": "corporate", "name": name, "phone": "13912345678" }),
    )
    .await;
    let contact = create(
        app,
        token,
        &format!("/api/v1/customers/{c}/contacts"),
        json!({ "name": "王总", "title": "财务总监", "phone": "13712345678" }),
    )
    .await;
    let holding = create(
        app,
        token,
        &format!("/api/v1/customers/{c}/holdings"),
        json!({
            "product_type": "time_deposit",
            "product_name": "三年定期",
            "amount": "500000.00",
            "open_date": "2025-12-01",
            "maturity_date": "2026-12-01"
        }),
    )
    .await;
    (c, contact, holding)
}

/// A check-in at the seeded customer's registered place.
fn check_in_body(customer_id: i64, purpose: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "purpose": purpose,
        "phone_time": chrono::Utc::now().to_rfc3339(),
        "latitude": 32.05, "longitude": 118.78, "accuracy_m": 10.0, "datum": "wgs84"
    })
}

async fn full_sync_in_pages_then_deltas(app: TestApp) {
    let m1 = app.login("M0001").await;
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(customer_with_children(&app, &m1, &format!("南京{i}号公司")).await);
    }
    let seeded = seed_customer(&app, "M0001", "赵一", Some((32.05, 118.78))).await;
    let visit = create(&app, &m1, "/api/v1/visits", check_in_body(seeded, "回访")).await;
    let opp = create(
        &app,
        &m1,
        "/api/v1/opportunities",
        json!({
            "customer_id": seeded, "title": "大额存单", "product_type": "large_cd",
            "estimated_amount": "1000000.00"
        }),
    )
    .await;
    let today = fieldwork::domain::calendar::local_date(chrono::Utc::now());
    let log = create(
        &app,
        &m1,
        "/api/v1/worklogs",
        json!({ "log_date": today.to_string(), "content": "走访赵一", "visit_ids": [visit] }),
    )
    .await;

    // Full first sync in pages of 3: everything exactly once.
    let mut phone = Phone::default();
    let pages = phone.sync(&app, &m1, 3).await;
    assert!(pages.len() >= 4, "paged: {} pages", pages.len());
    let mut customers = delivered(&pages, "customers");
    customers.sort_unstable();
    let mut want: Vec<i64> = made.iter().map(|m| m.0).chain([seeded]).collect();
    want.sort_unstable();
    assert_eq!(customers, want, "each customer once");
    let contacts = delivered(&pages, "contacts");
    assert_eq!(contacts.len(), 3);
    assert_eq!(delivered(&pages, "holdings").len(), 3);
    assert_eq!(delivered(&pages, "visits"), vec![visit]);
    assert_eq!(delivered(&pages, "opportunities"), vec![opp]);
    assert_eq!(delivered(&pages, "worklogs"), vec![log]);
    // Lists mask, as the customer list does.
    let first = changes_of(&pages, "customers")
        .into_iter()
        .find(|c| c["id"] == made[0].0)
        .unwrap();
    assert_eq!(first["phone"], "139****5678");
    // So are every contact's phone (the contacts list has them in full).
    let phones: Vec<Value> = changes_of(&pages, "contacts")
        .into_iter()
        .map(|c| c["phone"].clone())
        .collect();
    assert_eq!(phones, vec![json!("137****5678"); 3]);
    // Money stays a decimal string.
    assert_eq!(changes_of(&pages, "holdings")[0]["amount"], "500000.00");

    // Nothing changed: an empty delta keeps the token.
    let before = phone.token.clone();
    let pages = phone.sync(&app, &m1, 50).await;
    assert_eq!(pages.len(), 1);
    assert!(
        LISTS
            .iter()
            .all(|(l, _)| pages[0]["changes"][l].as_array().unwrap().is_empty())
    );
    assert_eq!(phone.token, before);

    // An update reaches the phone alone.
    app.patch(
        &format!("/api/v1/customers/{}", made[1].0),
        &m1,
        &json!({ "name": "南京一号集团" }),
    )
    .await
    .expect(200);
    let pages = phone.sync(&app, &m1, 50).await;
    assert_eq!(delivered(&pages, "customers"), vec![made[1].0]);
    assert!(delivered(&pages, "holdings").is_empty());
    let row = &pages[0]["changes"]["customers"][0];
    assert_eq!(row["name"], "南京一号集团");

    // A check-out and a new check-in each reach the phone in the next delta (on SQLite the check-in takes
    // its sequence number before its insert, on PostgreSQL after: either way after the token).
    app.post(
        &format!("/api/v1/visits/{visit}/checkout"),
        Some(&m1),
        &json!({}),
    )
    .await
    .expect(200);
    let pages = phone.sync(&app, &m1, 50).await;
    assert_eq!(delivered(&pages, "visits"), vec![visit]);
    assert!(!pages[0]["changes"]["visits"][0]["checked_out_at"].is_null());
    let again = create(&app, &m1, "/api/v1/visits", check_in_body(seeded, "再访")).await;
    let pages = phone.sync(&app, &m1, 50).await;
    assert_eq!(delivered(&pages, "visits"), vec![again]);
    assert!(delivered(&pages, "customers").is_empty());

    // A deleted holding and an archived customer arrive as removals.
    app.req(
        Method::DELETE,
        &format!("/api/v1/customers/{}/holdings/{}", made[0].0, made[0].2),
        Some(&m1),
        None,
    )
    .await
    .expect(204);
    app.req(
        Method::DELETE,
        &format!("/api/v1/customers/{}", made[2].0),
        Some(&m1),
        None,
    )
    .await
    .expect(204);
    let pages = phone.sync(&app, &m1, 50).await;
    assert_eq!(removed(&pages, "holding"), vec![made[0].2]);
    assert!(removed(&pages, "customer").contains(&made[2].0));
    assert!(!phone.ids("customer").contains(&made[2].0));
    assert!(!phone.ids("holding").contains(&made[0].2));
    assert!(phone.ids("customer").contains(&made[0].0));
}

async fn moves_and_removals_reach_both_phones(app: TestApp) {
    let m1 = app.login("M0001").await;
    let m2 = app.login("M0002").await;
    let l1 = app.login("L0001").await;
    let admin = app.login("admin").await;
    let m2_id = app.user_id(&admin, "M0002").await;
    let (c, contact, holding) = customer_with_children(&app, &m1, "鼓楼贸易公司").await;
    let (stay, _, _) = customer_with_children(&app, &m1, "留下的公司").await;

    let mut p1 = Phone::default();
    let mut p2 = Phone::default();
    let mut pl = Phone::default();
    p1.sync(&app, &m1, 500).await;
    p2.sync(&app, &m2, 500).await;
    pl.sync(&app, &l1, 500).await;
    assert!(p1.ids("customer").contains(&c));
    assert!(!p2.ids("customer").contains(&c));
    assert!(
        pl.ids("customer").contains(&c),
        "the leader sees the subtree"
    );

    // The leader proposes moving the customer from M0001 to M0002; the admin approves.
    let t = app
        .post(
            &format!("/api/v1/customers/{c}/transfers"),
            Some(&l1),
            &json!({ "to_manager_id": m2_id, "reason": "调整分管" }),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/transfers/{t}/approve"),
            Some(&admin),
            &json!({}),
        )
        .await;
    if r.status.as_u16() != 200 {
        panic!("approve: {} {}", r.status, r.text);
    }

    // The old manager's phone is told to drop the customer and its children.
    let pages = p1.sync(&app, &m1, 500).await;
    assert_eq!(removed(&pages, "customer"), vec![c]);
    assert_eq!(removed(&pages, "contact"), vec![contact]);
    assert_eq!(removed(&pages, "holding"), vec![holding]);
    assert!(delivered(&pages, "customers").is_empty());
    assert_eq!(p1.ids("customer"), BTreeSet::from([stay]));
    app.get(&format!("/api/v1/customers/{c}"), &m1)
        .await
        .problem(404, "customer_not_found");

    // The new manager's phone receives it whole.
    let pages = p2.sync(&app, &m2, 500).await;
    assert_eq!(delivered(&pages, "customers"), vec![c]);
    assert_eq!(delivered(&pages, "contacts"), vec![contact]);
    assert_eq!(delivered(&pages, "holdings"), vec![holding]);
    assert!(
        pages
            .iter()
            .all(|p| p["removed"].as_array().unwrap().is_empty())
    );

    // The leader still sees it: whatever the page says, the customer and its children stay on the phone.
    pl.sync(&app, &l1, 500).await;
    assert!(pl.ids("customer").contains(&c));
    assert!(pl.ids("contact").contains(&contact));
    assert!(pl.ids("holding").contains(&holding));
}

async fn sync_is_scoped_and_validates_its_query(app: TestApp) {
    let m1 = app.login("M0001").await;
    let m7 = app.login("M0007").await;
    let l3 = app.login("L0003").await;
    let admin = app.login("admin").await;
    let (c, _, _) = customer_with_children(&app, &m1, "只属于M0001").await;
    for (who, token) in [("M0007", &m7), ("L0003", &l3)] {
        let mut p = Phone::default();
        p.sync(&app, token, 500).await;
        assert!(!p.ids("customer").contains(&c), "{who} must not see it");
        assert!(p.ids("holding").is_empty(), "{who} sees no holdings");
    }
    let mut p = Phone::default();
    p.sync(&app, &admin, 500).await;
    assert!(p.ids("customer").contains(&c), "admin sees the whole bank");

    app.get(&format!("{SYNC}?since=garbage"), &m1)
        .await
        .field_error(400, "since", "invalid_format");
    app.get(&format!("{SYNC}?limit=0"), &m1)
        .await
        .field_error(400, "limit", "out_of_range");
    app.get(&format!("{SYNC}?limit=1001"), &m1)
        .await
        .field_error(400, "limit", "out_of_range");
    app.get(&format!("{SYNC}?limit=abc"), &m1).await.expect(400);
    app.get(&format!("{SYNC}?sinse=x"), &m1).await.expect(400);
    app.req(Method::GET, SYNC, None, None)
        .await
        .problem(401, "missing_token");
}

/// PostgreSQL takes change numbers without a lock, so writes commit out of number order. A sync that ran
/// while a lower number was still in flight must not move its token past that number: the change arrives
/// in the next delta. (SQLite's one writer commits in number order; nothing to hold open there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_after_a_higher_one_still_reaches_the_phone() {
    use diesel::prelude::*;
    use fieldwork::db::schema::customers;
    let Some(app) = TestApp::spawn_pg().await else {
        return;
    };
    let m1 = app.login("M0001").await;
    let early = seed_customer(&app, "M0001", "钱早", None).await;
    let late = seed_customer(&app, "M0001", "孙晚", None).await;
    let mut phone = Phone::default();
    phone.sync(&app, &m1, 100).await;

    // A write that takes its number and renames `early`, then waits before it commits.
    let (held_seq, go, held) = hold_write(&app, None, move |c, seq| {
        diesel::update(customers::table.find(early))
            .set((customers::name.eq("钱早改"), customers::seq.eq(seq)))
            .execute(c)
            .map(|_| ())
    })
    .await;

    // Meanwhile the API renames `late`: a higher number, committed first.
    app.patch(
        &format!("/api/v1/customers/{late}"),
        &m1,
        &json!({ "name": "孙晚改" }),
    )
    .await
    .expect(200);
    let during = phone.sync(&app, &m1, 100).await;
    let token = decode_seq(phone.token.as_deref().unwrap());
    assert!(
        token < held_seq,
        "token {token} passed number {held_seq}, still in flight"
    );
    assert!(
        delivered(&during, "customers").is_empty(),
        "nothing above the number in flight is delivered: {during:?}"
    );

    go.send(()).unwrap();
    held.await.unwrap();
    let after = phone.sync(&app, &m1, 100).await;
    let names: HashMap<i64, String> = after
        .iter()
        .flat_map(|p| p["changes"]["customers"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(names.get(&early).map(String::as_str), Some("钱早改"));
    assert_eq!(names.get(&late).map(String::as_str), Some("孙晚改"));
}

/// Advisory locks are database-wide, and one database may hold several schemas of this application (the tests
/// run each in its own): a write in flight in one schema, even with a lower number, must not hold back the
/// sync of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_in_another_schema_does_not_hold_back_sync() {
    let (Some(app), Some(other)) = (TestApp::spawn_pg().await, TestApp::spawn_pg().await) else {
        return;
    };
    let m1 = app.login("M0001").await;
    let c = seed_customer(&app, "M0001", "周隔壁", None).await;
    let mut phone = Phone::default();
    phone.sync(&app, &m1, 100).await;

    // The other schema takes number 2 (below anything here) and waits before it commits.
    let setval = "SELECT setval('change_seq', 1)";
    let (held_seq, go, held) = hold_write(&other, Some(setval), |_, _| Ok(())).await;
    assert_eq!(held_seq, 2);

    app.patch(
        &format!("/api/v1/customers/{c}"),
        &m1,
        &json!({ "name": "周隔壁改" }),
    )
    .await
    .expect(200);
    let pages = phone.sync(&app, &m1, 100).await;
    go.send(()).unwrap();
    held.await.unwrap();
    assert_eq!(delivered(&pages, "customers"), vec![c]);
}

/// A write on `app`'s database that takes a change number, runs `work` with it and then waits, uncommitted,
/// until the returned sender fires (after `setup`, a statement run before its transaction). Returns the number
/// taken, the sender and the task (which commits once told).
async fn hold_write(
    app: &TestApp,
    setup: Option<&'static str>,
    work: impl FnOnce(&mut fieldwork::db::DbConn, i64) -> diesel::QueryResult<()> + Send + 'static,
) -> (
    i64,
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use diesel::prelude::*;
    use fieldwork::db::repo::changes;
    let (taken_tx, taken) = std::sync::mpsc::channel::<i64>();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let db = app.db.clone();
    let held = tokio::task::spawn_blocking(move || {
        let mut conn = db.get_sync().unwrap();
        let c: &mut fieldwork::db::DbConn = &mut conn;
        if let Some(sql) = setup {
            diesel::sql_query(sql).execute(c).unwrap();
        }
        c.transaction::<_, diesel::result::Error, _>(|c| {
            let seq = changes::bump(c)?;
            work(c, seq)?;
            taken_tx.send(seq).unwrap();
            go_rx.recv().unwrap();
            Ok(())
        })
        .unwrap();
    });
    let held_seq = tokio::task::spawn_blocking(move || taken.recv().unwrap())
        .await
        .unwrap();
    (held_seq, go, held)
}

/// The sequence number of a sync token.
fn decode_seq(token: &str) -> i64 {
    fieldwork::api::sync::decode_token(token)
        .expect("a token of this API")
        .seq
}
