//! The Microsoft FHIR anonymizer's functional tests (`../shared/suites/anonymizer/
//! test-manifest.json`): each case de-identifies its input with its configuration and compares
//! the result with the expected output as parsed JSON (as upstream compares after parsing);
//! `expect_error` cases must fail. Prints "anonymizer: P pass, F fail of N" with each failure's
//! reason, and fails below the floor. "Today" is fixed for the age-over-89 rule.
//! Fails under CI=true when ../shared is missing; skips with a reason elsewhere.

mod support;

use fhirpipe::deid::Deidentifier;
use std::path::Path;

/// Cases that passed when this floor was last raised.
const PASS_FLOOR: usize = 38;

/// The date the expected outputs assume for the age-over-89 rule.
const TODAY: (i64, u32, u32) = (2021, 6, 1);

fn run_case(dir: &Path, case: &serde_json::Value) -> Result<(), String> {
    let cfg_path = dir.join(case["config"].as_str().unwrap_or_default());
    let input = std::fs::read(dir.join(case["input"].as_str().unwrap_or_default()))
        .map_err(|e| format!("reading input: {e}"))?;
    let input = input
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(&input)
        .to_vec();
    let d = Deidentifier::from_file(&cfg_path)
        .map_err(|e| format!("config: {e}"))?
        .with_today(TODAY);
    let result = d.deidentify(&input, "");
    if let Some(want) = case.get("expect_error").and_then(|e| e.as_str()) {
        return match result {
            Err(_) => Ok(()),
            Ok(out) => Err(format!(
                "expected an error ({want}), got {}",
                String::from_utf8_lossy(&out.json)
            )),
        };
    }
    let out = result.map_err(|e| format!("unexpected error: {e}"))?;
    let got: serde_json::Value = serde_json::from_slice(&out.json).map_err(|e| {
        format!(
            "output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.json)
        )
    })?;
    let text = std::fs::read_to_string(dir.join(case["expected"].as_str().unwrap_or_default()))
        .map_err(|e| format!("reading expected: {e}"))?;
    let want: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("expected is not JSON: {e}"))?;
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "output differs\n   got: {}\n  want: {}",
            serde_json::to_string(&got).unwrap_or_default(),
            serde_json::to_string(&want).unwrap_or_default()
        ))
    }
}

#[test]
fn anonymizer_functional_suite() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let dir = shared.join("suites/anonymizer");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("test-manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let cases = manifest["cases"].as_array().expect("cases");
    let (mut pass, mut fail) = (0, 0);
    for case in cases {
        match run_case(&dir, case) {
            Ok(()) => pass += 1,
            Err(reason) => {
                fail += 1;
                eprintln!(
                    "FAIL {} + {}: {reason}",
                    case["config"].as_str().unwrap_or_default(),
                    case["input"].as_str().unwrap_or_default()
                );
            }
        }
    }
    println!("anonymizer: {pass} pass, {fail} fail of {}", cases.len());
    assert_eq!(cases.len(), 38, "the manifest has 38 cases");
    assert!(
        pass >= PASS_FLOOR,
        "anonymizer: {pass} pass, below the floor of {PASS_FLOOR}"
    );
}
