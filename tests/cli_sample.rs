//! `fhirpipe sample`: the committed sample is what the generator makes, generated data runs
//! through the sample pipeline with every resource accounted for, and bad options are usage
//! errors.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The `type → count` table `fhirpipe sample` prints on stdout.
fn printed_counts(stdout: &[u8]) -> BTreeMap<String, u64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (t, n) = (it.next()?, it.next()?);
            if t == "wrote" {
                return None; // the closing "wrote N resources ..." line
            }
            Some((t.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn committed_sample_matches_the_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s");
    let o = run(&[
        "sample",
        "--patients",
        "60",
        "--seed",
        "1",
        "--gzip",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let committed = repo().join("sample-data/ndjson");
    assert_eq!(files(&out), files(&committed));
    for f in files(&committed) {
        assert!(
            gunzip(&out.join(&f)) == gunzip(&committed.join(&f)),
            "sample-data/ndjson/{f} differs from `fhirpipe sample --patients 60 --seed 1 --gzip`; \
             regenerate it with that command"
        );
    }
    let counts = printed_counts(&o.stdout);
    assert_eq!(counts.values().sum::<u64>(), 21_175);
    assert_eq!(counts["Patient"], 60);
}

#[test]
fn generated_data_runs_through_the_sample_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let ann = tmp.path().join("notes.ndjson");
    let o = run(&[
        "sample",
        "--patients",
        "12",
        "--seed",
        "7",
        "--out",
        input.to_str().unwrap(),
        "--annotations",
        ann.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let counts = printed_counts(&o.stdout);
    assert_eq!(counts.len(), 13, "{counts:?}");

    let out = tmp.path().join("out");
    let report = tmp.path().join("report.json");
    let r = std::process::Command::new(bin())
        .current_dir(repo())
        .env("INPUT", &input)
        .env("OUTPUT", &out)
        .args([
            "run",
            "pipelines/local-sample.toml",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for (t, n) in &counts {
        assert_eq!(rep["types"][t]["read"], *n, "{t}");
        assert_eq!(rep["types"][t]["written"], *n, "{t}");
    }
    assert_eq!(rep["totals"]["dead_lettered"], 0);
    assert_eq!(parquet_rows(&out.join("parquet")), counts);

    // One annotation line per note, in note order.
    let notes = std::fs::read_to_string(input.join("DocumentReference.ndjson")).unwrap();
    let spans = std::fs::read_to_string(&ann).unwrap();
    assert_eq!(spans.lines().count(), notes.lines().count());
    assert_eq!(spans.lines().count() as u64, counts["DocumentReference"]);
}

#[test]
fn same_seed_same_bytes_other_seed_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let gen = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let o = run(&[
            "sample",
            "--patients",
            "5",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0));
        std::fs::read(out.join("Patient.ndjson")).unwrap()
    };
    assert_eq!(gen("a", "3"), gen("b", "3"));
    assert_ne!(gen("a", "3"), gen("c", "4"));
}

#[test]
fn zero_patients_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[
        "sample",
        "--patients",
        "0",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("fhirpipe: invalid sample options:"),
        "{err}"
    );
}
