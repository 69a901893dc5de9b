//! Issue 4 item 4: the dataset layout of the Parquet sink — Hive-style `date=` / `run=`
//! partitions, the bound on open files, the run's `_manifest.json`, and what commit, failure
//! and re-runs do to partitions. Read back by the parquet crate, DuckDB and pyarrow.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::*;

/// `n` Patients and `n` Observations; resource `i` was last updated on day `i % days` of
/// January 2024 (at 23:30 in UTC+01:00 for odd `i`, which is still that day in UTC at 22:30),
/// except every 10th Observation, which has no `meta.lastUpdated`.
fn dated_input(n: usize, days: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let day = 1 + i % days;
        let ts = if i % 2 == 0 {
            format!("2024-01-{day:02}T08:00:00Z")
        } else {
            format!("2024-01-{day:02}T23:30:00+01:00")
        };
        s.push_str(&format!(
            r#"{{"resourceType":"Patient","id":"p{i}","meta":{{"lastUpdated":"{ts}"}},"gender":"female"}}"#
        ));
        s.push('\n');
        if i % 10 == 0 {
            s.push_str(&format!(
                r#"{{"resourceType":"Observation","id":"o{i}","status":"final","code":{{"text":"x"}}}}"#
            ));
        } else {
            s.push_str(&format!(
                r#"{{"resourceType":"Observation","id":"o{i}","meta":{{"lastUpdated":"{ts}"}},"status":"final","code":{{"text":"x"}}}}"#
            ));
        }
        s.push('\n');
    }
    s
}

/// Expected rows per (type, partition folder) of [`dated_input`].
fn expected_partitions(n: usize, days: usize) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in 0..n {
        let d = format!("date=2024-01-{:02}", 1 + i % days);
        *m.entry(format!("Patient/{d}")).or_insert(0) += 1;
        let o = if i % 10 == 0 {
            "date=__HIVE_DEFAULT_PARTITION__".to_string()
        } else {
            d
        };
        *m.entry(format!("Observation/{o}")).or_insert(0) += 1;
    }
    m
}

fn layout_pipeline(dir: &Path, input: &Path, out: &Path, sink_extra: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"[pipeline]
name = "layout-test"
chunk_size = "64KiB"

[source]
kind = "local"
path = "{input}"

[sinks.lake]
kind = "parquet"
path = "{out}/parquet"
{sink_extra}

[dead_letter]
path = "{out}/dead-letter"
{extra}
"#,
        input = input.display(),
        out = out.display()
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Every file under `root` (relative, `/`-separated, sorted), skipping nothing.
fn walk(root: &Path) -> Vec<String> {
    fn go(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if e.path().is_dir() {
                go(&e.path(), &r, out);
            } else {
                out.push(r);
            }
        }
    }
    let mut out = Vec::new();
    go(root, "", &mut out);
    out.sort();
    out
}

fn file_rows(f: &Path) -> u64 {
    use parquet::file::reader::FileReader;
    let file = std::fs::File::open(f).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    reader.metadata().file_metadata().num_rows() as u64
}

/// Rows per partition folder (`Patient/date=…`), from the files on disk.
fn rows_per_folder(root: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for rel in walk(root) {
        if let Some((dir, _)) = rel.rsplit_once('/') {
            if rel.ends_with(".parquet") {
                *m.entry(dir.to_string()).or_insert(0) += file_rows(&root.join(&rel));
            }
        }
    }
    m
}

fn manifest(root: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join("_manifest.json")).unwrap()).unwrap()
}

/// The manifest lists exactly the Parquet files on disk, each with its rows (from the file's
/// footer), bytes (its size) and the partition value of its folder; per dataset totals add up.
fn assert_manifest_matches_disk(root: &Path, m: &Value) {
    let on_disk: Vec<String> = walk(root)
        .into_iter()
        .filter(|r| r.ends_with(".parquet"))
        .collect();
    let files = m["files"].as_array().unwrap();
    let listed: Vec<String> = files
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, on_disk);
    let mut totals: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for f in files {
        let rel = f["path"].as_str().unwrap();
        let path = root.join(rel);
        assert_eq!(f["rows"].as_u64().unwrap(), file_rows(&path), "{rel}");
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert_eq!(f["bytes"].as_u64().unwrap(), bytes, "{rel}");
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(f["dataset"], parts[0]);
        let want: Value = if parts.len() == 3 {
            let (k, v) = parts[1].split_once('=').unwrap();
            serde_json::json!({ k: v })
        } else {
            serde_json::json!({})
        };
        assert_eq!(f["partition"], want, "{rel}");
        let t = totals.entry(parts[0].to_string()).or_default();
        t.0 += 1;
        t.1 += f["rows"].as_u64().unwrap();
        t.2 += bytes;
    }
    let datasets = m["datasets"].as_object().unwrap();
    assert_eq!(
        datasets.keys().cloned().collect::<Vec<_>>(),
        totals.keys().cloned().collect::<Vec<_>>()
    );
    for (t, (n, rows, bytes)) in totals {
        let d = &datasets[&t];
        assert_eq!(
            (d["files"].as_u64(), d["rows"].as_u64(), d["bytes"].as_u64()),
            (Some(n), Some(rows), Some(bytes)),
            "{t}"
        );
        let fp = d["schema_fingerprint"].as_str().unwrap();
        assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
    }
}

/// The repo's Python environment (scripts/pyenv), or `None` with a printed reason (a failure
/// under CI=true).
fn python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if py.exists() {
        return Some(py);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but .venv is missing (scripts/pyenv creates it)");
    }
    eprintln!("SKIP: DuckDB/pyarrow read-back: .venv missing (run scripts/pyenv)");
    None
}

/// Runs a Python snippet with `args`; returns its stdout lines.
fn py_lines(py: &Path, code: &str, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Per partition value, rows counted by DuckDB (`hive_partitioning`) and by pyarrow
/// (`dataset(..., partitioning="hive")`) over `<root>/<Type>/`, as `reader value rows`.
const READ_BACK: &str = r#"
import sys, duckdb, pyarrow.dataset as ds
root, t, col = sys.argv[1], sys.argv[2], sys.argv[3]
for v, n in duckdb.sql(f"select {col}, count(*) from read_parquet('{root}/{t}/**/*.parquet', hive_partitioning = true) group by 1 order by 1").fetchall():
    print('duckdb', v, n)
d = ds.dataset(f'{root}/{t}', format='parquet', partitioning='hive')
tab = d.to_table()
counts = {}
for v in tab.column(col).to_pylist():
    counts[v] = counts.get(v, 0) + 1
for v in sorted(counts, key=lambda x: (x is None, str(x))):
    print('pyarrow', v, counts[v])
print('ids', duckdb.sql(f"select count(distinct id) from read_parquet('{root}/{t}/**/*.parquet')").fetchall()[0][0])
"#;

/// `date=` partitions from `meta.lastUpdated` in UTC (an instant at 23:30+01:00 is the same
/// day at 22:30Z), resources without it in `date=__HIVE_DEFAULT_PARTITION__`; with
/// `max_open_files = 2` and interleaved dates the least recently used file is closed, so a
/// partition gets several files, and nothing is lost. The manifest matches the files; DuckDB
/// and pyarrow read the partition column back (the default partition as NULL) with the
/// input's row counts.
#[test]
fn issue4_date_partitions_with_a_bound_on_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let (n, days) = (60, 5);
    std::fs::write(&input, dated_input(n, days)).unwrap();
    let out = dir.path().join("out");
    let p = layout_pipeline(
        dir.path(),
        &input,
        &out,
        "partition_by = \"date\"\nmax_open_files = 2",
        "",
    );
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 0, "{stderr}");
    let root = out.join("parquet");
    assert_eq!(rows_per_folder(&root), expected_partitions(n, days));
    // Two open files for 11 partitions fed round-robin: every partition was closed and
    // reopened, so each has more than one file.
    let files = walk(&root);
    assert!(
        files.contains(&"Patient/date=2024-01-01/part-00001.parquet".to_string()),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains(".fhirpipe-staging")));
    let m = manifest(&root);
    assert_manifest_matches_disk(&root, &m);
    assert_eq!(m["pipeline"], "layout-test");
    assert_eq!(m["partition_by"], "date");
    assert_eq!(m["format"], "parquet");
    assert_eq!(m["started"], report["started_at"]);
    assert_eq!(m["datasets"]["Patient"]["rows"], n as u64);
    assert_eq!(
        report["sinks"]["lake"]["files"].as_array().unwrap().len(),
        m["files"].as_array().unwrap().len()
    );

    let Some(py) = python() else { return };
    let root_s = root.to_string_lossy().into_owned();
    let got = py_lines(&py, READ_BACK, &[&root_s, "Observation", "date"]);
    let mut want = Vec::new();
    for reader in ["duckdb", "pyarrow"] {
        for d in 1..=days {
            let rows = (0..n).filter(|i| i % days == d - 1 && i % 10 != 0).count();
            // DuckDB and pyarrow both read the date folders as dates.
            want.push(format!("{reader} 2024-01-{d:02} {rows}"));
        }
        want.push(format!("{reader} None {}", n / 10));
    }
    want.push(format!("ids {n}"));
    assert_eq!(got, want);
}

/// `run=` partitions accumulate: each run adds its own folder (the value from `--set`), and a
/// re-run with the same value replaces only that folder. The committed sample data goes
/// through whole; DuckDB and pyarrow count every input line per type.
#[test]
fn issue4_run_partitions_accumulate_and_rerun_is_idempotent() {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample-data/ndjson");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = layout_pipeline(dir.path(), &sample, &out, "partition_by = \"run\"", "");
    let root = out.join("parquet");
    let (code, report, stderr) = run_pipeline(&p, &["--set", "sinks.lake.run_value=\"b1\""]);
    assert_eq!(code, 0, "{stderr}");
    let written: BTreeMap<String, u64> = report["types"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, c)| c["written"].as_u64().unwrap() > 0)
        .map(|(t, c)| (format!("{t}/run=b1"), c["written"].as_u64().unwrap()))
        .collect();
    assert_eq!(written.values().sum::<u64>(), 21_175);
    assert_eq!(rows_per_folder(&root), written);
    let first = manifest(&root);
    assert_manifest_matches_disk(&root, &first);
    let snapshot = |root: &Path| -> Vec<(String, Vec<u8>)> {
        walk(root)
            .into_iter()
            .filter(|r| r.ends_with(".parquet"))
            .map(|r| (r.clone(), std::fs::read(root.join(&r)).unwrap()))
            .collect()
    };
    let before = snapshot(&root);

    // Same value again: byte-identical files, a new manifest with the same files.
    let (code, _, stderr) = run_pipeline(&p, &["--set", "sinks.lake.run_value=\"b1\""]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(snapshot(&root), before);
    let again = manifest(&root);
    assert_eq!(again["files"], first["files"]);
    assert_eq!(again["datasets"], first["datasets"]);
    assert_ne!(again["run_id"], first["run_id"]);

    // A second batch: a new folder beside the first, which stays as it was.
    let (code, _, stderr) = run_pipeline(&p, &["--set", "sinks.lake.run_value=\"b2\""]);
    assert_eq!(code, 0, "{stderr}");
    let after = snapshot(&root);
    let b1: Vec<_> = after
        .iter()
        .filter(|(r, _)| r.contains("/run=b1/"))
        .cloned()
        .collect();
    assert_eq!(b1, before);
    assert_eq!(after.len(), 2 * before.len());
    // This run's manifest lists this run's files only.
    let m = manifest(&root);
    assert!(m["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["partition"]["run"] == "b2"));
    assert_eq!(m["datasets"], first["datasets"]);

    let Some(py) = python() else { return };
    let root_s = root.to_string_lossy().into_owned();
    for t in ["Patient", "Observation"] {
        let n = report["types"][t]["written"].as_u64().unwrap();
        let got = py_lines(&py, READ_BACK, &[&root_s, t, "run"]);
        assert_eq!(
            got,
            vec![
                format!("duckdb b1 {n}"),
                format!("duckdb b2 {n}"),
                format!("pyarrow b1 {n}"),
                format!("pyarrow b2 {n}"),
                format!("ids {n}"),
            ]
        );
    }
}

/// A re-run replaces the date partitions it writes (files it no longer produces are removed)
/// and keeps the partitions it does not write; a failed run adds no partition folder and
/// leaves the manifest byte for byte as it was.
#[test]
fn issue4_rerun_replaces_written_partitions_and_failed_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, dated_input(20, 2)).unwrap();
    let out = dir.path().join("out");
    // First run with one open file: every record its own file, so each partition has many.
    let p = layout_pipeline(
        dir.path(),
        &input,
        &out,
        "partition_by = \"date\"\nmax_open_files = 1",
        "",
    );
    let root = out.join("parquet");
    assert_eq!(run_pipeline(&p, &[]).0, 0);
    assert_eq!(rows_per_folder(&root), expected_partitions(20, 2));
    assert!(root
        .join("Patient/date=2024-01-02/part-00009.parquet")
        .exists());
    let p = layout_pipeline(dir.path(), &input, &out, "partition_by = \"date\"", "");

    // Second run: only Patients of 2024-01-02 (and a new day), fewer of them.
    let second: String = dated_input(20, 3)
        .lines()
        .filter(|l| l.contains("Patient") && (l.contains("2024-01-02") || l.contains("2024-01-03")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&input, &second).unwrap();
    assert_eq!(run_pipeline(&p, &[]).0, 0);
    let mut want = expected_partitions(20, 2);
    let p2 = second.matches("2024-01-02").count() as u64;
    let p3 = second.matches("2024-01-03").count() as u64;
    want.insert("Patient/date=2024-01-02".into(), p2);
    want.insert("Patient/date=2024-01-03".into(), p3);
    assert_eq!(rows_per_folder(&root), want);
    // The partition's earlier files are gone, the untouched partitions keep theirs.
    assert_eq!(
        walk(&root.join("Patient/date=2024-01-02")),
        vec!["part-00000.parquet"]
    );
    assert!(root
        .join("Patient/date=2024-01-01/part-00009.parquet")
        .exists());
    let m = manifest(&root);
    let listed: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![
            "Patient/date=2024-01-02/part-00000.parquet",
            "Patient/date=2024-01-03/part-00000.parquet"
        ]
    );
    let manifest_text = std::fs::read(root.join("_manifest.json")).unwrap();
    let files_before = walk(&root);

    // A failing run with a new date: no folder for it, nothing changed.
    let bad = dated_input(3, 1).replace("2024-01-01", "2024-02-01") + "{\"oops\":1}\n";
    std::fs::write(&input, bad).unwrap();
    let p = layout_pipeline(
        dir.path(),
        &input,
        &out,
        "partition_by = \"date\"",
        "[validate]\non_invalid = \"fail\"\n",
    );
    let (code, _, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(walk(&root), files_before);
    assert!(!root.join("Patient/date=2024-02-01").exists());
    assert_eq!(
        std::fs::read(root.join("_manifest.json")).unwrap(),
        manifest_text
    );
}

/// The partitioning settings are checked: an unknown value, a `run_value` without
/// `partition_by = "run"`, and a value that cannot be a folder name are refused (exit 2) with
/// the field and the fix.
#[test]
fn issue4_partition_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, dated_input(1, 1)).unwrap();
    let out = dir.path().join("out");
    for (extra, want) in [
        ("partition_by = \"month\"", "unknown partitioning `month`"),
        (
            "run_value = \"x\"",
            "run_value is only used with partition_by = \"run\"",
        ),
        (
            "partition_by = \"run\"\nrun_value = \"a/b\"",
            "run_value `a/b` cannot be a partition folder name",
        ),
        ("max_open_files = 0", "max_open_files = 0 is out of range"),
    ] {
        let p = layout_pipeline(dir.path(), &input, &out, extra, "");
        let o = run(&["check", p.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {stderr}");
        assert!(stderr.contains(want), "{extra}: {stderr}");
        assert!(stderr.contains("sinks.lake."), "{extra}: {stderr}");
    }
    let p = layout_pipeline(dir.path(), &input, &out, "partition_by = \"date\"", "");
    let o = run(&["check", p.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("/parquet/<Type>/date=YYYY-MM-DD/part-NNNNN.parquet"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Issue 6 item 7: a type's files are closed as soon as the run has passed the last input
/// file named for it, while later files are still worked on. A file whose name did not tell
/// its content (an Observation in `Patient.ndjson`) still loses nothing: its records of the
/// closed type go to a second file, in Parquet and NDJSON alike, and the manifest, the report
/// and the files agree.
#[test]
fn issue_6_item_7_types_closed_early_take_late_records_in_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let obs = |i: usize| {
        format!(
            r#"{{"resourceType":"Observation","id":"o{i}","status":"final","code":{{"text":"x"}}}}"#
        )
    };
    let pat = |i: usize| format!(r#"{{"resourceType":"Patient","id":"p{i}"}}"#);
    std::fs::write(
        input.join("Observation.ndjson"),
        format!("{}\n{}\n{}\n", obs(1), obs(2), obs(3)),
    )
    .unwrap();
    std::fs::write(
        input.join("Patient.ndjson"),
        format!("{}\n{}\n{}\n", pat(1), obs(4), pat(2)),
    )
    .unwrap();
    let out = dir.path().join("out");
    let p = layout_pipeline(
        dir.path(),
        &input,
        &out,
        "",
        &format!(
            "[sinks.clean]\nkind = \"ndjson\"\npath = \"{}/ndjson\"\n",
            out.display()
        ),
    );
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 0, "{stderr}");
    let root = out.join("parquet");
    assert_eq!(
        walk(&root),
        [
            "Observation/part-00000.parquet",
            "Observation/part-00001.parquet",
            "Patient/part-00000.parquet",
            "_manifest.json"
        ]
    );
    assert_eq!(file_rows(&root.join("Observation/part-00000.parquet")), 3);
    assert_eq!(file_rows(&root.join("Observation/part-00001.parquet")), 1);
    assert_eq!(file_rows(&root.join("Patient/part-00000.parquet")), 2);
    assert_manifest_matches_disk(&root, &manifest(&root));
    let nd = out.join("ndjson");
    assert_eq!(
        walk(&nd),
        [
            "Observation.00000.ndjson",
            "Observation.00001.ndjson",
            "Patient.00000.ndjson"
        ]
    );
    let read = |f: &str| std::fs::read_to_string(nd.join(f)).unwrap();
    assert_eq!(
        read("Observation.00000.ndjson"),
        format!("{}\n{}\n{}\n", obs(1), obs(2), obs(3))
    );
    assert_eq!(read("Observation.00001.ndjson"), format!("{}\n", obs(4)));
    assert_eq!(
        read("Patient.00000.ndjson"),
        format!("{}\n{}\n", pat(1), pat(2))
    );
    assert_eq!(report["types"]["Observation"]["written"], 4, "{report}");
    assert_eq!(report["conservation_ok"], true);
    assert_eq!(
        report["sinks"]["clean"]["files"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        report["sinks"]["lake"]["files"].as_array().unwrap().len(),
        3
    );
}
