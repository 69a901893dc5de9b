//! Runs on the shared real-world data sets (`../shared/data`): every resource is written, counts
//! per type match an independent count made here with serde_json, Parquet row counts match.
//! Fails under CI=true when ../shared is missing; skips with a reason elsewhere.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use support::*;

/// Counts per resourceType with serde_json, plus lines that are not resources.
fn oracle(dir: &Path) -> (BTreeMap<String, u64>, u64) {
    let mut counts = BTreeMap::new();
    let mut not_resources = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        if !f.to_string_lossy().ends_with(".ndjson") {
            continue;
        }
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            match v.get("resourceType").and_then(|t| t.as_str()) {
                Some(t) => *counts.entry(t.to_string()).or_insert(0) += 1,
                None => not_resources += 1,
            }
        }
    }
    (counts, not_resources)
}

fn check_dataset(name: &str) {
    let Some(shared) = shared_dir() else { return };
    let input = shared.join("data").join(name);
    let (expect, not_resources) = oracle(&input);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let (code, report, stderr) = run_pipeline(&p, &["--set", "pipeline.chunk_size=1MiB"]);
    assert_eq!(code, if not_resources > 0 { 1 } else { 0 }, "{stderr}");
    assert_eq!(report["conservation_ok"], true);
    for (t, n) in &expect {
        assert_eq!(report["types"][t]["written"].as_u64(), Some(*n), "{t}");
        assert_eq!(report["types"][t]["dead_lettered"].as_u64(), Some(0), "{t}");
    }
    assert_eq!(
        report["totals"]["written"].as_u64(),
        Some(expect.values().sum::<u64>())
    );
    assert_eq!(
        report["totals"]["dead_lettered"].as_u64(),
        Some(not_resources)
    );
    let rows = parquet_rows(&out.join("parquet"));
    assert_eq!(rows, expect, "Parquet rows per type");
    let ndjson_lines = lines_of(&out.join("ndjson"), ".ndjson").len() as u64;
    assert_eq!(ndjson_lines, expect.values().sum::<u64>());
    eprintln!(
        "{name}: {} resources in {} types, {not_resources} non-resource lines dead-lettered",
        expect.values().sum::<u64>(),
        expect.len()
    );
}

#[test]
fn synthea_150_all_written() {
    check_dataset("synthea-150");
}

/// bulk-10 is a native Synthea bulk export; its log.ndjson holds export log events, not
/// resources, and must be dead-lettered (4 lines), not silently dropped.
#[test]
fn bulk_10_all_written_and_log_lines_dead_lettered() {
    check_dataset("bulk-10");
}
