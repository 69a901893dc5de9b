//! Unit tests of the view engine: definitions, evaluation, cells.

use super::*;

fn view(v: serde_json::Value) -> Result<View, ViewError> {
    View::from_json(&v)
}

fn run(v: &View, resource: &str) -> Result<Vec<Vec<Cell>>, ViewError> {
    let mut text = resource.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut text).unwrap();
    let mut out = Vec::new();
    v.rows(tape.as_value(), &mut out)?;
    Ok(out)
}

/// The decimal boundary tests of the SQL on FHIR suite (issue 4): `1.0` is written with one
/// decimal place, so its boundaries are 0.95 and 1.05; from the tape alone (the f64 1) they
/// would be 0.5 and 1.5.
#[test]
fn issue4_decimal_boundaries_use_the_written_precision() {
    let v = view(serde_json::json!({
        "resource": "Observation",
        "select": [{"column": [
            {"name": "lo", "path": "value.ofType(Quantity).value.lowBoundary()", "type": "decimal"},
            {"name": "hi", "path": "value.ofType(Quantity).value.highBoundary()", "type": "decimal"}
        ]}]
    }))
    .unwrap();
    let text = r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.0},"component":[{"valueInteger":3}]}"#;
    let mut buf = text.as_bytes().to_vec();
    let tape = simd_json::to_tape(&mut buf).unwrap();
    let mut with = Vec::new();
    v.rows_with_text(tape.as_value(), text.as_bytes(), &mut with)
        .unwrap();
    let show = |rows: &[Vec<Cell>]| -> Vec<String> {
        rows[0]
            .iter()
            .map(|c| output::cell_json(c).to_string())
            .collect()
    };
    assert_eq!(show(&with), ["0.95", "1.05"]);
    let without = run(&v, text).unwrap();
    assert_eq!(show(&without), ["0.5", "1.5"]);
}

#[test]
fn columns_and_for_each() {
    let v = view(serde_json::json!({
        "resource": "Patient",
        "select": [
            {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}]},
            {"forEachOrNull": "name", "column": [
                {"name": "i", "path": "%rowIndex", "type": "integer"},
                {"name": "family", "path": "family", "type": "string"},
                {"name": "given", "path": "given", "type": "string", "collection": true}
            ]}
        ]
    }))
    .unwrap();
    let names: Vec<&str> = v.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "i", "family", "given"]);
    let rows = run(
        &v,
        r#"{"resourceType":"Patient","id":"p1","name":[{"family":"A","given":["x","y"]},{"given":["z"]}]}"#,
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![
                Cell::Str("p1".into()),
                Cell::Int(0),
                Cell::Str("A".into()),
                Cell::List(vec![Cell::Str("x".into()), Cell::Str("y".into())])
            ],
            vec![
                Cell::Str("p1".into()),
                Cell::Int(1),
                Cell::Null,
                Cell::List(vec![Cell::Str("z".into())])
            ],
        ]
    );
    let rows = run(&v, r#"{"resourceType":"Patient","id":"p2"}"#).unwrap();
    // forEachOrNull without items: its columns on an empty focus (%rowIndex is 0).
    assert_eq!(
        rows,
        vec![vec![
            Cell::Str("p2".into()),
            Cell::Int(0),
            Cell::Null,
            Cell::List(vec![])
        ]]
    );
    assert!(run(&v, r#"{"resourceType":"Observation","id":"o"}"#)
        .unwrap()
        .is_empty());
}

#[test]
fn definition_errors_name_the_field() {
    let e = |v: serde_json::Value| view(v).unwrap_err().to_string();
    assert_eq!(
        e(serde_json::json!({"select": []})),
        "invalid ViewDefinition at (root): a ViewDefinition needs resource (the FHIR resource type it reads)"
    );
    assert_eq!(
        e(serde_json::json!({"resource": "Patient", "select": [{"forEach": 1}]})),
        "invalid ViewDefinition at select[0].forEach: expected a string, found a number"
    );
    assert_eq!(
        e(serde_json::json!({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}, {"name": "id", "path": "id"}]}]})),
        "invalid ViewDefinition at select[0].column[1].name: column name \"id\" is already used at select[0].column[0]"
    );
    assert_eq!(
        e(serde_json::json!({"resource": "Patient", "select": [{"column": [{"name": "x", "path": "%nope"}]}]})),
        "invalid ViewDefinition at select[0].column[0].path: %nope at 0 in \"%nope\" is not a constant of the view"
    );
    assert_eq!(
        e(serde_json::json!({"resource": "Patient", "select": [{"colum": []}]})),
        "invalid ViewDefinition at select[0].colum: unknown field of a select (known: column, select, forEach, forEachOrNull, repeat, unionAll, description, extension)"
    );
    assert_eq!(
        e(serde_json::json!({"resource": "Patient", "select": [{"column": [{"name": "1x", "path": "id"}]}]})),
        "invalid ViewDefinition at select[0].column[0].name: column name \"1x\" must start with a letter and contain only letters, digits and _"
    );
}

#[test]
fn evaluation_errors_name_the_column_and_resource() {
    let v = view(serde_json::json!({"resource": "Patient", "select": [{"column": [{"name": "f", "path": "name.family"}]}]})).unwrap();
    let e = run(
        &v,
        r#"{"resourceType":"Patient","id":"p1","name":[{"family":"A"},{"family":"B"}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "select[0].column[0] (f) on Patient/p1: the path \"name.family\" gives 2 values; a column takes one unless it has \"collection\": true"
    );
    let v = view(serde_json::json!({"resource": "Patient", "select": [{"column": [{"name": "b", "path": "gender", "type": "boolean"}]}]})).unwrap();
    let e = run(
        &v,
        r#"{"resourceType":"Patient","id":"p1","gender":"male"}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "select[0].column[0] (b) on Patient/p1: the path gives a FHIR.code, not a boolean"
    );
}

#[test]
fn view_functions_are_not_plain_fhirpath() {
    assert!(crate::fhirpath::Expression::parse("getResourceKey()").is_err());
    assert!(crate::fhirpath::Expression::parse_view("getReferenceKey(Patient)").is_ok());
}

#[test]
fn text_columns_keep_dates_as_written() {
    let v = view(
        serde_json::json!({"resource": "Observation", "select": [{"column": [
            {"name": "t", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            {"name": "low", "path": "effective.ofType(dateTime).lowBoundary()", "type": "dateTime"}
        ]}]}),
    )
    .unwrap();
    let rows = run(
        &v,
        r#"{"resourceType":"Observation","id":"o","effectiveDateTime":"2011-10-14T23:37:54+00:00"}"#,
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Cell::Str("2011-10-14T23:37:54+00:00".into()),
            Cell::Str("2011-10-14T23:37:54.000Z".into())
        ]]
    );
}

#[test]
fn reference_keys_of_absolute_history_contained_and_urn_references() {
    let v = view(serde_json::json!({"resource": "Observation", "select": [{"forEach": "performer", "column": [
        {"name": "any", "path": "getReferenceKey()", "type": "id"},
        {"name": "pat", "path": "getReferenceKey(Patient)", "type": "id"}
    ]}]}))
    .unwrap();
    let rows = run(
        &v,
        r##"{"resourceType":"Observation","id":"o","performer":[
            {"reference":"https://x.org/fhir/Patient/p1/_history/2"},
            {"reference":"Practitioner/d1"},
            {"reference":"#c1"},
            {"reference":"urn:uuid:0b7d6f2c-1111-2222-3333-444455556666"},
            {"display":"no reference"}]}"##,
    )
    .unwrap();
    let s = |x: &str| Cell::Str(x.into());
    assert_eq!(
        rows,
        vec![
            vec![s("p1"), s("p1")],
            vec![s("d1"), Cell::Null],
            vec![Cell::Null, Cell::Null],
            vec![Cell::Null, Cell::Null],
            vec![Cell::Null, Cell::Null],
        ]
    );
}
