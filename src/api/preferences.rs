//! `/api/v1/me/preferences`: which reminders the caller gets and when — per reminder kind on/off and lead
//! days (where they apply), quiet hours (default 20:00–08:00 China time), language (zh-CN default, en) and
//! the morning digest (default on, 08:30). `PUT` replaces the whole set: fields left out take their
//! defaults, kinds left out their default setting.

use actix_web::{get, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use crate::auth::caller::Auth;
use crate::db::repo::preferences::{
    self, DEFAULT_DIGEST_MINUTE, KindPref, Prefs, configurable_kinds, leads_apply,
};
use crate::domain::reminders::{Kind, Lang, Quiet};
use crate::error::{AppResult, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Largest lead a user may choose, in days.
pub const MAX_LEAD_DAYS: i32 = 30;
/// Most leads per kind.
pub const MAX_LEADS: usize = 5;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_preferences).service(put_preferences);
}

/// One reminder kind's setting.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindPreference {
    /// The reminder kind: `customer_birthday`, `contact_birthday`, `holding_maturity`, `loan_due`,
    /// `loan_overdue`, `next_visit`, `task_due`, `task_overdue` or `worklog_missing`.
    pub kind: Kind,
    /// Whether these reminders are generated for the caller.
    pub enabled: bool,
    /// Days before the occasion to be reminded (0 = on the day; 0–30, unique, at most 5). Only for kinds
    /// with leads (birthdays, maturities, loans due, follow-up visits, tasks due); `null` for the others,
    /// and in a `PUT` absent or `null` keeps the kind's default leads.
    #[serde(default)]
    pub lead_days: Option<Vec<i32>>,
}

/// The caller's preferences.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesResponse {
    /// Every configurable reminder kind.
    pub kinds: Vec<KindPreference>,
    /// Start of quiet hours, local `HH:MM` (Asia/Shanghai).
    pub quiet_start: String,
    /// End of quiet hours, local `HH:MM`; equal to `quiet_start` means no quiet hours.
    pub quiet_end: String,
    /// Language of notification texts.
    pub language: Lang,
    /// Whether the morning digest is pushed.
    pub digest_enabled: bool,
    /// Local time of the morning digest, `HH:MM`.
    pub digest_time: String,
}

/// Body of `PUT /me/preferences` (fields left out take their defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PutPreferencesRequest {
    /// Settings per kind (each kind at most once); kinds left out keep their defaults.
    pub kinds: Vec<KindPreference>,
    /// Start of quiet hours, `HH:MM` (default `20:00`).
    pub quiet_start: Option<String>,
    /// End of quiet hours, `HH:MM` (default `08:00`).
    pub quiet_end: Option<String>,
    /// `zh-CN` (default) or `en`.
    pub language: Option<Lang>,
    /// Morning digest on (default) or off.
    pub digest_enabled: Option<bool>,
    /// Time of the morning digest, `HH:MM` (default `08:30`).
    pub digest_time: Option<String>,
}

/// `HH:MM` of a minute of the day.
pub fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Parses a strict `HH:MM` (00:00–23:59).
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h < 24 && m < 60 && s.bytes().all(|b| b.is_ascii_digit() || b == b':')).then_some(h * 60 + m)
}

fn to_response(p: &Prefs) -> PreferencesResponse {
    let kinds = configurable_kinds()
        .map(|k| {
            let kp = p.kind(k);
            KindPreference {
                kind: k,
                enabled: kp.enabled,
                lead_days: leads_apply(k).then_some(kp.leads),
            }
        })
        .collect();
    PreferencesResponse {
        kinds,
        quiet_start: hhmm(p.quiet.start),
        quiet_end: hhmm(p.quiet.end),
        language: p.lang,
        digest_enabled: p.digest_enabled,
        digest_time: hhmm(p.digest_minute),
    }
}

fn time_field(errs: &mut FieldErrors, field: &str, v: Option<&str>, default: u32) -> u32 {
    match v {
        None => default,
        Some(s) => parse_hhmm(s).unwrap_or_else(|| {
            errs.add(field, "invalid_format", "local time as HH:MM (00:00–23:59)");
            default
        }),
    }
}

fn check_leads(errs: &mut FieldErrors, i: usize, leads: &[i32]) {
    let field = format!("kinds.{i}.lead_days");
    if leads.is_empty() {
        errs.add(
            &field,
            "required",
            "at least one lead (turn the kind off with `enabled`)",
        );
    }
    if leads.len() > MAX_LEADS {
        errs.add(&field, "too_many", format!("at most {MAX_LEADS} leads"));
    }
    for (j, d) in leads.iter().enumerate() {
        if !(0..=MAX_LEAD_DAYS).contains(d) {
            errs.add(
                &format!("{field}.{j}"),
                "out_of_range",
                format!("0 to {MAX_LEAD_DAYS} days"),
            );
        } else if leads[..j].contains(d) {
            errs.add(
                &format!("{field}.{j}"),
                "duplicate",
                "each lead at most once",
            );
        }
    }
}

/// Checks a `PUT` body and builds the preferences it describes.
fn parse_request(req: PutPreferencesRequest) -> AppResult<Prefs> {
    let mut errs = FieldErrors::default();
    let defaults = Quiet::default();
    let quiet = Quiet {
        start: time_field(
            &mut errs,
            "quiet_start",
            req.quiet_start.as_deref(),
            defaults.start,
        ),
        end: time_field(
            &mut errs,
            "quiet_end",
            req.quiet_end.as_deref(),
            defaults.end,
        ),
    };
    let digest_minute = time_field(
        &mut errs,
        "digest_time",
        req.digest_time.as_deref(),
        DEFAULT_DIGEST_MINUTE,
    );
    let mut prefs = Prefs {
        lang: req.language.unwrap_or_default(),
        quiet,
        digest_enabled: req.digest_enabled.unwrap_or(true),
        digest_minute,
        ..Prefs::default()
    };
    for (i, k) in req.kinds.into_iter().enumerate() {
        if !configurable_kinds().any(|c| c == k.kind) {
            errs.add(
                &format!("kinds.{i}.kind"),
                "invalid_value",
                "not a configurable reminder kind",
            );
            continue;
        }
        if prefs.kinds.contains_key(&k.kind) {
            errs.add(
                &format!("kinds.{i}.kind"),
                "duplicate",
                "each kind at most once",
            );
            continue;
        }
        let leads = match k.lead_days {
            Some(leads) if leads_apply(k.kind) => {
                check_leads(&mut errs, i, &leads);
                leads
            }
            Some(_) => {
                errs.add(
                    &format!("kinds.{i}.lead_days"),
                    "not_applicable",
                    "this kind has no lead days",
                );
                Vec::new()
            }
            None => k.kind.default_leads().to_vec(),
        };
        prefs.kinds.insert(
            k.kind,
            KindPref {
                enabled: k.enabled,
                leads,
            },
        );
    }
    errs.finish()?;
    Ok(prefs)
}

/// The caller's reminder preferences (the defaults until they change them).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = PreferencesResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/me/preferences")]
async fn get_preferences(
    state: web::Data<AppState>,
    auth: Auth,
) -> AppResult<web::Json<PreferencesResponse>> {
    let now = state.now();
    let p = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            Ok(preferences::get(c, caller.user_id)?)
        })
        .await?;
    Ok(web::Json(to_response(&p)))
}

/// Replaces the caller's reminder preferences; fields left out take their defaults. Bad times are 422
/// `invalid_format`, leads outside 0–30 `out_of_range`, repeated leads or kinds `duplicate`.
#[utoipa::path(
    tag = "me",
    request_body = PutPreferencesRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored; the effective preferences", body = PreferencesResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[put("/me/preferences")]
async fn put_preferences(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<PutPreferencesRequest>,
) -> AppResult<web::Json<PreferencesResponse>> {
    let prefs = parse_request(body.0)?;
    let now = state.now();
    let p = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            preferences::put(c, caller.user_id, &prefs, now)?;
            Ok(preferences::get(c, caller.user_id)?)
        })
        .await?;
    Ok(web::Json(to_response(&p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm_is_strict() {
        assert_eq!(parse_hhmm("08:30"), Some(510));
        assert_eq!(parse_hhmm("23:59"), Some(1439));
        for bad in [
            "8:30", "24:00", "12:60", "+1:00", "12:3", "ab:cd", "", "12:00:00",
        ] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
        assert_eq!(hhmm(510), "08:30");
    }
}
