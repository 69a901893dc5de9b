//! `fhirpipe run` end to end on small inputs made by the tests: dead letters with file and
//! line, blank lines, huge resources, gzip, filters, fail mode, re-runs, exit codes.

mod support;

use serde_json::Value;
use std::io::Write;
use support::*;

const P1: &str = r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"2","lastUpdated":"2021-03-04T05:06:07.123+01:00"},"name":[{"family":"Smith"}]}"#;
const O1: &str = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}}"#;

/// Issue 2: injected bad lines land in the dead letter with the right file and line numbers,
/// and the run still succeeds (exit code 1: success with dead letters).
#[test]
fn issue2_bad_lines_are_dead_lettered_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut f = std::fs::File::create(input.join("a.ndjson")).unwrap();
    let lines: Vec<&[u8]> = vec![
        P1.as_bytes(),                                              // 1 ok
        br#"{"resourceType":"Patient","id":"trunc","name":[{"fam"#, // 2 truncated
        b"{\"resourceType\":\"Patient\",\"id\":\"u\xff\"}",         // 3 invalid UTF-8
        br#"[{"resourceType":"Patient","id":"arr"}]"#,              // 4 array
        br#"{"id":"nort"}"#,                                        // 5 no resourceType
        b"",                                                        // 6 blank
        br#"{"resourceType":"Patientt","id":"x"}"#,                 // 7 unknown type
        br#"{"resourceType":"Observation","id":"bad id!"}"#,        // 8 bad id
        O1.as_bytes(),                                              // 9 ok
        b"   ",                                                     // 10 blank
    ];
    for l in &lines {
        f.write_all(l).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);
    std::fs::write(
        input.join("b.ndjson"),
        format!("{O1}\n\n{{\"resourceType\":\"Observation\"}}\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["status"], "success_with_dead_letters");
    assert_eq!(report["totals"]["read"], 10);
    assert_eq!(report["totals"]["written"], 3);
    assert_eq!(report["totals"]["dead_lettered"], 7);
    assert_eq!(report["totals"]["filtered"], 0);
    assert_eq!(report["blank_lines"], 3);
    assert_eq!(report["conservation_ok"], true);
    assert_eq!(report["types"]["Patient"]["read"], 1);
    assert_eq!(report["types"]["Observation"]["read"], 4);
    assert_eq!(report["types"]["Observation"]["dead_lettered"], 2);
    assert_eq!(report["types"]["_unknown"]["dead_lettered"], 5);

    let dl: Vec<Value> = lines_of(&out.join("dead-letter"), ".ndjson")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let a = input.join("a.ndjson").display().to_string();
    let b = input.join("b.ndjson").display().to_string();
    let got: Vec<(String, u64, String)> = dl
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), 7);
    assert_eq!((got[0].0.as_str(), got[0].1), (a.as_str(), 2));
    assert!(got[0].2.starts_with("invalid JSON"), "{}", got[0].2);
    assert_eq!(got[1], (a.clone(), 3, "invalid UTF-8 at byte 33".into()));
    assert_eq!(
        got[2],
        (
            a.clone(),
            4,
            "expected a JSON object (one resource per line), found an array".into()
        )
    );
    assert_eq!(got[3], (a.clone(), 5, "missing \"resourceType\"".into()));
    assert_eq!(
        got[4],
        (a.clone(), 7, "unknown R4 resourceType \"Patientt\"".into())
    );
    assert_eq!(
        got[5],
        (
            a.clone(),
            8,
            "invalid id \"bad id!\": an id is 1 to 64 characters from A-Z a-z 0-9 - .".into()
        )
    );
    assert_eq!(got[6], (b.clone(), 3, "missing \"id\"".into()));
    // Original text kept: as text when UTF-8, as base64 when not.
    assert_eq!(
        dl[0]["text"],
        r#"{"resourceType":"Patient","id":"trunc","name":[{"fam"#
    );
    assert_eq!(dl[1]["text"], Value::Null);
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(dl[1]["text_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        raw,
        b"{\"resourceType\":\"Patient\",\"id\":\"u\xff\"}".to_vec()
    );
    assert_eq!(dl[5]["resourceType"], "Observation");
    assert_eq!(dl[4].get("resourceType"), None);

    // The good records are in both sinks, byte for byte, in input order.
    assert_eq!(
        lines_of(&out.join("ndjson"), "Patient.00000.ndjson"),
        vec![P1.to_string()]
    );
    assert_eq!(
        lines_of(&out.join("ndjson"), "Observation.00000.ndjson"),
        vec![O1.to_string(), O1.to_string()]
    );
    let rows = parquet_rows(&out.join("parquet"));
    assert_eq!(rows.get("Patient"), Some(&1));
    assert_eq!(rows.get("Observation"), Some(&2));
    // The summary table is printed.
    assert!(stderr.contains("TOTAL"), "{stderr}");
    // No staging folders are left behind.
    for sub in ["parquet", "ndjson", "dead-letter"] {
        let hidden: Vec<_> = std::fs::read_dir(out.join(sub))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "staging left in {sub}");
    }
}

/// Issue 2: typed columns hold id, meta.versionId and meta.lastUpdated (UTC µs); the resource
/// column holds the original JSON text unchanged (decimals keep their text: 1.50).
#[test]
fn issue2_parquet_columns_are_typed_and_lossless() {
    use arrow::array::{Array, StringArray, TimestampMicrosecondArray};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, format!("{P1}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let (code, report, stderr) = run_pipeline(&pipeline(dir.path(), &input, &out, ""), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["status"], "success");
    let b = parquet_batches(&out.join("parquet/Patient"));
    assert_eq!(b.len(), 1);
    let b = &b[0];
    let schema = b.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        vec!["id", "meta_version_id", "meta_last_updated", "resource"]
    );
    assert_eq!(
        schema.field(2).data_type(),
        &arrow::datatypes::DataType::Timestamp(
            arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into())
        )
    );
    let col = |i: usize| {
        b.column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    assert_eq!(col(0).value(0), "p1");
    assert_eq!(col(1).value(0), "2");
    let ts = b
        .column(2)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    // 2021-03-04T05:06:07.123+01:00 = 2021-03-04T04:06:07.123Z
    assert_eq!(ts.value(0), 1_614_830_767_123_000);
    assert_eq!(col(3).value(0), P1);
    let o = parquet_batches(&out.join("parquet/Observation"));
    let o = &o[0];
    assert!(o.column(1).is_null(0));
    assert!(o.column(2).is_null(0));
    assert!(o
        .column(3)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .value(0)
        .contains("\"value\":1.50"));
}

/// Issue 2: a valid 20 MB resource passes through whole.
#[test]
fn issue2_twenty_megabyte_resource_passes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    let note = "a".repeat(20 * 1024 * 1024);
    let big = format!(
        r#"{{"resourceType":"Binary","id":"big","contentType":"text/plain","data":"{note}"}}"#
    );
    std::fs::write(&input, format!("{P1}\n{big}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let (code, report, stderr) = run_pipeline(&pipeline(dir.path(), &input, &out, ""), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["written"], 3);
    let lines = lines_of(&out.join("ndjson"), "Binary.00000.ndjson");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), big.len());
    assert_eq!(lines[0], big);
    assert_eq!(parquet_rows(&out.join("parquet")).get("Binary"), Some(&1));
}

/// Lines longer than pipeline.max_line_size are dead-lettered, not read into memory whole.
#[test]
fn over_long_line_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let big = format!(
        r#"{{"resourceType":"Binary","id":"big","data":"{}"}}"#,
        "b".repeat(3 << 20)
    );
    std::fs::write(&input, format!("{P1}\n{big}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let (code, report, stderr) = run_pipeline(&p, &["--set", "pipeline.max_line_size=1MiB"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["totals"]["written"], 2);
    assert_eq!(report["totals"]["dead_lettered"], 1);
    let dl: Value =
        serde_json::from_str(&lines_of(&out.join("dead-letter"), ".ndjson")[0]).unwrap();
    assert_eq!(dl["line"], 2);
    assert_eq!(
        dl["reason"],
        format!("line is {} bytes, longer than pipeline.max_line_size (1048576 bytes); only its first 1024 bytes are kept here", big.len())
    );
}

/// gzip input is recognised by its magic bytes; folders are searched recursively.
#[test]
fn gzip_input_and_nested_folders() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    let f = std::fs::File::create(input.join("sub/x.ndjson.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    for i in 0..1000 {
        writeln!(gz, r#"{{"resourceType":"Patient","id":"p{i}"}}"#).unwrap();
    }
    gz.finish().unwrap();
    std::fs::write(input.join("y.ndjson"), format!("{O1}\n")).unwrap();
    std::fs::write(input.join("ignored.txt"), "not read").unwrap();
    let out = dir.path().join("out");
    let (code, report, stderr) = run_pipeline(&pipeline(dir.path(), &input, &out, ""), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["bytes"]["input_files"], 2);
    assert_eq!(report["types"]["Patient"]["written"], 1000);
    let ids: Vec<String> = lines_of(&out.join("ndjson"), "Patient.00000.ndjson")
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expect: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    assert_eq!(ids, expect, "input order is kept across chunks and workers");
}

/// A type filter counts the other types as filtered; conservation includes them.
#[test]
fn type_filter_counts_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, format!("{P1}\n{O1}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let (code, report, stderr) = run_pipeline(&p, &["--set", "source.types=[\"Patient\"]"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["types"]["Observation"]["filtered"], 2);
    assert_eq!(report["types"]["Observation"]["written"], 0);
    assert_eq!(report["totals"]["filtered"], 2);
    assert_eq!(report["conservation_ok"], true);
    assert!(!out.join("parquet/Observation").exists());
}

/// on_invalid = "fail" stops at the first invalid line with exit code 5 and commits nothing.
#[test]
fn fail_mode_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, format!("{P1}\n{{\"oops\":1}}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let p = pipeline(
        dir.path(),
        &input,
        &out,
        "[validate]\non_invalid = \"fail\"\n",
    );
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(report["status"], "failed");
    let err = report["error"].as_str().unwrap();
    assert!(
        err.starts_with(&format!("{}:2: missing \"resourceType\"", input.display())),
        "{err}"
    );
    assert!(lines_of(&out.join("ndjson"), ".ndjson").is_empty());
    assert!(parquet_rows(&out.join("parquet")).is_empty());
}

/// A re-run replaces its earlier output: the same names are overwritten and files that the new
/// run does not produce are removed, so nothing is duplicated.
#[test]
fn rerun_replaces_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, format!("{P1}\n{O1}\n")).unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    assert_eq!(run_pipeline(&p, &[]).0, 0);
    // A user's own file in the output folder is left alone.
    std::fs::write(out.join("ndjson/README.txt"), "mine").unwrap();
    std::fs::write(&input, format!("{P1}\n")).unwrap();
    assert_eq!(run_pipeline(&p, &[]).0, 0);
    assert_eq!(
        lines_of(&out.join("ndjson"), ".ndjson"),
        vec![P1.to_string()]
    );
    assert!(out.join("ndjson/README.txt").exists());
    let rows = parquet_rows(&out.join("parquet"));
    assert_eq!(rows.get("Patient"), Some(&1));
    assert_eq!(rows.get("Observation"), None);
}

/// Files roll at the target size; every record is in exactly one file.
#[test]
fn ndjson_files_roll_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let pad = "x".repeat(1000);
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            r#"{{"resourceType":"Patient","id":"p{i}","text":{{"div":"{pad}"}}}}"#
        ));
        text.push('\n');
    }
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let (code, report, _) = run_pipeline(&p, &["--set", "sinks.clean.target_file_size=1MiB"]);
    assert_eq!(code, 0);
    let files = report["sinks"]["clean"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "{files:?}");
    assert_eq!(files[0], "Patient.00000.ndjson");
    assert_eq!(files[3], "Patient.00003.ndjson");
    assert_eq!(lines_of(&out.join("ndjson"), ".ndjson").len(), 3000);
}

/// Exit codes and messages for a bad definition and a missing input.
#[test]
fn config_and_io_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &dir.path().join("missing"), &out, "");
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 3);
    // Stop 8 note: a run that stops before counting said "CONSERVATION FAILED"; it was never
    // checked, and the summary says so.
    assert!(
        stderr.contains("conservation: not checked (the run stopped before every line was counted; nothing was committed)"),
        "{stderr}"
    );
    assert!(!stderr.contains("CONSERVATION FAILED"), "{stderr}");
    assert_eq!(report["conservation_ok"], false);
    assert!(report["error"].as_str().unwrap().starts_with(&format!(
        "input path {} does not exist",
        dir.path().join("missing").display()
    )));

    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--set",
        "sinks.lake.kind=parket",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("field `sinks.lake.kind`: unknown value `parket`"),
        "{err}"
    );
    assert!(err.contains("did you mean `parquet`?"), "{err}");

    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `fhirpipe check` prints the plan and exits 0.
#[test]
fn check_prints_the_plan() {
    let o = run(&[
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/local-sample.toml"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("pipeline \"local-sample\""), "{s}");
    assert!(s.contains("sink lake: parquet"), "{s}");
    assert!(s.contains("ok: "), "{s}");
}
