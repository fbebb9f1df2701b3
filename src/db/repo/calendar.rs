//! The working-day calendar: public holidays (`working = false`) and 调休 make-up working days
//! (`working = true`) loaded per year by admins; days without an entry follow the weekday
//! (`domain::reminders::is_working_day`).

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::calendar_days;

/// One calendar entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = calendar_days)]
pub struct CalendarDay {
    pub day: NaiveDate,
    pub working: bool,
    pub name: String,
    pub year: i32,
}

/// The entries of `year`, by date.
pub fn list_year(conn: &mut DbConn, year: i32) -> QueryResult<Vec<CalendarDay>> {
    calendar_days::table
        .filter(calendar_days::year.eq(year))
        .order(calendar_days::day.asc())
        .select(CalendarDay::as_select())
        .load(conn)
}

/// Replaces every entry of `year` with `days` (each must be in `year`; the caller checks).
pub fn replace_year(
    conn: &mut DbConn,
    year: i32,
    days: &[(NaiveDate, bool, String)],
) -> QueryResult<usize> {
    diesel::delete(calendar_days::table.filter(calendar_days::year.eq(year))).execute(conn)?;
    let rows: Vec<_> = days
        .iter()
        .map(|(d, w, n)| {
            (
                calendar_days::day.eq(*d),
                calendar_days::working.eq(*w),
                calendar_days::name.eq(n),
                calendar_days::year.eq(year),
            )
        })
        .collect();
    let mut n = 0;
    for chunk in rows.chunks(200) {
        let q = diesel::insert_into(calendar_days::table).values(chunk);
        // Multi-row inserts run on the concrete backend.
        n += crate::per_backend!(&mut *conn, |c| q.execute(c))?;
    }
    Ok(n)
}

/// The entries between `from` and `to` (inclusive): date → working.
pub fn entries(
    conn: &mut DbConn,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<HashMap<NaiveDate, bool>> {
    let rows: Vec<(NaiveDate, bool)> = calendar_days::table
        .filter(calendar_days::day.between(from, to))
        .select((calendar_days::day, calendar_days::working))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}
