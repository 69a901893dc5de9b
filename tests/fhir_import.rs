//! Issue 5 (`fhir_import` sink): `fhirpipe run` from local NDJSON into the FHIR test server
//! (tests/support/fhir_server.rs), staging in Azurite: the stored resources equal the input,
//! chunking, error files in the report with a non-zero exit, the IncrementalLoad warning, a
//! missing FHIR Data Importer role, a staging account the service does not import from, and a
//! failed run that imports nothing and leaves no staged chunks.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::azurite::Azurite;
use support::fhir_server::{runtime, FhirTestServer, ServerOptions, IMPORTER, READER};

struct Env {
    az: Arc<Azurite>,
    staging: String,
    logs: String,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Env {
    fn start() -> Option<Env> {
        let az = Arc::new(Azurite::start()?);
        Some(Env {
            staging: az.fresh_container("staging"),
            logs: az.fresh_container("fhirlogs"),
            az,
            rt: runtime(),
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn server(&self, import_storage: Option<&str>) -> FhirTestServer {
        self.rt.block_on(FhirTestServer::start(ServerOptions {
            storage: Some(self.az.clone()),
            error_container: Some(self.logs.clone()),
            import_storage: import_storage.map(str::to_string),
            ..ServerOptions::default()
        }))
    }

    /// The staging folder URL on Azurite (path style: the account is in the path).
    fn staging_url(&self) -> String {
        format!("{}/{}/fhirpipe", self.az.endpoint(), self.staging)
    }

    /// Writes the input files and a pipeline importing them into `server`.
    fn pipeline(
        &self,
        server: &FhirTestServer,
        files: &[(&str, &[String])],
        sink: &str,
    ) -> PathBuf {
        let input = self.dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap();
        for (name, lines) in files {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(input.join(name), text).unwrap();
        }
        let p = self.dir.path().join("import.toml");
        std::fs::write(
            &p,
            format!(
                r#"[pipeline]
name = "import-test"
chunk_size = "64KiB"

[source]
kind = "local"
path = "{input}"

[storage]
connection_string = "${{AZ_CS}}"

[sinks.target]
kind = "fhir_import"
url = "{base}"
auth = {{ method = "bearer_token", token = "${{FHIR_TOKEN}}" }}
staging = "{staging}"
{sink}

[dead_letter]
path = "{dl}"
"#,
                input = input.display(),
                base = server.base(),
                staging = self.staging_url(),
                dl = self.dir.path().join("dl").display(),
            ),
        )
        .unwrap();
        p
    }

    /// Runs the pipeline with a token of these roles; (exit code, report, stderr).
    fn run(&self, p: &Path, token: &str) -> (i32, Value, String) {
        let report = self.dir.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        let out = std::process::Command::new(support::bin())
            .args(["run", "--report"])
            .arg(&report)
            .arg(p)
            .env("FHIR_TOKEN", token)
            .env("AZ_CS", self.az.connection_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains(token), "the token must never be printed");
        let json = std::fs::read_to_string(&report)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    /// Imports three Patients (InitialLoad) with a token of one role.
    fn three_patients(&self, server: &FhirTestServer, role: &str) -> (i32, Value, String) {
        let patients: Vec<String> = (0..3).map(patient).collect();
        let p = self.pipeline(
            server,
            &[("Patient.ndjson", &patients)],
            "mode = \"InitialLoad\"",
        );
        self.run(&p, &server.token(&[role]))
    }

    /// Blob names in the staging container.
    fn staged(&self) -> Vec<String> {
        let r = self
            .az
            .request(
                "GET",
                &format!("/{}?restype=container&comp=list", self.staging),
                &[],
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
            .split("<Name>")
            .skip(1)
            .map(|s| s.split("</Name>").next().unwrap().to_string())
            .collect()
    }
}

fn patient(i: usize) -> String {
    json!({"resourceType": "Patient", "id": format!("p{i}"), "gender": "female", "birthDate": "1970-01-01"}).to_string()
}

fn observation(i: usize) -> String {
    json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/p{}", i % 50)},
        "effectiveDateTime": "2026-01-01T10:00:00Z",
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "note": [{"text": "x".repeat(200)}]})
    .to_string()
}

fn set(lines: &[String]) -> BTreeSet<String> {
    lines.iter().cloned().collect()
}

#[test]
fn issue5_import_moves_local_ndjson_into_the_service_in_chunks() {
    let Some(env) = Env::start() else { return };
    let server = env.server(None);
    let patients: Vec<String> = (0..50).map(patient).collect();
    let observations: Vec<String> = (0..5000).map(observation).collect();
    let total_obs: usize = observations.iter().map(|l| l.len() + 1).sum();
    assert!(
        total_obs > 2_000_000 && total_obs < 3_000_000,
        "{total_obs}"
    );
    let p = env.pipeline(
        &server,
        &[
            ("Patient.ndjson", &patients),
            ("Observation.ndjson", &observations),
        ],
        "mode = \"InitialLoad\"\nchunk_size = \"1MB\"",
    );
    let (code, report, stderr) = env.run(&p, &server.token(&[IMPORTER]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(set(&server.resources("Patient")), set(&patients));
    assert_eq!(set(&server.resources("Observation")), set(&observations));
    assert_eq!(server.resources("Observation").len(), 5000);

    let imp = &report["imports"]["target"];
    assert_eq!(imp["ok"], true);
    assert_eq!(imp["mode"], "InitialLoad");
    assert_eq!(
        imp["types"]["Observation"],
        json!({"staged": 5000, "files": 3, "imported": 5000, "rejected": 0, "unaccounted": 0})
    );
    assert_eq!(
        imp["types"]["Patient"],
        json!({"staged": 50, "files": 1, "imported": 50, "rejected": 0, "unaccounted": 0})
    );
    // One call with the four chunks, polled to completion.
    let ops = imp["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["inputs"], 4);
    assert!(ops[0]["status_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/_operations/import/", server.base())));
    let kick_offs = server
        .requests()
        .iter()
        .filter(|r| r.path == "/$import")
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(kick_offs, vec![202]);
    // Deterministic chunk names under <staging>/<run id>/, deleted after a clean import.
    let staging = imp["staging"].as_str().unwrap();
    assert!(
        staging.starts_with(&format!("{}/", env.staging_url())),
        "{staging}"
    );
    assert_eq!(imp["staged_files"], "deleted");
    assert_eq!(env.staged(), Vec::<String>::new());
    assert!(
        stderr.contains("  Observation        5000        5000           0            0\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  import: staged = imported for every type\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "import target: operation 1/1 kicked off (4 inputs): {}/_operations/import/",
            server.base()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("import target: operation 1/1: In progress (poll 1, next in 1 s)\n"),
        "{stderr}"
    );
    assert_eq!(
        report["sinks"]["target"]["files"].as_array().unwrap().len(),
        4
    );
    assert_eq!(
        report["sinks"]["target"]["files"][0],
        "Observation.00000.ndjson"
    );
}

#[test]
fn issue5_import_rejections_are_summarised_and_fail_the_run() {
    let Some(env) = Env::start() else { return };
    let server = env.server(None);
    let mut patients: Vec<String> = (0..5).map(patient).collect();
    // Lines 2 and 4: a birthDate the service refuses (fhirpipe's basic checks let it by).
    patients[1] = patients[1].replace("1970-01-01", "not-a-date");
    patients[3] = patients[3].replace("1970-01-01", "1970-1");
    // Lines 1 and 3 carry the meta IncrementalLoad keeps.
    for i in [0, 2] {
        patients[i] = patients[i].replace(
            "\"resourceType\"",
            "\"meta\":{\"versionId\":\"3\",\"lastUpdated\":\"2026-01-01T00:00:00Z\"},\"resourceType\"",
        );
    }
    let p = env.pipeline(
        &server,
        &[("Patient.ndjson", &patients)],
        "mode = \"IncrementalLoad\"",
    );
    let (code, report, stderr) = env.run(&p, &server.token(&[IMPORTER]));
    assert_eq!(code, 9, "{stderr}");
    assert_eq!(report["status"], "import_incomplete");
    let imp = &report["imports"]["target"];
    assert_eq!(imp["ok"], false);
    assert_eq!(
        imp["types"]["Patient"],
        json!({"staged": 5, "files": 1, "imported": 3, "rejected": 2, "unaccounted": 0})
    );
    let input = format!("{}/Patient.00000.ndjson", imp["staging"].as_str().unwrap());
    assert_eq!(
        imp["errors"]["Patient"],
        json!({"count": 2, "first": [
            {"input": input, "line": 2, "message": "Failed to process line #2: Invalid value 'not-a-date' for birthDate."},
            {"input": input, "line": 4, "message": "Failed to process line #4: Invalid value '1970-1' for birthDate."},
        ]})
    );
    assert_eq!(imp["error_files"].as_array().unwrap().len(), 1);
    assert_eq!(
        imp["missing_meta"],
        json!({"Patient": {"version_id": 3, "last_updated": 3}})
    );
    assert!(imp["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("IncrementalLoad: 3 resource(s) without meta.versionId and 3 without meta.lastUpdated: the service assigns them"));
    // The chunk stays for the error lines to point into.
    assert!(imp["staged_files"].as_str().unwrap().starts_with("kept"));
    assert_eq!(env.staged().len(), 1);
    assert!(stderr.contains("  rejected Patient: 2\n"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "    {input}:2: Failed to process line #2: Invalid value 'not-a-date' for birthDate.\n"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("IMPORT INCOMPLETE"), "{stderr}");
    assert!(
        stderr.contains("status: import_incomplete (exit code 9)"),
        "{stderr}"
    );
    assert_eq!(server.resources("Patient").len(), 3);
}

#[test]
fn issue5_import_without_the_importer_role_says_which_role() {
    let Some(env) = Env::start() else { return };
    let server = env.server(None);
    let (code, report, stderr) = env.three_patients(&server, READER);
    assert_eq!(code, 3, "{stderr}");
    let err = report["error"].as_str().unwrap();
    assert!(
        err.starts_with("sink `target`: $import kick-off: POST "),
        "{err}"
    );
    assert!(err.contains("lacks the data-plane role for $import; fix: assign FHIR Data Importer to it at the FHIR service scope"), "{err}");
    // Nothing was started, so nothing is left in staging, and nothing was imported.
    assert_eq!(report["imports"]["target"]["staged_files"], "deleted");
    assert_eq!(env.staged(), Vec::<String>::new());
    assert!(server.resources("Patient").is_empty());
}

#[test]
fn issue5_import_staging_not_on_the_import_account_says_the_fix() {
    let Some(env) = Env::start() else { return };
    let server = env.server(Some("https://importacct.blob.core.windows.net"));
    let (code, report, stderr) = env.three_patients(&server, IMPORTER);
    assert_eq!(code, 3, "{stderr}");
    let err = report["error"].as_str().unwrap();
    assert!(err.contains("HTTP 400 Bad Request"), "{err}");
    assert!(
        err.contains("The input URL is not on the storage account configured for import."),
        "{err}"
    );
    assert!(err.ends_with("; fix: sinks.target.staging must be a container on the storage account configured as the FHIR service's import storage (Azure portal: FHIR service → Import → storage account; `importConfiguration.integrationDataStore` in its ARM resource), and the service's managed identity needs Storage Blob Data Contributor on it"), "{err}");
    assert_eq!(env.staged(), Vec::<String>::new());
}

#[test]
fn issue5_failed_run_imports_nothing_and_cleans_staging() {
    let Some(env) = Env::start() else { return };
    let server = env.server(None);
    let mut patients: Vec<String> = (0..3000).map(patient).collect();
    patients.push("{\"resourceType\":\"Patient\",\"id\":\"bad id!\"}".into());
    let p = env.pipeline(
        &server,
        &[("Patient.ndjson", &patients)],
        "mode = \"InitialLoad\"",
    );
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "[storage]",
        "[validate]\non_invalid = \"fail\"\n\n[storage]",
    );
    std::fs::write(&p, text).unwrap();
    let (code, report, stderr) = env.run(&p, &server.token(&[IMPORTER]));
    assert_eq!(code, 5, "{stderr}");
    assert!(report["imports"].is_null(), "{report}");
    assert!(!server.requests().iter().any(|r| r.path == "/$import"));
    assert_eq!(env.staged(), Vec::<String>::new());
    assert!(server.resources("Patient").is_empty());
}

#[test]
fn issue5_migrate_to_ahds_pipeline_checks() {
    let out = std::process::Command::new(support::bin())
        .arg("check")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/migrate-to-ahds.toml"
        ))
        .env_remove("SOURCE_FHIR_URL")
        .env_remove("TARGET_FHIR_URL")
        .env_remove("IMPORT_STAGING")
        .env_remove("DEAD_LETTER")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "  source: fhir_export https://myapi.azurehealthcareapis.com/$export (auth: managed_identity)\n",
        "  validate: structure (basic, then the whole resource against the R4 model); invalid lines: dead-letter\n",
        "  sink target: fhir_import → https://myws-myfhir.fhir.azurehealthcareapis.com/$import (IncrementalLoad, staged in https://myimportacct.blob.core.windows.net/import/fhirpipe as files up to 256.0 MB, auth: managed_identity)\n",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
}

#[test]
fn issue5_import_staging_must_be_a_blob_container() {
    for staging in [
        "https://example.com/staging/x",
        "https://myimportacct.blob.core.windows.net/",
    ] {
        let out = std::process::Command::new(support::bin())
            .arg("check")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/pipelines/migrate-to-ahds.toml"
            ))
            .arg("--set")
            .arg(format!("sinks.target.staging={staging}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{staging}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("field `sinks.target.staging`: the staging URL is not a container on a Blob Storage account"), "{err}");
        assert!(err.contains("fix: write https://<account>.blob.core.windows.net/<container>/<prefix>, on the FHIR service's import storage account"), "{err}");
    }
}

#[test]
fn issue5_import_poll_failure_keeps_the_started_operations_chunks() {
    let Some(env) = Env::start() else { return };
    let server = env.server(None);
    // The status URL answers 404 (not retried) once: the operation was started, its outcome
    // is unknown.
    server.inject("/_operations/import/", 404, None, 1);
    let (code, report, stderr) = env.three_patients(&server, IMPORTER);
    assert_eq!(code, 3, "{stderr}");
    let err = report["error"].as_str().unwrap();
    assert!(
        err.starts_with(&format!(
            "sink `target`: $import status poll: GET {}/_operations/import/",
            server.base()
        )),
        "{err}"
    );
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    let imp = &report["imports"]["target"];
    assert_eq!(imp["ok"], false);
    assert!(imp["operations"][0]["status_url"].is_string());
    assert_eq!(
        imp["operations"][0]["error"],
        err.strip_prefix("sink `target`: ").unwrap()
    );
    assert_eq!(imp["staged_files"], "kept: an operation started and did not complete, the service may still be reading them; delete the folder once it has finished");
    assert_eq!(env.staged().len(), 1);
    // Nothing lost silently: the staged resources are unaccounted, not imported.
    assert_eq!(
        imp["types"]["Patient"],
        json!({"staged": 3, "files": 1, "imported": 0, "rejected": 0, "unaccounted": 3})
    );
}
