//! FHIRPath evaluation speed on real data: three compiled expressions on the Observations and
//! Patients of `../shared/data/synthea-150`, with the simd-json parse of each line included and
//! excluded. Run with `cargo bench --bench fhirpath`; skips with a message when ../shared is
//! missing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fhirpipe::fhirpath::Expression;
use std::hint::black_box;
use std::path::PathBuf;

fn lines(file: &str) -> Option<Vec<Vec<u8>>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/synthea-150");
    let text = std::fs::read(dir.join(file)).ok()?;
    Some(
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

const CASES: [(&str, &str); 3] = [
    (
        "Observation.ndjson",
        "Observation.code.coding.where(system='http://loinc.org').code",
    ),
    (
        "Observation.ndjson",
        "Observation.value.ofType(Quantity).value > 100",
    ),
    (
        "Patient.ndjson",
        "Patient.name.where(use='official').given.first()",
    ),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fhirpath");
    g.sample_size(10);
    for (i, (file, src)) in CASES.iter().enumerate() {
        let Some(data) = lines(file) else {
            eprintln!("SKIP: ../shared/data/synthea-150/{file} not found");
            return;
        };
        let expr = Expression::parse(src).expect("benchmark expression");
        g.throughput(Throughput::Elements(data.len() as u64));
        let mut scratch = Vec::new();
        g.bench_function(format!("expr{}_parse_and_eval", i + 1), |b| {
            b.iter(|| {
                let mut n = 0;
                for line in &data {
                    scratch.clear();
                    scratch.extend_from_slice(line);
                    let tape = simd_json::to_tape(&mut scratch).expect("valid JSON");
                    n += expr.evaluate(tape.as_value()).expect("evaluates").len();
                }
                black_box(n)
            })
        });
        let mut copies: Vec<Vec<u8>> = data.clone();
        let tapes: Vec<_> = copies
            .iter_mut()
            .map(|l| simd_json::to_tape(l).expect("valid JSON"))
            .collect();
        g.bench_function(format!("expr{}_eval_only", i + 1), |b| {
            b.iter(|| {
                let mut n = 0;
                for t in &tapes {
                    n += expr.evaluate(t.as_value()).expect("evaluates").len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
