//! Free-text PHI speed: the recognizer alone, and with redaction and surrogates, on the
//! clinical notes of a generated sample (`fhirpipe::sample::generate`, 40 patients, seed 7:
//! about 900 notes, 1.2 MB of text), each note with the KnownPhi of its patient, author and
//! custodian. Throughput is in bytes of note text. Run with `cargo bench --bench phi`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fhirpipe::phi::eval::{load_corpus, Doc};
use fhirpipe::phi::{redact, surrogate, Policy, Recognizer, RedactFormat, Surrogates};
use fhirpipe::sample::{generate, SampleOptions};
use std::hint::black_box;

fn notes() -> Vec<Doc> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let opts = SampleOptions {
        patients: 40,
        seed: 7,
        out: tmp.path().join("s"),
        gzip: false,
        annotations: Some(tmp.path().join("notes.ndjson")),
    };
    generate(&opts, &|_, _| {}).expect("sample");
    load_corpus(&opts.out, &tmp.path().join("notes.ndjson")).expect("corpus")
}

fn bench(c: &mut Criterion) {
    let docs = notes();
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    eprintln!("{} notes, {bytes} bytes of text", docs.len());
    let rec = Recognizer::new();
    let policy = Policy::default();
    let format = RedactFormat::default();
    let sur = Surrogates::new(b"bench secret", 365);
    let mut g = c.benchmark_group("phi");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("find", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &docs {
                n += rec.find(black_box(&d.text), &d.known).len();
            }
            n
        })
    });
    g.bench_function("find_redact", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &docs {
                let spans = rec.find(black_box(&d.text), &d.known);
                n += redact(&d.text, &spans, &format, &policy).len();
            }
            n
        })
    });
    g.bench_function("find_surrogate", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in &docs {
                let spans = rec.find(black_box(&d.text), &d.known);
                n += surrogate(&d.text, &spans, &sur, &policy, &d.patient).len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
