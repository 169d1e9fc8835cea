//! Cost of turning one 12 MP phone photo into the served copies, in total and per
//! stage, so a regression can be pinned to decode, resize or encode.
//!
//! Compare against libjpeg-turbo's plain full decode of the same file (see
//! BENCHMARKS.md): the pipeline should cost about as much as just decoding it.

use std::hint::black_box;

use civicsnap::media::{PhotoLimits, process_photo, stages};
use criterion::{Criterion, criterion_group, criterion_main};

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

criterion_group!(benches, pipeline);
criterion_main!(benches);
