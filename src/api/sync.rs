//! `GET /api/v1/sync`: what changed in the caller's scope since a token — customers, contacts, holdings,
//! visits, opportunities and work logs as they are now, and the ids of what was removed or moved out of
//! scope — plus the next token. A phone does a full first sync (no `since`) page by page, then cheap deltas.
//!
//! Order and safety: changes are read in the total order `(seq, rank, id)` (see `db::repo::sync`), the
//! token is the last position delivered, and within a page only the latest event of each object is kept,
//! so applying `removed` and `changes` of one page in any order gives the same result. Customers are
//! delivered as in lists (phone and ID numbers masked: a lost phone should not carry them), and so are
//! contacts' phones; the detail view and the contacts list have them in full. Removing a customer from the
//! phone removes its contacts and holdings too.

use std::collections::HashMap;

use actix_web::{get, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::contacts::ContactResponse;
use super::customers::CustomerResponse;
use super::extract::{ApiQuery, query_error};
use super::holdings::HoldingResponse;
use super::opportunities::dto::OpportunityResponse;
use super::visits::dto::VisitResponse;
use super::worklogs::WorklogResponse;
use crate::auth::caller::Auth;
use crate::db::models::Customer;
use crate::db::repo::contacts::Contact;
use crate::db::repo::holdings::Holding;
use crate::db::repo::opportunities::Opportunity;
use crate::db::repo::sync::{self as repo, Key, Rank, Removal};
use crate::db::repo::visits::Visit;
use crate::db::repo::worklogs::Worklog;
use crate::error::{AppError, AppResult, ProblemBody};
use crate::startup::AppState;

/// Default page size of a sync page (rows of all entities together).
pub const DEFAULT_LIMIT: i64 = 500;
/// Largest page size.
pub const MAX_LIMIT: i64 = 1000;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(sync);
}

/// Query of `GET /sync`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// `next_token` of the previous page; absent for a full first sync.
    pub since: Option<String>,
    /// Changes per page, all entities together (1–1000, default 500).
    pub limit: Option<i64>,
}

/// Kinds of synced objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncEntity {
    /// A customer.
    Customer,
    /// A key contact.
    Contact,
    /// A holding.
    Holding,
    /// A visit.
    Visit,
    /// An opportunity.
    Opportunity,
    /// A work log.
    Worklog,
}

impl SyncEntity {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "customer" => Self::Customer,
            "contact" => Self::Contact,
            "holding" => Self::Holding,
            "visit" => Self::Visit,
            "opportunity" => Self::Opportunity,
            "worklog" => Self::Worklog,
            _ => return None,
        })
    }
}

/// An object to delete from the phone: removed, archived, or moved out of the caller's scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// Its kind.
    pub entity: SyncEntity,
    /// Its id.
    pub id: i64,
}

/// Objects changed since the token, as they are now.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SyncChanges {
    /// Customers (phone and ID numbers masked, as in lists).
    pub customers: Vec<CustomerResponse>,
    /// Key contacts.
    pub contacts: Vec<ContactResponse>,
    /// Holdings.
    pub holdings: Vec<HoldingResponse>,
    /// Visits.
    pub visits: Vec<VisitResponse>,
    /// Opportunities.
    pub opportunities: Vec<OpportunityResponse>,
    /// Work logs.
    pub worklogs: Vec<WorklogResponse>,
}

/// One page of sync.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncPage {
    /// Upserts: store each object, replacing the copy with the same id.
    pub changes: SyncChanges,
    /// Deletions (a removed customer takes its contacts and holdings with it).
    pub removed: Vec<Removed>,
    /// Pass as `since` next time; keep it after the last page for the next delta.
    pub next_token: String,
    /// More changes are waiting: ask again at once with `next_token`.
    pub has_more: bool,
}

/// A change read from one of the sources, before merging.
enum Item {
    Customer(Box<Customer>),
    Contact(Box<Contact>),
    Holding(Box<Holding>),
    Visit(Box<Visit>),
    Opportunity(Box<Opportunity>),
    Worklog(Box<Worklog>),
    Removed(Removal, SyncEntity),
}

impl Item {
    /// The object this change is about.
    fn object(&self) -> (SyncEntity, i64) {
        match self {
            Self::Customer(r) => (SyncEntity::Customer, r.id),
            Self::Contact(r) => (SyncEntity::Contact, r.id),
            Self::Holding(r) => (SyncEntity::Holding, r.id),
            Self::Visit(r) => (SyncEntity::Visit, r.id),
            Self::Opportunity(r) => (SyncEntity::Opportunity, r.id),
            Self::Worklog(r) => (SyncEntity::Worklog, r.id),
            Self::Removed(t, e) => (*e, t.entity_id),
        }
    }
}

/// Encodes a position as an opaque token.
pub fn encode_token(k: Key) -> String {
    URL_SAFE_NO_PAD.encode(format!("s1:{}:{}:{}", k.seq, k.rank, k.id))
}

/// Decodes a token made by `encode_token`.
pub fn decode_token(token: &str) -> Option<Key> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = text.strip_prefix("s1:")?.split(':');
    let mut next = || parts.next()?.parse::<i64>().ok().filter(|v| *v >= 0);
    let k = Key {
        seq: next()?,
        rank: next()?,
        id: next()?,
    };
    (parts.next().is_none() && k.rank <= Rank::Worklog as i64).then_some(k)
}

/// Merges the sources in key order, cuts at `limit`, keeps the latest event per object. Returns the
/// page's items, the last key delivered and whether more may follow.
fn merge(raw: repo::Changes, limit: i64) -> (Vec<Item>, Option<Key>, bool) {
    let limit = usize::try_from(limit).unwrap_or(0);
    let full = [
        raw.customers.len(),
        raw.contacts.len(),
        raw.holdings.len(),
        raw.visits.len(),
        raw.opportunities.len(),
        raw.worklogs.len(),
        raw.removed.len(),
    ]
    .contains(&limit);
    let key = |seq: i64, rank: Rank, id: i64| Key {
        seq,
        rank: rank as i64,
        id,
    };
    let mut all: Vec<(Key, Item)> = Vec::new();
    all.extend(raw.customers.into_iter().map(|r| {
        (
            key(r.seq, Rank::Customer, r.id),
            Item::Customer(Box::new(r)),
        )
    }));
    all.extend(
        raw.contacts
            .into_iter()
            .map(|r| (key(r.seq, Rank::Contact, r.id), Item::Contact(Box::new(r)))),
    );
    all.extend(
        raw.holdings
            .into_iter()
            .map(|r| (key(r.seq, Rank::Holding, r.id), Item::Holding(Box::new(r)))),
    );
    all.extend(
        raw.visits
            .into_iter()
            .map(|r| (key(r.seq, Rank::Visit, r.id), Item::Visit(Box::new(r)))),
    );
    all.extend(raw.opportunities.into_iter().map(|r| {
        (
            key(r.seq, Rank::Opportunity, r.id),
            Item::Opportunity(Box::new(r)),
        )
    }));
    all.extend(
        raw.worklogs
            .into_iter()
            .map(|r| (key(r.seq, Rank::Worklog, r.id), Item::Worklog(Box::new(r)))),
    );
    // Tombstones of entities this API does not sync (none today) are skipped but still advance the token.
    let mut last_unknown = None;
    for t in raw.removed {
        let k = key(t.seq, Rank::Tombstone, t.id);
        match SyncEntity::parse(&t.entity) {
            Some(e) => all.push((k, Item::Removed(t, e))),
            None => last_unknown = Some(k),
        }
    }
    all.sort_unstable_by_key(|(k, _)| *k);
    let more = all.len() > limit || full;
    all.truncate(limit);
    let last = all
        .last()
        .map(|(k, _)| *k)
        .max(last_unknown.filter(|_| all.len() < limit));
    // Latest event per object wins.
    let mut latest: HashMap<(SyncEntity, i64), usize> = HashMap::new();
    for (i, (_, item)) in all.iter().enumerate() {
        latest.insert(item.object(), i);
    }
    let items = all
        .into_iter()
        .enumerate()
        .filter(|(i, (_, item))| latest.get(&item.object()) == Some(i))
        .map(|(_, (_, item))| item)
        .collect();
    (items, last, more)
}

/// Changes in the caller's scope since `since` (a full first sync without it), one page at a time.
#[utoipa::path(
    tag = "sync",
    params(SyncQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of changes and the next token", body = SyncPage),
        (status = "4XX", description = "Client error: a problem document with a stable `code` (`since` not a token of this API: 400 naming `since`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/sync")]
async fn sync(
    state: web::Data<AppState>,
    auth: Auth,
    query: ApiQuery<SyncQuery>,
) -> AppResult<web::Json<SyncPage>> {
    let q = query.0;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(query_error("limit", "out_of_range", "between 1 and 1000"));
    }
    let since = match q.since.as_deref() {
        None | Some("") => Key::default(),
        Some(t) => decode_token(t).ok_or_else(|| {
            query_error("since", "invalid_format", "not a sync token from this API")
        })?,
    };
    let now = state.now();
    let page = state
        .db
        .read(move |c| {
            let scope = auth.load(c, now)?.scope();
            let raw = repo::after(c, &scope, since, limit)?;
            let (items, last, has_more) = merge(raw, limit);
            let mut rows = Rows::default();
            let mut removed = Vec::new();
            for item in items {
                match item {
                    Item::Customer(r) => rows.customers.push(*r),
                    Item::Contact(r) => rows.contacts.push(*r),
                    Item::Holding(r) => rows.holdings.push(*r),
                    Item::Visit(r) => rows.visits.push(*r),
                    Item::Opportunity(r) => rows.opportunities.push(*r),
                    Item::Worklog(r) => rows.worklogs.push(*r),
                    Item::Removed(t, entity) => removed.push(Removed {
                        entity,
                        id: t.entity_id,
                    }),
                }
            }
            let changes = SyncChanges {
                customers: rows
                    .customers
                    .into_iter()
                    .map(CustomerResponse::masked)
                    .collect(),
                contacts: rows
                    .contacts
                    .into_iter()
                    .map(ContactResponse::masked)
                    .collect(),
                holdings: rows
                    .holdings
                    .into_iter()
                    .map(HoldingResponse::from)
                    .collect(),
                visits: super::visits::views(c, rows.visits)?,
                opportunities: super::opportunities::respond(c, rows.opportunities)?,
                worklogs: rows
                    .worklogs
                    .into_iter()
                    .map(WorklogResponse::from_row)
                    .collect::<Result<_, AppError>>()?,
            };
            Ok(SyncPage {
                changes,
                removed,
                next_token: encode_token(last.unwrap_or(since).max(since)),
                has_more,
            })
        })
        .await?;
    Ok(web::Json(page))
}

#[derive(Default)]
struct Rows {
    customers: Vec<Customer>,
    contacts: Vec<Contact>,
    holdings: Vec<Holding>,
    visits: Vec<Visit>,
    opportunities: Vec<Opportunity>,
    worklogs: Vec<Worklog>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let k = Key {
            seq: 42,
            rank: 3,
            id: 7,
        };
        assert_eq!(decode_token(&encode_token(k)), Some(k));
        assert_eq!(decode_token("garbage"), None);
        assert_eq!(decode_token(&URL_SAFE_NO_PAD.encode("s1:1:2")), None);
        assert_eq!(decode_token(&URL_SAFE_NO_PAD.encode("s1:1:9:1")), None);
        assert_eq!(decode_token(&URL_SAFE_NO_PAD.encode("s1:-1:0:1")), None);
        assert_eq!(decode_token(&URL_SAFE_NO_PAD.encode("s1:1:0:1:5")), None);
    }

    fn removal(id: i64, seq: i64, entity: &str, entity_id: i64) -> Removal {
        Removal {
            id,
            seq,
            entity: entity.into(),
            entity_id,
        }
    }

    #[test]
    fn merge_orders_cuts_and_keeps_the_latest_event() {
        let raw = repo::Changes {
            removed: vec![
                removal(1, 3, "customer", 10),
                removal(2, 5, "holding", 4),
                removal(3, 6, "visit", 8),
            ],
            ..Default::default()
        };
        let (items, last, more) = merge(raw, 2);
        assert_eq!(items.len(), 2);
        assert!(more, "a source filled the page");
        assert_eq!(
            last,
            Some(Key {
                seq: 5,
                rank: 0,
                id: 2
            })
        );
        let raw = repo::Changes {
            removed: vec![removal(1, 3, "customer", 10), removal(2, 4, "customer", 10)],
            ..Default::default()
        };
        let (items, _, more) = merge(raw, 10);
        assert!(!more);
        assert_eq!(items.len(), 1, "one event per object");
        assert!(matches!(&items[0], Item::Removed(t, _) if t.id == 2));
    }
}
