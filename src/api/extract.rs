//! Request extractors that answer every malformed input with a problem document naming the field:
//! `ApiJson` (content type, size limit, syntax, unknown fields, wrong types), `ApiQuery`, `PathId`, and
//! the paging parameters.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::domain::paging::{self, DEFAULT_LIMIT, MAX_LIMIT};
use crate::error::{AppError, ErrorCode, FieldError};
use crate::startup::AppState;

/// A JSON body parsed strictly into `T` (which should `deny_unknown_fields`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(65_536, |s| s.settings.max_body_bytes);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(AppError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(AppError::PayloadTooLarge(limit));
            }
            let mut buf = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| AppError::BadRequest {
                    code: ErrorCode::MalformedJson,
                    detail: "the body could not be read".into(),
                    errors: vec![],
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(AppError::PayloadTooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            parse_json(&buf).map(ApiJson)
        })
    }
}

fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

fn join_path(path: &str, leaf: &str) -> String {
    if path.is_empty() || path == "." {
        leaf.to_owned()
    } else {
        format!("{path}.{leaf}")
    }
}

/// Whether a JSON text holds the escape of a NUL character (`\u0000`) in any string. A raw NUL byte is not
/// valid JSON at all (the parser refuses it).
fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|b| *b == b'\\') {
        let esc = i + at;
        if bytes.get(esc + 1) == Some(&b'u')
            && bytes.get(esc + 2..esc + 6) == Some(b"0000".as_slice())
        {
            return true;
        }
        // Skip the escaped character (so `\\u0000`, an escaped backslash then text, is not a NUL).
        i = esc + 2;
        if i >= bytes.len() {
            return false;
        }
    }
    false
}

/// The dotted path of the first string (key or value) holding a NUL character.
fn nul_path(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) => s.contains('\0').then(|| path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, &join_path(path, &i.to_string()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
            let here = join_path(path, k);
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(x, &here)
            }
        }),
        _ => None,
    }
}

/// 422 `invalid_character` on `field`: text with a NUL character, which no field accepts (PostgreSQL cannot
/// store it, and nothing a person types contains it).
fn nul_error(field: &str) -> FieldError {
    FieldError::new(
        field,
        "invalid_character",
        "must not contain the NUL character (\\u0000)",
    )
}

/// Parses JSON strictly: syntax errors are 400 `malformed_json`, shape errors 422 with the field path, text
/// with a NUL character 422 `invalid_character` naming its field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if has_nul_escape(bytes)
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(path) = nul_path(&v, "")
    {
        let field = if path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        return Err(AppError::Validation(vec![nul_error(&field)]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = strip_position(&inner.to_string()).to_owned();
            // serde_json reports an enum given as a number or `null` (`{"kind": 1}`) as a syntax
            // error ("expected value"); when the body is well-formed JSON it is a wrong type at `path`.
            if !inner.is_data() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
                return Err(AppError::Validation(vec![FieldError::new(
                    if path.is_empty() || path == "." {
                        "body".to_owned()
                    } else {
                        path
                    },
                    "invalid_type",
                    format!("wrong type: {msg}"),
                )]));
            }
            if !inner.is_data() {
                return Err(AppError::BadRequest {
                    code: ErrorCode::MalformedJson,
                    detail: format!("the body is not valid JSON: {msg}"),
                    errors: vec![],
                });
            }
            return Err(AppError::Validation(vec![data_error(&path, &msg)]));
        }
    };
    de.end().map_err(|_| AppError::BadRequest {
        code: ErrorCode::MalformedJson,
        detail: "trailing characters after the JSON value".into(),
        errors: vec![],
    })?;
    Ok(value)
}

fn data_error(path: &str, msg: &str) -> FieldError {
    let (code, field) = if msg.starts_with("unknown field") {
        // The path already ends at the unknown key.
        let key = backticked(msg).unwrap_or("?");
        let at_key = path == key || path.ends_with(&format!(".{key}"));
        (
            "unknown_field",
            if at_key {
                path.to_owned()
            } else {
                join_path(path, key)
            },
        )
    } else if msg.starts_with("missing field") {
        ("required", join_path(path, backticked(msg).unwrap_or("?")))
    } else if msg.starts_with("invalid type") {
        ("invalid_type", path.to_owned())
    } else {
        ("invalid_value", path.to_owned())
    };
    let field = if field.is_empty() || field == "." {
        "body".to_owned()
    } else {
        field
    };
    FieldError::new(field, code, msg)
}

/// Query parameters parsed strictly into `T`; problems are 400 `invalid_query_parameter` naming the field.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let q = req.query_string();
        if let Some((k, _)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            let e = nul_error(&k);
            return std::future::ready(Err(query_error(&e.field, &e.code, &e.message)));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        let res = serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let fe = data_error(&path, &msg);
                let field = if fe.field == "body" {
                    "query".to_owned()
                } else {
                    fe.field
                };
                query_error(&field, &fe.code, &msg)
            });
        std::future::ready(res)
    }
}

/// A 400 about one query parameter.
pub fn query_error(field: &str, code: &str, message: &str) -> AppError {
    AppError::BadRequest {
        code: ErrorCode::InvalidQueryParameter,
        detail: format!("query parameter `{field}` is invalid"),
        errors: vec![FieldError::new(field, code, message)],
    }
}

/// The `{id}` path parameter: a positive integer, else 400 `invalid_path_parameter`.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub i64);

impl FromRequest for PathId {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("id").unwrap_or_default();
        let res = raw
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(PathId)
            .ok_or_else(|| AppError::BadRequest {
                code: ErrorCode::InvalidPathParameter,
                detail: "path parameter `id` must be a positive integer".into(),
                errors: vec![FieldError::new(
                    "id",
                    "invalid_format",
                    "a positive integer",
                )],
            });
        std::future::ready(res)
    }
}

/// Validates `limit` (1..=200, default 50) and decodes `cursor`.
pub fn page_params(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(i64, Option<i64>), AppError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(query_error("limit", "out_of_range", "between 1 and 200"));
    }
    let after = match cursor {
        None | Some("") => None,
        Some(c) => Some(paging::decode_cursor(c).ok_or_else(|| {
            query_error("cursor", "invalid_format", "not a cursor from this API")
        })?),
    };
    Ok((limit, after))
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value (`Some(Some(v))`).
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: i32,
    }

    fn field_of(json: &str) -> (String, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(AppError::Validation(e)) => (e[0].field.clone(), e[0].code.clone()),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"name":"a","extra":1}"#),
            ("extra".into(), "unknown_field".into())
        );
        assert_eq!(field_of(r#"{}"#), ("name".into(), "required".into()));
        assert_eq!(
            field_of(r#"{"name":5}"#),
            ("name".into(), "invalid_type".into())
        );
        assert_eq!(
            field_of(r#"{"name":"a","inner":{"n":"x"}}"#),
            ("inner.n".into(), "invalid_type".into())
        );
        assert_eq!(
            field_of(r#"{"name":"a","inner":{"m":1}}"#),
            ("inner.m".into(), "unknown_field".into())
        );
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":"),
            Err(AppError::BadRequest { .. })
        ));
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":\"a\"} x"),
            Err(AppError::BadRequest { .. })
        ));
    }

    #[test]
    fn a_nul_character_is_refused_naming_its_field() {
        let nul = |json: &str| match parse_json::<serde_json::Value>(json.as_bytes()) {
            Err(AppError::Validation(e)) => Some((e[0].field.clone(), e[0].code.clone())),
            _ => None,
        };
        let at = |f: &str| Some((f.to_owned(), "invalid_character".to_owned()));
        assert_eq!(nul(r#"{"name":"a\u0000b"}"#), at("name"));
        assert_eq!(nul(r#"{"a":{"list":["x","\u0000"]}}"#), at("a.list.1"));
        assert_eq!(nul(r#"{"k\u0000":1}"#), at("k\u{0}"));
        assert_eq!(nul(r#""\u0000""#), at("body"));
        assert_eq!(
            nul(r#"{"name":"a\\u0000b"}"#),
            None,
            "an escaped backslash, then text"
        );
        assert_eq!(nul(r#"{"name":"\u00001"}"#), at("name"));
        assert!(!has_nul_escape(br#"{"n":"\\"}"#));
        assert!(!has_nul_escape(b"\\"));
    }

    #[test]
    fn paging_limits() {
        assert_eq!(page_params(None, None).unwrap(), (50, None));
        assert!(page_params(Some(0), None).is_err());
        assert!(page_params(Some(201), None).is_err());
        assert!(page_params(None, Some("junk")).is_err());
        assert_eq!(
            page_params(Some(5), Some(&paging::encode_cursor(9))).unwrap(),
            (5, Some(9))
        );
    }
}
