//! `/api/v1/opportunities`: opportunities (商机) from the first overheard need to the money landing, their
//! stage history, and the pipeline summary. The stage rules live in `domain::pipeline`.
//!
//! - Create (offline-safe: `client_id` or `Idempotency-Key`): the caller becomes the responsible manager; a
//!   leader or admin may name a `manager_id` in their subtree instead, who must see the customer (else the
//!   opportunity would show it to them).
//! - Read: a manager lists their own (`customer_id`: every opportunity they see about that customer, team
//!   members' included); leaders and admins their subtree, narrowed with `org_id` / `manager_id`.
//! - Update: the responsible manager, or a leader/admin above them (a team member who only sees the customer:
//!   403). Each stage change adds a history line and a line in the customer archive; a closed (won/lost)
//!   opportunity is read-only (409 `not_editable`).
//! - Detail: a weak `ETag` from the opportunity's and its customer's change numbers (the view shows the
//!   customer's name); `If-None-Match` answers 304.
//! - Every write bumps the change sequence (opportunities are synced).

pub mod dto;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDateTime;
use utoipa_actix_web::service_config::ServiceConfig;

pub use self::dto::*;
use super::etag;
use super::extract::{ApiJson, ApiQuery, PathId, page_params, query_error};
use super::idempotency::{Answer, IdempotentJson, once};
use crate::auth::caller::{Auth, Caller, Reach, Scope};
use crate::db::DbConn;
use crate::db::repo::audit::Entry;
use crate::db::repo::opportunities::{
    NewOpportunity, Opportunity, OpportunityChanges, OpportunityFilter, Owners,
};
use crate::db::repo::{
    audit, changes, customers, opportunities, orgs, scope, timeline, users, visits, worklogs,
};
use crate::domain::money::format_fen;
use crate::domain::paging::finish_page;
use crate::domain::pipeline::{self, Stage};
use crate::domain::user::Role;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module (the summary before `{id}`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(opportunity_summary)
        .service(list_opportunities)
        .service(create_opportunity)
        .service(get_opportunity)
        .service(update_opportunity)
        .service(opportunity_history);
}

fn not_found() -> AppError {
    AppError::NotFound(ErrorCode::OpportunityNotFound)
}

/// Rows with their customers' names.
pub(crate) fn respond(
    c: &mut DbConn,
    rows: Vec<Opportunity>,
) -> AppResult<Vec<OpportunityResponse>> {
    let mut ids: Vec<i64> = rows.iter().map(|o| o.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<i64, String> = opportunities::customer_names(c, &ids)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|o| {
            let name = names.get(&o.customer_id).cloned().unwrap_or_default();
            OpportunityResponse::from_row(o, name)
        })
        .collect())
}

fn respond_one(c: &mut DbConn, o: Opportunity) -> AppResult<OpportunityResponse> {
    respond(c, vec![o])?.pop().ok_or_else(not_found)
}

/// Lists opportunities: a manager's own (or, with `customer_id`, all they see about that customer); a
/// leader's or admin's subtree. Newest first. `org_id` is for leaders and admins (a manager: 403) and must be
/// in their subtree (else 400 naming it).
#[utoipa::path(
    tag = "opportunities",
    params(ListOpportunitiesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OpportunityList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/opportunities")]
async fn list_opportunities(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListOpportunitiesQuery>,
) -> AppResult<web::Json<OpportunityList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let now = state.now();
    let (rows, next_cursor) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let scope = caller.scope();
            let mut f = OpportunityFilter {
                manager_id: q.manager_id,
                org_path: None,
                customer_id: q.customer_id,
                stage: q.stage.map(|s| s.as_str().to_owned()),
            };
            if scope.reach == Reach::Own && f.customer_id.is_none() {
                f.manager_id = Some(f.manager_id.unwrap_or(caller.user_id));
            }
            if let Some(org_id) = q.org_id {
                // As on the visit list: leaders and admins only, and an org of their subtree.
                caller.require_leader_or_admin()?;
                let org = orgs::find(c, &scope, org_id)?.ok_or_else(|| {
                    query_error("org_id", "not_found", "no such org in your subtree")
                })?;
                f.org_path = Some(org.path);
            }
            let rows = opportunities::list(c, &scope, &f, before, limit + 1)?;
            let (rows, next) = finish_page(rows, limit, |o| o.id);
            Ok((respond(c, rows)?, next))
        })
        .await?;
    Ok(web::Json(OpportunityList {
        items: rows,
        next_cursor,
    }))
}

/// The responsible manager of a new opportunity and their org path: the caller, or (leaders and admins) an
/// active user of their subtree who sees the customer — else the opportunity would show that user a
/// customer outside their view.
fn manager_for(
    c: &mut DbConn,
    caller: &Caller,
    manager_id: Option<i64>,
    customer_id: i64,
) -> AppResult<(i64, String)> {
    let Some(m) = manager_id.filter(|m| *m != caller.user_id) else {
        return Ok((caller.user_id, caller.org_path.clone()));
    };
    let Some((u, o)) = users::find(c, &caller.scope(), m)?.filter(|(u, _)| u.active) else {
        return Err(AppError::field(
            "manager_id",
            "not_found",
            "no such active user in your subtree",
        ));
    };
    let role = Role::parse(&u.role).ok_or_else(|| anyhow::anyhow!("bad stored role"))?;
    let theirs = Scope {
        user_id: u.id,
        org_id: o.id,
        org_path: o.path.clone(),
        reach: if role == Role::Manager {
            Reach::Own
        } else {
            Reach::Subtree
        },
    };
    if scope::find_customer(c, &theirs, customer_id)?.is_none() {
        return Err(AppError::field(
            "manager_id",
            "not_allowed",
            "this user does not see the customer",
        ));
    }
    Ok((u.id, o.path))
}

/// Checks the references of a new opportunity against the database (after the field checks).
fn check_refs(c: &mut DbConn, caller: &Caller, d: &Draft) -> AppResult<()> {
    let scope = caller.scope();
    let mut errs = FieldErrors::default();
    if scope::find_customer(c, &scope, d.customer_id)?.is_none() {
        errs.add("customer_id", "not_found", "no such customer in your scope");
    } else if let Some(v) = d.source_visit_id {
        let v = visits::find(c, &scope, v)?;
        if v.is_none_or(|v| v.customer_id != d.customer_id) {
            errs.add(
                "source_visit_id",
                "not_found",
                "no such visit of this customer in your scope",
            );
        }
    }
    if !opportunities::product_type_active(c, &d.product_type)? {
        errs.add(
            "product_type",
            "invalid_value",
            "not an active product type",
        );
    }
    errs.finish()
}

fn create_tx(c: &mut DbConn, caller: &Caller, d: Draft, now: NaiveDateTime) -> AppResult<Answer> {
    check_refs(c, caller, &d)?;
    let (manager_id, path) = manager_for(c, caller, d.manager_id, d.customer_id)?;
    let new = NewOpportunity {
        customer_id: d.customer_id,
        manager_id,
        title: d.title,
        product_type: d.product_type,
        need: d.need,
        estimated_fen: d.estimated_fen,
        probability: d.probability.unwrap_or(d.stage.default_probability()),
        expected_close_date: d.expected_close_date,
        stage: d.stage.as_str().into(),
        lost_reason: d.lost_reason,
        landed_fen: d.landed_fen,
        source: d.source.as_str().into(),
        source_visit_id: d.source_visit_id,
        referral: d.referral,
        seq: changes::bump(c)?,
        created_at: now,
        updated_at: now,
    };
    let id = opportunities::insert(c, &new)?;
    opportunities::add_history(c, id, None, &new.stage, caller.user_id, None, now)?;
    let line = format!(
        "新商机「{}」（{}，预计 {} 元）",
        new.title,
        d.stage.label(),
        format_fen(new.estimated_fen)
    );
    timeline::record(
        c,
        new.customer_id,
        "opportunity",
        Some(id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    audit::record(
        c,
        caller,
        Entry::new("opportunity.create", "opportunity", id, &path),
        now,
    )?;
    let o = opportunities::find(c, &caller.scope(), id)?.ok_or_else(not_found)?;
    Answer::new(StatusCode::CREATED, &respond_one(c, o)?)
}

/// Logs an opportunity. Offline-safe: a replay with the same key answers the first result.
#[utoipa::path(
    tag = "opportunities",
    request_body = CreateOpportunityRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replay key (else the body's `client_id`)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = OpportunityResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/opportunities")]
async fn create_opportunity(
    state: web::Data<AppState>,
    auth: Auth,
    body: IdempotentJson<CreateOpportunityRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson { body, key, digest } = body;
    let draft = Draft::check(body)?;
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                create_tx(c, &caller, draft, now)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// One opportunity in the caller's scope, with a weak `ETag`; `If-None-Match` with that tag answers 304
/// without a body. The tag follows the opportunity and its customer (whose name the view shows).
#[utoipa::path(
    tag = "opportunities",
    params(
        ("id" = i64, Path, description = "Opportunity id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OpportunityResponse,
            headers(("ETag" = String, description = "Weak tag of this version, e.g. `W/\"o12-345\"`"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/opportunities/{id}")]
async fn get_opportunity(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let if_none_match = etag::if_none_match(&req);
    let now = state.now();
    let (o, tag) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let o = opportunities::find(c, &scope, id.0)?.ok_or_else(not_found)?;
            detail(c, o)
        })
        .await?;
    Ok(etag::reply(if_none_match.as_deref(), tag, &o))
}

/// The detail view of a row and its `ETag`. Every write stamps a new change number, so the pair of the
/// opportunity's and its customer's changes whenever either does. (Not their larger: on PostgreSQL numbers
/// commit in any order, so a write to one may take a number below the other's.)
fn detail(c: &mut DbConn, o: Opportunity) -> AppResult<(OpportunityResponse, String)> {
    let (name, customer_seq) = customers::name_seq(c, o.customer_id)?;
    let tag = etag::tag_pair('o', o.id, o.seq, customer_seq);
    Ok((OpportunityResponse::from_row(o, name), tag))
}

/// The checked changes and, when the stage moves, the `(from, to)` pair. `product_type_ok` says whether a
/// new product type (if any) is an active one, so that every bad field is named at once.
fn plan_update(
    o: &Opportunity,
    p: Patch,
    product_type_ok: bool,
) -> AppResult<(OpportunityChanges, Option<(Stage, Stage)>)> {
    let from = Stage::parse(&o.stage).ok_or_else(|| anyhow::anyhow!("bad stored stage"))?;
    let to = p.stage.unwrap_or(from);
    let moved = pipeline::transition(from, to)
        .map_err(|code| AppError::field("stage", code, "won and lost are final"))?;
    if from.is_final() && p.changes_more_than_stage() {
        // Closed opportunities are the record performance is built on: nothing changes behind the leaders'
        // backs (see `domain::pipeline`).
        return Err(AppError::Conflict(ErrorCode::NotEditable));
    }
    let mut errs = FieldErrors::default();
    if !product_type_ok {
        errs.add(
            "product_type",
            "invalid_value",
            "not an active product type",
        );
    }
    let has_reason = p.lost_reason.is_some() || o.lost_reason.is_some();
    let has_landed = p.landed_fen.is_some() || o.landed_fen.is_some();
    for (field, code) in pipeline::closing_problems(to, has_reason, has_landed) {
        errs.add(
            field,
            code,
            format!("{field} goes with the stage it belongs to"),
        );
    }
    if p.note.is_some() && !moved {
        errs.add("note", "not_allowed", "a note goes with a stage change");
    }
    errs.finish()?;
    let probability = pipeline::probability_after(p.probability, moved.then_some(to));
    let changes = OpportunityChanges {
        title: p.title,
        product_type: p.product_type,
        need: p.need,
        estimated_fen: p.estimated_fen,
        probability,
        expected_close_date: p.expected_close_date,
        stage: moved.then(|| to.as_str().to_owned()),
        lost_reason: p.lost_reason.map(Some),
        landed_fen: p.landed_fen.map(Some),
        seq: None,
        updated_at: None,
    };
    Ok((changes, moved.then_some((from, to))))
}

fn stage_line(title: &str, from: Stage, to: Stage, p: &OpportunityChanges) -> String {
    let mut line = format!("商机「{title}」：{} → {}", from.label(), to.label());
    if let Some(Some(reason)) = &p.lost_reason {
        line.push_str(&format!("，原因：{reason}"));
    }
    if let Some(Some(fen)) = p.landed_fen {
        line.push_str(&format!("，落地 {} 元", format_fen(fen)));
    }
    line
}

fn update_tx(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    p: Patch,
    now: NaiveDateTime,
) -> AppResult<Opportunity> {
    let scope = caller.scope();
    let o = opportunities::find(c, &scope, id)?.ok_or_else(not_found)?;
    if scope.reach == Reach::Own && o.manager_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    let product_type_ok = match &p.product_type {
        Some(pt) => opportunities::product_type_active(c, pt)?,
        None => true,
    };
    let note = p.note.clone();
    let (mut changes, moved) = plan_update(&o, p, product_type_ok)?;
    if changes.is_empty() {
        // Nothing to change (e.g. re-stating the stage): no write, no new version.
        return Ok(o);
    }
    changes.seq = Some(changes::bump(c)?);
    changes.updated_at = Some(now);
    opportunities::update(c, id, &changes)?;
    if let Some((from, to)) = moved {
        opportunities::add_history(
            c,
            id,
            Some(from.as_str()),
            to.as_str(),
            caller.user_id,
            note.as_deref(),
            now,
        )?;
        let title = changes.title.as_deref().unwrap_or(&o.title);
        let line = stage_line(title, from, to, &changes);
        timeline::record(
            c,
            o.customer_id,
            "opportunity_stage",
            Some(id),
            &line,
            Some(caller.user_id),
            now,
        )?;
    }
    let path = worklogs::org_path_of(c, o.manager_id)?;
    let detail = serde_json::json!({ "stage": moved.map(|(_, to)| to.as_str()) }).to_string();
    let entry = Entry::new("opportunity.update", "opportunity", id, &path).with_detail(detail);
    audit::record(c, caller, entry, now)?;
    opportunities::find(c, &scope, id)?.ok_or_else(not_found)
}

/// Changes an opportunity, its stage included (see `domain::pipeline`: open stages move freely; lost needs
/// `lost_reason`, won needs `landed_amount`; a stage change without `probability` takes the new stage's
/// default). Won and lost are final: leaving them is 422 `invalid_transition` on `stage`, any other change
/// of a closed opportunity 409 `not_editable`. Answers the new detail view and its `ETag`.
#[utoipa::path(
    tag = "opportunities",
    params(("id" = i64, Path, description = "Opportunity id")),
    request_body = UpdateOpportunityRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OpportunityResponse,
            headers(("ETag" = String, description = "Weak tag of the new version"))),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/opportunities/{id}")]
async fn update_opportunity(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateOpportunityRequest>,
) -> AppResult<HttpResponse> {
    let patch = Patch::check(body.0)?;
    let now = state.now();
    let (o, tag) = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            let o = update_tx(c, &caller, id.0, patch, now)?;
            detail(c, o)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(o))
}

/// The stage changes of an opportunity, oldest first (the first line is its creation, `from_stage` absent).
#[utoipa::path(
    tag = "opportunities",
    params(("id" = i64, Path, description = "Opportunity id"), HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = HistoryList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/opportunities/{id}/history")]
async fn opportunity_history(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<HistoryQuery>,
) -> AppResult<web::Json<HistoryList>> {
    let (limit, after) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let o = opportunities::find(c, &scope, id.0)?.ok_or_else(not_found)?;
            Ok(opportunities::history(c, o.id, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |h| h.id);
    let items = rows.into_iter().map(HistoryEntry::from_row).collect();
    Ok(web::Json(HistoryList { items, next_cursor }))
}

/// Whose opportunities a summary counts, checked against the caller.
fn summary_owners(
    c: &mut DbConn,
    caller: &Caller,
    q: &SummaryQuery,
) -> AppResult<(SummaryScope, Option<i64>, Owners)> {
    let wanted = q.scope.unwrap_or(match (caller.scope().reach, q.org_id) {
        (Reach::Own, None) => SummaryScope::Me,
        _ => SummaryScope::Org,
    });
    match wanted {
        SummaryScope::Me if q.org_id.is_some() => {
            Err(query_error("org_id", "not_allowed", "only with scope=org"))
        }
        SummaryScope::Me => Ok((wanted, None, Owners::Manager(caller.user_id))),
        SummaryScope::Org => {
            caller.require_leader_or_admin()?;
            let org_id = q.org_id.unwrap_or(caller.org_id);
            let org = orgs::find(c, &caller.scope(), org_id)?
                .ok_or_else(|| query_error("org_id", "not_found", "no such org in your subtree"))?;
            Ok((wanted, Some(org.id), Owners::Subtree(org.path)))
        }
    }
}

/// Count and amounts per stage (all six, zeros included) of the opportunities created in a period
/// (Asia/Shanghai dates, inclusive) — the caller's own (`scope=me`, a manager's default) or an org subtree's
/// (`scope=org`, leaders and admins, a manager: 403; default their own org, else one of their subtree: another
/// is 400 naming `org_id`). Sums are exact (whole fen added in SQL).
#[utoipa::path(
    tag = "opportunities",
    params(SummaryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = PipelineSummary),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/opportunities/summary")]
async fn opportunity_summary(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<SummaryQuery>,
) -> AppResult<web::Json<PipelineSummary>> {
    let q = query.0;
    let (from, to) = (q.from, q.to);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(query_error("to", "out_of_range", "not before `from`"));
    }
    let (start, end) = pipeline::local_period_bounds(from, to);
    let now = state.now();
    let (scope, org_id, rows) = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let (scope, org_id, owners) = summary_owners(c, &caller, &q)?;
            Ok((
                scope,
                org_id,
                opportunities::summary(c, &owners, start, end)?,
            ))
        })
        .await?;
    Ok(web::Json(PipelineSummary::build(
        scope, org_id, from, to, &rows,
    )))
}
