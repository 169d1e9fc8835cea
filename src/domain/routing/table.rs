//! The immutable routing table: zones in an R-tree, rules indexed by
//! (zone, category prefix), and the decision.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use geo::{BoundingRect, Coord};
use rstar::{AABB, RTree, RTreeObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::geometry;
use super::rule::{Rule, RuleSummary, category_levels, is_valid_category_prefix};
use super::zone::{Zone, ZoneKind, ZoneSummary, is_grid_code};
use crate::domain::geo::LatLon;

/// Bucket key slot standing for "citywide" (zone indices are < `u32::MAX`,
/// since `build` refuses more zones than that).
pub(super) const CITYWIDE: u32 = u32::MAX;

/// Why a set of zones and rules cannot become a routing table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error("zone code {code} appears more than once")]
    DuplicateZone { code: String },
    #[error("zone {code} has an empty or zero-area geometry")]
    EmptyZone { code: String },
    #[error("zone {code} is a grid but its code is not a 15-digit GB/T 30428 unit-grid code")]
    InvalidGridCode { code: String },
    #[error("zone {code} names parent zone {parent_code}, which is not in the table")]
    UnknownParentZone { code: String, parent_code: String },
    #[error("too many zones ({count}); at most {max} are supported")]
    TooManyZones { count: usize, max: usize },
    #[error("rule {id} appears more than once")]
    DuplicateRule { id: Uuid },
    #[error("rule {id} names zone {zone_code}, which is not in the table")]
    UnknownZone { id: Uuid, zone_code: String },
    #[error(
        "rule {id} has category prefix {prefix:?}; it must be empty or whole two-digit levels such as \"03\" or \"0301\""
    )]
    InvalidCategoryPrefix { id: Uuid, prefix: String },
    #[error("rule {id} has an empty validity window: valid_from is not before valid_to")]
    EmptyValidity { id: Uuid },
}

/// The outcome of routing one report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// Every zone containing the point, largest first.
    pub zone_path: Vec<ZoneSummary>,
    /// The rule that decides, if any.
    pub winner: Option<RuleSummary>,
    /// Without a winner: the innermost district in the path (兜底), whose
    /// operators route the case by hand; `None` outside every district.
    pub fallback: Option<String>,
}

/// An R-tree entry: a zone's bounding box and its index in `zones`.
#[derive(Debug)]
struct ZoneBox {
    envelope: AABB<[f64; 2]>,
    zone: u32,
}

impl RTreeObject for ZoneBox {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

#[derive(Debug)]
pub(super) struct IndexedRule {
    pub(super) rule: Rule,
    /// Index in `zones`, `None` for citywide.
    pub(super) zone: Option<u32>,
    pub(super) prefix_id: u32,
}

/// Everything a rule is ranked on, in precedence order (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rank<'a> {
    pub(super) priority: i32,
    /// Citywide rules rank as an infinitely large zone.
    pub(super) area_m2: f64,
    pub(super) category_prefix: &'a str,
    pub(super) zone_code: Option<&'a str>,
    pub(super) id: Uuid,
}

impl Rank<'_> {
    /// `Less` when `self` beats `other`.
    pub(super) fn precedence(&self, other: &Rank<'_>) -> Ordering {
        other
            .priority
            .cmp(&self.priority)
            .then(self.area_m2.total_cmp(&other.area_m2))
            .then(other.category_prefix.len().cmp(&self.category_prefix.len()))
            .then(self.zone_code.cmp(&other.zone_code))
            .then(self.id.cmp(&other.id))
    }
}

/// Zones and rules, indexed for routing. Immutable: the service builds a new
/// table and swaps it in whole, so readers never lock.
#[derive(Debug)]
pub struct RoutingTable {
    /// Sorted by code, so that internal indices (and thus every order derived
    /// from them) do not depend on the order zones were given in.
    pub(super) zones: Vec<Zone>,
    tree: RTree<ZoneBox>,
    /// Sorted by id.
    pub(super) rules: Vec<IndexedRule>,
    /// Distinct category prefixes of the rules → small ids, so that a bucket
    /// key is two integers and lookups hash no strings but the ≤ 3 levels of
    /// the asked category.
    pub(super) prefix_ids: HashMap<String, u32>,
    /// (zone index or `CITYWIDE`, prefix id) → rule indices, sorted by
    /// priority descending then id ascending. Within one bucket zone and prefix
    /// are equal, so this is the full precedence order and the first usable
    /// rule is the bucket's best.
    pub(super) buckets: HashMap<(u32, u32), Box<[u32]>>,
}

impl RoutingTable {
    /// Validates and indexes `zones` and `rules`. Rules that can never be used
    /// (inactive, expired) are kept: `explain` reports them.
    pub fn build(mut zones: Vec<Zone>, mut rules: Vec<Rule>) -> Result<RoutingTable, BuildError> {
        let max = CITYWIDE as usize;
        if zones.len() >= max {
            return Err(BuildError::TooManyZones {
                count: zones.len(),
                max: max - 1,
            });
        }
        zones.sort_by(|a, b| a.code().cmp(b.code()));
        if let Some(pair) = zones.windows(2).find(|w| w[0].code() == w[1].code()) {
            return Err(BuildError::DuplicateZone {
                code: pair[0].code().to_owned(),
            });
        }
        let mut boxes = Vec::with_capacity(zones.len());
        for (index, zone) in (0u32..).zip(&zones) {
            let code = || zone.code().to_owned();
            // A NaN area fails `> 0.0` as well.
            let rect = zone.geometry().bounding_rect();
            let Some(rect) = rect.filter(|_| zone.area_m2() > 0.0) else {
                return Err(BuildError::EmptyZone { code: code() });
            };
            if zone.kind() == ZoneKind::Grid && !is_grid_code(zone.code()) {
                return Err(BuildError::InvalidGridCode { code: code() });
            }
            if let Some(parent) = zone.parent_code()
                && find_zone(&zones, parent).is_none()
            {
                return Err(BuildError::UnknownParentZone {
                    code: code(),
                    parent_code: parent.to_owned(),
                });
            }
            boxes.push(ZoneBox {
                envelope: AABB::from_corners(rect.min().into(), rect.max().into()),
                zone: index,
            });
        }
        let tree = RTree::bulk_load(boxes);

        rules.sort_by_key(|r| r.id);
        if let Some(pair) = rules.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(BuildError::DuplicateRule { id: pair[0].id });
        }
        let mut prefix_ids: HashMap<String, u32> = HashMap::new();
        let mut indexed = Vec::with_capacity(rules.len());
        for rule in rules {
            if !is_valid_category_prefix(&rule.category_prefix) {
                return Err(BuildError::InvalidCategoryPrefix {
                    id: rule.id,
                    prefix: rule.category_prefix,
                });
            }
            if rule.window_is_empty() {
                return Err(BuildError::EmptyValidity { id: rule.id });
            }
            let zone = match &rule.zone_code {
                None => None,
                Some(code) => match find_zone(&zones, code) {
                    Some(index) => Some(index),
                    None => {
                        return Err(BuildError::UnknownZone {
                            id: rule.id,
                            zone_code: code.clone(),
                        });
                    }
                },
            };
            let next_id = u32::try_from(prefix_ids.len()).unwrap_or(u32::MAX);
            let prefix_id = *prefix_ids
                .entry(rule.category_prefix.clone())
                .or_insert(next_id);
            indexed.push(IndexedRule {
                rule,
                zone,
                prefix_id,
            });
        }

        let mut buckets: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for (index, rule) in (0u32..).zip(&indexed) {
            let slot = rule.zone.unwrap_or(CITYWIDE);
            buckets
                .entry((slot, rule.prefix_id))
                .or_default()
                .push(index);
        }
        let buckets = buckets
            .into_iter()
            .map(|(key, mut list)| {
                // Stable sort on rules already in id order keeps ids ascending
                // among equal priorities.
                list.sort_by_key(|&r| std::cmp::Reverse(indexed[r as usize].rule.priority));
                (key, list.into_boxed_slice())
            })
            .collect();

        Ok(RoutingTable {
            zones,
            tree,
            rules: indexed,
            prefix_ids,
            buckets,
        })
    }

    /// The zone with this code.
    pub fn zone(&self, code: &str) -> Option<&Zone> {
        find_zone(&self.zones, code).map(|i| &self.zones[i as usize])
    }

    /// Every rule of the table (current versions, active or not), by id.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|indexed| &indexed.rule)
    }

    /// The rule with this id.
    pub fn rule(&self, id: Uuid) -> Option<&Rule> {
        self.find_rule(id).map(|i| &self.rules[i].rule)
    }

    pub(super) fn find_rule(&self, id: Uuid) -> Option<usize> {
        self.rules.binary_search_by_key(&id, |r| r.rule.id).ok()
    }

    /// Every zone containing `p` (boundary included), largest area first; equal
    /// areas in code order.
    pub fn zone_path(&self, p: LatLon) -> Vec<&Zone> {
        self.containing_zones(p)
            .into_iter()
            .map(|i| &self.zones[i as usize])
            .collect()
    }

    /// Indices of the zones whose bounding boxes meet that of `zone`
    /// (including `zone` itself).
    pub(super) fn zones_in_bbox_of(&self, zone: u32) -> impl Iterator<Item = u32> + '_ {
        let envelope = self.zones[zone as usize]
            .geometry()
            .bounding_rect()
            .map(|r| AABB::from_corners(r.min().into(), r.max().into()));
        envelope.into_iter().flat_map(move |envelope| {
            self.tree
                .locate_in_envelope_intersecting(&envelope)
                .map(|b| b.zone)
        })
    }

    /// Indices of the zones containing `p`, in zone-path order.
    pub(super) fn containing_zones(&self, p: LatLon) -> Vec<u32> {
        let point = Coord { x: p.lon, y: p.lat };
        let mut found: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(&AABB::from_point([p.lon, p.lat]))
            .map(|b| b.zone)
            .filter(|&i| geometry::covers(self.zones[i as usize].geometry(), point))
            .collect();
        // Indices follow code order, so ties on area fall back to the code.
        found.sort_by(|&a, &b| {
            let (za, zb) = (&self.zones[a as usize], &self.zones[b as usize]);
            zb.area_m2().total_cmp(&za.area_m2()).then(a.cmp(&b))
        });
        found
    }

    /// Routes a report of `category` at `p`, with the rules valid at `at`.
    pub fn decide(&self, p: LatLon, category: &str, at: DateTime<Utc>) -> Decision {
        let zones = self.containing_zones(p);
        let winner = self.best_rule(&zones, category, at);
        Decision {
            zone_path: zones
                .iter()
                .map(|&i| self.zones[i as usize].summary())
                .collect(),
            winner: winner.map(|r| self.rules[r].rule.summary()),
            fallback: match winner {
                Some(_) => None,
                None => self.fallback(&zones),
            },
        }
    }

    /// The innermost district of a zone path.
    pub(super) fn fallback(&self, zones: &[u32]) -> Option<String> {
        zones
            .iter()
            .rev()
            .map(|&i| &self.zones[i as usize])
            .find(|z| z.kind() == ZoneKind::District)
            .map(|z| z.code().to_owned())
    }

    /// The rule buckets that can match `category` at a place inside `zones`:
    /// citywide and each zone, for each whole-level prefix of the category.
    pub(super) fn matching_buckets<'a>(
        &'a self,
        zones: &'a [u32],
        category: &'a str,
    ) -> impl Iterator<Item = &'a [u32]> + 'a {
        category_levels(category)
            .filter_map(|prefix| self.prefix_ids.get(prefix).copied())
            .flat_map(move |prefix_id| {
                std::iter::once(CITYWIDE)
                    .chain(zones.iter().copied())
                    .filter_map(move |slot| self.buckets.get(&(slot, prefix_id)))
            })
            .map(|bucket| &bucket[..])
    }

    /// Index of the winning rule, if any.
    pub(super) fn best_rule(
        &self,
        zones: &[u32],
        category: &str,
        at: DateTime<Utc>,
    ) -> Option<usize> {
        let mut best: Option<(usize, Rank<'_>)> = None;
        for bucket in self.matching_buckets(zones, category) {
            let Some(index) = bucket
                .iter()
                .map(|&r| r as usize)
                .find(|&r| self.rules[r].rule.usable_at(at).is_ok())
            else {
                continue;
            };
            let rank = self.rank(index);
            if best
                .as_ref()
                .is_none_or(|(_, b)| rank.precedence(b) == Ordering::Less)
            {
                best = Some((index, rank));
            }
        }
        best.map(|(index, _)| index)
    }

    pub(super) fn rank(&self, index: usize) -> Rank<'_> {
        let entry = &self.rules[index];
        let zone = entry.zone.map(|z| &self.zones[z as usize]);
        Rank {
            priority: entry.rule.priority,
            area_m2: zone.map_or(f64::INFINITY, Zone::area_m2),
            category_prefix: &entry.rule.category_prefix,
            zone_code: zone.map(Zone::code),
            id: entry.rule.id,
        }
    }
}

/// Index of the zone with `code` in code-sorted `zones`.
pub(super) fn find_zone(zones: &[Zone], code: &str) -> Option<u32> {
    zones
        .binary_search_by(|z| z.code().cmp(code))
        .ok()
        .and_then(|i| u32::try_from(i).ok())
}
