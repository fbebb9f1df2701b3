//! Timestamps and dates read without chrono's format parser on SQLite.
//!
//! SQLite keeps them as text (`2026-11-23 08:30:00` or `2026-11-23 08:30:00.123456`, as diesel writes
//! them), and diesel decodes each value with `parse_from_str`, which interprets the format string for every
//! value: on the busiest lists (a page of users, the phone's home screen) that was a tenth of the request.
//! [`Ts`], [`OptTs`] and [`Day`] read diesel's own layout directly and fall back to diesel's decoder for
//! anything else; on PostgreSQL (binary values) they are diesel's decoders. Used on hot read paths with
//! `#[diesel(deserialize_as = …)]`; the fields keep chrono's types.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql, FromSqlRow, Queryable};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::{Date, Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteValue};

use super::{MultiBackend, MultiRawValue};

/// A `Timestamp` column as `NaiveDateTime`.
#[derive(Debug, Clone, Copy, FromSqlRow)]
pub struct Ts(pub NaiveDateTime);

/// A nullable `Timestamp` column as `Option<NaiveDateTime>`.
#[derive(Debug, Clone, Copy)]
pub struct OptTs(pub Option<NaiveDateTime>);

/// A `Date` column as `NaiveDate`.
#[derive(Debug, Clone, Copy, FromSqlRow)]
pub struct Day(pub NaiveDate);

impl From<Ts> for NaiveDateTime {
    fn from(t: Ts) -> Self {
        t.0
    }
}

impl From<OptTs> for Option<NaiveDateTime> {
    fn from(t: OptTs) -> Self {
        t.0
    }
}

impl From<Day> for NaiveDate {
    fn from(d: Day) -> Self {
        d.0
    }
}

/// `digits` ASCII digits as a number; `None` on anything else.
fn number(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// `YYYY-MM-DD`.
fn parse_date(s: &[u8]) -> Option<NaiveDate> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let year = i32::try_from(number(&s[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&s[5..7])?, number(&s[8..10])?)
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1 to 9 digits (a `T` separator is accepted).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = parse_date(&b[..10])?;
    let (h, m, sec) = (
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
    );
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            number(frac)? * 10u32.pow(9 - u32::try_from(frac.len()).ok()?)
        }
        _ => return None,
    };
    Some(date.and_time(NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?))
}

impl FromSql<Timestamp, Sqlite> for Ts {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        if let Some(t) = parse_timestamp(value.read_text()) {
            return Ok(Ts(t));
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Ts)
    }
}

impl FromSql<Timestamp, Pg> for Ts {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Ts)
    }
}

impl FromSql<Date, Sqlite> for Day {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        if let Some(d) = parse_date(value.read_text().as_bytes()) {
            return Ok(Day(d));
        }
        <NaiveDate as FromSql<Date, Sqlite>>::from_sql(value).map(Day)
    }
}

impl FromSql<Date, Pg> for Day {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDate as FromSql<Date, Pg>>::from_sql(value).map(Day)
    }
}

/// The two-backend connection's values: each backend's own decoder above.
macro_rules! multi_backend {
    ($($ty:ty: $st:ty),*) => {$(
        impl FromSql<$st, MultiBackend> for $ty {
            fn from_sql(value: MultiRawValue<'_>) -> deserialize::Result<Self> {
                value.from_sql::<Self, $st>()
            }
        }
    )*};
}

multi_backend!(Ts: Timestamp, Day: Date);

impl<DB> Queryable<Nullable<Timestamp>, DB> for OptTs
where
    DB: diesel::backend::Backend,
    Option<Ts>: diesel::deserialize::FromStaticSqlRow<Nullable<Timestamp>, DB>,
{
    type Row = Option<Ts>;

    fn build(row: Option<Ts>) -> deserialize::Result<Self> {
        Ok(OptTs(row.map(|t| t.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap_or_default()
    }

    #[test]
    fn reads_the_layouts_diesel_writes() {
        assert_eq!(
            parse_timestamp("2026-11-23 08:30:00"),
            Some(at("2026-11-23 08:30:00.0"))
        );
        assert_eq!(
            parse_timestamp("2026-02-28 23:59:59.123456"),
            Some(at("2026-02-28 23:59:59.123456"))
        );
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:01.5"),
            Some(at("2024-02-29 00:00:01.5"))
        );
        assert_eq!(
            parse_date(b"2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }

    #[test]
    fn leaves_anything_else_to_the_fallback() {
        for s in [
            "2025-02-29 00:00:00",
            "2026-11-23 24:00:00",
            "2026-11-23",
            "2026-11-23 08:30",
            "2026-11-23 08:30:00Z",
            "2026-11-23 08:30:00.",
            "2026-11-23 08:30:00.1234567890",
            "2460000.5",
            "２０26-11-23 08:30:00",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
        assert_eq!(parse_date(b"2026-13-01"), None);
    }
}

/// The fast path and the fallback against diesel's own decoder, on a real SQLite connection.
#[cfg(test)]
mod against_diesel {
    use super::*;
    use diesel::dsl::sql;
    use diesel::prelude::*;

    fn both(
        conn: &mut SqliteConnection,
        expr: &str,
    ) -> (QueryResult<NaiveDateTime>, QueryResult<NaiveDateTime>) {
        let ours = diesel::select(sql::<Timestamp>(expr))
            .get_result::<Ts>(conn)
            .map(|t| t.0);
        let diesels = diesel::select(sql::<Timestamp>(expr)).get_result::<NaiveDateTime>(conn);
        (ours, diesels)
    }

    #[test]
    fn every_stored_form_reads_as_diesel_reads_it() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        for expr in [
            "'2026-11-23 08:30:00'",
            "'2026-11-23 08:30:00.123456'",
            "'2026-11-23T08:30:00'",
            "'2026-11-23 08:30'",
            "'2026-11-23T08:30:00Z'",
            "'2026-11-23 08:30:00.1234567890'",
            "2461367.5",
            "CURRENT_TIMESTAMP",
        ] {
            let (ours, diesels) = both(&mut conn, expr);
            assert!(diesels.is_ok(), "{expr}: diesel reads it");
            assert_eq!(ours.ok(), diesels.ok(), "{expr}");
        }
        let (ours, diesels) = both(&mut conn, "'not a time'");
        assert!(ours.is_err() && diesels.is_err());
        let day = diesel::select(sql::<Date>("'2024-02-29'")).get_result::<Day>(&mut conn);
        assert_eq!(day.ok().map(|d| d.0), NaiveDate::from_ymd_opt(2024, 2, 29));
        let day = diesel::select(sql::<Date>("2460369.5"))
            .get_result::<Day>(&mut conn)
            .map(|d| d.0);
        let diesels = diesel::select(sql::<Date>("2460369.5")).get_result::<NaiveDate>(&mut conn);
        assert_eq!(day.ok(), diesels.ok());
    }
}
