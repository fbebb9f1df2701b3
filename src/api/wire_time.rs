//! Instants and dates written to JSON without going through `core::fmt`, and request dates read strictly.
//!
//! Every instant has one shape on the wire: RFC 3339 in UTC with `Z` and exactly six fraction digits
//! (`2026-11-23T08:30:00.000000Z`); dates are `YYYY-MM-DD`. chrono serializes through its `Display`
//! machinery (`collect_str`, one `write_char` at a time): on a page of users that was a twelfth of the
//! request. These functions write the same text as chrono's `SecondsFormat::Micros` from a stack buffer, and
//! hand anything unusual (a leap second, a year outside 0000–9999) to chrono. Used as `#[serde(serialize_with = "…")]` on response fields; the field types, and
//! so the OpenAPI schemas, stay chrono's. The tests compare the output with chrono's for many values.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `n` as `width` zero-padded digits at `buf[at..]`.
fn digits(buf: &mut [u8], at: usize, width: usize, mut n: u32) {
    for i in (at..at + width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DD` into `buf[..10]`; false for years chrono writes differently.
fn write_date(buf: &mut [u8], d: NaiveDate) -> bool {
    let Ok(year) = u32::try_from(d.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    digits(buf, 0, 4, year);
    buf[4] = b'-';
    digits(buf, 5, 2, d.month());
    buf[7] = b'-';
    digits(buf, 8, 2, d.day());
    true
}

/// The RFC 3339 text of `t` into `buf`, and its length; `None` where chrono must write it.
fn format_instant(t: &DateTime<Utc>, buf: &mut [u8; 32]) -> Option<usize> {
    let naive = t.naive_utc();
    let nanos = naive.nanosecond();
    if nanos >= 1_000_000_000 || !write_date(buf, naive.date()) {
        return None;
    }
    buf[10] = b'T';
    digits(buf, 11, 2, naive.hour());
    buf[13] = b':';
    digits(buf, 14, 2, naive.minute());
    buf[16] = b':';
    digits(buf, 17, 2, naive.second());
    // One shape for every instant: always six fraction digits (microseconds, what is stored).
    buf[19] = b'.';
    digits(buf, 20, 6, nanos / 1_000);
    let len = 26;
    buf[len] = b'Z';
    Some(len + 1)
}

/// A written buffer as the string it is (only ASCII digits and separators were written).
fn ascii(buf: &[u8]) -> &str {
    std::str::from_utf8(buf).unwrap_or_default()
}

/// `serialize_with` for a `DateTime<Utc>`: RFC 3339 in UTC, `Z`, always six fraction digits
/// (`2026-11-23T08:30:00.000000Z`), as chrono's `SecondsFormat::Micros` writes it.
pub fn instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 32];
    match format_instant(t, &mut buf) {
        Some(len) => s.serialize_str(ascii(&buf[..len])),
        None => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
}

/// `serialize_with` for an `Option<DateTime<Utc>>`.
pub fn instant_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => instant(t, s),
        None => s.serialize_none(),
    }
}

/// `serialize_with` for a `NaiveDate`.
pub fn date<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 10];
    if write_date(&mut buf, *d) {
        s.serialize_str(ascii(&buf))
    } else {
        d.serialize(s)
    }
}

/// `serialize_with` for an `Option<NaiveDate>`.
pub fn date_opt<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => date(d, s),
        None => s.serialize_none(),
    }
}

/// The first year of a date the API accepts (a birthday in 1800 or year 0 is a typing mistake).
pub const FIRST_YEAR: i32 = 1900;
/// The last year of a date the API accepts.
pub const LAST_YEAR: i32 = 2100;

/// Parses a business date written exactly `YYYY-MM-DD` (zero-padded, nothing around it) in
/// [`FIRST_YEAR`]..=[`LAST_YEAR`].
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (FIRST_YEAR..=LAST_YEAR).contains(&d.year()))
}

const DATE_EXPECTED: &str = "a date written YYYY-MM-DD, between 1900-01-01 and 2100-12-31";

fn strict<E: serde::de::Error>(s: &str) -> Result<NaiveDate, E> {
    parse_date(s).ok_or_else(|| E::custom(DATE_EXPECTED))
}

/// `deserialize_with` for a `NaiveDate` in a request: [`parse_date`].
pub fn date_in<'de, D: Deserializer<'de>>(de: D) -> Result<NaiveDate, D::Error> {
    strict(&String::deserialize(de)?)
}

/// `deserialize_with` for an `Option<NaiveDate>` in a request (with `#[serde(default)]`).
pub fn date_in_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<NaiveDate>, D::Error> {
    Option::<String>::deserialize(de)?
        .map(|s| strict(&s))
        .transpose()
}

/// `deserialize_with` for a patch's `Option<Option<NaiveDate>>` (with `#[serde(default)]`): absent is
/// `None`, `null` is `Some(None)`.
pub fn date_in_patch<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<NaiveDate>>, D::Error> {
    date_in_opt(de).map(Some)
}

/// Parses an instant in a request: RFC 3339 with its offset (`Z`, `+08:00`). A time without an offset is
/// refused with a message that says so: it is ambiguous (Beijing time or UTC?).
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, &'static str> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"));
    Err(if local.is_ok() {
        "the time has no UTC offset: add `Z` (UTC) or `+08:00` (Beijing time)"
    } else {
        "an RFC 3339 instant such as 2026-12-08T09:30:00+08:00"
    })
}

/// `deserialize_with` for a `DateTime<Utc>` in a request: [`parse_instant`].
pub fn instant_in<'de, D: Deserializer<'de>>(de: D) -> Result<DateTime<Utc>, D::Error> {
    parse_instant(&String::deserialize(de)?).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an `Option<DateTime<Utc>>` in a request (with `#[serde(default)]`).
pub fn instant_in_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(de)?
        .map(|s| parse_instant(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// `deserialize_with` for a patch's `Option<Option<DateTime<Utc>>>` (with `#[serde(default)]`): absent is
/// `None`, `null` is `Some(None)`.
pub fn instant_in_patch<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    instant_in_opt(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeDelta};

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "instant")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "instant_opt")]
        o: Option<DateTime<Utc>>,
        #[serde(serialize_with = "date")]
        d: NaiveDate,
        #[serde(serialize_with = "date_opt")]
        e: Option<NaiveDate>,
    }

    #[test]
    fn request_dates_are_written_one_way_within_plausible_years() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(parse_date("2026-02-03"), d(2026, 2, 3));
        assert_eq!(parse_date("1900-01-01"), d(1900, 1, 1));
        assert_eq!(parse_date("2100-12-31"), d(2100, 12, 31));
        for bad in [
            "2026-2-3",
            "2026-02-3",
            "1800-05-01",
            "0000-01-01",
            "2101-01-01",
            "2026-02-30",
            "2026/02/03",
            " 2026-02-03",
            "2026-02-03T00:00",
            "+2026-02-03",
            "20260203",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_instants_need_their_offset() {
        let utc = |s| parse_instant(s).map(|t| t.to_rfc3339());
        assert_eq!(
            utc("2026-12-08T09:30:00+08:00"),
            Ok("2026-12-08T01:30:00+00:00".into())
        );
        assert_eq!(
            utc("2026-12-08T01:30:00.5Z"),
            Ok("2026-12-08T01:30:00.500+00:00".into())
        );
        for local in [
            "2026-12-08T09:30:00",
            "2026-12-08T09:30:00.123",
            "2026-12-08 09:30:00",
        ] {
            assert!(
                parse_instant(local).unwrap_err().contains("no UTC offset"),
                "{local}"
            );
        }
        assert!(parse_instant("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[derive(Serialize)]
    struct Chronos {
        t: String,
        o: Option<String>,
        d: NaiveDate,
        e: Option<NaiveDate>,
    }

    fn same(t: DateTime<Utc>, d: NaiveDate) {
        let ours = Ours {
            t,
            o: Some(t),
            d,
            e: Some(d),
        };
        let micros = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let chronos = Chronos {
            t: micros.clone(),
            o: Some(micros),
            d,
            e: Some(d),
        };
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&chronos).unwrap(),
            "{t:?} {d:?}"
        );
    }

    #[test]
    fn writes_what_chrono_writes_with_six_fraction_digits() {
        let base = NaiveDateTime::parse_from_str("2026-11-23 08:30:00", "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        // Every fraction width: none, millis, micros, nanos; and odd steps across days and years.
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            123_456,
            5_000_000,
            999_999_999,
            100_000_000,
        ] {
            for step in 0..400i64 {
                let t =
                    base + TimeDelta::nanoseconds(nanos) + TimeDelta::seconds(step * 86_399 * 7);
                same(t, t.date_naive());
            }
        }
        // Edges of the fast path and beyond it (chrono writes those).
        for (y, m, d) in [
            (1, 1, 1),
            (0, 1, 1),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 6, 15),
            (2028, 2, 29),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            same(day.and_hms_opt(23, 59, 59).unwrap().and_utc(), day);
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        same(leap, leap.date_naive());
    }

    #[test]
    fn none_is_null() {
        let day = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        let ours = Ours {
            t: day.and_hms_opt(0, 0, 0).unwrap().and_utc(),
            o: None,
            d: day,
            e: None,
        };
        let json = serde_json::to_value(&ours).unwrap();
        assert!(json["o"].is_null() && json["e"].is_null());
        assert_eq!(json["t"], "2026-02-28T00:00:00.000000Z");
    }
}
