//! Tests of loading pipeline definitions: errors name file, line, field and fix.

use super::*;
use std::path::Path;

fn env(k: &str) -> Option<String> {
    match k {
        "DATA" => Some("/data/in".into()),
        _ => None,
    }
}

fn load_text(text: &str, sets: &[&str]) -> Result<Plan, ConfigError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    load_str(Path::new("p.toml"), text, &sets, &env)
}

const GOOD: &str = r#"[pipeline]
name = "t"

[source]
kind = "local"
path = "${DATA}"

[sinks.lake]
kind = "parquet"
path = "${OUT:-out}/parquet"

[dead_letter]
path = "out/dl"
"#;

#[test]
fn good_definition_with_interpolation_and_defaults() {
    let plan = load_text(GOOD, &[]).unwrap();
    assert_eq!(plan.name, "t");
    let SourcePlan::Local { paths, types } = &plan.source else {
        panic!("local source expected: {:?}", plan.source)
    };
    assert_eq!(paths, &vec![std::path::PathBuf::from("/data/in")]);
    assert!(types.is_none());
    let SinkKindPlan::Parquet(p) = &plan.sinks[0].kind else {
        panic!("parquet sink expected")
    };
    assert_eq!(p.path.to_string(), "out/parquet");
    assert_eq!(p.compression, Compression::Zstd(1));
    assert_eq!(p.target_file_size, 128_000_000);
    assert_eq!(plan.on_invalid, OnInvalid::DeadLetter);
}

#[test]
fn set_overrides_values_arrays_and_new_keys() {
    let plan = load_text(
        GOOD,
        &[
            "sinks.lake.path=/tmp/x",
            "source.types=[\"Patient\",\"Observation\"]",
            "sinks.lake.compression=zstd(3)",
            "pipeline.threads=3",
        ],
    )
    .unwrap();
    let SinkKindPlan::Parquet(p) = &plan.sinks[0].kind else {
        panic!()
    };
    assert_eq!(p.path.to_string(), "/tmp/x");
    assert_eq!(p.compression, Compression::Zstd(3));
    assert_eq!(plan.threads, 3);
    assert_eq!(plan.source.types().map(|t| t.len()), Some(2));
}

#[test]
fn unknown_field_names_line_field_and_suggestion() {
    let text = GOOD.replace("path = \"${DATA}\"", "pth = \"${DATA}\"");
    let e = load_text(&text, &[]).unwrap_err();
    assert_eq!(e.line, Some(6));
    assert_eq!(e.field.as_deref(), Some("source.pth"));
    assert_eq!(e.message, "unknown field `pth`");
    assert_eq!(e.fix, "did you mean `path`? Rename `pth` to `path`");
    assert_eq!(
        e.to_string(),
        "p.toml:6: field `source.pth`: unknown field `pth`\n  fix: did you mean `path`? Rename `pth` to `path`"
    );
}

#[test]
fn unknown_top_level_section_is_rejected() {
    let text = format!("{GOOD}\n[sinkz.x]\nkind = \"ndjson\"\n");
    let e = load_text(&text, &[]).unwrap_err();
    assert_eq!(e.message, "unknown field `sinkz`");
    assert!(e.fix.contains("did you mean `sinks`?"), "{}", e.fix);
}

#[test]
fn unknown_sink_kind_lists_the_kinds() {
    let text = GOOD.replace("kind = \"parquet\"", "kind = \"parquett\"");
    let e = load_text(&text, &[]).unwrap_err();
    assert_eq!(e.line, Some(9));
    assert_eq!(e.field.as_deref(), Some("sinks.lake.kind"));
    assert_eq!(
        e.fix,
        "did you mean `parquet`? Accepted values: parquet, ndjson, fhir_import"
    );
}

#[test]
fn missing_variable_names_it_and_its_line() {
    let text = GOOD.replace("${DATA}", "${MISSING_VAR}");
    let e = load_text(&text, &[]).unwrap_err();
    assert_eq!(e.line, Some(6));
    assert_eq!(e.field.as_deref(), Some("source.path"));
    assert_eq!(e.message, "environment variable `MISSING_VAR` is not set");
}

#[test]
fn wrong_type_points_at_the_value() {
    let text = GOOD.replace("name = \"t\"", "name = \"t\"\nthreads = \"two\"");
    let e = load_text(&text, &[]).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field.as_deref(), Some("pipeline.threads"));
    assert!(
        e.message.starts_with("invalid type: string \"two\""),
        "{}",
        e.message
    );
}

#[test]
fn syntax_error_has_a_line() {
    let e = load_text("[pipeline]\nname = t\n", &[]).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.starts_with("TOML syntax error"), "{}", e.message);
}

#[test]
fn semantic_checks() {
    let e = load_text(&GOOD.replace("[dead_letter]\npath = \"out/dl\"\n", ""), &[]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("dead_letter"));
    assert!(e.fix.contains("on_invalid = \"fail\""));
    // Without a dead letter, on_invalid = "fail" is fine.
    let text = GOOD.replace(
        "[dead_letter]\npath = \"out/dl\"\n",
        "[validate]\non_invalid = \"fail\"\n",
    );
    assert_eq!(load_text(&text, &[]).unwrap().on_invalid, OnInvalid::Fail);

    let e = load_text(GOOD, &["source.types=[\"Observaton\"]"]).unwrap_err();
    assert_eq!(e.message, "`Observaton` is not an R4 resource type");
    assert!(e.fix.starts_with("did you mean `Observation`?"));
    assert!(e.fix.ends_with("(this value came from --set)"), "{}", e.fix);

    let e = load_text(GOOD, &["sinks.lake.target_file_size=12 parsecs"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sinks.lake.target_file_size"));

    let e = load_text(GOOD, &["dead_letter.path=out/parquet"]).unwrap_err();
    assert_eq!(
        e.message,
        "`sinks.lake.path` and `dead_letter.path` both write to out/parquet"
    );

    let e = load_text(
        &GOOD.replace(
            "[sinks.lake]\nkind = \"parquet\"\npath = \"${OUT:-out}/parquet\"\n",
            "",
        ),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sinks"));

    let e = load_text(GOOD, &["sinks.lake.compression=lz5"]).unwrap_err();
    assert_eq!(e.message, "unknown compression `lz5`");

    let e = load_text(GOOD, &["nonsense"]).unwrap_err();
    assert_eq!(e.message, "--set `nonsense` has no `=`");

    // Arrow string columns address 2 GiB, so one line may be at most 1 GiB.
    let e = load_text(GOOD, &["pipeline.max_line_size=2GiB"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("pipeline.max_line_size"));
    assert_eq!(e.message, "2.1 GB is too large");
    assert!(e.fix.starts_with("use at most \"1GiB\""), "{}", e.fix);
    let e = load_text(GOOD, &["pipeline.chunk_size=1KiB"]).unwrap_err();
    assert_eq!(e.message, "1.0 KB is too small");
    assert!(e.fix.starts_with("use at least \"64KiB\""), "{}", e.fix);
}

const EXPORT: &str = r#"[pipeline]
name = "t"

[source]
kind = "fhir_export"
url = "https://ws-fhir.fhir.azurehealthcareapis.com/"
auth = { method = "managed_identity" }

[sinks.lake]
kind = "parquet"
path = "out/parquet"

[dead_letter]
path = "out/dl"
"#;

#[test]
fn issue5_fhir_export_source_is_checked_into_a_plan() {
    let plan = load_text(
        EXPORT,
        &[
            "source.level=group",
            "source.group=g1",
            "source.types=[\"Patient\",\"Observation\"]",
            // Quoted: unquoted, --set (like TOML) reads it as a datetime, not a string.
            "source.since=\"2026-11-01T00:00:00Z\"",
        ],
    )
    .unwrap();
    let SourcePlan::FhirExport(e) = &plan.source else {
        panic!("fhir_export expected")
    };
    assert_eq!(
        e.endpoint.url,
        "https://ws-fhir.fhir.azurehealthcareapis.com"
    );
    assert_eq!(e.operation_path, "Group/g1/$export");
    assert_eq!(
        e.query,
        vec![
            ("_type".to_string(), "Patient,Observation".to_string()),
            ("_since".to_string(), "2026-11-01T00:00:00Z".to_string()),
        ]
    );
}

#[test]
fn issue5_fhir_export_refusals_name_field_and_fix() {
    let cases: [(&[&str], &str, &str, &str); 5] = [
        (
            &["source.level=group"],
            "source.group",
            "level = \"group\" needs the Group id",
            "add group = \"<Group id>\"",
        ),
        (
            &["source.group=g1"],
            "source.group",
            "`group` is set but the level is not \"group\"",
            "set level = \"group\", or remove `group` (this value came from --set)",
        ),
        (
            &["source.url=http://ws-fhir.fhir.azurehealthcareapis.com"],
            "source.url",
            "`http://ws-fhir.fhir.azurehealthcareapis.com` is not an https URL",
            "write the FHIR service URL as https://…; plain http is only accepted for 127.0.0.1/localhost (this value came from --set)",
        ),
        (
            &["source.since=yesterday"],
            "source.since",
            "`yesterday` is not a FHIR instant",
            "write a full instant with time zone, e.g. 2026-11-01T00:00:00Z (this value came from --set)",
        ),
        (
            &["source.type_filter=[\"Observation?status=final\"]"],
            "source.type_filter",
            "`type_filter` without `types`",
            "list the types too: the service refuses _typeFilter without _type (this value came from --set)",
        ),
    ];
    for (sets, field, message, fix) in cases {
        let e = load_text(EXPORT, sets).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert_eq!(e.message, message);
        assert_eq!(e.fix, fix);
    }
    let e = load_text(&EXPORT.replace("managed_identity", "password"), &[]).unwrap_err();
    assert_eq!(e.message, "unknown value `password`");
    assert_eq!(
        e.fix,
        "use one of: bearer_token, client_secret, managed_identity, azure_cli"
    );
}

#[test]
fn issue5_fhir_export_state_and_poll_settings_are_checked() {
    let plan = load_text(
        EXPORT,
        &[
            "source.state=az://lake/state/export.json",
            "source.poll_interval=500ms",
            "source.max_poll_wait=2m",
        ],
    )
    .unwrap();
    let SourcePlan::FhirExport(e) = &plan.source else {
        panic!("fhir_export expected")
    };
    assert_eq!(
        e.state.as_ref().map(|l| l.to_string()).as_deref(),
        Some("az://lake/state/export.json")
    );
    assert_eq!(e.poll_interval, std::time::Duration::from_millis(500));
    assert_eq!(e.max_poll_wait, std::time::Duration::from_secs(120));
    assert_eq!(e.timeout, std::time::Duration::from_secs(12 * 3600));
    let e = load_text(EXPORT, &["source.timeout=3d"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("source.timeout"));
    assert_eq!(e.message, "`d` in `3d` is not a time unit");
    assert_eq!(
        e.fix,
        "write a duration such as \"500ms\", \"10s\", \"5m\" or \"12h\" (this value came from --set)"
    );
    let e = load_text(EXPORT, &["source.state=az://Bad_Container/s.json"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("source.state"));
    assert_eq!(e.message, "`Bad_Container` is not a valid container name");
}

#[test]
fn issue5_export_manifest_source_is_checked_into_a_plan() {
    let text = EXPORT
        .replace("kind = \"fhir_export\"", "kind = \"export_manifest\"")
        .replace(
            "url = \"https://ws-fhir.fhir.azurehealthcareapis.com/\"",
            "manifest = \"https://ws-fhir.fhir.azurehealthcareapis.com/_operations/export/1\"",
        );
    let plan = load_text(&text, &[]).unwrap();
    let SourcePlan::ExportManifest(m) = &plan.source else {
        panic!("export_manifest expected")
    };
    assert_eq!(
        m.manifest,
        "https://ws-fhir.fhir.azurehealthcareapis.com/_operations/export/1"
    );
    assert_eq!(
        m.auth.as_ref().map(|a| a.method()),
        Some("managed_identity")
    );
    assert!(plan.to_string().contains("  source: export_manifest https://ws-fhir.fhir.azurehealthcareapis.com/_operations/export/1 (auth: managed_identity)\n"), "{plan}");
    let e = load_text(&text, &["source.manifest=http://example.com/m.json"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("source.manifest"));
    assert_eq!(e.message, "`http://example.com/m.json` is not an https URL");
    let e = load_text(&text, &["source.manifest=s3://bucket/m.json"]).unwrap_err();
    assert_eq!(e.message, "unsupported URL scheme `s3://`");
}

#[test]
fn blob_urls_for_sources_and_sinks_issue_5() {
    let text = r#"[pipeline]
name = "t"

[source]
kind = "azure_blob"
url = "abfss://export@acct01.dfs.core.windows.net/run-1/"
range_size = "64KiB"
concurrency = 8

[storage]
account = "acct01"

[sinks.lake]
kind = "parquet"
path = "az://lake/fhir"

[dead_letter]
path = "https://acct01.blob.core.windows.net/lake/dead"
"#;
    let plan = load_text(text, &[]).unwrap();
    let SourcePlan::AzureBlob {
        urls,
        concurrency,
        range_size,
        ..
    } = &plan.source
    else {
        panic!("blob source expected: {:?}", plan.source)
    };
    assert_eq!(urls[0].account.as_deref(), Some("acct01"));
    assert_eq!(urls[0].container, "export");
    assert_eq!(urls[0].prefix, "run-1");
    assert_eq!((*concurrency, *range_size), (8, 64 << 10));
    assert_eq!(plan.storage.account.as_deref(), Some("acct01"));
    let SinkKindPlan::Parquet(p) = &plan.sinks[0].kind else {
        panic!()
    };
    assert_eq!(p.path.to_string(), "az://lake/fhir");

    // A local source given a URL reads blobs.
    let plan = load_text(GOOD, &["source.path=az://export/run-1"]).unwrap();
    assert!(matches!(plan.source, SourcePlan::AzureBlob { .. }));

    let e = load_text(GOOD, &["sinks.lake.path=s3://bucket/x"]).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sinks.lake.path"));
    assert_eq!(e.message, "unsupported URL scheme `s3://`");
    let e = load_text(
        &text.replace(
            "az://lake/fhir",
            "https://acct01.blob.core.windows.net/lake/fhir?sv=1&sig=SECRET",
        ),
        &[],
    )
    .unwrap_err();
    assert!(!e.to_string().contains("SECRET"), "{e}");
    let e = load_text(&text.replace("account = ", "acount = "), &[]).unwrap_err();
    assert!(e.to_string().contains("acount"), "{e}");
}

#[test]
fn parquet_schema_resource_and_max_depth_issue_4() {
    let layout = |sets: &[&str]| match &load_text(GOOD, sets).unwrap().sinks[0].kind {
        SinkKindPlan::Parquet(p) => p.layout,
        other => panic!("parquet sink expected: {other:?}"),
    };
    assert_eq!(layout(&[]), ParquetLayout::Raw);
    assert_eq!(layout(&["sinks.lake.schema=raw"]), ParquetLayout::Raw);
    assert_eq!(
        layout(&["sinks.lake.schema=resource"]),
        ParquetLayout::Resource { max_depth: 3 }
    );
    assert_eq!(
        layout(&["sinks.lake.schema=resource", "sinks.lake.max_depth=5"]),
        ParquetLayout::Resource { max_depth: 5 }
    );

    let e = load_text(GOOD, &["sinks.lake.schema=nested"]).unwrap_err();
    assert_eq!(e.message, "unknown Parquet schema `nested`");
    assert_eq!(e.field.as_deref(), Some("sinks.lake.schema"));
    assert!(e.fix.contains("\"resource\""), "{}", e.fix);

    let e = load_text(GOOD, &["sinks.lake.max_depth=2"]).unwrap_err();
    assert_eq!(e.message, "max_depth applies to schema = \"resource\" only");
    assert_eq!(e.field.as_deref(), Some("sinks.lake.max_depth"));

    let e = load_text(
        GOOD,
        &["sinks.lake.schema=resource", "sinks.lake.max_depth=0"],
    )
    .unwrap_err();
    assert_eq!(e.message, "max_depth must be between 1 and 10, got 0");
}
