//! Customer transfers (`/api/v1/customers/{id}/transfers`, `/api/v1/transfers`): a leader or admin whose
//! subtree holds the customer, or its responsible manager, proposes a new responsible manager with a reason;
//! a leader or admin whose subtree holds the customer's current manager approves or rejects it — never the
//! one who proposed it (maker-checker; the proposer may reject, i.e. withdraw, it). On approval
//! the customer changes hands in one transaction: ownership history, sync stamps and tombstones for the old
//! manager, a line in the customer archive and an audit row. The archive endpoints (ownership history,
//! timeline, notes) are in `archive`.
//!
//! The new manager must be an active manager of the same branch (分行) as the current manager — the subtree
//! of the nearest branch at or above the current manager's org (the head office if there is none).

mod archive;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::etag;
use super::extract::{ApiJson, ApiQuery, PathId, page_params};
use super::idempotency::{Answer, IdempotentJson, once};
use super::utc;
use crate::auth::caller::{Auth, Caller, Scope};
use crate::db::DbConn;
use crate::db::models::Customer;
use crate::db::repo::audit::Entry;
use crate::db::repo::changes::{self, Audience};
use crate::db::repo::notifications::{self, Planned};
use crate::db::repo::transfers::{self, NewTransfer, Person, Transfer, TransferFilter};
use crate::db::repo::{audit, orgs, scope, timeline};
use crate::domain::customer as customer_rules;
use crate::domain::paging::finish_page;
use crate::domain::reminders::Kind;
use crate::domain::user::Role;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// The code of the 409 answering a proposal for a customer that already has a pending transfer.
pub const PENDING_TRANSFER_EXISTS: ErrorCode = ErrorCode::NotEditable;

/// Registers the routes of this module (transfers, and the customer archive).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(propose_transfer)
        .service(list_transfers)
        .service(get_transfer)
        .service(approve_transfer)
        .service(reject_transfer);
    archive::configure(cfg);
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Waiting for a leader's decision.
    Pending,
    /// Approved: the customer changed hands.
    Approved,
    /// Rejected: nothing changed.
    Rejected,
}

impl TransferStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A user as a record names them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonRef {
    /// User id.
    pub id: i64,
    /// Employee number.
    pub employee_no: String,
    /// Full name.
    pub name: String,
}

impl PersonRef {
    /// From a person row.
    pub fn from_row(p: &Person) -> Self {
        Self {
            id: p.id,
            employee_no: p.employee_no.clone(),
            name: p.name.clone(),
        }
    }
}

/// The people with these ids, by id.
pub fn people_by_id(c: &mut DbConn, ids: Vec<i64>) -> AppResult<HashMap<i64, PersonRef>> {
    Ok(transfers::people(c, &ids)?
        .iter()
        .map(|p| (p.id, PersonRef::from_row(p)))
        .collect())
}

/// The person `id` of `people` (a missing user row would be a broken foreign key).
pub fn person(people: &HashMap<i64, PersonRef>, id: i64) -> AppResult<PersonRef> {
    people
        .get(&id)
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("user {id} missing")))
}

/// A transfer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    /// Transfer id.
    pub id: i64,
    /// The customer.
    pub customer_id: i64,
    /// The responsible manager when it was proposed.
    pub from_manager: PersonRef,
    /// The proposed new responsible manager.
    pub to_manager: PersonRef,
    /// Why.
    pub reason: String,
    /// Where it stands.
    pub status: TransferStatus,
    /// Who proposed it.
    pub proposed_by: PersonRef,
    /// Who decided it.
    pub decided_by: Option<PersonRef>,
    /// When it was decided (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant_opt")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The decider's note.
    pub decision_note: Option<String>,
    /// Proposed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
}

/// A page of transfers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferList {
    /// The transfers, newest first.
    pub items: Vec<TransferResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /transfers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTransfersQuery {
    /// Only transfers in this state.
    pub status: Option<TransferStatus>,
    /// Only transfers of this customer.
    pub customer_id: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /customers/{id}/transfers` (send an `Idempotency-Key` to make retries safe).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTransferRequest {
    /// The new responsible manager: an active manager of the current manager's branch, not the current one.
    pub to_manager_id: i64,
    /// Why, 1–500 characters.
    pub reason: String,
}

/// Body of `POST /transfers/{id}/approve` and `/reject` (`{}` without a note).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideTransferRequest {
    /// The decider's note, up to 500 characters.
    pub note: Option<String>,
}

/// Shapes transfers with the people they name.
fn responses(c: &mut DbConn, rows: Vec<Transfer>) -> AppResult<Vec<TransferResponse>> {
    let mut ids: Vec<i64> = Vec::new();
    for t in &rows {
        ids.extend([t.from_manager_id, t.to_manager_id, t.proposed_by]);
        ids.extend(t.decided_by);
    }
    let people = people_by_id(c, ids)?;
    rows.into_iter()
        .map(|t| {
            Ok(TransferResponse {
                id: t.id,
                customer_id: t.customer_id,
                from_manager: person(&people, t.from_manager_id)?,
                to_manager: person(&people, t.to_manager_id)?,
                reason: t.reason,
                status: TransferStatus::parse(&t.status).unwrap_or(TransferStatus::Pending),
                proposed_by: person(&people, t.proposed_by)?,
                decided_by: t.decided_by.map(|d| person(&people, d)).transpose()?,
                decided_at: t.decided_at.map(utc),
                decision_note: t.decision_note,
                created_at: utc(t.created_at),
            })
        })
        .collect()
}

fn one(c: &mut DbConn, scope: &Scope, id: i64) -> AppResult<TransferResponse> {
    let t =
        transfers::find(c, scope, id)?.ok_or(AppError::NotFound(ErrorCode::TransferNotFound))?;
    responses(c, vec![t])?
        .pop()
        .ok_or(AppError::NotFound(ErrorCode::TransferNotFound))
}

/// The responsible manager of a customer, and the org path audit rows about the customer go under.
fn owner_of(c: &mut DbConn, customer: &Customer) -> AppResult<(Person, String)> {
    let owner = transfers::people(c, &[customer.manager_id])?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("manager missing")))?;
    let org = orgs::by_ids(c, &[owner.org_id])?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("org missing")))?;
    Ok((owner, org.path))
}

/// The new manager named by a transfer: an active manager of the current manager's branch.
fn target(c: &mut DbConn, owner: &Person, to_manager_id: i64) -> AppResult<Person> {
    let area = transfers::transfer_area(c, owner.org_id)?;
    transfers::target_manager(c, &area.path, to_manager_id)?.ok_or_else(|| {
        AppError::field(
            "to_manager_id",
            "not_found",
            "no such active manager in the customer's branch",
        )
    })
}

fn propose(
    c: &mut DbConn,
    caller: &Caller,
    customer_id: i64,
    req: &CreateTransferRequest,
    reason: &str,
    now: NaiveDateTime,
) -> AppResult<TransferResponse> {
    let scope = caller.scope();
    let customer = scope::find_customer(c, &scope, customer_id)?
        .ok_or(AppError::NotFound(ErrorCode::CustomerNotFound))?;
    if caller.role == Role::Manager && customer.manager_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    transfers::lock_customer(c, customer.id)?;
    let (owner, org_path) = owner_of(c, &customer)?;
    if req.to_manager_id == owner.id {
        return Err(AppError::field(
            "to_manager_id",
            "same_manager",
            "already the responsible manager",
        ));
    }
    let to = target(c, &owner, req.to_manager_id)?;
    if transfers::has_pending(c, customer.id)? {
        return Err(AppError::Conflict(PENDING_TRANSFER_EXISTS));
    }
    let t = transfers::insert(
        c,
        &NewTransfer {
            customer_id: customer.id,
            from_manager_id: owner.id,
            to_manager_id: to.id,
            reason: reason.to_owned(),
            status: TransferStatus::Pending.as_str().into(),
            proposed_by: caller.user_id,
            created_at: now,
        },
    )?;
    let line = format!("提议移交给 {}（{}）", to.name, to.employee_no);
    timeline::record(
        c,
        customer.id,
        "transfer_proposed",
        Some(t.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    audit::record(
        c,
        caller,
        Entry::new("transfer.propose", "transfer", t.id, &org_path),
        now,
    )?;
    one(c, &scope, t.id)
}

/// Proposes a new responsible manager for a customer (leader or admin of its subtree, or its responsible
/// manager). A customer has at most one pending transfer (409).
#[utoipa::path(
    tag = "transfers",
    params(
        ("id" = i64, Path, description = "Customer id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for a retried proposal")
    ),
    request_body = CreateTransferRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TransferResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/customers/{id}/transfers")]
async fn propose_transfer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: IdempotentJson<CreateTransferRequest>,
) -> AppResult<HttpResponse> {
    let IdempotentJson {
        body: req,
        key,
        digest,
    } = body;
    let mut errs = FieldErrors::default();
    let reason = validate::text(&mut errs, "reason", &req.reason, 500);
    errs.finish()?;
    let now = state.now();
    let answer = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            once(c, &caller, key.as_deref(), &digest, now, |c| {
                let t = propose(c, &caller, id.0, &req, &reason, now)?;
                Answer::new(StatusCode::CREATED, &t)
            })
        })
        .await?;
    Ok(answer.respond())
}

/// Lists the transfers the caller may see, newest first: leaders and admins those from or to a manager of
/// their subtree; managers those they proposed or that move a customer from or to them.
#[utoipa::path(
    tag = "transfers",
    params(ListTransfersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TransferList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/transfers")]
async fn list_transfers(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListTransfersQuery>,
) -> AppResult<web::Json<TransferList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let filter = TransferFilter {
        status: q.status.map(|s| s.as_str().to_owned()),
        customer_id: q.customer_id,
    };
    let now = state.now();
    let (items, next_cursor) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let rows = transfers::list(c, &scope, &filter, before, limit + 1)?;
            let (rows, next) = finish_page(rows, limit, |t| t.id);
            Ok((responses(c, rows)?, next))
        })
        .await?;
    Ok(web::Json(TransferList { items, next_cursor }))
}

/// One transfer in the caller's scope.
#[utoipa::path(
    tag = "transfers",
    params(
        ("id" = i64, Path, description = "Transfer id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TransferResponse,
            headers(("ETag" = String, description = "Weak tag of this version (a digest of the body)"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/transfers/{id}")]
async fn get_transfer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let if_none_match = etag::if_none_match(&req);
    let now = state.now();
    let t = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            one(c, &scope, id.0)
        })
        .await?;
    etag::reply_by_content(if_none_match.as_deref(), 'x', &t)
}

/// Moves the customer to the transfer's new manager (the transfer is already marked approved).
fn hand_over(
    c: &mut DbConn,
    caller: &Caller,
    t: &Transfer,
    customer: &Customer,
    owner: &Person,
    to: &Person,
    now: NaiveDateTime,
) -> AppResult<()> {
    let seq = changes::bump(c)?;
    transfers::set_manager(c, customer.id, to.id, seq, now)?;
    transfers::close_ownership(c, customer.id, now)?;
    transfers::open_ownership(c, customer.id, to.id, &t.reason, Some(t.id), now)?;
    transfers::restamp_children(c, &[customer.id], seq)?;
    let old_view = Scope {
        user_id: owner.id,
        org_id: owner.org_id,
        org_path: String::new(),
        reach: crate::auth::caller::Reach::Own,
    };
    // Through a team the old manager may still see the customer: then nothing left their view.
    if scope::find_customer(c, &old_view, customer.id)?.is_none() {
        let audience = Audience {
            manager_id: Some(owner.id),
            team_id: None,
            org_id: (owner.org_id != to.org_id).then_some(owner.org_id),
        };
        transfers::tombstone_customer_tree(c, seq, customer.id, audience, Some(owner.id), now)?;
    }
    let line = format!(
        "移交：{}（{}）→ {}（{}）",
        owner.name, owner.employee_no, to.name, to.employee_no
    );
    timeline::record(
        c,
        customer.id,
        "transfer",
        Some(t.id),
        &line,
        Some(caller.user_id),
        now,
    )?;
    Ok(())
}

fn decide(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    approve: bool,
    note: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<TransferResponse> {
    caller.require_leader_or_admin()?;
    let scope = caller.scope();
    let t =
        transfers::find(c, &scope, id)?.ok_or(AppError::NotFound(ErrorCode::TransferNotFound))?;
    if t.status != TransferStatus::Pending.as_str() {
        return Err(AppError::Conflict(ErrorCode::TransferAlreadyDecided));
    }
    if !customer_rules::may_decide_transfer(t.proposed_by, caller.user_id, approve) {
        return Err(AppError::Denied(ErrorCode::ProposerCannotApprove));
    }
    // Only a leader above the current manager decides (a leader on the receiving side only sees it).
    let customer = scope::find_customer(c, &scope, t.customer_id)?.ok_or(AppError::Forbidden)?;
    let (owner, org_path) = owner_of(c, &customer)?;
    let to = if approve {
        Some(target(c, &owner, t.to_manager_id)?)
    } else {
        None
    };
    let status = if approve {
        TransferStatus::Approved
    } else {
        TransferStatus::Rejected
    };
    if !transfers::decide(c, t.id, status.as_str(), caller.user_id, note, now)? {
        return Err(AppError::Conflict(ErrorCode::TransferAlreadyDecided));
    }
    let action = match &to {
        Some(to) => {
            hand_over(c, caller, &t, &customer, &owner, to, now)?;
            "transfer.approve"
        }
        None => {
            let line = "移交申请被驳回";
            timeline::record(
                c,
                customer.id,
                "transfer_rejected",
                Some(t.id),
                line,
                Some(caller.user_id),
                now,
            )?;
            "transfer.reject"
        }
    };
    let detail =
        serde_json::json!({ "customer_id": customer.id, "from": owner.id, "to": t.to_manager_id });
    let entry = Entry::new(action, "transfer", t.id, &org_path).with_detail(detail.to_string());
    audit::record(c, caller, entry, now)?;
    // Both managers hear the decision at once (in the same transaction: no decision without its notice).
    let mut to_tell = vec![owner.id, t.to_manager_id];
    to_tell.dedup();
    let notes = Planned::events(
        to_tell,
        Kind::TransferDecided,
        "transfer",
        ("transfer", t.id),
        now,
    );
    notifications::notify(c, &notes, now)?;
    one(c, &scope, t.id)
}

async fn decide_handler(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: DecideTransferRequest,
    approve: bool,
) -> AppResult<web::Json<TransferResponse>> {
    let mut errs = FieldErrors::default();
    let note = validate::opt_text(&mut errs, "note", body.note.as_deref(), 500);
    errs.finish()?;
    let now = state.now();
    let t = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            decide(c, &caller, id.0, approve, note.as_deref(), now)
        })
        .await?;
    Ok(web::Json(t))
}

/// Approves a pending transfer (leader or admin whose subtree holds the customer's current manager, other
/// than its proposer: 403 `proposer_cannot_approve`): the customer changes hands at once and its old
/// manager no longer sees it.
#[utoipa::path(
    tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id")),
    request_body = DecideTransferRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TransferResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/transfers/{id}/approve")]
async fn approve_transfer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<DecideTransferRequest>,
) -> AppResult<web::Json<TransferResponse>> {
    decide_handler(state, auth, id, body.0, true).await
}

/// Rejects a pending transfer (leader or admin whose subtree holds the customer's current manager).
#[utoipa::path(
    tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id")),
    request_body = DecideTransferRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TransferResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/transfers/{id}/reject")]
async fn reject_transfer(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<DecideTransferRequest>,
) -> AppResult<web::Json<TransferResponse>> {
    decide_handler(state, auth, id, body.0, false).await
}
