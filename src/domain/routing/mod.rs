//! Ownership routing (谁主管、谁负责): which unit handles a report of a given
//! category at a given point, and why.
//!
//! Pure: no I/O and no clock; the instant a rule must be valid at is passed in.
//!
//! # Zones and borders
//!
//! A zone's polygon is closed: a point exactly on its boundary belongs to it.
//! A point on the edge shared by two grids, or on a vertex shared by several,
//! is therefore in all of them, and the rule precedence below picks one; the
//! result does not depend on the order zones were loaded in. The test is
//! exact (robust orientation predicates), not within an epsilon. Zone areas
//! are geodesic (WGS84 ellipsoid, m²); only their relative size matters.
//!
//! # Rule precedence
//!
//! A rule is a candidate for (point, category, instant) when it is active,
//! valid at the instant (`[valid_from, valid_to)`), its category prefix is a
//! whole-level prefix of the category ("" ⊂ "03" ⊂ "0301"), and it is
//! citywide or its zone contains the point. Among candidates the winner is the
//! first by:
//!
//! 1. highest `priority`;
//! 2. smallest zone area (citywide counts as infinitely large);
//! 3. longest category prefix;
//! 4. smallest zone code (reachable only on a shared border or for zones of
//!    exactly equal area);
//! 5. smallest rule id.
//!
//! This is a total order, so every decision is deterministic. Levels 4 and 5
//! are arbitrary: `RoutingTable::conflict_with` refuses to save a rule that
//! would be decided by them (same priority and prefix, overlapping validity,
//! same scope or overlapping equal-area zones), and `RoutingTable::conflicts`
//! lists such pairs already stored. Shared borders are not refused: they are
//! lines, and every city has them.
//!
//! Without a winner the case waits for an operator of the innermost district
//! containing the point (兜底): `Decision::fallback`.
//!
//! # Cost
//!
//! `decide` queries an R-tree of zone bounding boxes, tests the few candidate
//! polygons exactly, then looks up (zone, prefix) buckets of rules pre-sorted
//! by precedence: it never scans all zones or all rules.

mod conflict;
mod explain;
mod geometry;
mod rule;
mod table;
mod zone;

#[cfg(test)]
mod tests;

pub use conflict::{Conflict, ConflictKind};
pub use explain::{Candidate, Explanation, LossReason, Outcome, Scope};
pub use geometry::{GeometryError, parse_zone_geometry};
pub use rule::{Rule, RuleSummary};
pub use table::{BuildError, Decision, RoutingTable};
pub use zone::{Zone, ZoneKind, ZoneSummary};
