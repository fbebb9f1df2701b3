//! Visit rules beyond the coordinates (those are in `geo`): the check-in flags as stored and shown, the
//! check-out duration, the 24-hour edit window of a visit report, the next-visit date, and the Asia/Shanghai
//! day bounds the lists filter by. Pure: no I/O.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::local_date;
use super::validate;
use crate::error::FieldErrors;

/// A report may be created and replaced by its author for this long after it was first written.
pub const REPORT_EDIT_WINDOW_SECS: i64 = 24 * 3600;
/// A check-out time from the phone may run this far ahead of the server's clock (the clock-skew tolerance).
pub const CHECKOUT_FUTURE_TOLERANCE_SECS: i64 = 600;
/// Longest visit purpose.
pub const PURPOSE_MAX: usize = 200;
/// Largest accepted GPS accuracy radius, in metres.
pub const ACCURACY_MAX_M: f64 = 100_000.0;

/// What a leader is warned about on a check-in. Flags never reject a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitFlag {
    /// Farther than the configured radius (default 500 m) from the customer's registered location.
    FarFromCustomer,
    /// The GPS fix was worse than 200 m.
    PoorAccuracy,
    /// The phone's clock was off the server's by more than 10 minutes.
    ClockSkew,
    /// Faster than 150 km/h from the manager's previous check-in.
    ImpossibleTravel,
    /// The customer has no registered location, so no distance could be computed.
    NoCustomerLocation,
}

impl VisitFlag {
    const ALL: [Self; 5] = [
        Self::FarFromCustomer,
        Self::PoorAccuracy,
        Self::ClockSkew,
        Self::ImpossibleTravel,
        Self::NoCustomerLocation,
    ];

    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FarFromCustomer => "far_from_customer",
            Self::PoorAccuracy => "poor_accuracy",
            Self::ClockSkew => "clock_skew",
            Self::ImpossibleTravel => "impossible_travel",
            Self::NoCustomerLocation => "no_customer_location",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Flags as stored: comma-separated, in the order `geo::assess` gives them; empty when none.
pub fn encode_flags(flags: &[&str]) -> String {
    flags.join(",")
}

/// Stored flags back as values (unknown ones, which only a newer server could write, are skipped).
pub fn decode_flags(stored: &str) -> Vec<VisitFlag> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(VisitFlag::parse)
        .collect()
}

/// Until when a report first written at `first_written` may still be replaced (exclusive).
pub fn report_editable_until(first_written: NaiveDateTime) -> NaiveDateTime {
    first_written + Duration::seconds(REPORT_EDIT_WINDOW_SECS)
}

/// Whether the author may still replace a report first written at `first_written`.
pub fn report_editable(first_written: NaiveDateTime, now: NaiveDateTime) -> bool {
    now < report_editable_until(first_written)
}

/// The duration of a visit in whole seconds, or `None` when the check-out would precede the check-in.
pub fn duration_secs(checked_in_at: NaiveDateTime, checked_out_at: NaiveDateTime) -> Option<i64> {
    let secs = (checked_out_at - checked_in_at).num_seconds();
    (secs >= 0).then_some(secs)
}

/// A check-out's instant and duration, both ends on one clock: a `time` from the phone is measured against
/// the check-in's `phone_time` (a visit queued offline reaches the server long after both, and a phone's
/// clock may run off the server's), none is the server's `now` against its receive time `checked_in_at`.
/// Records a problem on `field` (`before_check_in`, `in_future`); the duration is `None` then.
pub fn check_checkout(
    errs: &mut FieldErrors,
    field: &str,
    (phone_time, checked_in_at): (NaiveDateTime, NaiveDateTime),
    time: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> (NaiveDateTime, Option<i64>) {
    let (at, since) = match time {
        Some(t) => (t, phone_time),
        None => (now, checked_in_at),
    };
    (at, check_checkout_time(errs, field, since, at, now))
}

/// Checks a check-out time against the check-in's time on the same clock and against the server clock.
fn check_checkout_time(
    errs: &mut FieldErrors,
    field: &str,
    checked_in_at: NaiveDateTime,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> Option<i64> {
    if at > now + Duration::seconds(CHECKOUT_FUTURE_TOLERANCE_SECS) {
        errs.add(field, "in_future", "the check-out time is in the future");
        return None;
    }
    let d = duration_secs(checked_in_at, at);
    if d.is_none() {
        errs.add(
            field,
            "before_check_in",
            "the check-out time is before the check-in",
        );
    }
    d
}

/// Whether `next` is an acceptable next-visit date for a visit checked in at `checked_in_at`: not before
/// the visit's own Asia/Shanghai date.
pub fn next_visit_date_ok(next: NaiveDate, checked_in_at: NaiveDateTime) -> bool {
    next >= local_date(checked_in_at.and_utc())
}

/// The UTC instant at which the Asia/Shanghai day `d` begins (stored form).
pub fn shanghai_day_start(d: NaiveDate) -> NaiveDateTime {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Asia/Shanghai has had no daylight saving since 1991, so local midnight is never ambiguous there.
    Shanghai
        .from_local_datetime(&midnight)
        .earliest()
        .map_or(midnight - Duration::hours(8), |t| {
            t.with_timezone(&Utc).naive_utc()
        })
}

/// The stored UTC range `[start, end)` covering the Shanghai dates `from..=to` (either end open).
pub fn shanghai_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    (
        from.map(shanghai_day_start),
        to.and_then(|d| d.succ_opt()).map(shanghai_day_start),
    )
}

/// The fields of a visit report, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFields {
    /// Who the manager met.
    pub persons_met: String,
    /// What was discussed.
    pub summary: String,
    /// Needs found.
    pub needs: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// When to visit again.
    pub next_visit_date: Option<NaiveDate>,
    /// The customer's situation changed in an important way (客户发生重要情况变动).
    pub important_change: bool,
    /// What changed; present exactly when `important_change`.
    pub important_change_text: Option<String>,
}

/// Raw report input, as the request carries it.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// Who the manager met.
    pub persons_met: &'a str,
    /// What was discussed.
    pub summary: &'a str,
    /// Needs found.
    pub needs: Option<&'a str>,
    /// Outcome.
    pub outcome: Option<&'a str>,
    /// When to visit again.
    pub next_visit_date: Option<NaiveDate>,
    /// The important-change flag.
    pub important_change: bool,
    /// What changed.
    pub important_change_text: Option<&'a str>,
}

/// Validates a report (lengths; the change text is required with the flag and refused without it).
/// The next-visit date is checked against the visit separately (`next_visit_date_ok`).
pub fn check_report(errs: &mut FieldErrors, r: ReportInput<'_>) -> ReportFields {
    let persons_met = validate::text(errs, "persons_met", r.persons_met, 200);
    let summary = validate::prose(errs, "summary", r.summary, 2000);
    let needs = validate::opt_prose(errs, "needs", r.needs, 1000);
    let outcome = validate::opt_prose(errs, "outcome", r.outcome, 1000);
    let text = validate::opt_prose(errs, "important_change_text", r.important_change_text, 1000);
    match (r.important_change, &text) {
        (true, None) => errs.add(
            "important_change_text",
            "required",
            "describe the important change",
        ),
        (false, Some(_)) => errs.add(
            "important_change_text",
            "not_allowed",
            "only with important_change: true",
        ),
        _ => {}
    }
    ReportFields {
        persons_met,
        summary,
        needs,
        outcome,
        next_visit_date: r.next_visit_date,
        important_change: r.important_change,
        important_change_text: text,
    }
}

/// Checks a latitude/longitude pair and an accuracy, naming each offending field.
pub fn check_fix(errs: &mut FieldErrors, lat: f64, lon: f64, accuracy_m: f64) {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        errs.add("latitude", "out_of_range", "between -90 and 90");
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        errs.add("longitude", "out_of_range", "between -180 and 180");
    }
    if !(accuracy_m.is_finite() && (0.0..=ACCURACY_MAX_M).contains(&accuracy_m)) {
        errs.add(
            "accuracy_m",
            "out_of_range",
            format!("between 0 and {ACCURACY_MAX_M} metres"),
        );
    }
}

/// An instant from the phone in stored form (UTC, microseconds).
pub fn stored(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::SubsecRound;
    t.naive_utc().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    fn codes(e: &FieldErrors) -> Vec<(&str, &str)> {
        e.0.iter()
            .map(|f| (f.field.as_str(), f.code.as_str()))
            .collect()
    }

    #[test]
    fn report_is_editable_for_exactly_24_hours() {
        let first = at(2026, 11, 23, 2, 0, 0);
        assert!(report_editable(first, first));
        assert!(report_editable(first, at(2026, 11, 24, 1, 59, 59)));
        assert!(!report_editable(first, at(2026, 11, 24, 2, 0, 0)));
        assert!(!report_editable(first, at(2026, 12, 1, 0, 0, 0)));
        assert_eq!(report_editable_until(first), at(2026, 11, 24, 2, 0, 0));
    }

    #[test]
    fn durations_and_checkout_times() {
        let t = at(2026, 11, 23, 2, 0, 0);
        assert_eq!(duration_secs(t, at(2026, 11, 23, 2, 45, 30)), Some(2730));
        assert_eq!(duration_secs(t, t), Some(0));
        assert_eq!(duration_secs(t, at(2026, 11, 23, 1, 59, 59)), None);
        let mut e = FieldErrors::default();
        let now = at(2026, 11, 23, 3, 0, 0);
        assert_eq!(
            check_checkout_time(&mut e, "time", t, at(2026, 11, 23, 3, 5, 0), now),
            Some(3900)
        );
        assert!(e.0.is_empty());
        check_checkout_time(&mut e, "time", t, at(2026, 11, 23, 1, 0, 0), now);
        check_checkout_time(&mut e, "time", t, at(2026, 11, 23, 3, 11, 0), now);
        assert_eq!(
            codes(&e),
            [("time", "before_check_in"), ("time", "in_future")]
        );

        // Queued offline: in at 10:00 and out at 10:45 by the phone, both received at 11:00 (02:00–03:00 UTC).
        let mut e = FieldErrors::default();
        let (phone_in, server_in) = (at(2026, 11, 23, 2, 0, 0), at(2026, 11, 23, 3, 0, 0));
        let out = at(2026, 11, 23, 2, 45, 0);
        let now = at(2026, 11, 23, 3, 0, 1);
        let checked = (phone_in, server_in);
        assert_eq!(
            check_checkout(&mut e, "time", checked, Some(out), now),
            (out, Some(2700))
        );
        // Without a time: the server's clock at both ends.
        assert_eq!(
            check_checkout(&mut e, "time", checked, None, now),
            (now, Some(1))
        );
        assert!(e.0.is_empty());
        // Before the phone's own check-in is refused, though it is after nothing on the server's clock.
        let early = at(2026, 11, 23, 1, 59, 0);
        assert_eq!(
            check_checkout(&mut e, "time", checked, Some(early), now),
            (early, None)
        );
        assert_eq!(codes(&e), [("time", "before_check_in")]);
    }

    #[test]
    fn next_visit_date_is_relative_to_the_visits_shanghai_date() {
        // 17:00 UTC on the 23rd is already the 24th in Shanghai.
        let late = at(2026, 11, 23, 17, 0, 0);
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        assert!(!next_visit_date_ok(d(23), late));
        assert!(next_visit_date_ok(d(24), late));
        assert!(next_visit_date_ok(d(30), late));
        let early = at(2026, 11, 23, 2, 0, 0);
        assert!(next_visit_date_ok(d(23), early));
        assert!(!next_visit_date_ok(d(22), early));
    }

    #[test]
    fn shanghai_days_start_at_16_utc() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(shanghai_day_start(d), at(2026, 11, 22, 16, 0, 0));
        assert_eq!(
            shanghai_range(Some(d), Some(d)),
            (
                Some(at(2026, 11, 22, 16, 0, 0)),
                Some(at(2026, 11, 23, 16, 0, 0))
            )
        );
        assert_eq!(shanghai_range(None, None), (None, None));
    }

    #[test]
    fn flags_round_trip() {
        let stored = encode_flags(&["far_from_customer", "clock_skew"]);
        assert_eq!(stored, "far_from_customer,clock_skew");
        assert_eq!(
            decode_flags(&stored),
            [VisitFlag::FarFromCustomer, VisitFlag::ClockSkew]
        );
        assert!(decode_flags("").is_empty());
        for f in VisitFlag::ALL {
            assert_eq!(VisitFlag::parse(f.as_str()), Some(f));
        }
    }

    #[test]
    fn report_validation() {
        let base = ReportInput {
            persons_met: " 王总 ",
            summary: "谈了理财",
            needs: Some(""),
            outcome: None,
            next_visit_date: None,
            important_change: false,
            important_change_text: None,
        };
        let mut e = FieldErrors::default();
        let r = check_report(&mut e, base);
        assert!(e.0.is_empty());
        assert_eq!(r.persons_met, "王总");
        assert_eq!(r.needs, None);
        check_report(
            &mut e,
            ReportInput {
                important_change: true,
                ..base
            },
        );
        check_report(
            &mut e,
            ReportInput {
                important_change_text: Some("x"),
                ..base
            },
        );
        let long = "字".repeat(2001);
        check_report(
            &mut e,
            ReportInput {
                summary: &long,
                persons_met: "",
                ..base
            },
        );
        assert_eq!(
            codes(&e),
            [
                ("important_change_text", "required"),
                ("important_change_text", "not_allowed"),
                ("persons_met", "required"),
                ("summary", "too_long"),
            ]
        );
    }

    #[test]
    fn fixes_are_range_checked() {
        let mut e = FieldErrors::default();
        check_fix(&mut e, 90.0, -180.0, 0.0);
        assert!(e.0.is_empty());
        check_fix(&mut e, 91.0, 181.0, -1.0);
        check_fix(&mut e, f64::NAN, 0.0, 100_001.0);
        assert_eq!(
            codes(&e),
            [
                ("latitude", "out_of_range"),
                ("longitude", "out_of_range"),
                ("accuracy_m", "out_of_range"),
                ("latitude", "out_of_range"),
                ("accuracy_m", "out_of_range"),
            ]
        );
    }
}
