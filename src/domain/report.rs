//! What makes a citizen's report acceptable, before anything is stored.

use chrono::NaiveDate;
use uuid::Uuid;

use super::code::{CATEGORY_CODE_RULE, is_category_code};
use super::geo::{Crs, LatLon, ServiceArea, check_accuracy};

/// The most photos one submission may carry: a citizen's report, or a unit's
/// report of work done.
pub const MAX_PHOTOS: usize = 9;

/// Limits a deployment sets for reports.
#[derive(Clone, Debug)]
pub struct ReportRules {
    pub max_description_chars: usize,
    pub max_address_chars: usize,
    pub max_photos: usize,
    pub max_photo_distance_m: f64,
    pub service_area: ServiceArea,
}

/// A report as the client sent it (already parsed from JSON).
#[derive(Clone, Debug)]
pub struct ReportInput {
    pub category: String,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub crs: Crs,
    pub address: Option<String>,
    pub description: String,
    pub photo_ids: Vec<Uuid>,
    pub confidential: bool,
}

/// A report that passed every check that needs no stored data.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidReport {
    pub category: String,
    /// WGS84, whatever the client sent.
    pub location: LatLon,
    pub accuracy_m: Option<f64>,
    pub address: Option<String>,
    pub description: String,
    pub photo_ids: Vec<Uuid>,
    pub confidential: bool,
}

/// Why a report was refused, naming the field and a stable code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidReport {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> InvalidReport {
    InvalidReport {
        field,
        code,
        message: message.into(),
    }
}

pub fn validate(input: ReportInput, rules: &ReportRules) -> Result<ValidReport, InvalidReport> {
    let category = input.category.trim().to_owned();
    if !is_category_code(&category) {
        return Err(invalid("category", "invalid_category", CATEGORY_CODE_RULE));
    }
    let given = LatLon::new(input.lat, input.lon)
        .map_err(|e| invalid("location", "invalid_location", e.to_string()))?;
    let location = given.to_wgs84(input.crs);
    if !rules.service_area.contains(location) {
        return Err(invalid(
            "location",
            "outside_service_area",
            format!(
                "the location ({:.5}, {:.5}) is outside the area this service covers",
                location.lat, location.lon
            ),
        ));
    }
    let accuracy_m = check_accuracy(input.accuracy_m)
        .map_err(|e| invalid("location", "invalid_location", e.to_string()))?;
    let description = input.description.trim().to_owned();
    let chars = description.chars().count();
    if chars > rules.max_description_chars {
        return Err(invalid(
            "description",
            "description_too_long",
            format!(
                "description has {chars} characters; at most {} are allowed",
                rules.max_description_chars
            ),
        ));
    }
    let address = input
        .address
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    if let Some(address) = &address
        && address.chars().count() > rules.max_address_chars
    {
        return Err(invalid(
            "address",
            "address_too_long",
            format!(
                "address is longer than {} characters",
                rules.max_address_chars
            ),
        ));
    }
    if input.photo_ids.is_empty() || input.photo_ids.len() > rules.max_photos {
        return Err(invalid(
            "photo_ids",
            "invalid_photo_count",
            format!("a report needs between 1 and {} photos", rules.max_photos),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(input.photo_ids.len());
    if !input.photo_ids.iter().all(|id| seen.insert(*id)) {
        return Err(invalid(
            "photo_ids",
            "duplicate_photo",
            "the same photo is listed twice",
        ));
    }
    Ok(ValidReport {
        category,
        location,
        accuracy_m,
        address,
        description,
        photo_ids: input.photo_ids,
        confidential: input.confidential,
    })
}

/// The largest distance between the report and a photo's own GPS position, when it
/// exceeds `max_m`: a sign the photo was taken elsewhere, for an operator to look at.
pub fn photo_location_mismatch(
    report: LatLon,
    photo_positions: impl IntoIterator<Item = LatLon>,
    max_m: f64,
) -> Option<f64> {
    photo_positions
        .into_iter()
        .map(|p| report.distance_m(p))
        .filter(|d| *d > max_m)
        .max_by(f64::total_cmp)
}

/// `SP20260512-000123`: prefix, the local date of receipt, and that day's sequence.
pub fn tracking_number(prefix: &str, local_date: NaiveDate, sequence: i64) -> String {
    format!("{prefix}{}-{sequence:06}", local_date.format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ReportRules {
        ReportRules {
            max_description_chars: 2000,
            max_address_chars: 200,
            max_photos: MAX_PHOTOS,
            max_photo_distance_m: 500.0,
            service_area: ServiceArea::from_bbox([120.25, 31.70, 120.90, 32.10]).unwrap(),
        }
    }

    fn input() -> ReportInput {
        ReportInput {
            category: " 0401 ".into(),
            lat: 31.8753,
            lon: 120.5539,
            accuracy_m: Some(8.0),
            crs: Crs::Wgs84,
            address: Some("  暨阳中路  ".into()),
            description: " 楼道里飞线充电 ".into(),
            photo_ids: vec![Uuid::now_v7()],
            confidential: false,
        }
    }

    fn refusal(i: ReportInput) -> (&'static str, &'static str) {
        let e = validate(i, &rules()).unwrap_err();
        (e.field, e.code)
    }

    #[test]
    fn accepts_and_trims_a_good_report() {
        let r = validate(input(), &rules()).unwrap();
        assert_eq!(r.category, "0401");
        assert_eq!(r.address.as_deref(), Some("暨阳中路"));
        assert_eq!(r.description, "楼道里飞线充电");
        assert_eq!(
            r.location,
            LatLon {
                lat: 31.8753,
                lon: 120.5539
            }
        );
    }

    #[test]
    fn converts_gcj02_to_wgs84() {
        let r = validate(
            ReportInput {
                crs: Crs::Gcj02,
                ..input()
            },
            &rules(),
        )
        .unwrap();
        let shift = r.location.distance_m(LatLon {
            lat: 31.8753,
            lon: 120.5539,
        });
        assert!(shift > 300.0, "{shift}");
    }

    #[test]
    fn refuses_bad_positions() {
        assert_eq!(
            refusal(ReportInput {
                lat: 91.0,
                ..input()
            }),
            ("location", "invalid_location")
        );
        assert_eq!(
            refusal(ReportInput {
                lon: 181.0,
                ..input()
            }),
            ("location", "invalid_location")
        );
        assert_eq!(
            refusal(ReportInput {
                lat: f64::NAN,
                ..input()
            }),
            ("location", "invalid_location")
        );
        assert_eq!(
            refusal(ReportInput {
                lat: 39.9,
                lon: 116.4,
                ..input()
            }),
            ("location", "outside_service_area")
        );
        assert_eq!(
            refusal(ReportInput {
                accuracy_m: Some(-1.0),
                ..input()
            }),
            ("location", "invalid_location")
        );
    }

    #[test]
    fn refuses_bad_text() {
        assert_eq!(
            refusal(ReportInput {
                category: " ".into(),
                ..input()
            }),
            ("category", "invalid_category")
        );
        let long = "飞".repeat(2001);
        assert_eq!(
            refusal(ReportInput {
                description: long,
                ..input()
            }),
            ("description", "description_too_long")
        );
        assert!(
            validate(
                ReportInput {
                    description: "飞".repeat(2000),
                    ..input()
                },
                &rules()
            )
            .is_ok()
        );
        assert_eq!(
            refusal(ReportInput {
                address: Some("路".repeat(201)),
                ..input()
            }),
            ("address", "address_too_long")
        );
    }

    #[test]
    fn refuses_bad_photo_lists() {
        assert_eq!(
            refusal(ReportInput {
                photo_ids: vec![],
                ..input()
            }),
            ("photo_ids", "invalid_photo_count")
        );
        let ten = (0..10).map(|_| Uuid::now_v7()).collect();
        assert_eq!(
            refusal(ReportInput {
                photo_ids: ten,
                ..input()
            }),
            ("photo_ids", "invalid_photo_count")
        );
        let id = Uuid::now_v7();
        assert_eq!(
            refusal(ReportInput {
                photo_ids: vec![id, id],
                ..input()
            }),
            ("photo_ids", "duplicate_photo")
        );
    }

    #[test]
    fn flags_distant_photos_only() {
        let here = LatLon {
            lat: 31.8753,
            lon: 120.5539,
        };
        let near = LatLon {
            lat: 31.8760,
            lon: 120.5545,
        };
        let far = LatLon {
            lat: 31.8853,
            lon: 120.5539,
        };
        assert_eq!(photo_location_mismatch(here, [near], 500.0), None);
        let d = photo_location_mismatch(here, [near, far], 500.0).unwrap();
        assert!((1000.0..1200.0).contains(&d), "{d}");
        assert_eq!(photo_location_mismatch(here, [], 500.0), None);
    }

    #[test]
    fn tracking_numbers() {
        let day = NaiveDate::from_ymd_opt(2026, 5, 12).unwrap();
        assert_eq!(tracking_number("SP", day, 123), "SP20260512-000123");
        assert_eq!(tracking_number("SP", day, 1_234_567), "SP20260512-1234567");
    }
}
