//! `explain`: why a decision came out the way it did, for
//! `POST /api/v1/routing/preview` and for operators checking a rule change.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::rule::{RuleSummary, Unusable};
use super::table::{Rank, RoutingTable};
use super::zone::{ZoneKind, ZoneSummary};
use crate::domain::geo::LatLon;

/// A decision with every rule that matched place and category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub category: String,
    pub at: DateTime<Utc>,
    /// Every zone containing the point, largest first.
    pub zone_path: Vec<ZoneSummary>,
    /// The winner first, then the rules that lost in precedence order, then
    /// those that could not take part (inactive, outside validity).
    pub candidates: Vec<Candidate>,
    pub winner: Option<RuleSummary>,
    /// As in [`super::Decision::fallback`].
    pub fallback: Option<String>,
}

/// One rule whose category prefix and zone match the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub rule: RuleSummary,
    pub outcome: Outcome,
    /// `outcome` in words, e.g. "lower priority 10 < 20".
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Winner,
    Lost { reason: LossReason },
    Inactive,
    NotYetValid { valid_from: DateTime<Utc> },
    Expired { valid_to: DateTime<Utc> },
}

/// The first precedence level on which a rule lost to the winner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LossReason {
    LowerPriority {
        priority: i32,
        winner_priority: i32,
    },
    LargerZone {
        zone: Scope,
        winner_zone: Scope,
    },
    ShorterCategoryPrefix {
        category_prefix: String,
        winner_category_prefix: String,
    },
    /// Equal areas: a shared border, or zones of identical size.
    LaterZoneCode {
        zone_code: Option<String>,
        winner_zone_code: Option<String>,
    },
    /// Same priority, zone and prefix; `RoutingTable::conflict_with` refuses
    /// to save such a pair when their validity overlaps.
    LaterRuleId {
        id: Uuid,
        winner_id: Uuid,
    },
}

/// Where a rule applies, with the size that ranked it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    Citywide,
    Zone {
        code: String,
        kind: ZoneKind,
        area_km2: f64,
    },
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Citywide => f.write_str("citywide"),
            Scope::Zone {
                code,
                kind,
                area_km2,
            } => write!(f, "{} {code} {} km²", kind.as_str(), km2(*area_km2)),
        }
    }
}

/// Three significant digits: "3.21", "0.0402", "812".
pub(super) fn km2(value: f64) -> String {
    let magnitude = value.abs().log10().floor();
    // NaN and infinities saturate the cast; clamp keeps the precision sane.
    let decimals = (2.0 - magnitude).clamp(0.0, 9.0) as usize;
    format!("{value:.decimals$}")
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossReason::LowerPriority {
                priority,
                winner_priority,
            } => write!(f, "lower priority {priority} < {winner_priority}"),
            LossReason::LargerZone { zone, winner_zone } => {
                write!(f, "larger zone ({zone} vs {winner_zone})")
            }
            LossReason::ShorterCategoryPrefix {
                category_prefix,
                winner_category_prefix,
            } => write!(
                f,
                "shorter category prefix {category_prefix:?} vs {winner_category_prefix:?}"
            ),
            LossReason::LaterZoneCode {
                zone_code,
                winner_zone_code,
            } => write!(
                f,
                "equal-area zone {} sorts after {}",
                zone_code.as_deref().unwrap_or("(citywide)"),
                winner_zone_code.as_deref().unwrap_or("(citywide)")
            ),
            LossReason::LaterRuleId { id, winner_id } => write!(
                f,
                "same priority, zone and category prefix: rule id {id} sorts after {winner_id}"
            ),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Winner => f.write_str("wins"),
            Outcome::Lost { reason } => reason.fmt(f),
            Outcome::Inactive => f.write_str("inactive"),
            Outcome::NotYetValid { valid_from } => {
                write!(f, "not valid yet: valid from {}", valid_from.to_rfc3339())
            }
            Outcome::Expired { valid_to } => {
                write!(f, "expired: valid until {}", valid_to.to_rfc3339())
            }
        }
    }
}

impl RoutingTable {
    /// Like [`RoutingTable::decide`], with every matching rule and why it did
    /// or did not win. Not on the hot path: it allocates freely.
    pub fn explain(&self, p: LatLon, category: &str, at: DateTime<Utc>) -> Explanation {
        let zones = self.containing_zones(p);
        let winner = self.best_rule(&zones, category, at);
        let winner_rank = winner.map(|w| self.rank(w));

        // (group: 0 winner, 1 lost, 2 unusable; rank; candidate)
        let mut ranked: Vec<(u8, Rank<'_>, Candidate)> = self
            .matching_buckets(&zones, category)
            .flatten()
            .map(|&index| {
                let index = index as usize;
                let rank = self.rank(index);
                let (group, outcome) = match (self.rules[index].rule.usable_at(at), winner_rank) {
                    (Err(Unusable::Inactive), _) => (2, Outcome::Inactive),
                    (Err(Unusable::NotYetValid(valid_from)), _) => {
                        (2, Outcome::NotYetValid { valid_from })
                    }
                    (Err(Unusable::Expired(valid_to)), _) => (2, Outcome::Expired { valid_to }),
                    (Ok(()), Some(w)) if Some(index) != winner => (
                        1,
                        Outcome::Lost {
                            reason: self.loss_reason(&rank, &w),
                        },
                    ),
                    // A usable matching rule with no winner cannot happen
                    // (best_rule would have picked it), so this is the winner.
                    (Ok(()), _) => (0, Outcome::Winner),
                };
                let candidate = Candidate {
                    rule: self.rules[index].rule.summary(),
                    message: outcome.to_string(),
                    outcome,
                };
                (group, rank, candidate)
            })
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.precedence(&b.1)));

        Explanation {
            category: category.to_owned(),
            at,
            zone_path: zones
                .iter()
                .map(|&i| self.zones[i as usize].summary())
                .collect(),
            candidates: ranked.into_iter().map(|(_, _, c)| c).collect(),
            winner: winner.map(|w| self.rules[w].rule.summary()),
            fallback: match winner {
                Some(_) => None,
                None => self.fallback(&zones),
            },
        }
    }

    /// The first precedence level on which `loser` differs from `winner`.
    fn loss_reason(&self, loser: &Rank<'_>, winner: &Rank<'_>) -> LossReason {
        if loser.priority != winner.priority {
            LossReason::LowerPriority {
                priority: loser.priority,
                winner_priority: winner.priority,
            }
        } else if loser.area_m2.total_cmp(&winner.area_m2) != Ordering::Equal {
            LossReason::LargerZone {
                zone: self.scope(loser.zone_code),
                winner_zone: self.scope(winner.zone_code),
            }
        } else if loser.category_prefix.len() != winner.category_prefix.len() {
            LossReason::ShorterCategoryPrefix {
                category_prefix: loser.category_prefix.to_owned(),
                winner_category_prefix: winner.category_prefix.to_owned(),
            }
        } else if loser.zone_code != winner.zone_code {
            LossReason::LaterZoneCode {
                zone_code: loser.zone_code.map(str::to_owned),
                winner_zone_code: winner.zone_code.map(str::to_owned),
            }
        } else {
            LossReason::LaterRuleId {
                id: loser.id,
                winner_id: winner.id,
            }
        }
    }

    fn scope(&self, zone_code: Option<&str>) -> Scope {
        match zone_code.and_then(|code| self.zone(code)) {
            None => Scope::Citywide,
            Some(zone) => Scope::Zone {
                code: zone.code().to_owned(),
                kind: zone.kind(),
                area_km2: zone.area_m2() / 1e6,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn km2_has_three_significant_digits() {
        let cases = [
            (3.2149, "3.21"),
            (0.040_21, "0.0402"),
            (812.4, "812"),
            (1234.0, "1234"),
            (0.0, "0.000000000"),
        ];
        for (value, text) in cases {
            assert_eq!(km2(value), text, "{value}");
        }
    }
}
