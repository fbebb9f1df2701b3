//! `/api/v1/audit-events`: every write, for admins, limited to entities in their subtree.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{ApiQuery, page_params};
use super::utc;
use crate::auth::caller::Auth;
use crate::db::models::AuditEvent;
use crate::db::repo::audit::{self, AuditFilter};
use crate::domain::paging::finish_page;
use crate::error::{AppResult, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit_events);
}

/// One recorded write.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventResponse {
    /// Event id.
    pub id: i64,
    /// Who did it (absent for system actions).
    pub actor_id: Option<i64>,
    /// What was done, e.g. `user.update`.
    pub action: String,
    /// The kind of object: `user`, `org`, `session`.
    pub entity: String,
    /// The object's id.
    pub entity_id: String,
    /// The org path the object belongs to.
    pub org_path: String,
    /// When (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub at: DateTime<Utc>,
    /// The request that did it.
    pub request_id: String,
    /// The client's address.
    pub client_ip: Option<String>,
    /// Extra facts (e.g. the names of changed fields; never secrets or phone numbers).
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            actor_id: e.actor_id,
            action: e.action,
            entity: e.entity,
            entity_id: e.entity_id,
            org_path: e.org_path,
            at: utc(e.at),
            request_id: e.request_id,
            client_ip: e.client_ip,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    /// The events, newest first.
    pub items: Vec<AuditEventResponse>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /audit-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListAuditEventsQuery {
    /// Only this actor.
    pub actor_id: Option<i64>,
    /// Only this entity kind (`user`, `org`, `session`).
    pub entity: Option<String>,
    /// At or after this instant (RFC 3339).
    #[serde(default, deserialize_with = "crate::api::wire_time::instant_in_opt")]
    pub from: Option<DateTime<Utc>>,
    /// Before this instant (RFC 3339).
    #[serde(default, deserialize_with = "crate::api::wire_time::instant_in_opt")]
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// The audit log of the caller's subtree (admin).
#[utoipa::path(
    tag = "audit",
    params(ListAuditEventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = AuditEventList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/audit-events")]
async fn list_audit_events(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<ListAuditEventsQuery>,
) -> AppResult<web::Json<AuditEventList>> {
    let q = query.0;
    let (limit, before) = page_params(q.limit, q.cursor.as_deref())?;
    let filter = AuditFilter {
        actor_id: q.actor_id,
        entity: q.entity,
        from: q.from.map(|t| t.naive_utc()),
        to: q.to.map(|t| t.naive_utc()),
    };
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            Ok(audit::list(c, &caller.scope(), &filter, before, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = finish_page(rows, limit, |e| e.id);
    Ok(web::Json(AuditEventList {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
