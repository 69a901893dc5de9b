//! `fhirpipe fhirpath`: results as JSON arrays for a resource, an NDJSON file and stdin; exit
//! codes 2 (bad expression, with the position), 3 (unreadable file), 5 (invalid JSON).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use support::bin;

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(bin())
        .arg("fhirpath")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn evaluates_a_pretty_printed_resource() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.json");
    std::fs::write(&f, "{\n  \"resourceType\": \"Patient\",\n  \"name\": [{\"use\": \"official\", \"given\": [\"Ann\", \"B\"]}]\n}\n").unwrap();
    let (code, out, _) = run(
        &[
            "Patient.name.where(use='official').given.first()",
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "[\"Ann\"]\n"));
}

#[test]
fn evaluates_each_ndjson_line_from_stdin() {
    let input = "{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":120}}\n\n{\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":80}}\n";
    let (code, out, _) = run(
        &["Observation.value.ofType(Quantity).value > 100"],
        Some(input),
    );
    assert_eq!((code, out.as_str()), (0, "[true]\n[false]\n"));
}

#[test]
fn exit_codes() {
    let (code, _, err) = run(&["name.where(", "/nonexistent"], None);
    assert_eq!(code, 2);
    assert_eq!(err, "fhirpipe: bad expression at 11: expected an expression, found the end\n  name.where(\n             ^\n");
    let (code, _, err) = run(&["name", "/nonexistent/x.json"], None);
    assert_eq!(code, 3);
    assert!(
        err.starts_with("fhirpipe: cannot read /nonexistent/x.json:"),
        "{err}"
    );
    let (code, out, err) = run(&["id"], Some("{\"id\":\"a\"}\n{not json\n"));
    assert_eq!((code, out.as_str()), (5, "[\"a\"]\n"));
    assert!(
        err.starts_with("fhirpipe: stdin line 2: invalid JSON"),
        "{err}"
    );
}

/// Issue 3: `--var name=value` defines `%name`; an undefined one is exit 2 naming it.
#[test]
fn user_variables() {
    let input = "{\"resourceType\":\"Patient\",\"name\":[{\"use\":\"official\",\"given\":[\"Ann\"]},{\"use\":\"usual\",\"given\":[\"Annie\"]}]}\n";
    let (code, out, err) = run(
        &[
            "--var",
            "u=usual",
            "--var",
            "p=An",
            "Patient.name.where(use = %u).given.where(startsWith(%p))",
        ],
        Some(input),
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "[\"Annie\"]\n", ""));
    let (code, out, err) = run(&["Patient.name.where(use = %u)"], Some(input));
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "fhirpipe: evaluation failed at 25: undefined variable %u\n  Patient.name.where(use = %u)\n                           ^\n"
    );
    let (code, _, err) = run(&["--var", "resource=x", "id"], None);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "fhirpipe: --var %resource is defined by FHIRPath and cannot be set\n"
        )
    );
    let (code, _, err) = run(&["--var", "novalue", "id"], None);
    assert_eq!(
        (code, err.as_str()),
        (2, "fhirpipe: --var expected NAME=VALUE, got \"novalue\"\n")
    );
}

/// Issue 3: `--strict` checks the expression against the R4 model before evaluating.
#[test]
fn strict_mode() {
    let input = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"valueQuantity\":{\"value\":120,\"unit\":\"mg\"}}\n";
    let (code, out, _) = run(&["Observation.valueQuantity.unit"], Some(input));
    assert_eq!((code, out.as_str()), (0, "[\"mg\"]\n"));
    let (code, out, err) = run(&["--strict", "Observation.valueQuantity.unit"], Some(input));
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "fhirpipe: strict check failed at 12: valueQuantity is a choice variant: navigate Observation.value (with ofType() to pick a type)\n  Observation.valueQuantity.unit\n              ^\n"
    );
    let (code, out, _) = run(
        &["--strict", "Observation.value.ofType(Quantity).unit"],
        Some(input),
    );
    assert_eq!((code, out.as_str()), (0, "[\"mg\"]\n"));
}

/// Issue 3: an XML resource is converted with the R4 model and evaluated.
#[test]
fn evaluates_an_xml_resource() {
    let xml = "\u{feff}<?xml version=\"1.0\"?>\n<Patient xmlns=\"http://hl7.org/fhir\"><birthDate value=\"1974-12-25\"/><name><given value=\"Ann\"/></name></Patient>\n";
    let (code, out, _) = run(&["Patient.name.given | Patient.birthDate"], Some(xml));
    assert_eq!((code, out.as_str()), (0, "[\"Ann\",\"1974-12-25\"]\n"));
    let (code, out, err) = run(&["id"], Some("<Patient><nick value=\"x\"/></Patient>"));
    assert_eq!((code, out.as_str()), (5, ""));
    assert_eq!(
        err,
        "fhirpipe: stdin is not an R4 XML resource: Patient.nick: unknown element nick\n"
    );
}
