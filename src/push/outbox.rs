//! The outbox dispatcher: lease due rows (a conditional update, so two dispatchers never take the same row
//! and an expired lease returns a row to the queue), send them concurrently through the `PushGateway`,
//! record sent / retry with backoff / dead, and disable devices whose token is dead.
//!
//! Rows are leased shortly before their sends start (at most two rounds of sends ahead), so a lease covers
//! the wait and the send, however slow the push service; each outcome is recorded as soon as it is known. A
//! dispatcher killed mid-pass repeats only the sends it had in flight (its waiting rows go out once their
//! lease expires); a row recorded sent is never leased again.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Utc};
use diesel::prelude::*;
use tokio::task::JoinSet;

use super::{Platform, PushGateway, PushMessage, SendOutcome, retry_delay_random};
use crate::clock::Clock;
use crate::db::schema::{devices, notifications, push_outbox};
use crate::db::{Db, DbConn};
use crate::error::AppError;

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// This dispatcher's name in `leased_by` (unique per process).
    pub id: String,
    /// How long a lease holds before another dispatcher may take the row again: longer than one send may
    /// take (the FCM gateway gives a send 10 s, twice with a token refresh).
    pub lease: ChronoDuration,
    /// Attempts before a row is dead.
    pub max_attempts: i32,
    /// Most rows one pass sends.
    pub batch: i64,
    /// Sends in flight at once (and so rows leased at once).
    pub concurrency: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            id: format!("dispatcher-{}", uuid::Uuid::new_v4()),
            lease: ChronoDuration::seconds(60),
            max_attempts: 8,
            batch: 500,
            concurrency: 32,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Rows leased.
    pub leased: usize,
    /// Sent.
    pub sent: usize,
    /// Scheduled for another attempt.
    pub retried: usize,
    /// Given up (dead token, permanent failure, too many attempts, expired).
    pub dead: usize,
}

/// A leased row with what its push needs.
#[derive(Debug, Clone, Queryable)]
struct Leased {
    id: i64,
    attempts: i32,
    notification_id: i64,
    kind: String,
    title: String,
    body: String,
    link_type: Option<String>,
    link_id: Option<i64>,
    urgent: bool,
    expires_at: Option<NaiveDateTime>,
    device_id: i64,
    token: String,
    platform: String,
}

const OPEN: [&str; 2] = ["pending", "retry"];

/// Leases up to `batch` due rows for `me` until `now + lease`; returns the ids taken.
pub fn lease(
    conn: &mut DbConn,
    me: &str,
    now: NaiveDateTime,
    lease: ChronoDuration,
    batch: i64,
) -> QueryResult<Vec<i64>> {
    let free = push_outbox::lease_until
        .is_null()
        .or(push_outbox::lease_until.lt(now));
    let candidates: Vec<i64> = push_outbox::table
        .filter(push_outbox::status.eq_any(OPEN))
        .filter(push_outbox::next_attempt_at.le(now))
        .filter(free)
        .order((push_outbox::next_attempt_at.asc(), push_outbox::id.asc()))
        .limit(batch)
        .select(push_outbox::id)
        .load(conn)?;
    if candidates.is_empty() {
        return Ok(candidates);
    }
    // The WHERE is checked again on the row as it is when updated: of two dispatchers racing for a row,
    // only one takes it.
    let free = push_outbox::lease_until
        .is_null()
        .or(push_outbox::lease_until.lt(now));
    diesel::update(
        push_outbox::table
            .filter(push_outbox::id.eq_any(&candidates))
            .filter(push_outbox::status.eq_any(OPEN))
            .filter(free),
    )
    .set((
        push_outbox::lease_until.eq(now + lease),
        push_outbox::leased_by.eq(me),
    ))
    .returning(push_outbox::id)
    .get_results(conn)
}

fn load(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<Leased>> {
    push_outbox::table
        .inner_join(notifications::table)
        .inner_join(devices::table)
        .filter(push_outbox::id.eq_any(ids))
        .select((
            push_outbox::id,
            push_outbox::attempts,
            notifications::id,
            notifications::kind,
            notifications::title,
            notifications::body,
            notifications::link_type,
            notifications::link_id,
            notifications::urgent,
            notifications::expires_at,
            devices::id,
            devices::token,
            devices::platform,
        ))
        .load(conn)
}

fn message(row: &Leased, now: NaiveDateTime) -> PushMessage {
    let mut data = BTreeMap::new();
    data.insert(
        "notification_id".to_owned(),
        row.notification_id.to_string(),
    );
    data.insert("kind".to_owned(), row.kind.clone());
    if let (Some(t), Some(id)) = (&row.link_type, row.link_id) {
        data.insert("link_type".to_owned(), t.clone());
        data.insert("link_id".to_owned(), id.to_string());
    }
    let ttl = row
        .expires_at
        .map_or(ChronoDuration::hours(16), |e| e - now)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(60));
    PushMessage {
        device_token: row.token.clone(),
        platform: Platform::parse(&row.platform).unwrap_or(Platform::Android),
        title: row.title.clone(),
        body: row.body.clone(),
        data,
        urgent: row.urgent,
        ttl,
        collapse_key: format!("n{}", row.notification_id),
    }
}

/// Records one outcome. A send that went out is recorded whoever holds the lease now (it went out: nobody
/// should send it again); a failure only while the row is still open and `me` holds its lease (else the
/// dispatcher that took it over records its own attempt).
fn record(
    conn: &mut DbConn,
    me: &str,
    row: &Leased,
    outcome: &SendOutcome,
    now: NaiveDateTime,
    max_attempts: i32,
    report: &mut DispatchReport,
) -> QueryResult<()> {
    let mine = push_outbox::table
        .filter(push_outbox::id.eq(row.id))
        .filter(push_outbox::status.eq_any(OPEN))
        .filter(push_outbox::leased_by.eq(me));
    let unsent = push_outbox::table
        .filter(push_outbox::id.eq(row.id))
        .filter(push_outbox::status.ne("sent"));
    let attempts = row.attempts + 1;
    let none = None::<NaiveDateTime>;
    match outcome {
        SendOutcome::Sent { message_id } => {
            report.sent += 1;
            diesel::update(unsent)
                .set((
                    push_outbox::status.eq("sent"),
                    push_outbox::attempts.eq(attempts),
                    push_outbox::sent_at.eq(now),
                    push_outbox::provider_message_id.eq(message_id),
                    push_outbox::lease_until.eq(none),
                ))
                .execute(conn)?;
        }
        SendOutcome::Retry { after, reason } if attempts < max_attempts => {
            report.retried += 1;
            let wait = retry_delay_random(u32::try_from(attempts).unwrap_or(1), *after);
            let next = now + ChronoDuration::from_std(wait).unwrap_or(ChronoDuration::hours(1));
            diesel::update(mine)
                .set((
                    push_outbox::status.eq("retry"),
                    push_outbox::attempts.eq(attempts),
                    push_outbox::next_attempt_at.eq(next),
                    push_outbox::last_error.eq(reason),
                    push_outbox::lease_until.eq(none),
                ))
                .execute(conn)?;
        }
        SendOutcome::Retry { reason, .. }
        | SendOutcome::Failed { reason }
        | SendOutcome::DeadToken { reason } => {
            report.dead += 1;
            diesel::update(mine)
                .set((
                    push_outbox::status.eq("dead"),
                    push_outbox::attempts.eq(attempts),
                    push_outbox::last_error.eq(reason),
                    push_outbox::lease_until.eq(none),
                ))
                .execute(conn)?;
            if matches!(outcome, SendOutcome::DeadToken { .. }) {
                diesel::update(devices::table.find(row.device_id))
                    .set((
                        devices::disabled_at.eq(now),
                        devices::disabled_reason.eq("token rejected by the push service"),
                        devices::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                // Nothing more goes to a dead token.
                diesel::update(
                    push_outbox::table
                        .filter(push_outbox::device_id.eq(row.device_id))
                        .filter(push_outbox::status.eq_any(OPEN)),
                )
                .set((
                    push_outbox::status.eq("dead"),
                    push_outbox::last_error.eq("device disabled"),
                ))
                .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// PostgreSQL: `record` of many `Sent` outcomes in one statement (whoever holds the lease now). One
/// round trip per row to a server process cost more than the sends themselves (a pass records up to
/// `batch` rows); SQLite runs in process, where `record` row by row is cheap, and has no arrays.
fn record_sent_pg(
    conn: &mut diesel::PgConnection,
    sent: &[(Leased, SendOutcome)],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamp};
    if sent.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(sent.len());
    let mut attempts = Vec::with_capacity(sent.len());
    let mut message_ids = Vec::with_capacity(sent.len());
    for (row, outcome) in sent {
        if let SendOutcome::Sent { message_id } = outcome {
            ids.push(row.id);
            attempts.push(row.attempts + 1);
            message_ids.push(message_id.clone());
        }
    }
    diesel::sql_query(
        "UPDATE push_outbox AS o SET status = 'sent', attempts = v.attempts, sent_at = $1, \
         provider_message_id = v.message_id, lease_until = NULL \
         FROM unnest($2::bigint[], $3::int[], $4::text[]) AS v(id, attempts, message_id) \
         WHERE o.id = v.id AND o.status <> 'sent'",
    )
    .bind::<Timestamp, _>(now)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Array<Text>, _>(message_ids)
    .execute(conn)
}

/// One dispatcher pass at a fixed `now` (tests and the jobs benchmark step the time themselves).
pub async fn dispatch_once(
    db: &Db,
    gateway: &Arc<dyn PushGateway>,
    s: &DispatchSettings,
    now: DateTime<Utc>,
) -> Result<DispatchReport, AppError> {
    dispatch_pass(db, gateway, s, &FixedClock(now)).await
}

/// A clock that always says one instant.
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Rows leased ahead of the sends, in rounds of `concurrency`: a row waits at most this many rounds of sends
/// before its own starts, so its lease (60 s) covers the wait and its send (10 s each with the FCM gateway).
const LEASE_AHEAD_ROUNDS: usize = 2;

/// One dispatcher pass: up to `batch` due rows, at most `concurrency` in flight. Rows are leased (for
/// `lease`, from the clock's time then) shortly before their sends start: a lease write takes
/// [`LEASE_AHEAD_ROUNDS`] rounds of rows when fewer than one round waits. Outcomes go to a recorder running
/// beside the sends, which writes each as soon as it can, with those that ended while it wrote the previous
/// ones. A crash leaves the waiting rows leased (sent once their lease expires) and repeats only the sends
/// in flight.
pub async fn dispatch_pass(
    db: &Db,
    gateway: &Arc<dyn PushGateway>,
    s: &DispatchSettings,
    clock: &dyn Clock,
) -> Result<DispatchReport, AppError> {
    let slots = s.concurrency.max(1);
    let mut leased = 0;
    let mut left = usize::try_from(s.batch).unwrap_or(0);
    let mut drained = false;
    let mut waiting = std::collections::VecDeque::new();
    let mut sends = JoinSet::new();
    let (outcomes, inbox) = tokio::sync::mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_as_known(db.clone(), s.clone(), inbox));
    loop {
        if !drained && left > 0 && waiting.len() < slots {
            let want = (slots * LEASE_AHEAD_ROUNDS).min(left);
            let rows = lease_rows(db, s, clock.now(), want).await?;
            drained = rows.len() < want;
            left -= rows.len();
            leased += rows.len();
            waiting.extend(rows);
        }
        let stamp = clock.now().naive_utc();
        while sends.len() < slots {
            let Some(row) = waiting.pop_front() else {
                break;
            };
            if row.expires_at.is_some_and(|e| e <= stamp) {
                let reason = "expired before it could be delivered".to_owned();
                let _ = outcomes.send((row, SendOutcome::Failed { reason }, clock.now()));
                continue;
            }
            let gw = Arc::clone(gateway);
            sends.spawn(async move {
                let msg = message(&row, stamp);
                let outcome = gw.send(&msg).await;
                (row, outcome)
            });
        }
        match sends.join_next().await {
            Some(Ok((row, outcome))) => {
                let _ = outcomes.send((row, outcome, clock.now()));
            }
            Some(Err(e)) => tracing::error!(error = %e, "push send task failed"),
            None if waiting.is_empty() => break,
            None => {}
        }
    }
    drop(outcomes);
    let mut report = recorder
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("push recorder failed: {e}")))??;
    report.leased = leased;
    Ok(report)
}

/// Records outcomes as they arrive: waits for one, takes every other one already there, writes them
/// together; until the pass has no more.
async fn record_as_known(
    db: Db,
    s: DispatchSettings,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<(Leased, SendOutcome, DateTime<Utc>)>,
) -> Result<DispatchReport, AppError> {
    let mut report = DispatchReport::default();
    while let Some(first) = inbox.recv().await {
        let mut now = first.2;
        let mut batch = vec![(first.0, first.1)];
        while let Ok((row, outcome, at)) = inbox.try_recv() {
            now = now.max(at);
            batch.push((row, outcome));
        }
        report = record_all(&db, &s, batch, now, report).await?;
    }
    Ok(report)
}

/// Leases up to `want` due rows at `now` and loads what their pushes need.
async fn lease_rows(
    db: &Db,
    s: &DispatchSettings,
    now: DateTime<Utc>,
    want: usize,
) -> Result<Vec<Leased>, AppError> {
    let (me, lease_for) = (s.id.clone(), s.lease);
    let want = i64::try_from(want).unwrap_or(i64::MAX);
    db.write(move |c| {
        let ids = lease(c, &me, now.naive_utc(), lease_for, want)?;
        Ok(if ids.is_empty() {
            Vec::new()
        } else {
            load(c, &ids)?
        })
    })
    .await
}

/// Records outcomes in one write and adds them to `report`.
async fn record_all(
    db: &Db,
    s: &DispatchSettings,
    outcomes: Vec<(Leased, SendOutcome)>,
    now: DateTime<Utc>,
    mut report: DispatchReport,
) -> Result<DispatchReport, AppError> {
    if outcomes.is_empty() {
        return Ok(report);
    }
    let (me, max) = (s.id.clone(), s.max_attempts);
    let stamp = now.naive_utc();
    db.write(move |c| {
        let outcomes = match c {
            DbConn::Pg(pg) => {
                let (sent, rest): (Vec<_>, Vec<_>) = outcomes
                    .into_iter()
                    .partition(|(_, o)| matches!(o, SendOutcome::Sent { .. }));
                report.sent += sent.len();
                record_sent_pg(pg, &sent, stamp)?;
                rest
            }
            DbConn::Sqlite(_) => outcomes,
        };
        for (row, outcome) in &outcomes {
            record(c, &me, row, outcome, stamp, max, &mut report)?;
        }
        Ok(report)
    })
    .await
}
