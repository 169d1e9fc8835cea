//! Cost of turning one 12 MP phone photo into the served copies, in total and per
//! stage, so a regression can be pinned to decode, resize or encode.
//!
//! Compare against libjpeg-turbo's plain full decode of the same file (see
//! BENCHMARKS.md): the pipeline should cost about as much as just decoding it.
//!
//! `all_cores` runs one photo per core at once on the service's own worker pool,
//! the ceiling for upload throughput; run it without `taskset`.

use std::hint::black_box;

use civicsnap::media::{PhotoLimits, PhotoWorkers, process_photo, stages};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;

const STREET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/street-12mp.jpg"
));

fn pipeline(c: &mut Criterion) {
    let limits = PhotoLimits::default();
    let mut group = c.benchmark_group("photo_pipeline");
    group.sample_size(30);

    group.bench_function("process_photo/street-12mp", |b| {
        b.iter(|| process_photo(black_box(STREET), &limits).expect("fixture processes"))
    });

    group.bench_function("stage/decode", |b| {
        b.iter(|| stages::decode_jpeg(black_box(STREET)).expect("fixture decodes"))
    });

    let decoded = stages::decode_jpeg(STREET).expect("fixture decodes");
    group.bench_function("stage/resize", |b| {
        b.iter(|| stages::resize(black_box(&decoded)).expect("fixture resizes"))
    });

    let copies = stages::resize(&decoded).expect("fixture resizes");
    group.bench_function("stage/encode", |b| {
        b.iter(|| stages::encode(black_box(&copies)).expect("copies encode"))
    });

    group.finish();
}

fn all_cores(c: &mut Criterion) {
    let limits = PhotoLimits::default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = PhotoWorkers::new(cores).expect("photo workers start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime starts");
    let mut group = c.benchmark_group("photo_pipeline");
    group.sample_size(30);
    // One iteration is a photo per core, so the rate criterion prints is photos/s.
    group.throughput(Throughput::Elements(cores as u64));
    group.bench_function(format!("all_cores/{cores}"), |b| {
        b.iter(|| {
            runtime.block_on(join_all((0..cores).map(|_| async {
                let limits = limits.clone();
                let worker = workers.acquire().await;
                worker
                    .run(move || process_photo(STREET, &limits).expect("fixture processes"))
                    .await
            })))
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline, all_cores);
criterion_main!(benches);
