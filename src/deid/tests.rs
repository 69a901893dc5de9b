use super::*;

fn engine(rules: &str, params: &str) -> Deidentifier {
    let text =
        format!(r#"{{"fhirVersion":"R4","fhirPathRules":[{rules}],"parameters":{{{params}}}}}"#);
    Deidentifier::from_str("test.json", &text, &|_| None)
        .expect("config")
        .with_today((2021, 6, 1))
}

fn run(d: &Deidentifier, input: &str) -> String {
    String::from_utf8(
        d.deidentify(input.as_bytes(), "")
            .expect("deidentifies")
            .json,
    )
    .expect("utf8")
}

const REDACTED: &str = r#"{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED","display":"redacted"}"#;

#[test]
fn untouched_values_keep_their_text_and_member_order() {
    let d = engine(r#"{"path":"Observation.code","method":"redact"}"#, "");
    let got = run(
        &d,
        r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"secret"},"valueQuantity":{"value":1.50,"unit":"mg","system":"http://unitsofmeasure.org"},"component":[{"code":{"text":"a"},"valueInteger":7}],"issued":"2020-01-01T00:00:00.000Z"}"#,
    );
    assert_eq!(
        got,
        format!(
            r#"{{"resourceType":"Observation","id":"o1","meta":{{"security":[{REDACTED}]}},"status":"final","valueQuantity":{{"value":1.50,"unit":"mg","system":"http://unitsofmeasure.org"}},"component":[{{"code":{{"text":"a"}},"valueInteger":7}}],"issued":"2020-01-01T00:00:00.000Z"}}"#
        )
    );
}

#[test]
fn keep_shields_its_subtree_and_the_first_rule_wins() {
    let d = engine(
        r#"{"path":"Patient.name.where(use='official')","method":"keep"},{"path":"nodesByType('HumanName')","method":"redact"}"#,
        "",
    );
    let got = run(
        &d,
        r#"{"resourceType":"Patient","name":[{"use":"official","family":"Kept"},{"use":"usual","family":"Gone","given":["A"]}]}"#,
    );
    assert_eq!(
        got,
        format!(
            r#"{{"resourceType":"Patient","meta":{{"security":[{REDACTED}]}},"name":[{{"use":"official","family":"Kept"}}]}}"#
        )
    );
}

#[test]
fn a_primitive_rule_reaches_its_extensions_and_empty_nodes_are_pruned() {
    let input = r#"{"resourceType":"Patient","id":"example","birthDate":"2000-01-01","_birthDate":{"extension":[{"url":"http://x","valueDateTime":"2000-01-01T01:01:01-01:00"}]},"gender":"male"}"#;
    // dateShift on the date also shifts the dateTime inside its extension (the reference
    // processes a matched node's children with the same method).
    let d = engine(
        r#"{"path":"Patient.birthDate","method":"dateShift"}"#,
        r#""dateShiftKey":"123""#,
    );
    assert_eq!(
        run(&d, input),
        r#"{"resourceType":"Patient","id":"example","meta":{"security":[{"code":"PERTURBED","display":"exact value is replaced with another exact value"}]},"birthDate":"2000-02-11","_birthDate":{"extension":[{"url":"http://x","valueDateTime":"2000-02-11T00:00:00-01:00"}]},"gender":"male"}"#
    );
    // redact empties the value and the extension, and the emptied nodes disappear.
    let d = engine(r#"{"path":"Patient.birthDate","method":"redact"}"#, "");
    assert_eq!(
        run(&d, input),
        format!(
            r#"{{"resourceType":"Patient","id":"example","meta":{{"security":[{REDACTED}]}},"gender":"male"}}"#
        )
    );
}

#[test]
fn existing_labels_are_not_repeated_and_nothing_done_adds_none() {
    let d = engine(r#"{"path":"Patient.gender","method":"redact"}"#, "");
    let input = format!(
        r#"{{"resourceType":"Patient","meta":{{"versionId":"1","security":[{REDACTED}]}},"gender":"male"}}"#
    );
    assert_eq!(
        run(&d, &input),
        format!(
            r#"{{"resourceType":"Patient","meta":{{"versionId":"1","security":[{REDACTED}]}}}}"#
        )
    );
    let untouched = r#"{"resourceType":"Patient","active":true}"#;
    assert_eq!(run(&d, untouched), untouched);
}

#[test]
fn perturb_stays_in_range_with_the_rounding() {
    let d = engine(
        r#"{"path":"Observation.value","method":"perturb","span":10,"roundTo":1}"#,
        "",
    );
    for _ in 0..20 {
        let got = run(
            &d,
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":100,"unit":"kg"}}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&got).expect("json");
        let n = &v["valueQuantity"]["value"];
        let x = n.as_f64().expect("number");
        assert!((95.0..=105.0).contains(&x), "{x} outside 100 ± 5");
        let text = n.to_string();
        assert!(
            text.split('.').nth(1).is_none_or(|d| d.len() <= 1),
            "{text}"
        );
        assert!(got.contains(r#""code":"PERTURBED""#));
    }
}

#[test]
fn encrypt_round_trips_through_the_engine() {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    use base64::Engine as _;
    let d = engine(
        r#"{"path":"Patient.name.family","method":"encrypt"}"#,
        r#""encryptKey":"0123456789abcdef0123456789abcdef""#,
    );
    let got = run(
        &d,
        r#"{"resourceType":"Patient","name":[{"family":"Smith"}]}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&got).expect("json");
    let b64 = v["name"][0]["family"].as_str().expect("string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let mut ct = bytes[16..].to_vec();
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(
        b"0123456789abcdef0123456789abcdef",
        &bytes[..16],
    )
    .expect("key")
    .decrypt_padded_mut::<Pkcs7>(&mut ct)
    .expect("padding");
    assert_eq!(plain, b"Smith");
    assert!(got.contains(r#""code":"ENCRYPT""#));
}

#[test]
fn a_short_encrypt_key_is_refused_at_load() {
    let text = r#"{"fhirPathRules":[{"path":"Patient.id","method":"encrypt"}],"parameters":{"encryptKey":"short"}}"#;
    let err = Deidentifier::from_str("c.json", text, &|_| None).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "de-identification config c.json: fhirPathRules[0] (path \"Patient.id\"): encrypt needs parameters.encryptKey of 16, 24 or 32 bytes (AES-128/192/256); it has 5 bytes"
    );
}

#[test]
fn keys_come_from_the_environment_and_never_print() {
    let text = r#"{"fhirPathRules":[{"path":"Patient.id","method":"cryptoHash"}],"parameters":{"cryptoHashKey":"${MY_HASH_KEY}"}}"#;
    let env = |v: &str| (v == "MY_HASH_KEY").then(|| "123".to_string());
    let d = Deidentifier::from_str("c.json", text, &env).expect("config");
    assert_eq!(d.parameters().crypto_hash_key.expose(), "123");
    let debug = format!("{d:?}");
    assert!(!debug.contains("123"), "{debug}");
    let got = run(&d, r#"{"resourceType":"Patient","id":"example"}"#);
    assert!(got.contains("698d54f0494528a759f19c8e87a9f99e75a5881b9267ee3926bcf62c992d84ba"));
    // Absent from the file: the default variable.
    let text = r#"{"fhirPathRules":[],"parameters":{}}"#;
    let env = |v: &str| (v == "FHIRPIPE_DEID_CRYPTO_HASH_KEY").then(|| "k2".to_string());
    let d = Deidentifier::from_str("c.json", text, &env).expect("config");
    assert_eq!(d.parameters().crypto_hash_key.expose(), "k2");
    let missing = r#"{"parameters":{"dateShiftKey":"${NOPE}"}}"#;
    let err = Deidentifier::from_str("c.json", missing, &|_| None).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "de-identification config c.json: parameters.dateShiftKey names the environment variable NOPE, which is not set; export it or write the key in the file"
    );
}

#[test]
fn config_errors_name_the_field() {
    let err = Deidentifier::from_str(
        "c.json",
        r#"{"fhirPathRules":[{"path":"Patient.id","method":"scramble"}]}"#,
        &|_| None,
    )
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("fhirPathRules[0] (path \"Patient.id\"): unknown method 'scramble'"),
        "{err}"
    );
    let err = Deidentifier::from_str("c.json", r#"{"fhirPathRules":[],"colour":1}"#, &|_| None)
        .expect_err("refused");
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    let err = Deidentifier::from_str("c.json", r#"{"fhirVersion":"Stu3"}"#, &|_| None)
        .expect_err("refused");
    assert!(err.to_string().contains("fhirVersion is 'Stu3'"), "{err}");
}

#[test]
fn invalid_resources_are_errors_with_the_reason() {
    let d = engine(r#"{"path":"Resource","method":"redact"}"#, "");
    let cases = [
        ("{", "invalid input resource: invalid JSON"),
        ("[1]", "invalid input resource: not a JSON object"),
        (r#"{"id":"x"}"#, "invalid input resource: not a FHIR resource (no resourceType)"),
        (r#"{"resourceType":"DeviceComponent"}"#, "invalid input resource: unknown R4 type 'DeviceComponent'"),
        (
            r#"{"resourceType":"Patient","colour":"red"}"#,
            "invalid input resource: Type checking the data: Encountered unknown element 'colour' at Patient",
        ),
    ];
    for (input, want) in cases {
        let err = d.deidentify(input.as_bytes(), "").expect_err(input);
        assert!(err.to_string().starts_with(want), "{input}: {err}");
    }
}

#[test]
fn anonymizer_functions_are_off_in_plain_fhirpath() {
    let e = crate::fhirpath::Expression::parse("nodesByType('HumanName')").expect("parses");
    let mut buf = br#"{"resourceType":"Patient","name":[{"family":"x"}]}"#.to_vec();
    let tape = simd_json::to_tape(&mut buf).expect("json");
    let err = e.evaluate(tape.as_value()).expect_err("not FHIRPath");
    assert!(err.to_string().contains("anonymizer extension"), "{err}");
    let env = crate::fhirpath::Env::new().with_anonymizer_functions();
    let got = e
        .evaluate_with_env(tape.as_value(), &R4TypeInfo::new(), &env)
        .expect("with the option");
    assert_eq!(got.len(), 1);
}

#[test]
fn date_shift_scope_file_uses_the_given_prefix() {
    let d = engine(
        r#"{"path":"Patient.birthDate","method":"dateShift"}"#,
        r#""dateShiftKey":"123","dateShiftScope":"file""#,
    );
    let out = d
        .deidentify(
            br#"{"resourceType":"Patient","id":"x","birthDate":"2000-01-01"}"#,
            "example",
        )
        .expect("ok");
    // Prefix "example" + key "123" → +41 days, whatever the resource id.
    assert!(String::from_utf8_lossy(&out.json).contains(r#""birthDate":"2000-02-11""#));
}

fn with_text(mut d: Deidentifier, toml_text: &str) -> Deidentifier {
    let cfg: crate::phi::PhiConfig = toml::from_str(toml_text).expect("text config");
    d.text = Some(text::TextDeid::new(&cfg, Some(b"text-key")).expect("text settings"));
    d
}

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Quaglio","given":["Zenobia"]}],"address":[{"line":["17 Larkspur Way"],"city":"Tewksbury","postalCode":"01876"}]}"#;
const RELATIVE: &str = r#"{"resourceType":"RelatedPerson","id":"r1","patient":{"reference":"Patient/p1"},"name":[{"family":"Ostrander","given":["Bertil"]}]}"#;

fn known_index() -> text::KnownIndex {
    let mut k = text::KnownIndex::new();
    assert!(k.add_json(PATIENT.as_bytes()));
    assert!(k.add_json(RELATIVE.as_bytes()));
    assert!(!k.add_json(b"{not json"));
    k
}

/// Issue 6 item 4: narrative, annotation and text/plain attachment are redacted after the
/// rules, with the patient's and a relative's names taken from other resources of the input;
/// a PDF attachment is left as it is; the counts say what was examined.
#[test]
fn free_text_is_redacted_with_the_known_phi_of_the_referenced_patient() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let d = with_text(
        engine(
            r#"{"path":"DocumentReference.description","method":"redact"}"#,
            "",
        ),
        "operation = \"redact\"",
    );
    let note = b64.encode("Zenobia came with Bertil from Tewksbury on 03/14/2019.");
    let pdf = b64.encode("Zenobia in a PDF");
    let input = format!(
        r#"{{"resourceType":"DocumentReference","id":"d1","status":"current","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Note for Quaglio</div>"}},"description":"x","subject":{{"reference":"Patient/p1"}},"content":[{{"attachment":{{"contentType":"text/plain; charset=utf-8","data":"{note}"}}}},{{"attachment":{{"contentType":"application/pdf","data":"{pdf}"}}}}]}}"#
    );
    let index = known_index();
    let out = d
        .deidentify_with(input.as_bytes(), "", Some(&index))
        .expect("deidentifies");
    let got = String::from_utf8(out.json).expect("utf8");
    let want_note = b64.encode("[NAME] came with [NAME] from [CITY] on [DATE].");
    assert_eq!(
        got,
        format!(
            r#"{{"resourceType":"DocumentReference","id":"d1","meta":{{"security":[{REDACTED}]}},"status":"current","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Note for [NAME]</div>"}},"subject":{{"reference":"Patient/p1"}},"content":[{{"attachment":{{"contentType":"text/plain; charset=utf-8","data":"{want_note}"}}}},{{"attachment":{{"contentType":"application/pdf","data":"{pdf}"}}}}]}}"#
        )
    );
    let s = &out.text.stats;
    assert_eq!(
        (s.narratives, s.texts, s.attachments, s.attachments_skipped),
        (1, 0, 1, 1)
    );
    assert_eq!(s.spans_of(crate::phi::PhiType::Name), 3);
    assert_eq!(s.spans_of(crate::phi::PhiType::City), 1);
    assert_eq!(s.spans_of(crate::phi::PhiType::Date), 1);
    assert!(out.text.spans.is_empty(), "spans are listed for tag only");
}

/// Without the index, the same name in the same text is not known to be a name.
#[test]
fn free_text_without_the_index_does_not_know_the_names() {
    let d = with_text(engine("", ""), "");
    let input = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"note":[{"text":"Zenobia Quaglio tolerated it."}]}"#;
    let plain = d.deidentify(input.as_bytes(), "").expect("ok");
    assert!(String::from_utf8_lossy(&plain.json).contains("Zenobia Quaglio tolerated it."));
    let index = known_index();
    let with = d
        .deidentify_with(input.as_bytes(), "", Some(&index))
        .expect("ok");
    assert!(
        String::from_utf8_lossy(&with.json).contains(r#""note":[{"text":"[NAME] tolerated it."}]"#),
        "{}",
        String::from_utf8_lossy(&with.json)
    );
    // Only the text changed, and the resource is labelled REDACTED for it.
    assert!(
        String::from_utf8_lossy(&with.json)
            .contains(&format!(r#""meta":{{"security":[{REDACTED}]}}"#)),
        "{}",
        String::from_utf8_lossy(&with.json)
    );
    assert!(with.ops.has(Ops::REDACT));
    assert!(!String::from_utf8_lossy(&plain.json).contains("security"));
    // `known = false` turns the index off.
    let off = with_text(engine("", ""), "known = false");
    let out = off
        .deidentify_with(input.as_bytes(), "", Some(&index))
        .expect("ok");
    assert!(String::from_utf8_lossy(&out.json).contains("Zenobia Quaglio tolerated it."));
}

/// `tag` leaves the text and lists the spans with the element they are in.
#[test]
fn tag_reports_spans_and_changes_nothing() {
    let d = with_text(engine("", ""), "operation = \"tag\"");
    let input = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"note":[{"text":"fine"},{"text":"Call 617-555-0199 or mail zq@example.org."}]}"#;
    let index = known_index();
    let out = d
        .deidentify_with(input.as_bytes(), "", Some(&index))
        .expect("ok");
    assert_eq!(String::from_utf8_lossy(&out.json), input);
    assert_eq!(out.text.spans.len(), 1);
    assert_eq!(out.text.spans[0].element, "Observation.note[1].text");
    let kinds: Vec<_> = out.text.spans[0]
        .spans
        .iter()
        .map(|s| (s.start, s.end, s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (5, 17, crate::phi::PhiType::Phone),
            (26, 40, crate::phi::PhiType::Email)
        ]
    );
}

/// Text that cannot be examined is a processing error (raise: the resource is refused;
/// skip: the empty REDACTED resource), never passed through.
#[test]
fn unreadable_free_text_is_a_processing_error() {
    use base64::Engine as _;
    let input = r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Zenobia <b</div>"}}"#;
    let d = with_text(engine("", ""), "");
    let e = d
        .deidentify(input.as_bytes(), "")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Observation.text.div: narrative XHTML is malformed"),
        "{e}"
    );
    let skip = {
        let text = r#"{"fhirVersion":"R4","processingErrors":"skip","fhirPathRules":[]}"#;
        with_text(
            Deidentifier::from_str("t.json", text, &|_| None).expect("config"),
            "",
        )
    };
    let out = skip.deidentify(input.as_bytes(), "").expect("skipped");
    assert!(out.skipped.is_some());
    assert_eq!(
        String::from_utf8_lossy(&out.json),
        format!(r#"{{"resourceType":"Observation","meta":{{"security":[{REDACTED}]}}}}"#)
    );
    let bad = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x41]);
    let att = format!(
        r#"{{"resourceType":"DocumentReference","status":"current","content":[{{"attachment":{{"contentType":"text/plain","data":"{bad}"}}}}]}}"#
    );
    let e = d
        .deidentify(att.as_bytes(), "")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "DocumentReference.content[0].attachment.data: text/plain attachment data is not UTF-8"
        ),
        "{e}"
    );
}

/// `surrogate` needs a key.
#[test]
fn surrogate_without_a_key_is_refused() {
    let cfg: crate::phi::PhiConfig = toml::from_str("operation = \"surrogate\"").expect("cfg");
    let e = text::TextDeid::new(&cfg, None)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("FHIRPIPE_DEID_TEXT_KEY"), "{e}");
}
