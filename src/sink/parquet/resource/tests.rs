//! Tests of the resource layout: the mapping of each FHIR JSON shape to columns, and the way back.

use super::schema::ResourceSchema;
use super::*;
use arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray};
use arrow::datatypes::{DataType, TimeUnit};

fn schema(t: &str) -> Arc<ResourceSchema> {
    Arc::new(ResourceSchema::new(t, DEFAULT_MAX_DEPTH).unwrap())
}

/// Encodes `lines`, decodes them again; returns the batch and the rebuilt lines.
fn round_trip(t: &str, lines: &[&str]) -> (RecordBatch, Vec<String>) {
    let s = schema(t);
    let mut enc = ResourceEncoder::new(s.clone());
    for l in lines {
        enc.append_json(l.as_bytes());
    }
    let batch = enc.finish().unwrap();
    let mut out = Vec::new();
    write_ndjson(&s, &batch, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let back: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(back.len(), lines.len());
    for (a, b) in lines.iter().zip(&back) {
        assert_eq!(
            compare::json_diff(a.as_bytes(), b.as_bytes()),
            None,
            "{a}\n{b}"
        );
    }
    (batch, back)
}

fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn child<'a>(s: &'a StructArray, name: &str) -> &'a ArrayRef {
    s.column_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[test]
fn decimals_keep_their_text_beside_a_float() {
    let (b, back) = round_trip(
        "Observation",
        &[
            r#"{"resourceType":"Observation","id":"a","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}}"#,
            r#"{"resourceType":"Observation","id":"b","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e2}}"#,
            r#"{"resourceType":"Observation","id":"c","status":"final","code":{"text":"x"},"valueQuantity":{"value":-0.0}}"#,
        ],
    );
    let q = col(&b, "valueQuantity").as_struct();
    let v = child(q, "value").as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!((v.value(0), v.value(1), v.value(2)), (1.5, 100.0, 0.0));
    assert!(v.value(2).is_sign_negative());
    let t = child(q, "value_text").as_string::<i32>();
    assert_eq!(
        (t.value(0), t.value(1), t.value(2)),
        ("1.50", "1e2", "-0.0")
    );
    assert!(back[0].contains(r#""value":1.50"#), "{}", back[0]);
    assert!(back[1].contains(r#""value":1e2"#), "{}", back[1]);
    assert!(back[2].contains(r#""value":-0.0"#), "{}", back[2]);
}

#[test]
fn partial_dates_keep_their_precision_and_get_a_normalized_value() {
    let (b, back) = round_trip(
        "Patient",
        &[
            r#"{"resourceType":"Patient","id":"a","birthDate":"2020"}"#,
            r#"{"resourceType":"Patient","id":"b","birthDate":"2020-03","deceasedDateTime":"2021-05"}"#,
            r#"{"resourceType":"Patient","id":"c","birthDate":"2020-03-05"}"#,
        ],
    );
    let d = col(&b, "birthDate").as_primitive::<arrow::datatypes::Date32Type>();
    assert_eq!((d.value(0), d.value(1), d.value(2)), (18262, 18322, 18326));
    let t = col(&b, "birthDate_text").as_string::<i32>();
    assert_eq!(
        (t.value(0), t.value(1), t.value(2)),
        ("2020", "2020-03", "2020-03-05")
    );
    let dt =
        col(&b, "deceasedDateTime").as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert!(dt.is_null(0));
    assert_eq!(dt.value(1), 18748 * 86_400_000_000);
    assert_eq!(
        back[0],
        r#"{"resourceType":"Patient","birthDate":"2020","id":"a"}"#
    );
}

#[test]
fn instants_with_offsets_become_utc_micros_and_keep_their_text() {
    let (b, _) = round_trip(
        "Observation",
        &[
            r#"{"resourceType":"Observation","id":"a","status":"final","code":{"text":"x"},"issued":"2015-02-07T15:28:17.239+02:00","meta":{"lastUpdated":"2015-02-07T13:28:17.239000Z"}}"#,
        ],
    );
    let i = col(&b, "issued").as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(i.value(0), 1_423_315_697_239_000);
    assert_eq!(
        col(&b, "issued_text").as_string::<i32>().value(0),
        "2015-02-07T15:28:17.239+02:00"
    );
    let meta = col(&b, "meta").as_struct();
    let lu =
        child(meta, "lastUpdated").as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(lu.value(0), 1_423_315_697_239_000);
    assert_eq!(
        child(meta, "lastUpdated_text").as_string::<i32>().value(0),
        "2015-02-07T13:28:17.239000Z"
    );
}

#[test]
fn primitive_extensions_on_array_items_with_nulls_round_trip() {
    let line = r#"{"resourceType":"Patient","id":"a","name":[{"given":["Ann",null,"Cy"],"_given":[null,{"extension":[{"url":"http://e/x","valueString":"B"}]},null]}],"birthDate":"1970","_birthDate":{"id":"bd","extension":[{"url":"http://e/t","valueDateTime":"1970-01-01T10:00:00Z"}]}}"#;
    let (b, _) = round_trip("Patient", &[line]);
    let names = col(&b, "name").as_list::<i32>();
    let name = names.value(0);
    let given = child(name.as_struct(), "given").as_list::<i32>().value(0);
    let given = given.as_string::<i32>();
    assert_eq!(
        (
            given.len(),
            given.value(0),
            given.is_null(1),
            given.value(2)
        ),
        (3, "Ann", true, "Cy")
    );
    // The resource's own primitive extensions have a column; deeper ones go to `_extra`.
    assert_eq!(
        col(&b, "_birthDate").as_string::<i32>().value(0),
        r#"{"id":"bd","extension":[{"url":"http://e/t","valueDateTime":"1970-01-01T10:00:00Z"}]}"#
    );
    assert_eq!(
        col(&b, "_extra").as_string::<i32>().value(0),
        r#"{"/name/0/_given":[null,{"extension":[{"url":"http://e/x","valueString":"B"}]},null]}"#
    );
}

#[test]
fn choice_types_get_one_column_per_variant() {
    let (b, _) = round_trip(
        "Observation",
        &[
            r#"{"resourceType":"Observation","id":"a","status":"final","code":{"text":"x"},"valueString":"high"}"#,
            r#"{"resourceType":"Observation","id":"b","status":"final","code":{"text":"x"},"valueBoolean":false,"effectivePeriod":{"start":"2020"}}"#,
        ],
    );
    let s = col(&b, "valueString").as_string::<i32>();
    assert_eq!((s.value(0), s.is_null(1)), ("high", true));
    let v = col(&b, "valueBoolean").as_boolean();
    assert_eq!((v.is_null(0), v.value(1)), (true, false));
    assert!(col(&b, "valueQuantity").is_null(0) && col(&b, "valueQuantity").is_null(1));
    let p = col(&b, "effectivePeriod").as_struct();
    assert_eq!(child(p, "start_text").as_string::<i32>().value(1), "2020");
}

#[test]
fn contained_resources_are_kept_as_json_text_each() {
    let line = r##"{"resourceType":"MedicationRequest","id":"a","status":"active","intent":"order","subject":{"reference":"Patient/p"},"contained":[{"resourceType":"Medication","id":"m","amount":{"numerator":{"value":2.50}}},{"resourceType":"Patient","id":"q"}],"medicationReference":{"reference":"#m"}}"##;
    let (b, _) = round_trip("MedicationRequest", &[line]);
    let c: &ListArray = col(&b, "contained").as_list();
    let items = c.value(0);
    let items = items.as_string::<i32>();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items.value(0),
        r#"{"resourceType":"Medication","id":"m","amount":{"numerator":{"value":2.50}}}"#
    );
    assert_eq!(items.value(1), r#"{"resourceType":"Patient","id":"q"}"#);
}

#[test]
fn recursion_beyond_max_depth_is_json_text() {
    fn item_type(s: &ResourceSchema, depth: usize) -> DataType {
        let mut dt = s.arrow.field_with_name("item").unwrap().data_type().clone();
        for _ in 1..depth {
            let DataType::List(f) = dt else {
                panic!("list")
            };
            let DataType::Struct(fields) = f.data_type() else {
                panic!("struct")
            };
            dt = fields.find("item").unwrap().1.data_type().clone();
        }
        dt
    }
    let s = ResourceSchema::new("Questionnaire", 3).unwrap();
    let utf8_list = DataType::List(Arc::new(arrow::datatypes::Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    for d in 1..=3 {
        assert!(
            matches!(item_type(&s, d), DataType::List(f) if matches!(f.data_type(), DataType::Struct(_))),
            "depth {d}"
        );
    }
    assert_eq!(item_type(&s, 4), utf8_list);
    let s1 = ResourceSchema::new("Questionnaire", 1).unwrap();
    assert_eq!(item_type(&s1, 2), utf8_list);
    assert_ne!(s.fingerprint, s1.fingerprint);

    let deep = r#"{"resourceType":"Questionnaire","id":"q","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"group","item":[{"linkId":"1.1.1","type":"group","item":[{"linkId":"1.1.1.1","type":"decimal","initial":[{"valueDecimal":0.10}]}]}]}]}]}"#;
    let (b, _) = round_trip("Questionnaire", &[deep]);
    let l1 = col(&b, "item").as_list::<i32>().value(0);
    let l2 = child(l1.as_struct(), "item").as_list::<i32>().value(0);
    let l3 = child(l2.as_struct(), "item").as_list::<i32>().value(0);
    let l4 = child(l3.as_struct(), "item").as_list::<i32>().value(0);
    assert_eq!(
        l4.as_string::<i32>().value(0),
        r#"{"linkId":"1.1.1.1","type":"decimal","initial":[{"valueDecimal":0.10}]}"#
    );
    assert!(col(&b, "_extra").is_null(0));
}

#[test]
fn members_that_do_not_fit_go_to_extra_with_their_pointer() {
    let line = r#"{"resourceType":"Patient","id":"a","active":"yes","multipleBirthInteger":1e2,"unknownThing":{"x":[1.0]},"name":[{"family":"F","nickname":"N"}],"contact":[{"gender":7}]}"#;
    let (b, back) = round_trip("Patient", &[line]);
    assert!(col(&b, "active").is_null(0));
    assert_eq!(
        col(&b, "_extra").as_string::<i32>().value(0),
        r#"{"/active":"yes","/multipleBirthInteger":1e2,"/unknownThing":{"x":[1.0]},"/name/0/nickname":"N","/contact/0/gender":7}"#
    );
    assert!(back[0].contains(r#""unknownThing":{"x":[1.0]}"#));
}

#[test]
fn extensions_of_the_resource_are_typed_one_level_deep() {
    let line = r#"{"resourceType":"Patient","id":"a","extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]},{"url":"http://e/age","valueDecimal":3.10}]}"#;
    let (b, _) = round_trip("Patient", &[line]);
    let ext = col(&b, "extension").as_list::<i32>().value(0);
    let ext = ext.as_struct();
    assert_eq!(
        child(ext, "url").as_string::<i32>().value(1),
        "http://e/age"
    );
    assert_eq!(
        child(ext, "valueDecimal_text").as_string::<i32>().value(1),
        "3.10"
    );
    let inner = child(ext, "extension").as_list::<i32>().value(0);
    let inner = inner.as_struct();
    let coding = child(inner, "valueCoding").as_struct();
    assert_eq!(child(coding, "code").as_string::<i32>().value(0), "2106-3");
    assert_eq!(
        child(inner, "valueString").as_string::<i32>().value(1),
        "White"
    );
    // Two levels down, extensions are JSON text.
    let DataType::List(f) = child(inner, "extension").data_type() else {
        panic!()
    };
    assert_eq!(f.data_type(), &DataType::Utf8);
}

#[test]
fn every_resource_schema_avoids_unsigned_and_nanosecond_types() {
    fn check(dt: &DataType, path: &str) {
        match dt {
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                panic!("{path}: unsigned {dt}")
            }
            DataType::Timestamp(u, tz) => {
                assert_eq!(
                    (u, tz.as_deref()),
                    (&TimeUnit::Microsecond, Some("UTC")),
                    "{path}"
                )
            }
            DataType::List(f) => check(f.data_type(), path),
            DataType::Struct(fs) => {
                for f in fs {
                    check(f.data_type(), &format!("{path}.{}", f.name()));
                }
            }
            DataType::Utf8
            | DataType::Boolean
            | DataType::Int32
            | DataType::Float64
            | DataType::Date32 => {}
            other => panic!("{path}: unexpected {other}"),
        }
    }
    for t in crate::fhir::RESOURCE_TYPES {
        let s = ResourceSchema::new(t, DEFAULT_MAX_DEPTH).unwrap();
        for f in s.arrow.fields() {
            check(f.data_type(), &format!("{t}.{}", f.name()));
        }
        // Built from the model alone: the same schema every time.
        assert_eq!(
            s.fingerprint,
            ResourceSchema::new(t, DEFAULT_MAX_DEPTH)
                .unwrap()
                .fingerprint
        );
    }
    assert!(matches!(
        ResourceSchema::new("HumanName", 3),
        Err(SchemaError::UnknownType(_))
    ));
    assert!(matches!(
        ResourceSchema::new("Patient", 0),
        Err(SchemaError::Depth(0))
    ));
}

/// Width of the schema (leaf columns), the cost driver of writing: regression guard for the
/// rules that turn rare deep parts into JSON text.
#[test]
fn schema_width_stays_bounded() {
    let widths: Vec<(&str, usize)> = [
        "Patient",
        "Observation",
        "Questionnaire",
        "ExplanationOfBenefit",
    ]
    .iter()
    .map(|t| (*t, schema(t).root.leaves()))
    .collect();
    assert_eq!(
        widths,
        [
            ("Patient", 412),
            ("Observation", 769),
            ("Questionnaire", 725),
            ("ExplanationOfBenefit", 1594)
        ]
    );
    let widest = crate::fhir::RESOURCE_TYPES
        .iter()
        .map(|t| schema(t).root.leaves())
        .max()
        .unwrap();
    assert!(
        widest < 3000,
        "widest resource schema has {widest} leaf columns"
    );
}
