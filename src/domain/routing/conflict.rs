//! Ties that precedence would settle only by an arbitrary key (zone code or
//! rule id). They are refused when a rule is saved (409) and listed for
//! admins, because such a rule's owner cannot predict when it applies.

use std::fmt;

use geo::{BoundingRect, Intersects, Relate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::rule::Rule;
use super::table::{CITYWIDE, RoutingTable, find_zone};

/// Two active rules with the same priority and category prefix, overlapping
/// validity, and either the same scope or overlapping zones of equal area.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Conflict {
    /// The rule being saved (`conflict_with`) or the smaller id of the pair
    /// (`conflicts`).
    pub rule_id: Uuid,
    pub conflicting_rule_id: Uuid,
    pub category_prefix: String,
    pub priority: i32,
    pub kind: ConflictKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConflictKind {
    /// Same zone, or both citywide (`zone_code: None`): the rule id decides.
    SameScope { zone_code: Option<String> },
    /// Different zones with exactly the same area whose interiors overlap:
    /// inside the overlap the zone code decides.
    EqualAreaOverlap {
        zone_code: String,
        conflicting_zone_code: String,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {} ties with rule {}: same priority {}, category prefix {:?}, overlapping validity, ",
            self.rule_id, self.conflicting_rule_id, self.priority, self.category_prefix
        )?;
        match &self.kind {
            ConflictKind::SameScope { zone_code: None } => f.write_str("both citywide"),
            ConflictKind::SameScope {
                zone_code: Some(code),
            } => write!(f, "same zone {code}"),
            ConflictKind::EqualAreaOverlap {
                zone_code,
                conflicting_zone_code,
            } => write!(
                f,
                "overlapping zones {zone_code} and {conflicting_zone_code} of equal area"
            ),
        }
    }
}

/// True when both rules can apply at the same instant with equal precedence
/// up to the arbitrary keys. The caller checks the scope.
fn tied(a: &Rule, b: &Rule) -> bool {
    a.id != b.id
        && a.active
        && b.active
        && a.priority == b.priority
        && a.category_prefix == b.category_prefix
        && a.window_overlaps(b)
}

impl RoutingTable {
    /// The rule that `rule` (new or edited; a table rule with the same id is
    /// ignored) would tie with, if any. Same scope is checked first; the
    /// answer names the smallest conflicting id of that kind. A rule naming
    /// a zone the table does not have cannot conflict (saving it fails on the
    /// unknown zone instead).
    pub fn conflict_with(&self, rule: &Rule) -> Option<Conflict> {
        let &prefix_id = self.prefix_ids.get(&rule.category_prefix)?;
        let zone = match &rule.zone_code {
            None => None,
            Some(code) => Some(find_zone(&self.zones, code)?),
        };
        let tied_in = |slot: u32| {
            self.buckets
                .get(&(slot, prefix_id))?
                .iter()
                .map(|&i| &self.rules[i as usize].rule)
                .find(|other| tied(rule, other))
        };
        let conflict = |other: &Rule, kind| Conflict {
            rule_id: rule.id,
            conflicting_rule_id: other.id,
            category_prefix: rule.category_prefix.clone(),
            priority: rule.priority,
            kind,
        };
        if let Some(other) = tied_in(zone.unwrap_or(CITYWIDE)) {
            return Some(conflict(
                other,
                ConflictKind::SameScope {
                    zone_code: rule.zone_code.clone(),
                },
            ));
        }
        let zone = zone?;
        self.equal_area_overlaps(zone)
            .into_iter()
            .find_map(|partner| {
                tied_in(partner).map(|other| {
                    conflict(
                        other,
                        ConflictKind::EqualAreaOverlap {
                            zone_code: self.zones[zone as usize].code().to_owned(),
                            conflicting_zone_code: self.zones[partner as usize].code().to_owned(),
                        },
                    )
                })
            })
    }

    /// Every tied pair in the table, each once, ordered by ids.
    pub fn conflicts(&self) -> Vec<Conflict> {
        let mut found = Vec::new();
        for bucket in self.buckets.values() {
            for (i, &a) in bucket.iter().enumerate() {
                let a = &self.rules[a as usize].rule;
                // Buckets are sorted by priority, so ties are adjacent runs.
                for &b in &bucket[i + 1..] {
                    let b = &self.rules[b as usize].rule;
                    if b.priority != a.priority {
                        break;
                    }
                    if tied(a, b) {
                        let kind = ConflictKind::SameScope {
                            zone_code: a.zone_code.clone(),
                        };
                        found.push(ordered(a, b, kind));
                    }
                }
            }
        }
        for (za, zb) in self.equal_area_pairs() {
            for &prefix_id in self.prefix_ids.values() {
                let (Some(rules_a), Some(rules_b)) = (
                    self.buckets.get(&(za, prefix_id)),
                    self.buckets.get(&(zb, prefix_id)),
                ) else {
                    continue;
                };
                for &a in rules_a {
                    for &b in rules_b {
                        let (a, b) = (&self.rules[a as usize].rule, &self.rules[b as usize].rule);
                        if tied(a, b) {
                            let (code_a, code_b) = (
                                self.zones[za as usize].code(),
                                self.zones[zb as usize].code(),
                            );
                            let kind = if a.id < b.id {
                                (code_a, code_b)
                            } else {
                                (code_b, code_a)
                            };
                            let kind = ConflictKind::EqualAreaOverlap {
                                zone_code: kind.0.to_owned(),
                                conflicting_zone_code: kind.1.to_owned(),
                            };
                            found.push(ordered(a, b, kind));
                        }
                    }
                }
            }
        }
        found.sort_by_key(|c| (c.rule_id, c.conflicting_rule_id));
        found
    }

    /// Other zones with exactly the same area as `zone` whose interiors
    /// overlap it, in code order.
    fn equal_area_overlaps(&self, zone: u32) -> Vec<u32> {
        let this = &self.zones[zone as usize];
        let mut partners: Vec<u32> = self
            .zones_in_bbox_of(zone)
            .filter(|&other| {
                other != zone
                    && self.zones[other as usize].area_m2().to_bits() == this.area_m2().to_bits()
                    && self.interiors_overlap(zone, other)
            })
            .collect();
        partners.sort_unstable();
        partners
    }

    /// All (a, b), a < b, of overlapping equal-area zones. Equal areas are
    /// found by sorting, so only zones in the same run are compared.
    fn equal_area_pairs(&self) -> Vec<(u32, u32)> {
        let mut by_area: Vec<u32> = (0u32..).take(self.zones.len()).collect();
        by_area.sort_by_key(|&z| (self.zones[z as usize].area_m2().to_bits(), z));
        let mut pairs = Vec::new();
        for run in by_area.chunk_by(|&a, &b| {
            self.zones[a as usize].area_m2().to_bits() == self.zones[b as usize].area_m2().to_bits()
        }) {
            for (i, &a) in run.iter().enumerate() {
                for &b in &run[i + 1..] {
                    if self.interiors_overlap(a, b) {
                        pairs.push((a, b));
                    }
                }
            }
        }
        pairs
    }

    /// A shared border is not an overlap: precedence settles border points by
    /// code by design, and adjacent grids of equal size are normal.
    fn interiors_overlap(&self, a: u32, b: u32) -> bool {
        let (a, b) = (
            self.zones[a as usize].geometry(),
            self.zones[b as usize].geometry(),
        );
        let boxes_meet = match (a.bounding_rect(), b.bounding_rect()) {
            (Some(ra), Some(rb)) => ra.intersects(&rb),
            _ => false,
        };
        if !boxes_meet {
            return false;
        }
        let matrix = a.relate(b);
        matrix.is_intersects() && !matrix.is_touches()
    }
}

/// A conflict with the smaller rule id first.
fn ordered(a: &Rule, b: &Rule, kind: ConflictKind) -> Conflict {
    let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
    Conflict {
        rule_id: first.id,
        conflicting_rule_id: second.id,
        category_prefix: first.category_prefix.clone(),
        priority: first.priority,
        kind,
    }
}
