//! Cursor paging: lists are ordered by id and the cursor is an opaque token for "after this id".

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 200;

/// Encodes "continue after `id`" as an opaque token.
pub fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

/// Decodes a token made by `encode_cursor`; `None` for anything else.
pub fn decode_cursor(token: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("v1:")?
        .parse()
        .ok()
        .filter(|id: &i64| *id >= 0)
}

/// Splits a fetched page of `limit + 1` rows into the page and the next cursor.
pub fn finish_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    id_of: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| encode_cursor(id_of(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v1:-3")), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:3")), None);
    }

    #[test]
    fn page_split() {
        let (rows, next) = finish_page(vec![1, 2, 3], 2, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(next.as_deref().and_then(decode_cursor), Some(2));
        let (rows, next) = finish_page(vec![1, 2], 2, |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert!(next.is_none());
    }
}
