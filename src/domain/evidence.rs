//! Judging a unit's after-photos (办结反馈) before a case goes to the check.
//!
//! DESIGN rule: reporting done needs at least one after-photo taken after
//! dispatch and within 200 m of the case. EXIF time and GPS are optional (many
//! phones strip them), so a photo without them is given the benefit of the
//! doubt; a photo that contradicts them is still accepted, but the case is
//! flagged so the checker (核查) looks closer. Re-sending a before-photo is
//! refused outright: the same picture proves nothing about the repair.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::geo::LatLon;

/// What the media pipeline knows about one stored photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhotoEvidence {
    pub id: Uuid,
    /// EXIF capture time, already converted to UTC by the caller.
    pub taken_at: Option<DateTime<Utc>>,
    /// EXIF position (WGS84).
    pub gps: Option<LatLon>,
    /// 64-bit perceptual hash of the re-encoded image.
    pub phash: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvidenceRules {
    /// Inclusive: a photo exactly this far from the case is close enough.
    pub max_distance_m: f64,
    /// Inclusive: hashes this many bits apart or fewer are the same picture
    /// (re-encoding and resizing flip a few bits of a perceptual hash).
    pub same_photo_max_hamming: u32,
}

impl Default for EvidenceRules {
    fn default() -> Self {
        Self {
            max_distance_m: 200.0,
            same_photo_max_hamming: 6,
        }
    }
}

/// Why no after-photo qualifies, per photo, for the checker.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum EvidenceFlag {
    TakenBeforeDispatch {
        photo: Uuid,
        taken_at: DateTime<Utc>,
    },
    TooFar {
        photo: Uuid,
        /// Whole metres; `u32::MAX` if the position gave no finite distance.
        distance_m: u32,
    },
}

/// The photos are accepted; `flags` is empty when at least one qualifies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Assessment {
    pub flags: Vec<EvidenceFlag>,
}

impl Assessment {
    /// Whether the checker should be told the photos do not prove the repair.
    pub fn is_flagged(&self) -> bool {
        !self.flags.is_empty()
    }
}

/// Why the report is refused. Messages are shown to unit staff; codes are
/// stable API (`missing_after_photo` matches the case machine's refusal).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRefusal {
    #[error("at least one after-photo is required")]
    NoAfterPhoto,
    #[error(
        "after-photo {after} is the same picture as before-photo {before}; \
         take a new photo of the finished work"
    )]
    SameAsBefore { after: Uuid, before: Uuid },
}

impl EvidenceRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceRefusal::NoAfterPhoto => "missing_after_photo",
            EvidenceRefusal::SameAsBefore { .. } => "same_photo_as_before",
        }
    }
}

/// Refuses missing or recycled photos; otherwise accepts and says whether the
/// checker should be warned (see the module docs for the rule).
pub fn assess_after_photos(
    before: &[PhotoEvidence],
    after: &[PhotoEvidence],
    dispatched_at: Option<DateTime<Utc>>,
    case_location: LatLon,
    rules: EvidenceRules,
) -> Result<Assessment, EvidenceRefusal> {
    if after.is_empty() {
        return Err(EvidenceRefusal::NoAfterPhoto);
    }
    // Every after-photo is checked, not just one: a recycled photo next to a
    // genuine one still means someone tried to pass old evidence off as new.
    for a in after {
        if let Some(b) = before
            .iter()
            .find(|b| hamming_distance(a.phash, b.phash) <= rules.same_photo_max_hamming)
        {
            return Err(EvidenceRefusal::SameAsBefore {
                after: a.id,
                before: b.id,
            });
        }
    }

    let mut flags = Vec::new();
    for photo in after {
        let early = match (photo.taken_at, dispatched_at) {
            (Some(taken_at), Some(dispatched)) if taken_at < dispatched => Some(taken_at),
            _ => None,
        };
        // Written as "not close" rather than "farther than" so that a NaN
        // distance (a broken position) is flagged instead of trusted.
        let close = |d: f64| d <= rules.max_distance_m;
        let far = photo
            .gps
            .map(|gps| gps.distance_m(case_location))
            .filter(|d| !close(*d));
        if early.is_none() && far.is_none() {
            return Ok(Assessment::default());
        }
        if let Some(taken_at) = early {
            flags.push(EvidenceFlag::TakenBeforeDispatch {
                photo: photo.id,
                taken_at,
            });
        }
        if let Some(distance) = far {
            flags.push(EvidenceFlag::TooFar {
                photo: photo.id,
                distance_m: whole_metres(distance),
            });
        }
    }
    Ok(Assessment { flags })
}

/// Number of differing bits of two perceptual hashes; re-encodes of the same
/// photo typically differ by a handful, different photos by around 32.
pub fn hamming_distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

fn whole_metres(distance: f64) -> u32 {
    // Distances on Earth stay far below u32::MAX metres; the cast saturates.
    if distance.is_finite() {
        distance.round() as u32
    } else {
        u32::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn dispatched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    fn site() -> LatLon {
        LatLon {
            lat: 31.2304,
            lon: 121.4737,
        }
    }

    /// A point `metres` due north of the site.
    fn north(metres: f64) -> LatLon {
        // Metres per degree of latitude on the sphere `distance_m` uses; the
        // tests below read the real distance back rather than trust this.
        let per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
        LatLon {
            lat: site().lat + metres / per_degree,
            lon: site().lon,
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn photo(
        n: u128,
        taken_at: Option<DateTime<Utc>>,
        gps: Option<LatLon>,
        phash: u64,
    ) -> PhotoEvidence {
        PhotoEvidence {
            id: id(n),
            taken_at,
            gps,
            phash,
        }
    }

    /// A before-photo whose hash is far from every after-photo hash used here.
    fn before() -> Vec<PhotoEvidence> {
        vec![photo(100, None, Some(site()), u64::MAX)]
    }

    fn assess(after: &[PhotoEvidence]) -> Result<Assessment, EvidenceRefusal> {
        assess_after_photos(
            &before(),
            after,
            Some(dispatched()),
            site(),
            EvidenceRules::default(),
        )
    }

    fn secs(s: i64) -> Option<DateTime<Utc>> {
        Some(dispatched() + Duration::seconds(s))
    }

    #[test]
    fn north_helper_is_accurate_enough_for_the_boundary_tests() {
        for m in [50.0, 199.0, 200.0, 201.0, 5_000.0] {
            let got = north(m).distance_m(site());
            assert!((got - m).abs() < 0.01, "{m}: {got}");
        }
    }

    #[test]
    fn single_photo_table() {
        let too_far = |n, m: u32| EvidenceFlag::TooFar {
            photo: id(n),
            distance_m: m,
        };
        let early = |n, s| EvidenceFlag::TakenBeforeDispatch {
            photo: id(n),
            taken_at: dispatched() + Duration::seconds(s),
        };
        // (taken, gps, expected flags)
        type Row = (Option<DateTime<Utc>>, Option<LatLon>, Vec<EvidenceFlag>);
        let table: Vec<Row> = vec![
            // No EXIF at all: nothing contradicts the claim.
            (None, None, vec![]),
            (secs(3600), Some(north(10.0)), vec![]),
            // Exactly at dispatch counts as after it.
            (secs(0), None, vec![]),
            (secs(-1), None, vec![early(1, -1)]),
            (secs(-86_400), Some(site()), vec![early(1, -86_400)]),
            (None, Some(north(199.0)), vec![]),
            (None, Some(north(201.0)), vec![too_far(1, 201)]),
            (None, Some(north(1_234.4)), vec![too_far(1, 1_234)]),
            (None, Some(north(1_234.6)), vec![too_far(1, 1_235)]),
            // Both wrong: both reasons, time first.
            (
                secs(-60),
                Some(north(500.0)),
                vec![early(1, -60), too_far(1, 500)],
            ),
        ];
        for (taken, gps, flags) in table {
            let got = assess(&[photo(1, taken, gps, 0)]);
            assert_eq!(
                got,
                Ok(Assessment {
                    flags: flags.clone()
                }),
                "{taken:?} {gps:?}"
            );
            assert_eq!(got.map(|a| a.is_flagged()), Ok(!flags.is_empty()));
        }
    }

    #[test]
    fn distance_limit_is_inclusive() {
        let gps = north(200.0);
        let exact = gps.distance_m(site());
        // (limit, qualifies)
        let table = [
            (exact, true),
            (exact.next_up(), true),
            (exact.next_down(), false),
            (200.0 + 0.5, true),
            (200.0 - 0.5, false),
        ];
        for (limit, qualifies) in table {
            let rules = EvidenceRules {
                max_distance_m: limit,
                ..EvidenceRules::default()
            };
            let got = assess_after_photos(
                &before(),
                &[photo(1, None, Some(gps), 0)],
                Some(dispatched()),
                site(),
                rules,
            )
            .map(|a| a.flags);
            let want = if qualifies {
                vec![]
            } else {
                vec![EvidenceFlag::TooFar {
                    photo: id(1),
                    distance_m: 200,
                }]
            };
            assert_eq!(got, Ok(want), "limit {limit}");
        }
    }

    #[test]
    fn unknown_dispatch_time_cannot_make_a_photo_early() {
        let got = assess_after_photos(
            &before(),
            &[photo(1, secs(-86_400 * 365), None, 0)],
            None,
            site(),
            EvidenceRules::default(),
        );
        assert_eq!(got, Ok(Assessment::default()));
    }

    #[test]
    fn broken_position_is_flagged_not_trusted() {
        let nan = LatLon {
            lat: f64::NAN,
            lon: site().lon,
        };
        assert_eq!(
            assess(&[photo(1, None, Some(nan), 0)]).map(|a| a.flags),
            Ok(vec![EvidenceFlag::TooFar {
                photo: id(1),
                distance_m: u32::MAX
            }])
        );
    }

    #[test]
    fn one_qualifying_photo_is_enough() {
        let bad_time = photo(1, secs(-60), None, 0);
        let bad_place = photo(2, None, Some(north(300.0)), 0);
        let good = photo(3, secs(60), Some(north(20.0)), 0);
        // (after photos, flagged)
        let table: Vec<(Vec<PhotoEvidence>, bool)> = vec![
            (vec![bad_time, bad_place, good], false),
            (vec![good, bad_time, bad_place], false),
            (vec![bad_place, good], false),
            (vec![bad_time, bad_place], true),
        ];
        for (after, flagged) in table {
            let got = assess(&after).map(|a| a.is_flagged());
            assert_eq!(
                got,
                Ok(flagged),
                "{:?}",
                after.iter().map(|p| p.id).collect::<Vec<_>>()
            );
        }
        // When none qualifies, every photo says why, in input order.
        assert_eq!(
            assess(&[bad_place, bad_time]).map(|a| a.flags),
            Ok(vec![
                EvidenceFlag::TooFar {
                    photo: id(2),
                    distance_m: 300
                },
                EvidenceFlag::TakenBeforeDispatch {
                    photo: id(1),
                    taken_at: dispatched() - Duration::seconds(60)
                },
            ])
        );
    }

    #[test]
    fn no_after_photo_is_refused() {
        assert_eq!(assess(&[]), Err(EvidenceRefusal::NoAfterPhoto));
        // Even with no before-photos to compare against.
        assert_eq!(
            assess_after_photos(&[], &[], None, site(), EvidenceRules::default()),
            Err(EvidenceRefusal::NoAfterPhoto)
        );
    }

    #[test]
    fn same_photo_threshold_table() {
        let base: u64 = 0xF0F0_F0F0_0F0F_0F0F;
        // Flip the lowest `bits` bits.
        let flip = |bits: u32| base ^ (u64::MAX >> (64 - bits));
        // (after hash, refused)
        let table = [
            (base, true),
            (flip(1), true),
            (flip(6), true),
            (flip(7), false),
            (!base, false),
        ];
        for (hash, refused) in table {
            let before = [photo(100, None, None, base)];
            let got = assess_after_photos(
                &before,
                &[photo(1, None, None, hash)],
                Some(dispatched()),
                site(),
                EvidenceRules::default(),
            );
            let want = if refused {
                Err(EvidenceRefusal::SameAsBefore {
                    after: id(1),
                    before: id(100),
                })
            } else {
                Ok(Assessment::default())
            };
            assert_eq!(got, want, "{} bits apart", hamming_distance(base, hash));
        }
        // The threshold is a rule, not a constant.
        let strict = EvidenceRules {
            same_photo_max_hamming: 0,
            ..EvidenceRules::default()
        };
        let got = assess_after_photos(
            &[photo(100, None, None, base)],
            &[photo(1, None, None, flip(1))],
            None,
            site(),
            strict,
        );
        assert_eq!(got, Ok(Assessment::default()));
    }

    #[test]
    fn recycled_photo_is_refused_even_beside_a_good_one() {
        let before = [
            photo(100, None, None, 0x0000_0000_0000_00FF),
            photo(101, None, None, 0xFFFF_0000_0000_0000),
        ];
        let good = photo(1, secs(60), Some(site()), 0x00FF_FF00_00FF_FF00);
        let recycled_101 = photo(2, None, None, 0xFFFF_0000_0000_0001);
        let recycled_100 = photo(3, None, None, 0x0000_0000_0000_00FE);
        // (after photos, expected first pair)
        let table = [
            (vec![good, recycled_101], (2, 101)),
            (vec![recycled_101, recycled_100], (2, 101)),
            (vec![recycled_100, recycled_101, good], (3, 100)),
        ];
        for (after, (a, b)) in table {
            assert_eq!(
                assess_after_photos(&before, &after, None, site(), EvidenceRules::default()),
                Err(EvidenceRefusal::SameAsBefore {
                    after: id(a),
                    before: id(b)
                })
            );
        }
    }

    #[test]
    fn flags_serialize_tagged_in_snake_case() {
        let a = Assessment {
            flags: vec![
                EvidenceFlag::TakenBeforeDispatch {
                    photo: id(1),
                    taken_at: dispatched(),
                },
                EvidenceFlag::TooFar {
                    photo: id(2),
                    distance_m: 250,
                },
            ],
        };
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"flags": [
                {"flag": "taken_before_dispatch", "photo": id(1), "taken_at": "2026-03-02T10:00:00Z"},
                {"flag": "too_far", "photo": id(2), "distance_m": 250},
            ]})
        );
    }

    #[test]
    fn refusal_codes_and_messages() {
        let same = EvidenceRefusal::SameAsBefore {
            after: id(1),
            before: id(2),
        };
        assert_eq!(EvidenceRefusal::NoAfterPhoto.code(), "missing_after_photo");
        assert_eq!(same.code(), "same_photo_as_before");
        assert_eq!(
            EvidenceRefusal::NoAfterPhoto.to_string(),
            "at least one after-photo is required"
        );
        assert!(same.to_string().contains(&id(1).to_string()));
        assert!(same.to_string().contains(&id(2).to_string()));
    }
}
