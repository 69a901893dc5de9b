//! The run report: counts per type and in total, per-sink output, bytes and durations, and the
//! conservation check `read + unbundled = written + dead_lettered + filtered +
//! bundles_consumed` (without `[transform] unbundle` the last terms are 0:
//! `read = written + dead_lettered + filtered`). Serialized by `--report`, printed as a table
//! at the end of a run.

use crate::util::format_bytes;
use serde::Serialize;
use std::collections::BTreeMap;

/// The conservation equation, as stated in the report.
pub const CONSERVATION: &str =
    "read + unbundled = written + dead_lettered + filtered + bundles_consumed";

/// The counts of conservation.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Non-blank input lines.
    pub read: u64,
    /// Resources taken out of Bundle entries (`[transform] unbundle`), by the entry's type.
    pub unbundled: u64,
    /// Records every sink wrote.
    pub written: u64,
    /// Lines (or Bundle entries) in the dead-letter output.
    pub dead_lettered: u64,
    /// Resources dropped on purpose; `filtered_by` says why.
    pub filtered: u64,
    /// Bundle lines replaced by their entries (`[transform] unbundle`).
    pub bundles_consumed: u64,
    /// `filtered` by reason.
    pub filtered_by: FilteredBy,
}

/// Filtered resources by reason.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct FilteredBy {
    /// Type not in `source.types` / `transform.types`.
    #[serde(rename = "type")]
    pub types: u64,
    /// A `[transform.where]` filter was not true.
    #[serde(rename = "where")]
    pub where_: u64,
    /// `[transform] dedupe`: a newer resource with the same type and id won.
    pub duplicate: u64,
}

impl Counts {
    /// Does `read + unbundled = written + dead_lettered + filtered + bundles_consumed` hold?
    pub fn balanced(&self) -> bool {
        self.read + self.unbundled
            == self.written + self.dead_lettered + self.filtered + self.bundles_consumed
    }

    /// Adds `o` to these counts.
    pub fn add(&mut self, o: &Counts) {
        self.read += o.read;
        self.unbundled += o.unbundled;
        self.written += o.written;
        self.dead_lettered += o.dead_lettered;
        self.filtered += o.filtered;
        self.bundles_consumed += o.bundles_consumed;
        self.filtered_by.types += o.filtered_by.types;
        self.filtered_by.where_ += o.filtered_by.where_;
        self.filtered_by.duplicate += o.filtered_by.duplicate;
    }
}

/// The first pass of `[transform] dedupe`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupeReport {
    /// Resources that reached the dedupe step.
    pub candidates: u64,
    /// Distinct (type, id) among them: the winners.
    pub distinct: u64,
    /// Time of the first pass, ms.
    pub first_pass_ms: u64,
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
    /// The first pass of `[deidentify.text]` that indexes known PHI, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_phi_ms: Option<u64>,
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
    /// The equation checked per type: `read + unbundled = written + dead_lettered + filtered
    /// + bundles_consumed`.
    pub conservation: &'static str,
    /// Totals over all types.
    pub totals: Counts,
    /// Empty or whitespace-only lines skipped.
    pub blank_lines: u64,
    /// Counts per resource type (`_unknown` for lines whose type could not be read).
    pub types: BTreeMap<String, Counts>,
    /// Resources de-identified by `[deidentify]`, per type (absent without the stage).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub deidentified: BTreeMap<String, u64>,
    /// Free-text PHI found by `[deidentify.text]`: carriers examined, spans per category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deidentify_text: Option<crate::deid::text::TextReport>,
    /// Outputs by sink name (`dead_letter` for the dead-letter output).
    pub sinks: BTreeMap<String, SinkReport>,
    /// Input volume.
    pub bytes: BytesReport,
    /// The dedupe first pass, when `[transform] dedupe` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe: Option<DedupeReport>,
    /// Times.
    pub durations: Durations,
    /// What each `fhir_import` sink's `$import` did, by sink name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub imports: BTreeMap<String, crate::sink::fhir_import::ImportReport>,
    /// Conservation holds for every type and every sink.
    pub conservation_ok: bool,
    /// What did not add up.
    pub violations: Vec<Violation>,
    /// Export manifest counts, `error[]` summary and state (`fhir_export`, `export_manifest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::source::export_manifest::ExportReport>,
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
        let bundles = self.totals.unbundled > 0 || self.totals.bundles_consumed > 0;
        let row = |s: &mut String, t: &str, c: [String; 6]| {
            s.push_str(&format!(
                "{:<w$}  {:>12}  {:>12}  {:>13}  {:>10}",
                t, c[0], c[2], c[3], c[4]
            ));
            if bundles {
                s.push_str(&format!("  {:>10}  {:>10}", c[1], c[5]));
            }
            s.push('\n');
        };
        let nums = |c: &Counts| {
            [
                c.read,
                c.unbundled,
                c.written,
                c.dead_lettered,
                c.filtered,
                c.bundles_consumed,
            ]
            .map(|n| n.to_string())
        };
        row(
            &mut s,
            "type",
            [
                "read",
                "unbundled",
                "written",
                "dead-lettered",
                "filtered",
                "consumed",
            ]
            .map(String::from),
        );
        for (t, c) in &self.types {
            row(&mut s, t, nums(c));
        }
        let c = &self.totals;
        row(&mut s, "TOTAL", nums(c));
        if c.filtered > 0 {
            s.push_str(&format!(
                "filtered by reason: type {}, where {}, duplicate {}\n",
                c.filtered_by.types, c.filtered_by.where_, c.filtered_by.duplicate
            ));
        }
        if !self.deidentified.is_empty() {
            s.push_str(&format!(
                "de-identified: {} resources\n",
                self.deidentified.values().sum::<u64>()
            ));
        }
        if let Some(t) = &self.deidentify_text {
            s.push_str(&t.summary_line());
        }
        if let Some(d) = &self.dedupe {
            s.push_str(&format!(
                "dedupe: {} resources, {} distinct type/id, first pass {:.1} s\n",
                d.candidates,
                d.distinct,
                d.first_pass_ms as f64 / 1000.0
            ));
        }
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
        if let Some(e) = &self.export {
            s.push_str(&e.table());
        }
        if self.conservation_ok {
            s.push_str(if bundles {
                "conservation: read + unbundled = written + dead-lettered + filtered + consumed holds for every type\n"
            } else {
                "conservation: read = written + dead-lettered + filtered holds for every type\n"
            });
        } else if self.violations.is_empty() {
            // The check runs once all input is counted; a run that stopped earlier never got
            // there, and saying it failed would send people looking for lost records.
            s.push_str("conservation: not checked (the run stopped before every line was counted; nothing was committed)\n");
        } else {
            s.push_str("CONSERVATION FAILED:\n");
            for v in &self.violations {
                s.push_str(&format!("  {}: {}\n", v.type_name, v.detail));
            }
        }
        for (name, imp) in &self.imports {
            s.push_str(&imp.table(name));
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
