//! Zones: the areas a unit is responsible for.

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::geometry;

/// What a zone is, from the largest administrative level to a shop front.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// 区 / 县
    District,
    /// 街道 / 乡镇
    Street,
    /// 社区 / 村
    Community,
    /// 单元网格: 15-digit GB/T 30428 code (6-digit administrative division,
    /// then 3 digits each for street, community and grid).
    Grid,
    /// 路段 under a road chief (路长制).
    Road,
    /// 小区 (residential compound).
    Compound,
    /// 楼道 (building / stairwell).
    Building,
    /// 门前三包 stretch in front of a shop.
    Storefront,
}

impl ZoneKind {
    /// The serde name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneKind::District => "district",
            ZoneKind::Street => "street",
            ZoneKind::Community => "community",
            ZoneKind::Grid => "grid",
            ZoneKind::Road => "road",
            ZoneKind::Compound => "compound",
            ZoneKind::Building => "building",
            ZoneKind::Storefront => "storefront",
        }
    }
}

/// A zone with a validated geometry (see [`super::parse_zone_geometry`]).
///
/// Fields are private so that the cached area always matches the geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    code: String,
    name: String,
    kind: ZoneKind,
    parent_code: Option<String>,
    geometry: MultiPolygon<f64>,
    area_m2: f64,
}

impl Zone {
    /// `geometry` is lon/lat WGS84; its geodesic area is computed once here.
    pub fn new(
        code: impl Into<String>,
        name: impl Into<String>,
        kind: ZoneKind,
        parent_code: Option<String>,
        geometry: MultiPolygon<f64>,
    ) -> Zone {
        let area_m2 = geometry::area_m2(&geometry);
        Zone {
            code: code.into(),
            name: name.into(),
            kind,
            parent_code,
            geometry,
            area_m2,
        }
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ZoneKind {
        self.kind
    }

    pub fn parent_code(&self) -> Option<&str> {
        self.parent_code.as_deref()
    }

    pub fn geometry(&self) -> &MultiPolygon<f64> {
        &self.geometry
    }

    /// Geodesic area on the WGS84 ellipsoid, in m².
    pub fn area_m2(&self) -> f64 {
        self.area_m2
    }

    pub fn summary(&self) -> ZoneSummary {
        ZoneSummary {
            code: self.code.clone(),
            name: self.name.clone(),
            kind: self.kind,
        }
    }
}

/// A zone as shown in a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoneSummary {
    pub code: String,
    pub name: String,
    pub kind: ZoneKind,
}

/// True for a GB/T 30428 unit-grid code: exactly 15 ASCII digits.
pub(crate) fn is_grid_code(code: &str) -> bool {
    code.len() == 15 && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Coord, LineString, Polygon};

    #[test]
    fn kinds_serialize_in_snake_case() {
        let kinds = [
            (ZoneKind::District, "district"),
            (ZoneKind::Street, "street"),
            (ZoneKind::Community, "community"),
            (ZoneKind::Grid, "grid"),
            (ZoneKind::Road, "road"),
            (ZoneKind::Compound, "compound"),
            (ZoneKind::Building, "building"),
            (ZoneKind::Storefront, "storefront"),
        ];
        for (kind, name) in kinds {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(name))
            );
            assert_eq!(kind.as_str(), name);
        }
    }

    #[test]
    fn grid_codes() {
        let cases = [
            ("320102001002003", true),
            ("32010200100200", false),
            ("3201020010020034", false),
            ("32010200100200a", false),
            ("", false),
        ];
        for (code, valid) in cases {
            assert_eq!(is_grid_code(code), valid, "{code}");
        }
    }

    #[test]
    fn area_is_cached_from_geometry() {
        let ring: LineString<f64> = vec![
            Coord { x: 120.0, y: 31.0 },
            Coord { x: 120.1, y: 31.0 },
            Coord { x: 120.1, y: 31.1 },
            Coord { x: 120.0, y: 31.0 },
        ]
        .into();
        let zone = Zone::new(
            "320102",
            "玄武区",
            ZoneKind::District,
            None,
            MultiPolygon::new(vec![Polygon::new(ring, vec![])]),
        );
        // Half of a 0.1° cell at 31° N: 9.5 km × 11.1 km / 2.
        let km2 = zone.area_m2() / 1e6;
        assert!((52.0..54.0).contains(&km2), "{km2}");
        assert_eq!(zone.summary().kind, ZoneKind::District);
        assert_eq!(zone.parent_code(), None);
    }
}
