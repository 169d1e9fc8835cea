//! Routing benchmarks on a synthetic city: 200 districts (128-vertex
//! polygons), 10,000 unit grids (12-vertex polygons) and 5,000 rules with no
//! ties, around 31.6–32.1 N, 120.3–120.9 E.
//!
//! Run from the repository root: `cargo bench --bench routing`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use civicsnap::domain::geo::LatLon;
use civicsnap::domain::routing::{Decision, RoutingTable, Rule, Zone, ZoneKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use geo::{Coord, Intersects, LineString, MultiPolygon, Polygon};
use uuid::Uuid;

/// Counts live heap bytes so the table's footprint is measured, not guessed.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// SplitMix64: deterministic, good enough for spreading test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LON0: f64 = 120.3;
const LAT0: f64 = 31.6;
const DISTRICT_COLS: usize = 20;
const DISTRICT_ROWS: usize = 10;
const DISTRICT_W: f64 = 0.6 / DISTRICT_COLS as f64; // 0.03°
const DISTRICT_H: f64 = 0.5 / DISTRICT_ROWS as f64; // 0.05°
const GRID_COLS: usize = 100;
const GRID_ROWS: usize = 100;
const GRID_W: f64 = 0.6 / GRID_COLS as f64;
const GRID_H: f64 = 0.5 / GRID_ROWS as f64;

/// A star-shaped ring around (cx, cy): `n` vertices at angles 2πk/n with a
/// jittered radius, so it is simple (no self-intersection) yet irregular.
fn blob(rng: &mut Rng, cx: f64, cy: f64, rx: f64, ry: f64, n: usize) -> MultiPolygon<f64> {
    let mut coords: Vec<Coord<f64>> = (0..n)
        .map(|k| {
            let angle = std::f64::consts::TAU * k as f64 / n as f64;
            let r = 0.9 + 0.1 * rng.unit();
            Coord {
                x: cx + rx * r * angle.cos(),
                y: cy + ry * r * angle.sin(),
            }
        })
        .collect();
    coords.push(coords[0]);
    MultiPolygon::new(vec![Polygon::new(LineString::new(coords), vec![])])
}

/// Districts are near-circular blobs (128 vertices) on a 20×10 arrangement,
/// each slightly larger than its cell so neighbours overlap at the corners;
/// grids are 12-vertex blobs on a 100×100 arrangement (5×10 per district).
fn city() -> Vec<Zone> {
    let mut rng = Rng(0x5EED_C175);
    let mut zones = Vec::with_capacity(DISTRICT_COLS * DISTRICT_ROWS + GRID_COLS * GRID_ROWS);
    for row in 0..DISTRICT_ROWS {
        for col in 0..DISTRICT_COLS {
            let (cx, cy) = (
                LON0 + (col as f64 + 0.5) * DISTRICT_W,
                LAT0 + (row as f64 + 0.5) * DISTRICT_H,
            );
            let geometry = blob(&mut rng, cx, cy, DISTRICT_W * 0.75, DISTRICT_H * 0.75, 128);
            let code = district_code(row, col);
            zones.push(Zone::new(
                code.clone(),
                code,
                ZoneKind::District,
                None,
                geometry,
            ));
        }
    }
    for row in 0..GRID_ROWS {
        for col in 0..GRID_COLS {
            let (cx, cy) = (
                LON0 + (col as f64 + 0.5) * GRID_W,
                LAT0 + (row as f64 + 0.5) * GRID_H,
            );
            let geometry = blob(&mut rng, cx, cy, GRID_W * 0.5, GRID_H * 0.5, 12);
            let district = district_code(row / 10, col / 5);
            let code = format!("{district}{:03}{:03}{:03}", row % 10, col % 5, 1);
            zones.push(Zone::new(
                code.clone(),
                code,
                ZoneKind::Grid,
                Some(district),
                geometry,
            ));
        }
    }
    zones
}

fn district_code(row: usize, col: usize) -> String {
    format!("32{:02}{:02}", row, col)
}

/// 5,000 rules over "01".."10" and their small classes, on grids, districts
/// and citywide. Ties are impossible by construction: every rule gets a
/// distinct priority.
fn rules(zones: &[Zone]) -> Vec<Rule> {
    let mut rng = Rng(0x0123_4567);
    (0..5000u32)
        .map(|n| {
            let big = 1 + rng.below(10);
            let category_prefix = if rng.below(3) == 0 {
                format!("{big:02}")
            } else {
                format!("{big:02}{:02}", 1 + rng.below(20))
            };
            let zone_code = match rng.below(10) {
                0 => None,
                1..=3 => Some(zones[rng.below(200) as usize].code().to_owned()),
                _ => Some(zones[200 + rng.below(10_000) as usize].code().to_owned()),
            };
            Rule {
                id: Uuid::from_u128(u128::from(n) + 1),
                version: 1,
                category_prefix,
                zone_code,
                lead_unit: format!("unit-{}", n % 97),
                co_units: vec![format!("co-{}", n % 13)],
                deadline_profile: Some("standard".into()),
                priority: n as i32,
                valid_from: None,
                valid_to: None,
                active: n % 50 != 0,
            }
        })
        .collect()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

fn queries(n: usize) -> Vec<(LatLon, String)> {
    let mut rng = Rng(0xDEC1DE);
    (0..n)
        .map(|_| {
            let p = LatLon {
                lat: LAT0 + 0.5 * rng.unit(),
                lon: LON0 + 0.6 * rng.unit(),
            };
            let category = format!("{:02}{:02}", 1 + rng.below(10), 1 + rng.below(20));
            (p, category)
        })
        .collect()
}

/// The baseline: an exact test on every zone, then every rule.
fn naive_decide(zones: &[Zone], rules: &[Rule], p: LatLon, category: &str) -> Option<Uuid> {
    let point = Coord { x: p.lon, y: p.lat };
    let inside: Vec<&Zone> = zones
        .iter()
        .filter(|z| z.geometry().intersects(&point))
        .collect();
    let at = at();
    rules
        .iter()
        .filter(|r| {
            r.active
                && r.valid_from.is_none_or(|f| at >= f)
                && r.valid_to.is_none_or(|t| at < t)
                && r.category_prefix.len() % 2 == 0
                && category.starts_with(r.category_prefix.as_str())
        })
        .filter_map(|r| match &r.zone_code {
            None => Some((r, f64::INFINITY, "")),
            Some(code) => inside
                .iter()
                .find(|z| z.code() == code)
                .map(|z| (r, z.area_m2(), z.code())),
        })
        .min_by(|a, b| {
            b.0.priority
                .cmp(&a.0.priority)
                .then(a.1.total_cmp(&b.1))
                .then(b.0.category_prefix.len().cmp(&a.0.category_prefix.len()))
                .then(a.2.cmp(b.2))
                .then(a.0.id.cmp(&b.0.id))
        })
        .map(|(r, _, _)| r.id)
}

fn bench(c: &mut Criterion) {
    let zones = city();
    let rules = rules(&zones);
    let table = match RoutingTable::build(zones.clone(), rules.clone()) {
        Ok(table) => table,
        Err(e) => panic!("synthetic city refused: {e}"),
    };
    let points = queries(1000);

    // The two implementations must agree before their speeds are compared.
    let mut decided = 0;
    for (p, category) in &points[..200] {
        let fast = table.decide(*p, category, at()).winner.map(|w| w.id);
        assert_eq!(fast, naive_decide(&zones, &rules, *p, category));
        decided += usize::from(fast.is_some());
    }
    println!("routing: {decided}/200 sample queries have a winner");

    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("decide_table", |b| {
        b.iter(|| {
            for (p, category) in &points {
                let decision: Decision = table.decide(*p, category, at());
                black_box(decision);
            }
        })
    });
    let naive_points = &points[..100];
    group.throughput(Throughput::Elements(naive_points.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("decide_naive_scan", |b| {
        b.iter(|| {
            for (p, category) in naive_points {
                black_box(naive_decide(&zones, &rules, *p, category));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("build", |b| {
        b.iter_batched(
            || (zones.clone(), rules.clone()),
            |(zones, rules)| black_box(RoutingTable::build(zones, rules).is_ok()),
            criterion::BatchSize::LargeInput,
        )
    });
    // Loading also pays for Zone::new (geodesic area of every zone).
    let raw: Vec<(String, ZoneKind, Option<String>, MultiPolygon<f64>)> = zones
        .iter()
        .map(|z| {
            let parent = z.parent_code().map(str::to_owned);
            (z.code().to_owned(), z.kind(), parent, z.geometry().clone())
        })
        .collect();
    group.bench_function("zone_areas_and_build", |b| {
        b.iter_batched(
            || (raw.clone(), rules.clone()),
            |(raw, rules)| {
                let zones = raw
                    .into_iter()
                    .map(|(code, kind, parent, geometry)| {
                        Zone::new(code.clone(), code, kind, parent, geometry)
                    })
                    .collect();
                black_box(RoutingTable::build(zones, rules).is_ok())
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();

    // Heap held by a table (inputs moved in, so their bytes count too).
    let (z, r) = (zones.clone(), rules.clone());
    let before = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    let built = RoutingTable::build(z, r);
    let elapsed = start.elapsed();
    let after = LIVE.load(Ordering::Relaxed);
    let input_bytes = {
        let before = LIVE.load(Ordering::Relaxed);
        let copy = (zones.clone(), rules.clone());
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        drop(copy);
        bytes
    };
    println!(
        "routing: one build {:.1} ms; table heap {:.1} MB (of which moved-in zones and rules {:.1} MB)",
        elapsed.as_secs_f64() * 1e3,
        (after + input_bytes).saturating_sub(before) as f64 / 1e6,
        input_bytes as f64 / 1e6,
    );
    black_box(built.is_ok());
}

criterion_group!(benches, bench);
criterion_main!(benches);
