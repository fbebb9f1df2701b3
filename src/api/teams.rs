//! `/api/v1/teams`: customer teams (客户小组). A leader or admin creates a team in an org of their subtree
//! with members of that org's subtree in team roles, and assigns customers to it; the team's members then see
//! its customers (the rule lives in `repo::scope`). Managers read the teams they belong to. Archiving a team
//! takes its customers out of it.
//!
//! Sync: customers leaving a team get tombstones for the team (audience `team_id`); a manager removed from a
//! team gets tombstones for its customers (audience `manager_id`); customers joining a team, or a team gaining
//! members, get a fresh `seq` (with their contacts, holdings, visits and opportunities).

use std::collections::{BTreeSet, HashMap};

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::etag;
use super::extract::{ApiJson, ApiQuery, PathId, page_params};
use super::orgs::OrgRef;
use super::utc;
use crate::auth::caller::{Auth, Caller};
use crate::db::DbConn;
use crate::db::models::Org;
use crate::db::repo::audit::Entry;
use crate::db::repo::teams::{self, Team};
use crate::db::repo::{audit, changes, orgs, timeline, transfers};
use crate::domain::paging::finish_page;
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldError, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Most members a team may have.
pub const MAX_MEMBERS: usize = 50;
/// Most customers one assignment may name.
pub const MAX_CUSTOMERS: usize = 1000;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_teams)
        .service(create_team)
        .service(get_team)
        .service(update_team)
        .service(archive_team)
        .service(list_team_customers)
        .service(set_team_customers);
}

/// A member's role in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// 组长: leads the team.
    Leader,
    /// 客户经理 (relationship manager).
    RelationshipManager,
    /// 业务经理 (business manager, e.g. a product specialist).
    BusinessManager,
    /// 助理.
    Assistant,
}

impl TeamRole {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::RelationshipManager => "relationship_manager",
            Self::BusinessManager => "business_manager",
            Self::Assistant => "assistant",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Leader,
            Self::RelationshipManager,
            Self::BusinessManager,
            Self::Assistant,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A member as given in a request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamMemberInput {
    /// An active user of the team's org subtree.
    pub user_id: i64,
    /// Role in the team.
    pub role: TeamRole,
}

/// A member of a team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMemberResponse {
    /// User id.
    pub user_id: i64,
    /// Employee number.
    pub employee_no: String,
    /// Full name.
    pub name: String,
    /// Role in the team.
    pub role: TeamRole,
}

/// A customer team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamResponse {
    /// Team id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The org the team belongs to.
    pub org: OrgRef,
    /// The user who created it.
    pub created_by: i64,
    /// The members, by user id.
    pub members: Vec<TeamMemberResponse>,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

/// A page of teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamList {
    /// The teams, by id.
    pub items: Vec<TeamResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /teams`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTeamsQuery {
    /// Only teams of this org (not below it).
    pub org_id: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Paging query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /teams`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// Name, 1–100 characters.
    pub name: String,
    /// An org of the caller's subtree; default the caller's own org.
    pub org_id: Option<i64>,
    /// Members (at most 50, each user once): active users of the team's org subtree.
    #[serde(default)]
    pub members: Vec<TeamMemberInput>,
}

/// Body of `PATCH /teams/{id}`: every field optional; `members` replaces the whole list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeamRequest {
    /// New name.
    pub name: Option<String>,
    /// The new member list (replaces the old one).
    pub members: Option<Vec<TeamMemberInput>>,
}

/// Body of `PUT /teams/{id}/customers`: the team's customers become exactly these.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTeamCustomersRequest {
    /// Customers in the caller's scope whose manager belongs to the team's org subtree (at most 1000, each
    /// once). A customer in another team moves to this one.
    pub customer_ids: Vec<i64>,
}

/// The customers of a team after an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCustomerIds {
    /// Team id.
    pub team_id: i64,
    /// Its customers, by id.
    pub customer_ids: Vec<i64>,
}

/// A customer of a team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCustomerRef {
    /// Customer id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Responsible manager.
    pub manager_id: i64,
}

/// A page of a team's customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCustomerList {
    /// The customers, by id.
    pub items: Vec<TeamCustomerRef>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Shapes teams with their orgs and members.
fn responses(c: &mut DbConn, rows: Vec<Team>) -> AppResult<Vec<TeamResponse>> {
    let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
    let org_ids: Vec<i64> = rows.iter().map(|t| t.org_id).collect();
    let orgs: HashMap<i64, Org> = orgs::by_ids(c, &org_ids)?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut members: HashMap<i64, Vec<TeamMemberResponse>> = HashMap::new();
    for m in teams::members_of(c, &ids)? {
        members
            .entry(m.team_id)
            .or_default()
            .push(TeamMemberResponse {
                user_id: m.user_id,
                employee_no: m.employee_no,
                name: m.name,
                role: TeamRole::parse(&m.role).unwrap_or(TeamRole::Assistant),
            });
    }
    rows.into_iter()
        .map(|t| {
            let org = orgs
                .get(&t.org_id)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("team org missing")))?;
            Ok(TeamResponse {
                id: t.id,
                name: t.name,
                org: OrgRef::from_row(org),
                created_by: t.created_by,
                members: members.remove(&t.id).unwrap_or_default(),
                created_at: utc(t.created_at),
                updated_at: utc(t.updated_at),
            })
        })
        .collect()
}

fn one(c: &mut DbConn, team: Team) -> AppResult<TeamResponse> {
    responses(c, vec![team])?
        .pop()
        .ok_or(AppError::NotFound(ErrorCode::TeamNotFound))
}

fn find_team(c: &mut DbConn, caller: &Caller, id: i64) -> AppResult<Team> {
    teams::find(c, &caller.scope(), id)?.ok_or(AppError::NotFound(ErrorCode::TeamNotFound))
}

fn team_org(c: &mut DbConn, team: &Team) -> AppResult<Org> {
    orgs::by_ids(c, &[team.org_id])?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("team org missing")))
}

/// Checks a member list's shape (size, each user once); returns (user id, role) pairs.
fn member_pairs(members: &[TeamMemberInput]) -> AppResult<Vec<(i64, String)>> {
    let mut errs = FieldErrors::default();
    if members.len() > MAX_MEMBERS {
        errs.add(
            "members",
            "too_many",
            format!("at most {MAX_MEMBERS} members"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        if !seen.insert(m.user_id) {
            errs.add(
                &format!("members.{i}.user_id"),
                "duplicate",
                "each user may appear once",
            );
        }
    }
    errs.finish()?;
    Ok(members
        .iter()
        .map(|m| (m.user_id, m.role.as_str().to_owned()))
        .collect())
}

/// 422 on `members.N.user_id` for each member who is not an active user of the org subtree.
fn check_members(c: &mut DbConn, org: &Org, members: &[(i64, String)]) -> AppResult<()> {
    let ids: Vec<i64> = members.iter().map(|(u, _)| *u).collect();
    let found = teams::active_users_under(c, &org.path, &ids)?;
    let errors: Vec<FieldError> = ids
        .iter()
        .enumerate()
        .filter(|(_, u)| !found.contains(u))
        .map(|(i, _)| {
            FieldError::new(
                format!("members.{i}.user_id"),
                "not_found",
                "no such active user in the team's org subtree",
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Lists the teams the caller may see: leaders and admins those of their subtree, managers their own.
#[utoipa::path(
    tag = "teams",
    params(ListTeamsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TeamList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/teams")]
async fn list_teams(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListTeamsQuery>,
) -> AppResult<web::Json<TeamList>> {
    let q = query.0;
    let (limit, after) = page_params(q.limit, q.cursor.as_deref())?;
    let now = state.now();
    let (items, next_cursor) = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let rows = teams::list(c, &scope, q.org_id, after, limit + 1)?;
            let (rows, next) = finish_page(rows, limit, |t| t.id);
            Ok((responses(c, rows)?, next))
        })
        .await?;
    Ok(web::Json(TeamList { items, next_cursor }))
}

/// One team in the caller's scope, with its members.
#[utoipa::path(
    tag = "teams",
    params(
        ("id" = i64, Path, description = "Team id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TeamResponse,
            headers(("ETag" = String, description = "Weak tag of this version (a digest of the body)"))),
        (status = 304, description = "Not modified: the client's copy is current"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/teams/{id}")]
async fn get_team(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let if_none_match = etag::if_none_match(&req);
    let now = state.now();
    let team = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let team = find_team(c, &caller, id.0)?;
            one(c, team)
        })
        .await?;
    etag::reply_by_content(if_none_match.as_deref(), 't', &team)
}

/// Creates a team in an org of the caller's subtree (leader or admin).
#[utoipa::path(
    tag = "teams",
    request_body = CreateTeamRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TeamResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/teams")]
async fn create_team(
    state: web::Data<AppState>,
    auth: Auth,
    body: ApiJson<CreateTeamRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let name = validate::text(&mut errs, "name", &req.name, 100);
    errs.finish()?;
    let members = member_pairs(&req.members)?;
    let now = state.now();
    let team = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_leader_or_admin()?;
            let org_id = req.org_id.unwrap_or(caller.org_id);
            let org = orgs::find(c, &caller.scope(), org_id)?.ok_or_else(|| {
                AppError::field("org_id", "not_found", "no such org in your subtree")
            })?;
            check_members(c, &org, &members)?;
            let id = teams::insert(c, org.id, &name, caller.user_id, now)?;
            teams::replace_members(c, id, &members)?;
            audit::record(
                c,
                &caller,
                Entry::new("team.create", "team", id, &org.path),
                now,
            )?;
            let team = find_team(c, &caller, id)?;
            one(c, team)
        })
        .await?;
    Ok(HttpResponse::Created().json(team))
}

fn apply_update(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    name: Option<&str>,
    members: Option<&[(i64, String)]>,
    now: NaiveDateTime,
) -> AppResult<TeamResponse> {
    let team = find_team(c, caller, id)?;
    let org = team_org(c, &team)?;
    let mut fields = Vec::new();
    if let Some(members) = members {
        check_members(c, &org, members)?;
        let old: Vec<i64> = teams::members_of(c, &[team.id])?
            .iter()
            .map(|m| m.user_id)
            .collect();
        let removed = teams::replace_members(c, team.id, members)?;
        let removed = teams::managers_among(c, &removed)?;
        let added = members.iter().any(|(u, _)| !old.contains(u));
        if added || !removed.is_empty() {
            let seq = changes::bump(c)?;
            for user in removed {
                teams::tombstone_left_member(c, seq, team.id, user, now)?;
            }
            if added {
                teams::restamp(c, team.id, seq)?;
            }
        }
        fields.push("members");
    }
    if name.is_some() {
        fields.push("name");
    }
    teams::touch(c, team.id, name, now)?;
    let detail = serde_json::json!({ "fields": fields }).to_string();
    audit::record(
        c,
        caller,
        Entry::new("team.update", "team", team.id, &org.path).with_detail(detail),
        now,
    )?;
    let team = find_team(c, caller, team.id)?;
    one(c, team)
}

/// Renames a team or replaces its members (leader or admin).
#[utoipa::path(
    tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    request_body = UpdateTeamRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TeamResponse),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[patch("/teams/{id}")]
async fn update_team(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<UpdateTeamRequest>,
) -> AppResult<web::Json<TeamResponse>> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let name = req
        .name
        .as_deref()
        .map(|n| validate::text(&mut errs, "name", n, 100));
    errs.finish()?;
    let members = req.members.as_deref().map(member_pairs).transpose()?;
    let now = state.now();
    let team = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_leader_or_admin()?;
            apply_update(c, &caller, id.0, name.as_deref(), members.as_deref(), now)
        })
        .await?;
    Ok(web::Json(team))
}

/// Archives a team (leader or admin): its customers leave it; the team is kept but no longer visible.
#[utoipa::path(
    tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Archived"),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[delete("/teams/{id}")]
async fn archive_team(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
) -> AppResult<HttpResponse> {
    let now = state.now();
    state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_leader_or_admin()?;
            let team = find_team(c, &caller, id.0)?;
            let org = team_org(c, &team)?;
            let ids = teams::customer_ids(c, team.id)?;
            move_customers(c, &caller, &team, &ids, &[], now)?;
            teams::archive(c, team.id, now)?;
            audit::record(
                c,
                &caller,
                Entry::new("team.archive", "team", team.id, &org.path),
                now,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The customers of a team in the caller's scope, by id.
#[utoipa::path(
    tag = "teams",
    params(("id" = i64, Path, description = "Team id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TeamCustomerList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/teams/{id}/customers")]
async fn list_team_customers(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    query: ApiQuery<PageQuery>,
) -> AppResult<web::Json<TeamCustomerList>> {
    let (limit, after) = page_params(query.0.limit, query.0.cursor.as_deref())?;
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            let team = find_team(c, &caller, id.0)?;
            Ok(teams::customers_page(c, team.id, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |r| r.id);
    let items = rows
        .into_iter()
        .map(|r| TeamCustomerRef {
            id: r.id,
            name: r.name,
            manager_id: r.manager_id,
        })
        .collect();
    Ok(web::Json(TeamCustomerList { items, next_cursor }))
}

/// Takes `removed` out of `team` and puts `added` into it (out of their former team), in one change.
fn move_customers(
    c: &mut DbConn,
    caller: &Caller,
    team: &Team,
    removed: &[i64],
    added: &[teams::Assignable],
    now: NaiveDateTime,
) -> AppResult<()> {
    if removed.is_empty() && added.is_empty() {
        return Ok(());
    }
    let seq = changes::bump(c)?;
    teams::set_team(c, removed, None, seq, now)?;
    teams::tombstone_left_team(c, seq, team.id, removed, now)?;
    let out = format!("移出客户小组「{}」", team.name);
    for id in removed {
        timeline::record(
            c,
            *id,
            "team",
            Some(team.id),
            &out,
            Some(caller.user_id),
            now,
        )?;
    }
    for a in added {
        if let Some(old) = a.team_id {
            teams::tombstone_left_team(c, seq, old, &[a.id], now)?;
        }
    }
    let ids: Vec<i64> = added.iter().map(|a| a.id).collect();
    teams::set_team(c, &ids, Some(team.id), seq, now)?;
    transfers::restamp_children(c, &ids, seq)?;
    let into = format!("加入客户小组「{}」", team.name);
    for id in &ids {
        timeline::record(
            c,
            *id,
            "team",
            Some(team.id),
            &into,
            Some(caller.user_id),
            now,
        )?;
    }
    Ok(())
}

/// Checks an assignment's shape (size, each customer once).
fn check_customer_ids(ids: &[i64]) -> AppResult<()> {
    let mut errs = FieldErrors::default();
    if ids.len() > MAX_CUSTOMERS {
        errs.add(
            "customer_ids",
            "too_many",
            format!("at most {MAX_CUSTOMERS} customers"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !seen.insert(*id) {
            errs.add(
                &format!("customer_ids.{i}"),
                "duplicate",
                "each customer may appear once",
            );
        }
    }
    errs.finish()
}

fn assign(
    c: &mut DbConn,
    caller: &Caller,
    id: i64,
    wanted: &[i64],
    now: NaiveDateTime,
) -> AppResult<TeamCustomerIds> {
    let team = find_team(c, caller, id)?;
    let org = team_org(c, &team)?;
    let found = teams::assignable(c, &caller.scope(), &org.path, wanted)?;
    let errors: Vec<FieldError> = wanted
        .iter()
        .enumerate()
        .filter(|(_, w)| !found.iter().any(|f| f.id == **w))
        .map(|(i, _)| {
            FieldError::new(
                format!("customer_ids.{i}"),
                "not_found",
                "no such customer of the team's org subtree in your scope",
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let current = teams::customer_ids(c, team.id)?;
    let removed: Vec<i64> = current
        .iter()
        .filter(|i| !wanted.contains(i))
        .copied()
        .collect();
    let added: Vec<teams::Assignable> = found
        .into_iter()
        .filter(|f| f.team_id != Some(team.id))
        .collect();
    move_customers(c, caller, &team, &removed, &added, now)?;
    let detail = serde_json::json!({ "added": added.len(), "removed": removed.len() }).to_string();
    let entry = Entry::new("team.customers", "team", team.id, &org.path).with_detail(detail);
    audit::record(c, caller, entry, now)?;
    let customer_ids = teams::customer_ids(c, team.id)?;
    Ok(TeamCustomerIds {
        team_id: team.id,
        customer_ids,
    })
}

/// Sets the customers of a team (leader or admin): they become exactly `customer_ids`.
#[utoipa::path(
    tag = "teams",
    params(("id" = i64, Path, description = "Team id")),
    request_body = SetTeamCustomersRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = TeamCustomerIds),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[put("/teams/{id}/customers")]
async fn set_team_customers(
    state: web::Data<AppState>,
    auth: Auth,
    id: PathId,
    body: ApiJson<SetTeamCustomersRequest>,
) -> AppResult<web::Json<TeamCustomerIds>> {
    let wanted = body.0.customer_ids;
    check_customer_ids(&wanted)?;
    let now = state.now();
    let out = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_leader_or_admin()?;
            assign(c, &caller, id.0, &wanted, now)
        })
        .await?;
    Ok(web::Json(out))
}
