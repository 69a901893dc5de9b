//! `fhirpipe doctor`: checks each FHIR endpoint a pipeline uses, in order, and says what to
//! fix: DNS, TCP connectivity (with a private-endpoint hint), TLS, `/metadata` and the bulk
//! operation in the CapabilityStatement, clock skew against the server's `Date`, the token
//! (AADSTS errors, audience, expiry, skew), and 401 vs 403 with the data-plane role the
//! operation needs. A failed check stops the checks of that endpoint that depend on it.
//! [`storage`] checks the pipeline's blob locations (list, read, write) the same way.

pub mod storage;

use crate::auth::TokenProvider;
use crate::config::{FhirEndpointPlan, Plan, SinkKindPlan, SourcePlan};
use crate::fhirclient::{FhirClient, FhirError, Operation};
use crate::http::{HttpClient, HttpConfig, HttpErrorKind, RetryPolicy};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Ok,
    /// Failed: the pipeline will not work until fixed.
    Fail,
    /// Could not be verified from here; the fix says how to check it by hand.
    Note,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short name: `DNS`, `connect`, `TLS`, `/metadata`, `$export`, `clock`, `token`, `access`.
    pub check: String,
    /// Passed or failed.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do, for a failure.
    pub fix: Option<String>,
}

/// The findings of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    /// `source (fhir_export)`, `sinks.target (fhir_import)`.
    pub title: String,
    /// Its base URL.
    pub url: String,
    /// In check order.
    pub findings: Vec<Finding>,
}

impl EndpointReport {
    /// True when a check failed.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.outcome == Outcome::Fail)
    }
}

/// Largest difference between the local clock and the server's accepted (Entra's limit).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The FHIR endpoints of a plan with the operation each is used for.
pub fn endpoints(plan: &Plan) -> Vec<(String, &FhirEndpointPlan, Operation)> {
    let mut out = Vec::new();
    if let SourcePlan::FhirExport(e) = &plan.source {
        out.push((
            "source (fhir_export)".to_string(),
            &e.endpoint,
            Operation::Export,
        ));
    }
    for s in &plan.sinks {
        if let SinkKindPlan::FhirImport(i) = &s.kind {
            out.push((
                format!("sinks.{} (fhir_import)", s.name),
                &i.endpoint,
                Operation::Import,
            ));
        }
    }
    out
}

/// The HTTP settings of doctor: short timeouts, one retry.
pub fn http_config() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
        },
    }
}

fn ok(check: &str, detail: String) -> Finding {
    Finding {
        check: check.into(),
        outcome: Outcome::Ok,
        detail,
        fix: None,
    }
}

fn fail(check: &str, detail: String, fix: String) -> Finding {
    Finding {
        check: check.into(),
        outcome: Outcome::Fail,
        detail,
        fix: Some(fix),
    }
}

/// Splits `…; fix: …` messages (auth and FHIR errors) into detail and fix.
fn split_fix(check: &str, msg: &str) -> Finding {
    match msg.rsplit_once("; fix: ") {
        Some((d, f)) => fail(check, d.to_string(), f.to_string()),
        None => fail(check, msg.to_string(), "see the message".to_string()),
    }
}

/// True for an address on the public internet (not private, loopback, link-local, CGNAT…).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
    }
}

/// The connect failure's finding; a public address that refuses is the private-endpoint case.
pub fn connect_failure(host: &str, addr: SocketAddr, error: &str) -> Finding {
    let detail = format!("cannot connect to {addr} ({host}): {error}");
    if is_public(addr.ip()) {
        fail(
            "connect",
            detail,
            format!(
                "{host} resolves to the public address {} but does not accept connections: if the \
service has public network access disabled and a private endpoint, this machine must resolve \
{host} through the private DNS zone (privatelink.fhir.azurehealthcareapis.com) to the private \
endpoint's address: run from a network linked to that zone, or allow this network in the \
service's Networking settings",
                addr.ip()
            ),
        )
    } else {
        fail(
            "connect",
            detail,
            format!(
                "check that the service listens on port {} and that firewalls / network security \
groups between here and {} allow it",
                addr.port(),
                addr.ip()
            ),
        )
    }
}

fn is_tls_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "ssl",
        "handshake",
        "corrupt message",
        "unknownissuer",
    ]
    .iter()
    .any(|k| t.contains(k))
}

/// Runs the checks of one endpoint.
pub async fn check_endpoint(
    title: &str,
    ep: &FhirEndpointPlan,
    op: Operation,
    http: &HttpClient,
) -> EndpointReport {
    let mut report = EndpointReport {
        title: title.to_string(),
        url: ep.url.clone(),
        findings: Vec::new(),
    };
    let f = &mut report.findings;
    let Ok(url) = reqwest::Url::parse(&ep.url) else {
        f.push(fail(
            "URL",
            format!("`{}` is not a URL", ep.url),
            format!("fix {}.url", ep.field),
        ));
        return report;
    };
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);

    // DNS.
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            f.push(fail(
                "DNS",
                format!("cannot resolve {host}: {e}"),
                format!(
                    "check the host name in {}.url (Azure Health Data Services: \
https://<workspace>-<service>.fhir.azurehealthcareapis.com) and this machine's DNS; behind a \
private endpoint, the private DNS zone privatelink.fhir.azurehealthcareapis.com must be linked \
to this network",
                    ep.field
                ),
            ));
            return report;
        }
        Err(_) => {
            f.push(fail(
                "DNS",
                format!("resolving {host} timed out after 10 s"),
                "check this machine's DNS servers".into(),
            ));
            return report;
        }
    };
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    f.push(ok(
        "DNS",
        format!("{host} resolves to {}", shown.join(", ")),
    ));

    // TCP.
    let mut last_err = None;
    let mut connected = None;
    for a in &addrs {
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(a)).await
        {
            Ok(Ok(_)) => {
                connected = Some(*a);
                break;
            }
            Ok(Err(e)) => last_err = Some((*a, e.to_string())),
            Err(_) => last_err = Some((*a, "timed out after 5 s".to_string())),
        }
    }
    match connected {
        Some(a) => f.push(ok("connect", format!("{a} accepts connections"))),
        None => {
            let (a, e) =
                last_err.unwrap_or((SocketAddr::from(([0, 0, 0, 0], port)), "no address".into()));
            f.push(connect_failure(&host, a, &e));
            return report;
        }
    }

    // TLS and /metadata.
    let anon = FhirClient::new(&ep.url, http.clone(), None);
    let cap = match anon.capability().await {
        Ok(c) => c,
        Err(FhirError::Http(e)) => {
            if let HttpErrorKind::Transport(t) = &e.kind {
                if url.scheme() == "https" && is_tls_error(t) {
                    f.push(fail(
                        "TLS",
                        format!("TLS with {host}:{port} failed: {t}"),
                        "check that the URL's scheme and port are the service's HTTPS endpoint; \
behind a TLS-inspecting proxy, add the proxy's CA certificate to the system trust store"
                            .into(),
                    ));
                    return report;
                }
            }
            f.push(fail(
                "/metadata",
                e.to_string(),
                format!(
                    "{}.url must be the FHIR service base URL, whose /metadata answers with a \
CapabilityStatement",
                    ep.field
                ),
            ));
            return report;
        }
        Err(e) => {
            f.push(split_fix("/metadata", &e.to_string()));
            return report;
        }
    };
    if url.scheme() == "https" {
        f.push(ok("TLS", "certificate trusted".into()));
    }
    f.push(ok(
        "/metadata",
        format!(
            "FHIR {}; operations: {}",
            cap.fhir_version.as_deref().unwrap_or("?"),
            if cap.operations.is_empty() {
                "none".to_string()
            } else {
                cap.operations.join(", ")
            }
        ),
    ));
    let (op_name, op_check) = match op {
        Operation::Import => ("import", "$import"),
        _ => ("export", "$export"),
    };
    if cap.operations.iter().any(|o| o == op_name) {
        f.push(ok(
            op_check,
            format!("`{op_name}` is in the CapabilityStatement"),
        ));
    } else {
        let fix = if op == Operation::Import {
            "enable import on the FHIR service (Import settings: initial or incremental mode) and \
configure its import storage account; check the URL is the FHIR service itself"
        } else {
            "configure the FHIR service's export storage account (and its managed identity's \
Storage Blob Data Contributor role on it); check the URL is the FHIR service itself"
        };
        f.push(fail(
            op_check,
            format!("the CapabilityStatement does not list the `{op_name}` operation"),
            fix.into(),
        ));
    }

    // Clock skew against the server's Date.
    if let Some(server) = cap.server_date {
        let local = SystemTime::now();
        let (ahead, diff) = match local.duration_since(server) {
            Ok(d) => (true, d),
            Err(e) => (false, e.duration()),
        };
        if diff > MAX_CLOCK_SKEW {
            f.push(fail(
                "clock",
                format!(
                    "the local clock is {} the server's Date by {} min",
                    if ahead { "ahead of" } else { "behind" },
                    (diff.as_secs() + 30) / 60
                ),
                "synchronise the clock (NTP, e.g. `timedatectl set-ntp true`): Entra and the FHIR \
service allow 5 minutes"
                    .into(),
            ));
        } else {
            f.push(ok(
                "clock",
                format!("within {} s of the server's Date", diff.as_secs()),
            ));
        }
    }

    // Token.
    let tokens = Arc::new(TokenProvider::new(
        ep.auth.clone(),
        &ep.url,
        ep.audience.as_deref(),
        http.clone(),
    ));
    let check = format!("token ({})", ep.auth.method());
    match tokens.token().await {
        Ok(t) => {
            let c = &t.claims;
            f.push(ok(
                &check,
                format!(
                    "aud {}, expires {}{}",
                    c.aud.join(", "),
                    c.exp
                        .map(crate::util::calendar::rfc3339_utc)
                        .unwrap_or_default(),
                    c.oid
                        .as_ref()
                        .map(|o| format!(", oid {o}"))
                        .unwrap_or_default()
                ),
            ));
        }
        Err(e) => {
            f.push(split_fix(&check, &e.to_string()));
            return report;
        }
    }

    // 401 / 403.
    let client = FhirClient::new(&ep.url, http.clone(), Some(tokens));
    match client.probe(op).await {
        Ok(_) => f.push(ok(
            "access",
            format!(
                "the token is accepted and the principal may use {op_check} ({})",
                op.roles()
            ),
        )),
        Err(e) => f.push(split_fix("access", &e.to_string())),
    }
    report
}

/// Checks every FHIR endpoint of `plan`, in order.
pub async fn run(plan: &Plan) -> Result<Vec<EndpointReport>, crate::http::HttpError> {
    let http = HttpClient::new(&http_config())?;
    let mut out = Vec::new();
    for (title, ep, op) in endpoints(plan) {
        out.push(check_endpoint(&title, ep, op, &http).await);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_and_the_private_endpoint_hint() {
        for (ip, public) in [
            ("20.42.1.7", true),
            ("10.0.0.4", false),
            ("172.16.3.1", false),
            ("192.168.1.1", false),
            ("127.0.0.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("2603:1030::1", true),
            ("fd00::1", false),
        ] {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
        let f = connect_failure(
            "ws-fhir.fhir.azurehealthcareapis.com",
            "20.42.1.7:443".parse().unwrap(),
            "connection refused",
        );
        assert_eq!(f.outcome, Outcome::Fail);
        assert_eq!(f.detail, "cannot connect to 20.42.1.7:443 (ws-fhir.fhir.azurehealthcareapis.com): connection refused");
        assert!(f.fix.unwrap().starts_with("ws-fhir.fhir.azurehealthcareapis.com resolves to the public address 20.42.1.7 but does not accept connections: if the service has public network access disabled and a private endpoint"));
        let f = connect_failure("h", "10.0.0.4:443".parse().unwrap(), "connection refused");
        assert!(f
            .fix
            .unwrap()
            .starts_with("check that the service listens on port 443"));
    }

    #[test]
    fn fixes_are_split_from_messages() {
        let f = split_fix(
            "token",
            "the token expired at X (3 min ago); fix: get a new token",
        );
        assert_eq!(
            (f.detail.as_str(), f.fix.as_deref()),
            (
                "the token expired at X (3 min ago)",
                Some("get a new token")
            )
        );
    }
}
