//! `/api/v1/dictionaries/{kind}`: the admin-extensible code lists behind customer categories, customer
//! tiers and product types. Anyone logged in reads them (the app fills its pickers from them); an admin adds
//! codes. Codes are never removed, so stored values always resolve; the lists are short and not paged.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::ApiJson;
use crate::auth::caller::Auth;
use crate::db::repo::audit;
use crate::db::repo::audit::Entry as AuditEntry;
use crate::db::repo::dictionaries::{self, Entry};
use crate::domain::validate;
use crate::error::{AppError, AppResult, ErrorCode, FieldError, FieldErrors, ProblemBody};
use crate::startup::AppState;

/// Registers the routes of this module.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_dictionary).service(add_dictionary_code);
}

/// The code lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DictionaryKind {
    /// Customer categories (客户类别).
    CustomerCategory,
    /// Customer tiers (客户层级), e.g. strategic / key / ordinary.
    CustomerTier,
    /// Product types of holdings and opportunities.
    ProductType,
}

impl DictionaryKind {
    /// The stored list name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerCategory => "customer_category",
            Self::CustomerTier => "customer_tier",
            Self::ProductType => "product_type",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::CustomerCategory,
            Self::CustomerTier,
            Self::ProductType,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The `{kind}` path parameter; anything but a known list is 400 `invalid_path_parameter`.
#[derive(Debug, Clone, Copy)]
pub struct PathKind(pub DictionaryKind);

impl FromRequest for PathKind {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("kind").unwrap_or_default();
        let res = DictionaryKind::parse(raw)
            .map(PathKind)
            .ok_or_else(|| AppError::BadRequest {
                code: ErrorCode::InvalidPathParameter,
                detail: "path parameter `kind` must name a code list".into(),
                errors: vec![FieldError::new(
                    "kind",
                    "invalid_value",
                    "customer_category, customer_tier or product_type",
                )],
            });
        std::future::ready(res)
    }
}

/// One code of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DictionaryEntry {
    /// The stored code, e.g. `time_deposit`.
    pub code: String,
    /// What people read, e.g. 定期存款.
    pub label: String,
    /// False: kept for stored data, refused on new input.
    pub active: bool,
    /// Sort order.
    pub position: i32,
}

impl From<Entry> for DictionaryEntry {
    fn from(e: Entry) -> Self {
        Self {
            code: e.code,
            label: e.label,
            active: e.active,
            position: e.position,
        }
    }
}

/// A whole code list, in display order.
#[derive(Debug, Serialize, ToSchema)]
pub struct DictionaryList {
    /// Which list.
    pub kind: DictionaryKind,
    /// Its codes, by position.
    pub items: Vec<DictionaryEntry>,
}

/// Body of `POST /dictionaries/{kind}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCodeRequest {
    /// New code: 1–32 lower-case letters, digits or `_`, starting with a letter; unique in the list.
    pub code: String,
    /// Label, 1–50 characters.
    pub label: String,
    /// Sort order; default after the last code.
    pub position: Option<i32>,
}

/// A code list (anyone logged in).
#[utoipa::path(
    tag = "customers",
    params(("kind" = DictionaryKind, Path, description = "Which list")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DictionaryList),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[get("/dictionaries/{kind}")]
async fn list_dictionary(
    state: web::Data<AppState>,
    auth: Auth,
    kind: PathKind,
) -> AppResult<web::Json<DictionaryList>> {
    let now = state.now();
    let rows = state
        .db
        .read(move |c| {
            auth.load(c, now)?;
            Ok(dictionaries::list(c, kind.0.as_str())?)
        })
        .await?;
    Ok(web::Json(DictionaryList {
        kind: kind.0,
        items: rows.into_iter().map(DictionaryEntry::from).collect(),
    }))
}

fn check_code(errs: &mut FieldErrors, v: &str) -> String {
    let v = v.trim();
    let ok = (1..=32).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        errs.add(
            "code",
            "invalid_format",
            "1 to 32 lower-case letters, digits or '_', starting with a letter",
        );
    }
    v.to_owned()
}

/// Adds a code to a list (admin).
#[utoipa::path(
    tag = "customers",
    params(("kind" = DictionaryKind, Path, description = "Which list")),
    request_body = AddCodeRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = DictionaryEntry),
        (status = "4XX", description = "Client error: a problem document with a stable `code`", body = ProblemBody, content_type = "application/problem+json"),
        (status = "5XX", description = "Server error or database unavailable (503)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
#[post("/dictionaries/{kind}")]
async fn add_dictionary_code(
    state: web::Data<AppState>,
    auth: Auth,
    kind: PathKind,
    body: ApiJson<AddCodeRequest>,
) -> AppResult<HttpResponse> {
    let req = body.0;
    let mut errs = FieldErrors::default();
    let code = check_code(&mut errs, &req.code);
    let label = validate::text(&mut errs, "label", &req.label, 50);
    if req.position.is_some_and(|p| !(0..=10_000).contains(&p)) {
        errs.add("position", "out_of_range", "0 to 10000");
    }
    errs.finish()?;
    let now = state.now();
    let kind = kind.0.as_str();
    let entry = state
        .db
        .write(move |c| {
            let caller = auth.load(c, now)?;
            caller.require_admin()?;
            let position = match req.position {
                Some(p) => p,
                None => dictionaries::max_position(c, kind)? + 1,
            };
            let e = Entry {
                kind: kind.to_owned(),
                code,
                label,
                active: true,
                position,
            };
            if !dictionaries::insert(c, &e)? {
                return Err(AppError::field("code", "taken", "this code exists already"));
            }
            let id = format!("{kind}/{}", e.code);
            let entry = AuditEntry::new("dictionary.create", "dictionary", id, &caller.org_path);
            audit::record(c, &caller, entry, now)?;
            Ok(e)
        })
        .await?;
    Ok(HttpResponse::Created().json(DictionaryEntry::from(entry)))
}
