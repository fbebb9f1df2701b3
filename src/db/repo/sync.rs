//! Delta sync: the rows of each synced entity in the caller's scope after a position in the change
//! sequence, and the tombstones addressed to the caller.
//!
//! Every write transaction takes one change number and stamps the rows it touches with it (`changes::bump`), so
//! `(seq, rank, id)` orders every change totally: `rank` breaks ties between entities of one transaction
//! (tombstones first, so a removal never hides a re-stamp of the same write), `id` within one entity. Each
//! query below reads at most `limit` rows after a [`Key`], ordered by that key; the caller merges them.

use diesel::prelude::*;

use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::models::Customer;
use crate::db::repo::contacts::Contact;
use crate::db::repo::holdings::Holding;
use crate::db::repo::opportunities::Opportunity;
use crate::db::repo::scope::{self, Filter};
use crate::db::repo::visits::Visit;
use crate::db::repo::worklogs::Worklog;
use crate::db::repo::{opportunities, visits, worklogs};
use crate::db::schema::{
    customer_contacts, customers, holdings, orgs, tombstones, visits as visits_t,
    worklogs as worklogs_t,
};

/// A position in the total order of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Key {
    /// Change sequence.
    pub seq: i64,
    /// The entity's rank (see [`Rank`]).
    pub rank: i64,
    /// Row id (the tombstone's own id for removals).
    pub id: i64,
}

/// Tie-break order of entities stamped by one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// Removals come first within a sequence number.
    Tombstone = 0,
    /// Customers.
    Customer = 1,
    /// Key contacts.
    Contact = 2,
    /// Holdings.
    Holding = 3,
    /// Visits.
    Visit = 4,
    /// Opportunities.
    Opportunity = 5,
    /// Work logs.
    Worklog = 6,
}

/// A tombstone as sync reports it.
#[derive(Debug, Clone, Queryable)]
pub struct Removal {
    /// The tombstone's id (its place in the order).
    pub id: i64,
    /// Sequence of the write that removed or moved the object.
    pub seq: i64,
    /// `customer`, `contact`, `holding`, `visit`, `opportunity`, `worklog`.
    pub entity: String,
    /// The object's id.
    pub entity_id: i64,
}

/// Rows of `$t` strictly after key `$k` for entity rank `$rank`, up to sequence number `$upto` (settled).
macro_rules! after {
    ($t:ident, $rank:expr, $k:expr, $upto:expr) => {{
        let k: Key = $k;
        let rank = $rank as i64;
        let upto = $t::seq.le($upto);
        let f: Filter<$t::table> = if rank > k.rank {
            Box::new($t::seq.ge(k.seq).and(upto))
        } else if rank == k.rank {
            Box::new(
                $t::seq
                    .gt(k.seq)
                    .or($t::seq.eq(k.seq).and($t::id.gt(k.id)))
                    .and(upto),
            )
        } else {
            Box::new($t::seq.gt(k.seq).and(upto))
        };
        f
    }};
}

/// The customers whose contacts and holdings the caller sees: a list of ids for a manager (a few hundred),
/// a subquery over the org subtree for leaders and admins.
enum Visible {
    Ids(Vec<i64>),
    Subtree(String),
}

/// Rows of `$t` (a table with `customer_id`) whose customer is visible.
macro_rules! of_visible {
    ($t:ident, $v:expr) => {{
        let f: Filter<$t::table> = match $v {
            Visible::Ids(ids) => Box::new($t::customer_id.eq_any(ids.clone())),
            Visible::Subtree(path) => Box::new(
                $t::customer_id.eq_any(
                    customers::table
                        .filter(customers::archived_at.is_null())
                        .filter(customers::manager_id.eq_any(scope::users_in_subtree(path)))
                        .select(customers::id),
                ),
            ),
        };
        f
    }};
}

/// One page of raw changes, each list ordered by key and at most `limit` long.
#[derive(Debug, Default)]
pub struct Changes {
    /// Customers in scope.
    pub customers: Vec<Customer>,
    /// Live contacts of customers in scope.
    pub contacts: Vec<Contact>,
    /// Live holdings of customers in scope.
    pub holdings: Vec<Holding>,
    /// Visits in scope.
    pub visits: Vec<Visit>,
    /// Opportunities in scope.
    pub opportunities: Vec<Opportunity>,
    /// Work logs in scope.
    pub worklogs: Vec<Worklog>,
    /// Tombstones addressed to the caller.
    pub removed: Vec<Removal>,
}

/// Up to `limit` changes of each entity after `k` in `scope` (the caller merges and cuts to `limit`).
///
/// Reads nothing numbered above `changes::settled`, taken first: a write numbered lower may commit after
/// these reads (PostgreSQL), and a token past its number would skip it.
pub fn after(conn: &mut DbConn, scope: &Scope, k: Key, limit: i64) -> QueryResult<Changes> {
    let upto = super::changes::settled(conn)?;
    let visible = match scope.reach {
        Reach::Own => Visible::Ids(
            customers::table
                .filter(scope::customers(scope))
                .select(customers::id)
                .load(conn)?,
        ),
        Reach::Subtree => Visible::Subtree(scope.org_path.clone()),
    };
    let customers = customers::table
        .filter(scope::customers(scope))
        .filter(after!(customers, Rank::Customer, k, upto))
        .order((customers::seq.asc(), customers::id.asc()))
        .limit(limit)
        .select(Customer::as_select())
        .load(conn)?;
    let contacts = customer_contacts::table
        .filter(customer_contacts::archived_at.is_null())
        .filter(of_visible!(customer_contacts, &visible))
        .filter(after!(customer_contacts, Rank::Contact, k, upto))
        .order((customer_contacts::seq.asc(), customer_contacts::id.asc()))
        .limit(limit)
        .select(Contact::as_select())
        .load(conn)?;
    let holdings = holdings::table
        .filter(holdings::archived_at.is_null())
        .filter(of_visible!(holdings, &visible))
        .filter(after!(holdings, Rank::Holding, k, upto))
        .order((holdings::seq.asc(), holdings::id.asc()))
        .limit(limit)
        .select(Holding::as_select())
        .load(conn)?;
    let visits = {
        use visits_t as visits;
        visits::table
            .filter(self::visits::scoped(conn, scope)?)
            .filter(after!(visits, Rank::Visit, k, upto))
            .order((visits::seq.asc(), visits::id.asc()))
            .limit(limit)
            .select(Visit::as_select())
            .load(conn)?
    };
    let opportunities = {
        use crate::db::schema::opportunities;
        opportunities::table
            .filter(self::opportunities::scoped(conn, scope)?)
            .filter(after!(opportunities, Rank::Opportunity, k, upto))
            .order((opportunities::seq.asc(), opportunities::id.asc()))
            .limit(limit)
            .select(Opportunity::as_select())
            .load(conn)?
    };
    let worklogs = {
        use worklogs_t as worklogs;
        worklogs::table
            .filter(self::worklogs::scoped(scope))
            .filter(after!(worklogs, Rank::Worklog, k, upto))
            .order((worklogs::seq.asc(), worklogs::id.asc()))
            .limit(limit)
            .select(Worklog::as_select())
            .load(conn)?
    };
    let removed = tombstones::table
        .filter(addressed_to(scope))
        .filter(after!(tombstones, Rank::Tombstone, k, upto))
        .order((tombstones::seq.asc(), tombstones::id.asc()))
        .limit(limit)
        .select((
            tombstones::id,
            tombstones::seq,
            tombstones::entity,
            tombstones::entity_id,
        ))
        .load(conn)?;
    Ok(Changes {
        customers,
        contacts,
        holdings,
        visits,
        opportunities,
        worklogs,
        removed,
    })
}

/// Tombstones whose audience includes the caller: a manager's own or their teams'; for leaders and admins,
/// those of orgs in their subtree.
fn addressed_to(scope: &Scope) -> Filter<tombstones::table> {
    match scope.reach {
        Reach::Own => Box::new(
            tombstones::manager_id
                .eq(scope.user_id)
                .or(tombstones::team_id.eq_any(scope::teams_of(scope.user_id)))
                .assume_not_null(),
        ),
        Reach::Subtree => Box::new(
            tombstones::org_id
                .eq_any(
                    orgs::table
                        .filter(orgs::path.like(format!("{}%", scope.org_path)))
                        .select(orgs::id.nullable()),
                )
                .assume_not_null(),
        ),
    }
}
