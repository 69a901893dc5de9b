//! Issue 5 (`fhir_export` and `export_manifest` sources): `fhirpipe run` against the
//! in-process FHIR bulk test server (tests/support/fhir_server.rs) writing its export into
//! Azurite; the state file as the next run's `_since`; manifest count checks and `error[]`
//! summaries; poll waits recorded through the client's `Sleeper` (no real sleeps).

mod support;

use fhirpipe::auth::{AuthConfig, Secret, TokenProvider};
use fhirpipe::config::SourcePlan;
use fhirpipe::fhirclient::{FhirClient, Progress};
use fhirpipe::http::{HttpClient, HttpConfig, RetryPolicy};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::azurite::Azurite;
use support::fhir_server::{runtime, FhirTestServer, ServerOptions, EXPORTER};
use support::Recorder;

/// Server options exporting into `container` of `az`, with `polls` 202 answers (each with
/// `Retry-After: retry_after`) before the manifest.
fn exporting(az: &Arc<Azurite>, container: &str, polls: u32, retry_after: u64) -> ServerOptions {
    ServerOptions {
        storage: Some(az.clone()),
        export_container: Some(container.to_string()),
        polls_before_done: polls,
        retry_after_secs: retry_after,
        ..ServerOptions::default()
    }
}

fn resource(ty: &str, id: &str, updated: &str) -> String {
    json!({"resourceType": ty, "id": id, "meta": {"versionId": "1", "lastUpdated": updated}})
        .to_string()
}

fn seed(server: &FhirTestServer, ty: &str, n: usize, updated: &str) {
    let lines: Vec<String> = (1..=n)
        .map(|i| resource(ty, &format!("{}{i}", ty.to_lowercase()), updated))
        .collect();
    server.seed(ty, &lines);
}

const SINKS: &str = r#"
[sinks.lake]
kind = "parquet"
path = "OUT/parquet"

[sinks.clean]
kind = "ndjson"
path = "OUT/ndjson"

[dead_letter]
path = "OUT/dead-letter"
"#;

/// A pipeline with `source` (the lines after `[source]`), Parquet + NDJSON + dead letter under
/// `dir/out`, and `[storage]` from the environment.
fn pipeline(dir: &Path, source: &str) -> PathBuf {
    let out = dir.join("out");
    let text = format!(
        "[pipeline]\nname = \"export-test\"\nchunk_size = \"64KiB\"\n\n[source]\n{source}\n{}\n[storage]\nconnection_string = \"${{AZURE_STORAGE_CONNECTION_STRING:-}}\"\n",
        SINKS.replace("OUT", &out.display().to_string())
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A pipeline whose source is `export_manifest` reading `manifest` (plus `extra` lines).
fn manifest_pipeline(dir: &Path, manifest: &str, extra: &str) -> PathBuf {
    pipeline(
        dir,
        &format!("kind = \"export_manifest\"\nmanifest = \"{manifest}\"\n{extra}"),
    )
}

fn export_source(server: &FhirTestServer, extra: &str) -> String {
    format!(
        "kind = \"fhir_export\"\nurl = \"{}\"\nauth = {{ method = \"bearer_token\", token = \"${{FHIR_TOKEN}}\" }}\npoll_interval = \"0s\"\n{extra}",
        server.base()
    )
}

fn run(p: &Path, env: &[(&str, &str)], extra: &[&str]) -> (i32, Value, String) {
    support::run_pipeline_env(p, env, extra)
}

fn read_counts(report: &Value) -> BTreeMap<String, u64> {
    report["types"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["read"].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn export_queries(server: &FhirTestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/$export")
        .map(|r| r.query.clone())
        .collect()
}

fn state_time(path: &Path) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["transactionTime"].as_str().unwrap().to_string()
}

#[test]
fn issue5_fhir_export_runs_incrementally_with_the_state_file_as_since() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("export");
    let rt = runtime();
    let server = rt.block_on(FhirTestServer::start(exporting(&az, &container, 2, 0)));
    seed(&server, "Patient", 3, "2020-01-01T00:00:00Z");
    seed(&server, "Observation", 5, "2020-01-02T00:00:00Z");
    seed(&server, "Condition", 2, "2020-01-03T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/export.json");
    let p = pipeline(
        dir.path(),
        &export_source(
            &server,
            &format!(
                "types = [\"Patient\", \"Observation\"]\nstate = \"{}\"",
                state.display()
            ),
        ),
    );
    let token = server.token(&[EXPORTER]);
    let cs = az.connection_string();
    let env = [
        ("FHIR_TOKEN", token.as_str()),
        ("AZURE_STORAGE_CONNECTION_STRING", cs.as_str()),
    ];

    // First run: everything of the two types; no _since.
    let (code, report, stderr) = run(&p, &env, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.path().join("out");
    assert_eq!(
        support::parquet_rows(&out.join("parquet")),
        BTreeMap::from([("Observation".to_string(), 5), ("Patient".to_string(), 3)])
    );
    assert_eq!(support::lines_of(&out.join("ndjson"), ".ndjson").len(), 8);
    assert_eq!(export_queries(&server), vec!["_type=Patient,Observation"]);
    let t1 = report["export"]["transaction_time"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state_time(&state), t1);
    assert_eq!(report["export"]["state"]["written"], true);
    assert_eq!(report["export"]["count_mismatches"], json!([]));
    assert_eq!(report["export"]["files"].as_array().unwrap().len(), 2);
    assert!(report["export"].get("since").is_none());

    // Second run: the state's transactionTime is _since, so only the newer Patient comes.
    server.seed(
        "Patient",
        &[resource("Patient", "new1", "2099-01-01T00:00:00Z")],
    );
    let (code, report, stderr) = run(&p, &env, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        export_queries(&server)[1],
        format!("_type=Patient,Observation&_since={t1}")
    );
    assert_eq!(report["export"]["since"], t1.as_str());
    assert_eq!(report["export"]["since_from"], "state");
    assert_eq!(
        read_counts(&report),
        BTreeMap::from([("Patient".to_string(), 1)])
    );
    let t2 = state_time(&state);
    assert_eq!(report["export"]["transaction_time"], t2.as_str());
    assert!(t2 >= t1, "{t2} < {t1}");

    // Nothing changed since (Conditions are from 2020): an empty manifest, an empty run, and
    // the watermark still moves on.
    let (code, report, stderr) = run(
        &p,
        &env,
        &["--quiet", "--set", "source.types=[\"Condition\"]"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["export"]["files"], json!([]));
    assert_eq!(report["totals"]["read"], 0);
    assert_eq!(
        export_queries(&server)[2],
        format!("_type=Condition&_since={t2}")
    );
    let t2 = state_time(&state);
    assert_eq!(report["export"]["transaction_time"], t2.as_str());

    // A run that fails (an invalid line with on_invalid = "fail") leaves the watermark.
    server.seed(
        "Patient",
        &[resource("Patient", "bad id!", "2099-01-02T00:00:00Z")],
    );
    let (code, _, stderr) = run(&p, &env, &["--quiet", "--set", "validate.on_invalid=fail"]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(state_time(&state), t2);
    assert_eq!(
        export_queries(&server)[3],
        format!("_type=Patient,Observation&_since={t2}")
    );

    // An explicit since wins over the state file.
    let (code, report, stderr) = run(
        &p,
        &env,
        &[
            "--quiet",
            "--set",
            "source.since=\"2098-12-31T00:00:00Z\"",
            "--set",
            "validate.on_invalid=dead_letter",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["export"]["since_from"], "definition");
    assert_eq!(
        export_queries(&server)[4],
        "_type=Patient,Observation&_since=2098-12-31T00:00:00Z"
    );
    assert_eq!(report["types"]["Patient"]["read"], 2);
    assert_eq!(report["types"]["Patient"]["dead_lettered"], 1);
}

fn load_export_plan(
    dir: &Path,
    server: &FhirTestServer,
    extra: &str,
) -> fhirpipe::config::FhirExportPlan {
    let p = pipeline(dir, &export_source(server, extra));
    let plan =
        fhirpipe::config::load(&p, &[], &|k| (k == "FHIR_TOKEN").then(|| "t".to_string())).unwrap();
    match plan.source {
        SourcePlan::FhirExport(e) => e,
        other => panic!("{other:?}"),
    }
}

fn client(
    server: &FhirTestServer,
    rec: &Arc<Recorder>,
    plan: &fhirpipe::config::FhirExportPlan,
) -> FhirClient {
    let cfg = HttpConfig {
        retry: RetryPolicy {
            max_retries: 3,
            ..RetryPolicy::default()
        },
        ..HttpConfig::default()
    };
    let http = HttpClient::new(&cfg)
        .unwrap()
        .with_sleeper(rec.clone())
        .with_jitter(Arc::new(|| 0.0));
    let tokens = Arc::new(TokenProvider::new(
        AuthConfig::BearerToken {
            token: Secret::new(server.token(&[EXPORTER])),
        },
        server.base(),
        None,
        http.clone(),
    ));
    FhirClient::new(server.base(), http, Some(tokens))
        .with_poll_interval(plan.poll_interval)
        .with_max_poll_wait(plan.max_poll_wait)
}

#[test]
fn issue5_slow_polls_and_429_on_status_are_waited_out_with_a_cap_and_a_timeout() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("export");
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let server = FhirTestServer::start(exporting(&az, &container, 2, 120)).await;
        seed(&server, "Patient", 2, "2020-01-01T00:00:00Z");
        server.inject("/_operations/export", 429, Some("2"), 1);
        let plan = load_export_plan(dir.path(), &server, "max_poll_wait = \"30s\"");
        let rec = Arc::new(Recorder::default());
        let fhir = client(&server, &rec, &plan);
        let mut seen: Vec<Progress> = Vec::new();
        let (status, manifest) = fhirpipe::source::fhir_export::export(
            &fhir,
            &plan,
            &plan.query,
            &mut |p: &Progress| seen.push(p.clone()),
        )
        .await
        .unwrap();
        assert!(status.starts_with(&format!("{}/_operations/export/", server.base())));
        // 429 → its Retry-After (2 s); then two 202s asking for 120 s, cut to 30 s.
        assert_eq!(
            rec.waits(),
            vec![
                Duration::from_secs(2),
                Duration::from_secs(30),
                Duration::from_secs(30)
            ]
        );
        let progress: Vec<(Option<&str>, u32)> = seen
            .iter()
            .map(|p| (p.x_progress.as_deref(), p.polls))
            .collect();
        assert_eq!(
            progress,
            vec![(Some("In progress"), 1), (Some("In progress"), 2)]
        );
        assert_eq!(manifest.output.len(), 1);
        assert_eq!(manifest.output[0].count, Some(2));
    });

    // An export that never completes fails after source.timeout with the fix.
    rt.block_on(async {
        let server = FhirTestServer::start(exporting(&az, &container, u32::MAX, 0)).await;
        let plan = load_export_plan(dir.path(), &server, "timeout = \"300ms\"");
        let rec = Arc::new(Recorder::default());
        let fhir = client(&server, &rec, &plan);
        let e = fhirpipe::source::fhir_export::export(&fhir, &plan, &plan.query, &mut |_| {})
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("the $export at {}/$export did not complete within source.timeout (0.3 s); fix: raise source.timeout, or narrow the export with types, since or type_filter", server.base())
        );
    });
}

/// Blobs of an export written by hand: `x/Patient-1.ndjson` (3), `x/Observation-1.ndjson`
/// (2), `x/errors.ndjson` (2 OperationOutcomes). Returns the manifest.
fn hand_made_export(az: &Azurite, container: &str, patient_count: u64) -> Value {
    let patients: Vec<String> = (1..=3)
        .map(|i| resource("Patient", &format!("p{i}"), "2020-01-01T00:00:00Z"))
        .collect();
    let obs: Vec<String> = (1..=2)
        .map(|i| resource("Observation", &format!("o{i}"), "2020-01-01T00:00:00Z"))
        .collect();
    let errors = [
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": "Failed to export Patient/p9: timeout."}]}),
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Resource Observation/o7 was deleted."}]}),
    ];
    let put = |name: &str, lines: Vec<String>| {
        let r = az
            .put_blob(container, name, (lines.join("\n") + "\n").as_bytes())
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
    };
    put("x/Patient-1.ndjson", patients);
    put("x/Observation-1.ndjson", obs);
    put(
        "x/errors.ndjson",
        errors.iter().map(|e| e.to_string()).collect(),
    );
    let url = |n: &str| format!("{}/{container}/x/{n}", az.endpoint());
    json!({
        "transactionTime": "2026-11-23T12:00:00Z",
        "request": "https://fhir.example.com/$export?_type=Patient,Observation",
        "requiresAccessToken": false,
        "output": [
            {"type": "Patient", "url": url("Patient-1.ndjson"), "count": patient_count},
            {"type": "Observation", "url": url("Observation-1.ndjson"), "count": 2},
        ],
        "error": [{"type": "OperationOutcome", "url": url("errors.ndjson")}],
    })
}

#[test]
fn issue5_export_manifest_from_a_file_a_blob_and_a_url() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("manifest");
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let manifest = hand_made_export(&az, &container, 3);
    let want = BTreeMap::from([("Observation".to_string(), 2), ("Patient".to_string(), 3)]);

    // A local manifest file; error[] summarised, exit 1 (committed, with export errors).
    let dir = tempfile::tempdir().unwrap();
    let mpath = dir.path().join("manifest.json");
    std::fs::write(&mpath, manifest.to_string()).unwrap();
    let p = manifest_pipeline(dir.path(), &mpath.display().to_string(), "");
    let (code, report, stderr) = run(&p, &env, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["status"], "success_with_export_errors");
    assert_eq!(support::parquet_rows(&dir.path().join("out/parquet")), want);
    let e = &report["export"];
    assert_eq!(e["transaction_time"], "2026-11-23T12:00:00Z");
    assert_eq!(
        e["errors"],
        json!({
            "files": 1,
            "outcomes": 2,
            "by_code": {"OperationOutcome/not-found": 1, "OperationOutcome/processing": 1},
            "first": ["processing: Failed to export Patient/p9: timeout.", "not-found: Resource Observation/o7 was deleted."],
        })
    );
    assert_eq!(
        e["files"][0],
        json!({"type": "Patient", "url": format!("{}/{container}/x/Patient-1.ndjson", az.endpoint()), "count": 3, "read": 3})
    );
    assert!(
        stderr.contains("export errors: 2 OperationOutcomes in 1 files (OperationOutcome/not-found 1, OperationOutcome/processing 1)\n  processing: Failed to export Patient/p9: timeout.\n"),
        "{stderr}"
    );

    // The same manifest as a blob.
    let r = az
        .put_blob(&container, "manifest.json", manifest.to_string().as_bytes())
        .unwrap();
    assert_eq!(r.status, 201);
    let dir = tempfile::tempdir().unwrap();
    let p = manifest_pipeline(dir.path(), &format!("az://{container}/manifest.json"), "");
    let (code, report, stderr) = run(&p, &env, &["--quiet"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(support::parquet_rows(&dir.path().join("out/parquet")), want);
    assert_eq!(
        report["export"]["manifest"],
        format!("az://{container}/manifest.json")
    );

    // A URL: the status URL of a completed export, fetched with the bearer token.
    let rt = runtime();
    let server = rt.block_on(FhirTestServer::start(exporting(&az, &container, 0, 1)));
    seed(&server, "Encounter", 4, "2020-01-01T00:00:00Z");
    let token = server.token(&[EXPORTER]);
    let status = rt.block_on(async {
        let http = HttpClient::new(&HttpConfig::default()).unwrap();
        let tokens = Arc::new(TokenProvider::new(
            AuthConfig::BearerToken {
                token: Secret::new(token.clone()),
            },
            server.base(),
            None,
            http.clone(),
        ));
        FhirClient::new(server.base(), http, Some(tokens))
            .kick_off_export("$export", &[])
            .await
            .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let p = manifest_pipeline(
        dir.path(),
        &status,
        "auth = { method = \"bearer_token\", token = \"${FHIR_TOKEN}\" }",
    );
    let env = [
        ("AZURE_STORAGE_CONNECTION_STRING", cs.as_str()),
        ("FHIR_TOKEN", token.as_str()),
    ];
    let (code, report, stderr) = run(&p, &env, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        support::parquet_rows(&dir.path().join("out/parquet")),
        BTreeMap::from([("Encounter".to_string(), 4)])
    );
    assert_eq!(report["export"]["manifest"], status.as_str());
}

#[test]
fn issue5_manifest_count_mismatch_fails_naming_the_file_and_commits_nothing() {
    let Some(az) = Azurite::start() else { return };
    let container = az.fresh_container("mismatch");
    let cs = az.connection_string();
    let manifest = hand_made_export(&az, &container, 4);
    let dir = tempfile::tempdir().unwrap();
    let mpath = dir.path().join("manifest.json");
    std::fs::write(&mpath, manifest.to_string()).unwrap();
    let p = manifest_pipeline(dir.path(), &mpath.display().to_string(), "");
    let (code, report, stderr) = run(&p, &[("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())], &[]);
    assert_eq!(code, 8, "{stderr}");
    let url = format!("{}/{container}/x/Patient-1.ndjson", az.endpoint());
    assert_eq!(
        report["error"],
        format!("the export manifest announces 4 Patient resources in {url} but 3 lines were read (1 files differ; nothing was committed, the state file was not advanced)")
    );
    assert_eq!(
        report["export"]["count_mismatches"],
        json!([{"type": "Patient", "url": url, "count": 4, "read": 3}])
    );
    assert!(
        stderr.contains(&format!(
            "  COUNT MISMATCH Patient {url}: manifest count 4, read 3\n"
        )),
        "{stderr}"
    );
    assert!(support::parquet_rows(&dir.path().join("out/parquet")).is_empty());
}

#[test]
fn issue5_export_401_for_an_audience_mismatch_gives_the_fix() {
    let rt = runtime();
    let server = rt.block_on(FhirTestServer::start(ServerOptions {
        audience: Some("https://fhir.example.com".into()),
        ..ServerOptions::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let p = pipeline(
        dir.path(),
        &export_source(&server, &format!("state = \"{}\"", state.display())),
    );
    let token = server.token(&[EXPORTER]);
    let (code, report, stderr) = run(&p, &[("FHIR_TOKEN", token.as_str())], &["--quiet"]);
    assert_eq!(code, 3, "{stderr}");
    let e = report["error"].as_str().unwrap();
    assert!(
        e.starts_with(&format!(
            "GET {}/$export: HTTP 401 Unauthorized",
            server.base()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(": Authentication failed.; the FHIR service refused the token (401: wrong audience, expired, or clock skew), token aud [\"{}\"], exp ", server.base())),
        "{e}"
    );
    assert!(
        e.ends_with("; fix: request the token for the scope <FHIR service URL>/.default exactly (no trailing slash) and check the local clock"),
        "{e}"
    );
    assert!(!e.contains(&token), "the token leaked: {e}");
    assert!(!state.exists());
}

#[test]
fn issue5_requires_access_token_files_come_over_http_with_exact_dead_letter_lines_and_a_blob_state()
{
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("export");
    let rt = runtime();
    let server = rt.block_on(FhirTestServer::start(ServerOptions {
        requires_access_token: true,
        ..exporting(&az, &container, 0, 1)
    }));
    server.seed(
        "Patient",
        &[
            resource("Patient", "p1", "2020-01-01T00:00:00Z"),
            resource("Patient", "bad id!", "2020-01-01T00:00:00Z"),
            resource("Patient", "p3", "2020-01-01T00:00:00Z"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    // The state file on blob storage this time.
    let p = pipeline(
        dir.path(),
        &export_source(
            &server,
            &format!("state = \"az://{container}/state/export.json\""),
        ),
    );
    let token = server.token(&[EXPORTER]);
    let cs = az.connection_string();
    let env = [
        ("FHIR_TOKEN", token.as_str()),
        ("AZURE_STORAGE_CONNECTION_STRING", cs.as_str()),
    ];
    let (code, report, stderr) = run(&p, &env, &["--quiet"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["types"]["Patient"]["written"], 2);
    let blob = az.get_blob(&container, "state/export.json").unwrap();
    assert_eq!(blob.status, 200);
    let st: Value = serde_json::from_str(&blob.body).unwrap();
    assert_eq!(
        st,
        json!({
            "transactionTime": report["export"]["transaction_time"],
            "request": format!("{}/$export", server.base()),
            "pipeline": "export-test",
        })
    );
    assert_eq!(
        report["export"]["state"],
        json!({"path": format!("az://{container}/state/export.json"), "written": true})
    );
    let files: Vec<(u16, String)> = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/_files/"))
        .map(|r| (r.status, r.path.clone()))
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, 200);
    let url = format!("{}{}", server.base(), files[0].1);
    let dead = support::lines_of(&dir.path().join("out/dead-letter"), ".ndjson");
    assert_eq!(dead.len(), 1);
    let d: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64()),
        (Some(url.as_str()), Some(2))
    );

    // A manifest that needs the token, given to a source without auth, is refused up front.
    let m = json!({"transactionTime": "2026-11-23T12:00:00Z", "requiresAccessToken": true,
        "request": format!("{}/$export", server.base()),
        "output": [{"type": "Patient", "url": url, "count": 3}], "error": []});
    let mpath = dir.path().join("manifest.json");
    std::fs::write(&mpath, m.to_string()).unwrap();
    let p = manifest_pipeline(dir.path(), &mpath.display().to_string(), "");
    let (code, report, _) = run(&p, &[], &["--quiet"]);
    assert_eq!(code, 3);
    assert_eq!(
        report["error"],
        format!("export manifest {}: it says requiresAccessToken: true but the source has no auth; fix: add source.auth (the FHIR service's token, e.g. {{ method = \"managed_identity\" }})", mpath.display())
    );
    // With auth, the token's audience is the origin of the manifest's `request`.
    let p = manifest_pipeline(
        dir.path(),
        &mpath.display().to_string(),
        "auth = { method = \"bearer_token\", token = \"${FHIR_TOKEN}\" }",
    );
    let (code, report, stderr) = run(&p, &[("FHIR_TOKEN", token.as_str())], &["--quiet"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["types"]["Patient"]["read"], 3);
    assert_eq!(report["export"]["count_mismatches"], json!([]));
}

#[test]
fn issue5_export_to_lake_pipeline_checks_with_its_documented_environment() {
    let out = std::process::Command::new(support::bin())
        .args([
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/export-to-lake.toml"),
        ])
        .env(
            "FHIR_URL",
            "https://myws-myfhir.fhir.azurehealthcareapis.com",
        )
        .env("LAKE_ACCOUNT", "mylake")
        .env("EXPORT_BATCH", "20261123T020000Z")
        .env_remove("EXPORT_STATE")
        .env_remove("STORAGE_CREDENTIAL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("  source: fhir_export https://myws-myfhir.fhir.azurehealthcareapis.com/$export (auth: managed_identity)\n    state: https://mylake.blob.core.windows.net/lake/fhir/state/export-to-lake.json (its transactionTime is the next _since)\n"), "{text}");
    assert!(text.contains("  sink lake: parquet → https://mylake.blob.core.windows.net/lake/fhir/raw/<Type>/run=20261123T020000Z/part-NNNNN.parquet"), "{text}");
}

#[test]
fn issue5_group_level_with_container_and_type_filter_reaches_the_service() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("export");
    let other = az.fresh_container("other");
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let server = FhirTestServer::start(exporting(&az, &container, 0, 0)).await;
        server.seed("Group", &[json!({"resourceType": "Group", "id": "g1"}).to_string()]);
        seed(&server, "Observation", 2, "2020-01-01T00:00:00Z");
        let plan = load_export_plan(
            dir.path(),
            &server,
            &format!("level = \"group\"\ngroup = \"g1\"\ntypes = [\"Observation\"]\ntype_filter = [\"Observation?status=final\"]\ncontainer = \"{other}\""),
        );
        let rec = Arc::new(Recorder::default());
        let fhir = client(&server, &rec, &plan);
        let (_, manifest) =
            fhirpipe::source::fhir_export::export(&fhir, &plan, &plan.query, &mut |_| {})
                .await
                .unwrap();
        let kick: Vec<(String, String)> = server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("$export"))
            .map(|r| (r.path.clone(), r.query.clone()))
            .collect();
        assert_eq!(
            kick,
            vec![(
                "/Group/g1/$export".to_string(),
                format!("_type=Observation&_typeFilter=Observation?status=final&_container={other}")
            )]
        );
        assert_eq!(manifest.output.len(), 1);
        assert!(
            manifest.output[0]
                .url
                .starts_with(&format!("{}/{other}/", az.endpoint())),
            "{}",
            manifest.output[0].url
        );
    });
}
