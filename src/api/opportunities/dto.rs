//! Request and response types of `/api/v1/opportunities`, and the field checks that turn requests into
//! checked values (`Draft`, `Patch`) before any database work.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::double_option;
use crate::api::utc;
use crate::db::repo::opportunities::{HistoryLine, Opportunity, StageTotals};
use crate::domain::money::{format_fen, parse_fen};
use crate::domain::pipeline::{self, Source, Stage};
use crate::domain::validate;
use crate::error::{AppResult, FieldErrors};

/// An opportunity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityResponse {
    /// Opportunity id.
    pub id: i64,
    /// The customer.
    pub customer_id: i64,
    /// The customer's name.
    pub customer_name: String,
    /// The responsible manager.
    pub manager_id: i64,
    /// Short title.
    pub title: String,
    /// Product type code (dictionary `product_type`).
    pub product_type: String,
    /// The customer's need, in their words.
    pub need: Option<String>,
    /// Estimated amount, CNY.
    #[schema(value_type = String, example = "500000.00")]
    pub estimated_amount: String,
    /// Probability, percent.
    pub probability: i32,
    /// Expected close date (Asia/Shanghai).
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub expected_close_date: Option<NaiveDate>,
    /// Stage.
    pub stage: Stage,
    /// Why it was lost (stage `lost`).
    pub lost_reason: Option<String>,
    /// Landed amount, CNY (stage `won`).
    #[schema(value_type = Option<String>, example = "480000.00")]
    pub landed_amount: Option<String>,
    /// Where it came from.
    pub source: Source,
    /// The visit it was caught in (source `visit`).
    pub source_visit_id: Option<i64>,
    /// Who referred it (source `referral`).
    pub referral: Option<String>,
    /// Created (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub updated_at: DateTime<Utc>,
}

impl OpportunityResponse {
    /// From a row and its customer's name.
    pub fn from_row(o: Opportunity, customer_name: String) -> Self {
        Self {
            id: o.id,
            customer_id: o.customer_id,
            customer_name,
            manager_id: o.manager_id,
            title: o.title,
            product_type: o.product_type,
            need: o.need,
            estimated_amount: format_fen(o.estimated_fen),
            probability: o.probability,
            expected_close_date: o.expected_close_date,
            stage: Stage::parse(&o.stage).unwrap_or(Stage::Lead),
            lost_reason: o.lost_reason,
            landed_amount: o.landed_fen.map(format_fen),
            source: Source::parse(&o.source).unwrap_or(Source::Other),
            source_visit_id: o.source_visit_id,
            referral: o.referral,
            created_at: utc(o.created_at),
            updated_at: utc(o.updated_at),
        }
    }
}

/// A page of opportunities.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityList {
    /// The opportunities, newest first.
    pub items: Vec<OpportunityResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /opportunities`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListOpportunitiesQuery {
    /// Only in this stage.
    pub stage: Option<Stage>,
    /// Only about this customer (a manager then sees team members' opportunities too).
    pub customer_id: Option<i64>,
    /// Leaders and admins: only those of managers in this org's subtree.
    pub org_id: Option<i64>,
    /// Leaders and admins: only this manager's.
    pub manager_id: Option<i64>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /opportunities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOpportunityRequest {
    /// Client-generated id (1–128 characters): the idempotency key when no `Idempotency-Key` header is sent.
    pub client_id: Option<String>,
    /// A customer in the caller's scope.
    pub customer_id: i64,
    /// Leaders and admins: the responsible manager (an active user in their subtree); default the caller.
    pub manager_id: Option<i64>,
    /// 1–200 characters.
    pub title: String,
    /// An active `product_type` code (see `/dictionaries`).
    pub product_type: String,
    /// Up to 2000 characters.
    pub need: Option<String>,
    /// Estimated amount, CNY, at most 2 decimals, not negative.
    #[schema(value_type = String, example = "500000.00")]
    pub estimated_amount: String,
    /// Percent, 0–100; default by stage (lead 10, qualified 30, proposal 50, negotiation 70, won 100, lost 0).
    pub probability: Option<i32>,
    /// Expected close date (Asia/Shanghai).
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub expected_close_date: Option<NaiveDate>,
    /// Initial stage (default `lead`).
    pub stage: Option<Stage>,
    /// Required when the stage is `lost` (up to 500 characters).
    pub lost_reason: Option<String>,
    /// Required when the stage is `won`.
    #[schema(value_type = Option<String>, example = "480000.00")]
    pub landed_amount: Option<String>,
    /// Default: `visit` with a `source_visit_id`, `referral` with a `referral`, else `other`.
    pub source: Option<Source>,
    /// With source `visit` (required): a visit of this customer in the caller's scope.
    pub source_visit_id: Option<i64>,
    /// With source `referral` (required): who referred it, up to 200 characters.
    pub referral: Option<String>,
}

/// Body of `PATCH /opportunities/{id}`: every field optional; `null` clears `need` or `expected_close_date`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOpportunityRequest {
    /// 1–200 characters.
    pub title: Option<String>,
    /// An active `product_type` code.
    pub product_type: Option<String>,
    /// Up to 2000 characters; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub need: Option<Option<String>>,
    /// Estimated amount, CNY.
    #[schema(value_type = Option<String>, example = "500000.00")]
    pub estimated_amount: Option<String>,
    /// Percent, 0–100; with a stage change and no probability, the new stage's default.
    pub probability: Option<i32>,
    /// Expected close date; `null` clears it.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_patch")]
    #[schema(value_type = Option<NaiveDate>)]
    pub expected_close_date: Option<Option<NaiveDate>>,
    /// New stage: open stages move freely; `won` and `lost` are final (a closed opportunity changes no more).
    pub stage: Option<Stage>,
    /// Why it was lost: required to move to `lost`, refused on other stages.
    pub lost_reason: Option<String>,
    /// Landed amount, CNY: required to move to `won`, refused on other stages.
    #[schema(value_type = Option<String>, example = "480000.00")]
    pub landed_amount: Option<String>,
    /// A note for the history line of a stage change (up to 500 characters; only with a stage change).
    pub note: Option<String>,
}

fn probability(errs: &mut FieldErrors, p: Option<i32>) -> Option<i32> {
    if p.is_some_and(|p| !(0..=100).contains(&p)) {
        errs.add("probability", "out_of_range", "a percentage from 0 to 100");
    }
    p
}

/// A create body after the field checks.
#[derive(Debug)]
pub struct Draft {
    pub customer_id: i64,
    pub manager_id: Option<i64>,
    pub title: String,
    pub product_type: String,
    pub need: Option<String>,
    pub estimated_fen: i64,
    pub probability: Option<i32>,
    pub expected_close_date: Option<NaiveDate>,
    pub stage: Stage,
    pub lost_reason: Option<String>,
    pub landed_fen: Option<i64>,
    pub source: Source,
    pub source_visit_id: Option<i64>,
    pub referral: Option<String>,
}

impl Draft {
    /// Checks every field of a create body; 422 naming each bad one.
    pub fn check(r: CreateOpportunityRequest) -> AppResult<Self> {
        let mut errs = FieldErrors::default();
        // An empty client id is a mistake, not "no key" (the key is taken from the body as sent).
        if let Some(id) = &r.client_id {
            validate::text(&mut errs, "client_id", id, 128);
        }
        let stage = r.stage.unwrap_or(Stage::Lead);
        let lost_reason =
            validate::opt_text(&mut errs, "lost_reason", r.lost_reason.as_deref(), 500);
        let landed_fen = r
            .landed_amount
            .as_deref()
            .map(|a| parse_fen(&mut errs, "landed_amount", a));
        for (field, code) in
            pipeline::closing_problems(stage, lost_reason.is_some(), landed_fen.is_some())
        {
            errs.add(
                field,
                code,
                format!("{field} goes with the stage it belongs to"),
            );
        }
        let referral = validate::opt_text(&mut errs, "referral", r.referral.as_deref(), 200);
        let source = r.source.unwrap_or(match (r.source_visit_id, &referral) {
            (Some(_), _) => Source::Visit,
            (None, Some(_)) => Source::Referral,
            (None, None) => Source::Other,
        });
        match (source, r.source_visit_id, &referral) {
            (Source::Visit, None, _) => {
                errs.add("source_visit_id", "required", "the visit it came from")
            }
            (Source::Referral, _, None) => errs.add("referral", "required", "who referred it"),
            _ => {}
        }
        if source != Source::Visit && r.source_visit_id.is_some() {
            errs.add("source_visit_id", "not_allowed", "only with source `visit`");
        }
        if source != Source::Referral && referral.is_some() {
            errs.add("referral", "not_allowed", "only with source `referral`");
        }
        let draft = Self {
            customer_id: r.customer_id,
            manager_id: r.manager_id,
            title: validate::text(&mut errs, "title", &r.title, 200),
            product_type: validate::text(&mut errs, "product_type", &r.product_type, 32),
            need: validate::opt_prose(&mut errs, "need", r.need.as_deref(), 2000),
            estimated_fen: parse_fen(&mut errs, "estimated_amount", &r.estimated_amount),
            probability: probability(&mut errs, r.probability),
            expected_close_date: r.expected_close_date,
            stage,
            lost_reason,
            landed_fen,
            source,
            source_visit_id: r.source_visit_id,
            referral,
        };
        errs.finish()?;
        Ok(draft)
    }
}

/// A PATCH body after the field checks (the stage rules need the stored row: see `plan_update`).
#[derive(Debug)]
pub struct Patch {
    pub title: Option<String>,
    pub product_type: Option<String>,
    pub need: Option<Option<String>>,
    pub estimated_fen: Option<i64>,
    pub probability: Option<i32>,
    pub expected_close_date: Option<Option<NaiveDate>>,
    pub stage: Option<Stage>,
    pub lost_reason: Option<String>,
    pub landed_fen: Option<i64>,
    pub note: Option<String>,
}

impl Patch {
    /// Whether the body asks for anything beyond (re-)stating the stage.
    pub fn changes_more_than_stage(&self) -> bool {
        self.title.is_some()
            || self.product_type.is_some()
            || self.need.is_some()
            || self.estimated_fen.is_some()
            || self.probability.is_some()
            || self.expected_close_date.is_some()
            || self.lost_reason.is_some()
            || self.landed_fen.is_some()
            || self.note.is_some()
    }

    /// Checks every field of a PATCH body; 422 naming each bad one.
    pub fn check(r: UpdateOpportunityRequest) -> AppResult<Self> {
        let mut errs = FieldErrors::default();
        let patch = Self {
            title: r.title.map(|t| validate::text(&mut errs, "title", &t, 200)),
            product_type: r
                .product_type
                .map(|t| validate::text(&mut errs, "product_type", &t, 32)),
            need: r
                .need
                .map(|n| validate::opt_prose(&mut errs, "need", n.as_deref(), 2000)),
            estimated_fen: r
                .estimated_amount
                .map(|a| parse_fen(&mut errs, "estimated_amount", &a)),
            probability: probability(&mut errs, r.probability),
            expected_close_date: r.expected_close_date,
            stage: r.stage,
            lost_reason: r
                .lost_reason
                .map(|t| validate::text(&mut errs, "lost_reason", &t, 500)),
            landed_fen: r
                .landed_amount
                .map(|a| parse_fen(&mut errs, "landed_amount", &a)),
            note: validate::opt_prose(&mut errs, "note", r.note.as_deref(), 500),
        };
        errs.finish()?;
        Ok(patch)
    }
}

/// One stage change.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Line id.
    pub id: i64,
    /// The stage before; absent on the creation line.
    pub from_stage: Option<Stage>,
    /// The stage after.
    pub to_stage: Stage,
    /// Who changed it.
    pub actor_id: i64,
    /// Their name.
    pub actor_name: String,
    /// The note given with the change.
    pub note: Option<String>,
    /// When (UTC).
    #[serde(serialize_with = "crate::api::wire_time::instant")]
    pub at: DateTime<Utc>,
}

impl HistoryEntry {
    /// From a history line.
    pub fn from_row(h: HistoryLine) -> Self {
        Self {
            id: h.id,
            from_stage: h.from_stage.as_deref().and_then(Stage::parse),
            to_stage: Stage::parse(&h.to_stage).unwrap_or(Stage::Lead),
            actor_id: h.actor_id,
            actor_name: h.actor_name,
            note: h.note,
            at: utc(h.at),
        }
    }
}

/// A page of an opportunity's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryList {
    /// The stage changes, oldest first.
    pub items: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query of `GET /opportunities/{id}/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// Whose pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryScope {
    /// The caller's own opportunities.
    Me,
    /// Those of every manager in an org subtree (leaders and admins).
    Org,
}

/// Query of `GET /opportunities/summary`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// `me` (a manager's default) or `org` (a leader's or admin's default; leaders and admins only).
    pub scope: Option<SummaryScope>,
    /// With `scope=org`: the org whose subtree to count (default the caller's org).
    pub org_id: Option<i64>,
    /// Created on or after this Asia/Shanghai date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub from: Option<NaiveDate>,
    /// Created on or before this Asia/Shanghai date.
    #[serde(default, deserialize_with = "crate::api::wire_time::date_in_opt")]
    pub to: Option<NaiveDate>,
}

/// The totals of one stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageSummary {
    /// The stage.
    pub stage: Stage,
    /// How many opportunities.
    pub count: i64,
    /// Sum of their estimated amounts, CNY.
    #[schema(value_type = String, example = "1500000.00")]
    pub estimated_amount: String,
    /// Sum of their landed amounts, CNY (non-zero only for `won`).
    #[schema(value_type = String, example = "0.00")]
    pub landed_amount: String,
}

/// The pipeline: every stage, in order, zeros included.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineSummary {
    /// Whose opportunities.
    pub scope: SummaryScope,
    /// With `scope=org`: the org counted (with everything below it).
    pub org_id: Option<i64>,
    /// First day counted, if bounded.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub from: Option<NaiveDate>,
    /// Last day counted, if bounded.
    #[serde(serialize_with = "crate::api::wire_time::date_opt")]
    pub to: Option<NaiveDate>,
    /// One entry per stage, in pipeline order.
    pub stages: Vec<StageSummary>,
}

impl PipelineSummary {
    /// Spreads the aggregated rows over all six stages.
    pub fn build(
        scope: SummaryScope,
        org_id: Option<i64>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        rows: &[StageTotals],
    ) -> Self {
        let stages = Stage::ALL
            .into_iter()
            .map(|stage| {
                let row = rows.iter().find(|r| r.0 == stage.as_str());
                StageSummary {
                    stage,
                    count: row.map_or(0, |r| r.1),
                    estimated_amount: format_fen(row.and_then(|r| r.2).unwrap_or(0)),
                    landed_amount: format_fen(row.and_then(|r| r.3).unwrap_or(0)),
                }
            })
            .collect();
        Self {
            scope,
            org_id,
            from,
            to,
            stages,
        }
    }
}
