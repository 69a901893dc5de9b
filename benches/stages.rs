//! Micro-benchmarks of the hot stages: line splitting, parse + basic checks, parse + structure
//! validation, the transform stage (a FHIRPath `where` filter; lossless edits of every
//! resource), Parquet encoding. Input: Observation-like NDJSON lines built here (about 16 MB),
//! so the benchmark needs no external data; when `../shared/data/synthea-150` (or
//! `$FHIRPIPE_SHARED/data/synthea-150`) exists, the checks are also measured on a slice of it
//! that keeps its mix of resource types, with and without the `[deidentify]` stage (the HIPAA
//! Safe Harbor preset `pipelines/deid/safe-harbor.json`). Run with
//! `cargo bench --bench stages [-- FILTER]`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fhirpipe::batch::{BufPool, Chunk, SourceFile};
use fhirpipe::config::{Compression, ParquetLayout, ParquetPlan, ValidateLevel};
use fhirpipe::sink::parquet::ParquetSink;
use fhirpipe::sink::Sink;
use fhirpipe::source::LineSplitter;
use fhirpipe::stage::transform::{Mode, Transformer};
use fhirpipe::stage::Checker;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

fn ndjson(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 2048);
    let mut i = 0u64;
    while out.len() < bytes {
        let line = format!(
            r#"{{"resourceType":"Observation","id":"obs-{i:08}","meta":{{"versionId":"1","lastUpdated":"2024-05-0{d}T10:{m:02}:00.000Z"}},"status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"vital-signs"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}}],"text":"Heart rate"}},"subject":{{"reference":"Patient/pat-{p:06}"}},"encounter":{{"reference":"Encounter/enc-{e:07}"}},"effectiveDateTime":"2024-05-0{d}T10:{m:02}:00+02:00","issued":"2024-05-0{d}T10:{m:02}:00.000+02:00","valueQuantity":{{"value":{v}.{f},"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}}}"#,
            d = 1 + i % 9,
            m = i % 60,
            p = i % 5000,
            e = i % 90000,
            v = 50 + i % 70,
            f = i % 10
        );
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        i += 1;
    }
    out
}

/// Every `step`-th line of every synthea-150 file (about 15 MB with step 4: all 16 resource
/// types in their proportions), or `None` when the shared data is not there.
fn synthea_slice(step: usize) -> Option<Vec<u8>> {
    let shared = std::env::var_os("FHIRPIPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("data/synthea-150");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read(&f).ok()?;
        for line in text.split(|&b| b == b'\n').step_by(step) {
            if !line.is_empty() {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn chunk(data: &[u8]) -> Chunk {
    Chunk {
        seq: 0,
        file: Arc::new(SourceFile {
            index: 0,
            name: "bench.ndjson".into(),
        }),
        first_line: 1,
        data: data.to_vec(),
        rejects: Vec::new(),
        pool: None,
    }
}

fn benches(c: &mut Criterion) {
    let data = ndjson(16 << 20);
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);

    let pool = BufPool::new(4, 4 << 20);
    g.bench_function("split_lines_4MiB_chunks", |b| {
        b.iter(|| {
            let mut s = LineSplitter::new(4 << 20, 512 << 20, pool.clone());
            let mut n = 0usize;
            for block in data.chunks(1 << 20) {
                s.push(block, &mut |l| n += l.data.len());
            }
            s.finish(&mut |l| n += l.data.len());
            black_box(n)
        })
    });

    for (name, level) in [
        ("parse_and_check", ValidateLevel::Basic),
        ("parse_and_check_structure", ValidateLevel::Structure),
    ] {
        let mut checker = Checker::new(None).with_level(level);
        g.bench_function(name, |b| {
            b.iter_batched(
                || chunk(&data),
                |c| black_box(checker.check(c).records.len()),
                criterion::BatchSize::LargeInput,
            )
        });
    }

    // The transform stage on the workers' path: checks + a `where` filter evaluated on the
    // tape; checks + edits that rewrite every resource (remove an element, set meta.source,
    // add a tag, scan for a base URL that is not there).
    for (name, transform) in [
        (
            "parse_check_where",
            "[transform.where]\nObservation = \"status = 'final' and value.ofType(Quantity).value > 60\"\n",
        ),
        (
            "parse_check_edit_all",
            "[transform]\nremove = [\"Observation.issued\"]\nstrip_base_url = \"https://fhir.example.org/r4\"\n[transform.meta]\nsource = \"urn:bench\"\ntag = [{ system = \"http://t\", code = \"x\" }]\n",
        ),
    ] {
        let text = format!(
            "[pipeline]\nname = \"b\"\n[source]\nkind = \"local\"\npath = \"in\"\n[sinks.a]\nkind = \"ndjson\"\npath = \"out\"\n[dead_letter]\npath = \"dl\"\n{transform}"
        );
        let plan = fhirpipe::config::load_str(std::path::Path::new("b.toml"), &text, &[], &|_| None)
            .expect("bench definition");
        let t = plan.transform.expect("transform");
        let mut checker =
            Checker::new(None).with_transform(Some(Transformer::new(t, Mode::Emit(None))));
        g.bench_function(name, |b| {
            b.iter_batched(
                || chunk(&data),
                |c| black_box(checker.check(c).records.len()),
                criterion::BatchSize::LargeInput,
            )
        });
    }

    // The real sink (encoder, writer properties, row groups, rolling) into a temp folder;
    // the run is aborted, so only encoding and writing are timed, not the commit.
    let batch = Checker::new(None).check(chunk(&data));
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = ParquetPlan {
        path: fhirpipe::storage::Location::Local(dir.path().join("lake")),
        compression: Compression::Zstd(1),
        target_file_size: 128_000_000,
        row_group_bytes: 32 << 20,
        partition_by: fhirpipe::sink::partition::PartitionBy::None,
        max_open_files: 32,
        layout: ParquetLayout::Raw,
        views: Vec::new(),
    };
    let resource_plan = ParquetPlan {
        layout: ParquetLayout::Resource { max_depth: 3 },
        ..plan.clone()
    };
    for (name, plan) in [
        ("parquet_sink_zstd1", &plan),
        ("parquet_sink_resource_zstd1", &resource_plan),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sink =
                    ParquetSink::create(plan, "bench", &Default::default()).expect("sink");
                sink.write(&batch).expect("write");
                let stats = sink.finish().expect("finish");
                sink.abort();
                black_box(stats.bytes)
            })
        });
    }
    g.finish();

    let Some(synthea) = synthea_slice(4) else {
        eprintln!("synthea benchmarks skipped: ../shared/data/synthea-150 not found");
        return;
    };
    let mut g = c.benchmark_group("synthea");
    g.throughput(Throughput::Bytes(synthea.len() as u64));
    g.sample_size(20);
    for (name, level) in [
        ("parse_and_check", ValidateLevel::Basic),
        ("parse_and_check_structure", ValidateLevel::Structure),
    ] {
        let mut checker = Checker::new(None).with_level(level);
        let rejects = checker.check(chunk(&synthea)).rejects.len();
        assert_eq!(rejects, 0, "synthea-150 is valid at level {name}");
        g.bench_function(name, |b| {
            b.iter_batched(
                || chunk(&synthea),
                |c| black_box(checker.check(c).records.len()),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    // Basic checks + de-identification with the Safe Harbor rules (issue 6 item 7): compare
    // with `parse_and_check` above for the stage's cost.
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/deid/safe-harbor.json");
    let text = std::fs::read_to_string(&config).expect("pipelines/deid/safe-harbor.json");
    let keys = |v: &str| match v {
        "FHIRPIPE_DEID_CRYPTO_HASH_KEY" => Some("bench-hash-key".to_string()),
        "FHIRPIPE_DEID_DATE_SHIFT_KEY" => Some("bench-shift-key".to_string()),
        _ => None,
    };
    // `_tree`: the same with the element-tree engine only (the streaming engine off).
    for (name, tree) in [
        ("parse_check_deid_safe_harbor", false),
        ("parse_check_deid_safe_harbor_tree", true),
    ] {
        let mut deid = fhirpipe::deid::Deidentifier::from_str("safe-harbor.json", &text, &keys)
            .expect("the Safe Harbor preset loads");
        if tree {
            deid = deid.with_tree_engine();
        }
        let mut checker = Checker::new(None).with_deidentify(Some(Arc::new(deid)));
        let batch = checker.check(chunk(&synthea));
        assert_eq!(
            batch.rejects.len(),
            0,
            "synthea-150 de-identifies without rejects"
        );
        g.bench_function(name, |b| {
            b.iter_batched(
                || chunk(&synthea),
                |c| black_box(checker.check(c).records.len()),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(stage_benches, benches);
criterion_main!(stage_benches);
