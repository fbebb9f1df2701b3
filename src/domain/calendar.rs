//! Business dates: "today" is an Asia/Shanghai date, and birthdays are matched by month-day with the
//! 29 February rule (celebrated on 28 February in common years).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;

/// The Asia/Shanghai date at `now`.
pub fn local_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Shanghai).date_naive()
}

/// `MM-DD` of a date, as stored in `birthday_md`.
pub fn month_day(d: NaiveDate) -> String {
    format!("{:02}-{:02}", d.month(), d.day())
}

/// The `MM-DD` keys whose birthdays fall within `days` days from `from` (inclusive). In a common year, a
/// 28 February in range also brings 29 February birthdays.
pub fn birthday_keys(from: NaiveDate, days: u32) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..=i64::from(days.min(366)) {
        let d = from + Duration::days(i);
        keys.push(month_day(d));
        if d.month() == 2 && d.day() == 28 && NaiveDate::from_ymd_opt(d.year(), 2, 29).is_none() {
            keys.push("02-29".to_owned());
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn shanghai_date_turns_at_16_utc() {
        assert_eq!(
            local_date(Utc.with_ymd_and_hms(2026, 11, 23, 15, 59, 0).unwrap()),
            d(2026, 11, 23)
        );
        assert_eq!(
            local_date(Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap()),
            d(2026, 11, 24)
        );
    }

    #[test]
    fn birthday_windows() {
        assert_eq!(
            birthday_keys(d(2026, 12, 30), 3),
            ["01-01", "01-02", "12-30", "12-31"]
        );
        assert!(
            birthday_keys(d(2027, 2, 27), 1).contains(&"02-29".to_owned()),
            "common year"
        );
        assert!(
            !birthday_keys(d(2028, 2, 27), 1).contains(&"02-29".to_owned()),
            "leap year: on its own day"
        );
        assert!(birthday_keys(d(2028, 2, 27), 2).contains(&"02-29".to_owned()));
    }
}
