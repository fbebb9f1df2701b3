//! The working-day calendar of the demo: China's public holidays and 调休 make-up working days of 2026.

use chrono::{Duration, NaiveDate};

use crate::db::DbConn;
use crate::db::repo::calendar;
use crate::error::AppError;

/// (first day, last day, name) of each 2026 public holiday, and (day, name) of each make-up working day:
/// the 2026 arrangement as published by the State Council (国务院办公厅关于2026年部分节假日安排的通知).
type MonthDay = (u32, u32);
const HOLIDAYS_2026: [(MonthDay, MonthDay, &str); 7] = [
    ((1, 1), (1, 3), "元旦"),
    ((2, 15), (2, 23), "春节"),
    ((4, 4), (4, 6), "清明节"),
    ((5, 1), (5, 5), "劳动节"),
    ((6, 19), (6, 21), "端午节"),
    ((9, 25), (9, 27), "中秋节"),
    ((10, 1), (10, 7), "国庆节"),
];
const WORKDAYS_2026: [(MonthDay, &str); 6] = [
    ((1, 4), "元旦调休上班"),
    ((2, 14), "春节调休上班"),
    ((2, 28), "春节调休上班"),
    ((5, 9), "劳动节调休上班"),
    ((9, 20), "国庆节调休上班"),
    ((10, 10), "国庆节调休上班"),
];

fn date(year: i32, (m, d): (u32, u32)) -> Result<NaiveDate, AppError> {
    NaiveDate::from_ymd_opt(year, m, d)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad demo calendar date {m}-{d}")))
}

/// Every entry of the 2026 calendar: (date, working, name).
pub fn china_2026() -> Result<Vec<(NaiveDate, bool, String)>, AppError> {
    let mut days = Vec::new();
    for (from, to, name) in HOLIDAYS_2026 {
        let (mut d, last) = (date(2026, from)?, date(2026, to)?);
        while d <= last {
            days.push((d, false, name.to_owned()));
            d += Duration::days(1);
        }
    }
    for (day, name) in WORKDAYS_2026 {
        days.push((date(2026, day)?, true, name.to_owned()));
    }
    days.sort_by_key(|d| d.0);
    Ok(days)
}

/// Loads the 2026 calendar.
pub fn load(conn: &mut DbConn) -> Result<(), AppError> {
    calendar::replace_year(conn, 2026, &china_2026()?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    #[test]
    fn china_2026_has_33_holidays_and_6_make_up_days() {
        let days = super::china_2026().unwrap();
        assert_eq!(
            days.iter().filter(|d| !d.1).count(),
            3 + 9 + 3 + 5 + 3 + 3 + 7
        );
        let make_up: Vec<_> = days.iter().filter(|d| d.1).collect();
        assert_eq!(make_up.len(), 6);
        // Every make-up working day is a weekend day.
        assert!(
            make_up
                .iter()
                .all(|d| d.0.weekday().number_from_monday() >= 6)
        );
    }
}
