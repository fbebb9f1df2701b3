//! Users' reminder preferences: per-kind on/off and leads, quiet hours, language and the morning digest.
//! A user without a row has the defaults (`Prefs::default()`); the scheduler reads many users at once with
//! `load_prefs`. Validation of what a user sends lives in `api::preferences`, not here.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConn;
use crate::db::schema::preferences;
use crate::domain::reminders::{Kind, Lang, Quiet};

/// Default time of the morning digest: 08:30 local.
pub const DEFAULT_DIGEST_MINUTE: u32 = 8 * 60 + 30;

/// The reminder kinds a user can configure (the date-driven ones the scheduler generates).
pub fn configurable_kinds() -> impl Iterator<Item = Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| !k.default_leads().is_empty())
}

/// Whether a user may choose the leads of `kind` (days before an occasion); the overdue and
/// work-log kinds fire at a fixed point.
pub fn leads_apply(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::CustomerBirthday
            | Kind::ContactBirthday
            | Kind::HoldingMaturity
            | Kind::LoanDue
            | Kind::NextVisit
            | Kind::TaskDue
    )
}

/// One kind's setting, as stored in the `kinds` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindPref {
    /// Whether reminders of this kind are generated for the user.
    pub enabled: bool,
    /// Days before the occasion (the kind's defaults where leads do not apply).
    pub leads: Vec<i32>,
}

impl KindPref {
    /// The default setting of `kind`: on, with its default leads.
    pub fn default_for(kind: Kind) -> Self {
        Self {
            enabled: true,
            leads: kind.default_leads().to_vec(),
        }
    }
}

/// A user's effective preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    /// Language of notification texts.
    pub lang: Lang,
    /// Quiet hours (local minutes).
    pub quiet: Quiet,
    /// Whether the morning digest is sent.
    pub digest_enabled: bool,
    /// Local minute of the day the digest goes out.
    pub digest_minute: u32,
    /// Per-kind settings; a kind missing here has `KindPref::default_for(kind)`.
    pub kinds: HashMap<Kind, KindPref>,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            lang: Lang::ZhCn,
            quiet: Quiet::default(),
            digest_enabled: true,
            digest_minute: DEFAULT_DIGEST_MINUTE,
            kinds: HashMap::new(),
        }
    }
}

impl Prefs {
    /// The setting of `kind` (its default when the user chose nothing).
    pub fn kind(&self, kind: Kind) -> KindPref {
        self.kinds
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| KindPref::default_for(kind))
    }

    /// Whether reminders of `kind` are on.
    pub fn enabled(&self, kind: Kind) -> bool {
        self.kinds.get(&kind).is_none_or(|k| k.enabled)
    }

    /// The leads of `kind` (the defaults unless the user chose others and leads apply).
    pub fn leads(&self, kind: Kind) -> Vec<i32> {
        match self.kinds.get(&kind) {
            Some(k) if leads_apply(kind) => k.leads.clone(),
            _ => kind.default_leads().to_vec(),
        }
    }
}

/// A stored row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = preferences)]
pub struct PrefsRow {
    pub user_id: i64,
    pub kinds: String,
    pub quiet_start: i32,
    pub quiet_end: i32,
    pub language: String,
    pub digest_enabled: bool,
    pub digest_minute: i32,
    pub updated_at: NaiveDateTime,
}

fn minute(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0).min(24 * 60 - 1)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(0)
}

/// Parses a stored row; a `kinds` document that does not parse is a deserialization error.
pub fn from_row(row: PrefsRow) -> QueryResult<Prefs> {
    let stored: HashMap<String, KindPref> = serde_json::from_str(&row.kinds)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    let kinds = stored
        .into_iter()
        .filter_map(|(k, v)| Kind::parse(&k).map(|k| (k, v)))
        .collect();
    Ok(Prefs {
        lang: Lang::parse(&row.language),
        quiet: Quiet {
            start: minute(row.quiet_start),
            end: minute(row.quiet_end),
        },
        digest_enabled: row.digest_enabled,
        digest_minute: minute(row.digest_minute),
        kinds,
    })
}

/// The row storing `prefs` for `user_id`.
pub fn to_row(user_id: i64, prefs: &Prefs, now: NaiveDateTime) -> QueryResult<PrefsRow> {
    let kinds: std::collections::BTreeMap<&str, &KindPref> =
        prefs.kinds.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let kinds = serde_json::to_string(&kinds)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    Ok(PrefsRow {
        user_id,
        kinds,
        quiet_start: to_i32(prefs.quiet.start),
        quiet_end: to_i32(prefs.quiet.end),
        language: prefs.lang.as_str().to_owned(),
        digest_enabled: prefs.digest_enabled,
        digest_minute: to_i32(prefs.digest_minute),
        updated_at: now,
    })
}

/// The preferences of these users; users without a row are absent (use `Prefs::default()`), so callers
/// write `map.get(&id).cloned().unwrap_or_default()`.
pub fn load_prefs(conn: &mut DbConn, user_ids: &[i64]) -> QueryResult<HashMap<i64, Prefs>> {
    let mut out = HashMap::with_capacity(user_ids.len());
    // Bounded IN lists: SQLite allows 32,766 host parameters, PostgreSQL 65,535.
    for chunk in user_ids.chunks(10_000) {
        let rows: Vec<PrefsRow> = preferences::table
            .filter(preferences::user_id.eq_any(chunk))
            .select(PrefsRow::as_select())
            .load(conn)?;
        for row in rows {
            let id = row.user_id;
            out.insert(id, from_row(row)?);
        }
    }
    Ok(out)
}

/// Every stored preferences row (the users who changed a default), by user id.
pub fn load_all(conn: &mut DbConn) -> QueryResult<HashMap<i64, Prefs>> {
    let rows: Vec<PrefsRow> = preferences::table
        .select(PrefsRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| Ok((row.user_id, from_row(row)?)))
        .collect()
}

/// One user's preferences (the defaults without a row).
pub fn get(conn: &mut DbConn, user_id: i64) -> QueryResult<Prefs> {
    // One fixed statement on the backend's own connection (`/me/today` reads it on every call).
    let row: Option<PrefsRow> = crate::per_backend!(conn, |c| preferences::table
        .filter(preferences::user_id.eq(user_id))
        .select(PrefsRow::as_select())
        .first(c)
        .optional())?;
    match row {
        Some(row) => from_row(row),
        None => Ok(Prefs::default()),
    }
}

/// Stores a user's preferences (insert or replace).
pub fn put(conn: &mut DbConn, user_id: i64, prefs: &Prefs, now: NaiveDateTime) -> QueryResult<()> {
    let row = to_row(user_id, prefs, now)?;
    let q = diesel::insert_into(preferences::table)
        .values(&row)
        .on_conflict(preferences::user_id)
        .do_update()
        .set(&row);
    // Upserts are not expressible over the multi-connection backend: run on the concrete one.
    crate::per_backend!(conn, |c| q.execute(c))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_round_trip() {
        let d = Prefs::default();
        assert!(d.enabled(Kind::CustomerBirthday));
        assert_eq!(d.leads(Kind::HoldingMaturity), vec![7, 1]);
        let mut p = Prefs::default();
        p.kinds.insert(
            Kind::CustomerBirthday,
            KindPref {
                enabled: false,
                leads: vec![5],
            },
        );
        p.kinds.insert(
            Kind::LoanOverdue,
            KindPref {
                enabled: true,
                leads: vec![9],
            },
        );
        p.lang = Lang::En;
        let now = chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc();
        let back = from_row(to_row(7, &p, now).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(!back.enabled(Kind::CustomerBirthday));
        assert_eq!(back.leads(Kind::CustomerBirthday), vec![5]);
        // Leads of fixed kinds stay the defaults whatever is stored.
        assert_eq!(back.leads(Kind::LoanOverdue), vec![-1]);
        assert_eq!(configurable_kinds().count(), 9);
    }
}
