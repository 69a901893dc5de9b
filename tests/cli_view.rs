//! `fhirpipe view run`: exact outputs in the four formats, skipped types and invalid lines
//! counted, clear errors (bad view, unknown extension, a view failing on a resource), and the
//! analyst views of `pipelines/views/` on ../shared/data/synthea-150 against independent
//! counts of the input.

mod support;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use std::path::{Path, PathBuf};

const VIEW: &str = r#"{
  "resourceType": "ViewDefinition", "name": "names", "resource": "Patient",
  "select": [
    {"column": [
      {"name": "id", "path": "getResourceKey()", "type": "id"},
      {"name": "active", "path": "active", "type": "boolean"},
      {"name": "births", "path": "multipleBirth.ofType(integer)", "type": "integer"}
    ]},
    {"forEachOrNull": "name", "column": [
      {"name": "family", "path": "family", "type": "string"},
      {"name": "given", "path": "given", "type": "string", "collection": true}
    ]}
  ]
}"#;

const INPUT: &str = concat!(
    r#"{"resourceType":"Patient","id":"p1","active":true,"multipleBirth":2,"name":[{"family":"O'Brien, \"Jr\"","given":["A","B"]},{"family":"Two"}]}"#,
    "\n",
    r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}"#,
    "\n\n",
    r#"{"resourceType":"Patient","id":"p2"}"#,
    "\n",
    "not json\n",
);

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let view = dir.join("view.json");
    std::fs::write(&view, VIEW).unwrap();
    let input = dir.join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("Patient.ndjson"), INPUT).unwrap();
    (view, input)
}

fn view_run(view: &Path, input: &Path, out: &Path) -> (i32, String) {
    view_run_with(view, input, out, &[])
}

fn view_run_with(view: &Path, input: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "view",
        "run",
        "--view",
        view.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = support::run(&args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn writes_csv_ndjson_json_with_exact_content() {
    let dir = tempfile::tempdir().unwrap();
    let (view, input) = setup(dir.path());

    let csv = dir.path().join("out.csv");
    let (code, err) = view_run(&view, &input, &csv);
    assert_eq!(code, 1, "one invalid line: {err}");
    let file = input.join("Patient.ndjson").display().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!(
                "names: 3 rows from 2 Patient resources to {}",
                csv.display()
            )
            .as_str(),
            "skipped 1 resources of other types: Observation 1",
            "1 lines are not FHIR resources:",
        ]
    );
    assert!(
        lines[3].starts_with(&format!("  {file}:5: not valid JSON: ")),
        "{err}"
    );
    assert_eq!(lines.len(), 4, "{err}");
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "id,active,births,family,given\r\n\
         p1,true,2,\"O'Brien, \"\"Jr\"\"\",\"[\"\"A\"\",\"\"B\"\"]\"\r\n\
         p1,true,2,Two,[]\r\n\
         p2,,,,[]\r\n"
    );

    let nd = dir.path().join("out.ndjson");
    let report = dir.path().join("report.json");
    assert_eq!(
        view_run_with(&view, &input, &nd, &["--report", report.to_str().unwrap()]).0,
        1
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (
            &r["lines"],
            &r["resources"],
            &r["rows"],
            &r["skipped"],
            &r["invalid"]
        ),
        (
            &serde_json::json!(4),
            &serde_json::json!(2),
            &serde_json::json!(3),
            &serde_json::json!({"Observation": 1}),
            &serde_json::json!(1)
        )
    );
    assert_eq!(r["invalid_lines"][0]["line"], 5);
    assert_eq!(
        std::fs::read_to_string(&nd).unwrap(),
        concat!(
            r#"{"id":"p1","active":true,"births":2,"family":"O'Brien, \"Jr\"","given":["A","B"]}"#,
            "\n",
            r#"{"id":"p1","active":true,"births":2,"family":"Two","given":[]}"#,
            "\n",
            r#"{"id":"p2","active":null,"births":null,"family":null,"given":[]}"#,
            "\n"
        )
    );

    let js = dir.path().join("out.json");
    assert_eq!(view_run(&view, &input, &js).0, 1);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&js).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    // forEachOrNull without names: its columns on the empty collection (a collection is []).
    assert_eq!(
        v[2],
        serde_json::json!({"id": "p2", "active": null, "births": null, "family": null, "given": []})
    );
    assert!(!dir.path().join("out.json.partial").exists());
}

#[test]
fn writes_parquet_with_a_flat_typed_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (view, input) = setup(dir.path());
    let pq = dir.path().join("out.parquet");
    assert_eq!(view_run(&view, &input, &pq).0, 1);
    let file = std::fs::File::open(&pq).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let schema = b.schema();
    let types: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(types[0], ("id", &DataType::Utf8));
    assert_eq!(types[1], ("active", &DataType::Boolean));
    assert_eq!(types[2], ("births", &DataType::Int64));
    assert!(matches!(types[4].1, DataType::List(f) if f.data_type() == &DataType::Utf8));
    assert_eq!(b.num_rows(), 3);
    let ids = b.column(0).as_string::<i32>();
    assert_eq!((ids.value(0), ids.value(2)), ("p1", "p2"));
    let births = b.column(2).as_primitive::<Int64Type>();
    assert_eq!((births.value(0), births.is_null(2)), (2, true));
    let given = b.column(4).as_list::<i32>();
    assert_eq!(given.value(0).as_string::<i32>().value(1), "B");
    assert_eq!(given.value(1).len(), 0);
    assert_eq!((given.is_null(2), given.value(2).len()), (false, 0));
    assert!(b.column(3).is_null(2));
}

#[test]
fn clear_errors_for_bad_views_outputs_and_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let (view, input) = setup(dir.path());
    let (code, err) = view_run(&view, &input, &dir.path().join("out.xlsx"));
    assert_eq!(code, 2);
    assert!(err.contains("cannot tell the format of"), "{err}");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"resource": "Patient", "select": [{"forEach": 1}]}"#,
    )
    .unwrap();
    let (code, err) = view_run(&bad, &input, &dir.path().join("o.csv"));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "fhirpipe: invalid ViewDefinition at select[0].forEach: expected a string, found a number\n"
    );

    // name.family has two values for p1: the run stops, names file and line, writes nothing.
    let multi = dir.path().join("multi.json");
    std::fs::write(
        &multi,
        r#"{"resource": "Patient", "select": [{"column": [{"name": "f", "path": "name.family"}]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("m.csv");
    let (code, err) = view_run(&multi, &input, &out);
    assert_eq!(code, 2);
    let file = input.join("Patient.ndjson").display().to_string();
    assert_eq!(
        err,
        format!("fhirpipe: {file}:1: select[0].column[0] (f) on Patient/p1: the path \"name.family\" gives 2 values; a column takes one unless it has \"collection\": true\n")
    );
    assert!(!out.exists() && !dir.path().join("m.csv.partial").exists());
}

/// Lines of `file` that contain `needle`.
fn count_lines(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn read_ndjson(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn analyst_views_on_synthea() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let data = shared.join("data/synthea-150");
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/views");
    let dir = tempfile::tempdir().unwrap();
    // (view, resource type): one row per resource of the type.
    let cases = [
        ("patient", "Patient"),
        ("encounter", "Encounter"),
        ("observation", "Observation"),
        ("condition", "Condition"),
        ("procedure", "Procedure"),
        ("medication_request", "MedicationRequest"),
        ("immunization", "Immunization"),
        ("diagnostic_report", "DiagnosticReport"),
    ];
    for (name, ty) in cases {
        let out = dir.path().join(format!("{name}.ndjson"));
        let (code, err) = view_run(&views.join(format!("{name}.json")), &data, &out);
        assert_eq!(code, 0, "{name}: {err}");
        let src = data.join(format!("{ty}.ndjson"));
        let expected = count_lines(&src, &format!("\"resourceType\":\"{ty}\""));
        let rows = read_ndjson(&out);
        assert_eq!(rows.len(), expected, "{name} rows");
        // The first row is the first resource of the file, its id and patient as written.
        let first = &read_ndjson(&src)[0];
        assert_eq!(rows[0]["id"], first["id"], "{name} id");
        if ty != "Patient" {
            let subject = first.get("subject").or(first.get("patient")).unwrap();
            let reference = subject["reference"].as_str().unwrap();
            assert_eq!(
                rows[0]["patient_id"].as_str().unwrap(),
                reference.strip_prefix("Patient/").unwrap(),
                "{name} patient_id"
            );
        }
        eprintln!("{name}: {} rows", rows.len());
    }

    // Observation values: as many non-null quantities as resources with a top-level
    // valueQuantity (read with serde_json; components' quantities do not count), and the
    // first one's value, unit and time as written.
    let obs = read_ndjson(&dir.path().join("observation.ndjson"));
    let src = data.join("Observation.ndjson");
    let with_quantity = obs
        .iter()
        .filter(|r| !r["value_quantity"].is_null())
        .count();
    let input = read_ndjson(&src);
    let expected = input
        .iter()
        .filter(|r| {
            r.get("valueQuantity")
                .is_some_and(|q| q.get("value").is_some())
        })
        .count();
    assert_eq!(with_quantity, expected);
    assert!(with_quantity > 15_000, "{with_quantity}");
    let first = &input[0];
    assert_eq!(obs[0]["value_quantity"], first["valueQuantity"]["value"]);
    assert_eq!(obs[0]["value_unit"], first["valueQuantity"]["unit"]);
    assert_eq!(obs[0]["code"], first["code"]["coding"][0]["code"]);
    assert_eq!(obs[0]["effective_datetime"], first["effectiveDateTime"]);

    // Patients: genders as counted in the input.
    let pats = read_ndjson(&dir.path().join("patient.ndjson"));
    let psrc = data.join("Patient.ndjson");
    for g in ["male", "female"] {
        let n = pats.iter().filter(|r| r["gender"] == g).count();
        assert_eq!(n, count_lines(&psrc, &format!("\"gender\":\"{g}\"")), "{g}");
    }

    // Parquet of the observation view: a Float64 value column with the same sum as NDJSON.
    let pq = dir.path().join("observation.parquet");
    let (code, err) = view_run(&views.join("observation.json"), &data, &pq);
    assert_eq!(code, 0, "{err}");
    let file = std::fs::File::open(&pq).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let (mut rows, mut sum) = (0usize, 0f64);
    for b in reader {
        let b = b.unwrap();
        rows += b.num_rows();
        let i = b.schema().index_of("value_quantity").unwrap();
        let v = b.column(i).as_primitive::<Float64Type>();
        sum += v.iter().flatten().sum::<f64>();
    }
    let nd_sum: f64 = obs
        .iter()
        .filter_map(|r| r["value_quantity"].as_f64())
        .sum();
    assert_eq!(rows, obs.len());
    assert!(
        (sum - nd_sum).abs() < 1e-6 * nd_sum.abs(),
        "{sum} vs {nd_sum}"
    );
}

fn read_parquet(files: &[PathBuf]) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

/// Issue 4 item 3: `schema = "views"` writes one dataset per view of `pipelines/views/` with
/// exactly the rows `fhirpipe view run` gives for the same view and input (same schema, same
/// values, same order), and the manifest counts them.
#[test]
fn issue4_views_sink_writes_the_rows_of_view_run_per_view() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = repo.join("sample-data/ndjson");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = dir.path().join("views.toml");
    std::fs::write(
        &p,
        format!(
            "[pipeline]\nname = \"v\"\nchunk_size = \"256KiB\"\n\n[source]\nkind = \"local\"\npath = {:?}\n\n[sinks.lake]\nkind = \"parquet\"\npath = {:?}\nschema = \"views\"\nviews = [{:?}]\ntarget_file_size = \"1MiB\"\n\n[dead_letter]\npath = {:?}\n",
            input.display().to_string(),
            out.join("lake").display().to_string(),
            repo.join("pipelines/views").display().to_string(),
            out.join("dl").display().to_string(),
        ),
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let o = support::run(&[
        "run",
        p.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lake/_manifest.json")).unwrap())
            .unwrap();
    let mut views: Vec<PathBuf> = std::fs::read_dir(repo.join("pipelines/views"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    views.sort();
    assert_eq!(views.len(), 8);
    for v in &views {
        let name = v.file_stem().unwrap().to_string_lossy().into_owned();
        let want_file = dir.path().join(format!("{name}.parquet"));
        let (code, err) = view_run(v, &input, &want_file);
        assert_eq!(code, 0, "{err}");
        let want = read_parquet(&[want_file]);
        let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("lake").join(&name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let got = read_parquet(&files);
        let concat = |b: &[arrow::array::RecordBatch]| {
            arrow::compute::concat_batches(&b[0].schema(), b).unwrap()
        };
        let (want, got) = (concat(&want), concat(&got));
        assert!(want.num_rows() > 0, "{name}: no rows");
        assert_eq!(got.schema(), want.schema(), "{name}");
        assert_eq!(got, want, "{name}: rows differ from view run");
        assert_eq!(
            manifest["datasets"][&name]["rows"].as_u64(),
            Some(want.num_rows() as u64),
            "{name}"
        );
    }
    // The sink counts every record it examined as written (conservation holds).
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["conservation_ok"], true);
    assert_eq!(r["sinks"]["lake"]["records"], r["totals"]["written"]);
}

/// `schema = "views"` needs views, views need that schema, and partitioning is refused.
#[test]
fn views_sink_configuration_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (view, input) = setup(dir.path());
    for (extra, want) in [
        (
            "schema = \"views\"\n",
            "field `sinks.lake.views`: schema = \"views\" needs `views`",
        ),
        (
            &*format!("views = [{:?}]\n", view.display().to_string()),
            "field `sinks.lake.views`: views apply to schema = \"views\" only",
        ),
        (
            &*format!(
                "schema = \"views\"\npartition_by = \"date\"\nviews = [{:?}]\n",
                view.display().to_string()
            ),
            "field `sinks.lake.partition_by`: partition_by is not available with schema = \"views\"",
        ),
    ] {
        let p = dir.path().join("p.toml");
        std::fs::write(
            &p,
            format!(
                "[pipeline]\nname = \"v\"\n\n[source]\nkind = \"local\"\npath = {:?}\n\n[sinks.lake]\nkind = \"parquet\"\npath = {:?}\n{extra}\n[dead_letter]\npath = {:?}\n",
                input.display().to_string(),
                dir.path().join("o").display().to_string(),
                dir.path().join("dl").display().to_string(),
            ),
        )
        .unwrap();
        let o = support::run(&["check", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
}
