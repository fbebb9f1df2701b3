//! The only place with SQL. Functions take `&mut DbConn` and, for owned data, the caller's `Scope`; they
//! return `QueryResult` (or `AppError` where a constraint maps to a specific code) and never swallow errors.

pub mod audit;
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
    #[test]
    fn prefix_patterns_escape_wildcards() {
        assert_eq!(super::prefix_pattern("X_01"), "X\\_01%");
        assert_eq!(super::prefix_pattern("50%"), "50\\%%");
        assert_eq!(super::prefix_pattern("a\\b"), "a\\\\b%");
    }
}
