//! The only place with SQL. Functions take `&mut DbConn` and, for owned data, the caller's `Scope`; they
//! return `QueryResult` (or `AppError` where a constraint maps to a specific code) and never swallow errors.

pub mod audit;
pub mod batch;
pub mod calendar;
pub mod changes;
pub mod contacts;
pub mod customers;
pub mod devices;
pub mod dictionaries;
pub mod holdings;
pub mod idempotency;
pub mod inbox;
pub mod notices;
pub mod notifications;
pub mod opportunities;
pub mod orgs;
pub mod plans;
pub mod preferences;
pub mod reminders;
pub mod scope;
pub mod sessions;
pub mod sync;
pub mod tasks;
pub mod teams;
pub mod throttle;
pub mod timeline;
pub mod transfers;
pub mod users;
pub mod visits;
pub mod worklogs;

/// A statement whose SQL is the same text on every call, kept prepared on its connection without diesel
/// checking it again on every run.
///
/// diesel never keeps an UPDATE prepared, since an optional changeset can give it many shapes, so each run
/// parsed and planned it again (measured: a tenth of the SQLite writer's time in the check-in benchmark went
/// to preparing `changes::bump`, `visits::touch` and `visits::check_out`). For a SELECT or an INSERT it does
/// keep the statement, but first walks the whole query on every run to ask whether it may (measured: about
/// a tenth of the writer's time again, on the check-in's statements); the wrapper answers yes at once.
///
/// The cache is keyed by the SQL text when a query has no static id (UPDATEs) and by the query's Rust type
/// otherwise, so wrap only statements whose text cannot change between calls of the same type: a fixed SET
/// list, no `IN` list of values (`eq_any` over a subquery is fine), and no `DEFAULT` for a `None` (an
/// `Insertable` needs `treat_none_as_default_value = false`).
///
/// Run it with `get_result` or `load` (give an UPDATE or INSERT a `RETURNING`): `execute` hands diesel the
/// statement by reference, and diesel's impl for references does not ask the wrapper, so an executed one is
/// prepared every time (the unit test below checks both).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub struct KeepPrepared<Q>(pub Q);

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for KeepPrepared<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for KeepPrepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> diesel::RunQueryDsl<C> for KeepPrepared<Q> {}

/// A `LIKE` pattern matching values that start with `text` literally (`\\`, `%` and `_` escaped with `\\`;
/// use with `.escape('\\')`).
pub fn prefix_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 1);
    for ch in text.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
    use diesel::prelude::*;

    use crate::db::schema::sync_counter;

    /// SQL texts diesel put into its statement cache, by connection.
    #[derive(Clone, Default)]
    struct Cached(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Cached {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                self.0.lock().unwrap().push(sql.to_owned());
            }
        }
    }

    #[test]
    fn a_kept_update_is_prepared_once_and_a_plain_one_never_cached() {
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        c.batch_execute(
            "CREATE TABLE sync_counter (id INTEGER PRIMARY KEY, value BIGINT NOT NULL); \
             INSERT INTO sync_counter VALUES (1, 0);",
        )
        .unwrap();
        let cached = Cached::default();
        c.set_instrumentation(cached.clone());
        let bump = || {
            diesel::update(sync_counter::table.find(1))
                .set(sync_counter::value.eq(sync_counter::value + 1))
                .returning(sync_counter::value)
        };
        for want in 1..=3_i64 {
            let got: i64 = super::KeepPrepared(bump()).get_result(&mut c).unwrap();
            assert_eq!(got, want);
        }
        assert_eq!(cached.0.lock().unwrap().len(), 1, "kept once, then reused");
        let plain: i64 = bump().get_result(&mut c).unwrap();
        assert_eq!(plain, 4);
        assert_eq!(
            cached.0.lock().unwrap().len(),
            1,
            "diesel keeps no plain UPDATE"
        );
        // Executed, the wrapper is bypassed: the reason to run it with `get_result`.
        super::KeepPrepared(
            diesel::update(sync_counter::table.find(1)).set(sync_counter::value.eq(0)),
        )
        .execute(&mut c)
        .unwrap();
        assert_eq!(
            cached.0.lock().unwrap().len(),
            1,
            "an executed UPDATE is not kept"
        );
    }

    #[test]
    fn prefix_patterns_escape_wildcards() {
        assert_eq!(super::prefix_pattern("X_01"), "X\\_01%");
        assert_eq!(super::prefix_pattern("50%"), "50\\%%");
        assert_eq!(super::prefix_pattern("a\\b"), "a\\\\b%");
    }
}
