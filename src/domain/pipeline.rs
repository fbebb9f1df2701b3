//! The opportunity pipeline (商机阶段) and its rules.
//!
//! Stages: `lead → qualified → proposal → negotiation → won | lost`.
//!
//! - The four **open** stages may be entered in any order: an opportunity may skip forward (a referral that
//!   arrives with a ready proposal goes straight from `lead` to `proposal`) and may move back (the customer
//!   reopens negotiation on the proposal). Real conversations are not linear, and forbidding a move back would
//!   only make managers lie about the stage.
//! - `won` and `lost` may be entered from any open stage and are **final**: moving out of them is refused
//!   (`invalid_transition`). A wrongly closed opportunity is corrected by opening a new one, so the history
//!   and the landed amounts the performance figures are built on never change behind the leaders' backs.
//! - `lost` needs a lost reason and `won` a landed amount, in the resulting state; a lost reason on anything
//!   but a lost opportunity, or a landed amount on anything but a won one, is refused (`not_allowed`).
//! - A closed (won or lost) opportunity is read-only: re-stating its stage is no change, anything else is
//!   refused (409 `not_editable`) — the landed amount performance is built on stays as it was closed.
//! - Setting the stage it already has is no change and leaves no history line.
//! - The probability follows the stage (lead 10 … won 100, lost 0) unless the client gives one.
//!
//! Every actual change is kept in `opportunity_history` (from, to, who, when, note).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 线索: a need overheard, not yet confirmed.
    Lead,
    /// 已确认: the customer confirmed the need.
    Qualified,
    /// 方案: a product proposal was made.
    Proposal,
    /// 谈判: terms are being negotiated.
    Negotiation,
    /// 赢单: the money landed (final).
    Won,
    /// 输单: lost (final).
    Lost,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Self; 6] = [
        Self::Lead,
        Self::Qualified,
        Self::Proposal,
        Self::Negotiation,
        Self::Won,
        Self::Lost,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Qualified => "qualified",
            Self::Proposal => "proposal",
            Self::Negotiation => "negotiation",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The label shown in the customer archive.
    pub fn label(self) -> &'static str {
        match self {
            Self::Lead => "线索",
            Self::Qualified => "已确认",
            Self::Proposal => "方案",
            Self::Negotiation => "谈判",
            Self::Won => "赢单",
            Self::Lost => "输单",
        }
    }

    /// True for `won` and `lost`.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Won | Self::Lost)
    }

    /// The probability (percent) an opportunity gets when the client sends none.
    pub fn default_probability(self) -> i32 {
        match self {
            Self::Lead => 10,
            Self::Qualified => 30,
            Self::Proposal => 50,
            Self::Negotiation => 70,
            Self::Won => 100,
            Self::Lost => 0,
        }
    }
}

/// Where an opportunity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Caught during a visit (`source_visit_id`).
    Visit,
    /// Referred by someone (`referral` says by whom).
    Referral,
    /// Anything else.
    Other,
}

impl Source {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visit => "visit",
            Self::Referral => "referral",
            Self::Other => "other",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Visit, Self::Referral, Self::Other]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Whether the stage may go from `from` to `to`: `Ok(true)` for a change, `Ok(false)` for no change, `Err`
/// (code `invalid_transition`) when `from` is final and `to` differs.
pub fn transition(from: Stage, to: Stage) -> Result<bool, &'static str> {
    if from == to {
        Ok(false)
    } else if from.is_final() {
        Err("invalid_transition")
    } else {
        Ok(true)
    }
}

/// The probability after a change: the one given, else on a stage change the new stage's default, else
/// unchanged (`None`).
pub fn probability_after(given: Option<i32>, moved_to: Option<Stage>) -> Option<i32> {
    given.or_else(|| moved_to.map(Stage::default_probability))
}

/// What a closed stage needs, given the resulting state: the `(field, code)` problems, if any.
pub fn closing_problems(
    stage: Stage,
    has_lost_reason: bool,
    has_landed: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match (stage == Stage::Lost, has_lost_reason) {
        (true, false) => out.push(("lost_reason", "required")),
        (false, true) => out.push(("lost_reason", "not_allowed")),
        _ => {}
    }
    match (stage == Stage::Won, has_landed) {
        (true, false) => out.push(("landed_amount", "required")),
        (false, true) => out.push(("landed_amount", "not_allowed")),
        _ => {}
    }
    out
}

/// The UTC instants bounding the Asia/Shanghai dates `from..=to` (UTC+8 all year, no daylight saving):
/// `[from 00:00 +08:00, (to + 1) 00:00 +08:00)`.
pub fn local_period_bounds(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let start = |d: NaiveDate| d.and_time(NaiveTime::MIN) - Duration::hours(8);
    (from.map(start), to.map(|d| start(d) + Duration::days(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_stages_move_freely_and_final_stages_stay() {
        use Stage::*;
        for from in [Lead, Qualified, Proposal, Negotiation] {
            for to in Stage::ALL {
                assert_eq!(transition(from, to), Ok(from != to), "{from:?} → {to:?}");
            }
        }
        assert_eq!(transition(Lead, Negotiation), Ok(true), "skipping forward");
        assert_eq!(transition(Negotiation, Qualified), Ok(true), "moving back");
        for from in [Won, Lost] {
            assert_eq!(transition(from, from), Ok(false), "same stage is no change");
            for to in Stage::ALL.into_iter().filter(|t| *t != from) {
                assert_eq!(transition(from, to), Err("invalid_transition"));
            }
        }
    }

    #[test]
    fn closing_needs_its_fields_and_nothing_else() {
        assert!(closing_problems(Stage::Won, false, true).is_empty());
        assert!(closing_problems(Stage::Lost, true, false).is_empty());
        assert!(closing_problems(Stage::Proposal, false, false).is_empty());
        assert_eq!(
            closing_problems(Stage::Won, false, false),
            [("landed_amount", "required")]
        );
        assert_eq!(
            closing_problems(Stage::Lost, false, false),
            [("lost_reason", "required")]
        );
        assert_eq!(
            closing_problems(Stage::Lead, true, true),
            [
                ("lost_reason", "not_allowed"),
                ("landed_amount", "not_allowed")
            ]
        );
        assert_eq!(
            closing_problems(Stage::Won, true, true),
            [("lost_reason", "not_allowed")]
        );
    }

    #[test]
    fn probability_follows_the_stage_unless_given() {
        assert_eq!(probability_after(None, Some(Stage::Won)), Some(100));
        assert_eq!(probability_after(None, Some(Stage::Lost)), Some(0));
        assert_eq!(probability_after(Some(85), Some(Stage::Proposal)), Some(85));
        assert_eq!(probability_after(Some(85), None), Some(85));
        assert_eq!(probability_after(None, None), None);
    }

    #[test]
    fn names_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            assert!((0..=100).contains(&s.default_probability()));
        }
        assert_eq!(Stage::parse("closed"), None);
        assert_eq!(Source::parse("referral"), Some(Source::Referral));
        assert_eq!(Source::parse("phone"), None);
    }

    #[test]
    fn shanghai_days_in_utc() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let (from, to) = local_period_bounds(Some(d(11, 1)), Some(d(11, 30)));
        assert_eq!(from.unwrap().to_string(), "2026-10-31 16:00:00");
        assert_eq!(to.unwrap().to_string(), "2026-11-30 16:00:00");
        assert_eq!(local_period_bounds(None, None), (None, None));
    }
}
