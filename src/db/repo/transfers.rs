//! Customer transfers (移交) and ownership history, and the customer notes of the archive.
//!
//! Who sees a transfer:
//! - admin / leader: those whose current (from) or new (to) manager belongs to their org subtree;
//! - manager: those they proposed, and those moving a customer from or to them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::{self, Audience};
use super::scope::users_in_subtree;
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::models::Org;
use crate::db::schema::{
    customer_contacts, customer_notes, customers, holdings, opportunities, orgs, ownership,
    transfers, users, visits,
};
use crate::domain::org::{OrgKind, path_ids};

/// A transfer row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = transfers)]
pub struct Transfer {
    pub id: i64,
    pub customer_id: i64,
    pub from_manager_id: i64,
    pub to_manager_id: i64,
    pub reason: String,
    pub status: String,
    pub proposed_by: i64,
    pub decided_by: Option<i64>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_note: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A new (pending) transfer.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = transfers)]
pub struct NewTransfer {
    pub customer_id: i64,
    pub from_manager_id: i64,
    pub to_manager_id: i64,
    pub reason: String,
    pub status: String,
    pub proposed_by: i64,
    pub created_at: NaiveDateTime,
}

/// A user as transfers, ownership rows and notes name them.
#[derive(Debug, Clone, Queryable)]
pub struct Person {
    pub id: i64,
    pub employee_no: String,
    pub name: String,
    pub org_id: i64,
}

/// An ownership row: who was responsible for a customer from when to when.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ownership)]
pub struct Ownership {
    pub id: i64,
    pub customer_id: i64,
    pub manager_id: i64,
    pub effective_from: NaiveDateTime,
    pub effective_to: Option<NaiveDateTime>,
    pub reason: String,
    pub transfer_id: Option<i64>,
}

/// A customer note.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_notes)]
pub struct Note {
    pub id: i64,
    pub customer_id: i64,
    pub author_id: i64,
    pub text: String,
    pub created_at: NaiveDateTime,
}

/// Filters for the transfer list.
#[derive(Debug, Default, Clone)]
pub struct TransferFilter {
    /// Only this status (`pending`, `approved`, `rejected`).
    pub status: Option<String>,
    /// Only transfers of this customer.
    pub customer_id: Option<i64>,
}

type Boxed<'a> = transfers::BoxedQuery<'a, crate::db::MultiBackend>;

fn scoped<'a>(scope: &Scope) -> Boxed<'a> {
    let q = transfers::table.into_boxed();
    match scope.reach {
        Reach::Subtree => q.filter(
            transfers::from_manager_id
                .eq_any(users_in_subtree(&scope.org_path))
                .or(transfers::to_manager_id.eq_any(users_in_subtree(&scope.org_path))),
        ),
        Reach::Own => q.filter(
            transfers::proposed_by
                .eq(scope.user_id)
                .or(transfers::from_manager_id.eq(scope.user_id))
                .or(transfers::to_manager_id.eq(scope.user_id)),
        ),
    }
}

/// One transfer in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Transfer>> {
    scoped(scope)
        .filter(transfers::id.eq(id))
        .select(Transfer::as_select())
        .first(conn)
        .optional()
}

/// Transfers in scope, newest first, before the id `before`, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &TransferFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Transfer>> {
    let mut q = scoped(scope);
    if let Some(s) = &f.status {
        q = q.filter(transfers::status.eq(s.clone()));
    }
    if let Some(c) = f.customer_id {
        q = q.filter(transfers::customer_id.eq(c));
    }
    if let Some(b) = before {
        q = q.filter(transfers::id.lt(b));
    }
    q.order(transfers::id.desc())
        .limit(limit)
        .select(Transfer::as_select())
        .load(conn)
}

/// Locks the customer row until commit (a no-op update), so that two proposals for one customer queue up.
pub fn lock_customer(conn: &mut DbConn, customer_id: i64) -> QueryResult<()> {
    diesel::update(customers::table.find(customer_id))
        .set(customers::id.eq(customers::id))
        .execute(conn)
        .map(|_| ())
}

/// Whether the customer has a pending transfer.
pub fn has_pending(conn: &mut DbConn, customer_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        transfers::table
            .filter(transfers::customer_id.eq(customer_id))
            .filter(transfers::status.eq("pending")),
    ))
    .get_result(conn)
}

/// Inserts a transfer and returns it.
pub fn insert(conn: &mut DbConn, new: &NewTransfer) -> QueryResult<Transfer> {
    let id: i64 = diesel::insert_into(transfers::table)
        .values(new)
        .returning(transfers::id)
        .get_result(conn)?;
    transfers::table
        .find(id)
        .select(Transfer::as_select())
        .first(conn)
}

/// Decides a pending transfer; `false` when it was no longer pending (decided concurrently).
pub fn decide(
    conn: &mut DbConn,
    id: i64,
    status: &str,
    decided_by: i64,
    note: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        transfers::table
            .filter(transfers::id.eq(id))
            .filter(transfers::status.eq("pending")),
    )
    .set((
        transfers::status.eq(status),
        transfers::decided_by.eq(decided_by),
        transfers::decided_at.eq(now),
        transfers::decision_note.eq(note),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The org whose subtree a customer of a manager in `org` may be transferred within: the nearest branch
/// (分行) at or above `org`, else the head office, else `org` itself.
pub fn transfer_area(conn: &mut DbConn, org_id: i64) -> QueryResult<Org> {
    let org: Org = orgs::table
        .find(org_id)
        .select(Org::as_select())
        .first(conn)?;
    let mut line = super::orgs::by_ids(conn, &path_ids(&org.path))?;
    line.sort_by_key(|o| std::cmp::Reverse(o.path.len()));
    let area = line.into_iter().find(|o| {
        matches!(
            OrgKind::parse(&o.kind),
            Some(OrgKind::Branch | OrgKind::HeadOffice)
        )
    });
    Ok(area.unwrap_or(org))
}

/// The active manager `id` of the org subtree at `path`, if any.
pub fn target_manager(conn: &mut DbConn, path: &str, id: i64) -> QueryResult<Option<Person>> {
    users::table
        .inner_join(orgs::table)
        .filter(users::id.eq(id))
        .filter(users::active.eq(true))
        .filter(users::role.eq("manager"))
        .filter(orgs::path.like(format!("{path}%")))
        .select((users::id, users::employee_no, users::name, users::org_id))
        .first(conn)
        .optional()
}

/// The users with these ids (unscoped: the people a visible record names).
pub fn people(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<Person>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::employee_no, users::name, users::org_id))
        .load(conn)
}

/// Makes `manager_id` the customer's responsible manager, stamping `seq`.
pub fn set_manager(
    conn: &mut DbConn,
    customer_id: i64,
    manager_id: i64,
    seq: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(customers::table.find(customer_id))
        .set((
            customers::manager_id.eq(manager_id),
            customers::seq.eq(seq),
            customers::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Stamps `seq` on the contacts, holdings, visits and opportunities of these customers, so the phones of
/// those who now see the customers receive them with the next delta.
pub fn restamp_children(conn: &mut DbConn, customer_ids: &[i64], seq: i64) -> QueryResult<()> {
    if customer_ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        customer_contacts::table.filter(customer_contacts::customer_id.eq_any(customer_ids)),
    )
    .set(customer_contacts::seq.eq(seq))
    .execute(conn)?;
    diesel::update(holdings::table.filter(holdings::customer_id.eq_any(customer_ids)))
        .set(holdings::seq.eq(seq))
        .execute(conn)?;
    diesel::update(visits::table.filter(visits::customer_id.eq_any(customer_ids)))
        .set(visits::seq.eq(seq))
        .execute(conn)?;
    diesel::update(opportunities::table.filter(opportunities::customer_id.eq_any(customer_ids)))
        .set(opportunities::seq.eq(seq))
        .execute(conn)?;
    Ok(())
}

/// Tombstones (entities `customer`, `contact`, `holding`, `visit`, `opportunity`) for a customer that left
/// the view of `audience`: the customer, its live contacts and holdings, and its visits and opportunities
/// except those of `keep_manager` (their own records stay visible to them).
pub fn tombstone_customer_tree(
    conn: &mut DbConn,
    seq: i64,
    customer_id: i64,
    audience: Audience,
    keep_manager: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    changes::tombstone(conn, seq, "customer", customer_id, audience, now)?;
    let contacts: Vec<i64> = customer_contacts::table
        .filter(customer_contacts::customer_id.eq(customer_id))
        .filter(customer_contacts::archived_at.is_null())
        .select(customer_contacts::id)
        .load(conn)?;
    let held: Vec<i64> = holdings::table
        .filter(holdings::customer_id.eq(customer_id))
        .filter(holdings::archived_at.is_null())
        .select(holdings::id)
        .load(conn)?;
    let keep = keep_manager.unwrap_or(0);
    let seen: Vec<i64> = visits::table
        .filter(visits::customer_id.eq(customer_id))
        .filter(visits::manager_id.ne(keep))
        .select(visits::id)
        .load(conn)?;
    let opps: Vec<i64> = opportunities::table
        .filter(opportunities::customer_id.eq(customer_id))
        .filter(opportunities::manager_id.ne(keep))
        .select(opportunities::id)
        .load(conn)?;
    let all = [
        ("contact", contacts),
        ("holding", held),
        ("visit", seen),
        ("opportunity", opps),
    ];
    for (entity, ids) in all {
        for id in ids {
            changes::tombstone(conn, seq, entity, id, audience, now)?;
        }
    }
    Ok(())
}

/// Ends the customer's open ownership row at `now`.
pub fn close_ownership(conn: &mut DbConn, customer_id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        ownership::table
            .filter(ownership::customer_id.eq(customer_id))
            .filter(ownership::effective_to.is_null()),
    )
    .set(ownership::effective_to.eq(now))
    .execute(conn)
    .map(|_| ())
}

/// Opens an ownership row for `manager_id` from `now`.
pub fn open_ownership(
    conn: &mut DbConn,
    customer_id: i64,
    manager_id: i64,
    reason: &str,
    transfer_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(ownership::table)
        .values((
            ownership::customer_id.eq(customer_id),
            ownership::manager_id.eq(manager_id),
            ownership::effective_from.eq(now),
            ownership::reason.eq(reason),
            ownership::transfer_id.eq(transfer_id),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A page of a customer's ownership history, newest first, before the row id `before`.
pub fn ownership_page(
    conn: &mut DbConn,
    customer_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Ownership>> {
    let mut q = ownership::table
        .filter(ownership::customer_id.eq(customer_id))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(ownership::id.lt(b));
    }
    q.order(ownership::id.desc())
        .limit(limit)
        .select(Ownership::as_select())
        .load(conn)
}

/// Adds a note to a customer and returns it.
pub fn insert_note(
    conn: &mut DbConn,
    customer_id: i64,
    author_id: i64,
    text: &str,
    now: NaiveDateTime,
) -> QueryResult<Note> {
    let id: i64 = diesel::insert_into(customer_notes::table)
        .values((
            customer_notes::customer_id.eq(customer_id),
            customer_notes::author_id.eq(author_id),
            customer_notes::text.eq(text),
            customer_notes::created_at.eq(now),
        ))
        .returning(customer_notes::id)
        .get_result(conn)?;
    customer_notes::table
        .find(id)
        .select(Note::as_select())
        .first(conn)
}

/// A page of a customer's notes, newest first, before the note id `before`.
pub fn notes_page(
    conn: &mut DbConn,
    customer_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Note>> {
    let mut q = customer_notes::table
        .filter(customer_notes::customer_id.eq(customer_id))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(customer_notes::id.lt(b));
    }
    q.order(customer_notes::id.desc())
        .limit(limit)
        .select(Note::as_select())
        .load(conn)
}
