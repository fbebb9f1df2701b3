//! The jobs that turn dates into reminders and due reminders into notifications. Every step is safe to run
//! twice, concurrently, after a crash, or on several instances sharing one PostgreSQL: reminders are unique
//! per (kind, subject, occasion, lead) and inserted with `ON CONFLICT DO NOTHING`; a due reminder is claimed
//! by a conditional update before its notification is written (with a dedupe key too).
//!
//! The clock is injected: [`tick`] takes the instant to act at; the server calls it every minute.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;

use crate::db::repo::notifications::{self, Planned};
use crate::db::repo::reminders::{self as repo, Occasion};
use crate::db::schema::preferences;
use crate::db::{Db, DbConn};
use crate::domain::calendar::local_date;
use crate::domain::reminders::{
    Feb29Rule, Kind, digest_body, digest_bucket, local_instant, lunar_keys, solar_keys,
};
use crate::error::AppError;

/// Scheduler settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Look-ahead window in days (fire dates from today to today + window).
    pub window_days: i64,
    /// Where 29 February birthdays go in common years.
    pub feb29: Feb29Rule,
    /// Local minute of the day at which date reminders fall due (the morning digest time by default).
    pub due_minute: u32,
    /// Most reminders turned into notifications per tick.
    pub batch: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window_days: 7,
            feb29: Feb29Rule::Feb28,
            due_minute: 8 * 60 + 30,
            batch: 5000,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Reminders created.
    pub created: usize,
    /// Reminders cancelled or handed to another manager.
    pub followed: usize,
    /// Notifications written.
    pub notified: usize,
}

/// The occasions of each date kind whose fire date is `fire`.
fn occasions(fire: NaiveDate, s: &Settings) -> Vec<Occasion> {
    let due = local_instant(fire, s.due_minute / 60, s.due_minute % 60).naive_utc();
    let kinds = [
        Kind::CustomerBirthday,
        Kind::ContactBirthday,
        Kind::HoldingMaturity,
        Kind::LoanDue,
        Kind::LoanOverdue,
        Kind::NextVisit,
    ];
    kinds
        .into_iter()
        .flat_map(|kind| {
            kind.default_leads().iter().map(move |&lead| Occasion {
                kind,
                occasion: fire + Duration::days(i64::from(lead)),
                lead,
                fire,
                due,
            })
        })
        .collect()
}

/// Creates the reminders whose fire dates fall in `[today, today + window]` (set-based, one statement per
/// kind, occasion and lead).
pub fn generate(conn: &mut DbConn, now: DateTime<Utc>, s: &Settings) -> QueryResult<usize> {
    let today = local_date(now);
    let stamp = now.naive_utc();
    let mut created = 0;
    for day in 0..=s.window_days {
        let fire = today + Duration::days(day);
        for o in occasions(fire, s) {
            created += match o.kind {
                Kind::CustomerBirthday => repo::customer_birthdays(
                    conn,
                    o,
                    &solar_keys(o.occasion, s.feb29),
                    &lunar_keys(o.occasion),
                    stamp,
                )?,
                Kind::ContactBirthday => repo::contact_birthdays(
                    conn,
                    o,
                    &solar_keys(o.occasion, s.feb29),
                    &lunar_keys(o.occasion),
                    stamp,
                )?,
                Kind::HoldingMaturity => repo::maturities(conn, o, stamp)?,
                Kind::LoanDue | Kind::LoanOverdue => repo::loans(conn, o, stamp)?,
                Kind::NextVisit => repo::next_visits(conn, o, stamp)?,
                _ => 0,
            };
        }
    }
    Ok(created)
}

/// Whether these users want the morning digest (default yes).
fn digest_wanted(conn: &mut DbConn, users: &[i64]) -> QueryResult<HashMap<i64, bool>> {
    let rows: Vec<(i64, bool)> = preferences::table
        .filter(preferences::user_id.eq_any(users))
        .select((preferences::user_id, preferences::digest_enabled))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Turns due reminders into notifications. Date reminders of users who take the morning digest go to the
/// inbox without a push of their own, and one digest push per user and day carries the counts.
pub fn notify_due(conn: &mut DbConn, now: DateTime<Utc>, s: &Settings) -> QueryResult<usize> {
    let stamp = now.naive_utc();
    let due = repo::due(conn, stamp, s.batch)?;
    if due.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
    let mine: std::collections::HashSet<i64> = repo::mark_notified(conn, &ids, stamp)?
        .into_iter()
        .collect();
    let mut users: Vec<i64> = due.iter().map(|d| d.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let digest = digest_wanted(conn, &users)?;
    let today = local_date(now);
    let mut planned = Vec::new();
    let mut counts: HashMap<i64, crate::domain::reminders::DigestCounts> = HashMap::new();
    for d in due.iter().filter(|d| mine.contains(&d.id)) {
        let Some(kind) = Kind::parse(&d.kind) else {
            continue;
        };
        let bundled = kind.in_digest() && digest.get(&d.user_id).copied().unwrap_or(true);
        if bundled {
            digest_bucket(kind, counts.entry(d.user_id).or_default());
        }
        let link: &'static str = match d.subject_type.as_str() {
            "customer" => "customer",
            "contact" => "contact",
            "holding" => "holding",
            "visit" => "visit",
            "task" => "task",
            _ => "reminder",
        };
        planned.push(Planned {
            user_id: d.user_id,
            kind,
            lead: d.lead_days,
            link: Some((link, d.subject_id)),
            reminder_id: Some(d.id),
            dedupe_key: Some(format!("r:{}", d.id)),
            at: d.due_at.max(stamp - Duration::hours(1)),
            push: !bundled,
        });
    }
    let mut written = notifications::notify(conn, &planned, stamp)?;
    // One digest per user and day; its text is written in the user's language by a second, pushed note.
    let digests: Vec<Planned> = counts
        .keys()
        .map(|&user_id| Planned {
            user_id,
            kind: Kind::Digest,
            lead: 0,
            link: Some(("today", 0)),
            reminder_id: None,
            dedupe_key: Some(format!("digest:{user_id}:{today}")),
            at: stamp,
            push: true,
        })
        .collect();
    written += notifications::notify(conn, &digests, stamp)?;
    // The digest's body carries the day's counts, in the user's language.
    let users: Vec<i64> = counts.keys().copied().collect();
    let prefs = notifications::delivery_prefs(conn, &users)?;
    for (user_id, c) in counts {
        let lang = prefs.get(&user_id).map(|p| p.0).unwrap_or_default();
        notifications::set_body(
            conn,
            &format!("digest:{user_id}:{today}"),
            &digest_body(c, lang),
        )?;
    }
    Ok(written)
}

/// One scheduler pass at `now`: follow moved/archived customers, generate the window, notify what is due.
/// Each step is its own transaction, so a crash between them loses nothing.
pub async fn tick(db: &Db, now: DateTime<Utc>, s: Settings) -> Result<TickReport, AppError> {
    let followed = db
        .write(move |c| Ok(repo::follow_customers(c, now.naive_utc())?))
        .await?;
    let created = db.write(move |c| Ok(generate(c, now, &s)?)).await?;
    let notified = db.write(move |c| Ok(notify_due(c, now, &s)?)).await?;
    Ok(TickReport {
        created,
        followed,
        notified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occasions_of_a_fire_date() {
        let fire = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let o = occasions(fire, &Settings::default());
        let birthday: Vec<_> = o
            .iter()
            .filter(|x| x.kind == Kind::CustomerBirthday)
            .map(|x| (x.lead, x.occasion))
            .collect();
        assert_eq!(birthday, [(3, fire + Duration::days(3)), (0, fire)]);
        let overdue = o.iter().find(|x| x.kind == Kind::LoanOverdue).unwrap();
        assert_eq!(
            overdue.occasion,
            fire - Duration::days(1),
            "first overdue day is the day after"
        );
        // Due at 08:30 Shanghai = 00:30 UTC.
        assert_eq!(o[0].due.to_string(), "2026-11-23 00:30:00");
    }
}
