//! Limits and per-category deadline profiles (types and serde only; storage
//! and lookup live elsewhere).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limit {
    pub amount: u32,
    pub unit: Unit,
}

impl Limit {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    Urgent,
    /// 特急: safety hazards and the like.
    Critical,
}

/// One limit per case phase: 签收 (sign), 办理 (handle), 核查 (check),
/// 返工 (rework).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseLimits {
    pub sign: Limit,
    pub handle: Limit,
    pub check: Limit,
    pub rework: Limit,
}

/// The limits that apply to cases of one category at one urgency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadlineProfile {
    pub id: String,
    pub category: String,
    pub urgency: Urgency,
    pub phases: PhaseLimits,
    /// Overrides the calculator's warning fraction for this profile, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_fraction: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "category": "road_damage",
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
}
