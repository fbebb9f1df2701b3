//! Request and response types of `/api/v1/visits`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::utc;
use crate::db::repo::visits::{Amendment, Report, Visit};
use crate::domain::geo::{Datum, Point};
use crate::domain::visit::{self, ReportInput, VisitFlag};

/// Body of `POST /visits` (check-in).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    /// The customer visited (in the caller's scope).
    pub customer_id: i64,
    /// Purpose of the visit, 1–200 characters.
    pub purpose: String,
    /// The phone's clock at check-in (RFC 3339); compared with the server's for `clock_skew`.
    #[serde(deserialize_with = "crate::api::wire_time::instant_in")]
    pub phone_time: DateTime<Utc>,
    /// Latitude in degrees, -90..90, in `datum`.
    pub latitude: f64,
    /// Longitude in degrees, -180..180, in `datum`.
    pub longitude: f64,
    /// Accuracy radius of the fix in metres, 0..100000.
    pub accuracy_m: f64,
    /// `wgs84` (raw GPS, the default) or `gcj02` (Chinese map SDKs); converted so distances are true.
    pub datum: Option<Datum>,
    /// Client-generated id (1–128 characters): a retry with the same id replays the first answer.
    pub client_id: Option<String>,
}

/// A check-in validated (coordinates converted to WGS-84).
#[derive(Debug, Clone)]
pub struct CheckInInput {
    /// The customer.
    pub customer_id: i64,
    /// Trimmed purpose.
    pub purpose: String,
    /// Phone time, stored form.
    pub phone_time: NaiveDateTime,
    /// Where the phone was (WGS-84).
    pub at: Point,
    /// Accuracy in metres.
    pub accuracy_m: f64,
    /// What the phone sent.
    pub datum: Datum,
}

/// Body of `POST /visits/{id}/checkout` (send `{}` to check out now).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckOutRequest {
    /// When the manager left, by the phone's clock (RFC 3339); defaults to the server's time. Not before the
    /// check-in's `phone_time`, not in the future; the duration is measured from `phone_time`, so a visit
    /// queued offline and sent later keeps its true length.
    #[serde(default, deserialize_with = "crate::api::wire_time::instant_in_opt")]
    pub time: Option<DateTime<Utc>>,
    /// A short note (up to 500 characters) for the customer's archive.
    pub note: Option<String>,
}

/// A check-out validated.
#[derive(Debug, Clone)]
pub struct CheckOutInput {
    /// Stored form of `time`.
    pub time: Option<NaiveDateTime>,
    /// Trimmed note.
    pub note: Option<String>,
}

/// Body of `PUT /visits/{id}/report` (访客报告).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitReportRequest {
    /// Persons met, 1–200 characters.
    pub persons_met: String,
    /// What was discussed, 1–2000 characters.
    pub summary: String,
    /// Needs found, up to 1000 characters.
    pub needs: Option<String>,
    /// Outcome, up to 1000 characters.
    pub outcome: Option<String>,
    /// Next visit date (Asia/Shanghai), not before the visit's own date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub next_visit_date: Option<NaiveDate>,
    /// The customer's situation changed in an important way (客户发生重要情况变动).
    #[serde(default)]
    pub important_change: bool,
    /// What changed (up to 1000 characters): required with `important_change: true`, refused without.
    pub important_change_text: Option<String>,
    /// Client-generated id (1–128 characters), as on every write a phone may queue offline: a retry with the
    /// same id replays the first answer.
    pub client_id: Option<String>,
}

impl VisitReportRequest {
    /// The raw input for `domain::visit::check_report`.
    pub fn input(&self) -> ReportInput<'_> {
        ReportInput {
            persons_met: &self.persons_met,
            summary: &self.summary,
            needs: self.needs.as_deref(),
            outcome: self.outcome.as_deref(),
            next_visit_date: self.next_visit_date,
            important_change: self.important_change,
            important_change_text: self.important_change_text.as_deref(),
        }
    }
}

/// Body of `POST /visits/{id}/report/amendments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRequest {
    /// The amendment, 1–2000 characters.
    pub text: String,
    /// Client-generated id (1–128 characters): a retry with the same id replays the first answer.
    pub client_id: Option<String>,
}

/// The customer of a visit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitCustomer {
    /// Customer id.
    pub id: i64,
    /// Customer name.
    pub name: String,
}

/// The manager who made a visit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitManager {
    /// User id.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Employee number.
    pub employee_no: String,
}

/// A visit as lists and the check-in/check-out answers show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitResponse {
    /// Visit id.
    pub id: i64,
    /// The customer visited.
    pub customer: VisitCustomer,
    /// The manager who checked in.
    pub manager: VisitManager,
    /// Purpose.
    pub purpose: String,
    /// The phone's clock at check-in (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub phone_time: DateTime<Utc>,
    /// The server's receive time of the check-in (UTC): the visit's time of record.
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub checked_in_at: DateTime<Utc>,
    /// Latitude (WGS-84, converted from `datum`).
    pub latitude: f64,
    /// Longitude (WGS-84, converted from `datum`).
    pub longitude: f64,
    /// Accuracy of the fix in metres.
    pub accuracy_m: f64,
    /// The datum the phone sent the coordinates in.
    pub datum: Datum,
    /// Metres to the customer's registered location; absent when the customer has none.
    pub distance_m: Option<f64>,
    /// What a leader should look at; empty when nothing is unusual.
    pub flags: Vec<VisitFlag>,
    /// Check-out time (UTC), absent while the visit is open.
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub checked_out_at: Option<DateTime<Utc>>,
    /// Seconds from check-in to check-out.
    pub duration_secs: Option<i64>,
    /// Whether the report has been written.
    pub has_report: bool,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (check-out, report, amendment) (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl VisitResponse {
    /// From a row, the customer's name, the manager's name and employee number, and whether a report exists.
    pub fn from_row(
        v: Visit,
        customer_name: String,
        (manager_name, employee_no): (String, String),
        has_report: bool,
    ) -> Self {
        Self {
            id: v.id,
            customer: VisitCustomer {
                id: v.customer_id,
                name: customer_name,
            },
            manager: VisitManager {
                id: v.manager_id,
                name: manager_name,
                employee_no,
            },
            purpose: v.purpose,
            phone_time: utc(v.phone_time),
            checked_in_at: utc(v.checked_in_at),
            latitude: v.latitude,
            longitude: v.longitude,
            accuracy_m: v.accuracy_m,
            datum: if v.datum == Datum::Gcj02.as_str() {
                Datum::Gcj02
            } else {
                Datum::Wgs84
            },
            distance_m: v.distance_m,
            flags: visit::decode_flags(&v.flags),
            checked_out_at: v.checked_out_at.map(utc),
            duration_secs: v.duration_secs,
            has_report,
            created_at: utc(v.created_at),
            updated_at: utc(v.updated_at),
        }
    }
}

/// An amendment to a visit report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AmendmentResponse {
    /// Amendment id.
    pub id: i64,
    /// The author (the visit's manager).
    pub author_id: i64,
    /// The text.
    pub text: String,
    /// Written (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
}

impl From<Amendment> for AmendmentResponse {
    fn from(a: Amendment) -> Self {
        Self {
            id: a.id,
            author_id: a.author_id,
            text: a.text,
            created_at: utc(a.created_at),
        }
    }
}

/// A visit report with its amendments.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitReportResponse {
    /// The visit.
    pub visit_id: i64,
    /// The author (the visit's manager).
    pub author_id: i64,
    /// Persons met.
    pub persons_met: String,
    /// What was discussed.
    pub summary: String,
    /// Needs found.
    pub needs: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Next visit date (Asia/Shanghai).
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub next_visit_date: Option<NaiveDate>,
    /// Important change in the customer's situation.
    pub important_change: bool,
    /// What changed.
    pub important_change_text: Option<String>,
    /// First written (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last replaced (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
    /// The author may replace the report until then (UTC); afterwards only amendments.
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub editable_until: DateTime<Utc>,
    /// Amendments, oldest first.
    pub amendments: Vec<AmendmentResponse>,
}

impl VisitReportResponse {
    /// From the report row and its amendments.
    pub fn from_rows(r: Report, amendments: Vec<Amendment>) -> Self {
        Self {
            visit_id: r.visit_id,
            author_id: r.author_id,
            persons_met: r.persons_met,
            summary: r.summary,
            needs: r.needs,
            outcome: r.outcome,
            next_visit_date: r.next_visit_date,
            important_change: r.important_change,
            important_change_text: r.important_change_text,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            editable_until: utc(visit::report_editable_until(r.created_at)),
            amendments: amendments.into_iter().map(Into::into).collect(),
        }
    }
}

/// A visit with its report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitDetail {
    /// The visit.
    #[serde(flatten)]
    pub visit: VisitResponse,
    /// The report with its amendments; absent until written.
    pub report: Option<VisitReportResponse>,
}

/// A page of visits.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitList {
    /// The visits, newest first.
    pub items: Vec<VisitResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /visits`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListVisitsQuery {
    /// Only the caller's own visits; defaults to true for managers unless `customer_id` is given.
    pub mine: Option<bool>,
    /// Only visits to this customer.
    pub customer_id: Option<i64>,
    /// Only visits by this manager.
    pub manager_id: Option<i64>,
    /// Only visits by managers in this org's subtree (leaders and admins).
    pub org_id: Option<i64>,
    /// Checked in on or after this date (Asia/Shanghai).
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub from: Option<NaiveDate>,
    /// Checked in on or before this date (Asia/Shanghai).
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub to: Option<NaiveDate>,
    /// Only flagged (`true`) or unflagged (`false`) check-ins.
    pub flagged: Option<bool>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}
