//! Table-level tests: zone paths, borders, precedence, validity, fallback,
//! explanations and conflicts on a small hand-made city.

use chrono::{DateTime, Duration, TimeZone, Utc};
use geo::{Coord, LineString, MultiPolygon, Polygon};
use uuid::Uuid;

use super::*;
use crate::domain::geo::LatLon;

const D1: &str = "320102";
const D2: &str = "320104";
const S1: &str = "320102001";
const C1: &str = "320102001001";
const G1: &str = "320102001001001";
const G2: &str = "320102001001002";
const G3: &str = "320102001001003";
const G4: &str = "320102001001004";
/// Two compounds drawn with the very same polygon (a real import mistake),
/// hence exactly equal areas.
const TWIN_A: &str = "compound-a";
const TWIN_B: &str = "compound-b";

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    let ring: LineString<f64> = vec![
        Coord { x: x0, y: y0 },
        Coord { x: x1, y: y0 },
        Coord { x: x1, y: y1 },
        Coord { x: x0, y: y1 },
        Coord { x: x0, y: y0 },
    ]
    .into();
    MultiPolygon::new(vec![Polygon::new(ring, vec![])])
}

fn zone(code: &str, kind: ZoneKind, parent: Option<&str>, geometry: MultiPolygon<f64>) -> Zone {
    Zone::new(
        code,
        format!("name of {code}"),
        kind,
        parent.map(str::to_owned),
        geometry,
    )
}

/// Two districts side by side; in D1 a street, in it a community split into
/// four 0.025° grids meeting at (120.025, 31.025); two identical compounds.
fn city() -> Vec<Zone> {
    vec![
        zone(D1, ZoneKind::District, None, rect(120.0, 31.0, 120.2, 31.2)),
        zone(D2, ZoneKind::District, None, rect(120.2, 31.0, 120.4, 31.2)),
        zone(
            S1,
            ZoneKind::Street,
            Some(D1),
            rect(120.0, 31.0, 120.1, 31.1),
        ),
        zone(
            C1,
            ZoneKind::Community,
            Some(S1),
            rect(120.0, 31.0, 120.05, 31.05),
        ),
        zone(
            G1,
            ZoneKind::Grid,
            Some(C1),
            rect(120.0, 31.0, 120.025, 31.025),
        ),
        zone(
            G2,
            ZoneKind::Grid,
            Some(C1),
            rect(120.025, 31.0, 120.05, 31.025),
        ),
        zone(
            G3,
            ZoneKind::Grid,
            Some(C1),
            rect(120.0, 31.025, 120.025, 31.05),
        ),
        zone(
            G4,
            ZoneKind::Grid,
            Some(C1),
            rect(120.025, 31.025, 120.05, 31.05),
        ),
        zone(
            TWIN_A,
            ZoneKind::Compound,
            Some(D2),
            rect(120.3, 31.1, 120.31, 31.11),
        ),
        zone(
            TWIN_B,
            ZoneKind::Compound,
            Some(D2),
            rect(120.3, 31.1, 120.31, 31.11),
        ),
    ]
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn rule(n: u128, prefix: &str, zone: Option<&str>, priority: i32) -> Rule {
    Rule {
        id: id(n),
        version: 1,
        category_prefix: prefix.to_owned(),
        zone_code: zone.map(str::to_owned),
        lead_unit: format!("unit-{n}"),
        co_units: vec![format!("co-{n}")],
        deadline_profile: None,
        priority,
        valid_from: None,
        valid_to: None,
        active: true,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0)
        .single()
        .expect("valid test instant")
}

fn p(lon: f64, lat: f64) -> LatLon {
    LatLon { lat, lon }
}

/// Inside G1, C1, S1, D1.
fn in_g1() -> LatLon {
    p(120.01, 31.01)
}

/// Inside both twin compounds, in D2.
fn in_twins() -> LatLon {
    p(120.305, 31.105)
}

fn table(rules: Vec<Rule>) -> RoutingTable {
    RoutingTable::build(city(), rules).unwrap_or_else(|e| panic!("fixture refused: {e}"))
}

fn codes(path: &[&Zone]) -> Vec<String> {
    path.iter().map(|z| z.code().to_owned()).collect()
}

fn winner(table: &RoutingTable, at: LatLon, category: &str) -> Option<Uuid> {
    table.decide(at, category, now()).winner.map(|w| w.id)
}

#[test]
fn build_errors() {
    let mut bad_grid = city();
    bad_grid.push(zone(
        "12345",
        ZoneKind::Grid,
        None,
        rect(121.0, 31.0, 121.1, 31.1),
    ));
    let mut duplicate = city();
    duplicate.push(zone(
        G1,
        ZoneKind::Grid,
        Some(C1),
        rect(121.0, 31.0, 121.1, 31.1),
    ));
    let mut empty = city();
    empty.push(zone(
        "empty",
        ZoneKind::Road,
        None,
        MultiPolygon::new(vec![]),
    ));
    let mut orphan = city();
    orphan.push(zone(
        "orphan",
        ZoneKind::Road,
        Some("nowhere"),
        rect(121.0, 31.0, 121.1, 31.1),
    ));
    let mut empty_window = rule(1, "03", None, 0);
    empty_window.valid_from = Some(now());
    empty_window.valid_to = Some(now());

    /// (name, zones, rules, expected error, its message)
    type Case<'a> = (&'a str, Vec<Zone>, Vec<Rule>, BuildError, &'a str);
    let cases: Vec<Case> = vec![
        (
            "duplicate zone",
            duplicate,
            vec![],
            BuildError::DuplicateZone { code: G1.into() },
            "zone code 320102001001001 appears more than once",
        ),
        (
            "empty zone",
            empty,
            vec![],
            BuildError::EmptyZone {
                code: "empty".into(),
            },
            "zone empty has an empty or zero-area geometry",
        ),
        (
            "grid code not 15 digits",
            bad_grid,
            vec![],
            BuildError::InvalidGridCode {
                code: "12345".into(),
            },
            "zone 12345 is a grid but its code is not a 15-digit GB/T 30428 unit-grid code",
        ),
        (
            "unknown parent",
            orphan,
            vec![],
            BuildError::UnknownParentZone {
                code: "orphan".into(),
                parent_code: "nowhere".into(),
            },
            "zone orphan names parent zone nowhere, which is not in the table",
        ),
        (
            "duplicate rule",
            city(),
            vec![rule(1, "03", None, 0), rule(1, "04", None, 0)],
            BuildError::DuplicateRule { id: id(1) },
            "rule 00000000-0000-0000-0000-000000000001 appears more than once",
        ),
        (
            "unknown zone",
            city(),
            vec![rule(1, "03", Some("nowhere"), 0)],
            BuildError::UnknownZone {
                id: id(1),
                zone_code: "nowhere".into(),
            },
            "rule 00000000-0000-0000-0000-000000000001 names zone nowhere, which is not in the table",
        ),
        (
            "half-level prefix",
            city(),
            vec![rule(1, "030", None, 0)],
            BuildError::InvalidCategoryPrefix {
                id: id(1),
                prefix: "030".into(),
            },
            "rule 00000000-0000-0000-0000-000000000001 has category prefix \"030\"; \
             it must be empty or whole two-digit levels such as \"03\" or \"0301\"",
        ),
        (
            "empty validity window",
            city(),
            vec![empty_window],
            BuildError::EmptyValidity { id: id(1) },
            "rule 00000000-0000-0000-0000-000000000001 has an empty validity window: \
             valid_from is not before valid_to",
        ),
    ];
    for (name, zones, rules, expected, message) in cases {
        assert_eq!(
            RoutingTable::build(zones, rules).err(),
            Some(expected.clone()),
            "{name}"
        );
        assert_eq!(expected.to_string(), message, "{name}");
    }
}

#[test]
fn routing_table_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RoutingTable>();
}

#[test]
fn zone_path_is_largest_first() {
    let table = table(vec![]);
    let cases = [
        ("inside a grid", in_g1(), vec![D1, S1, C1, G1]),
        (
            "in the street outside the community",
            p(120.07, 31.07),
            vec![D1, S1],
        ),
        ("in the second district", p(120.3, 31.05), vec![D2]),
        (
            "in the twin compounds",
            in_twins(),
            vec![D2, TWIN_A, TWIN_B],
        ),
        ("outside the city", p(121.0, 31.0), vec![]),
        ("not a number", p(f64::NAN, 31.0), vec![]),
    ];
    for (name, point, expected) in cases {
        assert_eq!(codes(&table.zone_path(point)), expected, "{name}");
        let summary: Vec<String> = table
            .decide(point, "0301", now())
            .zone_path
            .into_iter()
            .map(|z| z.code)
            .collect();
        assert_eq!(summary, expected, "{name} (decision)");
    }
}

#[test]
fn border_points_belong_to_every_zone_they_touch() {
    let table = table(vec![]);
    let cases = [
        (
            "edge shared by G1 and G2",
            p(120.025, 31.01),
            vec![D1, S1, C1, G1, G2],
        ),
        (
            "vertex shared by four grids",
            p(120.025, 31.025),
            vec![D1, S1, C1, G1, G2, G3, G4],
        ),
        ("corner of the city", p(120.0, 31.0), vec![D1, S1, C1, G1]),
        (
            "edge shared by two districts",
            p(120.2, 31.15),
            vec![D1, D2],
        ),
    ];
    for (name, point, expected) in cases {
        let mut got = codes(&table.zone_path(point));
        // Order among equal-looking grids depends on their exact geodesic
        // areas; membership is what this test is about.
        got.sort();
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn border_decisions_do_not_depend_on_load_order() {
    // One rule per grid and per district, all alike but for the zone.
    let rules: Vec<Rule> = [G1, G2, G3, G4, D1, D2]
        .iter()
        .zip(1..)
        .map(|(code, n)| rule(n, "03", Some(code), 5))
        .collect();
    let points = [
        p(120.025, 31.01),
        p(120.025, 31.025),
        p(120.0125, 31.025),
        p(120.2, 31.15),
    ];
    let reference = RoutingTable::build(city(), rules.clone())
        .unwrap_or_else(|e| panic!("fixture refused: {e}"));
    let expected: Vec<Decision> = points
        .iter()
        .map(|&pt| reference.decide(pt, "0301", now()))
        .collect();
    for rotation in 0..city().len() {
        for reversed in [false, true] {
            let mut zones = city();
            zones.rotate_left(rotation);
            let mut rules = rules.clone();
            let shift = rotation % rules.len();
            rules.rotate_left(shift);
            if reversed {
                zones.reverse();
                rules.reverse();
            }
            let table = RoutingTable::build(zones, rules)
                .unwrap_or_else(|e| panic!("fixture refused: {e}"));
            for (point, expected) in points.iter().zip(&expected) {
                assert_eq!(&table.decide(*point, "0301", now()), expected);
            }
        }
    }
    // And the border winner is the one precedence names: the smallest grid
    // touching the point, or on equal areas the smallest code.
    for (point, decision) in points.iter().zip(&expected) {
        let best = reference
            .zone_path(*point)
            .into_iter()
            .min_by(|a, b| {
                a.area_m2()
                    .total_cmp(&b.area_m2())
                    .then(a.code().cmp(b.code()))
            })
            .map(|z| z.code().to_owned());
        let won = decision.winner.as_ref().and_then(|w| w.zone_code.clone());
        assert_eq!(won, best, "{point:?}");
    }
}

#[test]
fn each_tie_breaker_level() {
    let cases: Vec<(&str, Vec<Rule>, LatLon, &str, u128)> = vec![
        (
            "higher priority beats a smaller zone",
            vec![rule(1, "03", None, 20), rule(2, "0301", Some(G1), 10)],
            in_g1(),
            "0301",
            1,
        ),
        (
            "negative priority loses",
            vec![rule(1, "03", Some(G1), -1), rule(2, "03", None, 0)],
            in_g1(),
            "0301",
            2,
        ),
        (
            "smaller zone at equal priority",
            vec![
                rule(1, "03", Some(D1), 0),
                rule(2, "03", Some(G1), 0),
                rule(3, "03", Some(S1), 0),
            ],
            in_g1(),
            "0301",
            2,
        ),
        (
            "any zone beats citywide",
            vec![rule(1, "03", None, 0), rule(2, "03", Some(D1), 0)],
            in_g1(),
            "0301",
            2,
        ),
        (
            "zone size comes before prefix length",
            vec![rule(1, "0301", Some(D1), 0), rule(2, "", Some(G1), 0)],
            in_g1(),
            "0301",
            2,
        ),
        (
            "longer prefix in the same zone",
            vec![
                rule(1, "03", Some(G1), 0),
                rule(2, "0301", Some(G1), 0),
                rule(3, "", Some(G1), 0),
            ],
            in_g1(),
            "0301",
            2,
        ),
        (
            "longer prefix citywide",
            vec![rule(1, "", None, 0), rule(2, "03", None, 0)],
            in_g1(),
            "0301",
            2,
        ),
        (
            "equal-area zones: smaller code",
            vec![
                rule(1, "03", Some(TWIN_B), 0),
                rule(2, "03", Some(TWIN_A), 0),
            ],
            in_twins(),
            "0301",
            2,
        ),
        (
            "same scope: smaller rule id",
            vec![rule(7, "03", Some(G1), 0), rule(3, "03", Some(G1), 0)],
            in_g1(),
            "0301",
            3,
        ),
    ];
    for (name, rules, point, category, expected) in cases {
        let table = table(rules);
        assert_eq!(
            winner(&table, point, category),
            Some(id(expected)),
            "{name}"
        );
    }
}

#[test]
fn validity_windows_and_inactive_rules() {
    let t = now();
    let hour = Duration::hours(1);
    let window = |n, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
        let mut r = rule(n, "03", Some(G1), 10);
        r.valid_from = from;
        r.valid_to = to;
        r
    };
    let mut inactive = rule(1, "03", Some(G1), 10);
    inactive.active = false;
    let cases: Vec<(&str, Rule, bool)> = vec![
        ("from is inclusive", window(1, Some(t), None), true),
        ("before from", window(1, Some(t + hour), None), false),
        ("to is exclusive", window(1, None, Some(t)), false),
        (
            "just before to",
            window(1, None, Some(t + Duration::nanoseconds(1))),
            true,
        ),
        (
            "inside window",
            window(1, Some(t - hour), Some(t + hour)),
            true,
        ),
        ("inactive", inactive, false),
    ];
    for (name, candidate, wins) in cases {
        // A low-priority citywide rule catches whatever the candidate does not.
        let table = table(vec![candidate, rule(2, "", None, 0)]);
        let expected = if wins { id(1) } else { id(2) };
        assert_eq!(winner(&table, in_g1(), "0301"), Some(expected), "{name}");
    }
}

#[test]
fn fallback_is_the_innermost_district() {
    let table = table(vec![rule(1, "04", None, 0), rule(2, "03", Some(D2), 0)]);
    let cases = [
        (
            "no rule for the category in D1",
            in_g1(),
            "0301",
            None,
            Some(D1),
        ),
        (
            "on the district border: innermost by area, then code",
            p(120.2, 31.15),
            "0501",
            None,
            None,
        ),
        ("a rule in D2", p(120.3, 31.05), "0301", Some(id(2)), None),
        ("outside every district", p(121.0, 31.0), "0301", None, None),
        (
            "citywide rule outside every district",
            p(121.0, 31.0),
            "0401",
            Some(id(1)),
            None,
        ),
    ];
    for (name, point, category, expected_winner, expected_fallback) in cases {
        let decision = table.decide(point, category, now());
        assert_eq!(decision.winner.map(|w| w.id), expected_winner, "{name}");
        if name.starts_with("on the district border") {
            // D1 and D2 have nearly equal areas; the smaller one (or the
            // smaller code on a tie) comes last in the path and is the fallback.
            let path = table.zone_path(point);
            let innermost = path.last().map(|z| z.code().to_owned());
            assert_eq!(decision.fallback, innermost, "{name}");
            assert!(decision.fallback.is_some(), "{name}");
        } else {
            assert_eq!(decision.fallback.as_deref(), expected_fallback, "{name}");
        }
    }
}

#[test]
fn prefix_matching_uses_whole_levels() {
    let table = table(vec![
        rule(1, "", None, 0),
        rule(2, "03", None, 0),
        rule(3, "0301", None, 0),
        rule(4, "04", None, 0),
    ]);
    let cases: Vec<(&str, Vec<u128>)> = vec![
        ("0301", vec![3, 2, 1]),
        ("0302", vec![2, 1]),
        ("03", vec![2, 1]),
        ("030", vec![2, 1]),
        ("05", vec![1]),
        ("", vec![1]),
    ];
    for (category, expected) in cases {
        let explanation = table.explain(in_g1(), category, now());
        let matched: Vec<Uuid> = explanation.candidates.iter().map(|c| c.rule.id).collect();
        let expected: Vec<Uuid> = expected.into_iter().map(id).collect();
        assert_eq!(matched, expected, "{category:?}");
        assert_eq!(
            explanation.winner.map(|w| w.id),
            expected.first().copied(),
            "{category:?}"
        );
    }
}

#[test]
fn explain_gives_a_reason_for_every_candidate() {
    let t = now();
    let mut inactive = rule(8, "0301", Some(G1), 99);
    inactive.active = false;
    let mut future = rule(9, "0301", Some(G1), 99);
    future.valid_from = Some(t + Duration::days(1));
    let mut past = rule(10, "0301", Some(G1), 99);
    past.valid_to = Some(t);
    let rules = vec![
        rule(1, "0301", Some(G1), 20),
        rule(2, "0301", Some(G1), 10),
        rule(3, "0301", Some(S1), 20),
        rule(4, "03", Some(G1), 20),
        rule(5, "0301", Some(G1), 20),
        rule(6, "0301", None, 20),
        inactive,
        future,
        past,
    ];
    let table = table(rules);
    let explanation = table.explain(in_g1(), "0301", t);
    assert_eq!(explanation.winner.as_ref().map(|w| w.id), Some(id(1)));
    assert_eq!(explanation.fallback, None);
    let g1_km2 = table.zone(G1).map_or(0.0, |z| z.area_m2() / 1e6);
    let s1_km2 = table.zone(S1).map_or(0.0, |z| z.area_m2() / 1e6);
    assert!(g1_km2 > 6.0 && s1_km2 > 4.0 * g1_km2, "{g1_km2} {s1_km2}");

    let got: Vec<(Uuid, String)> = explanation
        .candidates
        .iter()
        .map(|c| (c.rule.id, c.message.clone()))
        .collect();
    let expected: Vec<(Uuid, String)> = vec![
        (id(1), "wins".into()),
        (
            id(5),
            "same priority, zone and category prefix: rule id \
             00000000-0000-0000-0000-000000000005 sorts after 00000000-0000-0000-0000-000000000001"
                .into(),
        ),
        (id(4), "shorter category prefix \"03\" vs \"0301\"".into()),
        (
            id(3),
            format!(
                "larger zone (street {S1} {} km² vs grid {G1} {} km²)",
                super::explain::km2(s1_km2),
                super::explain::km2(g1_km2)
            ),
        ),
        (
            id(6),
            format!(
                "larger zone (citywide vs grid {G1} {} km²)",
                super::explain::km2(g1_km2)
            ),
        ),
        (id(2), "lower priority 10 < 20".into()),
        (id(8), "inactive".into()),
        (
            id(9),
            "not valid yet: valid from 2025-06-02T08:00:00+00:00".into(),
        ),
        (
            id(10),
            "expired: valid until 2025-06-01T08:00:00+00:00".into(),
        ),
    ];
    assert_eq!(got, expected);

    let json = serde_json::to_value(&explanation).unwrap_or_default();
    assert_eq!(json["candidates"][0]["outcome"]["status"], "winner");
    assert_eq!(
        json["candidates"][2]["outcome"]["reason"]["kind"],
        "shorter_category_prefix"
    );
    assert_eq!(
        json["candidates"][3]["outcome"]["reason"]["zone"]["scope"],
        "zone"
    );
    assert_eq!(
        json["candidates"][3]["outcome"]["reason"]["zone"]["kind"],
        "street"
    );
    assert_eq!(
        json["candidates"][4]["outcome"]["reason"]["zone"]["scope"],
        "citywide"
    );
    assert_eq!(json["candidates"][8]["outcome"]["status"], "expired");
    assert_eq!(json["zone_path"][3]["kind"], "grid");
}

#[test]
fn explain_equal_area_and_fallback() {
    let table = table(vec![
        rule(1, "03", Some(TWIN_B), 0),
        rule(2, "03", Some(TWIN_A), 0),
    ]);
    let explanation = table.explain(in_twins(), "0301", now());
    let messages: Vec<&str> = explanation
        .candidates
        .iter()
        .map(|c| c.message.as_str())
        .collect();
    assert_eq!(
        messages,
        ["wins", "equal-area zone compound-b sorts after compound-a"]
    );

    let explanation = table.explain(in_g1(), "0301", now());
    assert!(explanation.candidates.is_empty());
    assert_eq!(explanation.winner, None);
    assert_eq!(explanation.fallback.as_deref(), Some(D1));
}

#[test]
fn explain_agrees_with_decide() {
    let mut rules = vec![];
    for (n, zone) in [None, Some(D1), Some(S1), Some(C1), Some(G1), Some(G2)]
        .into_iter()
        .enumerate()
    {
        for (k, prefix) in ["", "03", "0301"].into_iter().enumerate() {
            let n = (n * 3 + k) as u128;
            rules.push(rule(n, prefix, zone, (n % 4) as i32));
        }
    }
    let table = table(rules);
    for point in [
        in_g1(),
        p(120.025, 31.01),
        p(120.07, 31.07),
        p(120.3, 31.05),
    ] {
        for category in ["0301", "0302", "04"] {
            let decision = table.decide(point, category, now());
            let explanation = table.explain(point, category, now());
            assert_eq!(decision.winner, explanation.winner, "{point:?} {category}");
            assert_eq!(
                decision.zone_path, explanation.zone_path,
                "{point:?} {category}"
            );
            assert_eq!(
                decision.fallback, explanation.fallback,
                "{point:?} {category}"
            );
        }
    }
}

#[test]
fn conflict_with_on_save() {
    let t = now();
    let mut stored_window = rule(1, "03", Some(G1), 10);
    stored_window.valid_from = Some(t);
    stored_window.valid_to = Some(t + Duration::days(10));
    let mut inactive = rule(2, "04", Some(G1), 10);
    inactive.active = false;
    let table = table(vec![
        stored_window,
        inactive,
        rule(3, "", None, 0),
        rule(4, "05", Some(TWIN_A), 0),
        rule(5, "05", Some(G1), 0),
    ]);

    let windowed = |from: i64, to: i64| {
        let mut r = rule(100, "03", Some(G1), 10);
        r.valid_from = Some(t + Duration::days(from));
        r.valid_to = Some(t + Duration::days(to));
        r
    };
    let mut new_inactive = rule(100, "03", Some(G1), 10);
    new_inactive.active = false;
    let same = |zone: Option<&str>| ConflictKind::SameScope {
        zone_code: zone.map(str::to_owned),
    };
    /// (name, rule to save, expected conflicting rule and kind)
    type Case<'a> = (&'a str, Rule, Option<(u128, ConflictKind)>);
    let cases: Vec<Case> = vec![
        (
            "same zone, prefix, priority",
            rule(100, "03", Some(G1), 10),
            Some((1, same(Some(G1)))),
        ),
        ("different priority", rule(100, "03", Some(G1), 11), None),
        ("different prefix", rule(100, "0301", Some(G1), 10), None),
        ("different zone", rule(100, "03", Some(G2), 10), None),
        (
            "overlapping window",
            windowed(9, 20),
            Some((1, same(Some(G1)))),
        ),
        (
            "window starting when the other ends",
            windowed(10, 20),
            None,
        ),
        ("window ending when the other starts", windowed(-5, 0), None),
        ("other rule inactive", rule(100, "04", Some(G1), 10), None),
        ("new rule inactive", new_inactive, None),
        (
            "editing the stored rule itself",
            rule(1, "03", Some(G1), 10),
            None,
        ),
        (
            "both citywide",
            rule(100, "", None, 0),
            Some((3, same(None))),
        ),
        (
            "equal-area overlapping zone",
            rule(100, "05", Some(TWIN_B), 0),
            Some((
                4,
                ConflictKind::EqualAreaOverlap {
                    zone_code: TWIN_B.into(),
                    conflicting_zone_code: TWIN_A.into(),
                },
            )),
        ),
        (
            "neighbouring grid sharing only an edge",
            rule(100, "05", Some(G2), 0),
            None,
        ),
        ("unknown zone", rule(100, "03", Some("nowhere"), 10), None),
        ("prefix no rule uses", rule(100, "09", Some(G1), 10), None),
    ];
    for (name, new_rule, expected) in cases {
        let got = table.conflict_with(&new_rule);
        let expected = expected.map(|(other, kind)| Conflict {
            rule_id: new_rule.id,
            conflicting_rule_id: id(other),
            category_prefix: new_rule.category_prefix.clone(),
            priority: new_rule.priority,
            kind,
        });
        assert_eq!(got, expected, "{name}");
    }
    let message = table
        .conflict_with(&rule(100, "03", Some(G1), 10))
        .map(|c| c.to_string());
    assert_eq!(
        message.as_deref(),
        Some(
            "rule 00000000-0000-0000-0000-000000000064 ties with rule \
             00000000-0000-0000-0000-000000000001: same priority 10, category prefix \"03\", \
             overlapping validity, same zone 320102001001001"
        )
    );
}

#[test]
fn conflicts_lists_every_ambiguous_pair_once() {
    let t = now();
    let mut later = rule(6, "03", Some(G1), 1);
    later.valid_from = Some(t + Duration::days(30));
    let mut earlier = rule(7, "03", Some(G1), 1);
    earlier.valid_to = Some(t + Duration::days(30));
    let mut inactive = rule(12, "", None, 0);
    inactive.active = false;
    let table = table(vec![
        // Three citywide rules alike: three pairs.
        rule(1, "", None, 0),
        rule(2, "", None, 0),
        rule(3, "", None, 0),
        // Same grid, same priority, different prefixes: no conflict.
        rule(4, "03", Some(G1), 5),
        rule(5, "0301", Some(G1), 5),
        // Same grid and prefix, windows meeting but not overlapping.
        later,
        earlier,
        // Twins: one pair across equal-area zones, one with another priority.
        rule(8, "05", Some(TWIN_A), 0),
        rule(9, "05", Some(TWIN_B), 0),
        rule(10, "05", Some(TWIN_B), 1),
        // Adjacent grids of (near) equal size share only an edge.
        rule(11, "05", Some(G2), 0),
        rule(13, "05", Some(G1), 0),
        inactive,
    ]);
    let same_citywide = ConflictKind::SameScope { zone_code: None };
    let pair = |a: u128, b: u128, prefix: &str, priority: i32, kind: ConflictKind| Conflict {
        rule_id: id(a),
        conflicting_rule_id: id(b),
        category_prefix: prefix.into(),
        priority,
        kind,
    };
    let expected = vec![
        pair(1, 2, "", 0, same_citywide.clone()),
        pair(1, 3, "", 0, same_citywide.clone()),
        pair(2, 3, "", 0, same_citywide),
        pair(
            8,
            9,
            "05",
            0,
            ConflictKind::EqualAreaOverlap {
                zone_code: TWIN_A.into(),
                conflicting_zone_code: TWIN_B.into(),
            },
        ),
    ];
    assert_eq!(table.conflicts(), expected);
    assert_eq!(
        serde_json::to_value(&expected[3])
            .ok()
            .map(|v| v["kind"]["type"].clone()),
        Some(serde_json::json!("equal_area_overlap"))
    );
}

#[test]
fn decision_serializes_for_the_http_layer() {
    let table = table(vec![rule(1, "03", Some(G1), 3)]);
    let decision = table.decide(in_g1(), "0301", now());
    let json = serde_json::to_value(&decision).unwrap_or_default();
    assert_eq!(json["winner"]["lead_unit"], "unit-1");
    assert_eq!(json["winner"]["co_units"][0], "co-1");
    assert_eq!(json["winner"]["zone_code"], G1);
    assert_eq!(json["winner"]["version"], 1);
    assert_eq!(json["zone_path"][0]["kind"], "district");
    assert_eq!(json["fallback"], serde_json::Value::Null);
}
