//! `fhirpipe validate` and pipelines with `[validate] level = "structure"`: exit codes, the
//! summary, `--dead-letter` lines carrying their OperationOutcome, `--report`, and the
//! pipeline's dead letter at level `structure`.

mod support;

use support::*;

const GOOD: &str =
    r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-02-29"}"#;
const BAD: &str = r#"{"resourceType":"Patient","id":"p2","gender":"F","name":[{"given":"Ann"}]}"#;

const BAD_OUTCOME: &str = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"code-invalid","diagnostics":"code \"F\" is not in the required value set administrative-gender","expression":["Patient.gender"]},{"severity":"error","code":"structure","diagnostics":"expected an array (the element repeats), found a string","expression":["Patient.name[0].given"]}]}"#;

fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("Patient.ndjson"), format!("{GOOD}\n{BAD}\n")).unwrap();
    input
}

#[test]
fn validate_command_reports_and_dead_letters_invalid_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let dl = dir.path().join("dl.ndjson");
    let report = dir.path().join("report.json");
    let out = run(&[
        "validate",
        input.to_str().unwrap(),
        "--dead-letter",
        dl.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("2 resources: 1 valid, 1 invalid\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("       1  Patient.name.given: expected an array (the element repeats), found a string\n"),
        "{stdout}"
    );
    let file = input.join("Patient.ndjson").display().to_string();
    let expected = format!(
        r#"{{"file":{file:?},"line":2,"reason":"Patient.gender: code \"F\" is not in the required value set administrative-gender","resourceType":"Patient","text":{text},"outcome":{BAD_OUTCOME}}}"#,
        text = serde_json::to_string(BAD).unwrap()
    );
    assert_eq!(std::fs::read_to_string(&dl).unwrap(), expected + "\n");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["resources"], 2);
    assert_eq!(r["types"]["Patient"]["invalid"], 1);
    assert_eq!(r["invalid_lines"][0]["line"], 2);
}

#[test]
fn validate_command_exit_codes_for_valid_input_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("Patient-p1.json");
    std::fs::write(
        &f,
        "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"p1\"\n}\n",
    )
    .unwrap();
    let out = run(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().next(),
        Some("1 resources: 1 valid, 0 invalid")
    );
    let out = run(&["validate", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(run(&["validate"]).status.code(), Some(2));
}

#[test]
fn pipeline_at_structure_level_dead_letters_with_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let p = pipeline(dir.path(), &input, &out, "");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replace(
            "[sinks.lake]",
            "[validate]\nlevel = \"structure\"\n\n[sinks.lake]",
        ),
    )
    .unwrap();
    let (code, report, stderr) = run_pipeline(&p, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["totals"]["written"], 1);
    assert_eq!(report["totals"]["dead_lettered"], 1);
    let dl = lines_of(&out.join("dead-letter"), "ndjson");
    assert_eq!(dl.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&dl[0]).unwrap();
    assert_eq!(
        v["outcome"],
        serde_json::from_str::<serde_json::Value>(BAD_OUTCOME).unwrap()
    );
    // The same input at the default level keeps both lines.
    std::fs::write(&p, text).unwrap();
    let (code, report, _) = run_pipeline(&p, &[]);
    assert_eq!((code, report["totals"]["written"].clone()), (0, 2.into()));
}
