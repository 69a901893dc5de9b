//! The XML → JSON converter (`fhirpipe::fhir::xml`) on the 247 XML files of the validator
//! suite (`../shared/suites/fhir-validator-r4`): every file that is well-formed UTF-8 R4 XML
//! converts, and the rest fail with an error naming the path and the reason. Fails under
//! CI=true when ../shared is missing; skips with a reason elsewhere.

mod support;

/// Issue 3: the converter on real-world XML, valid and invalid.
#[test]
fn validator_suite_xml_converts_or_names_the_problem() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let dir = shared.join("suites/fhir-validator-r4");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("validator suite")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let (mut converted, mut errors) = (0, Vec::new());
    for p in &files {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Ok(text) = String::from_utf8(std::fs::read(p).expect("read")) else {
            errors.push(format!("{name}: not UTF-8"));
            continue;
        };
        match fhirpipe::fhir::xml::resource_to_json(&text) {
            Ok(json) => {
                serde_json::from_str::<serde_json::Value>(&json)
                    .unwrap_or_else(|e| panic!("{name}: the output is not JSON: {e}"));
                converted += 1;
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    println!("{converted} of {} convert", files.len());
    for e in &errors {
        println!("  {e}");
    }
    assert_eq!(files.len(), 247);
    assert_eq!(
        errors,
        [
            "Observation-ex-pain.xml: Observation.status.something: unknown attribute something",
            "bundle-dual-subject.xml: Composition.subject: appears 2 times but repeats at most once",
            "capabilitystatement-measure-processor.xml: CapabilityStatement.identifier: unknown element identifier",
            "ccda-xsi-type.xml: ClinicalDocument: ClinicalDocument is not an R4 resource type",
            "japanese-utf8-ok.xml: not UTF-8",
            "pat-security-bad-string2.xml: Patient.name.text.script: unknown element script",
            "xml-bad-entities.xml: Encounter.text.div: the XHTML has an undefined entity or a bare & at \"&reg;)</a>#9\"",
            "xml-fail.xml: Endpoint.connectionType.coding: unknown element coding",
        ]
    );
    assert_eq!(converted, 239);
}
