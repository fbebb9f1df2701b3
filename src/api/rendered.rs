//! Rendered rows: the JSON of one version of a record, kept so that lists of records that did not change
//! are answered without decoding and serializing them again.
//!
//! A record's version is its `seq` (the sync sequence number): every write to a synced record takes a new
//! one from the database's counter (`changes::bump`), which sync and the ETags already depend on. So
//! `(id, seq)` names one content exactly, on every instance sharing the database; an entry is never stale,
//! only unused once its record moves on. Each id keeps its newest rendered version; a shard that grows past
//! its share of the capacity is emptied (the next requests render again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::AppError;

const SHARDS: usize = 16;

/// One shard: record id → (version, rendered JSON).
type Shard<V> = Mutex<HashMap<i64, (V, Arc<[u8]>)>>;

/// Rendered JSON by record id and version, bounded by a number of records. A version is anything that
/// changes with each write of what the JSON shows (a `seq`, or a tuple of such). A later write almost always
/// takes a higher one; on PostgreSQL two writes racing on one record may leave it at the lower (numbers
/// commit in any order), and then the record is rendered on each read until its next write: a cost, never a
/// stale answer, since a kept row is used only at its exact version.
pub struct RenderedRows<V = i64> {
    shards: Vec<Shard<V>>,
    per_shard: usize,
}

impl<V: Copy + PartialOrd> RenderedRows<V> {
    /// A cache of at most about `capacity` records (0 keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, id: i64) -> &Shard<V> {
        &self.shards[id.rem_euclid(SHARDS as i64) as usize]
    }

    /// The JSON of record `id` at version `seq`, if rendered before.
    pub fn get(&self, id: i64, seq: V) -> Option<Arc<[u8]>> {
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get(&id) {
            Some((s, json)) if *s == seq => Some(json.clone()),
            _ => None,
        }
    }

    /// Keeps the JSON of record `id` at version `seq` (replacing an older version).
    pub fn put(&self, id: i64, seq: V, json: Arc<[u8]>) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&id) {
            shard.clear();
        }
        match shard.get(&id) {
            // A reader that fetched an older version does not push out a newer one.
            Some((s, _)) if *s > seq => {}
            _ => {
                shard.insert(id, (seq, json));
            }
        }
    }
}

/// A page's ids in order, each with its JSON when found rendered at the page's version.
pub type PageSlots = Vec<(i64, Option<Arc<[u8]>>)>;

/// A page's keys `(id, version)` looked up in `cache`: each id with its JSON when kept at that version, and
/// the ids whose rows must be read and rendered (`fill`).
pub fn look_up<V: Copy + PartialOrd>(
    cache: &RenderedRows<V>,
    keys: impl IntoIterator<Item = (i64, V)>,
) -> (PageSlots, Vec<i64>) {
    let page: PageSlots = keys
        .into_iter()
        .map(|(id, version)| (id, cache.get(id, version)))
        .collect();
    let missing = page.iter().filter(|p| p.1.is_none()).map(|p| p.0).collect();
    (page, missing)
}

/// The body of a page from `look_up`'s answer: the rows found rendered as they are, the others (`rows`, read
/// for the missing ids) rendered by `render` and kept under the version `key` gives; a row gone between the
/// two reads (archived, moved out of scope) is left out.
pub fn fill<R, V: Copy + PartialOrd>(
    cache: &RenderedRows<V>,
    page: PageSlots,
    rows: Vec<R>,
    key: impl Fn(&R) -> (i64, V),
    render: impl Fn(R) -> Result<Vec<u8>, serde_json::Error>,
    next_cursor: Option<&str>,
) -> Result<Vec<u8>, AppError> {
    let items = fill_items(cache, page, rows, key, render)?;
    Ok(page_body(items.iter().map(|j| &j[..]), next_cursor))
}

/// `fill` without the page around: the items' JSON in the page's order.
pub fn fill_items<R, V: Copy + PartialOrd>(
    cache: &RenderedRows<V>,
    page: PageSlots,
    rows: Vec<R>,
    key: impl Fn(&R) -> (i64, V),
    render: impl Fn(R) -> Result<Vec<u8>, serde_json::Error>,
) -> Result<Vec<Arc<[u8]>>, AppError> {
    let mut fresh = HashMap::with_capacity(rows.len());
    for row in rows {
        let (id, version) = key(&row);
        let json: Arc<[u8]> = render(row)
            .map_err(|e| AppError::Internal(e.into()))?
            .into();
        cache.put(id, version, json.clone());
        fresh.insert(id, json);
    }
    Ok(page
        .into_iter()
        .filter_map(|(id, hit)| hit.or_else(|| fresh.get(&id).cloned()))
        .collect())
}

/// The body of a page, `{"items":[…],"next_cursor":…}`, from items already rendered as JSON.
pub fn page_body<'a>(items: impl Iterator<Item = &'a [u8]>, next_cursor: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 * 1024);
    body.extend_from_slice(b"{\"items\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    // A string or null: serializing these cannot fail.
    let cursor = serde_json::to_vec(&next_cursor).unwrap_or_else(|_| b"null".to_vec());
    body.extend_from_slice(&cursor);
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Arc<[u8]> {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn a_version_is_found_only_under_its_own_seq() {
        let c = RenderedRows::new(100);
        c.put(7, 3, json("{\"v\":3}"));
        assert_eq!(c.get(7, 3).as_deref(), Some(&b"{\"v\":3}"[..]));
        assert!(c.get(7, 4).is_none());
        c.put(7, 4, json("{\"v\":4}"));
        assert!(c.get(7, 3).is_none());
        // An older version rendered late does not replace the newer one.
        c.put(7, 2, json("{\"v\":2}"));
        assert_eq!(c.get(7, 4).as_deref(), Some(&b"{\"v\":4}"[..]));
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let c = RenderedRows::new(32);
        for id in 0..10_000 {
            c.put(id, 1, json("{}"));
        }
        let kept: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= 32, "{kept}");
        let none = RenderedRows::new(0);
        none.put(1, 1, json("{}"));
        assert!(none.get(1, 1).is_none());
    }

    #[test]
    fn page_bodies_are_json() {
        let items = [&b"{\"id\":1}"[..], &b"{\"id\":2}"[..]];
        let body = page_body(items.into_iter(), Some("abc"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["items"][1]["id"], 2);
        assert_eq!(v["next_cursor"], "abc");
        let empty = page_body(std::iter::empty(), None);
        assert_eq!(empty, b"{\"items\":[],\"next_cursor\":null}");
    }
}
