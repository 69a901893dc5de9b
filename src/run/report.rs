//! The run report: counts per type and in total, per-sink output, bytes and durations, and the
//! conservation check `read = written + dead_lettered + filtered`. Serialized by `--report`,
//! printed as a table at the end of a run.

use crate::util::format_bytes;
use serde::Serialize;
use std::collections::BTreeMap;

/// The four counts of conservation.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Non-blank input lines.
    pub read: u64,
    /// Records every sink wrote.
    pub written: u64,
    /// Lines in the dead-letter output.
    pub dead_lettered: u64,
    /// Records dropped on purpose (type filter).
    pub filtered: u64,
}

impl Counts {
    /// Does `read = written + dead_lettered + filtered` hold?
    pub fn balanced(&self) -> bool {
        self.read == self.written + self.dead_lettered + self.filtered
    }
}

/// One sink's output.
#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    /// `parquet`, `ndjson`, `dead_letter`.
    pub kind: &'static str,
    /// Output folder.
    pub path: String,
    /// Records (or dead-letter lines) written.
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Files committed, relative to `path`.
    pub files: Vec<String>,
    /// Time spent writing, ms.
    pub busy_ms: u64,
}

/// Input volume.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BytesReport {
    /// Bytes read from storage (compressed size for gzip).
    pub read: u64,
    /// Bytes of NDJSON text after decompression.
    pub input_text: u64,
    /// Input files.
    pub input_files: u64,
}

/// Wall and busy times.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Durations {
    /// Whole run, ms.
    pub total_ms: u64,
    /// Reading and line splitting, ms.
    pub read_ms: u64,
    /// Parsing and checks, summed over workers, ms.
    pub parse_ms: u64,
    /// Committing outputs, ms.
    pub commit_ms: u64,
}

/// A failed conservation equation.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// Resource type (or `_unknown`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// What does not add up.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Pipeline name.
    pub pipeline: String,
    /// Definition file.
    pub definition: String,
    /// `success`, `success_with_dead_letters`, or `failed`.
    pub status: String,
    /// The process exit code.
    pub exit_code: i32,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// Totals over all types.
    pub totals: Counts,
    /// Empty or whitespace-only lines skipped.
    pub blank_lines: u64,
    /// Counts per resource type (`_unknown` for lines whose type could not be read).
    pub types: BTreeMap<String, Counts>,
    /// Outputs by sink name (`dead_letter` for the dead-letter output).
    pub sinks: BTreeMap<String, SinkReport>,
    /// Input volume.
    pub bytes: BytesReport,
    /// Times.
    pub durations: Durations,
    /// Conservation holds for every type and every sink.
    pub conservation_ok: bool,
    /// What did not add up.
    pub violations: Vec<Violation>,
}

fn rate(n: f64, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        n * 1000.0 / ms as f64
    }
}

impl RunReport {
    /// The human summary table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let w = self.types.keys().map(|k| k.len()).max().unwrap_or(4).max(5);
        s.push_str(&format!(
            "{:<w$}  {:>12}  {:>12}  {:>13}  {:>10}\n",
            "type", "read", "written", "dead-lettered", "filtered"
        ));
        for (t, c) in &self.types {
            s.push_str(&format!(
                "{:<w$}  {:>12}  {:>12}  {:>13}  {:>10}\n",
                t, c.read, c.written, c.dead_lettered, c.filtered
            ));
        }
        let c = &self.totals;
        s.push_str(&format!(
            "{:<w$}  {:>12}  {:>12}  {:>13}  {:>10}\n",
            "TOTAL", c.read, c.written, c.dead_lettered, c.filtered
        ));
        if self.blank_lines > 0 {
            s.push_str(&format!("blank lines skipped: {}\n", self.blank_lines));
        }
        for (name, sk) in &self.sinks {
            s.push_str(&format!(
                "sink {name} ({}): {} records, {} files, {} → {}\n",
                sk.kind,
                sk.records,
                sk.files.len(),
                format_bytes(sk.bytes),
                sk.path
            ));
        }
        let d = &self.durations;
        s.push_str(&format!(
            "read {} in {} files; {:.1} s, {:.1} MB/s, {:.0} resources/s\n",
            format_bytes(self.bytes.input_text),
            self.bytes.input_files,
            d.total_ms as f64 / 1000.0,
            rate(self.bytes.input_text as f64, d.total_ms) / 1e6,
            rate(self.totals.read as f64, d.total_ms)
        ));
        if self.conservation_ok {
            s.push_str(
                "conservation: read = written + dead-lettered + filtered holds for every type\n",
            );
        } else {
            s.push_str("CONSERVATION FAILED:\n");
            for v in &self.violations {
                s.push_str(&format!("  {}: {}\n", v.type_name, v.detail));
            }
        }
        s.push_str(&format!(
            "status: {} (exit code {})\n",
            self.status, self.exit_code
        ));
        if let Some(e) = &self.error {
            s.push_str(&format!("error: {e}\n"));
        }
        s
    }
}
