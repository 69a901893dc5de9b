//! Issue 5 (HTTP, auth, bulk protocol): the HTTP client, the token providers and the FHIR
//! bulk calls against the in-process FHIR test server (tests/support/fhir_server.rs), with
//! Azurite for the `$export` output and `$import` input.

mod support;

use fhirpipe::auth::{AuthConfig, AuthError, Clock, Secret, TokenProvider};
use fhirpipe::fhirclient::{import_parameters, FhirClient, FhirError, Operation, Progress};
use fhirpipe::http::{HttpClient, HttpConfig, Idempotency, RetryPolicy};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::azurite::Azurite;
use support::fhir_server::{
    runtime as rt, FhirTestServer, ServerOptions, EXPORTER, IMPORTER, MAX_IMPORT_INPUTS, READER,
};
use support::Recorder;

/// An HTTP client with no jitter (waits are exactly half the exponential step) that records
/// its waits.
fn http(max_retries: u32) -> (HttpClient, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let cfg = HttpConfig {
        retry: RetryPolicy {
            max_retries,
            ..RetryPolicy::default()
        },
        ..HttpConfig::default()
    };
    let c = HttpClient::new(&cfg)
        .unwrap()
        .with_sleeper(rec.clone())
        .with_jitter(Arc::new(|| 0.0));
    (c, rec)
}

fn bearer(server: &FhirTestServer, token: String) -> Arc<TokenProvider> {
    let (h, _) = http(0);
    Arc::new(TokenProvider::new(
        AuthConfig::BearerToken {
            token: Secret::new(token),
        },
        server.base(),
        None,
        h,
    ))
}

fn secs(d: u64) -> Duration {
    Duration::from_secs(d)
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d)
}

/// A clock that can be moved.
struct MovableClock(AtomicI64);

impl Clock for MovableClock {
    fn now(&self) -> SystemTime {
        let off = self.0.load(Ordering::Relaxed);
        if off >= 0 {
            SystemTime::now() + secs(off as u64)
        } else {
            SystemTime::now() - secs((-off) as u64)
        }
    }
}

fn statuses(server: &FhirTestServer, path: &str) -> Vec<u16> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.status)
        .collect()
}

#[test]
fn issue5_retries_429_honouring_retry_after() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        server.inject("/metadata", 429, Some("3"), 2);
        let (h, rec) = http(5);
        let fhir = FhirClient::new(server.base(), h, None);
        let cap = fhir.capability().await.unwrap();
        assert_eq!(cap.operations, vec!["export", "import"]);
        assert_eq!(cap.fhir_version.as_deref(), Some("4.0.1"));
        assert_eq!(rec.waits(), vec![secs(3), secs(3)]);
        assert_eq!(statuses(&server, "/metadata"), vec![429, 429, 200]);
    });
}

#[test]
fn issue5_retries_503_with_exponential_backoff_then_gives_up_with_the_request_id() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        server.inject("/metadata", 503, None, 10);
        let (h, rec) = http(3);
        let fhir = FhirClient::new(server.base(), h, None);
        let err = fhir.capability().await.unwrap_err();
        // Jitter 0: half of 1 s, 2 s, 4 s.
        assert_eq!(rec.waits(), vec![ms(500), ms(1000), ms(2000)]);
        let last = server.requests().last().unwrap().request_id.clone();
        assert_eq!(
            err.to_string(),
            format!(
                "GET {}/metadata: HTTP 503 Service Unavailable (gave up after 4 attempts) \
[x-ms-request-id: {last}]: Injected fault 503.",
                server.base()
            )
        );
        assert_eq!(statuses(&server, "/metadata"), vec![503; 4]);
    });
}

#[test]
fn issue5_retry_after_longer_than_the_policy_fails_at_once() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        server.inject("/metadata", 429, Some("3600"), 1);
        let (h, rec) = http(5);
        let err = FhirClient::new(server.base(), h, None)
            .capability()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "HTTP 429 and the server asks to retry after 3600 s, longer than fhirpipe waits"
            ),
            "{err}"
        );
        assert!(rec.waits().is_empty());
    });
}

#[test]
fn issue5_kick_off_post_is_retried_on_429_but_not_on_500() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        let tokens = bearer(&server, server.token(&[IMPORTER]));
        let (h, rec) = http(5);
        let fhir = FhirClient::new(server.base(), h, Some(tokens));
        let body = import_parameters("IncrementalLoad", &[]);

        server.inject("/$import", 500, None, 1);
        let err = fhir.kick_off_import(&body).await.unwrap_err().to_string();
        assert!(
            err.contains("HTTP 500 Internal Server Error [x-ms-request-id: req-"),
            "{err}"
        );
        assert_eq!(statuses(&server, "/$import"), vec![500]);

        server.inject("/$import", 429, Some("1"), 1);
        let err = fhir.kick_off_import(&body).await.unwrap_err().to_string();
        // The retry reached the real handler, which rejects the empty input list.
        assert!(
            err.contains("HTTP 400 Bad Request (after 2 attempts)")
                && err.ends_with(": Value of the following parameter input is invalid."),
            "{err}"
        );
        assert_eq!(statuses(&server, "/$import"), vec![500, 429, 400]);
        assert_eq!(rec.waits(), vec![secs(1)]);
    });
}

#[test]
fn issue5_401_and_403_say_what_to_fix() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        // No token at all: the service answers 401.
        let (h, _) = http(0);
        let err = FhirClient::new(server.base(), h, None)
            .kick_off_export("$export", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, FhirError::Unauthorized { .. }));
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("GET {}/$export: HTTP 401 Unauthorized [x-ms-request-id: req-", server.base())), "{msg}");
        assert!(msg.ends_with(": Authentication failed.; the FHIR service refused the token (401: wrong audience, expired, or clock skew); fix: request the token for the scope <FHIR service URL>/.default exactly (no trailing slash) and check the local clock"), "{msg}");

        // A valid token without the Exporter role: 403 names the role and the scope.
        let (h, _) = http(0);
        let fhir = FhirClient::new(server.base(), h, Some(bearer(&server, server.token(&[READER]))));
        let msg = fhir.kick_off_export("$export", &[]).await.unwrap_err().to_string();
        assert!(msg.contains("HTTP 403 Forbidden"), "{msg}");
        assert!(msg.ends_with(": Authorization failed.; the principal (oid 00000000-0000-0000-0000-0000000000aa) is authenticated but lacks the data-plane role for $export; fix: assign FHIR Data Exporter to it at the FHIR service scope (FHIR service → Access control (IAM) → Add role assignment); role assignments can take a few minutes to apply"), "{msg}");

        let (h, _) = http(0);
        let fhir = FhirClient::new(server.base(), h, Some(bearer(&server, server.token(&[EXPORTER]))));
        let msg = fhir
            .kick_off_import(&import_parameters("InitialLoad", &[]))
            .await
            .unwrap_err()
            .to_string();
        assert!(msg.contains("lacks the data-plane role for $import; fix: assign FHIR Data Importer"), "{msg}");
    });
}

#[test]
fn issue5_static_token_audience_and_expiry_are_checked_before_the_first_call() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        let base = server.base().to_string();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let slash = support::fhir_server::jwt(
            &json!({"aud": format!("{base}/"), "exp": now + 3600, "roles": [EXPORTER]}),
        );
        let (h, _) = http(0);
        let fhir = FhirClient::new(&base, h, Some(bearer(&server, slash)));
        let err = fhir.kick_off_export("$export", &[]).await.unwrap_err();
        assert!(matches!(err, FhirError::Auth(AuthError::AudienceMismatch { .. })));
        assert_eq!(
            err.to_string(),
            format!("the token's audience \"{base}/\" is not the FHIR service {base} (they differ only by a trailing slash, which the service treats as another audience); fix: request the token for the scope {base}/.default (resource {base}), or set the endpoint's `audience` if the service is configured with a different one")
        );
        let expired = support::fhir_server::jwt(
            &json!({"aud": base, "exp": now - 600, "roles": [EXPORTER]}),
        );
        let (h, _) = http(0);
        let fhir = FhirClient::new(&base, h, Some(bearer(&server, expired)));
        let msg = fhir.kick_off_export("$export", &[]).await.unwrap_err().to_string();
        assert!(msg.starts_with("the token expired at ") && msg.contains("(10 min ago); fix: get a new token"), "{msg}");
        let (h, _) = http(0);
        let fhir = FhirClient::new(&base, h, Some(bearer(&server, "not-a-jwt".into())));
        let msg = fhir.kick_off_export("$export", &[]).await.unwrap_err().to_string();
        assert!(msg.starts_with("the token cannot be checked: it is not a JWT"), "{msg}");
        // None of these reached the service.
        assert!(statuses(&server, "/$export").is_empty());
    });
}

fn client_secret(server: &FhirTestServer, tenant: &str, id: &str, secret: &str) -> AuthConfig {
    AuthConfig::ClientSecret {
        tenant_id: tenant.into(),
        client_id: id.into(),
        client_secret: Secret::new(secret),
        authority_host: Some(server.base().into()),
    }
}

#[test]
fn issue5_client_credentials_token_is_cached_and_refreshed_before_expiry() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        server.register_client("contoso", "app-1", "s3cret-value", &[IMPORTER]);
        let clock = Arc::new(MovableClock(AtomicI64::new(0)));
        let (h, _) = http(0);
        let tokens = Arc::new(
            TokenProvider::new(
                client_secret(&server, "contoso", "app-1", "s3cret-value"),
                &format!("{}/", server.base()),
                None,
                h.clone(),
            )
            .with_clock(clock.clone()),
        );
        assert_eq!(tokens.scope(), format!("{}/.default", server.base()));
        let t1 = tokens.token().await.unwrap();
        assert_eq!(t1.claims.aud, vec![server.base().to_string()]);
        assert_eq!(t1.claims.roles, vec![IMPORTER]);
        tokens.token().await.unwrap();
        assert_eq!(
            server.token_requests(),
            1,
            "the second call is served from the cache"
        );
        // 56 minutes later the token has 4 minutes left: refreshed.
        clock.0.store(56 * 60, Ordering::Relaxed);
        tokens.token().await.unwrap();
        assert_eq!(server.token_requests(), 2);
        assert!(
            !format!("{t1:?}").contains(t1.bearer()),
            "Debug hides the token"
        );

        // The token works against the service: the import handler is reached (and rejects
        // the empty input list).
        clock.0.store(0, Ordering::Relaxed);
        let fhir = FhirClient::new(server.base(), h, Some(tokens));
        let msg = fhir
            .kick_off_import(&import_parameters("InitialLoad", &[]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.ends_with("Value of the following parameter input is invalid."),
            "{msg}"
        );
    });
}

#[test]
fn issue5_entra_errors_are_mapped_to_fixes() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        server.register_client("contoso", "app-1", "s3cret-value", &[IMPORTER]);
        let get = |cfg: AuthConfig, audience: Option<&str>| {
            let (h, _) = http(0);
            let p = TokenProvider::new(cfg, server.base(), audience, h);
            async move { p.token().await.unwrap_err().to_string() }
        };
        let m = get(client_secret(&server, "fabrikam", "app-1", "s3cret-value"), None).await;
        assert!(m.starts_with("client_secret: the token request was refused (AADSTS90002): POST "), "{m}");
        assert!(m.contains("Tenant 'fabrikam' not found."), "{m}");
        assert!(m.ends_with("fix: the tenant is not found: check tenant_id (the Directory ID GUID or a verified domain) and the authority host for sovereign clouds"), "{m}");

        let m = get(client_secret(&server, "contoso", "app-2", "s3cret-value"), None).await;
        assert!(m.contains("(AADSTS700016)") && m.contains("Application with identifier 'app-2' was not found in the directory 'contoso'."), "{m}");
        assert!(m.ends_with("fix: the application (client_id) is not found in the tenant: check client_id and tenant_id (the app must be registered in, or consented to by, that tenant)"), "{m}");

        let m = get(client_secret(&server, "contoso", "app-1", "secret-id-not-value"), None).await;
        assert!(m.contains("HTTP 401 Unauthorized") && m.contains("(AADSTS7000215)"), "{m}");
        assert!(m.contains("fix: the client secret is wrong: use the secret's Value"), "{m}");
        assert!(!m.contains("secret-id-not-value"), "the secret is never printed: {m}");

        let m = get(
            client_secret(&server, "contoso", "app-1", "s3cret-value"),
            Some("https://other.fhir.azurehealthcareapis.com"),
        )
        .await;
        assert!(m.contains("(AADSTS500011)"), "{m}");
        assert!(m.ends_with("fix: the resource principal is not found in the tenant: the token must be requested for the FHIR service URL exactly, scope https://other.fhir.azurehealthcareapis.com/.default; check the URL (workspace and service name, no trailing slash) and that the service is in this tenant"), "{m}");

        // Unreachable authority.
        let m = get(
            AuthConfig::ClientSecret {
                tenant_id: "contoso".into(),
                client_id: "app-1".into(),
                client_secret: Secret::new("x"),
                authority_host: Some("http://127.0.0.1:9".into()),
            },
            None,
        )
        .await;
        assert!(m.starts_with("client_secret: cannot get a token: POST http://127.0.0.1:9/contoso/oauth2/v2.0/token: cannot connect"), "{m}");
        assert!(m.ends_with("fix: check network access to http://127.0.0.1:9/contoso/oauth2/v2.0/token (firewall, proxy, DNS)"), "{m}");
    });
}

#[test]
fn issue5_managed_identity_through_imds() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        let mi = |client_id: Option<&str>| AuthConfig::ManagedIdentity {
            client_id: client_id.map(str::to_string),
            imds_endpoint: Some(server.base().to_string()),
        };
        let (h, _) = http(0);
        let m = TokenProvider::new(mi(None), server.base(), None, h)
            .token()
            .await
            .unwrap_err()
            .to_string();
        assert!(m.starts_with("managed_identity: the token request was refused: GET "), "{m}");
        assert!(m.ends_with("HTTP 400 Bad Request [x-ms-request-id: req-0001]: Identity not found; fix: assign a managed identity to the Azure resource fhirpipe runs on (system-assigned), or set client_id to the user-assigned identity attached to it"), "{m}");

        server.set_managed_identity(Some("mi-client"), &[EXPORTER]);
        let (h, _) = http(0);
        let t = TokenProvider::new(mi(Some("mi-client")), server.base(), None, h)
            .token()
            .await
            .unwrap();
        assert_eq!(t.claims.aud, vec![server.base().to_string()]);
        assert_eq!(t.claims.oid.as_deref(), Some("oid-managed-identity"));
        let (h, _) = http(0);
        let m = TokenProvider::new(mi(Some("other")), server.base(), None, h)
            .token()
            .await
            .unwrap_err()
            .to_string();
        assert!(m.contains("Identity not found"), "{m}");
    });
}

#[test]
fn issue5_clock_skew_is_detected_on_a_fresh_token() {
    let rt = rt();
    rt.block_on(async {
        for (offset, lifetime, expected) in [
            (900, 3600, "the local clock is behind by about 15 min compared with the token issuer (the token was issued in the local clock's future)"),
            (-7200, 3600, "the local clock is ahead by about 120 min compared with the token issuer (a token just issued already looks expired)"),
        ] {
            let server = FhirTestServer::start(ServerOptions {
                issuer_clock_offset: offset,
                token_lifetime: lifetime,
                ..ServerOptions::default()
            })
            .await;
            server.register_client("contoso", "app-1", "v", &[IMPORTER]);
            let (h, _) = http(0);
            let m = TokenProvider::new(client_secret(&server, "contoso", "app-1", "v"), server.base(), None, h)
                .token()
                .await
                .unwrap_err()
                .to_string();
            assert!(m.starts_with(expected), "{m}");
            assert!(m.ends_with("fix: synchronise the clock (NTP, e.g. `timedatectl set-ntp true`)"), "{m}");
        }
    });
}

#[cfg(unix)]
#[test]
fn issue5_azure_cli_token_and_its_failures() {
    use std::os::unix::fs::PermissionsExt;
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p.to_string_lossy().into_owned()
        };
        let args = dir.path().join("args");
        let ok = script(
            "az-ok",
            &format!(
                "echo \"$@\" > {}\necho '{{\"accessToken\": \"{}\", \"tokenType\": \"Bearer\"}}'",
                args.display(),
                server.token(&[EXPORTER])
            ),
        );
        let cli = |az: String| AuthConfig::AzureCli { az: Some(az) };
        let (h, _) = http(0);
        let t = TokenProvider::new(cli(ok), server.base(), None, h).token().await.unwrap();
        assert_eq!(t.claims.roles, vec![EXPORTER]);
        assert_eq!(
            std::fs::read_to_string(&args).unwrap().trim(),
            format!("account get-access-token --resource {} --output json", server.base())
        );

        let login = script("az-login", "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1");
        let (h, _) = http(0);
        let m = TokenProvider::new(cli(login), server.base(), None, h).token().await.unwrap_err().to_string();
        assert_eq!(m, "azure_cli: the token request was refused: az account get-access-token failed: ERROR: Please run 'az login' to setup account.; fix: run `az login` (or `az login --service-principal` / `--identity`) as the user fhirpipe runs as");

        let (h, _) = http(0);
        let m = TokenProvider::new(cli("/nonexistent/az".into()), server.base(), None, h).token().await.unwrap_err().to_string();
        assert_eq!(m, "azure_cli: cannot get a token: the Azure CLI (`az`) is not installed or not on PATH; fix: install the Azure CLI and run `az login`, set auth.az to its path, or use another auth method");
    });
}

fn patient(id: &str, updated: &str) -> String {
    json!({"resourceType": "Patient", "id": id, "meta": {"versionId": "1", "lastUpdated": updated}})
        .to_string()
}

#[test]
fn issue5_export_kick_off_polls_with_retry_after_and_x_progress_then_manifest() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let container = az.fresh_container("export");
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions {
            storage: Some(az.clone()),
            export_container: Some(container.clone()),
            polls_before_done: 2,
            retry_after_secs: 4,
            ..ServerOptions::default()
        })
        .await;
        let patients: Vec<String> = (1..=3)
            .map(|i| patient(&format!("p{i}"), &format!("2026-11-0{i}T00:00:00Z")))
            .collect();
        server.seed("Patient", &patients);
        let obs = vec![json!({"resourceType":"Observation","id":"o1","meta":{"lastUpdated":"2026-11-02T00:00:00Z"}}).to_string()];
        server.seed("Observation", &obs);
        server.seed("Encounter", &[json!({"resourceType":"Encounter","id":"e1"}).to_string()]);
        let (h, rec) = http(2);
        let fhir = FhirClient::new(server.base(), h, Some(bearer(&server, server.token(&[EXPORTER]))));

        let loc = fhir
            .kick_off_export("$export", &[("_type", "Patient,Observation")])
            .await
            .unwrap();
        assert!(loc.starts_with(&format!("{}/_operations/export/", server.base())), "{loc}");
        let mut seen: Vec<Progress> = Vec::new();
        let manifest = fhir
            .poll(Operation::Export, &loc, &mut |p: &Progress| seen.push(p.clone()))
            .await
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].x_progress.as_deref(), Some("In progress"));
        assert_eq!((seen[1].polls, seen[1].wait), (2, secs(4)));
        assert_eq!(rec.waits(), vec![secs(4), secs(4)]);
        assert_eq!(
            manifest["request"],
            format!("{}/$export?_type=Patient,Observation", server.base())
        );
        assert_eq!(manifest["requiresAccessToken"], false);
        assert_eq!(manifest["error"], json!([]));
        let out = manifest["output"].as_array().unwrap();
        let types: Vec<(&str, u64)> = out
            .iter()
            .map(|o| (o["type"].as_str().unwrap(), o["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(types, vec![("Observation", 1), ("Patient", 3)]);
        // Azure's layout: <container>/<yyyyMMddTHHmmss>-<id>/<Type>-<n>.ndjson.
        let re = regex::Regex::new(&format!(
            r"^{}/{}/\d{{8}}T\d{{6}}-[0-9a-f]{{8}}/Patient-1\.ndjson$",
            regex::escape(&az.endpoint()),
            container
        ))
        .unwrap();
        let url = out[1]["url"].as_str().unwrap();
        assert!(re.is_match(url), "{url}");
        let name = url.split_once(&format!("/{container}/")).unwrap().1;
        let blob = az.get_blob(&container, name).unwrap();
        assert_eq!(blob.status, 200);
        assert_eq!(blob.body.lines().collect::<Vec<_>>(), patients);

        // _since keeps what changed since (the next run's watermark).
        let loc = fhir
            .kick_off_export("Patient/$export", &[("_type", "Patient"), ("_since", "2026-11-02T00:00:00Z")])
            .await
            .unwrap();
        let manifest = fhir.poll(Operation::Export, &loc, &mut |_| {}).await.unwrap();
        assert_eq!(manifest["output"][0]["count"], 2);
        assert!(manifest["transactionTime"].as_str().unwrap().ends_with('Z'));

        // Group export needs the group.
        let m = fhir.kick_off_export("Group/g1/$export", &[]).await.unwrap_err().to_string();
        assert!(m.contains("HTTP 404 Not Found") && m.ends_with("Resource type 'Group' with id 'g1' couldn't be found."), "{m}");
    });
}

/// Sends `body` to `$import` and returns the 400's diagnostics.
async fn rejected(fhir: &FhirClient, body: &Value) -> String {
    match fhir.kick_off_import(body).await.unwrap_err() {
        FhirError::Http(e) => {
            assert_eq!(e.status, Some(400), "{e}");
            assert!(e.request_id.is_some());
            e.body.unwrap()
        }
        other => panic!("expected a 400, got {other}"),
    }
}

#[test]
fn issue5_import_rejects_exactly_what_the_service_rejects() {
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions {
            import_storage: Some("https://importacct.blob.core.windows.net".into()),
            ..ServerOptions::default()
        })
        .await;
        let (h, _) = http(0);
        let token = server.token(&[IMPORTER]);
        let fhir = FhirClient::new(server.base(), h.clone(), Some(bearer(&server, token.clone())));
        let acct = "https://importacct.blob.core.windows.net/staging";
        let one = |ty: &str, url: &str| import_parameters("InitialLoad", &[(ty, url)]);

        assert_eq!(
            rejected(&fhir, &json!({"resourceType": "Bundle"})).await,
            "Import request must be specified as a Paramters. The body provided in this request is not valid."
        );
        let mut bad_format = one("Patient", &format!("{acct}/Patient-1.ndjson"));
        bad_format["parameter"][0]["valueString"] = json!("application/json");
        assert_eq!(rejected(&fhir, &bad_format).await, "Value of the following parameter inputFormat is invalid.");
        assert_eq!(
            rejected(&fhir, &import_parameters("IncrementalLoad", &[])).await,
            "Value of the following parameter input is invalid."
        );
        let urls: Vec<String> = (0..=MAX_IMPORT_INPUTS).map(|i| format!("{acct}/Patient-{i}.ndjson")).collect();
        let many: Vec<(&str, &str)> = urls.iter().map(|u| ("Patient", u.as_str())).collect();
        assert_eq!(
            rejected(&fhir, &import_parameters("InitialLoad", &many)).await,
            "The number of input files 10001 exceeds the maximum of 10000."
        );
        let dup = format!("{acct}/Patient-1.ndjson");
        assert_eq!(
            rejected(&fhir, &import_parameters("InitialLoad", &[("Patient", &dup), ("Patient", &dup)])).await,
            format!("Duplicate input files: {dup}.")
        );
        assert_eq!(
            rejected(&fhir, &one("Patients", &format!("{acct}/Patient-1.ndjson"))).await,
            "The resource type 'Patients' is not supported."
        );
        assert_eq!(
            rejected(&fhir, &one("Patient", &format!("{acct}/Patient-1.ndjson?sv=2022-11-02&sig=abc"))).await,
            "Value of the following parameter input.url is invalid."
        );
        assert_eq!(
            rejected(&fhir, &one("Patient", "https://otheracct.blob.core.windows.net/staging/Patient-1.ndjson")).await,
            "The input URL is not on the storage account configured for import."
        );
        // Without `Prefer: respond-async` (fhirpipe always sends it; sent by hand here).
        let body = one("Patient", &format!("{acct}/Patient-1.ndjson")).to_string();
        let err = h
            .send(reqwest::Method::POST, &format!("{}/$import", server.base()), Idempotency::NotIdempotent, |r| {
                r.bearer_auth(&token).header("Content-Type", "application/fhir+json").body(body.clone())
            })
            .await
            .unwrap_err();
        assert_eq!((err.status, err.body.as_deref()), (Some(400), Some("The Prefer header must be respond-async.")));
    });
}

#[test]
fn issue5_import_completes_with_counts_and_error_files_for_bad_lines() {
    let Some(az) = Azurite::start() else { return };
    let az = Arc::new(az);
    let staging = az.fresh_container("staging");
    let logs = az.fresh_container("fhirlogs");
    let good: Vec<String> = (1..=3)
        .map(|i| patient(&format!("p{i}"), "2026-11-01T00:00:00Z"))
        .collect();
    let mut text = good.join("\n");
    text.push_str("\n{\"resourceType\": \"Patient\", \"id\": \n");
    text.push_str(&json!({"resourceType": "Observation", "id": "o1"}).to_string());
    text.push('\n');
    assert_eq!(
        az.put_blob(&staging, "run-1/Patient-1.ndjson", text.as_bytes())
            .unwrap()
            .status,
        201
    );
    let rt = rt();
    rt.block_on(async {
        let server = FhirTestServer::start(ServerOptions {
            storage: Some(az.clone()),
            error_container: Some(logs.clone()),
            polls_before_done: 1,
            ..ServerOptions::default()
        })
        .await;
        let (h, _) = http(0);
        let fhir = FhirClient::new(
            server.base(),
            h,
            Some(bearer(&server, server.token(&[IMPORTER]))),
        );
        let url = format!("{}/{staging}/run-1/Patient-1.ndjson", az.endpoint());
        let loc = fhir
            .kick_off_import(&import_parameters("IncrementalLoad", &[("Patient", &url)]))
            .await
            .unwrap();
        assert!(loc.starts_with(&format!("{}/_operations/import/", server.base())));
        let done = fhir
            .poll(Operation::Import, &loc, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(done["request"], format!("{}/$import", server.base()));
        assert_eq!(
            done["output"],
            json!([{"type": "Patient", "count": 3, "inputUrl": url}])
        );
        let err = &done["error"][0];
        assert_eq!(
            (
                err["type"].as_str(),
                err["count"].as_u64(),
                err["inputUrl"].as_str()
            ),
            (Some("Patient"), Some(2), Some(url.as_str()))
        );
        let err_url = err["url"].as_str().unwrap();
        let name = err_url.split_once(&format!("/{logs}/")).unwrap().1;
        let lines: Vec<Value> = az
            .get_blob(&logs, name)
            .unwrap()
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let diags: Vec<&str> = lines
            .iter()
            .map(|l| l["issue"][0]["diagnostics"].as_str().unwrap())
            .collect();
        assert_eq!(
            diags,
            vec![
                "Failed to process line #4: Failed to parse the resource.",
                "Failed to process line #5: The resource type is not Patient."
            ]
        );
        assert_eq!(server.resources("Patient"), good);
    });
}
