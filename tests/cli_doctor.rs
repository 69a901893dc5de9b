//! Issue 5 (`fhirpipe doctor`): each failure case of the FHIR endpoint checks, run through the
//! binary against the in-process FHIR test server, with the message and fix asserted; plus
//! the `fhir_export` / `fhir_import` definitions in `check` and `run`.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Output;
use support::azurite::Azurite;
use support::fhir_server::{
    jwt, runtime as rt, FhirTestServer, ServerOptions, EXPORTER, IMPORTER, READER,
};

fn server(rt: &tokio::runtime::Runtime, opts: ServerOptions) -> FhirTestServer {
    rt.block_on(FhirTestServer::start(opts))
}

const STAGING: &str = "https://importacct.blob.core.windows.net/staging/run-1";

/// A pipeline whose source is `fhir_export` at `url` with `auth` (a TOML inline table).
fn export_pipeline(dir: &Path, url: &str, auth: &str) -> std::path::PathBuf {
    let p = dir.join("export.toml");
    let text = format!(
        "[pipeline]\nname = \"doctor\"\n\n[source]\nkind = \"fhir_export\"\nurl = \"{url}\"\nauth = {auth}\ntypes = [\"Patient\"]\n\n[sinks.out]\nkind = \"ndjson\"\npath = \"{out}\"\n\n[dead_letter]\npath = \"{dl}\"\n",
        out = dir.join("out").display(),
        dl = dir.join("dl").display()
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// A pipeline from a local folder into `fhir_import` at `url` with `auth`.
fn import_pipeline(dir: &Path, url: &str, auth: &str) -> std::path::PathBuf {
    import_pipeline_at(dir, url, auth, STAGING, "")
}

/// [`import_pipeline`] staging in `staging`, with `extra` TOML appended.
fn import_pipeline_at(
    dir: &Path,
    url: &str,
    auth: &str,
    staging: &str,
    extra: &str,
) -> std::path::PathBuf {
    let p = dir.join("import.toml");
    let text = format!(
        "[pipeline]\nname = \"doctor\"\n\n[source]\nkind = \"local\"\npath = \"{src}\"\n\n[sinks.target]\nkind = \"fhir_import\"\nurl = \"{url}\"\nauth = {auth}\nmode = \"IncrementalLoad\"\nstaging = \"{staging}\"\n\n[dead_letter]\npath = \"{dl}\"\n{extra}",
        src = dir.display(),
        dl = dir.join("dl").display()
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// A token for checks that stop before the token is used.
const UNUSED_TOKEN: &str = "opaque-token-never-sent-0001";

const BEARER: &str = "{ method = \"bearer_token\", token = \"${FHIR_TOKEN}\" }";

fn doctor(pipeline: &Path, token: &str) -> (i32, String) {
    doctor_env(pipeline, token, "")
}

fn assert_has(out: &str, want: &str) {
    assert!(out.contains(want), "missing:\n{want}\nin:\n{out}");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn issue5_doctor_passes_a_healthy_export_and_import() {
    let rt = rt();
    let s = server(&rt, ServerOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[EXPORTER]),
    );
    assert_eq!(code, 0, "{out}");
    let port = s.base().rsplit(':').next().unwrap();
    assert_has(&out, &format!("source (fhir_export) {}\n", s.base()));
    assert_has(&out, "  ok    DNS: 127.0.0.1 resolves to 127.0.0.1\n");
    assert_has(
        &out,
        &format!("  ok    connect: 127.0.0.1:{port} accepts connections\n"),
    );
    assert_has(
        &out,
        "  ok    /metadata: FHIR 4.0.1; operations: export, import\n",
    );
    assert_has(
        &out,
        "  ok    $export: `export` is in the CapabilityStatement\n",
    );
    assert_has(&out, "  ok    clock: within ");
    assert_has(
        &out,
        &format!("  ok    token (bearer_token): aud {}, expires ", s.base()),
    );
    assert_has(&out, "  ok    access: the token is accepted and the principal may use $export (FHIR Data Exporter)\n");
    assert_has(&out, "doctor: all 1 endpoint(s) OK\n");

    // The import sink's staging folder is checked too (Azurite).
    let Some(az) = Azurite::start() else { return };
    let c = az.fresh_container("staging");
    assert_eq!(
        az.put_blob(&c, "fhirpipe/old/Patient.00000.ndjson", b"{}\n")
            .unwrap()
            .status,
        201
    );
    let p = import_pipeline_at(
        dir.path(),
        s.base(),
        BEARER,
        &format!("{}/{c}/fhirpipe", az.endpoint()),
        "\n[storage]\nconnection_string = \"${AZ_CS}\"\n",
    );
    let (code, out) = doctor_env(&p, &s.token(&[IMPORTER]), &az.connection_string());
    assert_eq!(code, 0, "{out}");
    assert_has(&out, &format!("sinks.target (fhir_import) {}\n", s.base()));
    assert_has(&out, "  ok    access: the token is accepted and the principal may use $import (FHIR Data Importer)\n");
    assert_has(
        &out,
        &format!("sinks.target staging (storage) https://devstoreaccount1.blob.core.windows.net/{c}/fhirpipe\n  ok    list: 1 blob(s) under `{c}/fhirpipe`\n  ok    read: read `fhirpipe/old/Patient.00000.ndjson`\n  ok    write: wrote and deleted `fhirpipe/.fhirpipe-doctor-"),
    );
    assert_has(&out, "  note  import account: not verified: the FHIR API does not say which storage account the service imports from, so fhirpipe cannot check that `devstoreaccount1` is it ($import refuses input URLs on any other account with 400)\n        fix: check that the FHIR service's import storage account is `devstoreaccount1`: Azure portal, FHIR service → Import; or `az resource show --ids <FHIR service resource id> --query properties.importConfiguration.integrationDataStore`\n");
    assert_has(&out, "doctor: all 2 endpoint(s) OK\n");
    // The probe is gone.
    assert_eq!(blobs(&az, &c), vec!["fhirpipe/old/Patient.00000.ndjson"]);
}

/// Blob names in a container.
fn blobs(az: &Azurite, c: &str) -> Vec<String> {
    let r = az
        .request("GET", &format!("/{c}?restype=container&comp=list"), &[])
        .unwrap();
    r.body
        .split("<Name>")
        .skip(1)
        .map(|s| s.split("</Name>").next().unwrap().to_string())
        .collect()
}

/// Runs doctor with `FHIR_TOKEN` and the storage connection string `AZ_CS`; neither the token
/// nor a SAS signature may appear in the output.
fn doctor_env(pipeline: &Path, token: &str, cs: &str) -> (i32, String) {
    let out: Output = std::process::Command::new(support::bin())
        .arg("doctor")
        .arg(pipeline)
        .env("FHIR_TOKEN", token)
        .env("AZ_CS", cs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.contains(token) || token.is_empty(),
        "the token must never be printed:\n{stdout}"
    );
    assert!(!stdout.contains("sig="), "no SAS in the output:\n{stdout}");
    (out.status.code().unwrap_or(-1), stdout)
}

/// A local → blob NDJSON pipeline (no FHIR endpoint): only storage is checked.
fn blob_pipeline(dir: &Path, out: &str) -> std::path::PathBuf {
    let p = dir.join("blob.toml");
    let text = format!(
        "[pipeline]\nname = \"doctor\"\n\n[source]\nkind = \"local\"\npath = \"{src}\"\n\n[sinks.clean]\nkind = \"ndjson\"\npath = \"{out}\"\n\n[dead_letter]\npath = \"{dl}\"\n\n[storage]\nconnection_string = \"${{AZ_CS}}\"\n",
        src = dir.display(),
        dl = dir.join("dl").display()
    );
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn issue5_doctor_storage_container_missing() {
    let Some(az) = Azurite::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = blob_pipeline(dir.path(), "az://no-such-container/fhir");
    let (code, out) = doctor_env(&p, "", &az.connection_string());
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "sinks.clean (storage) https://devstoreaccount1.blob.core.windows.net/no-such-container/fhir\n  FAIL  list: not found while trying to list `fhir` in container `no-such-container` of storage account `devstoreaccount1` (ContainerNotFound)");
    assert_has(&out, "        fix: create container `no-such-container` of storage account `devstoreaccount1` (fhirpipe never creates containers), or correct the URL\n");
    assert_has(&out, "doctor: 1 of 1 endpoint(s) have problems\n");
}

#[test]
fn issue5_doctor_storage_without_write_permission() {
    let Some(az) = Azurite::start() else { return };
    let c = az.fresh_container("lake");
    assert_eq!(
        az.put_blob(&c, "fhir/Patient.00000.ndjson", b"{}\n")
            .unwrap()
            .status,
        201
    );
    let dir = tempfile::tempdir().unwrap();
    let p = blob_pipeline(dir.path(), &format!("az://{c}/fhir"));
    // A read + list SAS: listing and reading work, writing is refused.
    let cs = format!(
        "AccountName=devstoreaccount1;SharedAccessSignature={};BlobEndpoint={};",
        az.account_sas("rl"),
        az.endpoint()
    );
    let (code, out) = doctor_env(&p, "", &cs);
    assert_eq!(code, 7, "{out}");
    assert_has(&out, &format!("  ok    list: 1 blob(s) under `{c}/fhir`\n  ok    read: read `fhir/Patient.00000.ndjson`\n  FAIL  write: access to container `{c}` in storage account `devstoreaccount1` was refused while trying to write `fhir/.fhirpipe-doctor-"));
    assert_has(&out, "` (SAS token): AuthorizationPermissionMismatch: This request is not authorized to perform this operation using this permission. Check that the SAS token belongs to account `devstoreaccount1`");
    assert_has(&out, &format!("        fix: to write blobs, the identity needs Storage Blob Data Contributor on container `{c}` of storage account `devstoreaccount1` (assign it at the container scope, or the storage account's: Storage account → Access control (IAM) → Add role assignment; it can take a few minutes to apply); with a SAS, it needs the permissions read, write, delete and list (sp=rwdl) and must not have expired\n"));
    assert_eq!(blobs(&az, &c), vec!["fhir/Patient.00000.ndjson"]);
}

#[test]
fn issue5_doctor_dns_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), "https://fhirpipe-doctor-test.invalid", BEARER),
        UNUSED_TOKEN,
    );
    assert_eq!(code, 7, "{out}");
    assert_has(
        &out,
        "  FAIL  DNS: cannot resolve fhirpipe-doctor-test.invalid: ",
    );
    assert_has(&out, "        fix: check the host name in source.url (Azure Health Data Services: https://<workspace>-<service>.fhir.azurehealthcareapis.com) and this machine's DNS; behind a private endpoint, the private DNS zone privatelink.fhir.azurehealthcareapis.com must be linked to this network\n");
    assert_has(&out, "doctor: 1 of 1 endpoint(s) have problems\n");
}

#[test]
fn issue5_doctor_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), &format!("http://127.0.0.1:{port}"), BEARER),
        UNUSED_TOKEN,
    );
    assert_eq!(code, 7, "{out}");
    assert_has(
        &out,
        &format!("  FAIL  connect: cannot connect to 127.0.0.1:{port} (127.0.0.1): "),
    );
    assert_has(&out, &format!("        fix: check that the service listens on port {port} and that firewalls / network security groups between here and 127.0.0.1 allow it\n"));
}

#[test]
fn issue5_doctor_tls_failure() {
    let rt = rt();
    let s = server(&rt, ServerOptions::default());
    let https = s.base().replace("http://", "https://");
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(&export_pipeline(dir.path(), &https, BEARER), UNUSED_TOKEN);
    assert_eq!(code, 7, "{out}");
    let hostport = s.base().trim_start_matches("http://");
    assert_has(&out, &format!("  FAIL  TLS: TLS with {hostport} failed: "));
    assert_has(&out, "        fix: check that the URL's scheme and port are the service's HTTPS endpoint; behind a TLS-inspecting proxy, add the proxy's CA certificate to the system trust store\n");
}

#[test]
fn issue5_doctor_operation_missing_from_the_capability_statement() {
    let rt = rt();
    let s = server(
        &rt,
        ServerOptions {
            advertise_bulk: false,
            ..ServerOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[EXPORTER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "  ok    /metadata: FHIR 4.0.1; operations: none\n");
    assert_has(&out, "  FAIL  $export: the CapabilityStatement does not list the `export` operation\n        fix: configure the FHIR service's export storage account");
    let (code, out) = doctor(
        &import_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[IMPORTER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "  FAIL  $import: the CapabilityStatement does not list the `import` operation\n        fix: enable import on the FHIR service (Import settings: initial or incremental mode) and configure its import storage account");
}

#[test]
fn issue5_doctor_clock_skew_against_the_server_date() {
    let rt = rt();
    let s = server(
        &rt,
        ServerOptions {
            date_offset_secs: 900,
            ..ServerOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[EXPORTER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "  FAIL  clock: the local clock is behind the server's Date by 15 min\n        fix: synchronise the clock (NTP, e.g. `timedatectl set-ntp true`): Entra and the FHIR service allow 5 minutes\n");
}

#[test]
fn issue5_doctor_token_acquisition_error_with_aadsts_fix() {
    let rt = rt();
    let s = server(&rt, ServerOptions::default());
    s.register_client("contoso", "app-1", "v", &[EXPORTER]);
    let dir = tempfile::tempdir().unwrap();
    let auth = format!(
        "{{ method = \"client_secret\", tenant_id = \"contoso\", client_id = \"app-2\", client_secret = \"v\", authority_host = \"{}\" }}",
        s.base()
    );
    let (code, out) = doctor(&export_pipeline(dir.path(), s.base(), &auth), "");
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "  FAIL  token (client_secret): client_secret: the token request was refused (AADSTS700016): POST ");
    assert_has(
        &out,
        "Application with identifier 'app-2' was not found in the directory 'contoso'.",
    );
    assert_has(&out, "        fix: the application (client_id) is not found in the tenant: check client_id and tenant_id (the app must be registered in, or consented to by, that tenant)\n");
    // A working client passes all checks.
    let auth = auth.replace("app-2", "app-1");
    let (code, out) = doctor(&export_pipeline(dir.path(), s.base(), &auth), "");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn issue5_doctor_audience_mismatch_and_expired_token() {
    let rt = rt();
    let s = server(&rt, ServerOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let p = export_pipeline(dir.path(), s.base(), BEARER);
    let slash =
        jwt(&json!({"aud": format!("{}/", s.base()), "exp": now() + 3600, "roles": [EXPORTER]}));
    let (code, out) = doctor(&p, &slash);
    assert_eq!(code, 7, "{out}");
    assert_has(&out, &format!("  FAIL  token (bearer_token): the token's audience \"{b}/\" is not the FHIR service {b} (they differ only by a trailing slash, which the service treats as another audience)\n        fix: request the token for the scope {b}/.default (resource {b}), or set the endpoint's `audience` if the service is configured with a different one\n", b = s.base()));

    let expired = jwt(&json!({"aud": s.base(), "exp": now() - 1800, "roles": [EXPORTER]}));
    let (code, out) = doctor(&p, &expired);
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "  FAIL  token (bearer_token): the token expired at ");
    assert_has(&out, " (30 min ago)\n        fix: get a new token (a bearer_token is never refreshed: prefer client_secret, managed_identity or azure_cli, which are)\n");
}

#[test]
fn issue5_doctor_401_versus_403_with_the_role_to_assign() {
    let rt = rt();
    // The service is configured with another audience: our token passes our checks, the
    // service refuses it.
    let s = server(
        &rt,
        ServerOptions {
            audience: Some("https://other.fhir.azurehealthcareapis.com".into()),
            ..ServerOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(
        &export_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[EXPORTER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, &format!("  FAIL  access: GET {}/_operations/export/0: HTTP 401 Unauthorized [x-ms-request-id: req-", s.base()));
    assert_has(&out, "]: Authentication failed.; the FHIR service refused the token (401: wrong audience, expired, or clock skew), token aud [");
    assert_has(&out, "        fix: request the token for the scope <FHIR service URL>/.default exactly (no trailing slash) and check the local clock\n");

    let s = server(&rt, ServerOptions::default());
    let (code, out) = doctor(
        &export_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[READER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "]: Authorization failed.; the principal (oid 00000000-0000-0000-0000-0000000000aa) is authenticated but lacks the data-plane role for $export\n        fix: assign FHIR Data Exporter to it at the FHIR service scope (FHIR service → Access control (IAM) → Add role assignment); role assignments can take a few minutes to apply\n");
    let (code, out) = doctor(
        &import_pipeline(dir.path(), s.base(), BEARER),
        &s.token(&[EXPORTER]),
    );
    assert_eq!(code, 7, "{out}");
    assert_has(&out, "lacks the data-plane role for $import\n        fix: assign FHIR Data Importer to it at the FHIR service scope");
}

#[test]
fn issue5_fhir_endpoints_in_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = export_pipeline(
        dir.path(),
        "https://ws-fhir.fhir.azurehealthcareapis.com/",
        BEARER,
    );
    let out = std::process::Command::new(support::bin())
        .arg("check")
        .arg(&p)
        .env("FHIR_TOKEN", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_has(&text, "  source: fhir_export https://ws-fhir.fhir.azurehealthcareapis.com/$export?_type=Patient (auth: bearer_token)\n");

    let out = std::process::Command::new(support::bin())
        .args(["run", "--quiet"])
        .arg(&p)
        .env("FHIR_TOKEN", "x")
        .output()
        .unwrap();
    // `run` exports now; the token is checked before the first call, so no request is made.
    assert_eq!(out.status.code(), Some(3));
    assert_has(&String::from_utf8_lossy(&out.stderr), "fhirpipe: the token cannot be checked: it is not a JWT (three dot-separated parts); fix: use an Entra access token for the FHIR service (a JWT)");

    // A SAS in the staging URL is refused before anything runs.
    let p = import_pipeline(
        dir.path(),
        "https://ws-fhir.fhir.azurehealthcareapis.com",
        BEARER,
    );
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace(STAGING, &format!("{STAGING}?sv=2022&sig=abc"));
    std::fs::write(&p, text).unwrap();
    let out = std::process::Command::new(support::bin())
        .arg("check")
        .arg(&p)
        .env("FHIR_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_has(
        &err,
        "field `sinks.target.staging`: the staging folder URL has a query string or fragment",
    );
    assert_has(
        &err,
        "fix: remove everything from `?` on (credentials go in the auth table, never in URLs)",
    );
}
