//! The `_manifest.json` a dataset sink writes at its root as the last step of a commit: the
//! run (id, pipeline, start and finish), every file the run committed (path, dataset, rows,
//! bytes, partition values) and per dataset its row and file counts and schema fingerprint.
//!
//! The commit deletes the previous manifest first and writes the new one last, so a manifest
//! that exists always describes a complete commit. It sits at the root, beside the type
//! folders, so readers globbing `<root>/<Type>/**/*.parquet` never see it (and Spark and
//! Hive skip names starting with `_` anyway).

use super::partition::partition_values;
use arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "_manifest.json";

/// Who is committing: the run, as the manifest names it.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The run id (also in staging folder names).
    pub run_id: String,
    /// `[pipeline] name`.
    pub pipeline: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
}

/// One committed file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the sink's root.
    pub path: String,
    /// The dataset (resource type) it belongs to.
    pub dataset: String,
    /// Rows (resources) in it.
    pub rows: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Hive partition values from its path (`{"date": "2024-01-31"}`); empty when unpartitioned.
    pub partition: BTreeMap<String, String>,
}

impl FileEntry {
    /// An entry for `path` (`<dataset>/[<k>=<v>/]<name>`).
    pub fn new(path: String, rows: u64, bytes: u64) -> Self {
        FileEntry {
            dataset: path.split('/').next().unwrap_or_default().to_string(),
            partition: partition_values(&path).into_iter().collect(),
            path,
            rows,
            bytes,
        }
    }
}

/// Per dataset totals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DatasetEntry {
    /// Files committed.
    pub files: u64,
    /// Rows in them.
    pub rows: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// `sha256:<hex>` of the dataset's Arrow schema (see [`schema_fingerprint`]); files with
    /// equal fingerprints union cleanly. `null` for NDJSON.
    pub schema_fingerprint: Option<String>,
}

/// The manifest document.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Version of this document's shape.
    pub manifest_version: u32,
    /// The run id.
    pub run_id: String,
    /// `[pipeline] name`.
    pub pipeline: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// When the run finished: every data file written and the run's checks passed, just
    /// before the commit made them visible.
    pub finished: String,
    /// `parquet` or `ndjson`.
    pub format: &'static str,
    /// The partition column (`date`, `run`) or `null`.
    pub partition_by: Option<&'static str>,
    /// Per dataset, by name.
    pub datasets: BTreeMap<String, DatasetEntry>,
    /// Every file this run committed, sorted by path. Files of earlier runs in partitions this
    /// run did not write are not listed (see ARCHITECTURE.md, Dataset layout).
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// A manifest of `files` (any order) with the schema fingerprint of each dataset.
    pub fn new(
        run: &RunInfo,
        format: &'static str,
        partition_by: Option<&'static str>,
        mut files: Vec<FileEntry>,
        fingerprints: &BTreeMap<String, String>,
    ) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut datasets: BTreeMap<String, DatasetEntry> = BTreeMap::new();
        for f in &files {
            let d = datasets
                .entry(f.dataset.clone())
                .or_insert_with(|| DatasetEntry {
                    files: 0,
                    rows: 0,
                    bytes: 0,
                    schema_fingerprint: fingerprints.get(&f.dataset).cloned(),
                });
            d.files += 1;
            d.rows += f.rows;
            d.bytes += f.bytes;
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Manifest {
            manifest_version: 1,
            run_id: run.run_id.clone(),
            pipeline: run.pipeline.clone(),
            started: run.started.clone(),
            finished: crate::util::calendar::rfc3339_utc(secs),
            format,
            partition_by,
            datasets,
            files,
        }
    }

    /// The JSON text (pretty, with a final newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }
}

/// `sha256:<hex>` of a canonical text of the schema: each field as
/// `name:type:nullable`, nested fields in order. It changes exactly when a column's name,
/// type, nullability or position changes, and does not depend on metadata.
pub fn schema_fingerprint(schema: &Schema) -> String {
    fn field(out: &mut String, f: &Field) {
        out.push_str(f.name());
        out.push(':');
        data_type(out, f.data_type());
        out.push_str(if f.is_nullable() { "?" } else { "!" });
        out.push(';');
    }
    fn data_type(out: &mut String, t: &DataType) {
        match t {
            DataType::Struct(fields) => {
                out.push_str("struct<");
                fields.iter().for_each(|f| field(out, f));
                out.push('>');
            }
            DataType::List(f) | DataType::LargeList(f) => {
                out.push_str("list<");
                field(out, f);
                out.push('>');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    schema.fields().iter().for_each(|f| field(&mut text, f));
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn entries_and_totals() {
        let run = RunInfo {
            run_id: "r1".into(),
            pipeline: "p".into(),
            started: "2026-01-01T00:00:00Z".into(),
        };
        let fp = BTreeMap::from([("Patient".to_string(), "sha256:x".to_string())]);
        let m = Manifest::new(
            &run,
            "parquet",
            Some("date"),
            vec![
                FileEntry::new("Patient/date=2024-01-02/part-00000.parquet".into(), 3, 30),
                FileEntry::new("Patient/date=2024-01-01/part-00000.parquet".into(), 2, 20),
            ],
            &fp,
        );
        assert_eq!(
            m.files[0].path,
            "Patient/date=2024-01-01/part-00000.parquet"
        );
        assert_eq!(m.files[0].partition["date"], "2024-01-01");
        assert_eq!(
            m.datasets["Patient"],
            DatasetEntry {
                files: 2,
                rows: 5,
                bytes: 50,
                schema_fingerprint: Some("sha256:x".into())
            }
        );
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["run_id"], "r1");
        assert_eq!(v["partition_by"], "date");
        assert_eq!(v["files"][1]["rows"], 3);
    }

    #[test]
    fn fingerprint_follows_names_types_and_nullability() {
        let s = |name: &str, t: DataType, null: bool| {
            schema_fingerprint(&Schema::new(vec![Field::new(name, t, null)]))
        };
        let base = s("id", DataType::Utf8, false);
        assert_eq!(base, s("id", DataType::Utf8, false));
        assert!(base.starts_with("sha256:") && base.len() == 7 + 64);
        assert_ne!(base, s("id2", DataType::Utf8, false));
        assert_ne!(base, s("id", DataType::LargeUtf8, false));
        assert_ne!(base, s("id", DataType::Utf8, true));
        let nested = |inner: DataType| {
            s(
                "x",
                DataType::List(Arc::new(Field::new("item", inner, true))),
                true,
            )
        };
        assert_ne!(nested(DataType::Utf8), nested(DataType::Int64));
        // Metadata does not count.
        let with_meta = Schema::new(vec![Field::new("id", DataType::Utf8, false)])
            .with_metadata([("k".to_string(), "v".to_string())]);
        assert_eq!(schema_fingerprint(&with_meta), base);
    }
}
