//! Zone geometries: validation of imported GeoJSON, area, and the point test.

use geo::algorithm::validation::{InvalidMultiPolygon, InvalidPolygon, RingRole, Validation};
use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::orient::{Direction, Orient};
use geo::{Coord, GeodesicArea, Intersects, LineString, MultiPolygon, Polygon};
use geojson::{Geometry, GeometryValue, Position};

/// Why an imported zone geometry was refused.
///
/// Messages name the offending part the way the GeoJSON `coordinates` array is
/// nested, counting from 0: `polygon` is the index in a MultiPolygon (always 0
/// for a Polygon), `ring` is the index inside that polygon (ring 0 is the outer
/// boundary, later rings are holes), `position` the index inside the ring. An
/// import prefixes them with the feature index, so an operator can find the
/// exact coordinate in their file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    #[error("geometry type {0} is not allowed: a zone must be a Polygon or a MultiPolygon")]
    UnsupportedType(&'static str),
    #[error("the MultiPolygon has no polygons")]
    NoPolygons,
    #[error("polygon {polygon} has no rings")]
    NoRings { polygon: usize },
    #[error(
        "position {position} of ring {ring} of polygon {polygon} has {count} coordinate(s); \
         [longitude, latitude] is required"
    )]
    ShortPosition {
        polygon: usize,
        ring: usize,
        position: usize,
        count: usize,
    },
    #[error(
        "position {position} of ring {ring} of polygon {polygon} has a coordinate that is not a finite number"
    )]
    NonFinite {
        polygon: usize,
        ring: usize,
        position: usize,
    },
    #[error(
        "position {position} of ring {ring} of polygon {polygon}: longitude {lon} is outside [-180, 180]"
    )]
    LongitudeOutOfRange {
        polygon: usize,
        ring: usize,
        position: usize,
        lon: f64,
    },
    #[error(
        "position {position} of ring {ring} of polygon {polygon}: latitude {lat} is outside [-90, 90]; \
         GeoJSON positions are [longitude, latitude] — were they swapped?"
    )]
    LatitudeOutOfRange {
        polygon: usize,
        ring: usize,
        position: usize,
        lat: f64,
    },
    #[error(
        "ring {ring} of polygon {polygon} has {count} position(s); a ring needs at least 4 \
         (three corners and the first one repeated to close it)"
    )]
    TooFewPositions {
        polygon: usize,
        ring: usize,
        count: usize,
    },
    #[error(
        "ring {ring} of polygon {polygon} is not closed: its last position must repeat its first"
    )]
    NotClosed { polygon: usize, ring: usize },
    #[error("ring {ring} of polygon {polygon} has fewer than 3 distinct positions")]
    TooFewDistinctPositions { polygon: usize, ring: usize },
    #[error("ring {ring} of polygon {polygon} has zero area: all its positions lie on one line")]
    ZeroArea { polygon: usize, ring: usize },
    #[error("ring {ring} of polygon {polygon} intersects itself")]
    SelfIntersection { polygon: usize, ring: usize },
    #[error("ring {ring} of polygon {polygon} is a hole that is not inside ring 0")]
    HoleOutsideExterior { polygon: usize, ring: usize },
    #[error("rings {ring_a} and {ring_b} of polygon {polygon} cross or share an edge")]
    RingsIntersect {
        polygon: usize,
        ring_a: usize,
        ring_b: usize,
    },
    #[error("polygons {polygon_a} and {polygon_b} overlap")]
    PolygonsOverlap { polygon_a: usize, polygon_b: usize },
    #[error("polygons {polygon_a} and {polygon_b} share an edge; merge them into one polygon")]
    PolygonsShareEdge { polygon_a: usize, polygon_b: usize },
}

/// Converts and validates the geometry of an imported zone (lon/lat, WGS84).
///
/// Checks, in this order so that the first error reported is the most basic one:
/// the type; every position has finite coordinates with longitude in [-180, 180]
/// and latitude in [-90, 90]; every ring has ≥ 4 positions and is closed; no ring
/// is degenerate (collinear, hence zero area); then OGC validity through geo's
/// `Validation` (no self-intersection, holes inside the shell, rings and parts
/// not crossing or overlapping).
///
/// The range check also catches most latitude/longitude swaps for data in China:
/// every mainland longitude is above 73°, so a swapped position has a
/// "latitude" above 90. (Swaps in the few places where both values are under 90
/// cannot be detected from the numbers alone.)
pub fn parse_zone_geometry(geometry: &Geometry) -> Result<MultiPolygon<f64>, GeometryError> {
    let polygons: &[Vec<Vec<Position>>] = match &geometry.value {
        GeometryValue::Polygon { coordinates } => std::slice::from_ref(coordinates),
        GeometryValue::MultiPolygon { coordinates } => coordinates,
        GeometryValue::Point { .. } => return Err(GeometryError::UnsupportedType("Point")),
        GeometryValue::MultiPoint { .. } => {
            return Err(GeometryError::UnsupportedType("MultiPoint"));
        }
        GeometryValue::LineString { .. } => {
            return Err(GeometryError::UnsupportedType("LineString"));
        }
        GeometryValue::MultiLineString { .. } => {
            return Err(GeometryError::UnsupportedType("MultiLineString"));
        }
        GeometryValue::GeometryCollection { .. } => {
            return Err(GeometryError::UnsupportedType("GeometryCollection"));
        }
    };
    if polygons.is_empty() {
        return Err(GeometryError::NoPolygons);
    }
    let mut converted = Vec::with_capacity(polygons.len());
    for (polygon, rings) in polygons.iter().enumerate() {
        converted.push(convert_polygon(polygon, rings)?);
    }
    let multi = MultiPolygon::new(converted);
    multi.check_validation().map_err(from_geo_validation)?;
    Ok(multi)
}

fn convert_polygon(polygon: usize, rings: &[Vec<Position>]) -> Result<Polygon<f64>, GeometryError> {
    let mut converted = Vec::with_capacity(rings.len());
    for (ring, positions) in rings.iter().enumerate() {
        converted.push(convert_ring(polygon, ring, positions)?);
    }
    let mut rings = converted.into_iter();
    let exterior = rings.next().ok_or(GeometryError::NoRings { polygon })?;
    Ok(Polygon::new(exterior, rings.collect()))
}

fn convert_ring(
    polygon: usize,
    ring: usize,
    positions: &[Position],
) -> Result<LineString<f64>, GeometryError> {
    let mut coords = Vec::with_capacity(positions.len());
    for (position, p) in positions.iter().enumerate() {
        let &[lon, lat, ..] = p.as_slice() else {
            return Err(GeometryError::ShortPosition {
                polygon,
                ring,
                position,
                count: p.len(),
            });
        };
        if !lon.is_finite() || !lat.is_finite() {
            return Err(GeometryError::NonFinite {
                polygon,
                ring,
                position,
            });
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(GeometryError::LongitudeOutOfRange {
                polygon,
                ring,
                position,
                lon,
            });
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeometryError::LatitudeOutOfRange {
                polygon,
                ring,
                position,
                lat,
            });
        }
        coords.push(Coord { x: lon, y: lat });
    }
    if coords.len() < 4 {
        return Err(GeometryError::TooFewPositions {
            polygon,
            ring,
            count: coords.len(),
        });
    }
    // geo's LineString::new would silently accept an open ring and geo treats
    // rings as implicitly closed; GeoJSON (RFC 7946 §3.1.6) requires explicit
    // closure, and an open ring usually means a truncated file.
    if coords.first() != coords.last() {
        return Err(GeometryError::NotClosed { polygon, ring });
    }
    if is_collinear(&coords) {
        return Err(GeometryError::ZeroArea { polygon, ring });
    }
    Ok(LineString::new(coords))
}

/// True when every position lies on one line (including the case of fewer
/// than 3 distinct positions, which geo's validation reports more precisely).
/// Checked before geo's validation because geo would call a collinear
/// back-and-forth ring a self-intersection, which is true but unhelpful.
fn is_collinear(coords: &[Coord<f64>]) -> bool {
    let Some(&a) = coords.first() else {
        return true;
    };
    let Some(&b) = coords.iter().find(|&&c| c != a) else {
        return false;
    };
    let distinct = coords.iter().filter(|&&c| c != a && c != b).count();
    // Fewer than 3 distinct positions: leave it to geo's "too few points".
    distinct > 0
        && coords
            .iter()
            .all(|&c| RobustKernel::orient2d(a, b, c) == Orientation::Collinear)
}

/// Translates geo's validation error to our ring numbering (0 = exterior,
/// hole k = ring k + 1), which is what the GeoJSON author sees.
fn from_geo_validation(error: InvalidMultiPolygon) -> GeometryError {
    match error {
        InvalidMultiPolygon::InvalidPolygon(index, reason) => {
            let polygon = index.0;
            match reason {
                InvalidPolygon::TooFewPointsInRing(role) => {
                    GeometryError::TooFewDistinctPositions {
                        polygon,
                        ring: ring_number(role),
                    }
                }
                InvalidPolygon::SelfIntersection(role) => GeometryError::SelfIntersection {
                    polygon,
                    ring: ring_number(role),
                },
                // Coordinates were checked one by one before, so this cannot
                // be reached from parse_zone_geometry; mapping it keeps the
                // match exhaustive without a panic.
                InvalidPolygon::NonFiniteCoord(role, position) => GeometryError::NonFinite {
                    polygon,
                    ring: ring_number(role),
                    position: position.0,
                },
                InvalidPolygon::InteriorRingNotContainedInExteriorRing(role) => {
                    GeometryError::HoleOutsideExterior {
                        polygon,
                        ring: ring_number(role),
                    }
                }
                InvalidPolygon::IntersectingRingsOnALine(a, b)
                | InvalidPolygon::IntersectingRingsOnAnArea(a, b) => {
                    GeometryError::RingsIntersect {
                        polygon,
                        ring_a: ring_number(a),
                        ring_b: ring_number(b),
                    }
                }
            }
        }
        InvalidMultiPolygon::ElementsOverlaps(a, b) => GeometryError::PolygonsOverlap {
            polygon_a: a.0,
            polygon_b: b.0,
        },
        InvalidMultiPolygon::ElementsTouchOnALine(a, b) => GeometryError::PolygonsShareEdge {
            polygon_a: a.0,
            polygon_b: b.0,
        },
    }
}

fn ring_number(role: RingRole) -> usize {
    match role {
        RingRole::Exterior => 0,
        RingRole::Interior(hole) => hole + 1,
    }
}

/// Area on the WGS84 ellipsoid in m² (Karney's geodesic polygon area, which geo
/// provides without optional features). Only the relative size of zones is
/// used, but an area in real units also makes `explain` readable.
///
/// geo's geodesic area assumes RFC 7946 winding (outer ring counter-clockwise,
/// holes clockwise) and returns "the rest of the Earth" for a ring wound the
/// other way. RFC 7946 tells parsers not to reject the other winding, and
/// many GIS exports use it, so the rings are re-oriented on a copy first.
pub(crate) fn area_m2(geometry: &MultiPolygon<f64>) -> f64 {
    geometry.orient(Direction::Default).geodesic_area_unsigned()
}

/// Closed point test: a point on a zone's boundary is in the zone.
/// geo's winding-number test uses robust orientation predicates, so "on the
/// boundary" is exact, not within an epsilon.
pub(crate) fn covers(geometry: &MultiPolygon<f64>, point: Coord<f64>) -> bool {
    geometry.intersects(&point)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polygon(rings: Vec<Vec<[f64; 2]>>) -> Geometry {
        Geometry::new_polygon(rings)
    }

    fn square(x: f64, y: f64, side: f64) -> Vec<[f64; 2]> {
        vec![
            [x, y],
            [x + side, y],
            [x + side, y + side],
            [x, y + side],
            [x, y],
        ]
    }

    #[test]
    fn valid_geometries() {
        let with_hole = polygon(vec![square(120.0, 31.0, 1.0), square(120.2, 31.2, 0.2)]);
        let cases: Vec<(&str, Geometry, usize)> = vec![
            ("square", polygon(vec![square(120.0, 31.0, 0.1)]), 1),
            ("square with hole", with_hole, 1),
            (
                "two disjoint parts",
                Geometry::new_multi_polygon(vec![
                    vec![square(120.0, 31.0, 0.1)],
                    vec![square(121.0, 31.0, 0.1)],
                ]),
                2,
            ),
            (
                "parts touching at a corner",
                Geometry::new_multi_polygon(vec![
                    vec![square(120.0, 31.0, 0.1)],
                    vec![square(120.1, 31.1, 0.1)],
                ]),
                2,
            ),
            (
                "third coordinate (altitude) ignored",
                Geometry::new_polygon(vec![vec![
                    [120.0, 31.0, 5.0],
                    [120.1, 31.0, 5.0],
                    [120.1, 31.1, 5.0],
                    [120.0, 31.0, 5.0],
                ]]),
                1,
            ),
        ];
        for (name, geometry, parts) in cases {
            let parsed = parse_zone_geometry(&geometry)
                .unwrap_or_else(|e| panic!("{name}: valid geometry refused: {e}"));
            assert_eq!(parsed.0.len(), parts, "{name}");
            assert!(area_m2(&parsed) > 0.0, "{name}");
        }
    }

    #[test]
    fn invalid_geometries() {
        let bow_tie = vec![
            [120.0, 31.0],
            [120.1, 31.1],
            [120.1, 31.0],
            [120.0, 31.1],
            [120.0, 31.0],
        ];
        let cases: Vec<(&str, Geometry, GeometryError, &str)> = vec![
            (
                "point",
                Geometry::new_point([120.0, 31.0]),
                GeometryError::UnsupportedType("Point"),
                "geometry type Point is not allowed: a zone must be a Polygon or a MultiPolygon",
            ),
            (
                "line string",
                Geometry::new_line_string(vec![[120.0, 31.0], [121.0, 31.0]]),
                GeometryError::UnsupportedType("LineString"),
                "geometry type LineString is not allowed: a zone must be a Polygon or a MultiPolygon",
            ),
            (
                "multi point",
                Geometry::new_multi_point(vec![[120.0, 31.0]]),
                GeometryError::UnsupportedType("MultiPoint"),
                "geometry type MultiPoint is not allowed: a zone must be a Polygon or a MultiPolygon",
            ),
            (
                "multi line string",
                Geometry::new_multi_line_string(vec![vec![[120.0, 31.0], [121.0, 31.0]]]),
                GeometryError::UnsupportedType("MultiLineString"),
                "geometry type MultiLineString is not allowed: a zone must be a Polygon or a MultiPolygon",
            ),
            (
                "geometry collection",
                Geometry::new(GeometryValue::GeometryCollection { geometries: vec![] }),
                GeometryError::UnsupportedType("GeometryCollection"),
                "geometry type GeometryCollection is not allowed: a zone must be a Polygon or a MultiPolygon",
            ),
            (
                "empty multipolygon",
                Geometry::new(GeometryValue::MultiPolygon {
                    coordinates: vec![],
                }),
                GeometryError::NoPolygons,
                "the MultiPolygon has no polygons",
            ),
            (
                "polygon without rings",
                Geometry::new(GeometryValue::Polygon {
                    coordinates: vec![],
                }),
                GeometryError::NoRings { polygon: 0 },
                "polygon 0 has no rings",
            ),
            (
                "unclosed ring",
                polygon(vec![vec![
                    [120.0, 31.0],
                    [120.1, 31.0],
                    [120.1, 31.1],
                    [120.0, 31.1],
                ]]),
                GeometryError::NotClosed {
                    polygon: 0,
                    ring: 0,
                },
                "ring 0 of polygon 0 is not closed: its last position must repeat its first",
            ),
            (
                "too few positions",
                polygon(vec![vec![[120.0, 31.0], [120.1, 31.0], [120.0, 31.0]]]),
                GeometryError::TooFewPositions {
                    polygon: 0,
                    ring: 0,
                    count: 3,
                },
                "ring 0 of polygon 0 has 3 position(s); a ring needs at least 4 \
                 (three corners and the first one repeated to close it)",
            ),
            (
                "only two distinct positions",
                polygon(vec![vec![
                    [120.0, 31.0],
                    [120.1, 31.0],
                    [120.1, 31.0],
                    [120.0, 31.0],
                ]]),
                GeometryError::TooFewDistinctPositions {
                    polygon: 0,
                    ring: 0,
                },
                "ring 0 of polygon 0 has fewer than 3 distinct positions",
            ),
            (
                "bow-tie",
                polygon(vec![bow_tie.clone()]),
                GeometryError::SelfIntersection {
                    polygon: 0,
                    ring: 0,
                },
                "ring 0 of polygon 0 intersects itself",
            ),
            (
                "zero area (collinear)",
                polygon(vec![vec![
                    [120.0, 31.0],
                    [120.1, 31.0],
                    [120.2, 31.0],
                    [120.0, 31.0],
                ]]),
                GeometryError::ZeroArea {
                    polygon: 0,
                    ring: 0,
                },
                "ring 0 of polygon 0 has zero area: all its positions lie on one line",
            ),
            (
                "swapped latitude/longitude (China)",
                polygon(vec![vec![
                    [31.0, 120.0],
                    [31.0, 120.1],
                    [31.1, 120.1],
                    [31.0, 120.0],
                ]]),
                GeometryError::LatitudeOutOfRange {
                    polygon: 0,
                    ring: 0,
                    position: 0,
                    lat: 120.0,
                },
                "position 0 of ring 0 of polygon 0: latitude 120 is outside [-90, 90]; \
                 GeoJSON positions are [longitude, latitude] — were they swapped?",
            ),
            (
                "longitude out of range",
                polygon(vec![vec![
                    [120.0, 31.0],
                    [190.0, 31.0],
                    [120.1, 31.1],
                    [120.0, 31.0],
                ]]),
                GeometryError::LongitudeOutOfRange {
                    polygon: 0,
                    ring: 0,
                    position: 1,
                    lon: 190.0,
                },
                "position 1 of ring 0 of polygon 0: longitude 190 is outside [-180, 180]",
            ),
            (
                "non-finite coordinate",
                polygon(vec![vec![
                    [120.0, 31.0],
                    [120.1, f64::NAN],
                    [120.1, 31.1],
                    [120.0, 31.0],
                ]]),
                GeometryError::NonFinite {
                    polygon: 0,
                    ring: 0,
                    position: 1,
                },
                "position 1 of ring 0 of polygon 0 has a coordinate that is not a finite number",
            ),
            (
                "position with one number",
                Geometry::new(GeometryValue::Polygon {
                    coordinates: vec![vec![
                        Position::from(vec![120.0]),
                        Position::from([120.1, 31.0]),
                        Position::from([120.1, 31.1]),
                        Position::from([120.0, 31.0]),
                    ]],
                }),
                GeometryError::ShortPosition {
                    polygon: 0,
                    ring: 0,
                    position: 0,
                    count: 1,
                },
                "position 0 of ring 0 of polygon 0 has 1 coordinate(s); [longitude, latitude] is required",
            ),
            (
                "multipolygon with one bad part names its index",
                Geometry::new_multi_polygon(vec![
                    vec![square(120.0, 31.0, 0.1)],
                    vec![square(121.0, 31.0, 0.1)],
                    vec![bow_tie.iter().map(|&[x, y]| [x + 2.0, y]).collect()],
                ]),
                GeometryError::SelfIntersection {
                    polygon: 2,
                    ring: 0,
                },
                "ring 0 of polygon 2 intersects itself",
            ),
            (
                "unclosed hole",
                polygon(vec![
                    square(120.0, 31.0, 1.0),
                    vec![[120.2, 31.2], [120.4, 31.2], [120.4, 31.4], [120.2, 31.4]],
                ]),
                GeometryError::NotClosed {
                    polygon: 0,
                    ring: 1,
                },
                "ring 1 of polygon 0 is not closed: its last position must repeat its first",
            ),
            (
                "hole outside the shell",
                polygon(vec![square(120.0, 31.0, 0.1), square(121.0, 31.0, 0.1)]),
                GeometryError::HoleOutsideExterior {
                    polygon: 0,
                    ring: 1,
                },
                "ring 1 of polygon 0 is a hole that is not inside ring 0",
            ),
            (
                "overlapping parts",
                Geometry::new_multi_polygon(vec![
                    vec![square(120.0, 31.0, 0.2)],
                    vec![square(120.1, 31.1, 0.2)],
                ]),
                GeometryError::PolygonsOverlap {
                    polygon_a: 0,
                    polygon_b: 1,
                },
                "polygons 0 and 1 overlap",
            ),
            (
                "parts sharing an edge",
                Geometry::new_multi_polygon(vec![
                    vec![square(120.0, 31.0, 0.1)],
                    vec![square(120.1, 31.0, 0.1)],
                ]),
                GeometryError::PolygonsShareEdge {
                    polygon_a: 0,
                    polygon_b: 1,
                },
                "polygons 0 and 1 share an edge; merge them into one polygon",
            ),
        ];
        for (name, geometry, expected, message) in cases {
            let error = parse_zone_geometry(&geometry).err();
            assert_eq!(error.as_ref(), Some(&expected), "{name}");
            assert_eq!(expected.to_string(), message, "{name}");
        }
    }

    #[test]
    fn boundary_points_are_covered() {
        let zone = parse_zone_geometry(&polygon(vec![square(120.0, 31.0, 0.5)]));
        let zone = zone.unwrap_or_else(|e| panic!("valid square refused: {e}"));
        let cases = [
            ("interior", 120.25, 31.25, true),
            ("edge", 120.5, 31.25, true),
            ("vertex", 120.0, 31.0, true),
            ("just outside", 120.5000001, 31.25, false),
            ("far away", 100.0, 10.0, false),
        ];
        for (name, x, y, inside) in cases {
            assert_eq!(covers(&zone, Coord { x, y }), inside, "{name}");
        }
    }

    #[test]
    fn area_does_not_depend_on_winding() {
        let ccw = square(120.0, 31.0, 1.0);
        let cw: Vec<[f64; 2]> = ccw.iter().rev().copied().collect();
        let hole_ccw = square(120.2, 31.2, 0.2);
        let hole_cw: Vec<[f64; 2]> = hole_ccw.iter().rev().copied().collect();
        let area = |rings: Vec<Vec<[f64; 2]>>| {
            parse_zone_geometry(&polygon(rings))
                .map(|g| area_m2(&g))
                .unwrap_or_else(|e| panic!("valid polygon refused: {e}"))
        };
        let reference = area(vec![ccw.clone(), hole_cw.clone()]);
        // 1° × 1° at 31° N minus 0.2° × 0.2°: about 10,000 km².
        assert!((10_000e6..11_000e6).contains(&reference), "{reference}");
        for rings in [
            vec![cw.clone(), hole_cw],
            vec![ccw, hole_ccw.clone()],
            vec![cw, hole_ccw],
        ] {
            let got = area(rings);
            assert!((got - reference).abs() < 1.0, "{got} vs {reference}");
        }
    }

    #[test]
    fn geodesic_area_is_in_square_metres() {
        // A 0.01° square at 31.8° N: 1113 m × ~946 m ≈ 1.05 km².
        let zone = parse_zone_geometry(&polygon(vec![square(120.5, 31.8, 0.01)]));
        let zone = zone.unwrap_or_else(|e| panic!("valid square refused: {e}"));
        let km2 = area_m2(&zone) / 1e6;
        assert!((1.04..1.06).contains(&km2), "{km2}");
    }
}
