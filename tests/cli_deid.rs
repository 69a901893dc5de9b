//! `fhirpipe deid`: NDJSON and single-resource JSON inputs, blank lines, dead letters with
//! file, line and reason (and without the PHI text), the report, keys never printed, and
//! referential integrity after Safe Harbor de-identification of ../shared/data (issue 6).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;

const HASH_KEY: &str = "hash-key-6c1f0b2e";
const SHIFT_KEY: &str = "shift-key-93ad41";

fn preset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines/deid")
        .join(name)
}

/// Runs fhirpipe with the keys in its environment.
fn fhirpipe(args: &[&str]) -> Output {
    std::process::Command::new(support::bin())
        .args(args)
        .env("FHIRPIPE_DEID_CRYPTO_HASH_KEY", HASH_KEY)
        .env("FHIRPIPE_DEID_DATE_SHIFT_KEY", SHIFT_KEY)
        .output()
        .expect("run fhirpipe")
}

fn deid(args: &[&str]) -> Output {
    let mut all = vec!["deid"];
    all.extend_from_slice(args);
    fhirpipe(&all)
}

/// Asserts exit code 0, showing the output otherwise; returns stdout.
fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1980-02-29","address":[{"city":"Springfield","state":"MA","postalCode":"01103"}],"gender":"female"}"#;

#[test]
fn ndjson_and_json_files_blank_lines_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let nd = dir.path().join("Patient.ndjson");
    std::fs::write(
        &nd,
        format!(
            "{PATIENT}\n\n   \n{{\"resourceType\":\"Patient\",\"colour\":\"Jane Doe\"}}\n{{not json\n{}\n",
            PATIENT.replace("p1", "p2")
        ),
    )
    .unwrap();
    let single = dir.path().join("one.json");
    // Pretty-printed, member order as in PATIENT.
    std::fs::write(&single, PATIENT.replace(",\"", ",\n  \"")).unwrap();
    let out_dir = dir.path().join("out");
    let report = dir.path().join("report.json");
    let out = deid(&[
        "--config",
        preset("safe-harbor.json").to_str().unwrap(),
        nd.to_str().unwrap(),
        single.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("3 resources de-identified, 2 dead-lettered (7 lines, 2 blank)\n"),
        "{stdout}"
    );
    let lines: Vec<String> = std::fs::read_to_string(out_dir.join("Patient.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2);
    let p1 = format!(
        "{{\"resourceType\":\"Patient\",\"id\":\"{}\",\"meta\":{{\"security\":[{{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\"code\":\"REDACTED\",\"display\":\"redacted\"}},{{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\"code\":\"ABSTRED\",\"display\":\"abstracted\"}},{{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\"code\":\"CRYTOHASH\",\"display\":\"cryptographic hash function\"}},{{\"code\":\"PERTURBED\",\"display\":\"exact value is replaced with another exact value\"}}]}},\"birthDate\":\"{}\",\"address\":[{{\"state\":\"MA\",\"postalCode\":\"01100\"}}],\"gender\":\"female\"}}",
        hmac(HASH_KEY, "p1"),
        shifted("1980-02-29", "p1")
    );
    assert_eq!(lines[0], p1);
    let single_out = std::fs::read_to_string(out_dir.join("one.json")).unwrap();
    assert_eq!(single_out, format!("{p1}\n"));
    let dl = std::fs::read_to_string(out_dir.join("dead-letter.ndjson")).unwrap();
    let path = nd.display().to_string();
    assert_eq!(
        dl,
        format!(
            "{{\"file\":{path:?},\"line\":4,\"reason\":\"invalid input resource: Type checking the data: Encountered unknown element 'colour' at Patient\",\"resourceType\":\"Patient\"}}\n{{\"file\":{path:?},\"line\":5,\"reason\":\"invalid input resource: invalid JSON: {}\"}}\n",
            dl_json_reason(&dl)
        )
    );
    assert!(
        !dl.contains("Jane Doe"),
        "the dead letter carries no PHI text"
    );
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["deidentified"], 3);
    assert_eq!(rep["dead_lettered"], 2);
    assert_eq!(rep["types"]["Patient"]["deidentified"], 3);
    assert_eq!(rep["types"]["Patient"]["dead_lettered"], 1);
    assert_eq!(rep["types"]["_unknown"]["dead_lettered"], 1);
    // Keys appear nowhere: output, dead letter, report, stdout, stderr.
    let everything = format!(
        "{stdout}{stderr}{}{dl}{single_out}{}",
        lines.join("\n"),
        std::fs::read_to_string(&report).unwrap()
    );
    for key in [HASH_KEY, SHIFT_KEY] {
        assert!(!everything.contains(key), "a key leaked");
    }
}

/// The reason simd-json gives for `{not json` (taken from the file, checked for its prefix).
fn dl_json_reason(dl: &str) -> String {
    let second = dl.lines().nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(second).unwrap();
    let r = v["reason"].as_str().unwrap();
    r.strip_prefix("invalid input resource: invalid JSON: ")
        .unwrap()
        .to_string()
}

fn hmac(key: &str, s: &str) -> String {
    fhirpipe::deid::methods::hmac_hex(s, key)
}

fn shifted(date: &str, id: &str) -> String {
    // Safe Harbor hashes Resource.id before the date rules run: the offset uses the hashed id.
    let offset = fhirpipe::deid::methods::date_shift_offset(&hmac(HASH_KEY, id), SHIFT_KEY);
    fhirpipe::deid::methods::shift_date(date, offset, fhirpipe::deid::methods::today_utc()).unwrap()
}

#[test]
fn a_bad_config_is_a_usage_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        r#"{"fhirPathRules":[{"path":"Patient.id","method":"hash"}]}"#,
    )
    .unwrap();
    let input = dir.path().join("p.ndjson");
    std::fs::write(&input, format!("{PATIENT}\n")).unwrap();
    let out = deid(&[
        "--config",
        cfg.to_str().unwrap(),
        input.to_str().unwrap(),
        "--output",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fhirPathRules[0] (path \"Patient.id\"): unknown method 'hash'"),
        "{stderr}"
    );
}

/// Counts the references of `files` that do not resolve: a `Type/id` to a resource of the
/// files, a `#id` to a contained resource of the same resource. Returns (resources,
/// references, unresolved).
fn unresolved_references(files: &[PathBuf]) -> (usize, usize, Vec<String>) {
    let mut ids: HashSet<String> = HashSet::new();
    let mut docs = Vec::new();
    for p in files {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.insert(format!(
                "{}/{}",
                v["resourceType"].as_str().unwrap(),
                v["id"].as_str().unwrap_or_default()
            ));
            docs.push(v);
        }
    }
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    if k == "reference" {
                        if let Some(s) = x.as_str() {
                            out.push(s.to_string());
                        }
                    } else if k != "contained" {
                        refs(x, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let (mut checked, mut unresolved) = (0, Vec::new());
    for d in &docs {
        let contained: HashMap<String, ()> = d["contained"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|x| x["id"].as_str().map(|i| (format!("#{i}"), ())))
                    .collect()
            })
            .unwrap_or_default();
        let mut rs = Vec::new();
        refs(d, &mut rs);
        for r in rs {
            checked += 1;
            let ok = if r.starts_with('#') {
                contained.contains_key(&r)
            } else {
                ids.contains(&r)
            };
            if !ok {
                unresolved.push(r);
            }
        }
    }
    (docs.len(), checked, unresolved)
}

#[test]
fn safe_harbor_keeps_references_resolvable_on_shared_data() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    for set in ["synthea-150", "bulk-10"] {
        let input = shared.join("data").join(set);
        let dir = tempfile::tempdir().unwrap();
        // Resource files only (bulk-10 also has the export's log.ndjson).
        let mut files: Vec<PathBuf> = std::fs::read_dir(&input)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("log.ndjson"))
            .collect();
        files.sort();
        let (_, _, dangling_in) = unresolved_references(&files);
        let out_dir = dir.path().join("out");
        let mut args = vec![
            "--config".to_string(),
            preset("safe-harbor.json").display().to_string(),
            "--output".to_string(),
            out_dir.display().to_string(),
        ];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        succeeded(set, &deid(&args));
        let outputs: Vec<PathBuf> = files
            .iter()
            .map(|f| out_dir.join(f.file_name().unwrap()))
            .collect();
        let (resources, refs, dangling_out) = unresolved_references(&outputs);
        println!(
            "{set}: {resources} resources, {refs} references; unresolved: {} in the input, {} in the output",
            dangling_in.len(),
            dangling_out.len()
        );
        assert!(resources > 0 && refs > 0);
        // What resolved before resolves after: only the input's own dangling references
        // (targets not in the export) stay unresolved, hashed like every other id.
        assert_eq!(
            dangling_out.len(),
            dangling_in.len(),
            "e.g. {:?}",
            &dangling_out[..dangling_out.len().min(5)]
        );
        if set == "synthea-150" {
            assert!(dangling_in.is_empty(), "synthea-150 is self-contained");
        }
    }
}

/// Runs the test pipeline of `support::pipeline` with `extra` (the keys in the environment)
/// and returns the process output and its `--report`.
fn run_pipeline(dir: &Path, input: &Path, out: &Path, extra: &str) -> (Output, serde_json::Value) {
    let p = support::pipeline(dir, input, out, extra);
    let report_path = dir.join("report.json");
    let run = fhirpipe(&[
        "run",
        p.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&run.stderr)));
    (run, serde_json::from_str(&text).unwrap())
}

fn ndjson_lines_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".ndjson") {
                out.extend(
                    std::fs::read_to_string(&p)
                        .unwrap()
                        .lines()
                        .map(str::to_string),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_deidentify_stage_in_a_pipeline_counts_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let obs = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":72.50,"unit":"kg"}}"#;
    // Passes the basic checks, but is not R4: the engine refuses it.
    let odd = r#"{"resourceType":"Patient","id":"p9","colour":"red"}"#;
    std::fs::write(input.join("Patient.ndjson"), format!("{PATIENT}\n{odd}\n")).unwrap();
    std::fs::write(input.join("Observation.ndjson"), format!("{obs}\n")).unwrap();
    let out = dir.path().join("out");
    let extra = format!(
        "[deidentify]\nconfig = {:?}\n",
        preset("safe-harbor.json").display().to_string()
    );
    let (run, report) = run_pipeline(dir.path(), &input, &out, &extra);
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(report["conservation_ok"], true, "{report}");
    assert_eq!(report["deidentified"]["Patient"], 1);
    assert_eq!(report["deidentified"]["Observation"], 1);
    assert_eq!(report["types"]["Patient"]["dead_lettered"], 1);
    let lines = ndjson_lines_under(&out.join("ndjson"));
    let pid = hmac(HASH_KEY, "p1");
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Observation.value is redacted by the preset; the subject still points at the patient.
    assert!(
        lines[0].starts_with(&format!(
            "{{\"resourceType\":\"Observation\",\"id\":\"{}\",",
            hmac(HASH_KEY, "o1")
        )),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(&format!("\"subject\":{{\"reference\":\"Patient/{pid}\"}}")));
    assert!(lines[1].contains(&format!("\"id\":\"{pid}\"")));
    let dl = ndjson_lines_under(&out.join("dead-letter"));
    assert_eq!(dl.len(), 1);
    let d: serde_json::Value = serde_json::from_str(&dl[0]).unwrap();
    assert_eq!(d["line"], 2);
    assert_eq!(
        d["reason"],
        "invalid input resource: Type checking the data: Encountered unknown element 'colour' at Patient"
    );
    for key in [HASH_KEY, SHIFT_KEY] {
        assert!(!stderr.contains(key) && !report.to_string().contains(key));
    }
}

#[test]
fn the_presets_check_and_the_limited_data_set_keeps_dates_and_zip3() {
    for toml in ["safe-harbor.toml", "limited-data-set.toml"] {
        let stdout = succeeded(toml, &fhirpipe(&["check", preset(toml).to_str().unwrap()]));
        assert!(stdout.contains("  deidentify: "), "{stdout}");
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("Patient.ndjson");
    std::fs::write(&input, format!("{PATIENT}\n")).unwrap();
    let out_dir = dir.path().join("o");
    let out = deid(&[
        "--config",
        preset("limited-data-set.json").to_str().unwrap(),
        input.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let line = std::fs::read_to_string(out_dir.join("Patient.ndjson")).unwrap();
    assert!(line.contains(r#""birthDate":"1980-02-29""#), "{line}");
    assert!(
        line.contains(r#""address":[{"state":"MA","postalCode":"01100"}]"#),
        "{line}"
    );
    assert!(
        !line.contains("Doe") && !line.contains("Springfield"),
        "{line}"
    );
}

/// A DocumentReference whose text/plain note names the patient of PATIENT and whose
/// narrative is `div`.
fn note_doc(id: &str, note: &str, div: &str) -> String {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(note);
    format!(
        r#"{{"resourceType":"DocumentReference","id":"{id}","status":"current","subject":{{"reference":"Patient/p1"}},"text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">{div}</div>"}},"content":[{{"attachment":{{"contentType":"text/plain","data":"{data}"}}}}]}}"#
    )
}

fn decoded_note(line: &str) -> String {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let data = v["content"][0]["attachment"]["data"].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap()
}

/// Issue 6 item 4 in a pipeline: `[deidentify.text]` redacts the note with the patient's
/// name and city taken from Patient.ndjson by a first pass; a narrative that is not XHTML
/// is dead-lettered with the element and the reason; the report counts carriers and spans.
#[test]
fn deidentify_text_in_a_pipeline_redacts_notes_with_names_from_the_patient_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("Patient.ndjson"), format!("{PATIENT}\n")).unwrap();
    let good = note_doc(
        "d1",
        "Jane Doe was seen in Springfield on 03/14/2019. Call 413-555-0100.",
        "Visit note",
    );
    let bad = note_doc("d2", "ok", "Doe <b");
    std::fs::write(
        input.join("DocumentReference.ndjson"),
        format!("{good}\n{bad}\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let extra = format!(
        "[deidentify]\nconfig = {:?}\n\n[deidentify.text]\noperation = \"redact\"\n",
        preset("safe-harbor-text.json").display().to_string()
    );
    let (run, report) = run_pipeline(dir.path(), &input, &out, &extra);
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert_eq!(
        run.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(report["conservation_ok"], true, "{report}");
    let t = &report["deidentify_text"];
    assert_eq!(t["operation"], "redact", "{report}");
    assert_eq!(t["known_resources"], 1, "{report}");
    assert_eq!(t["attachments"], 1, "{report}");
    assert_eq!(t["narratives"], 1, "{report}");
    // "Jane Doe" is one span.
    assert_eq!(t["spans"]["NAME"], 1, "{report}");
    assert_eq!(t["spans"]["CITY"], 1, "{report}");
    assert_eq!(t["spans"]["DATE"], 1, "{report}");
    assert_eq!(t["spans"]["PHONE"], 1, "{report}");
    // The summary table goes to stderr.
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(
        stderr.contains("free text (redact): 1 narratives, 0 annotations, 1 text/plain attachments (0 others left), 4 PHI spans: CITY 1, DATE 1, NAME 1, PHONE 1; known PHI from 1 resources"),
        "{stderr}"
    );
    let lines: Vec<String> = ndjson_lines_under(&out.join("ndjson"))
        .into_iter()
        .filter(|l| l.contains("DocumentReference"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        decoded_note(&lines[0]),
        "[NAME] was seen in [CITY] on [DATE]. Call [PHONE]."
    );
    let dl = ndjson_lines_under(&out.join("dead-letter"));
    assert_eq!(dl.len(), 1);
    let d: serde_json::Value = serde_json::from_str(&dl[0]).unwrap();
    assert_eq!(d["line"], 2);
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("DocumentReference.text.div: narrative XHTML is malformed"),
        "{reason}"
    );
}

/// `fhirpipe deid --text tag`: the text is unchanged and the report lists every carrier's
/// spans with file, line and element.
#[test]
fn deid_text_tag_lists_spans_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let patients = dir.path().join("Patient.ndjson");
    std::fs::write(&patients, format!("{PATIENT}\n")).unwrap();
    let docs = dir.path().join("DocumentReference.ndjson");
    let note = "Jane Doe, seen 03/14/2019.";
    std::fs::write(&docs, format!("\n{}\n", note_doc("d1", note, "Visit"))).unwrap();
    let out_dir = dir.path().join("o");
    let report = dir.path().join("r.json");
    let out = deid(&[
        "--config",
        preset("safe-harbor-text.json").to_str().unwrap(),
        "--text",
        "tag",
        patients.to_str().unwrap(),
        docs.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = succeeded("deid --text tag", &out);
    assert!(
        stdout.contains("free text (tag): 1 narratives, 0 annotations, 1 text/plain attachments"),
        "{stdout}"
    );
    let line = std::fs::read_to_string(out_dir.join("DocumentReference.ndjson")).unwrap();
    assert_eq!(decoded_note(line.trim()), note);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["text"]["known_resources"], 1, "{r}");
    let spans = r["text_spans"].as_array().expect("text_spans");
    assert_eq!(spans.len(), 1, "{r}");
    assert_eq!(spans[0]["line"], 2);
    assert_eq!(spans[0]["resourceType"], "DocumentReference");
    assert_eq!(
        spans[0]["element"],
        "DocumentReference.content[0].attachment.data"
    );
    let got: Vec<(u64, u64, &str)> = spans[0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_u64().unwrap(),
                s["end"].as_u64().unwrap(),
                s["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(0, 8, "NAME"), (15, 25, "DATE")]);
}
