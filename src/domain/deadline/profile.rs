//! Limits and per-category deadline profiles: which limit each phase of a case
//! runs on. Storage lives in `store/`; choosing the profile for a case is
//! [`DeadlineProfile::best_match`].

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::case::Phase;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Office time on working days only (lunch, nights, rest days skipped).
    WorkHours,
    /// Whole working days after the day of receipt, ending at close of business.
    WorkDays,
    /// Plain elapsed time, calendar-independent.
    NaturalHours,
}

/// A time limit such as "3 个工作日" or "2 工作小时".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Limit {
    /// At most a year of the unit: 250 work days, 2000 work hours, 8784 natural hours.
    #[schema(minimum = 1, maximum = 8784)]
    pub amount: u32,
    pub unit: Unit,
}

impl Limit {
    /// The most of `unit` a profile may set: about a year, which two loaded
    /// calendar years can hold. More is a slip of the keyboard, and would fail
    /// every case filed under the profile for want of a calendar that long.
    pub const fn max_amount(unit: Unit) -> u32 {
        match unit {
            Unit::WorkDays => 250,
            Unit::WorkHours => 2000,
            Unit::NaturalHours => 8784,
        }
    }

    /// Whether a profile may use this limit: at least one of its unit, at most
    /// [`Limit::max_amount`].
    pub fn is_settable(&self) -> bool {
        (1..=Self::max_amount(self.unit)).contains(&self.amount)
    }

    pub const fn work_hours(amount: u32) -> Self {
        Self {
            amount,
            unit: Unit::WorkHours,
        }
    }
    pub const fn work_days(amount: u32) -> Self {
        Self {
            amount,
            unit: Unit::WorkDays,
        }
    }
    pub const fn natural_hours(amount: u32) -> Self {
        Self {
            amount,
            unit: Unit::NaturalHours,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::WorkHours => "work hours",
            Unit::WorkDays => "work days",
            Unit::NaturalHours => "natural hours",
        };
        write!(f, "{} {}", self.amount, unit)
    }
}

/// Urgency grade a profile applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    #[default]
    Normal,
    Urgent,
    /// 特急: safety hazards and the like.
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Urgent => "urgent",
            Urgency::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Urgency> {
        [Urgency::Normal, Urgency::Urgent, Urgency::Critical]
            .into_iter()
            .find(|u| u.as_str() == s)
    }
}

/// One limit per case phase: 核实 (verify), 派遣 (dispatch), 签收 (sign),
/// 处置 (handle), 核查 (check), 返工 (rework, the handle limit after a
/// failed check) and 办结 (resolve, the whole case from filing to closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseLimits {
    #[serde(default = "default_verify")]
    pub verify: Limit,
    #[serde(default = "default_dispatch")]
    pub dispatch: Limit,
    pub sign: Limit,
    pub handle: Limit,
    pub check: Limit,
    pub rework: Limit,
    #[serde(default = "default_resolve")]
    pub resolve: Limit,
}

fn default_verify() -> Limit {
    Limit::work_days(1)
}

/// Profiles stored before the case clock existed get this overall limit.
fn default_resolve() -> Limit {
    Limit::work_days(10)
}

fn default_dispatch() -> Limit {
    Limit::work_hours(2)
}

impl PhaseLimits {
    /// Every phase's limit with the phase's field name; destructured, so a
    /// phase added later cannot be left out of the checks that use this.
    pub fn named(&self) -> [(&'static str, Limit); 7] {
        let PhaseLimits {
            verify,
            dispatch,
            sign,
            handle,
            check,
            rework,
            resolve,
        } = *self;
        [
            ("verify", verify),
            ("dispatch", dispatch),
            ("sign", sign),
            ("handle", handle),
            ("check", check),
            ("rework", rework),
            ("resolve", resolve),
        ]
    }

    /// Rework (返工) follows a failed check, so its limit must be shorter than
    /// the handle limit. Limits in different units are not comparable without a
    /// calendar (a work day is not a fixed number of hours), so they pass.
    pub fn rework_is_shorter(&self) -> bool {
        self.rework.unit != self.handle.unit || self.rework.amount < self.handle.amount
    }

    /// The limit a new clock of `phase` runs on; a handle clock started after a
    /// failed check (`rework`) gets the shorter rework limit.
    pub fn limit_for(&self, phase: Phase, rework: bool) -> Limit {
        match phase {
            Phase::Verify => self.verify,
            Phase::Dispatch => self.dispatch,
            Phase::Sign => self.sign,
            Phase::Handle if rework => self.rework,
            Phase::Handle => self.handle,
            Phase::Check => self.check,
            Phase::Resolve => self.resolve,
        }
    }
}

/// The limits that apply to cases of one category (or category prefix; `*` for
/// every category) at one urgency. A profile without a prefix applies only where
/// a category or routing rule names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadlineProfile {
    pub id: String,
    #[serde(default)]
    pub category_prefix: Option<String>,
    pub urgency: Urgency,
    pub phases: PhaseLimits,
    /// Overrides the city's warning fraction for this profile, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_fraction: Option<f64>,
}

/// The wildcard prefix of the fallback profiles.
pub const ANY_CATEGORY: &str = "*";

impl DeadlineProfile {
    /// Whether this is the `*` profile at normal urgency, which every case
    /// falls back on.
    pub fn is_the_default(&self) -> bool {
        DeadlineProfile::is_default_slot(self.category_prefix.as_deref(), self.urgency)
    }

    /// Whether a profile for `category_prefix` at `urgency` is the default:
    /// it can be changed, but neither deleted nor moved elsewhere.
    pub fn is_default_slot(category_prefix: Option<&str>, urgency: Urgency) -> bool {
        urgency == Urgency::Normal && category_prefix == Some(ANY_CATEGORY)
    }

    /// The profile for a case: the one named by its routing rule or category
    /// when given and present; otherwise the longest category prefix at the
    /// case's urgency, then the `*` profile at that urgency, then any `*`
    /// profile at normal urgency.
    pub fn best_match<'a>(
        profiles: &'a [DeadlineProfile],
        named: Option<&str>,
        category: &str,
        urgency: Urgency,
    ) -> Option<&'a DeadlineProfile> {
        if let Some(found) = named.and_then(|id| profiles.iter().find(|p| p.id == id)) {
            return Some(found);
        }
        let wildcard = |p: &&DeadlineProfile, u: Urgency| {
            p.urgency == u && p.category_prefix.as_deref() == Some(ANY_CATEGORY)
        };
        profiles
            .iter()
            .filter(|p| p.urgency == urgency)
            .filter_map(|p| {
                p.category_prefix
                    .as_deref()
                    .filter(|prefix| *prefix != ANY_CATEGORY && category.starts_with(prefix))
                    .map(|prefix| (prefix.len(), p))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
            .or_else(|| profiles.iter().find(|p| wildcard(p, urgency)))
            .or_else(|| profiles.iter().find(|p| wildcard(p, Urgency::Normal)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settable_limit_is_one_to_the_maximum_of_its_unit() {
        for unit in [Unit::WorkHours, Unit::WorkDays, Unit::NaturalHours] {
            let most = Limit::max_amount(unit);
            for (amount, settable) in [
                (0, false),
                (1, true),
                (most, true),
                (most + 1, false),
                (u32::MAX, false),
            ] {
                let limit = Limit { amount, unit };
                assert_eq!(limit.is_settable(), settable, "{limit}");
            }
        }
        assert_eq!(Limit::max_amount(Unit::WorkDays), 250);
    }

    #[test]
    fn rework_must_be_shorter_than_handling_in_the_same_unit() {
        let with = |handle: Limit, rework: Limit| PhaseLimits {
            verify: default_verify(),
            dispatch: default_dispatch(),
            sign: Limit::work_hours(2),
            handle,
            check: Limit::work_days(1),
            rework,
            resolve: default_resolve(),
        };
        let table = [
            (Limit::work_days(5), Limit::work_days(3), true),
            (Limit::work_days(5), Limit::work_days(5), false),
            (Limit::work_days(5), Limit::work_days(6), false),
            (Limit::natural_hours(24), Limit::natural_hours(12), true),
            (Limit::natural_hours(24), Limit::natural_hours(48), false),
            (Limit::work_days(1), Limit::work_hours(4), true),
            (Limit::work_hours(4), Limit::work_days(1), true),
        ];
        for (handle, rework, shorter) in table {
            assert_eq!(
                with(handle, rework).rework_is_shorter(),
                shorter,
                "{handle:?} {rework:?}"
            );
        }
    }

    #[test]
    fn limit_serde_shape() {
        let cases = [
            (Limit::work_hours(4), r#"{"amount":4,"unit":"work_hours"}"#),
            (Limit::work_days(3), r#"{"amount":3,"unit":"work_days"}"#),
            (
                Limit::natural_hours(24),
                r#"{"amount":24,"unit":"natural_hours"}"#,
            ),
        ];
        for (limit, json) in cases {
            assert_eq!(serde_json::to_string(&limit).expect("serialize"), json);
            let back: Limit = serde_json::from_str(json).expect("deserialize");
            assert_eq!(back, limit);
        }
    }

    #[test]
    fn limit_display() {
        assert_eq!(Limit::work_days(3).to_string(), "3 work days");
        assert_eq!(Limit::work_hours(1).to_string(), "1 work hours");
        assert_eq!(Limit::natural_hours(48).to_string(), "48 natural hours");
    }

    #[test]
    fn profile_round_trip() {
        let json = r#"{
            "id": "road-damage-urgent",
            "category_prefix": "0201",
            "urgency": "urgent",
            "phases": {
                "sign": {"amount": 2, "unit": "work_hours"},
                "handle": {"amount": 3, "unit": "work_days"},
                "check": {"amount": 1, "unit": "work_days"},
                "rework": {"amount": 48, "unit": "natural_hours"}
            }
        }"#;
        let p: DeadlineProfile = serde_json::from_str(json).expect("profile");
        assert_eq!(p.urgency, Urgency::Urgent);
        assert_eq!(p.phases.handle, Limit::work_days(3));
        // Verify and dispatch limits default when a profile leaves them out.
        assert_eq!(p.phases.verify, Limit::work_days(1));
        assert_eq!(
            p.phases.limit_for(Phase::Handle, true),
            Limit::natural_hours(48)
        );
        assert_eq!(p.warning_fraction, None);
        let again: DeadlineProfile =
            serde_json::from_str(&serde_json::to_string(&p).expect("ser")).expect("de");
        assert_eq!(again, p);
    }

    #[test]
    fn unknown_unit_is_rejected() {
        let err = serde_json::from_str::<Limit>(r#"{"amount":1,"unit":"weeks"}"#);
        assert!(err.is_err());
    }

    fn profile(id: &str, prefix: Option<&str>, urgency: Urgency) -> DeadlineProfile {
        let day = Limit::work_days(1);
        DeadlineProfile {
            id: id.into(),
            category_prefix: prefix.map(str::to_owned),
            urgency,
            phases: PhaseLimits {
                verify: day,
                dispatch: day,
                sign: day,
                handle: day,
                check: day,
                rework: day,
                resolve: day,
            },
            warning_fraction: None,
        }
    }

    #[test]
    fn best_match_prefers_named_then_longest_prefix_then_wildcard() {
        let profiles = vec![
            profile("any", Some(ANY_CATEGORY), Urgency::Normal),
            profile("any-urgent", Some(ANY_CATEGORY), Urgency::Urgent),
            profile("road", Some("02"), Urgency::Normal),
            profile("road-hole", Some("0201"), Urgency::Normal),
            profile("special", None, Urgency::Critical),
        ];
        let pick = |named: Option<&str>, category: &str, urgency: Urgency| {
            DeadlineProfile::best_match(&profiles, named, category, urgency).map(|p| p.id.as_str())
        };
        assert_eq!(
            pick(Some("special"), "0201", Urgency::Normal),
            Some("special")
        );
        // Without a prefix a profile is only used where named.
        assert_eq!(pick(None, "9901", Urgency::Critical), Some("any"));
        // A name that no longer exists falls back to matching.
        assert_eq!(
            pick(Some("gone"), "0201", Urgency::Normal),
            Some("road-hole")
        );
        assert_eq!(pick(None, "0201", Urgency::Normal), Some("road-hole"));
        assert_eq!(pick(None, "0202", Urgency::Normal), Some("road"));
        assert_eq!(pick(None, "0301", Urgency::Normal), Some("any"));
        assert_eq!(pick(None, "0201", Urgency::Urgent), Some("any-urgent"));
        // No critical wildcard: the normal wildcard still gives a deadline.
        assert_eq!(pick(None, "0201", Urgency::Critical), Some("any"));
        assert_eq!(
            DeadlineProfile::best_match(&[], None, "01", Urgency::Normal),
            None
        );
    }

    #[test]
    fn urgency_names_round_trip() {
        for u in [Urgency::Normal, Urgency::Urgent, Urgency::Critical] {
            assert_eq!(Urgency::parse(u.as_str()), Some(u));
        }
        assert_eq!(Urgency::parse("later"), None);
    }
}
