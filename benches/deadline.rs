//! Deadline computation over the shipped 2025–2026 CN calendar.
//!
//! Run from the repository root: `cargo bench --bench deadline`.

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use civicsnap::domain::deadline::{Calendar, DEFAULT_TZ, DeadlineCalculator, Limit, OfficeHours};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CN_2025: &str = include_str!("../calendars/cn-2025.json");
const CN_2026: &str = include_str!("../calendars/cn-2026.json");

/// 4,096 starts spread over 2025 and the first ten months of 2026 at odd
/// minutes, so limits of up to 30 work days stay inside the calendar.
fn starts() -> Vec<DateTime<Utc>> {
    let base = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    (0..4096i64)
        .map(|i| base + Duration::minutes(i * 7_919 % (660 * 24 * 60)))
        .collect()
}

fn bench(c: &mut Criterion) {
    let cal = Calendar::from_years(&[CN_2025, CN_2026]).expect("shipped calendars");
    let calc =
        DeadlineCalculator::new(cal, OfficeHours::standard(), DEFAULT_TZ).expect("calculator");
    let starts = starts();
    let mut g = c.benchmark_group("deadline");
    g.throughput(Throughput::Elements(starts.len() as u64));
    for (name, limit) in [
        ("work_days_3", Limit::work_days(3)),
        ("work_days_30", Limit::work_days(30)),
        ("work_hours_4", Limit::work_hours(4)),
        ("work_hours_40", Limit::work_hours(40)),
        ("natural_hours_24", Limit::natural_hours(24)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for &s in &starts {
                    black_box(calc.due(black_box(s), limit).ok());
                }
            })
        });
    }
    let pause = |s: DateTime<Utc>| [(s + Duration::hours(2), s + Duration::hours(30))];
    g.bench_function("work_days_3_with_pause", |b| {
        b.iter(|| {
            for &s in &starts {
                black_box(
                    calc.due_with_pauses(black_box(s), Limit::work_days(3), &pause(s))
                        .ok(),
                );
            }
        })
    });
    g.bench_function("compute_work_days_3_explained", |b| {
        b.iter(|| {
            for &s in &starts {
                black_box(calc.compute(black_box(s), Limit::work_days(3)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
