//! Opportunities (商机), their stage history and the pipeline summary, read through the caller's scope.
//!
//! Visibility (see `scope`): leaders and admins see the opportunities of managers in their subtree; a manager
//! sees their own and those about customers they see (team customers).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use super::scope::{self, Filter};
use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::schema::{customers, dictionaries, opportunities, opportunity_history, users};

/// An opportunity row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = opportunities)]
pub struct Opportunity {
    pub id: i64,
    pub customer_id: i64,
    pub manager_id: i64,
    pub title: String,
    pub product_type: String,
    pub need: Option<String>,
    pub estimated_fen: i64,
    pub probability: i32,
    pub expected_close_date: Option<NaiveDate>,
    pub stage: String,
    pub lost_reason: Option<String>,
    pub landed_fen: Option<i64>,
    pub source: String,
    pub source_visit_id: Option<i64>,
    pub referral: Option<String>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new opportunity.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = opportunities)]
pub struct NewOpportunity {
    pub customer_id: i64,
    pub manager_id: i64,
    pub title: String,
    pub product_type: String,
    pub need: Option<String>,
    pub estimated_fen: i64,
    pub probability: i32,
    pub expected_close_date: Option<NaiveDate>,
    pub stage: String,
    pub lost_reason: Option<String>,
    pub landed_fen: Option<i64>,
    pub source: String,
    pub source_visit_id: Option<i64>,
    pub referral: Option<String>,
    pub seq: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Changes to an opportunity; `Some(None)` clears a nullable column. `seq` and `updated_at` are always set.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = opportunities)]
pub struct OpportunityChanges {
    pub title: Option<String>,
    pub product_type: Option<String>,
    pub need: Option<Option<String>>,
    pub estimated_fen: Option<i64>,
    pub probability: Option<i32>,
    pub expected_close_date: Option<Option<NaiveDate>>,
    pub stage: Option<String>,
    pub lost_reason: Option<Option<String>>,
    pub landed_fen: Option<Option<i64>>,
    pub seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

impl OpportunityChanges {
    /// True when no column but the bookkeeping (`seq`, `updated_at`) would change.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.product_type.is_none()
            && self.need.is_none()
            && self.estimated_fen.is_none()
            && self.probability.is_none()
            && self.expected_close_date.is_none()
            && self.stage.is_none()
            && self.lost_reason.is_none()
            && self.landed_fen.is_none()
    }
}

/// One line of an opportunity's stage history, with the actor's name.
#[derive(Debug, Clone, Queryable)]
pub struct HistoryLine {
    pub id: i64,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub actor_id: i64,
    pub actor_name: String,
    pub note: Option<String>,
    pub at: NaiveDateTime,
}

/// Filters of the opportunity list (combined with AND, always within the caller's scope).
#[derive(Debug, Clone, Default)]
pub struct OpportunityFilter {
    /// Only this manager's opportunities.
    pub manager_id: Option<i64>,
    /// Only those whose manager is in the org subtree at this path.
    pub org_path: Option<String>,
    /// Only about this customer.
    pub customer_id: Option<i64>,
    /// Only in this stage.
    pub stage: Option<String>,
}

/// Whose opportunities a summary counts.
#[derive(Debug, Clone)]
pub enum Owners {
    /// One manager's.
    Manager(i64),
    /// Those of every user in the org subtree at this path.
    Subtree(String),
}

/// One row of the pipeline summary: stage, count, sums of estimated and landed fen.
pub type StageTotals = (String, i64, Option<i64>, Option<i64>);

/// The filter of opportunities `scope` may see.
/// A manager's reach is resolved to the ids of the customers they see first (a boxed customer filter
/// cannot be nested as a subquery on the multi-backend connection); a manager sees a few hundred.
pub fn scoped(conn: &mut DbConn, scope: &Scope) -> QueryResult<Filter<opportunities::table>> {
    Ok(match scope.reach {
        Reach::Subtree => {
            Box::new(opportunities::manager_id.eq_any(scope::users_in_subtree(&scope.org_path)))
        }
        Reach::Own => {
            let seen: Vec<i64> = customers::table
                .filter(scope::customers(scope))
                .select(customers::id)
                .load(conn)?;
            Box::new(
                opportunities::manager_id
                    .eq(scope.user_id)
                    .or(opportunities::customer_id.eq_any(seen)),
            )
        }
    })
}

/// Whether `code` is an active `product_type` in the admin-managed dictionary.
pub fn product_type_active(conn: &mut DbConn, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dictionaries::table
            .filter(dictionaries::kind.eq("product_type"))
            .filter(dictionaries::code.eq(code))
            .filter(dictionaries::active.eq(true)),
    ))
    .get_result(conn)
}

/// Inserts an opportunity; returns its id.
pub fn insert(conn: &mut DbConn, new: &NewOpportunity) -> QueryResult<i64> {
    diesel::insert_into(opportunities::table)
        .values(new)
        .returning(opportunities::id)
        .get_result(conn)
}

/// One opportunity in scope.
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Opportunity>> {
    opportunities::table
        .filter(opportunities::id.eq(id))
        .filter(scoped(conn, scope)?)
        .select(Opportunity::as_select())
        .first(conn)
        .optional()
}

/// Opportunities in scope, newest first, before the id `before`, at most `limit`.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &OpportunityFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Opportunity>> {
    let mut q = opportunities::table
        .filter(scoped(conn, scope)?)
        .into_boxed();
    if let Some(m) = f.manager_id {
        q = q.filter(opportunities::manager_id.eq(m));
    }
    if let Some(path) = &f.org_path {
        q = q.filter(opportunities::manager_id.eq_any(scope::users_in_subtree(path)));
    }
    if let Some(c) = f.customer_id {
        q = q.filter(opportunities::customer_id.eq(c));
    }
    if let Some(s) = &f.stage {
        q = q.filter(opportunities::stage.eq(s.clone()));
    }
    if let Some(b) = before {
        q = q.filter(opportunities::id.lt(b));
    }
    q.order(opportunities::id.desc())
        .limit(limit)
        .select(Opportunity::as_select())
        .load(conn)
}

/// The names of these customers (for display; the opportunities were already checked to be in scope).
pub fn customer_names(conn: &mut DbConn, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    customers::table
        .filter(customers::id.eq_any(ids))
        .select((customers::id, customers::name))
        .load(conn)
}

/// Applies changes to an opportunity already checked to be in scope.
pub fn update(conn: &mut DbConn, id: i64, changes: &OpportunityChanges) -> QueryResult<usize> {
    diesel::update(opportunities::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Appends a stage-history line (`from` is `None` for the creation).
pub fn add_history(
    conn: &mut DbConn,
    opportunity_id: i64,
    from: Option<&str>,
    to: &str,
    actor_id: i64,
    note: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(opportunity_history::table)
        .values((
            opportunity_history::opportunity_id.eq(opportunity_id),
            opportunity_history::from_stage.eq(from),
            opportunity_history::to_stage.eq(to),
            opportunity_history::actor_id.eq(actor_id),
            opportunity_history::note.eq(note),
            opportunity_history::at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// An opportunity's history, oldest first, after the line id `after`, at most `limit`.
pub fn history(
    conn: &mut DbConn,
    opportunity_id: i64,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<HistoryLine>> {
    let mut q = opportunity_history::table
        .inner_join(users::table.on(users::id.eq(opportunity_history::actor_id)))
        .filter(opportunity_history::opportunity_id.eq(opportunity_id))
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(opportunity_history::id.gt(a));
    }
    q.order(opportunity_history::id.asc())
        .limit(limit)
        .select((
            opportunity_history::id,
            opportunity_history::from_stage,
            opportunity_history::to_stage,
            opportunity_history::actor_id,
            users::name,
            opportunity_history::note,
            opportunity_history::at,
        ))
        .load(conn)
}

/// Count and sums per stage of the opportunities of `owners` created in `[from, to)` (UTC), aggregated in SQL.
/// Amounts are whole fen, so the sums are exact; stages without opportunities are absent.
pub fn summary(
    conn: &mut DbConn,
    owners: &Owners,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<StageTotals>> {
    let mut f: Filter<opportunities::table> = match owners {
        Owners::Manager(id) => Box::new(opportunities::manager_id.eq(*id)),
        Owners::Subtree(path) => {
            Box::new(opportunities::manager_id.eq_any(scope::users_in_subtree(path)))
        }
    };
    if let Some(t) = from {
        f = Box::new(f.and(opportunities::created_at.ge(t)));
    }
    if let Some(t) = to {
        f = Box::new(f.and(opportunities::created_at.lt(t)));
    }
    // SUM(BIGINT) is NUMERIC on PostgreSQL: cast back, the values are whole fen.
    opportunities::table
        .filter(f)
        .group_by(opportunities::stage)
        .select((
            opportunities::stage,
            count_star(),
            sql::<Nullable<BigInt>>("CAST(SUM(opportunities.estimated_fen) AS BIGINT)"),
            sql::<Nullable<BigInt>>("CAST(SUM(opportunities.landed_fen) AS BIGINT)"),
        ))
        .load(conn)
}
