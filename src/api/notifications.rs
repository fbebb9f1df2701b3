//! The caller's inbox (`/notifications`), reminders (`/reminders`: list by fire date, done, snooze) and
//! the phone's home screen in one call (`/me/today`). Only notifications delivered by now are shown (a
//! reminder deferred out of quiet hours appears when it is delivered). Texts are generic, as the push
//! carried them, but in the reader's current language; the reminders list adds the customer's name, which
//! never goes into a push.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiJson, ApiQuery, PathId, page_params, query_error};
use super::rendered;
use super::utc;
use crate::auth::caller::Auth;
use crate::db::DbConn;
use crate::db::repo::inbox::{self, InboxRow, ReminderRow};
use crate::db::repo::{changes, preferences, tasks};
use crate::domain::calendar::local_date;
use crate::domain::paging::finish_page;
use crate::domain::reminders::{
    Feb29Rule, Kind, Lang, LunarKey, key_ranges, local_instant, lunar_keys, solar_keys, texts,
};
use crate::error::{AppError, AppResult, ErrorCode, ProblemBody};
use crate::startup::AppState;

/// Longest span of one reminders list, in days.
pub const MAX_RANGE_DAYS: i64 = 92;
/// Furthest a snooze may reach.
pub const MAX_SNOOZE_DAYS: i64 = 30;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    // `read-all` and `unread-count` before `{id}` routes, so they are not taken for ids.
    cfg.service(read_all_notifications)
        .service(unread_count)
        .service(list_notifications)
        .service(read_notification)
        .service(list_reminders)
        .service(reminder_done)
        .service(snooze_reminder)
        .service(get_today);
}

/// A deep link into the app.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    /// What it opens: `customer`, `contact`, `holding`, `visit`, `task`, `notice`, `transfer`…
    #[serde(rename = "type")]
    pub type_: String,
    /// The object's id.
    pub id: i64,
}

fn link(t: Option<String>, id: Option<i64>) -> Option<Link> {
    match (t, id) {
        (Some(type_), Some(id)) => Some(Link { type_, id }),
        _ => None,
    }
}

fn kind(s: &str) -> AppResult<Kind> {
    Kind::parse(s).ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown stored kind {s}")))
}

/// One inbox entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationResponse {
    /// Notification id.
    pub id: i64,
    /// What it is about.
    pub kind: Kind,
    /// Title in the caller's language.
    pub title: String,
    /// Body in the caller's language.
    pub body: String,
    /// Written (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// In the inbox since (UTC). Quiet hours delay only the push, never the inbox entry.
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub deliver_at: DateTime<Utc>,
    /// Read (UTC), if read.
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub read_at: Option<DateTime<Utc>>,
    /// What it opens in the app.
    pub link: Option<Link>,
}

impl NotificationResponse {
    /// The stored title and body are those of the push, in the language of that moment; the inbox speaks
    /// the reader's language now. The digest keeps its stored body: its counts are only there.
    fn from_row((n, lead): InboxRow, lang: Lang) -> AppResult<Self> {
        let k = kind(&n.kind)?;
        let (title, body) = texts(k, lead.unwrap_or(0), lang);
        let body = if k == Kind::Digest { n.body } else { body };
        Ok(Self {
            id: n.id,
            kind: k,
            title,
            body,
            created_at: utc(n.created_at),
            deliver_at: utc(n.deliver_at),
            read_at: n.read_at.map(utc),
            link: link(n.link_type, n.link_id),
        })
    }
}

/// A page of the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub items: Vec<NotificationResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListNotificationsQuery {
    /// `true`: unread ones only.
    pub unread: Option<bool>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// The number of unread notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    /// Delivered and unread.
    pub unread: i64,
}

/// How many were marked read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAllResponse {
    /// Notifications marked read by this call.
    pub marked: i64,
}

/// The caller's delivered notifications, newest first (cursor paging; `unread=true` for unread only).
#[utoipa::path(
    tag = "notifications",
    params(ListNotificationsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NotificationList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/notifications")]
async fn list_notifications(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListNotificationsQuery>,
) -> AppResult<web::Json<NotificationList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let unread = q.unread.unwrap_or(false);
    let now = state.now();
    let (rows, lang) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let lang = preferences::get(c, caller.user_id)?.lang;
            let rows = inbox::list(c, caller.user_id, now, unread, before, limit + 1)?;
            Ok((rows, lang))
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |n| n.0.id);
    let items = rows
        .into_iter()
        .map(|r| NotificationResponse::from_row(r, lang))
        .collect::<AppResult<_>>()?;
    Ok(web::Json(NotificationList { items, next_cursor }))
}

/// Marks one of the caller's notifications read (again: no change); someone else's is 404.
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "Notification id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NotificationResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/notifications/{id}/read")]
async fn read_notification(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<NotificationResponse>> {
    let now = state.now();
    let (n, lang) = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let me = caller.user_id;
            let missing = || AppError::NotFound(ErrorCode::NotificationNotFound);
            inbox::find(c, me, id.0, now)?.ok_or_else(missing)?;
            inbox::mark_read(c, me, id.0, now)?;
            let lang = preferences::get(c, me)?.lang;
            Ok((inbox::find(c, me, id.0, now)?.ok_or_else(missing)?, lang))
        })
        .await?;
    Ok(web::Json(NotificationResponse::from_row(n, lang)?))
}

/// Marks every delivered notification of the caller read.
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ReadAllResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/notifications/read-all")]
async fn read_all_notifications(
    state: web::Data<AppState>,
    auth: Auth,
) -> AppResult<web::Json<ReadAllResponse>> {
    let now = state.now();
    let n = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            Ok(inbox::read_all(c, caller.user_id, now)?)
        })
        .await?;
    Ok(web::Json(ReadAllResponse {
        marked: i64::try_from(n).unwrap_or(i64::MAX),
    }))
}

/// The number of the caller's delivered unread notifications (the app's badge).
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = UnreadCount),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/notifications/unread-count")]
async fn unread_count(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<UnreadCount>> {
    let now = state.now();
    let unread = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            Ok(inbox::unread_count(c, caller.user_id, now)?)
        })
        .await?;
    Ok(web::Json(UnreadCount { unread }))
}

/// A reminder of the caller's.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderResponse {
    /// Reminder id.
    pub id: i64,
    /// Kind.
    pub kind: Kind,
    /// Generic title in the caller's language.
    pub title: String,
    /// Generic text in the caller's language.
    pub body: String,
    /// What it is about (`customer`, `contact`, `holding`, `visit`, `task`…).
    pub subject: Link,
    /// The customer concerned, if any.
    pub customer_id: Option<i64>,
    /// The customer's name (absent once the customer is archived).
    pub customer_name: Option<String>,
    /// The occasion (birthday, maturity, due date…), Asia/Shanghai.
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub occasion_date: NaiveDate,
    /// Days before the occasion (negative: after).
    pub lead_days: i32,
    /// The date it fires, Asia/Shanghai.
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub fire_date: NaiveDate,
    /// `pending`, `snoozed` or `done`.
    pub status: String,
    /// When it is (or was) due (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub due_at: DateTime<Utc>,
    /// Snoozed until (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// When it was notified (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub notified_at: Option<DateTime<Utc>>,
    /// When it was marked done (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub done_at: Option<DateTime<Utc>>,
}

impl ReminderResponse {
    fn from_row(r: ReminderRow, lang: Lang) -> AppResult<Self> {
        let k = kind(&r.kind)?;
        let (title, body) = texts(k, r.lead_days, lang);
        Ok(Self {
            id: r.id,
            kind: k,
            title,
            body,
            subject: Link {
                type_: r.subject_type,
                id: r.subject_id,
            },
            customer_id: r.customer_id,
            customer_name: r.customer_name,
            occasion_date: r.occasion_date,
            lead_days: r.lead_days,
            fire_date: r.fire_date,
            status: r.status,
            due_at: utc(r.due_at),
            snoozed_until: r.snoozed_until.map(utc),
            notified_at: r.notified_at.map(utc),
            done_at: r.done_at.map(utc),
        })
    }
}

fn reminders_out(rows: Vec<ReminderRow>, lang: Lang) -> AppResult<Vec<ReminderResponse>> {
    rows.into_iter()
        .map(|r| ReminderResponse::from_row(r, lang))
        .collect()
}

/// A page of the caller's reminders.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderList {
    /// Open ones (pending, or snoozed to a day in the span), by due time.
    pub items: Vec<ReminderResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /reminders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListRemindersQuery {
    /// First fire date (Asia/Shanghai; default today).
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub from: Option<NaiveDate>,
    /// Last fire date (default `from` + 7 days; at most 92 days after `from`).
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub to: Option<NaiveDate>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// The caller's open reminders between `from` and `to` (default: today and the next 7 days): pending ones
/// by fire date, snoozed ones on the day their snooze ends; done and cancelled ones left out. Paged like
/// every list (`limit`, `cursor`, `next_cursor`), in due-time order.
#[utoipa::path(
    tag = "reminders",
    params(ListRemindersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ReminderList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/reminders")]
async fn list_reminders(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListRemindersQuery>,
) -> AppResult<web::Json<ReminderList>> {
    let now = state.now();
    let from = query.0.from.unwrap_or_else(|| local_date(now.and_utc()));
    let to = query.0.to.unwrap_or(from + Duration::days(7));
    if to < from {
        return Err(query_error("to", "out_of_range", "not before `from`"));
    }
    if (to - from).num_days() > MAX_RANGE_DAYS {
        return Err(query_error(
            "to",
            "out_of_range",
            "at most 92 days after `from`",
        ));
    }
    // A snoozed reminder is listed on the day its snooze ends, as instants: [from 00:00, to + 1 00:00).
    let span = (
        local_instant(from, 0, 0).naive_utc(),
        local_instant(to + Duration::days(1), 0, 0).naive_utc(),
    );
    let (limit, after) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let (rows, lang) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let anchor = match after {
                None => inbox::first_anchor(),
                Some(id) => inbox::reminder_anchor(c, caller.user_id, id)?.ok_or_else(|| {
                    query_error("cursor", "invalid_format", "not a cursor from this list")
                })?,
            };
            let lang = preferences::get(c, caller.user_id)?.lang;
            let rows =
                inbox::list_reminders(c, caller.user_id, (from, to), span, anchor, limit + 1)?;
            Ok((rows, lang))
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |r| r.id);
    Ok(web::Json(ReminderList {
        items: reminders_out(rows, lang)?,
        next_cursor,
    }))
}

fn reminder_write(
    c: &mut DbConn,
    auth: &Auth,
    id: i64,
    now: NaiveDateTime,
    snooze: Option<NaiveDateTime>,
) -> AppResult<ReminderResponse> {
    let caller = auth.load(c, now)?;
    let missing = || AppError::NotFound(ErrorCode::ReminderNotFound);
    let r = inbox::find_reminder(c, caller.user_id, id)?.ok_or_else(missing)?;
    match (r.status.as_str(), snooze) {
        ("cancelled", _) | ("done", Some(_)) => {
            return Err(AppError::Conflict(ErrorCode::NotEditable));
        }
        ("done", None) => {}
        (_, None) => {
            inbox::reminder_done(c, id, now)?;
        }
        (_, Some(until)) => {
            inbox::reminder_snooze(c, id, until, now)?;
        }
    }
    let lang = preferences::get(c, caller.user_id)?.lang;
    let r = inbox::find_reminder(c, caller.user_id, id)?.ok_or_else(missing)?;
    ReminderResponse::from_row(r, lang)
}

/// Marks one of the caller's reminders done (again: no change; a cancelled one: 409 `not_editable`).
#[utoipa::path(
    tag = "reminders",
    params(("id" = i64, Path, description = "Reminder id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ReminderResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/reminders/{id}/done")]
async fn reminder_done(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<ReminderResponse>> {
    let now = state.now();
    let r = state
        .db
        .write(move |c| reminder_write(c, &auth, id.0, now, None))
        .await?;
    Ok(web::Json(r))
}

/// Body of `POST /reminders/{id}/snooze`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeRequest {
    /// When to be reminded again (RFC 3339, in the future, at most 30 days ahead).
    #[serde(deserialize_with = "crate::api::wire_time::instant_in")]
    pub until: DateTime<Utc>,
}

/// Snoozes one of the caller's reminders: it is notified again at `until` (done or cancelled ones: 409
/// `not_editable`).
#[utoipa::path(
    tag = "reminders",
    params(("id" = i64, Path, description = "Reminder id")),
    request_body = SnoozeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = ReminderResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/reminders/{id}/snooze")]
async fn snooze_reminder(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<SnoozeRequest>,
) -> AppResult<web::Json<ReminderResponse>> {
    let now = state.now();
    let until = body.0.until.naive_utc();
    if until <= now {
        return Err(AppError::field(
            "until",
            "out_of_range",
            "must be in the future",
        ));
    }
    if until > now + Duration::days(MAX_SNOOZE_DAYS) {
        return Err(AppError::field(
            "until",
            "out_of_range",
            "at most 30 days ahead",
        ));
    }
    // Stored to the microsecond, as every instant.
    let until = chrono::SubsecRound::trunc_subsecs(until, 6);
    let r = state
        .db
        .write(move |c| reminder_write(c, &auth, id.0, now, Some(until)))
        .await?;
    Ok(web::Json(r))
}

/// The caller's open visit.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenVisit {
    /// Visit id.
    pub id: i64,
    /// The customer visited.
    pub customer_id: i64,
    /// Checked in (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub checked_in_at: DateTime<Utc>,
}

/// A task due.
#[derive(Debug, Serialize, ToSchema)]
pub struct TodayTask {
    /// Task id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Due (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub due_at: DateTime<Utc>,
    /// `low`, `normal` or `high`.
    pub priority: String,
    /// Related customer.
    pub customer_id: Option<i64>,
    /// Due before now.
    pub overdue: bool,
}

/// A customer's birthday this week.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Birthday {
    /// Customer id.
    pub customer_id: i64,
    /// Customer name.
    pub name: String,
    /// The day it is celebrated this week (Asia/Shanghai).
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub date: NaiveDate,
    /// A lunar (农历) birthday.
    pub lunar: bool,
}

/// The phone's home screen.
#[derive(Debug, Serialize, ToSchema)]
pub struct TodayResponse {
    /// Today (Asia/Shanghai).
    #[serde(serialize_with = "crate::api::wire_time::date")]
    pub date: NaiveDate,
    /// Open reminders firing today or earlier (and snoozed ones due again), oldest first.
    pub reminders: Vec<ReminderResponse>,
    /// The caller's open tasks due today or overdue, by due time.
    pub tasks: Vec<TodayTask>,
    /// The caller's visit not yet checked out.
    pub open_visit: Option<OpenVisit>,
    /// Delivered unread notifications.
    pub unread_count: i64,
    /// Birthdays of the caller's own customers this week (Monday to Sunday), by date.
    pub birthdays_this_week: Vec<Birthday>,
}

/// The birthday keys of one week, per day: the same for every caller all week, and the lunar conversion
/// is costly (it was a tenth of `/me/today`), so they are computed once per week and rule.
struct WeekKeys {
    solar: Vec<(NaiveDate, Vec<String>)>,
    lunar: Vec<(NaiveDate, Vec<LunarKey>)>,
    /// Ranges covering every solar key of the week.
    solar_ranges: Vec<(String, String)>,
    /// Every lunar month of the week.
    months: Vec<i32>,
}

fn week_keys(monday: NaiveDate, rule: Feb29Rule) -> Arc<WeekKeys> {
    type Memo = Option<(NaiveDate, Feb29Rule, Arc<WeekKeys>)>;
    static LAST: Mutex<Memo> = Mutex::new(None);
    if let Some((m, r, keys)) = &*LAST.lock().unwrap_or_else(|p| p.into_inner())
        && (*m, *r) == (monday, rule)
    {
        return keys.clone();
    }
    let week: Vec<NaiveDate> = (0..7).map(|i| monday + Duration::days(i)).collect();
    let solar: Vec<(NaiveDate, Vec<String>)> =
        week.iter().map(|d| (*d, solar_keys(*d, rule))).collect();
    let lunar: Vec<(NaiveDate, Vec<LunarKey>)> =
        week.iter().map(|d| (*d, lunar_keys(*d))).collect();
    let all_solar: Vec<String> = solar.iter().flat_map(|s| s.1.clone()).collect();
    let solar_ranges = key_ranges(&all_solar);
    let mut months: Vec<i32> = lunar
        .iter()
        .flat_map(|l| l.1.iter().map(|k| k.month))
        .collect();
    months.sort_unstable();
    months.dedup();
    let keys = Arc::new(WeekKeys {
        solar,
        lunar,
        solar_ranges,
        months,
    });
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some((monday, rule, keys.clone()));
    keys
}

/// What a week's birthdays of a manager depend on: the week, the 29 February rule and the version of the
/// manager's own live customers (`HomeHead::customers_seq` and `customers_live`).
type BirthdayKey = (NaiveDate, Feb29Rule, Option<i64>, Option<i64>);

/// A manager's kept week of birthdays, under the key it was read at.
type KeptWeek = (BirthdayKey, Arc<[Birthday]>);

/// This week's birthdays of each manager's own customers, kept while the key stays the same: the phone asks
/// on every home screen and the answer changes only with the week or a customer. A key read with the
/// answer in the same transaction (SQLite) or before it (PostgreSQL) names data at least as new as the
/// key, so a kept answer is never older than the customers it was asked for. Bounded by a number of users.
pub struct BirthdayCache {
    map: Mutex<HashMap<i64, KeptWeek>>,
    capacity: usize,
}

impl BirthdayCache {
    /// A cache of at most `capacity` users' weeks (0 keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, user_id: i64, key: &BirthdayKey) -> Option<Arc<[Birthday]>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&user_id)
            .filter(|(k, _)| k == key)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, user_id: i64, key: BirthdayKey, birthdays: Arc<[Birthday]>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&user_id) {
            map.clear();
        }
        map.insert(user_id, (key, birthdays));
    }
}

/// Birthdays of the user's customers from Monday to Sunday of `today`'s week, solar and lunar.
fn birthdays(
    c: &mut DbConn,
    user_id: i64,
    today: NaiveDate,
    rule: Feb29Rule,
) -> AppResult<Vec<Birthday>> {
    let week = week_keys(monday_of(today), rule);
    let rows = inbox::birthday_candidates(c, user_id, &week.solar_ranges, &week.months)?;
    let mut out = Vec::new();
    for r in rows {
        let hit = match (r.lunar_month, r.lunar_day) {
            (Some(m), Some(d)) => week
                .lunar
                .iter()
                .find(|(_, keys)| {
                    keys.iter()
                        .any(|k| k.month == m && k.day == d && k.leap == r.lunar_leap)
                })
                .map(|(day, _)| (*day, true)),
            _ => r.birthday_md.as_ref().and_then(|md| {
                week.solar
                    .iter()
                    .find(|(_, keys)| keys.contains(md))
                    .map(|(day, _)| (*day, false))
            }),
        };
        if let Some((date, lunar)) = hit {
            out.push(Birthday {
                customer_id: r.id,
                name: r.name,
                date,
                lunar,
            });
        }
    }
    out.sort_by_key(|b| (b.date, b.customer_id));
    Ok(out)
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// The home screen's body: `TodayResponse` with its reminders kept rendered (`AppState::reminder_rows`),
/// spliced into the serialized rest (serde writes the fields in order, so the body starts with the date
/// and the empty reminders list).
fn today_body(t: &TodayResponse, reminders: &[Arc<[u8]>]) -> AppResult<Vec<u8>> {
    const EMPTY: &[u8] = b"\"reminders\":[]";
    let rest = serde_json::to_vec(t).map_err(|e| AppError::Internal(e.into()))?;
    let at = rest
        .windows(EMPTY.len())
        .position(|w| w == EMPTY)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no reminders field")))?
        + EMPTY.len()
        - 1;
    let size = reminders.iter().map(|r| r.len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(rest.len() + size);
    body.extend_from_slice(&rest[..at]);
    for (i, r) in reminders.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.extend_from_slice(&rest[at..]);
    Ok(body)
}

/// The user's open reminders as JSON: their keys and versions first, then only those not kept rendered
/// at that version are read and rendered.
fn open_reminders(
    c: &mut DbConn,
    state: &AppState,
    me: i64,
    (today, now): (NaiveDate, NaiveDateTime),
    lang: Lang,
) -> AppResult<Vec<Arc<[u8]>>> {
    let keys = inbox::open_reminder_keys(c, me, today, now)?;
    let kept = state.reminder_rows(lang);
    let (page, missing) = rendered::look_up(kept, keys.iter().map(|k| (k.id, k.version)));
    let fresh = inbox::reminders_by_ids(c, me, &missing)?
        .into_iter()
        .map(|r| Ok((r.id, r.version, ReminderResponse::from_row(r, lang)?)))
        .collect::<AppResult<Vec<_>>>()?;
    rendered::fill_items(
        kept,
        page,
        fresh,
        |r| (r.0, r.1),
        |r| serde_json::to_vec(&r.2),
    )
}

/// This week's birthdays of the user's customers, kept under the version of those customers (`HomeHead`'s
/// highest `seq` and count).
fn week_birthdays(
    c: &mut DbConn,
    state: &AppState,
    me: i64,
    today: NaiveDate,
    rule: Feb29Rule,
    (highest, live): (Option<i64>, Option<i64>),
) -> AppResult<Arc<[Birthday]>> {
    let key = (monday_of(today), rule, highest, live);
    if let Some(kept) = state.birthdays.get(me, &key) {
        return Ok(kept);
    }
    // Kept only under a version that no write still in flight can undercut: on PostgreSQL a change numbered
    // below `highest` may commit after the version was read and leave the version as it was. Once every number
    // up to `highest` is settled, any later change to these customers takes a higher one. (Always so on
    // SQLite, where numbers commit in order.)
    let settled = changes::settled(c)?;
    let found: Arc<[Birthday]> = birthdays(c, me, today, rule)?.into();
    if highest.is_none_or(|h| h <= settled) {
        state.birthdays.put(me, key, found.clone());
    }
    Ok(found)
}

fn today_tx(
    c: &mut DbConn,
    auth: &Auth,
    now: NaiveDateTime,
    rule: Feb29Rule,
    state: &AppState,
) -> AppResult<Vec<u8>> {
    // The session check, language, unread count, open visit and customers' version in one statement.
    let head = inbox::home_head(c, auth.user_id(), auth.session_id(), now)?
        .ok_or(AppError::Unauthorized(ErrorCode::SessionEnded))?;
    let me = auth.caller(head.caller.clone())?.user_id;
    let today = local_date(now.and_utc());
    let lang = head.language.as_deref().map_or(Lang::ZhCn, Lang::parse);
    let reminders = open_reminders(c, state, me, (today, now), lang)?;
    let end_of_today = local_instant(today + Duration::days(1), 0, 0).naive_utc();
    let tasks = tasks::due_for(c, me, end_of_today)?
        .into_iter()
        .map(|t| TodayTask {
            overdue: t.due_at < now,
            id: t.id,
            title: t.title,
            due_at: utc(t.due_at),
            priority: t.priority,
            customer_id: t.customer_id,
        })
        .collect();
    let version = (head.customers_seq, head.customers_live);
    let birthdays_this_week = week_birthdays(c, state, me, today, rule, version)?;
    let open_visit = match (
        head.visit_id,
        head.visit_customer_id,
        head.visit_checked_in_at,
    ) {
        (Some(id), Some(customer_id), Some(at)) => Some(OpenVisit {
            id,
            customer_id,
            checked_in_at: utc(at),
        }),
        _ => None,
    };
    let rest = TodayResponse {
        date: today,
        reminders: Vec::new(),
        tasks,
        open_visit,
        unread_count: head.unread.unwrap_or(0),
        birthdays_this_week: birthdays_this_week.to_vec(),
    };
    today_body(&rest, &reminders)
}

/// One call for the phone's home screen: today's and overdue reminders, tasks due, the open visit, the
/// unread count and this week's customer birthdays.
#[utoipa::path(
    tag = "reminders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TodayResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/me/today")]
async fn get_today(state: web::Data<AppState>, auth: Auth) -> AppResult<HttpResponse> {
    let now = state.now();
    let rule = state.settings.feb29.rule();
    let shared = state.clone();
    let body = state
        .db
        .read_many(move |c| today_tx(c, &auth, now, rule, &shared))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_body_splices_rendered_reminders_in_place() {
        let rest = TodayResponse {
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            reminders: Vec::new(),
            tasks: Vec::new(),
            open_visit: None,
            unread_count: 3,
            birthdays_this_week: Vec::new(),
        };
        let items: Vec<Arc<[u8]>> =
            vec![Arc::from(&b"{\"id\":1}"[..]), Arc::from(&b"{\"id\":2}"[..])];
        let body = today_body(&rest, &items).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["date"], "2026-12-07");
        assert_eq!(v["reminders"], serde_json::json!([{"id": 1}, {"id": 2}]));
        assert_eq!(v["unread_count"], 3);
        assert_eq!(v["birthdays_this_week"], serde_json::json!([]));
        let none = today_body(&rest, &[]).unwrap();
        assert_eq!(none, serde_json::to_vec(&rest).unwrap());
    }
}
