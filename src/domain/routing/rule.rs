//! Ownership rules: (category prefix, zone or citywide, validity) → units.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One ownership rule, as stored (one version of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub id: Uuid,
    pub version: i32,
    /// Whole category levels: "" matches every category, "03" (大类) matches
    /// "03" and "0301", "0301" (小类) matches only "0301". Must be empty or an
    /// even number of ASCII digits, so that "030" is refused rather than
    /// silently matching half a level.
    pub category_prefix: String,
    /// `None` = citywide.
    pub zone_code: Option<String>,
    pub lead_unit: String,
    pub co_units: Vec<String>,
    pub deadline_profile: Option<String>,
    pub priority: i32,
    /// Validity is half-open: `[valid_from, valid_to)`; `None` = unbounded.
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub active: bool,
}

/// Why a rule that matches place and category cannot be used at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    Inactive,
    NotYetValid(DateTime<Utc>),
    Expired(DateTime<Utc>),
}

impl Rule {
    /// `Ok` when the rule can decide at `at`.
    pub(crate) fn usable_at(&self, at: DateTime<Utc>) -> Result<(), Unusable> {
        if !self.active {
            return Err(Unusable::Inactive);
        }
        if let Some(from) = self.valid_from
            && at < from
        {
            return Err(Unusable::NotYetValid(from));
        }
        if let Some(to) = self.valid_to
            && at >= to
        {
            return Err(Unusable::Expired(to));
        }
        Ok(())
    }

    /// True when `[valid_from, valid_to)` contains no instant.
    pub(crate) fn window_is_empty(&self) -> bool {
        matches!((self.valid_from, self.valid_to), (Some(from), Some(to)) if from >= to)
    }

    /// True when some instant is in both half-open validity windows.
    pub(crate) fn window_overlaps(&self, other: &Rule) -> bool {
        let starts_before_other_ends = match (self.valid_from, other.valid_to) {
            (Some(from), Some(to)) => from < to,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.valid_from, self.valid_to) {
            (Some(from), Some(to)) => from < to,
            _ => true,
        };
        !self.window_is_empty()
            && !other.window_is_empty()
            && starts_before_other_ends
            && other_starts_before_self_ends
    }

    /// Whether the rule sends cases to `unit`, as lead or co-unit.
    pub fn routes_to(&self, unit: &str) -> bool {
        self.lead_unit == unit || self.co_units.iter().any(|c| c == unit)
    }

    pub fn summary(&self) -> RuleSummary {
        RuleSummary {
            id: self.id,
            version: self.version,
            lead_unit: self.lead_unit.clone(),
            co_units: self.co_units.clone(),
            deadline_profile: self.deadline_profile.clone(),
            zone_code: self.zone_code.clone(),
            category_prefix: self.category_prefix.clone(),
            priority: self.priority,
        }
    }
}

/// The rule a decision used, as recorded on the case (rule id and version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleSummary {
    pub id: Uuid,
    pub version: i32,
    pub lead_unit: String,
    pub co_units: Vec<String>,
    pub deadline_profile: Option<String>,
    pub zone_code: Option<String>,
    pub category_prefix: String,
    pub priority: i32,
}

/// "" or whole two-digit levels of ASCII digits: what the table builds from.
/// Saving a rule holds it to the stricter `code::is_category_prefix` (a 大类
/// or 小类 code); this stays looser so rules stored before that still load.
pub(crate) fn is_valid_category_prefix(prefix: &str) -> bool {
    prefix.len().is_multiple_of(2) && prefix.bytes().all(|b| b.is_ascii_digit())
}

/// The prefixes of `category` a rule may carry, shortest first: "0301" →
/// "", "03", "0301". Only whole levels, so a rule "030" (refused at build
/// anyway) could never match.
pub(crate) fn category_levels(category: &str) -> impl Iterator<Item = &str> {
    (0..=category.len())
        .step_by(2)
        .filter_map(move |len| category.get(..len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, 0, 0, 0)
            .single()
            .expect("valid test date")
    }

    #[test]
    fn a_rule_routes_to_its_lead_and_co_units_only() {
        let mut r = rule(None, None, true);
        r.lead_unit = "LEAD".into();
        r.co_units = vec!["CO-1".into(), "CO-2".into()];
        assert!(r.routes_to("LEAD"));
        assert!(r.routes_to("CO-2"));
        assert!(!r.routes_to("CO"));
        assert!(!r.routes_to("OTHER"));
    }

    fn rule(from: Option<u32>, to: Option<u32>, active: bool) -> Rule {
        Rule {
            id: Uuid::nil(),
            version: 1,
            category_prefix: "03".into(),
            zone_code: None,
            lead_unit: "城管局".into(),
            co_units: vec![],
            deadline_profile: None,
            priority: 0,
            valid_from: from.map(t),
            valid_to: to.map(t),
            active,
        }
    }

    #[test]
    fn usable_at() {
        let cases = [
            ("unbounded", rule(None, None, true), 10, Ok(())),
            (
                "inactive",
                rule(None, None, false),
                10,
                Err(Unusable::Inactive),
            ),
            ("from is inclusive", rule(Some(10), None, true), 10, Ok(())),
            (
                "before from",
                rule(Some(10), None, true),
                9,
                Err(Unusable::NotYetValid(t(10))),
            ),
            (
                "to is exclusive",
                rule(None, Some(10), true),
                10,
                Err(Unusable::Expired(t(10))),
            ),
            ("just before to", rule(None, Some(10), true), 9, Ok(())),
            ("inside window", rule(Some(5), Some(10), true), 7, Ok(())),
            (
                "inactive wins over window",
                rule(Some(5), Some(10), false),
                1,
                Err(Unusable::Inactive),
            ),
        ];
        for (name, rule, day, expected) in cases {
            assert_eq!(rule.usable_at(t(day)), expected, "{name}");
        }
    }

    #[test]
    fn windows_overlap() {
        let cases = [
            ("both unbounded", (None, None), (None, None), true),
            (
                "touching [1,5) [5,9)",
                (Some(1), Some(5)),
                (Some(5), Some(9)),
                false,
            ),
            (
                "overlapping [1,6) [5,9)",
                (Some(1), Some(6)),
                (Some(5), Some(9)),
                true,
            ),
            (
                "open end vs later",
                (Some(1), None),
                (Some(20), Some(21)),
                true,
            ),
            (
                "open start vs earlier end",
                (None, Some(3)),
                (Some(3), None),
                false,
            ),
            ("nested", (Some(1), Some(20)), (Some(5), Some(6)), true),
            ("empty window", (Some(5), Some(5)), (None, None), false),
        ];
        for (name, (af, at), (bf, bt), expected) in cases {
            let a = rule(af, at, true);
            let b = rule(bf, bt, true);
            assert_eq!(a.window_overlaps(&b), expected, "{name}");
            assert_eq!(b.window_overlaps(&a), expected, "{name} (swapped)");
        }
    }

    #[test]
    fn category_prefixes() {
        let cases = [
            ("", true),
            ("03", true),
            ("0301", true),
            ("030", false),
            ("0a", false),
            ("０３", false),
        ];
        for (prefix, valid) in cases {
            assert_eq!(is_valid_category_prefix(prefix), valid, "{prefix}");
        }
        fn levels(c: &str) -> Vec<&str> {
            category_levels(c).collect()
        }
        assert_eq!(levels("0301"), ["", "03", "0301"]);
        assert_eq!(levels("03"), ["", "03"]);
        assert_eq!(levels("030"), ["", "03"]);
        assert_eq!(levels(""), [""]);
        // A multi-byte category never panics on a char boundary (and matches no
        // rule, since stored prefixes are ASCII digits).
        assert_eq!(levels("0３"), ["", "0３"]);
    }
}
