//! Each transform on exact input and output text, through the checker as the workers run it.

use super::*;
use crate::batch::Chunk;
use crate::stage::Checker;
use std::path::Path;

fn plan(transform: &str) -> Arc<TransformPlan> {
    let text = format!(
        "[pipeline]\nname = \"t\"\n[source]\nkind = \"local\"\npath = \"in\"\n\
         [sinks.a]\nkind = \"ndjson\"\npath = \"out\"\n[dead_letter]\npath = \"dl\"\n{transform}"
    );
    crate::config::load_str(Path::new("t.toml"), &text, &[], &|_| None)
        .unwrap()
        .transform
        .unwrap()
}

fn run_mode(p: &Arc<TransformPlan>, mode: Mode, lines: &[&str]) -> Batch {
    let mut c = Checker::new(None).with_transform(Some(Transformer::new(p.clone(), mode)));
    c.check(Chunk::for_test(lines.join("\n").into_bytes(), 1))
}

fn run(p: &Arc<TransformPlan>, lines: &[&str]) -> Batch {
    run_mode(p, Mode::Emit(None), lines)
}

fn out(b: &Batch) -> Vec<String> {
    b.records
        .iter()
        .map(|r| String::from_utf8(b.json(r).to_vec()).unwrap())
        .collect()
}

fn filtered(b: &Batch) -> Vec<(&'static str, FilterReason, bool)> {
    b.filtered
        .iter()
        .map(|f| (resource_type_name(f.type_idx), f.reason, f.from_entry))
        .collect()
}

fn rejects(b: &Batch) -> Vec<(u64, Option<u32>, String)> {
    b.rejects
        .iter()
        .map(|r| (r.line, r.entry, r.reason.clone()))
        .collect()
}

const PAT: &str = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"M\u00fcller","given":["Ann"]}],"text":{"status":"generated","div":"<div>x</div>"}}"#;
const OBS: &str = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"w"},"subject":{"reference":"https://fhir.example.org/r4/Patient/p1"},"valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"valueQuantity":{"value":1e2}},{"valueQuantity":{"value":-0.0}}]}"#;

#[test]
fn untouched_resources_keep_their_original_bytes_in_place() {
    let p = plan("[transform]\nremove = [\"Patient.photo\"]\n");
    let b = run(&p, &[PAT, OBS]);
    assert_eq!(out(&b), vec![PAT, OBS]);
    // Not copied: the ranges point into the chunk's own lines.
    assert_eq!(b.records[0].json, 0..PAT.len());
    assert_eq!(b.data.len(), PAT.len() + 1 + OBS.len());
}

#[test]
fn types_keeps_only_listed_types() {
    let p = plan("[transform]\ntypes = [\"Observation\"]\n");
    let b = run(&p, &[PAT, OBS]);
    assert_eq!(out(&b), vec![OBS]);
    assert_eq!(filtered(&b), vec![("Patient", FilterReason::Type, false)]);
    assert_eq!(b.lines, 2);
}

#[test]
fn where_filters_by_fhirpath_and_dead_letters_errors() {
    let p =
        plan("[transform.where]\nObservation = \"status = 'final'\"\nPatient = \"name.given\"\n");
    let prelim = r#"{"resourceType":"Observation","id":"o2","status":"preliminary"}"#;
    let two_given =
        r#"{"resourceType":"Patient","id":"p2","name":[{"given":["A","B"]}],"active":true}"#;
    let no_given = r#"{"resourceType":"Patient","id":"p3"}"#;
    let b = run(&p, &[OBS, prelim, two_given, no_given, PAT]);
    assert_eq!(out(&b), vec![OBS]);
    assert_eq!(
        filtered(&b),
        vec![
            ("Observation", FilterReason::Where, false),
            ("Patient", FilterReason::Where, false)
        ]
    );
    assert_eq!(
        rejects(&b),
        vec![
            (3, None, "the where filter of Patient (`name.given`) failed: the expression gave 2 items; it must give true, false or nothing".into()),
            (5, None, "the where filter of Patient (`name.given`) failed: the expression gave a value that is not a boolean".into()),
        ]
    );
    assert_eq!(b.rejects[0].text, two_given.as_bytes());
    // A boolean element is a verdict too.
    let p = plan("[transform.where]\nPatient = \"active\"\n");
    let b = run(&p, &[two_given, no_given]);
    assert_eq!(out(&b), vec![two_given]);
}

#[test]
fn remove_drops_elements_and_keeps_every_other_byte() {
    let p = plan(
        "[transform]\nremove = [\"text\", \"Observation.component.valueQuantity.unit\", \"Patient.name.given\"]\n",
    );
    let b = run(&p, &[PAT, OBS]);
    assert_eq!(
        out(&b),
        vec![
            r#"{"resourceType":"Patient","id":"p1","name":[{"family":"M\u00fcller"}]}"#,
            // Nothing of the Observation's paths is there: its bytes are untouched.
            OBS,
        ]
    );
    let p = plan("[transform]\nremove = [\"valueQuantity.unit\", \"component\"]\n");
    assert_eq!(
        out(&run(&p, &[OBS])),
        vec![
            r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"w"},"subject":{"reference":"https://fhir.example.org/r4/Patient/p1"},"valueQuantity":{"value":1.50}}"#
        ]
    );
}

#[test]
fn meta_sets_source_and_adds_tags() {
    let p = plan(
        "[transform.meta]\nsource = \"urn:fhirpipe:test\"\ntag = [{ system = \"http://t\", code = \"imported\", display = \"Imported\" }]\n",
    );
    let with_meta = r#"{"resourceType":"Patient","id":"p4","meta":{"versionId":"3","lastUpdated":"2021-01-01T00:00:00Z","source":"old"},"birthDate":"1970-01-01"}"#;
    let b = run(&p, &[with_meta, OBS]);
    assert_eq!(
        out(&b),
        vec![
            r#"{"resourceType":"Patient","id":"p4","meta":{"versionId":"3","lastUpdated":"2021-01-01T00:00:00Z","source":"urn:fhirpipe:test","tag":[{"system":"http://t","code":"imported","display":"Imported"}]},"birthDate":"1970-01-01"}"#,
            r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"w"},"subject":{"reference":"https://fhir.example.org/r4/Patient/p1"},"valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"valueQuantity":{"value":1e2}},{"valueQuantity":{"value":-0.0}}],"meta":{"source":"urn:fhirpipe:test","tag":[{"system":"http://t","code":"imported","display":"Imported"}]}}"#,
        ]
    );
    assert_eq!(b.version_id(&b.records[0]), Some("3"));
}

#[test]
fn strip_base_url_makes_references_relative() {
    let p = plan("[transform]\nstrip_base_url = \"https://fhir.example.org/r4/\"\n");
    let other = r#"{"resourceType":"Observation","id":"o3","subject":{"reference":"https://other.org/r4/Patient/p1"},"hasMember":[{"reference":"https://fhir.example.org/r4/Observation/o1/_history/2"},{"reference":"https://fhir.example.org/r4/metadata/x"}]}"#;
    let b = run(&p, &[OBS, other]);
    assert_eq!(
        out(&b),
        vec![
            r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"w"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"valueQuantity":{"value":1e2}},{"valueQuantity":{"value":-0.0}}]}"#,
            r#"{"resourceType":"Observation","id":"o3","subject":{"reference":"https://other.org/r4/Patient/p1"},"hasMember":[{"reference":"Observation/o1/_history/2"},{"reference":"https://fhir.example.org/r4/metadata/x"}]}"#,
        ]
    );
}

const BUNDLE: &str = r#"{"resourceType":"Bundle","id":"b1","type":"transaction","entry":[{"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":{"resourceType":"Patient","id":"pa","birthDate":"1980-02-03"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:22222222-2222-2222-2222-222222222222","resource":{"resourceType":"Observation","id":"ob","status":"final","code":{"text":"t"},"subject":{"reference":"urn:uuid:11111111-1111-1111-1111-111111111111"},"valueQuantity":{"value":98.60}},"request":{"method":"POST","url":"Observation"}},{"request":{"method":"DELETE","url":"Patient/gone"}},{"resource":{"resourceType":"Patient","id":"bad id"}},{"resource":{"resourceType":"Organization","id":"org"}}]}"#;

#[test]
fn unbundle_turns_entries_into_resources_and_rewrites_urn_references() {
    let p = plan("[transform]\nunbundle = true\ntypes = [\"Patient\", \"Observation\"]\n");
    let b = run(&p, &[PAT, BUNDLE]);
    assert_eq!(
        out(&b),
        vec![
            PAT,
            r#"{"resourceType":"Patient","id":"pa","birthDate":"1980-02-03"}"#,
            r#"{"resourceType":"Observation","id":"ob","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/pa"},"valueQuantity":{"value":98.60}}"#,
        ]
    );
    let lines: Vec<(u64, Option<u32>)> = b.records.iter().map(|r| (r.line, r.entry)).collect();
    assert_eq!(lines, vec![(1, None), (2, Some(0)), (2, Some(1))]);
    assert_eq!(
        b.records.iter().map(|r| b.id(r)).collect::<Vec<_>>(),
        vec!["p1", "pa", "ob"]
    );
    assert_eq!(
        rejects(&b),
        vec![
            (2, Some(2), "Bundle entry 2 has no resource".into()),
            (
                2,
                Some(3),
                "Bundle entry 3: invalid id \"bad id\": an id is 1 to 64 characters from A-Z a-z 0-9 - .".into()
            ),
        ]
    );
    assert_eq!(
        String::from_utf8(b.rejects[0].text.clone()).unwrap(),
        r#"{"request":{"method":"DELETE","url":"Patient/gone"}}"#
    );
    assert_eq!(b.rejects[1].type_idx, resource_type_index("Patient"));
    assert_eq!(
        filtered(&b),
        vec![("Organization", FilterReason::Type, true)]
    );
    assert_eq!((b.bundles_consumed, b.lines), (1, 2));
}

#[test]
fn dedupe_keeps_the_newest_over_two_passes() {
    let p = plan("[transform]\ndedupe = true\nunbundle = true\n");
    let old = r#"{"resourceType":"Patient","id":"d","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},"gender":"male"}"#;
    let new = r#"{"resourceType":"Patient","id":"d","meta":{"lastUpdated":"2021-01-01T01:00:00+02:00"},"gender":"female"}"#;
    let none = r#"{"resourceType":"Patient","id":"d","gender":"other"}"#;
    let tie_a = r#"{"resourceType":"Observation","id":"d","meta":{"lastUpdated":"2020-05-05T00:00:00Z"},"status":"final","code":{"text":"a"}}"#;
    let tie_b = r#"{"resourceType":"Observation","id":"d","meta":{"lastUpdated":"2020-05-05T00:00:00Z"},"status":"final","code":{"text":"b"}}"#;
    let bundle = r#"{"resourceType":"Bundle","id":"b","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"d","meta":{"lastUpdated":"2020-06-01T00:00:00Z"}}}]}"#;
    let input = [old, new, none, tie_a, tie_b, bundle];
    let first = run_mode(&p, Mode::Collect, &input);
    let mut ix = DedupeIndex::new();
    for (i, r) in first.records.iter().enumerate() {
        ix.offer(
            dedupe::key(r.type_idx, first.id(r)),
            r.last_updated,
            dedupe::position(0, i as u32),
        );
    }
    assert_eq!((ix.offered(), ix.len()), (6, 2));
    let b = run_mode(&p, Mode::Emit(Some(Arc::new(ix))), &input);
    assert_eq!(out(&b), vec![new, tie_b]);
    assert_eq!(
        filtered(&b),
        vec![
            ("Patient", FilterReason::Duplicate, false),
            ("Patient", FilterReason::Duplicate, false),
            ("Observation", FilterReason::Duplicate, false),
            ("Patient", FilterReason::Duplicate, true),
        ]
    );
}

#[test]
fn definition_errors_name_the_line_and_field() {
    let load = |t: &str| {
        let text = format!(
            "[pipeline]\nname = \"t\"\n[source]\nkind = \"local\"\npath = \"in\"\n\
             [sinks.a]\nkind = \"ndjson\"\npath = \"out\"\n[dead_letter]\npath = \"dl\"\n{t}"
        );
        crate::config::load_str(Path::new("t.toml"), &text, &[], &|_| None)
            .unwrap_err()
            .to_string()
    };
    // The engine's own wording after "at 9:" is its business; the position and frame are ours.
    let e = load("[transform.where]\nObservation = \"status = \"\n");
    assert!(
        e.starts_with("t.toml:12: field `transform.where.Observation`: the FHIRPath expression `status = ` does not compile: at 9: "),
        "{e}"
    );
    assert!(
        e.ends_with("\n  fix: write a FHIRPath expression evaluated on each resource of this type, e.g. status = 'final'"),
        "{e}"
    );
    assert_eq!(
        load("[transform]\ntypes = [\"Patinet\"]\n"),
        "t.toml:12: field `transform.types`: `Patinet` is not an R4 resource type\n  fix: did you mean `Patient`? Type names are case-sensitive R4 resource types"
    );
    assert_eq!(
        load("[transform]\nremove = [\"meta.lastUpdated\"]\n"),
        "t.toml:12: field `transform.remove`: `meta.lastUpdated` cannot be removed\n  fix: id, resourceType, meta, meta.lastUpdated and meta.versionId are used by the typed columns and dedupe"
    );
    assert!(load("[transform]\nunbundel = true\n").contains("did you mean `unbundle`?"));
    assert_eq!(
        load("[transform]\nremove = [\"Patient.phot\"]\n"),
        "t.toml:12: field `transform.remove`: `Patient.phot`: Patient has no element `phot`\n  fix: did you mean `photo`?"
    );
    assert_eq!(
        load("[transform]\nremove = [\"Observation.component.valueQuantity.unti\"]\n"),
        "t.toml:12: field `transform.remove`: `Observation.component.valueQuantity.unti`: Observation.component.valueQuantity has no element `unti`\n  fix: did you mean `unit`?"
    );
    assert!(
        load("[transform]\nremove = [\"nmae.period\"]\n")
            .starts_with("t.toml:12: field `transform.remove`: `nmae.period` is not an element path of any R4 resource"),
    );
    // Primitive extensions and contained resources are paths too.
    let p = plan("[transform]\nremove = [\"birthDate.extension\", \"Patient.contained.text\"]\n");
    assert_eq!(p.remove.len(), 2);
}
