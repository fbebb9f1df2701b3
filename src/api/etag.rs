//! Conditional GETs: every detail view carries a weak `ETag` built from the row's change sequence (or, for
//! views without one, a digest of the body), and an `If-None-Match` naming it answers 304 without a body
//! (the phone keeps its copy).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

/// The weak tag of version `seq` of object `id`; `kind` keeps tags of different resources apart
/// (`c` customers, `v` visits, `o` opportunities, `w` work logs).
pub fn tag(kind: char, id: i64, seq: i64) -> String {
    format!("W/\"{kind}{id}-{seq}\"")
}

/// A weak tag of a view made of two records, each with its own change number.
pub fn tag_pair(kind: char, id: i64, seq: i64, other: i64) -> String {
    format!("W/\"{kind}{id}-{seq}.{other}\"")
}

/// Whether an `If-None-Match` header value matches `tag` (weak comparison; `*` matches anything).
pub fn none_match(header: &str, tag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = bare(tag);
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || bare(t) == want)
}

/// The request's `If-None-Match`, if any (read before the handler moves into a database closure).
pub fn if_none_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// 304 with the tag when `If-None-Match` names it (the client's copy is current).
fn not_modified(if_none_match: Option<&str>, tag: &str) -> Option<HttpResponse> {
    if_none_match.is_some_and(|h| none_match(h, tag)).then(|| {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, tag.to_owned()))
            .finish()
    })
}

/// 304 with the tag when the client's copy is current, else 200 with the tag and `body`.
pub fn reply<T: Serialize>(if_none_match: Option<&str>, tag: String, body: &T) -> HttpResponse {
    if let Some(unchanged) = not_modified(if_none_match, &tag) {
        return unchanged;
    }
    HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(body)
}

/// `reply` for views without a change number of their own (a team with its members, a transfer): the weak
/// tag is a digest of the body, so any change to what the client would see changes it.
pub fn reply_by_content<T: Serialize>(
    if_none_match: Option<&str>,
    kind: char,
    body: &T,
) -> crate::error::AppResult<HttpResponse> {
    let bytes = serde_json::to_vec(body).map_err(|e| crate::error::AppError::Internal(e.into()))?;
    let digest = crate::auth::tokens::digest_bytes(&bytes);
    let tag = format!("W/\"{kind}-{}\"", &digest[..24]);
    if let Some(unchanged) = not_modified(if_none_match, &tag) {
        return Ok(unchanged);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .content_type("application/json")
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_lists_and_star() {
        let t = tag('v', 7, 42);
        assert_eq!(t, "W/\"v7-42\"");
        assert!(none_match("W/\"v7-42\"", &t));
        assert!(none_match("\"v7-42\"", &t));
        assert!(none_match("\"x\", W/\"v7-42\"", &t));
        assert!(none_match("*", &t));
        assert!(!none_match("W/\"v7-43\"", &t));
        assert!(!none_match("W/\"c7-42\"", &t));
    }
}
