//! The customer archive (客户档案): ownership history (`GET /customers/{id}/ownership`), the timeline
//! (`GET /customers/{id}/timeline`) and notes (`/customers/{id}/notes`). Whoever sees the customer sees its
//! archive and may add notes; everyone else gets 404.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{PersonRef, people_by_id, person};
use crate::api::customers::{audit_read, read_audit_path};
use crate::api::extract::{ApiQuery, PathId, page_params};
use crate::api::idempotency::{Answer, IdempotentJson, once};
use crate::api::teams::PageQuery;
use crate::api::utc;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::models::Customer;
use crate::db::repo::audit::Entry;
use crate::db::repo::transfers::{self, Note};
use crate::db::repo::{audit, orgs, scope, timeline};
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Longest note.
pub const NOTE_MAX: usize = 2000;
/// Longest archive summary taken from a note.
const SUMMARY_MAX: usize = 80;

/// Registers the archive routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_ownership)
        .service(list_timeline)
        .service(create_note)
        .service(list_notes);
}

/// One owner of a customer and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnershipResponse {
    /// Row id.
    pub id: i64,
    /// The responsible manager over this period.
    pub manager: PersonRef,
    /// From (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub effective_from: DateTime<Utc>,
    /// Until (UTC); absent for the current owner.
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub effective_to: Option<DateTime<Utc>>,
    /// Why the customer came to this manager: `originated`, or the reason of the transfer.
    pub reason: String,
    /// The approved transfer that started this period, if any.
    pub transfer_id: Option<i64>,
}

/// A page of ownership history.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnershipList {
    /// Owners, newest first.
    pub items: Vec<OwnershipResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One line of the customer archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Line id.
    pub id: i64,
    /// What happened: `visit`, `visit_report`, `note`, `opportunity`, `opportunity_stage`, `holding`,
    /// `transfer`, `transfer_proposed`, `transfer_rejected`, `team`, `customer`, …
    pub kind: String,
    /// The id of the record of that kind.
    pub ref_id: Option<i64>,
    /// A short summary.
    pub summary: String,
    /// Who did it.
    pub actor_id: Option<i64>,
    /// When (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub at: DateTime<Utc>,
}

/// A page of the customer archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineList {
    /// Lines, newest first.
    pub items: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A note on a customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteResponse {
    /// Note id.
    pub id: i64,
    /// The customer.
    pub customer_id: i64,
    /// Who wrote it.
    pub author: PersonRef,
    /// The text.
    pub text: String,
    /// Written (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
}

/// A page of notes.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteList {
    /// Notes, newest first.
    pub items: Vec<NoteResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /customers/{id}/notes`. Retries are safe with an `Idempotency-Key` header or `client_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoteRequest {
    /// The text, 1–2000 characters.
    pub text: String,
    /// A client-generated id (1–128 characters) making the create idempotent.
    pub client_id: Option<String>,
}

/// Checks a note: trimmed, 1–2000 characters, line breaks and tabs allowed but no other control characters.
fn note_text(errs: &mut FieldErrors, value: &str) -> String {
    crate::domain::validate::prose(errs, "text", value, NOTE_MAX)
}

/// The customer, if the caller sees it; else 404 `customer_not_found`.
fn visible(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<Customer> {
    scope::find_customer(c, &caller.scope(), id)?
        .ok_or(AppError::NotFound(ErrorCode::CustomerNotFound))
}

/// A note as the archive line shows it: the first characters, with digit runs (phones, ID numbers) masked.
pub fn note_summary(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run >= 6 {
            out.extend(std::iter::repeat_n('*', run));
            i += run;
        } else if run > 0 {
            out.extend(&chars[i..i + run]);
            i += run;
        } else {
            let ch = chars[i];
            out.push(if ch.is_control() { ' ' } else { ch });
            i += 1;
        }
    }
    if out.chars().count() > SUMMARY_MAX {
        let cut: String = out.chars().take(SUMMARY_MAX - 1).collect();
        format!("{cut}…")
    } else {
        out
    }
}

/// A customer's owners over time, newest first.
#[utoipa::path(
    tag = "transfers",
    params(("id" = i64, Path, description = "Customer id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OwnershipList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/ownership")]
async fn list_ownership(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<OwnershipList>> {
    let (limit, before) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let out = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let customer = visible(c, &caller, id.0)?;
            let rows = transfers::ownership_page(c, customer.id, before, limit + 1)?;
            let (rows, next_cursor) = finish_page(rows, limit, |r| r.id);
            let people = people_by_id(c, rows.iter().map(|r| r.manager_id).collect())?;
            let items = rows
                .into_iter()
                .map(|r| {
                    Ok(OwnershipResponse {
                        id: r.id,
                        manager: person(&people, r.manager_id)?,
                        effective_from: utc(r.effective_from),
                        effective_to: r.effective_to.map(utc),
                        reason: r.reason,
                        transfer_id: r.transfer_id,
                    })
                })
                .collect::<AppResult<Vec<_>>>()?;
            Ok(OwnershipList { items, next_cursor })
        })
        .await?;
    Ok(web::Json(out))
}

/// A customer's archive, newest first: visits, reports, notes, opportunities, holdings, transfers.
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TimelineList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/timeline")]
async fn list_timeline(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<TimelineList>> {
    let (limit, before) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let a = auth.clone();
    let (rows, audit_path) = state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            let customer = visible(c, &caller, id.0)?;
            let rows = timeline::list(c, customer.id, before, limit + 1)?;
            Ok((rows, read_audit_path(c, &caller, &customer)?))
        })
        .await?;
    // The archive is the customer's file: read by anyone but its manager, it is audited as the detail is.
    if let Some(path) = audit_path {
        audit_read(&state, auth, id.0, path, Some("timeline")).await?;
    }
    let (rows, next_cursor) = finish_page(rows, limit, |e| e.id);
    let items = rows
        .into_iter()
        .map(|e| TimelineEntry {
            id: e.id,
            kind: e.kind,
            ref_id: e.ref_id,
            summary: e.summary,
            actor_id: e.actor_id,
            at: utc(e.at),
        })
        .collect();
    Ok(web::Json(TimelineList { items, next_cursor }))
}

fn note_response(c: &mut DbConn, rows: Vec<Note>) -> AppResult<Vec<NoteResponse>> {
    let people = people_by_id(c, rows.iter().map(|n| n.author_id).collect())?;
    rows.into_iter()
        .map(|n| {
            Ok(NoteResponse {
                id: n.id,
                customer_id: n.customer_id,
                author: person(&people, n.author_id)?,
                text: n.text,
                created_at: utc(n.created_at),
            })
        })
        .collect()
}

fn add_note(
    c: &mut DbConn,
    caller: &Caller,
    customer_id: i64,
    text: &str,
    now: NaiveDateTime,
) -> AppResult<Answer> {
    let customer = visible(c, caller, customer_id)?;
    let note = transfers::insert_note(c, customer.id, caller.user_id, text, now)?;
    let summary = note_summary(text);
    timeline::record(
        c,
        customer.id,
        "note",
        Some(note.id),
        &summary,
        Some(caller.user_id),
        now,
    )?;
    let owner_org = transfers::people(c, &[customer.manager_id])?
        .pop()
        .map(|p| p.org_id)
        .unwrap_or(caller.org_id);
    let path = orgs::by_ids(c, &[owner_org])?
        .pop()
        .map_or_else(|| caller.org_path.clone(), |o| o.path);
    let entry = Entry::new("customer.note", "customer", customer.id, &path)
        .with_detail(serde_json::json!({ "note_id": note.id }).to_string());
    audit::record(c, caller, entry, now)?;
    let body = note_response(c, vec![note])?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("note vanished")))?;
    Answer::new(StatusCode::CREATED, &body)
}

/// Adds a note to a customer in the caller's scope; it also becomes a line of the archive.
#[utoipa::path(
    tag = "customers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")
    ),
    request_body = CreateNoteRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = NoteResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/customers/{id}/notes")]
async fn create_note(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<CreateNoteRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: req,
        key,
        digest,
    } = body;
    let mut errs = FieldErrors::default();
    let text = note_text(&mut errs, &req.text);
    validate::opt_text(&mut errs, "client_id", req.client_id.as_deref(), 128);
    errs.finish()?;
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                add_note(c, &caller, id.0, &text, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// A customer's notes, newest first.
#[utoipa::path(
    tag = "customers",
    params(("id" = i64, Path, description = "Customer id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = NoteList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/customers/{id}/notes")]
async fn list_notes(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<NoteList>> {
    let (limit, before) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let a = auth.clone();
    let (out, audit_path) = state
        .db
        .read(move |c| {
            let caller = a.load(c, now)?;
            let customer = visible(c, &caller, id.0)?;
            let rows = transfers::notes_page(c, customer.id, before, limit + 1)?;
            let (rows, next_cursor) = finish_page(rows, limit, |n| n.id);
            let items = note_response(c, rows)?;
            let path = read_audit_path(c, &caller, &customer)?;
            Ok((NoteList { items, next_cursor }, path))
        })
        .await?;
    if let Some(path) = audit_path {
        audit_read(&state, auth, id.0, path, Some("notes")).await?;
    }
    Ok(web::Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_mask_numbers_and_stay_short() {
        assert_eq!(
            note_summary("电话 13812345678 下午回电"),
            "电话 *********** 下午回电"
        );
        assert_eq!(note_summary("3 个产品, 12345 元"), "3 个产品, 12345 元");
        assert_eq!(note_summary("a\nb"), "a b");
        let long = "长".repeat(200);
        let s = note_summary(&long);
        assert_eq!(s.chars().count(), SUMMARY_MAX);
        assert!(s.ends_with('…'));
    }
}
