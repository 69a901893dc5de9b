//! `fhirpipe run` with a `[transform]` section (issue 3): exact output files, report counts
//! (unbundled, consumed, filtered by reason), dead-lettered Bundle entries, exit codes, and
//! conservation with unbundle + dedupe over many chunks and files.

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::*;

const TRANSFORM: &str = r#"
[transform]
unbundle = true
types = ["Patient", "Observation"]
dedupe = true
remove = ["text", "Patient.telecom"]
strip_base_url = "https://fhir.example.org/r4"

[transform.where]
Observation = "status = 'final'"

[transform.meta]
source = "urn:test"
tag = [{ system = "http://t", code = "x" }]
"#;

/// Issue 3: every transform in one run; output text, report and dead letter exactly.
#[test]
fn issue3_transform_run_writes_exact_output_and_balanced_report() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let a = [
        r#"{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},"text":{"status":"generated","div":"<div>old</div>"},"telecom":[{"value":"1"}],"gender":"male"}"#,
        r#"{"resourceType":"Bundle","id":"b","type":"transaction","entry":[{"fullUrl":"urn:uuid:aa","resource":{"resourceType":"Patient","id":"p2","birthDate":"1990-01-01"}},{"fullUrl":"urn:uuid:bb","resource":{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"c"},"subject":{"reference":"urn:uuid:aa"},"valueQuantity":{"value":1.50}}},{"request":{"method":"DELETE","url":"Patient/x"}},{"resource":{"resourceType":"Observation","id":"o3","status":"preliminary","code":{"text":"c"}}}]}"#,
        r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"caf\u00e9"},"subject":{"reference":"https://fhir.example.org/r4/Patient/p1"},"component":[{"valueQuantity":{"value":1e2}},{"valueQuantity":{"value":-0.0}}]}"#,
        r#"{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2021-01-01T00:00:00Z","tag":[{"system":"http://t","code":"x"}]},"gender":"female"}"#,
    ];
    let b = [
        r#"{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2019-01-01T00:00:00Z"},"gender":"other"}"#,
        r#"{"resourceType":"Organization","id":"org"}"#,
        "",
        r#"{"resourceType":"Patient","id":"p3","meta":{"source":"old"}}"#,
    ];
    std::fs::write(input.join("a.ndjson"), a.join("\n")).unwrap();
    std::fs::write(input.join("b.ndjson"), b.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, TRANSFORM);
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 1, "{stderr}");

    assert_eq!(
        lines_of(&out.join("ndjson"), "Patient.00000.ndjson"),
        vec![
            r#"{"resourceType":"Patient","id":"p2","birthDate":"1990-01-01","meta":{"source":"urn:test","tag":[{"system":"http://t","code":"x"}]}}"#,
            r#"{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2021-01-01T00:00:00Z","tag":[{"system":"http://t","code":"x"}],"source":"urn:test"},"gender":"female"}"#,
            r#"{"resourceType":"Patient","id":"p3","meta":{"source":"urn:test","tag":[{"system":"http://t","code":"x"}]}}"#,
        ]
    );
    assert_eq!(
        lines_of(&out.join("ndjson"), "Observation.00000.ndjson"),
        vec![
            r#"{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"c"},"subject":{"reference":"Patient/p2"},"valueQuantity":{"value":1.50},"meta":{"source":"urn:test","tag":[{"system":"http://t","code":"x"}]}}"#,
            r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"caf\u00e9"},"subject":{"reference":"Patient/p1"},"component":[{"valueQuantity":{"value":1e2}},{"valueQuantity":{"value":-0.0}}],"meta":{"source":"urn:test","tag":[{"system":"http://t","code":"x"}]}}"#,
        ]
    );
    assert_eq!(
        parquet_rows(&out.join("parquet")),
        [("Observation".to_string(), 2), ("Patient".to_string(), 3)]
            .into_iter()
            .collect()
    );

    let counts = |t: &str| -> Vec<u64> {
        let c = &report["types"][t];
        [
            "read",
            "unbundled",
            "written",
            "dead_lettered",
            "filtered",
            "bundles_consumed",
        ]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .collect()
    };
    assert_eq!(counts("Patient"), vec![4, 1, 3, 0, 2, 0]);
    assert_eq!(counts("Observation"), vec![1, 2, 2, 0, 1, 0]);
    assert_eq!(counts("Bundle"), vec![1, 0, 0, 0, 0, 1]);
    assert_eq!(counts("Organization"), vec![1, 0, 0, 0, 1, 0]);
    assert_eq!(counts("_unknown"), vec![0, 1, 0, 1, 0, 0]);
    assert_eq!(
        report["types"]["Patient"]["filtered_by"],
        serde_json::json!({"type": 0, "where": 0, "duplicate": 2})
    );
    assert_eq!(report["types"]["Observation"]["filtered_by"]["where"], 1);
    assert_eq!(report["types"]["Organization"]["filtered_by"]["type"], 1);
    assert_eq!(
        report["totals"],
        serde_json::json!({"read": 7, "unbundled": 4, "written": 5, "dead_lettered": 1,
            "filtered": 4, "bundles_consumed": 1,
            "filtered_by": {"type": 1, "where": 1, "duplicate": 2}})
    );
    assert_eq!(
        report["conservation"],
        "read + unbundled = written + dead_lettered + filtered + bundles_consumed"
    );
    assert_eq!(report["conservation_ok"], true);
    assert_eq!(
        report["dedupe"]["candidates"].as_u64(),
        Some(7),
        "{report:#}"
    );
    assert_eq!(report["dedupe"]["distinct"].as_u64(), Some(5));

    let dl: Vec<Value> = lines_of(&out.join("dead-letter"), ".ndjson")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        dl,
        vec![serde_json::json!({
            "file": input.join("a.ndjson").display().to_string(),
            "line": 2, "entry": 2, "reason": "Bundle entry 2 has no resource",
            "text": r#"{"request":{"method":"DELETE","url":"Patient/x"}}"#
        })]
    );
}

/// `out` and a pipeline reading `input` with unbundle and dedupe.
fn unbundle_dedupe_pipeline(dir: &Path, input: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    let p = pipeline(
        dir,
        input,
        &out,
        "[transform]\nunbundle = true\ndedupe = true\n",
    );
    (out, p)
}

/// Issue 3: the summary names the reasons and the extended equation.
#[test]
fn issue3_summary_shows_unbundled_consumed_and_filter_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        concat!(
            r#"{"resourceType":"Bundle","id":"b","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"p"}},{"resource":{"resourceType":"Patient","id":"p"}}]}"#,
            "\n"
        ),
    )
    .unwrap();
    let (out, p) = unbundle_dedupe_pipeline(dir.path(), &input);
    let o = run(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        s.contains("filtered by reason: type 0, where 0, duplicate 1"),
        "{s}"
    );
    assert!(
        s.contains("conservation: read + unbundled = written + dead-lettered + filtered + consumed holds for every type"),
        "{s}"
    );
    assert!(s.contains("unbundled"), "{s}");
    assert_eq!(
        lines_of(&out.join("ndjson"), ".ndjson"),
        vec![r#"{"resourceType":"Patient","id":"p"}"#]
    );
}

/// Issue 3: an expression that does not compile is a definition error (exit 2) with file:line.
#[test]
fn issue3_bad_fhirpath_is_a_definition_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = pipeline(
        dir.path(),
        dir.path(),
        &out,
        "[transform.where]\nObservation = \"status = 'final' and (\"\n",
    );
    let o = run(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("Observation ="))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "pipeline.toml:{line}: field `transform.where.Observation`: the FHIRPath expression `status = 'final' and (` does not compile"
        )),
        "{err}"
    );
    assert!(!out.exists(), "nothing ran");
}

/// A deterministic pseudo-random sequence for the generated input.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Issue 3 regression: with unbundle and dedupe over several files and many chunks, the
/// winners are exactly the newest per type and id (ties: the later), and every type balances.
#[test]
fn issue3_conservation_holds_with_unbundle_and_dedupe_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut rng = Lcg(7);
    // (type, id) -> (lastUpdated or None, order, text); the model of what must win.
    let mut model: HashMap<(String, String), (Option<u64>, u64, String)> = HashMap::new();
    let mut order = 0u64;
    let mut offer = |ty: &str, id: String, lu: Option<u64>, text: String| {
        order += 1;
        let e = model
            .entry((ty.to_string(), id))
            .or_insert((lu, order, text.clone()));
        if lu >= e.0 {
            *e = (lu, order, text);
        }
    };
    let resource = |rng: &mut Lcg, n: u64| -> (String, String, Option<u64>, String) {
        let ty = if rng.next(3) == 0 {
            "Observation"
        } else {
            "Patient"
        };
        let id = format!("r{}", rng.next(400));
        let lu = (rng.next(5) > 0).then(|| 1_000 + rng.next(50));
        let meta = match lu {
            Some(s) => format!(
                r#","meta":{{"lastUpdated":"2020-01-01T00:{:02}:{:02}Z"}}"#,
                s / 60 % 60,
                s % 60
            ),
            None => String::new(),
        };
        let body = if ty == "Observation" {
            r#","status":"final","code":{"text":"t"},"valueQuantity":{"value":1.50}"#
        } else {
            r#","gender":"unknown""#
        };
        let text = format!(r#"{{"resourceType":"{ty}","id":"{id}"{meta}{body},"n":{n}}}"#);
        (ty.to_string(), id, lu, text)
    };
    let (mut lines_read, mut bundles, mut entries, mut no_resource) = (0u64, 0u64, 0u64, 0u64);
    let mut n = 0;
    for f in 0..3 {
        let mut text = String::new();
        for _ in 0..1500 {
            n += 1;
            lines_read += 1;
            if rng.next(25) == 0 {
                bundles += 1;
                let mut es = Vec::new();
                for _ in 0..1 + rng.next(6) {
                    entries += 1;
                    n += 1;
                    if rng.next(10) == 0 {
                        no_resource += 1;
                        es.push(r#"{"request":{"method":"GET","url":"Patient"}}"#.to_string());
                    } else {
                        let (ty, id, lu, t) = resource(&mut rng, n);
                        offer(&ty, id, lu, t.clone());
                        es.push(format!(r#"{{"resource":{t}}}"#));
                    }
                }
                text.push_str(&format!(
                    r#"{{"resourceType":"Bundle","id":"b{n}","type":"collection","entry":[{}]}}"#,
                    es.join(",")
                ));
            } else {
                let (ty, id, lu, t) = resource(&mut rng, n);
                offer(&ty, id, lu, t.clone());
                text.push_str(&t);
            }
            text.push('\n');
        }
        std::fs::write(input.join(format!("part-{f}.ndjson")), text).unwrap();
    }
    let (out, p) = unbundle_dedupe_pipeline(dir.path(), &input);
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["conservation_ok"], true, "{report:#}");
    let mut written: Vec<String> = lines_of(&out.join("ndjson"), ".ndjson");
    written.sort();
    let mut want: Vec<String> = model.values().map(|v| v.2.clone()).collect();
    want.sort();
    assert_eq!(written.len(), want.len());
    assert_eq!(written, want);

    let t = &report["totals"];
    let get = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(get("read"), lines_read);
    assert_eq!(get("bundles_consumed"), bundles);
    assert_eq!(get("unbundled"), entries);
    assert_eq!(get("dead_lettered"), no_resource);
    assert_eq!(get("written"), model.len() as u64);
    assert_eq!(
        get("filtered"),
        lines_read - bundles + entries - no_resource - model.len() as u64
    );
    assert_eq!(t["filtered_by"]["duplicate"], t["filtered"]);
    assert!(
        report["bytes"]["input_text"].as_u64().unwrap() > 3 * 65536,
        "several chunks"
    );
    for (ty, c) in report["types"].as_object().unwrap() {
        let g = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(
            g("read") + g("unbundled"),
            g("written") + g("dead_lettered") + g("filtered") + g("bundles_consumed"),
            "{ty}"
        );
    }
}

/// The example pipeline runs on the committed sample: four types kept, only final vital-sign
/// Observations, contact details removed, provenance stamped, everything accounted for.
#[test]
fn issue3_transform_sample_pipeline_runs_on_the_committed_sample() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let o = std::process::Command::new(bin())
        .current_dir(root)
        .env("OUTPUT", dir.path())
        .args([
            "run",
            "pipelines/transform-sample.toml",
            "--quiet",
            "--report",
        ])
        .arg(dir.path().join("report.json"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["conservation_ok"], true);
    let types = report["types"].as_object().unwrap();
    for (ty, c) in types {
        let kept = ["Patient", "Encounter", "Observation", "Condition"].contains(&ty.as_str());
        if !kept {
            assert_eq!(c["filtered_by"]["type"], c["read"], "{ty}");
        }
    }
    let obs = lines_of(&dir.path().join("ndjson"), "Observation.00000.ndjson");
    assert_eq!(
        obs.len() as u64
            + report["types"]["Observation"]["filtered_by"]["where"]
                .as_u64()
                .unwrap(),
        report["types"]["Observation"]["read"].as_u64().unwrap()
    );
    assert!(!obs.is_empty());
    for l in obs {
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["status"], "final");
        assert!(l.contains(r#""code":"vital-signs""#), "{l}");
        assert_eq!(v["meta"]["source"], "urn:fhirpipe:transform-sample");
        assert_eq!(v["meta"]["tag"][0]["code"], "transformed");
    }
    let patients = lines_of(&dir.path().join("ndjson"), "Patient.00000.ndjson");
    assert_eq!(patients.len(), 60);
    for l in patients {
        let v: Value = serde_json::from_str(&l).unwrap();
        assert!(
            v.get("telecom").is_none() && v.get("address").is_none(),
            "{l}"
        );
    }
}

/// Issue 3: the official R4 example Bundles (transactions, documents, searchsets, history)
/// unbundle with every entry accounted for, and no `urn:uuid:` reference to another entry of
/// the same Bundle is left in the resources written.
#[test]
fn issue3_unbundles_the_r4_example_bundles() {
    let Some(shared) = shared_dir() else { return };
    let examples = shared.join("fhir-r4/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("Bundle-") && n.ends_with(".json")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{}", files.len());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bundles.ndjson");
    let (mut ndjson, mut entries) = (String::new(), 0u64);
    let mut urns = std::collections::HashSet::new();
    for f in &files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for e in v["entry"].as_array().into_iter().flatten() {
            entries += 1;
            if let Some(u) = e["fullUrl"].as_str().filter(|u| u.starts_with("urn:uuid:")) {
                if e["resource"]["id"].is_string() {
                    urns.insert(u.to_string());
                }
            }
        }
        ndjson.push_str(&serde_json::to_string(&v).unwrap());
        ndjson.push('\n');
    }
    std::fs::write(&input, ndjson).unwrap();
    let (out, p) = unbundle_dedupe_pipeline(dir.path(), &input);
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert!(code == 0 || code == 1, "{stderr}");
    assert_eq!(report["conservation_ok"], true, "{report:#}");
    let t = &report["totals"];
    assert_eq!(t["read"].as_u64(), Some(files.len() as u64));
    assert_eq!(t["unbundled"].as_u64(), Some(entries));
    // Every example Bundle passes the basic checks, so every one is consumed.
    assert_eq!(t["bundles_consumed"].as_u64(), Some(files.len() as u64));
    assert!(t["written"].as_u64().unwrap() > entries / 2, "{t}");
    let mut checked = 0;
    for l in lines_of(&out.join("ndjson"), ".ndjson") {
        let v: Value = serde_json::from_str(&l).unwrap();
        if v["resourceType"] == "Bundle" {
            continue; // nested Bundles are written as they are
        }
        for r in l.split("\"reference\":\"").skip(1) {
            let r = &r[..r.find('"').unwrap()];
            assert!(!urns.contains(r), "{r} left in {l}");
            checked += 1;
        }
    }
    assert!(checked > 0);
}

/// `fhirpipe check` shows the transform steps in their order of execution.
#[test]
fn check_prints_the_transform_plan() {
    let o = run(&[
        "check",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/transform-sample.toml"
        ),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("  transform (in order: unbundle, types, where, dedupe, remove, meta, references):\n    unbundle: Bundle entries become resources (urn:uuid references → Type/id)\n    types: Patient, Encounter, Observation, Condition (others filtered)\n    where Observation: status = 'final' and category.coding.where(code = 'vital-signs').exists()\n    dedupe: newest meta.lastUpdated per type and id (two passes over the input)\n    remove: Patient.telecom, Patient.address, Encounter.participant\n    meta.source = urn:fhirpipe:transform-sample\n"),
        "{s}"
    );
    assert!(
        s.contains("    references: https://fhirpipe.example.org/fhir/Type/id → Type/id\n"),
        "{s}"
    );
}
