//! Customers through the caller's scope (`repo::scope::customers`), their first ownership row, and archiving.
//! Customers are never deleted: `archive` hides them from every view and leaves the row.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::auth::caller::{Reach, Scope};
use crate::db::DbConn;
use crate::db::models::{Customer, NewCustomer};
use crate::db::repo::scope;
use crate::db::schema::{customers, holdings, orgs, ownership, users};

/// Filters of the customer list (all optional, combined with AND).
#[derive(Debug, Default, Clone)]
pub struct CustomerFilter {
    /// Name prefix; when 4+ digits, also a phone suffix.
    pub q: Option<String>,
    /// Tier code.
    pub tier: Option<String>,
    /// Category code.
    pub category: Option<String>,
    /// Responsible manager.
    pub manager_id: Option<i64>,
    /// Responsible manager in the org subtree with this path.
    pub org_path: Option<String>,
    /// A solar or lunar birthday falls in a date range.
    pub birthdays: Option<BirthdayKeys>,
    /// Has a live holding maturing within these dates (inclusive).
    pub maturing: Option<(NaiveDate, NaiveDate)>,
}

/// The birthdays celebrated over a range of days: solar `MM-DD` keys (`birthday_md`) and lunar ones as
/// `month * 100 + day` (`lunar_month`, `lunar_day`), apart for customers born in a leap month.
#[derive(Debug, Default, Clone)]
pub struct BirthdayKeys {
    /// `MM-DD` solar keys.
    pub solar: Vec<String>,
    /// Lunar keys of customers born in an ordinary month.
    pub lunar: Vec<i32>,
    /// Lunar keys of customers born in a leap month (闰月).
    pub lunar_leap: Vec<i32>,
}

impl CustomerFilter {
    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        let Self {
            q,
            tier,
            category,
            manager_id,
            org_path,
            birthdays,
            maturing,
        } = self;
        q.is_none()
            && tier.is_none()
            && category.is_none()
            && manager_id.is_none()
            && org_path.is_none()
            && birthdays.is_none()
            && maturing.is_none()
    }
}

/// Changes to a customer; `Some(None)` clears a nullable column.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = customers)]
pub struct CustomerChanges {
    pub name: Option<String>,
    pub category: Option<Option<String>>,
    pub tier: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub id_number: Option<Option<String>>,
    pub birthday: Option<Option<NaiveDate>>,
    pub birthday_md: Option<Option<String>>,
    pub lunar_month: Option<Option<i32>>,
    pub lunar_day: Option<Option<i32>>,
    pub lunar_leap: Option<bool>,
    pub gender: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub latitude: Option<Option<f64>>,
    pub longitude: Option<Option<f64>>,
    pub location_datum: Option<Option<String>>,
    pub traits: Option<Option<String>>,
    pub tags: Option<String>,
    pub status: Option<String>,
    pub seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

/// One customer in scope (archived ones are out of scope).
pub fn find(conn: &mut DbConn, scope: &Scope, id: i64) -> QueryResult<Option<Customer>> {
    scope::find_customer(conn, scope, id)
}

/// The (id, seq) of the customers in scope after `after`, by id, at most `limit`: a page's keys. `seq` is
/// the row's version (see `api::rendered`); `in_scope` reads the rows themselves.
pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &CustomerFilter,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    if f.is_empty() {
        return list_unfiltered(conn, scope, after, limit);
    }
    let mut q = customers::table
        .filter(scope::customers(scope))
        .into_boxed();
    if let Some(text) = &f.q {
        let prefix = crate::db::repo::prefix_pattern(text);
        match crate::domain::customer::phone_suffix(text) {
            Some(digits) => {
                q = q.filter(
                    customers::name
                        .like(prefix)
                        .escape('\\')
                        .or(customers::phone.like(format!("%{digits}"))),
                );
            }
            None => q = q.filter(customers::name.like(prefix).escape('\\')),
        }
    }
    if let Some(t) = &f.tier {
        q = q.filter(customers::tier.eq(t.clone()));
    }
    if let Some(cat) = &f.category {
        q = q.filter(customers::category.eq(cat.clone()));
    }
    if let Some(m) = f.manager_id {
        q = q.filter(customers::manager_id.eq(m));
    }
    if let Some(path) = &f.org_path {
        q = q.filter(customers::manager_id.eq_any(scope::users_in_subtree(path)));
    }
    if let Some(keys) = &f.birthdays {
        let lunar = customers::lunar_month * 100 + customers::lunar_day;
        q = q.filter(
            customers::birthday_md
                .eq_any(keys.solar.clone())
                .or(customers::lunar_leap
                    .eq(false)
                    .and(lunar.eq_any(keys.lunar.clone())))
                .or(customers::lunar_leap
                    .eq(true)
                    .and(lunar.eq_any(keys.lunar_leap.clone()))),
        );
    }
    if let Some((from, to)) = f.maturing {
        q = q.filter(diesel::dsl::exists(
            holdings::table
                .filter(holdings::customer_id.eq(customers::id))
                .filter(holdings::archived_at.is_null())
                .filter(holdings::maturity_date.between(from, to)),
        ));
    }
    if let Some(a) = after {
        q = q.filter(customers::id.gt(a));
    }
    q.order(customers::id.asc())
        .limit(limit)
        .select((customers::id, customers::seq))
        .load(conn)
}

/// The customers with these ids that `scope` sees, by id (the rows of a page not rendered yet).
pub fn in_scope(conn: &mut DbConn, scope: &Scope, ids: &[i64]) -> QueryResult<Vec<Customer>> {
    customers::table
        .filter(scope::customers(scope))
        .filter(customers::id.eq_any(ids))
        .order(customers::id.asc())
        .select(Customer::as_select())
        .load(conn)
}

/// `list` without filters, in statements of fixed shape on the backend's own connection, so they are
/// prepared once and their SQL is not rendered again on every call (the two-backend connection renders it
/// twice per execution).
fn list_unfiltered(
    conn: &mut DbConn,
    scope: &Scope,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(i64, i64)>> {
    let after = after.unwrap_or(i64::MIN);
    let live = customers::table
        .filter(customers::archived_at.is_null())
        .filter(customers::id.gt(after))
        .order(customers::id.asc())
        .limit(limit)
        .select((customers::id, customers::seq));
    match scope.reach {
        // One statement per way a manager sees a customer (as its manager, through a team), each an
        // index-only range of its partial index (`customers_live_manager`, `customers_live_team`: they hold
        // `id` and `seq`), merged here. (`manager_id = ? OR team_id IN (…)` made SQLite read every matching
        // row of the table and sort them, and PostgreSQL bitmap-scan them.)
        Reach::Own => {
            let own = live.filter(customers::manager_id.eq(scope.user_id));
            let team = live.filter(
                customers::team_id
                    .eq_any(scope::teams_of(scope.user_id))
                    .assume_not_null(),
            );
            let mut keys: Vec<(i64, i64)> = crate::per_backend!(conn, |c| own.load(c))?;
            let by_team: Vec<(i64, i64)> = crate::per_backend!(conn, |c| team.load(c))?;
            keys.extend(by_team);
            keys.sort_unstable();
            keys.dedup_by_key(|k| k.0);
            keys.truncate(usize::try_from(limit).unwrap_or(0));
            Ok(keys)
        }
        Reach::Subtree => {
            let q =
                live.filter(customers::manager_id.eq_any(scope::users_in_subtree(&scope.org_path)));
            crate::per_backend!(conn, |c| q.load(c))
        }
    }
}

/// Inserts a customer and returns its id.
pub fn insert(conn: &mut DbConn, new: &NewCustomer) -> QueryResult<i64> {
    diesel::insert_into(customers::table)
        .values(new)
        .returning(customers::id)
        .get_result(conn)
}

/// The first ownership row of a new customer: its originating manager owns it from `now`.
pub fn record_origin(
    conn: &mut DbConn,
    customer_id: i64,
    manager_id: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(ownership::table)
        .values((
            ownership::customer_id.eq(customer_id),
            ownership::manager_id.eq(manager_id),
            ownership::effective_from.eq(now),
            ownership::reason.eq("originated"),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Applies changes to a customer already checked to be in scope.
pub fn update(conn: &mut DbConn, id: i64, changes: &CustomerChanges) -> QueryResult<usize> {
    diesel::update(customers::table.find(id))
        .set(changes)
        .execute(conn)
}

/// Archives a customer: out of every view from now on, the row kept.
pub fn archive(conn: &mut DbConn, id: i64, seq: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(customers::table.find(id))
        .set((
            customers::archived_at.eq(Some(now)),
            customers::status.eq("archived"),
            customers::seq.eq(seq),
            customers::updated_at.eq(now),
        ))
        .execute(conn)
}

/// The org (id, path) of a manager, for audit rows and tombstones (unscoped: the manager is known).
pub fn manager_org(conn: &mut DbConn, manager_id: i64) -> QueryResult<(i64, String)> {
    users::table
        .inner_join(orgs::table)
        .filter(users::id.eq(manager_id))
        .select((orgs::id, orgs::path))
        .first(conn)
}

/// The name and change sequence of a customer, for the detail view of a record about it already checked to
/// be in scope (an opportunity, a visit): the view shows the name, so its `ETag` follows the customer too.
pub fn name_seq(conn: &mut DbConn, id: i64) -> QueryResult<(String, i64)> {
    customers::table
        .find(id)
        .select((customers::name, customers::seq))
        .first(conn)
}
