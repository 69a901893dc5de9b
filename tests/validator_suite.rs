//! Agreement of `structure` validation with the HL7 FHIR validator test suite (issue 3):
//! `../shared/suites/fhir-validator-r4/manifest.json` lists each case's file, FHIR version,
//! module and the Java reference validator's expected outcome (an OperationOutcome file under
//! `outcomes/`, or an inline `outcome` / `errorCount`). We compare one bit per case: "has
//! errors" (expected error + fatal issues > 0) against "our validator reports an error".
//!
//! Selection rule — a case is compared when its expected outcome can depend only on base R4
//! structure:
//! * version `4.0` / `4.0.1`, a `.json` file, `use-test` not false;
//! * no `supporting`, `profiles`, `profile`, `packages` or `logical` entry (those validate
//!   against something besides the base specification);
//! * module not in [`MODULES_OUTSIDE`] (terminology, profiles, Questionnaire rules, logical
//!   models, SMART Health Cards, ...);
//! * no validator option from [`OPTIONS_OUTSIDE`] (we validate with the defaults, and those
//!   options switch on checks outside structure: example URLs, security, reference resolution);
//! * the Java expectation exists (a present outcome file, not `{}`);
//! * not listed in [`CASES_OUTSIDE`], where each case is named with the reason its expected
//!   outcome depends on something outside base structure (an invariant, a terminology check,
//!   a validator option, ...).
//!
//! "Ours" is: the file is not valid JSON (simd-json) → error; otherwise
//! [`Validator::validate`] on the parsed value has an error. The test prints the agreement
//! rate, per-module counts and every disagreement (file, expected, ours, our first message),
//! and fails when the agreement falls below [`AGREEMENT_FLOOR`] or the selection changes size.
//! Fails under CI=true when ../shared is missing; skips with a reason elsewhere.

mod support;

use fhirpipe::fhir::validate::{Severity, Validator};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;

/// Modules whose cases need more than base structure, with the reason.
const MODULES_OUTSIDE: &[(&str, &str)] = &[
    ("tx", "needs a terminology server"),
    ("tx-advanced", "needs a terminology server"),
    ("profile", "validates against profiles"),
    (
        "questionnaire",
        "QuestionnaireResponse against its Questionnaire",
    ),
    ("cdshooks", "CDS Hooks logical model, not a FHIR resource"),
    ("cda", "CDA logical model, not a FHIR resource"),
    ("shc", "SMART Health Cards (JWS)"),
];

/// Validator options (manifest keys) that switch on checks outside base structure or change
/// the defaults we validate with, with the reason.
const OPTIONS_OUTSIDE: &[(&str, &str)] = &[
    ("examples", "option examples: the example-URL rule"),
    (
        "security-checks",
        "option security-checks: HTML in strings and XHTML",
    ),
    (
        "validateReference",
        "option validateReference: resolves references",
    ),
    (
        "validateContains",
        "option validateContains: changes how contained resources are checked",
    ),
    (
        "allow-comments",
        "option allow-comments: JSON with comments (we parse strict JSON)",
    ),
    (
        "noHtmlInMarkdown",
        "option noHtmlInMarkdown: a markdown content rule",
    ),
    (
        "no-experimental-content",
        "option no-experimental-content: a business rule",
    ),
    ("ips", "option ips: validates against the IPS"),
    (
        "allowed-extension-domain",
        "option allowed-extension-domain: extension resolution",
    ),
    ("supporting5", "option supporting5: loads other definitions"),
    ("certificate", "option certificate: verifies a signature"),
];

/// Individual cases whose expected outcome depends on something outside base R4 structure.
const CASES_OUTSIDE: &[(&str, &str)] = &[
    (
        "attachment-with-wrong-size",
        "business rule: Attachment.size against the data's length",
    ),
    (
        "bundle-document-versioned-references-bad",
        "resolves references inside the Bundle",
    ),
    (
        "capstmt",
        "CapabilityStatement search parameters against their SearchParameter definitions",
    ),
    (
        "mr-covid-bnd1",
        "terminology: Coding.system must name a code system (not a value set)",
    ),
    (
        "sp-diff-type",
        "SearchParameter against its derivedFrom SearchParameter",
    ),
    (
        "sp-diff-base",
        "SearchParameter against its derivedFrom SearchParameter; FHIRPath typing",
    ),
    (
        "sp-composite",
        "business rule: a composite SearchParameter needs components",
    ),
    (
        "bundle-duplicate-id",
        "Bundle rule: fullUrl must be absolute (specification text, no invariant)",
    ),
    (
        "mni-patientOverview-bundle-example1",
        "terminology displays; Bundle fullUrl rules",
    ),
    (
        "mni-patientOverview-bundle-example1b",
        "terminology displays; duplicate ids; Bundle references",
    ),
    (
        "bundle-duplicate-ids-not",
        "terminology displays; Bundle fullUrl and link rules",
    ),
    ("bundle-id-2", "Bundle rule: link relations occur once"),
    (
        "bundle-id-3",
        "search-set Bundle rules; terminology displays",
    ),
    ("bundle-id-4", "search-set Bundle rules"),
    (
        "bundle-id-5",
        "terminology: a display checked by the terminology server",
    ),
    (
        "bundle-with-contained",
        "narrative links, terminology displays, Bundle references",
    ),
    (
        "ips-htmlrefs-backwards",
        "extension definitions; narrative links inside the Bundle",
    ),
    (
        "pat-dob-ext",
        "extension definitions: an unknown extension is an error",
    ),
    (
        "target-ref-profile-empty",
        "extension definitions; terminology displays",
    ),
    (
        "maiden-name-extension",
        "extension definitions: the extension's context",
    ),
    (
        "risk-assessment-probability-range",
        "invariant ras-2 (invariants are not checked)",
    ),
    (
        "encounter-period",
        "invariant per-1 (invariants are not checked)",
    ),
    (
        "ext-ccuk",
        "StructureDefinition snapshot generation; invariant sdf-20",
    ),
    ("obs-mz", "StructureDefinition snapshot generation"),
    ("signatures-example-2", "verifies a digital signature"),
    (
        "xml-bad-entities-json",
        "XHTML entities (we check only that a narrative is a <div>); the file also starts with a \
         byte-order mark, which we reject as JSON, so we would agree for the wrong reason",
    ),
];

/// The number of selected cases (a change in the suite or the rule must be looked at).
const SELECTED: usize = 103;

/// Selected cases on which we must agree with the Java validator (regression floor).
const AGREEMENT_FLOOR: usize = 103;

struct Case {
    name: String,
    file: String,
    module: String,
    expected_errors: usize,
    /// The Java validator's first error message, for the report.
    expected_first: String,
}

/// The Java validator's error + fatal count for a case and its first error message, or why
/// there is no expectation.
fn expected_errors(java: Option<&Json>, outcomes: &Path) -> Result<(usize, String), &'static str> {
    let count = |oo: &Json| {
        let errors: Vec<&Json> = oo["issue"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")))
                    .collect()
            })
            .unwrap_or_default();
        let first = errors
            .first()
            .map(|i| {
                let text = i["details"]["text"].as_str().unwrap_or_default();
                format!(
                    "{}: {text}",
                    i["expression"][0].as_str().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        (errors.len(), first)
    };
    match java {
        None => Err("no Java expectation"),
        Some(Json::String(p)) => {
            let path = outcomes.join(p);
            let text = std::fs::read_to_string(&path).map_err(|_| "Java outcome file missing")?;
            let oo: Json = serde_json::from_str(&text).expect("outcome file is JSON");
            Ok(count(&oo))
        }
        Some(Json::Object(o)) => {
            if let Some(n) = o.get("errorCount").and_then(Json::as_u64) {
                let first = o
                    .get("output")
                    .and_then(|v| v[0].as_str())
                    .unwrap_or_default()
                    .to_string();
                Ok((n as usize, first))
            } else if let Some(oo) = o.get("outcome") {
                Ok(count(oo))
            } else {
                Err("empty Java expectation")
            }
        }
        Some(_) => Err("unreadable Java expectation"),
    }
}

/// Splits the manifest into selected cases and (name, reason) of the others.
fn select(manifest: &Json, outcomes: &Path) -> (Vec<Case>, Vec<(String, String)>) {
    let mut selected = Vec::new();
    let mut excluded = Vec::new();
    for t in manifest["test-cases"].as_array().expect("test-cases") {
        let name = t["name"].as_str().expect("name").to_string();
        let file = t["file"].as_str().expect("file").to_string();
        let module = t["module"].as_str().unwrap_or("(default)").to_string();
        let version = t["version"].as_str().unwrap_or("");
        let reason: Option<String> = if !matches!(version, "4.0" | "4.0.1") {
            Some(format!("version {version}"))
        } else if !file.ends_with(".json") {
            Some("not JSON".into())
        } else if t["use-test"] == Json::Bool(false) {
            Some("use-test false".into())
        } else if let Some(k) = ["supporting", "profiles", "profile", "packages", "logical"]
            .into_iter()
            .find(|k| t.get(k).is_some())
        {
            Some(format!("has {k}"))
        } else if let Some((_, why)) = MODULES_OUTSIDE.iter().find(|(m, _)| *m == module) {
            Some(format!("module {module}: {why}"))
        } else if let Some((_, why)) = OPTIONS_OUTSIDE.iter().find(|(k, _)| t.get(k).is_some()) {
            Some(why.to_string())
        } else if let Some((_, why)) = CASES_OUTSIDE.iter().find(|(n, _)| *n == name) {
            Some(why.to_string())
        } else {
            match expected_errors(t.get("java"), outcomes) {
                Err(why) => Some(why.to_string()),
                Ok((expected_errors, expected_first)) => {
                    selected.push(Case {
                        name: name.clone(),
                        file,
                        module,
                        expected_errors,
                        expected_first,
                    });
                    None
                }
            }
        };
        if let Some(r) = reason {
            excluded.push((name, r));
        }
    }
    (selected, excluded)
}

/// Our verdict on a file: `Err(first message)` when it has an error.
fn ours(validator: &mut Validator, path: &Path) -> Result<(), String> {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tape = match simd_json::to_tape(&mut bytes) {
        Ok(t) => t,
        Err(e) => return Err(format!("invalid JSON: {e}")),
    };
    let issues = validator.validate(tape.as_value());
    match issues.iter().find(|i| i.severity == Severity::Error) {
        Some(i) => Err(i.message()),
        None => Ok(()),
    }
}

#[test]
fn structure_validation_agrees_with_the_hl7_validator_suite() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let root = shared.join("suites/fhir-validator-r4");
    let text = std::fs::read_to_string(root.join("manifest.json")).expect("manifest.json");
    let manifest: Json = serde_json::from_str(&text).expect("manifest is JSON");
    let (cases, excluded) = select(&manifest, &root.join("outcomes"));

    // Every case named in CASES_OUTSIDE must still exist and reach that rule.
    for (name, why) in CASES_OUTSIDE {
        let hit = excluded.iter().any(|(n, r)| n == name && r == why);
        assert!(
            hit,
            "CASES_OUTSIDE names {name}, which is not in the suite or excluded earlier"
        );
    }

    let mut validator = Validator::new();
    let mut per_module: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut agree = 0;
    for c in &cases {
        let got = ours(&mut validator, &root.join(&c.file));
        let ok = (c.expected_errors > 0) == got.is_err();
        let m = per_module.entry(&c.module).or_default();
        m.1 += 1;
        let ours = match &got {
            Ok(()) => "valid".to_string(),
            Err(m) => format!("error: {m}"),
        };
        if ok {
            agree += 1;
            m.0 += 1;
        } else {
            disagreements.push(format!(
                "{} ({}): expected {} error(s), ours {ours}{}",
                c.file,
                c.name,
                c.expected_errors,
                if c.expected_errors > 0 {
                    format!("; Java's first: {}", c.expected_first)
                } else {
                    String::new()
                }
            ));
        }
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &excluded {
        let key = if r.starts_with("version ") {
            "another FHIR version".into()
        } else if CASES_OUTSIDE.iter().any(|(_, why)| why == r) {
            "listed in CASES_OUTSIDE (needs more than structure)".into()
        } else {
            r.clone()
        };
        *reasons.entry(key).or_default() += 1;
    }
    println!(
        "excluded {} of {} cases:",
        excluded.len(),
        excluded.len() + cases.len()
    );
    for (r, n) in &reasons {
        println!("  {n:4}  {r}");
    }
    println!(
        "agreement: {agree} of {} selected cases ({:.1}%)",
        cases.len(),
        100.0 * agree as f64 / cases.len().max(1) as f64
    );
    for (m, (a, n)) in &per_module {
        println!("  {m:12} {a:3} / {n:3}");
    }
    println!("disagreements ({}):", disagreements.len());
    for d in &disagreements {
        println!("  {d}");
    }
    assert_eq!(cases.len(), SELECTED, "the selection changed size");
    assert!(
        agree >= AGREEMENT_FLOOR,
        "agreement fell to {agree} (floor {AGREEMENT_FLOOR}):\n{}",
        disagreements.join("\n")
    );
}
