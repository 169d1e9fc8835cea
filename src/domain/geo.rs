//! Positions: coordinate systems used by Chinese map SDKs, distances, and the
//! service area a city accepts reports in.

use geo::{Contains, Coord, Distance, Haversine, LineString, Point, Polygon, Rect};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A WGS84 position (what GPS and EXIF give, and what is stored).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

/// Coordinate reference system of a position sent by a client. Maps in China draw
/// in GCJ-02 (高德, 腾讯) or BD-09 (百度); positions are stored in WGS84.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    #[default]
    Wgs84,
    Gcj02,
    Bd09,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PositionError {
    #[error("latitude must be a number between -90 and 90")]
    Latitude,
    #[error("longitude must be a number between -180 and 180")]
    Longitude,
    #[error("accuracy_m must be a non-negative number of metres")]
    Accuracy,
}

/// A horizontal accuracy as a phone reports it: finite and not negative.
pub fn check_accuracy(accuracy_m: Option<f64>) -> Result<Option<f64>, PositionError> {
    match accuracy_m {
        Some(a) if !a.is_finite() || a < 0.0 => Err(PositionError::Accuracy),
        other => Ok(other),
    }
}

impl LatLon {
    /// A position with finite, in-range coordinates.
    pub fn new(lat: f64, lon: f64) -> Result<LatLon, PositionError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(PositionError::Latitude);
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(PositionError::Longitude);
        }
        Ok(LatLon { lat, lon })
    }

    fn point(self) -> Point<f64> {
        Point::new(self.lon, self.lat)
    }

    /// Great-circle distance in metres.
    pub fn distance_m(self, other: LatLon) -> f64 {
        Haversine.distance(self.point(), other.point())
    }

    /// Converts a position given in `crs` to WGS84.
    pub fn to_wgs84(self, crs: Crs) -> LatLon {
        match crs {
            Crs::Wgs84 => self,
            Crs::Gcj02 => gcj02_to_wgs84(self),
            Crs::Bd09 => gcj02_to_wgs84(bd09_to_gcj02(self)),
        }
    }
}

// GCJ-02 is WGS84 plus a published, deterministic offset (Krasovsky ellipsoid
// constants below). The forward transform is exact; its inverse has no closed form,
// so it is found by fixed-point iteration, which converges to well under 1 cm.
const KRASOVSKY_A: f64 = 6_378_245.0;
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;

/// Outside mainland China the offset is not applied, by definition of GCJ-02.
fn outside_china(p: LatLon) -> bool {
    !(72.004..=137.8347).contains(&p.lon) || !(0.8293..=55.8271).contains(&p.lat)
}

fn offset_lat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn offset_lon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS84 -> GCJ-02 (exact).
pub fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    use std::f64::consts::PI;
    if outside_china(p) {
        return p;
    }
    let x = p.lon - 105.0;
    let y = p.lat - 35.0;
    let rad_lat = p.lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let d_lat = offset_lat(x, y) * 180.0
        / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = offset_lon(x, y) * 180.0 / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    LatLon {
        lat: p.lat + d_lat,
        lon: p.lon + d_lon,
    }
}

/// GCJ-02 -> WGS84 by iterating the forward transform.
pub fn gcj02_to_wgs84(p: LatLon) -> LatLon {
    if outside_china(p) {
        return p;
    }
    let mut guess = p;
    for _ in 0..10 {
        let forward = wgs84_to_gcj02(guess);
        let (d_lat, d_lon) = (forward.lat - p.lat, forward.lon - p.lon);
        guess = LatLon {
            lat: guess.lat - d_lat,
            lon: guess.lon - d_lon,
        };
        if d_lat.abs() < 1e-10 && d_lon.abs() < 1e-10 {
            break;
        }
    }
    guess
}

// Baidu's BD-09 is a further published rotation/scaling of GCJ-02.
const BD_X_PI: f64 = std::f64::consts::PI * 3000.0 / 180.0;

pub fn bd09_to_gcj02(p: LatLon) -> LatLon {
    let x = p.lon - 0.0065;
    let y = p.lat - 0.006;
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * BD_X_PI).cos();
    LatLon {
        lat: z * theta.sin(),
        lon: z * theta.cos(),
    }
}

pub fn gcj02_to_bd09(p: LatLon) -> LatLon {
    let (x, y) = (p.lon, p.lat);
    let z = (x * x + y * y).sqrt() + 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) + 0.000003 * (x * BD_X_PI).cos();
    LatLon {
        lat: z * theta.sin() + 0.006,
        lon: z * theta.cos() + 0.0065,
    }
}

/// The area a deployment accepts reports in.
#[derive(Clone, Debug)]
pub enum ServiceArea {
    Bbox(Rect<f64>),
    Polygon(Polygon<f64>),
}

impl ServiceArea {
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn from_bbox(bbox: [f64; 4]) -> Result<ServiceArea, String> {
        let [min_lon, min_lat, max_lon, max_lat] = bbox;
        LatLon::new(min_lat, min_lon).map_err(|e| e.to_string())?;
        LatLon::new(max_lat, max_lon).map_err(|e| e.to_string())?;
        if min_lon >= max_lon || min_lat >= max_lat {
            return Err(
                "service area bbox must be [min_lon, min_lat, max_lon, max_lat] with min < max"
                    .into(),
            );
        }
        Ok(ServiceArea::Bbox(Rect::new(
            Coord {
                x: min_lon,
                y: min_lat,
            },
            Coord {
                x: max_lon,
                y: max_lat,
            },
        )))
    }

    /// An exterior ring of `[lon, lat]` pairs (closed or not).
    pub fn from_ring(ring: &[[f64; 2]]) -> Result<ServiceArea, String> {
        if ring.len() < 3 {
            return Err("service area polygon needs at least 3 points".into());
        }
        for [lon, lat] in ring {
            LatLon::new(*lat, *lon).map_err(|e| format!("service area polygon: {e}"))?;
        }
        let line: LineString<f64> = ring
            .iter()
            .map(|[lon, lat]| Coord { x: *lon, y: *lat })
            .collect();
        Ok(ServiceArea::Polygon(Polygon::new(line, vec![])))
    }

    pub fn contains(&self, p: LatLon) -> bool {
        let point = p.point();
        match self {
            // Rect::contains excludes the border; a report on the border line is in.
            ServiceArea::Bbox(rect) => {
                let (min, max) = (rect.min(), rect.max());
                (min.x..=max.x).contains(&point.x()) && (min.y..=max.y).contains(&point.y())
            }
            ServiceArea::Polygon(polygon) => polygon.contains(&point),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: LatLon, b: LatLon, metres: f64) -> bool {
        a.distance_m(b) < metres
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert_eq!(LatLon::new(91.0, 0.0), Err(PositionError::Latitude));
        assert_eq!(LatLon::new(-90.5, 0.0), Err(PositionError::Latitude));
        assert_eq!(LatLon::new(f64::NAN, 0.0), Err(PositionError::Latitude));
        assert_eq!(LatLon::new(0.0, 181.0), Err(PositionError::Longitude));
        assert_eq!(
            LatLon::new(0.0, f64::INFINITY),
            Err(PositionError::Longitude)
        );
        assert!(LatLon::new(90.0, -180.0).is_ok());
    }

    #[test]
    fn an_accuracy_is_a_finite_distance() {
        for bad in [-1.0, -0.001, f64::NAN, f64::INFINITY] {
            assert_eq!(
                check_accuracy(Some(bad)),
                Err(PositionError::Accuracy),
                "{bad}"
            );
        }
        for good in [None, Some(0.0), Some(12.5)] {
            assert_eq!(check_accuracy(good), Ok(good));
        }
    }

    #[test]
    fn gcj02_offset_in_zhangjiagang_is_a_few_hundred_metres() {
        let wgs = LatLon {
            lat: 31.8753,
            lon: 120.5539,
        };
        let gcj = wgs84_to_gcj02(wgs);
        let shift = wgs.distance_m(gcj);
        assert!((300.0..700.0).contains(&shift), "shift {shift} m");
    }

    #[test]
    fn gcj02_round_trip_is_centimetre_exact() {
        for (lat, lon) in [
            (31.8753, 120.5539),
            (39.9087, 116.3975),
            (22.5431, 114.0579),
        ] {
            let wgs = LatLon { lat, lon };
            let back = gcj02_to_wgs84(wgs84_to_gcj02(wgs));
            assert!(close(wgs, back, 0.01), "{wgs:?} -> {back:?}");
        }
    }

    #[test]
    fn bd09_round_trip_and_to_wgs84() {
        let wgs = LatLon {
            lat: 31.8753,
            lon: 120.5539,
        };
        let bd = gcj02_to_bd09(wgs84_to_gcj02(wgs));
        assert!(close(bd.to_wgs84(Crs::Bd09), wgs, 0.5));
        // BD-09 sits further from WGS84 than GCJ-02 does.
        assert!(bd.distance_m(wgs) > wgs84_to_gcj02(wgs).distance_m(wgs));
    }

    #[test]
    fn outside_china_is_unchanged() {
        let paris = LatLon {
            lat: 48.8566,
            lon: 2.3522,
        };
        assert_eq!(paris.to_wgs84(Crs::Gcj02), paris);
    }

    #[test]
    fn known_distance() {
        // One degree of latitude is about 111.2 km.
        let d = LatLon {
            lat: 31.0,
            lon: 120.0,
        }
        .distance_m(LatLon {
            lat: 32.0,
            lon: 120.0,
        });
        assert!((111_000.0..111_400.0).contains(&d), "{d}");
    }

    #[test]
    fn bbox_area_includes_border() {
        let area = ServiceArea::from_bbox([120.0, 31.0, 121.0, 32.0]).unwrap();
        assert!(area.contains(LatLon {
            lat: 31.5,
            lon: 120.5
        }));
        assert!(area.contains(LatLon {
            lat: 31.0,
            lon: 120.0
        }));
        assert!(!area.contains(LatLon {
            lat: 30.99,
            lon: 120.5
        }));
        assert!(ServiceArea::from_bbox([121.0, 31.0, 120.0, 32.0]).is_err());
    }

    #[test]
    fn polygon_area() {
        let area = ServiceArea::from_ring(&[[120.0, 31.0], [121.0, 31.0], [120.5, 32.0]]).unwrap();
        assert!(area.contains(LatLon {
            lat: 31.2,
            lon: 120.5
        }));
        assert!(!area.contains(LatLon {
            lat: 31.9,
            lon: 120.1
        }));
        assert!(ServiceArea::from_ring(&[[120.0, 31.0], [121.0, 31.0]]).is_err());
        assert!(ServiceArea::from_ring(&[[120.0, 31.0], [121.0, 91.0], [120.0, 32.0]]).is_err());
    }
}
