//! Tests of structure validation: each rule with its exact issues and expressions.

use super::*;

/// Validates one JSON text; returns `(code, expression, diagnostics)` per issue.
fn issues(json: &str) -> Vec<(IssueCode, String, String)> {
    let mut bytes = json.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut bytes).expect("test JSON parses");
    let mut v = Validator::new();
    v.validate(tape.as_value())
        .iter()
        .map(|i| (i.code, i.expression.clone(), i.diagnostics.clone()))
        .collect()
}

fn one(json: &str) -> (IssueCode, String, String) {
    let mut all = issues(json);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn is(code: IssueCode, expr: &str, diag: &str) -> (IssueCode, String, String) {
    (code, expr.to_string(), diag.to_string())
}

use IssueCode::*;

#[test]
fn valid_resource_has_no_issues() {
    let r = r#"{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},
      "name":[{"family":"Chalmers","given":["Peter","James"],"_given":[null,{"extension":[{"url":"http://x","valueString":"y"}]}]}],
      "gender":"male","birthDate":"1974-12-25","deceasedBoolean":false,
      "contact":[{"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0131","code":"N"}]}]}],
      "managingOrganization":{"reference":"Organization/1"},
      "contained":[{"resourceType":"Organization","id":"o","name":"X"}],
      "multipleBirthInteger":2}"#;
    assert_eq!(issues(r), vec![]);
}

#[test]
fn unknown_elements() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","nmae":[]}"#),
        is(Structure, "Patient.nmae", "unknown element \"nmae\"")
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","name":[{"given":["a"],"_family2":{"id":"x"}}]}"#),
        is(
            Structure,
            "Patient.name[0]._family2",
            "unknown element \"_family2\""
        )
    );
    // `_name` only exists for primitives.
    assert_eq!(
        one(r#"{"resourceType":"Patient","_name":[{"id":"x"}]}"#),
        is(Structure, "Patient._name", "unknown element \"_name\"")
    );
}

#[test]
fn wrong_json_types() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","active":"true"}"#),
        is(
            Structure,
            "Patient.active",
            "expected a boolean, found a string"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","birthDate":19741225}"#),
        is(
            Structure,
            "Patient.birthDate",
            "expected a string, found a number"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","maritalStatus":"M"}"#),
        is(
            Structure,
            "Patient.maritalStatus",
            "expected an object, found a string"
        )
    );
    assert_eq!(
        one(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"5"}}"#
        ),
        is(
            Structure,
            "Observation.valueQuantity.value",
            "expected a number, found a string"
        )
    );
}

#[test]
fn primitive_formats() {
    let cases = [
        (
            r#""birthDate":"1974-13-01""#,
            "Patient.birthDate",
            "\"1974-13-01\": month out of range",
        ),
        (
            r#""deceasedDateTime":"2020-01-01T10:00:00""#,
            "Patient.deceasedDateTime",
            "\"2020-01-01T10:00:00\": a time needs a time zone (Z or +hh:mm)",
        ),
        (
            r#""meta":{"lastUpdated":"2020-01-01"}"#,
            "Patient.meta.lastUpdated",
            "\"2020-01-01\": expected a date, 'T', a time and a time zone",
        ),
        (
            r#""id":"a_b""#,
            "Patient.id",
            "\"a_b\": an id is 1 to 64 characters from A-Z a-z 0-9 - .",
        ),
        (
            r#""multipleBirthInteger":2147483648"#,
            "Patient.multipleBirthInteger",
            "2147483648: integer out of 32-bit range",
        ),
        (
            r#""multipleBirthInteger":1.5"#,
            "Patient.multipleBirthInteger",
            "expected a whole number, found a decimal",
        ),
        (
            r#""implicitRules":"http://a b""#,
            "Patient.implicitRules",
            "\"http://a b\": a URI has no whitespace",
        ),
        (
            r#""language":"en  US""#,
            "Patient.language",
            "\"en  US\": a code has only single spaces inside",
        ),
        (
            r#""photo":[{"data":"%%%2@()()"}]"#,
            "Patient.photo[0].data",
            "\"%%%2@()()\": not valid base64",
        ),
        (
            r#""photo":[{"size":-1}]"#,
            "Patient.photo[0].size",
            "-1: an unsignedInt must not be negative",
        ),
        (
            r#""communication":[{"language":{"text":"en"},"preferred":true}],"contact":[{"period":{"start":"2020-02-30"}}]"#,
            "Patient.contact[0].period.start",
            "\"2020-02-30\": day out of range",
        ),
    ];
    for (body, expr, diag) in cases {
        let json = format!(r#"{{"resourceType":"Patient",{body}}}"#);
        assert_eq!(one(&json), is(Value, expr, diag), "{json}");
    }
    assert_eq!(
        one(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":"25:00:00"}"#
        ),
        is(
            Value,
            "Observation.valueTime",
            "\"25:00:00\": time out of range"
        )
    );
    assert_eq!(
        one(
            r#"{"resourceType":"Patient","link":[{"other":{"reference":"Patient/1"},"type":"seealso"}],"photo":[{"size":0,"url":"x"}],"communication":[{"language":{"text":"x"}}],"address":[{"line":["a"]}],"telecom":[{"rank":0}]}"#
        ),
        is(
            Value,
            "Patient.telecom[0].rank",
            "0: a positiveInt must be at least 1"
        )
    );
}

#[test]
fn cardinality_and_arrays() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","name":{"family":"x"}}"#),
        is(
            Structure,
            "Patient.name",
            "expected an array (the element repeats), found an object"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","gender":["male"]}"#),
        is(
            Structure,
            "Patient.gender",
            "expected a single value, found an array (the element does not repeat)"
        )
    );
    assert_eq!(
        issues(r#"{"resourceType":"Observation","code":{"text":"x"}}"#),
        vec![is(
            Required,
            "Observation.status",
            "missing required element \"status\" (minimum 1)"
        )]
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","link":[{"type":"seealso"}]}"#),
        is(
            Required,
            "Patient.link[0].other",
            "missing required element \"other\" (minimum 1)"
        )
    );
}

#[test]
fn choice_types() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"}"#),
        is(
            Structure,
            "Patient.deceasedDateTime",
            "more than one variant of deceased[x]: only one is allowed"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","deceasedString":"x"}"#),
        is(
            Structure,
            "Patient.deceasedString",
            "unknown element \"deceasedString\""
        )
    );
    // A required choice: Observation.component.code + value[x] optional; use
    // MedicationRequest.medication[x] (1..1).
    assert_eq!(
        one(
            r#"{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"}}"#
        ),
        is(
            Required,
            "MedicationRequest.medication",
            "missing required element \"medication\" (one variant of medication[x])"
        )
    );
    // A value only through its extension still counts as present.
    assert_eq!(
        issues(
            r#"{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"},"medicationCodeableConcept":{"text":"x"}}"#
        ),
        vec![]
    );
}

#[test]
fn primitive_extensions_align_with_arrays() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]}"#),
        is(
            Structure,
            "Patient.name[0].given",
            "_given has 1 entries but the array has 2"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,null]}]}"#),
        is(
            Structure,
            "Patient.name[0]._given[1]",
            "null value without an extension: an entry needs a value or an extension"
        )
    );
    assert_eq!(
        issues(
            r#"{"resourceType":"Patient","name":[{"given":[null,"b"],"_given":[{"id":"g"},null]}],"_birthDate":{"extension":[{"url":"http://x","valueCode":"unknown"}]}}"#
        ),
        vec![]
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","_birthDate":{"extension":[{"valueCode":"x"}]}}"#),
        is(
            Required,
            "Patient._birthDate.extension[0].url",
            "missing required element \"url\" (minimum 1)"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","_birthDate":{"foo":1}}"#),
        is(
            Structure,
            "Patient._birthDate.foo",
            "unknown element \"foo\""
        )
    );
}

#[test]
fn empty_values() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","gender":""}"#),
        is(
            Value,
            "Patient.gender",
            "empty string: omit the element instead"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","maritalStatus":{}}"#),
        is(
            Value,
            "Patient.maritalStatus",
            "empty object: an element must have a value or children"
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","name":[]}"#),
        is(
            Value,
            "Patient.name",
            "empty array: omit the element instead"
        )
    );
}

#[test]
fn contained_and_nested_resources() {
    assert_eq!(
        one(
            r#"{"resourceType":"Patient","contained":[{"resourceType":"Organization","nmae":"x"}]}"#
        ),
        is(
            Structure,
            "Patient.contained[0].nmae",
            "unknown element \"nmae\""
        )
    );
    assert_eq!(
        one(r#"{"resourceType":"Patient","contained":[{"resourceType":"Patinet"}]}"#),
        is(
            Invalid,
            "Patient.contained[0]",
            "unknown resourceType \"Patinet\""
        )
    );
    assert_eq!(
        one(
            r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","gender":"boy"}}]}"#
        ),
        is(
            CodeInvalid,
            "Bundle.entry[0].resource.gender",
            "code \"boy\" is not in the required value set administrative-gender"
        )
    );
}

#[test]
fn reference_format() {
    for ok in [
        "Patient/1",
        "Patient/1/_history/2",
        "#c1",
        "http://x.org/fhir/Patient/1",
        "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        "Patient?identifier=x|1",
    ] {
        let json = format!(
            r#"{{"resourceType":"Patient","managingOrganization":{{"reference":"{ok}"}}}}"#
        );
        assert_eq!(issues(&json), vec![], "{ok}");
    }
    for bad in ["Patinet/1", "Patient/a_b", "Patient", "Patient/1/2"] {
        let json = format!(
            r#"{{"resourceType":"Patient","managingOrganization":{{"reference":"{bad}"}}}}"#
        );
        assert_eq!(
            one(&json),
            is(
                Invalid,
                "Patient.managingOrganization.reference",
                &format!("reference {bad:?} is not Type/id, #local, or an absolute URL")
            ),
        );
    }
}

#[test]
fn required_binding_codes() {
    assert_eq!(
        one(r#"{"resourceType":"Patient","gender":"M"}"#),
        is(
            CodeInvalid,
            "Patient.gender",
            "code \"M\" is not in the required value set administrative-gender"
        )
    );
    // Preferred bindings (language) are not checked.
    assert_eq!(
        issues(r#"{"resourceType":"Patient","language":"xx-nope"}"#),
        vec![]
    );
}

#[test]
fn outcome_json_shape() {
    let issue = Issue {
        severity: Severity::Error,
        code: CodeInvalid,
        expression: "Patient.gender".into(),
        diagnostics: "bad".into(),
    };
    assert_eq!(issue.message(), "Patient.gender: bad");
    assert_eq!(
        serde_json::to_string(&OperationOutcome::new(&[issue])).unwrap(),
        r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"code-invalid","diagnostics":"bad","expression":["Patient.gender"]}]}"#
    );
}

/// Issue 3: the pipeline's `validate_checked` (after the basic checks, skipping the root's
/// type lookup and id check) reports exactly what `validate` reports.
#[test]
fn validate_checked_equals_validate_after_basic_checks() {
    let cases = [
        r#"{"resourceType":"Patient","id":"p1","gender":"boy","name":[{"given":["a",""]}]}"#,
        r#"{"resourceType":"Observation","id":"o","status":"final","valueString":"x","valueBoolean":true,"_valueString":{"id":""}}"#,
        r#"{"resourceType":"Observation","id":"o","code":{"coding":[{}]},"subject":{"reference":"Patient"}}"#,
        r#"{"resourceType":"Bundle","id":"b","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"x_y"}}]}"#,
        r#"{"resourceType":"Encounter","id":"e","status":"finished","class":{"code":"AMB"},"period":{"start":"2020-01-01T10:00:00"},"_status":{"extension":[{"url":"u"}]}}"#,
        r#"{"resourceType":"Patient","id":"ok","meta":{"lastUpdated":"2020-01-01T00:00:00Z"}}"#,
    ];
    let mut v = Validator::new();
    for json in cases {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).expect("test JSON parses");
        let plain: Vec<Issue> = v.validate(tape.as_value()).to_vec();
        let rt = json
            .split('"')
            .nth(3)
            .expect("resourceType is the first key");
        let idx = crate::fhir::resource_type_index(rt).expect("R4 type");
        let checked: Vec<Issue> = v.validate_checked(tape.as_value(), idx).to_vec();
        assert_eq!(checked, plain, "{json}");
    }
    // The root id is not checked again, so an invalid one (which the basic checks reject
    // before validation) would pass here; a contained resource's id is still checked.
    let mut bytes = br#"{"resourceType":"Patient","id":"a_b"}"#.to_vec();
    let tape = simd_json::to_tape(&mut bytes).expect("parses");
    let idx = crate::fhir::resource_type_index("Patient").expect("Patient");
    assert!(v.validate_checked(tape.as_value(), idx).is_empty());
    assert_eq!(v.validate(tape.as_value()).len(), 1);
}
