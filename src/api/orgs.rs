//! `/api/v1/orgs`: the org tree. Admins write in their subtree; admins and leaders read it; a manager sees
//! only their own org.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiJson, ApiQuery, PathId, page_params};
use super::utc;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::models::{NewOrg, Org, OrgBrief, OrgChanges};
use crate::db::repo::audit::Entry;
use crate::db::repo::{audit, orgs};
use crate::domain::org::{OrgKind, is_within};
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_orgs)
        .service(create_org)
        .service(get_org)
        .service(update_org);
}

/// A short reference to an org.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgRef {
    /// Org id.
    pub id: i64,
    /// Unique code, e.g. `NJ-GL`.
    pub code: String,
    /// Name, e.g. 鼓楼支行.
    pub name: String,
    /// Level in the tree.
    pub kind: OrgKind,
    /// Materialized path of ids from the root, e.g. `/1/2/5/`.
    pub path: String,
}

impl OrgRef {
    /// From a row (an unknown stored kind would be a bug; it reads as an outlet rather than failing).
    pub fn from_row(o: &Org) -> Self {
        Self::from_brief(o.into())
    }

    /// From the columns other records show.
    pub fn from_brief(o: OrgBrief) -> Self {
        Self {
            id: o.id,
            code: o.code,
            name: o.name,
            kind: OrgKind::parse(&o.kind).unwrap_or(OrgKind::Outlet),
            path: o.path,
        }
    }
}

fn kind_of(o: &Org) -> OrgKind {
    OrgKind::parse(&o.kind).unwrap_or(OrgKind::Outlet)
}

/// An org.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgResponse {
    /// Org id.
    pub id: i64,
    /// Parent org, absent for the head office.
    pub parent_id: Option<i64>,
    /// Unique code (e.g. the bank's institution number).
    pub code: String,
    /// Name.
    pub name: String,
    /// Level in the tree.
    pub kind: OrgKind,
    /// Materialized path of ids from the root.
    pub path: String,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl From<Org> for OrgResponse {
    fn from(o: Org) -> Self {
        Self {
            kind: kind_of(&o),
            id: o.id,
            parent_id: o.parent_id,
            code: o.code,
            name: o.name,
            path: o.path,
            created_at: utc(o.created_at),
            updated_at: utc(o.updated_at),
        }
    }
}

/// A page of orgs.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    /// The orgs, by id.
    pub items: Vec<OrgResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /orgs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListOrgsQuery {
    /// Only the direct children of this org.
    pub parent_id: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /orgs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    /// The parent org (in the caller's subtree).
    pub parent_id: i64,
    /// Unique code, 1–32 characters.
    pub code: String,
    /// Name, 1–100 characters.
    pub name: String,
    /// Level; must be below the parent's.
    pub kind: OrgKind,
}

/// Body of `PATCH /orgs/{id}`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgRequest {
    /// New code.
    pub code: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// Move the org (and its subtree) under this parent.
    pub parent_id: Option<i64>,
}

/// Lists the orgs the caller may see.
#[utoipa::path(
    tag = "orgs",
    params(ListOrgsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OrgList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/orgs")]
async fn list_orgs(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListOrgsQuery>,
) -> AppResult<web::Json<OrgList>> {
    let q = query.0;
    let (limit, after) = page_params(q.limit, q.cursor.as_deref())?;
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            Ok(orgs::list(c, &scope, q.parent_id, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |o| o.id);
    Ok(web::Json(OrgList {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One org in the caller's scope.
#[utoipa::path(
    tag = "orgs",
    params(("id" = i64, Path, description = "Org id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OrgResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/orgs/{id}")]
async fn get_org(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<web::Json<OrgResponse>> {
    let now = state.now();
    let org = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            orgs::find(c, &scope, id.0)?.ok_or(AppError::NotFound(ErrorCode::OrgNotFound))
        })
        .await?;
    Ok(web::Json(org.into()))
}

/// The parent named in a body, which must be in the caller's scope (else 422 on `parent_id`).
fn parent_in_scope(c: &mut DbConn, caller: &Caller, parent_id: i64) -> AppResult<Org> {
    orgs::find(c, &caller.scope(), parent_id)?
        .ok_or_else(|| AppError::field("parent_id", "not_found", "no such org in your subtree"))
}

/// Creates an org under a parent in the caller's subtree (admin).
#[utoipa::path(
    tag = "orgs",
    request_body = CreateOrgRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = OrgResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/orgs")]
async fn create_org(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<CreateOrgRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let code = validate::text(&mut errs, "code", &req.code, 32);
    let name = validate::text(&mut errs, "name", &req.name, 100);
    errs.finish()?;
    let now = state.now();
    let org = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let parent = parent_in_scope(c, &caller, req.parent_id)?;
            if !req.kind.may_have_parent(OrgKind::parse(&parent.kind)) {
                return Err(AppError::field(
                    "kind",
                    "invalid_value",
                    "must be below the parent's kind",
                ));
            }
            let new = NewOrg {
                parent_id: Some(parent.id),
                code,
                name,
                kind: req.kind.as_str().into(),
                path: String::new(),
                created_at: now,
                updated_at: now,
            };
            let org = orgs::insert(c, new, Some(&parent))?;
            audit::record(
                c,
                &caller,
                Entry::new("org.create", "org", org.id, &org.path),
                now,
            )?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Created().json(OrgResponse::from(org)))
}

/// Renames, recodes or moves an org in the caller's subtree (admin). The caller's own org cannot move.
#[utoipa::path(
    tag = "orgs",
    params(("id" = i64, Path, description = "Org id")),
    request_body = UpdateOrgRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = OrgResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/orgs/{id}")]
async fn update_org(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateOrgRequest>,
) -> AppResult<web::Json<OrgResponse>> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let changes = OrgChanges {
        code: req
            .code
            .as_deref()
            .map(|v| validate::text(&mut errs, "code", v, 32)),
        name: req
            .name
            .as_deref()
            .map(|v| validate::text(&mut errs, "name", v, 100)),
        updated_at: None,
    };
    errs.finish()?;
    let now = state.now();
    let org = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let org = orgs::find(c, &caller.scope(), id.0)?
                .ok_or(AppError::NotFound(ErrorCode::OrgNotFound))?;
            if let Some(pid) = req.parent_id.filter(|p| Some(*p) != org.parent_id) {
                move_org(c, &caller, &org, pid, now)?;
            }
            orgs::update(
                c,
                org.id,
                &OrgChanges {
                    updated_at: Some(now),
                    ..changes
                },
            )?;
            let org = orgs::find(c, &caller.scope(), org.id)?
                .ok_or(AppError::NotFound(ErrorCode::OrgNotFound))?;
            audit::record(
                c,
                &caller,
                Entry::new("org.update", "org", org.id, &org.path),
                now,
            )?;
            Ok(org)
        })
        .await?;
    Ok(web::Json(org.into()))
}

fn move_org(
    c: &mut DbConn,
    caller: &Caller,
    org: &Org,
    parent_id: i64,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    if org.id == caller.org_id || org.parent_id.is_none() {
        return Err(AppError::field(
            "parent_id",
            "not_movable",
            "your own org and the head office cannot move",
        ));
    }
    let parent = parent_in_scope(c, caller, parent_id)?;
    if is_within(&parent.path, &org.path) {
        return Err(AppError::field(
            "parent_id",
            "cycle",
            "an org cannot move below itself",
        ));
    }
    if !kind_of(org).may_have_parent(Some(kind_of(&parent))) {
        return Err(AppError::field(
            "parent_id",
            "invalid_value",
            "the parent must be above this org's kind",
        ));
    }
    Ok(orgs::move_subtree(c, org, &parent, now)?)
}
