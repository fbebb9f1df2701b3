//! Reminder rules, free of I/O: which occasions fall on a date (solar and lunar birthdays with the
//! 29 February rule), the default leads of each kind, when a reminder may be delivered (quiet hours, urgent
//! kinds), working days, and the PII-safe texts a push carries.
//!
//! Dates are Asia/Shanghai business dates; instants are UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use lunar_lite::{LunarDate, SolarDate, lunar_month_days, solar_to_lunar};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a reminder or notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A customer's birthday (solar, or lunar converted to this year's solar date).
    CustomerBirthday,
    /// A key contact's birthday.
    ContactBirthday,
    /// A holding (deposit, CD, wealth product…) maturing.
    HoldingMaturity,
    /// A loan repayment falling due.
    LoanDue,
    /// A loan repayment overdue (first overdue day).
    LoanOverdue,
    /// The next visit date set in a visit report.
    NextVisit,
    /// A task falling due.
    TaskDue,
    /// A task overdue.
    TaskOverdue,
    /// No work log on a working day by 18:00.
    WorklogMissing,
    /// A leader assigned a task (urgent).
    TaskAssigned,
    /// A visit report flagged an important change (urgent, to leaders).
    ImportantChange,
    /// A customer transfer was approved or rejected.
    TransferDecided,
    /// A notice was published.
    Notice,
    /// The morning digest of the day's reminders.
    Digest,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 14] = [
        Kind::CustomerBirthday,
        Kind::ContactBirthday,
        Kind::HoldingMaturity,
        Kind::LoanDue,
        Kind::LoanOverdue,
        Kind::NextVisit,
        Kind::TaskDue,
        Kind::TaskOverdue,
        Kind::WorklogMissing,
        Kind::TaskAssigned,
        Kind::ImportantChange,
        Kind::TransferDecided,
        Kind::Notice,
        Kind::Digest,
    ];

    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CustomerBirthday => "customer_birthday",
            Kind::ContactBirthday => "contact_birthday",
            Kind::HoldingMaturity => "holding_maturity",
            Kind::LoanDue => "loan_due",
            Kind::LoanOverdue => "loan_overdue",
            Kind::NextVisit => "next_visit",
            Kind::TaskDue => "task_due",
            Kind::TaskOverdue => "task_overdue",
            Kind::WorklogMissing => "worklog_missing",
            Kind::TaskAssigned => "task_assigned",
            Kind::ImportantChange => "important_change",
            Kind::TransferDecided => "transfer_decided",
            Kind::Notice => "notice",
            Kind::Digest => "digest",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Urgent kinds go out at once, through quiet hours, with high priority.
    pub fn urgent(self) -> bool {
        matches!(self, Kind::TaskAssigned | Kind::ImportantChange)
    }

    /// Default leads in days before the occasion (negative: after it, e.g. the first overdue day).
    pub fn default_leads(self) -> &'static [i32] {
        match self {
            Kind::CustomerBirthday | Kind::ContactBirthday => &[3, 0],
            Kind::HoldingMaturity => &[7, 1],
            Kind::LoanDue => &[3],
            Kind::LoanOverdue => &[-1],
            Kind::TaskDue => &[1],
            Kind::NextVisit | Kind::TaskOverdue | Kind::WorklogMissing => &[0],
            Kind::TaskAssigned
            | Kind::ImportantChange
            | Kind::TransferDecided
            | Kind::Notice
            | Kind::Digest => &[],
        }
    }

    /// Whether the scheduler generates this kind from a date (birthday, maturity, due date…) at leads
    /// before or after it, as opposed to events and the 18:00 work-log check.
    pub fn from_dates(self) -> bool {
        !self.default_leads().is_empty() && self != Kind::WorklogMissing
    }

    /// Whether the morning digest bundles this kind (the date reminders, not events).
    pub fn in_digest(self) -> bool {
        self.from_dates()
    }
}

/// Language of texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub enum Lang {
    /// Simplified Chinese (default).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Parses the stored string (anything unknown reads as Chinese).
    pub fn parse(s: &str) -> Self {
        if s == "en" { Lang::En } else { Lang::ZhCn }
    }
}

/// Title and body of a notification: generic, never a customer's name, phone or amount (lock screens are
/// public). `lead` is the days before the occasion (negative after it).
pub fn texts(kind: Kind, lead: i32, lang: Lang) -> (String, String) {
    match lang {
        Lang::ZhCn => texts_zh(kind, lead),
        Lang::En => texts_en(kind, lead),
    }
}

/// When the occasion is, relative to the day the reminder fires, in `lang`.
fn when(lead: i32, lang: Lang) -> String {
    match (lang, lead) {
        (Lang::ZhCn, 0) => "今天".to_owned(),
        (Lang::ZhCn, 1) => "明天".to_owned(),
        (Lang::ZhCn, n) if n > 1 => format!(" {n} 天后"),
        (Lang::ZhCn, _) => "已逾期".to_owned(),
        (Lang::En, 0) => "today".to_owned(),
        (Lang::En, 1) => "tomorrow".to_owned(),
        (Lang::En, n) if n > 1 => format!("in {n} days"),
        (Lang::En, _) => "overdue".to_owned(),
    }
}

fn texts_zh(kind: Kind, lead: i32) -> (String, String) {
    let when = || when(lead, Lang::ZhCn);
    let (title, body) = match kind {
        Kind::CustomerBirthday => ("客户生日提醒", format!("您有 1 位客户{}过生日", when())),
        Kind::ContactBirthday => (
            "关键联系人生日提醒",
            format!("您有 1 位关键联系人{}过生日", when()),
        ),
        Kind::HoldingMaturity => ("产品到期提醒", format!("您有 1 笔产品{}到期", when())),
        Kind::LoanDue => ("贷款还款提醒", format!("您有 1 笔贷款{}到期还款", when())),
        Kind::LoanOverdue => ("贷款逾期提醒", "您有 1 笔贷款已逾期".to_owned()),
        Kind::NextVisit => ("回访提醒", format!("您有 1 位客户计划{}回访", when())),
        Kind::TaskDue => ("待办到期提醒", format!("您有 1 项待办{}到期", when())),
        Kind::TaskOverdue => ("待办逾期提醒", "您有 1 项待办已逾期".to_owned()),
        Kind::WorklogMissing => ("工作日志提醒", "今天的工作日志还没有填写".to_owned()),
        Kind::TaskAssigned => ("新待办", "领导给您分配了 1 项待办".to_owned()),
        Kind::ImportantChange => (
            "客户重要情况变动",
            "有 1 份走访报告标记了重要情况变动".to_owned(),
        ),
        Kind::TransferDecided => ("客户移交结果", "1 项客户移交已有审批结果".to_owned()),
        Kind::Notice => ("新通知", "您有 1 条新通知".to_owned()),
        Kind::Digest => ("今日提醒", "今天有待处理的提醒".to_owned()),
    };
    (title.to_owned(), body)
}

fn texts_en(kind: Kind, lead: i32) -> (String, String) {
    let when = || when(lead, Lang::En);
    let (title, body) = match kind {
        Kind::CustomerBirthday => (
            "Customer birthday",
            format!("A customer's birthday is {}", when()),
        ),
        Kind::ContactBirthday => (
            "Key contact birthday",
            format!("A key contact's birthday is {}", when()),
        ),
        Kind::HoldingMaturity => ("Product maturity", format!("A product matures {}", when())),
        Kind::LoanDue => (
            "Loan repayment due",
            format!("A loan repayment is due {}", when()),
        ),
        Kind::LoanOverdue => ("Loan overdue", "A loan repayment is overdue".to_owned()),
        Kind::NextVisit => (
            "Follow-up visit",
            format!("A follow-up visit is planned {}", when()),
        ),
        Kind::TaskDue => ("Task due", format!("A task is due {}", when())),
        Kind::TaskOverdue => ("Task overdue", "A task is overdue".to_owned()),
        Kind::WorklogMissing => ("Work log", "Today's work log is not written yet".to_owned()),
        Kind::TaskAssigned => ("New task", "Your leader assigned you a task".to_owned()),
        Kind::ImportantChange => (
            "Important change",
            "A visit report flags an important change".to_owned(),
        ),
        Kind::TransferDecided => (
            "Customer transfer",
            "A customer transfer was decided".to_owned(),
        ),
        Kind::Notice => ("New notice", "You have a new notice".to_owned()),
        Kind::Digest => ("Today", "You have reminders today".to_owned()),
    };
    (title.to_owned(), body)
}

/// Counts that make the morning digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestCounts {
    /// Customer and key-contact birthdays.
    pub birthdays: u32,
    /// Maturities and loan repayments.
    pub maturities: u32,
    /// Tasks and follow-up visits.
    pub todos: u32,
}

/// The digest body: "今天: 3 个生日, 2 笔到期, 5 项待办" (parts with zero are left out).
pub fn digest_body(c: DigestCounts, lang: Lang) -> String {
    let mut parts = Vec::new();
    match lang {
        Lang::ZhCn => {
            if c.birthdays > 0 {
                parts.push(format!("{} 个生日", c.birthdays));
            }
            if c.maturities > 0 {
                parts.push(format!("{} 笔到期", c.maturities));
            }
            if c.todos > 0 {
                parts.push(format!("{} 项待办", c.todos));
            }
            format!("今天: {}", parts.join(", "))
        }
        Lang::En => {
            if c.birthdays > 0 {
                parts.push(format!("{} birthdays", c.birthdays));
            }
            if c.maturities > 0 {
                parts.push(format!("{} maturities", c.maturities));
            }
            if c.todos > 0 {
                parts.push(format!("{} to-dos", c.todos));
            }
            format!("Today: {}", parts.join(", "))
        }
    }
}

/// Which bucket of the digest a kind counts in.
pub fn digest_bucket(kind: Kind, c: &mut DigestCounts) {
    match kind {
        Kind::CustomerBirthday | Kind::ContactBirthday => c.birthdays += 1,
        Kind::HoldingMaturity | Kind::LoanDue | Kind::LoanOverdue => c.maturities += 1,
        Kind::NextVisit | Kind::TaskDue | Kind::TaskOverdue => c.todos += 1,
        _ => {}
    }
}

/// Where a 29 February birthday goes in a common year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feb29Rule {
    /// 28 February (default).
    #[default]
    Feb28,
    /// 1 March.
    Mar1,
}

/// The stored `MM-DD` birthday keys celebrated on `d`: its own, plus `02-29` on the substitute day of a
/// common year.
pub fn solar_keys(d: NaiveDate, rule: Feb29Rule) -> Vec<String> {
    let mut keys = vec![format!("{:02}-{:02}", d.month(), d.day())];
    let leap = NaiveDate::from_ymd_opt(d.year(), 2, 29).is_some();
    let substitute = match rule {
        Feb29Rule::Feb28 => (2, 28),
        Feb29Rule::Mar1 => (3, 1),
    };
    if !leap && (d.month(), d.day()) == substitute {
        keys.push("02-29".to_owned());
    }
    keys
}

/// Inclusive ranges of `MM-DD` keys that cover `keys` (the keys of consecutive days) and little else: one
/// range, or two when the days cross New Year (`12-30`–`12-31` and `01-01`–`01-05`). `02-29` sorts between
/// `02-28` and `03-01`, so it stays inside the range of the days around it.
pub fn key_ranges(keys: &[String]) -> Vec<(String, String)> {
    let (late, early): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| k.as_str() >= "07-01");
    let wraps =
        late.iter().any(|k| k.starts_with("12-")) && early.iter().any(|k| k.starts_with("01-"));
    let groups = if wraps {
        vec![late, early]
    } else {
        vec![keys.iter().collect()]
    };
    groups
        .into_iter()
        .filter_map(|g| {
            let lo = g.iter().min()?;
            let hi = g.iter().max()?;
            Some(((*lo).clone(), (*hi).clone()))
        })
        .collect()
}

/// A stored lunar birthday: month 1–12, day 1–30, born in a leap month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LunarKey {
    /// Lunar month.
    pub month: i32,
    /// Day of the lunar month.
    pub day: i32,
    /// Born in the leap (闰) instance of the month.
    pub leap: bool,
}

/// The lunar birthdays celebrated on solar date `d`:
/// - the lunar date of `d` itself;
/// - a leap-month birthday in a year without that leap month is kept in the ordinary month;
/// - a 30th-day birthday in a 29-day month is kept on the 29th.
///
/// Empty outside the crate's supported range.
pub fn lunar_keys(d: NaiveDate) -> Vec<LunarKey> {
    let Ok(l) = solar_to_lunar(SolarDate {
        year: d.year(),
        month: u8::try_from(d.month()).unwrap_or(1),
        day: u8::try_from(d.day()).unwrap_or(1),
    }) else {
        return Vec::new();
    };
    let LunarDate {
        year,
        month,
        day,
        is_leap_month,
    } = l;
    let mut keys = vec![LunarKey {
        month: i32::from(month),
        day: i32::from(day),
        leap: is_leap_month,
    }];
    // Leap-born celebrate in the ordinary month when the year has no such leap month.
    let has_leap_instance = lunar_month_days(year, month, true).is_ok();
    if !is_leap_month && !has_leap_instance {
        keys.push(LunarKey {
            month: i32::from(month),
            day: i32::from(day),
            leap: true,
        });
    }
    // The 30th falls back to the 29th in a short month.
    let len = lunar_month_days(year, month, is_leap_month).unwrap_or(30);
    if day == 29 && len == 29 {
        let extra: Vec<LunarKey> = keys.iter().map(|k| LunarKey { day: 30, ..*k }).collect();
        keys.extend(extra);
    }
    keys
}

/// Quiet hours as local minutes of the day, `[start, end)`, wrapping midnight when `start > end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    /// Start, minutes after local midnight.
    pub start: u32,
    /// End, minutes after local midnight.
    pub end: u32,
}

impl Default for Quiet {
    /// 20:00–08:00: the working day is 08:00–20:00 China time.
    fn default() -> Self {
        Self {
            start: 20 * 60,
            end: 8 * 60,
        }
    }
}

impl Quiet {
    /// Whether local minute `m` of the day is quiet.
    pub fn contains(self, m: u32) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Equal => false,
            std::cmp::Ordering::Less => m >= self.start && m < self.end,
            std::cmp::Ordering::Greater => m >= self.start || m < self.end,
        }
    }
}

/// When a notification planned for `at` may be delivered: at once if urgent or outside quiet hours, else
/// at the end of the quiet period (the next allowed minute).
pub fn deliver_at(at: DateTime<Utc>, quiet: Quiet, urgent: bool) -> DateTime<Utc> {
    if urgent {
        return at;
    }
    let local = at.with_timezone(&Shanghai).naive_local();
    let minute = local.time().hour_minute();
    if !quiet.contains(minute) {
        return at;
    }
    let end = NaiveTime::from_hms_opt(quiet.end / 60, quiet.end % 60, 0).unwrap_or(NaiveTime::MIN);
    let mut day = local.date();
    if minute >= quiet.end {
        // Quiet until tomorrow's end (the evening part of a wrapping period).
        day += Duration::days(1);
    }
    Shanghai
        .from_local_datetime(&day.and_time(end))
        .single()
        .map_or(at, |t| t.with_timezone(&Utc))
}

/// The UTC instant of local time `hh:mm` on business date `d`.
pub fn local_instant(d: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
    Shanghai
        .from_local_datetime(&d.and_time(t))
        .single()
        .map_or_else(
            || d.and_time(t).and_utc() - Duration::hours(8),
            |x| x.with_timezone(&Utc),
        )
}

trait HourMinute {
    fn hour_minute(&self) -> u32;
}

impl HourMinute for NaiveTime {
    fn hour_minute(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

/// Whether `d` is a working day: the admin calendar's entry if there is one (`Some(true)` a 调休 make-up
/// working day, `Some(false)` a public holiday), else Monday to Friday.
pub fn is_working_day(d: NaiveDate, calendar_entry: Option<bool>) -> bool {
    calendar_entry.unwrap_or(!matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, h, min, 0).unwrap()
    }

    #[test]
    fn key_ranges_cover_a_week_and_split_at_new_year() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            key_ranges(&k(&[
                "11-23", "11-24", "11-25", "11-26", "11-27", "11-28", "11-29"
            ])),
            [r("11-23", "11-29")]
        );
        assert_eq!(
            key_ranges(&k(&[
                "12-29", "12-30", "12-31", "01-01", "01-02", "01-03", "01-04"
            ])),
            [r("12-29", "12-31"), r("01-01", "01-04")]
        );
        // A common year's 28 February also celebrates 02-29; the range ends there.
        assert_eq!(
            key_ranges(&k(&[
                "02-22", "02-23", "02-24", "02-25", "02-26", "02-27", "02-28", "02-29"
            ])),
            [r("02-22", "02-29")]
        );
        // June and July: no New Year, one range.
        assert_eq!(
            key_ranges(&k(&["06-29", "06-30", "07-01"])),
            [r("06-29", "07-01")]
        );
        assert!(key_ranges(&[]).is_empty());
    }

    #[test]
    fn kinds_round_trip_and_leads() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::CustomerBirthday.default_leads(), &[3, 0]);
        assert_eq!(Kind::HoldingMaturity.default_leads(), &[7, 1]);
        assert!(Kind::TaskAssigned.urgent() && Kind::ImportantChange.urgent());
        assert!(!Kind::CustomerBirthday.urgent());
    }

    #[test]
    fn feb_29_in_common_and_leap_years() {
        assert_eq!(
            solar_keys(d(2027, 2, 28), Feb29Rule::Feb28),
            ["02-28", "02-29"]
        );
        assert_eq!(solar_keys(d(2028, 2, 28), Feb29Rule::Feb28), ["02-28"]);
        assert_eq!(solar_keys(d(2028, 2, 29), Feb29Rule::Feb28), ["02-29"]);
        assert_eq!(
            solar_keys(d(2027, 3, 1), Feb29Rule::Mar1),
            ["03-01", "02-29"]
        );
        assert_eq!(solar_keys(d(2027, 3, 1), Feb29Rule::Feb28), ["03-01"]);
        assert_eq!(solar_keys(d(2027, 1, 1), Feb29Rule::Feb28), ["01-01"]);
    }

    #[test]
    fn lunar_birthdays_on_solar_dates() {
        // 2024-02-10 was 正月初一 (lunar 1-1).
        assert!(lunar_keys(d(2024, 2, 10)).contains(&LunarKey {
            month: 1,
            day: 1,
            leap: false
        }));
        // 2026-02-17 is 正月初一 of 2026.
        assert!(lunar_keys(d(2026, 2, 17)).contains(&LunarKey {
            month: 1,
            day: 1,
            leap: false
        }));
        // 2025 had a leap 6th month: 2025-07-25 is 闰六月初一.
        let k = lunar_keys(d(2025, 7, 25));
        assert!(k.contains(&LunarKey {
            month: 6,
            day: 1,
            leap: true
        }));
        // 2026 has no leap 6th month: the leap-born celebrate on the ordinary 六月初一.
        let six_one = (0..400)
            .map(|i| d(2026, 1, 1) + Duration::days(i))
            .find(|x| {
                lunar_keys(*x).contains(&LunarKey {
                    month: 6,
                    day: 1,
                    leap: false,
                })
            })
            .unwrap();
        assert!(lunar_keys(six_one).contains(&LunarKey {
            month: 6,
            day: 1,
            leap: true
        }));
    }

    #[test]
    fn lunar_30th_falls_back_in_short_months() {
        // In any year, every day-30 birthday is celebrated exactly once per month.
        let year: Vec<NaiveDate> = (0..365)
            .map(|i| d(2026, 1, 1) + Duration::days(i))
            .collect();
        for m in 1..=12 {
            let hits = year
                .iter()
                .filter(|x| {
                    lunar_keys(**x).contains(&LunarKey {
                        month: m,
                        day: 30,
                        leap: false,
                    })
                })
                .count();
            assert!(hits <= 1, "month {m}: {hits} hits");
        }
    }

    #[test]
    fn quiet_hours_defer_to_the_next_allowed_minute() {
        let q = Quiet::default();
        // 09:00 Shanghai = 01:00 UTC: allowed.
        assert_eq!(
            deliver_at(utc(2026, 11, 23, 1, 0), q, false),
            utc(2026, 11, 23, 1, 0)
        );
        // 21:30 Shanghai → 08:00 next day Shanghai (00:00 UTC).
        assert_eq!(
            deliver_at(utc(2026, 11, 23, 13, 30), q, false),
            utc(2026, 11, 24, 0, 0)
        );
        // 06:00 Shanghai → 08:00 the same day.
        assert_eq!(
            deliver_at(utc(2026, 11, 22, 22, 0), q, false),
            utc(2026, 11, 23, 0, 0)
        );
        // Year boundary: 31 Dec 23:00 Shanghai → 1 Jan 08:00.
        assert_eq!(
            deliver_at(utc(2026, 12, 31, 15, 0), q, false),
            utc(2027, 1, 1, 0, 0)
        );
        // Urgent bypasses.
        assert_eq!(
            deliver_at(utc(2026, 11, 23, 13, 30), q, true),
            utc(2026, 11, 23, 13, 30)
        );
        // A daytime quiet period (12:00–13:30).
        let lunch = Quiet {
            start: 720,
            end: 810,
        };
        assert_eq!(
            deliver_at(utc(2026, 11, 23, 4, 15), lunch, false),
            utc(2026, 11, 23, 5, 30)
        );
        assert!(!Quiet { start: 0, end: 0 }.contains(5));
    }

    #[test]
    fn working_days_and_local_instants() {
        assert!(is_working_day(d(2026, 11, 23), None), "Monday");
        assert!(!is_working_day(d(2026, 11, 22), None), "Sunday");
        assert!(
            is_working_day(d(2026, 11, 22), Some(true)),
            "调休 make-up day"
        );
        assert!(!is_working_day(d(2026, 10, 1), Some(false)), "National Day");
        assert_eq!(
            local_instant(d(2026, 11, 23), 18, 0),
            utc(2026, 11, 23, 10, 0)
        );
    }

    #[test]
    fn texts_carry_no_particulars() {
        let (t, b) = texts(Kind::HoldingMaturity, 7, Lang::ZhCn);
        assert_eq!(t, "产品到期提醒");
        assert_eq!(b, "您有 1 笔产品 7 天后到期");
        let (t, _) = texts(Kind::CustomerBirthday, 0, Lang::En);
        assert_eq!(t, "Customer birthday");
        // Each language's phrasing of every lead, and only that language.
        for (lead, zh, en) in [
            (
                0,
                "您有 1 笔贷款今天到期还款",
                "A loan repayment is due today",
            ),
            (
                1,
                "您有 1 笔贷款明天到期还款",
                "A loan repayment is due tomorrow",
            ),
            (
                3,
                "您有 1 笔贷款 3 天后到期还款",
                "A loan repayment is due in 3 days",
            ),
        ] {
            assert_eq!(texts(Kind::LoanDue, lead, Lang::ZhCn).1, zh);
            assert_eq!(texts(Kind::LoanDue, lead, Lang::En).1, en);
        }
        assert_eq!(
            (when(-1, Lang::ZhCn), when(-1, Lang::En)),
            ("已逾期".into(), "overdue".into())
        );
        assert_eq!(texts(Kind::TaskDue, 1, Lang::En).0, "Task due");
        let mut c = DigestCounts::default();
        for k in [
            Kind::CustomerBirthday,
            Kind::ContactBirthday,
            Kind::CustomerBirthday,
            Kind::HoldingMaturity,
            Kind::LoanDue,
            Kind::TaskDue,
            Kind::NextVisit,
        ] {
            digest_bucket(k, &mut c);
        }
        assert_eq!(
            digest_body(c, Lang::ZhCn),
            "今天: 3 个生日, 2 笔到期, 2 项待办"
        );
        assert_eq!(
            digest_body(
                DigestCounts {
                    birthdays: 1,
                    ..Default::default()
                },
                Lang::En
            ),
            "Today: 1 birthdays"
        );
    }
}
