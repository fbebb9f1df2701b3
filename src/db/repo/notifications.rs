//! Writing the inbox and the push outbox: one `notify` for events (task assigned, important change…) and
//! for due reminders alike.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{devices, notifications, preferences, push_outbox, users};
use crate::domain::reminders::{Kind, Lang, Quiet, deliver_at, texts};

/// A notification to write.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Recipient.
    pub user_id: i64,
    /// What it is about.
    pub kind: Kind,
    /// Days before the occasion (for the text; 0 for events).
    pub lead: i32,
    /// Deep link for the app: (type, id).
    pub link: Option<(&'static str, i64)>,
    /// The reminder it comes from.
    pub reminder_id: Option<i64>,
    /// Unique key: a second `notify` with the same key writes nothing (e.g. `r:<reminder id>`).
    pub dedupe_key: Option<String>,
    /// Planned time (UTC): when it enters the inbox. Its push waits out the user's quiet hours unless the
    /// kind is urgent.
    pub at: NaiveDateTime,
    /// Whether to push it (false: inbox only, e.g. reminders bundled into the morning digest).
    pub push: bool,
}

impl Planned {
    /// One event notification per user about `link`, pushed, planned for `at` (urgent kinds go out at once,
    /// others wait out quiet hours). The dedupe key `{key}:{link id}:{user}` keeps a retried event from
    /// reaching anyone twice.
    pub fn events(
        users: impl IntoIterator<Item = i64>,
        kind: Kind,
        key: &str,
        link: (&'static str, i64),
        at: NaiveDateTime,
    ) -> Vec<Planned> {
        users
            .into_iter()
            .map(|user_id| Planned {
                user_id,
                kind,
                lead: 0,
                link: Some(link),
                reminder_id: None,
                dedupe_key: Some(format!("{key}:{}:{user_id}", link.1)),
                at,
                push: true,
            })
            .collect()
    }
}

/// Language and quiet hours of these users (defaults where they set none).
pub fn delivery_prefs(
    conn: &mut DbConn,
    user_ids: &[i64],
) -> QueryResult<HashMap<i64, (Lang, Quiet)>> {
    let rows: Vec<(i64, String, i32, i32)> = preferences::table
        .filter(preferences::user_id.eq_any(user_ids))
        .select((
            preferences::user_id,
            preferences::language,
            preferences::quiet_start,
            preferences::quiet_end,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(u, lang, s, e)| {
            let quiet = Quiet {
                start: u32::try_from(s).unwrap_or(0),
                end: u32::try_from(e).unwrap_or(0),
            };
            (u, (Lang::parse(&lang), quiet))
        })
        .collect())
}

/// How long a push stays relevant (its TTL and the outbox expiry): urgent events a day, date reminders
/// until the end of the occasion, roughly.
pub fn relevance(kind: Kind) -> Duration {
    if kind.urgent() {
        Duration::hours(24)
    } else {
        Duration::hours(16)
    }
}

/// The active leaders of an org (who hear of important changes its managers report).
pub fn leaders_of_org(conn: &mut DbConn, org_id: i64) -> QueryResult<Vec<i64>> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::role.eq("leader"))
        .filter(users::active.eq(true))
        .order(users::id.asc())
        .select(users::id)
        .load(conn)
}

/// Which of these dedupe keys already have a notification.
pub fn existing_keys(conn: &mut DbConn, keys: &[String]) -> QueryResult<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in keys.chunks(10_000) {
        let found: Vec<Option<String>> = notifications::table
            .filter(notifications::dedupe_key.eq_any(chunk))
            .select(notifications::dedupe_key)
            .load(conn)?;
        out.extend(found.into_iter().flatten());
    }
    Ok(out)
}

/// Writes inbox rows and, for `push` ones, an outbox row per enabled device of the recipient. Rows whose
/// `dedupe_key` exists already are skipped. Returns how many notifications were written.
pub fn notify(conn: &mut DbConn, planned: &[Planned], now: NaiveDateTime) -> QueryResult<usize> {
    if planned.is_empty() {
        return Ok(0);
    }
    let mut users: Vec<i64> = planned.iter().map(|p| p.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let prefs = delivery_prefs(conn, &users)?;
    let keys: Vec<String> = planned
        .iter()
        .filter_map(|p| p.dedupe_key.clone())
        .collect();
    let mut seen = existing_keys(conn, &keys)?;
    // Rows to write, split by whether they are pushed; written in multi-row inserts that skip a dedupe key
    // a concurrent pass wrote first (`ON CONFLICT DO NOTHING`) and return what they wrote.
    let mut rows: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    for p in planned {
        if let Some(key) = &p.dedupe_key
            && !seen.insert(key.clone())
        {
            continue;
        }
        let (lang, quiet) = prefs.get(&p.user_id).copied().unwrap_or_default();
        let (title, body) = texts(p.kind, p.lead, lang);
        // The inbox shows it at its planned time; only the push waits out quiet hours (and lives from then).
        let at = p.at;
        let push_at = deliver_at(at.and_utc(), quiet, p.kind.urgent()).naive_utc();
        rows[usize::from(p.push)].push((
            notifications::user_id.eq(p.user_id),
            notifications::kind.eq(p.kind.as_str()),
            notifications::title.eq(title),
            notifications::body.eq(body),
            notifications::link_type.eq(p.link.map(|l| l.0)),
            notifications::link_id.eq(p.link.map(|l| l.1)),
            notifications::urgent.eq(p.kind.urgent()),
            notifications::reminder_id.eq(p.reminder_id),
            notifications::dedupe_key.eq(p.dedupe_key.clone()),
            notifications::deliver_at.eq(at),
            notifications::expires_at.eq(push_at + relevance(p.kind)),
            notifications::created_at.eq(now),
        ));
    }
    let mut written = 0;
    let mut pushed: Vec<(i64, i64, NaiveDateTime, bool)> = Vec::new();
    for (push, rows) in rows.iter().enumerate() {
        for chunk in rows.chunks(200) {
            let q = diesel::insert_into(notifications::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning((
                    notifications::id,
                    notifications::user_id,
                    notifications::deliver_at,
                    notifications::urgent,
                ));
            let done: Vec<(i64, i64, NaiveDateTime, bool)> =
                crate::per_backend!(&mut *conn, |c| q.get_results(c))?;
            written += done.len();
            if push == 1 {
                pushed.extend(done);
            }
        }
    }
    if pushed.is_empty() {
        return Ok(written);
    }
    let mut push_users: Vec<i64> = pushed.iter().map(|p| p.1).collect();
    push_users.sort_unstable();
    push_users.dedup();
    let devs: Vec<(i64, i64)> = devices::table
        .filter(devices::user_id.eq_any(&push_users))
        .filter(devices::disabled_at.is_null())
        .select((devices::id, devices::user_id))
        .load(conn)?;
    let rows: Vec<_> = pushed
        .iter()
        .flat_map(|(n, u, at, urgent)| {
            let quiet = prefs.get(u).map(|p| p.1).unwrap_or_default();
            let push_at = deliver_at(at.and_utc(), quiet, *urgent).naive_utc();
            devs.iter().filter(move |d| d.1 == *u).map(move |d| {
                (
                    push_outbox::notification_id.eq(*n),
                    push_outbox::device_id.eq(d.0),
                    push_outbox::status.eq("pending"),
                    push_outbox::attempts.eq(0),
                    push_outbox::next_attempt_at.eq(push_at),
                    push_outbox::created_at.eq(now),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(500) {
        let q = diesel::insert_into(push_outbox::table).values(chunk);
        crate::per_backend!(&mut *conn, |c| q.execute(c))?;
    }
    Ok(written)
}

/// Replaces the body of the notification with this dedupe key (the digest's counts).
pub fn set_body(conn: &mut DbConn, dedupe_key: &str, body: &str) -> QueryResult<usize> {
    diesel::update(notifications::table.filter(notifications::dedupe_key.eq(dedupe_key)))
        .set(notifications::body.eq(body))
        .execute(conn)
}
