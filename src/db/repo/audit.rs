//! The audit log: written in the same transaction as the change it records, read by admins in scope.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::caller::{Caller, Scope};
use crate::db::DbConn;
use crate::db::models::{AuditEvent, NewAuditEvent};
use crate::db::schema::audit_events;

/// Filters for the audit list.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor_id: Option<i64>,
    /// Only this entity type (`user`, `org`, `session`).
    pub entity: Option<String>,
    /// At or after.
    pub from: Option<NaiveDateTime>,
    /// Before.
    pub to: Option<NaiveDateTime>,
}

/// What an audit row says about an entity living under `org_path`.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// E.g. `user.update`.
    pub action: &'a str,
    /// E.g. `user`.
    pub entity: &'a str,
    /// The entity's id.
    pub entity_id: String,
    /// The org path the entity belongs to (who may read the row).
    pub org_path: &'a str,
    /// Extra facts as JSON (never secrets or phone numbers).
    pub detail: Option<String>,
}

impl<'a> Entry<'a> {
    /// An entry without detail.
    pub fn new(
        action: &'a str,
        entity: &'a str,
        entity_id: impl ToString,
        org_path: &'a str,
    ) -> Self {
        Self {
            action,
            entity,
            entity_id: entity_id.to_string(),
            org_path,
            detail: None,
        }
    }

    /// Adds detail.
    pub fn with_detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Records one event by `caller`.
pub fn record(
    conn: &mut DbConn,
    caller: &Caller,
    e: Entry<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    insert(
        conn,
        NewAuditEvent {
            actor_id: Some(caller.user_id),
            action: e.action.into(),
            entity: e.entity.into(),
            entity_id: e.entity_id,
            org_path: e.org_path.into(),
            at: now,
            request_id: caller.meta.request_id.clone(),
            client_ip: caller.meta.client_ip.clone(),
            detail: e.detail,
        },
    )
}

/// Inserts a prepared event (for events without a logged-in caller, such as a login).
pub fn insert(conn: &mut DbConn, e: NewAuditEvent) -> QueryResult<()> {
    // In the SQLite writer's batch, queued and inserted with the batch's other rows before it commits.
    let Some(e) = super::batch::defer_audit(e) else {
        return Ok(());
    };
    // On the backend's own connection, with a fixed shape (`NULL`s bound, never left out): there diesel
    // keeps the prepared statement; through the two-backend connection it rendered and hashed the SQL on
    // every write (measured: 7 % of the SQLite writer's time under check-ins).
    let q = super::KeepPrepared(
        diesel::insert_into(audit_events::table)
            .values(&e)
            .returning(audit_events::id),
    );
    crate::per_backend!(conn, |c| q.get_result::<i64>(c)).map(|_| ())
}

/// Events about entities in the caller's subtree, newest first (cursor: before `before`).
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut q = audit_events::table
        .filter(audit_events::org_path.like(scope.subtree_pattern()))
        .into_boxed();
    if let Some(a) = f.actor_id {
        q = q.filter(audit_events::actor_id.eq(a));
    }
    if let Some(e) = &f.entity {
        q = q.filter(audit_events::entity.eq(e.clone()));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_events::at.ge(t));
    }
    if let Some(t) = f.to {
        q = q.filter(audit_events::at.lt(t));
    }
    if let Some(b) = before {
        q = q.filter(audit_events::id.lt(b));
    }
    q.order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}
