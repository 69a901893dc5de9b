//! What an import did, for the run report: per type, resources staged = imported + rejected
//! (+ unaccounted, which is a failure), the operations with their status URLs, the error files
//! the service wrote and the first messages from them, and the IncrementalLoad warnings.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// First messages kept per type.
pub const FIRST_MESSAGES: usize = 5;

/// Per-type counts of an import.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportCounts {
    /// Resources written to staging.
    pub staged: u64,
    /// Staged files (`$import` inputs).
    pub files: u64,
    /// Resources the service reported as imported (`output[].count`).
    pub imported: u64,
    /// Resources the service rejected (`error[].count`).
    pub rejected: u64,
    /// `staged - imported - rejected`: anything but 0 is a failure.
    pub unaccounted: i64,
}

/// One message from an error file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorLine {
    /// The staged file the rejected resource came from (`error[].inputUrl`).
    pub input: String,
    /// Its line in that file, when the OperationOutcome says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// `issue[0].diagnostics`, else `issue[0].details.text`.
    pub message: String,
}

/// Rejections of one type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorSummary {
    /// Rejected resources (`error[].count`).
    pub count: u64,
    /// The first messages, in file order.
    pub first: Vec<ErrorLine>,
}

/// Resources without the meta that IncrementalLoad keeps.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct MissingMeta {
    /// Without `meta.versionId`.
    pub version_id: u64,
    /// Without `meta.lastUpdated`.
    pub last_updated: u64,
}

/// One `$import` call.
#[derive(Debug, Clone, Serialize)]
pub struct OperationReport {
    /// Inputs in the call.
    pub inputs: usize,
    /// The status URL (`Content-Location`), once kicked off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    /// `transactionTime` of the completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_time: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The import of one `fhir_import` sink.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The FHIR service.
    pub url: String,
    /// `InitialLoad` or `IncrementalLoad`.
    pub mode: &'static str,
    /// Where this run's chunks were staged (`<staging>/<run id>`).
    pub staging: String,
    /// What happened to the staged chunks: `deleted`, `kept`, `kept (keep_staged)`.
    pub staged_files: String,
    /// The equation checked per type.
    pub reconciliation: &'static str,
    /// Counts per type.
    pub types: BTreeMap<String, ImportCounts>,
    /// The calls, in order.
    pub operations: Vec<OperationReport>,
    /// Rejections per type, from the error files.
    pub errors: BTreeMap<String, ErrorSummary>,
    /// The error files' URLs.
    pub error_files: Vec<String>,
    /// IncrementalLoad: resources without `meta.versionId` / `meta.lastUpdated`, per type.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_meta: BTreeMap<String, MissingMeta>,
    /// Things to know that did not fail the run.
    pub warnings: Vec<String>,
    /// Every operation completed, nothing was rejected and every count matched.
    pub ok: bool,
}

/// The reconciliation equation, as stated in the report.
pub const RECONCILIATION: &str = "staged = imported + rejected (unaccounted must be 0)";

impl ImportReport {
    /// Adds a completion body's `output[]` and `error[]` counts; returns the error files as
    /// (type, inputUrl, url).
    pub fn add_completion(&mut self, body: &Value) -> Vec<(String, String, String)> {
        let entries = |k: &str| body[k].as_array().cloned().unwrap_or_default();
        for o in entries("output") {
            let ty = o["type"].as_str().unwrap_or("_unknown").to_string();
            self.types.entry(ty).or_default().imported += o["count"].as_u64().unwrap_or(0);
        }
        let mut files = Vec::new();
        for e in entries("error") {
            let ty = e["type"].as_str().unwrap_or("_unknown").to_string();
            let n = e["count"].as_u64().unwrap_or(0);
            self.types.entry(ty.clone()).or_default().rejected += n;
            self.errors.entry(ty.clone()).or_default().count += n;
            if let Some(url) = e["url"].as_str() {
                // A service that handed out SAS URLs must not put signatures in our report.
                let url = without_query(url);
                self.error_files.push(url.clone());
                let input = without_query(e["inputUrl"].as_str().unwrap_or(""));
                files.push((ty, input, url));
            }
        }
        files
    }

    /// Adds the first messages of one error file's text.
    pub fn add_error_file(&mut self, ty: &str, input: &str, text: &str) {
        let summary = self.errors.entry(ty.to_string()).or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if summary.first.len() >= FIRST_MESSAGES {
                break;
            }
            let (line_no, message) = error_message(line);
            summary.first.push(ErrorLine {
                input: input.to_string(),
                line: line_no,
                message,
            });
        }
    }

    /// Computes `unaccounted` per type and `ok`.
    pub fn reconcile(&mut self) {
        let mut ok = self.operations.iter().all(|o| o.error.is_none());
        for c in self.types.values_mut() {
            c.unaccounted = c.staged as i64 - c.imported as i64 - c.rejected as i64;
            ok &= c.unaccounted == 0 && c.rejected == 0;
        }
        self.ok = ok;
    }

    /// Lines for the summary table.
    pub fn table(&self, name: &str) -> String {
        let mut s = format!(
            "import {name} → {} ({}): {} operation(s), staged in {} ({})\n",
            self.url,
            self.mode,
            self.operations.len(),
            self.staging,
            self.staged_files
        );
        let w = self.types.keys().map(String::len).max().unwrap_or(4).max(5);
        s.push_str(&format!(
            "  {:<w$}  {:>10}  {:>10}  {:>10}  {:>11}\n",
            "type", "staged", "imported", "rejected", "unaccounted"
        ));
        for (t, c) in &self.types {
            s.push_str(&format!(
                "  {:<w$}  {:>10}  {:>10}  {:>10}  {:>11}\n",
                t, c.staged, c.imported, c.rejected, c.unaccounted
            ));
        }
        for (t, e) in &self.errors {
            s.push_str(&format!("  rejected {t}: {}\n", e.count));
            for l in &e.first {
                match l.line {
                    Some(n) => s.push_str(&format!("    {}:{n}: {}\n", l.input, l.message)),
                    None => s.push_str(&format!("    {}: {}\n", l.input, l.message)),
                }
            }
        }
        for o in &self.operations {
            if let Some(e) = &o.error {
                s.push_str(&format!("  operation failed: {e}\n"));
            }
        }
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        s.push_str(if self.ok {
            "  import: staged = imported for every type\n"
        } else {
            "  IMPORT INCOMPLETE: see rejected / unaccounted above\n"
        });
        s
    }
}

/// `url` without its query string and fragment.
fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_string()
}

/// The message of one error-file line (an OperationOutcome) and the line number it names.
pub fn error_message(line: &str) -> (Option<u64>, String) {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(_) => return (None, line.chars().take(300).collect()),
    };
    let issue = &v["issue"][0];
    let message = issue["diagnostics"]
        .as_str()
        .or(issue["details"]["text"].as_str())
        .unwrap_or("(no diagnostics)")
        .to_string();
    let line_no =
        line_number(&message).or_else(|| issue["details"]["text"].as_str().and_then(line_number));
    (line_no, message)
}

/// The number after `line #`, `line: ` or `line ` in a message (case-insensitive).
fn line_number(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(p) = rest.find("line") {
        let after = rest[p + 4..].trim_start_matches([' ', '#', ':']);
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
        rest = &rest[p + 4..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_lines_give_message_and_line() {
        assert_eq!(
            error_message(
                r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","details":{"text":"bad"},"diagnostics":"Failed to process line #3: bad"}]}"#
            ),
            (Some(3), "Failed to process line #3: bad".to_string())
        );
        assert_eq!(
            error_message(
                r#"{"resourceType":"OperationOutcome","issue":[{"details":{"text":"Failed to process resource at line: 12 with stream start offset: 0"}}]}"#
            ),
            (
                Some(12),
                "Failed to process resource at line: 12 with stream start offset: 0".to_string()
            )
        );
        assert_eq!(
            error_message(
                r#"{"resourceType":"OperationOutcome","issue":[{"diagnostics":"Duplicate resource"}]}"#
            ),
            (None, "Duplicate resource".to_string())
        );
        assert_eq!(error_message("not json"), (None, "not json".to_string()));
    }

    #[test]
    fn reconciliation_counts_per_type() {
        let mut r = ImportReport {
            url: "u".into(),
            mode: "InitialLoad",
            staging: "s".into(),
            staged_files: "kept".into(),
            reconciliation: RECONCILIATION,
            types: BTreeMap::new(),
            operations: vec![],
            errors: BTreeMap::new(),
            error_files: vec![],
            missing_meta: BTreeMap::new(),
            warnings: vec![],
            ok: false,
        };
        r.types.entry("Patient".into()).or_default().staged = 5;
        r.types.entry("Observation".into()).or_default().staged = 4;
        let files = r.add_completion(&json!({
            "output": [{"type": "Patient", "count": 3, "inputUrl": "p0"}, {"type": "Observation", "count": 4, "inputUrl": "o0"}],
            "error": [{"type": "Patient", "count": 1, "inputUrl": "p0", "url": "e0?sv=1&sig=SECRET"}],
        }));
        assert_eq!(files, vec![("Patient".into(), "p0".into(), "e0".into())]);
        assert_eq!(r.error_files, vec!["e0".to_string()]);
        r.reconcile();
        assert_eq!(
            r.types["Patient"],
            ImportCounts {
                staged: 5,
                files: 0,
                imported: 3,
                rejected: 1,
                unaccounted: 1
            }
        );
        assert_eq!(r.types["Observation"].unaccounted, 0);
        assert!(!r.ok);
    }
}
