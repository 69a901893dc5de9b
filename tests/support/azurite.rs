//! Azurite, the Azure Blob storage emulator, for integration tests: started on 127.0.0.1 on a
//! free port with its own data folder, awaited until it answers, stopped by PID on drop.
//! Plus the few management calls object_store cannot make (creating containers), signed
//! with SharedKey over a plain HTTP/1.1 connection.
//!
//! Azurite comes from `node_modules/` (`npm ci`, pinned in package.json). When it is missing
//! the tests fail under CI=true and skip with a printed reason elsewhere. No flags relax its
//! checks (no `--loose`, no `--skipApiVersionCheck`): the tests run against strict Azurite.

use base64::Engine as _;
use fhirpipe::util::calendar::civil_from_days;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented by Microsoft).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const API_VERSION: &str = "2025-01-05";

/// A running Azurite blob service.
pub struct Azurite {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn azurite_bin() -> PathBuf {
    repo().join("node_modules/.bin/azurite-blob")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Azurite {
    /// Starts Azurite, or returns `None` with a printed reason (panics under CI=true).
    pub fn start() -> Option<Azurite> {
        let bin = azurite_bin();
        if !bin.exists() {
            let why = format!("{} not found (run `npm ci`)", bin.display());
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but Azurite is missing: {why}");
            }
            eprintln!("SKIP: {why}; test skipped");
            return None;
        }
        let data = tempfile::tempdir().expect("temp dir for Azurite");
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--silent",
            ])
            .args(["--disableTelemetry", "--location"])
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start azurite-blob");
        let az = Azurite {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _data: data,
        };
        az.wait_ready();
        Some(az)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self
                .request("GET", "/?comp=list", &[])
                .is_ok_and(|r| r.status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Azurite did not answer on {} within 30 s", self.addr);
    }

    /// The PID of the Azurite process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The blob endpoint, path style: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.addr)
    }

    /// A connection string for this instance.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
            self.endpoint()
        )
    }

    /// An account SAS for the blob service with these permissions (e.g. `rl` for read-only),
    /// valid until 2099, signed with the account key.
    pub fn account_sas(&self, permissions: &str) -> String {
        let (sv, srt, ss, se) = (API_VERSION, "sco", "b", "2099-01-01T00:00:00Z");
        // Account SAS string-to-sign (versions 2020-12-06 and later end with the encryption
        // scope, empty here).
        let to_sign =
            format!("{ACCOUNT}\n{permissions}\n{ss}\n{srt}\n\n{se}\n\nhttps,http\n{sv}\n\n");
        let sig: String = sign(&to_sign, KEY)
            .chars()
            .map(|c| match c {
                '+' => "%2B".to_string(),
                '/' => "%2F".to_string(),
                '=' => "%3D".to_string(),
                c => c.to_string(),
            })
            .collect();
        format!("sv={sv}&ss={ss}&srt={srt}&sp={permissions}&se={se}&spr=https,http&sig={sig}")
    }

    /// Creates a container with a unique name starting with `prefix`; returns its name.
    pub fn fresh_container(&self, prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let r = self
            .request("PUT", &format!("/{name}?restype=container"), &[])
            .expect("create container");
        assert_eq!(r.status, 201, "create container {name}: {}", r.body);
        name
    }

    /// One SharedKey-signed request; `path` is below the account (`/container?query`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        self.request_with_key(method, path, headers, KEY)
    }

    /// [`Azurite::request`] signed with another account key (to test refusals).
    pub fn request_with_key(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        key: &str,
    ) -> std::io::Result<Response> {
        self.send(method, path, headers, b"", key)
    }

    /// Uploads `body` as the block blob `/container/name` (one Put Blob call).
    pub fn put_blob(&self, container: &str, name: &str, body: &[u8]) -> std::io::Result<Response> {
        self.send(
            "PUT",
            &format!("/{container}/{name}"),
            &[("x-ms-blob-type", "BlockBlob")],
            body,
            KEY,
        )
    }

    /// Downloads the blob `/container/name`; the body is the blob's text.
    pub fn get_blob(&self, container: &str, name: &str) -> std::io::Result<Response> {
        self.request("GET", &format!("/{container}/{name}"), &[])
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        key: &str,
    ) -> std::io::Result<Response> {
        let date = http_date(SystemTime::now());
        let mut ms: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date),
            ("x-ms-version".into(), API_VERSION.into()),
        ];
        ms.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())),
        );
        ms.sort();
        let auth = shared_key(method, path, &ms, body.len(), key);
        let mut req = format!(
            "{method} /{ACCOUNT}{path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\nAuthorization: {auth}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in &ms {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(req.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Response::parse(&raw)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Only the process this test started, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of an HTTP response.
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    fn parse(raw: &[u8]) -> std::io::Result<Response> {
        let text = String::from_utf8_lossy(raw);
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP response");
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok(Response { status, body })
    }
}

/// `Authorization: SharedKey account:signature` for a request with a body of `len` bytes
/// (no Content-Type, no conditions).
fn shared_key(
    method: &str,
    path: &str,
    ms_headers: &[(String, String)],
    len: usize,
    key: &str,
) -> String {
    let (p, query) = path.split_once('?').unwrap_or((path, ""));
    // Azurite's path-style URLs carry the account in the path, so it appears twice.
    let mut resource = format!("/{ACCOUNT}/{ACCOUNT}{p}");
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    params.sort();
    for (k, v) in params {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let headers: String = ms_headers
        .iter()
        .map(|(k, v)| format!("{k}:{v}\n"))
        .collect();
    // VERB, then 11 standard headers (all empty but Content-Length, which is empty when 0),
    // then ours.
    let cl = if len == 0 {
        String::new()
    } else {
        len.to_string()
    };
    let to_sign = format!("{method}\n\n\n{cl}\n\n\n\n\n\n\n\n\n{headers}{resource}");
    format!("SharedKey {ACCOUNT}:{}", sign(&to_sign, key))
}

/// Base64 HMAC-SHA256 of `to_sign` with a base64 account key.
fn sign(to_sign: &str, key: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("account keys are base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// RFC 1123 date, e.g. `Mon, 23 Nov 2026 12:00:00 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let (y, m, d) = civil_from_days(days);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
