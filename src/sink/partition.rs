//! Hive-style partition routing of a dataset sink: which folder a record goes to
//! (`<Type>/`, `<Type>/date=YYYY-MM-DD/`, `<Type>/run=<value>/`), which of a sink's open
//! writers it uses, and the bound on open writers (least recently used one closed first).
//!
//! Keys are plain integers (type index, day number), so routing a record allocates nothing;
//! a folder name is formatted only when a writer is opened. Records without
//! `meta.lastUpdated` go to `date=__HIVE_DEFAULT_PARTITION__`, the name Hive and Spark use for
//! a null partition value (both read it back as NULL).

use crate::batch::Record;
use crate::fhir::{resource_type_name, TypeIdx};
use crate::util::calendar::civil_from_days;
use std::collections::HashMap;
use std::path::Path;

/// The folder Hive and Spark use for a null partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How a dataset is partitioned below its type folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionBy {
    /// No partition folders: `<Type>/part-NNNNN.parquet`.
    None,
    /// `date=YYYY-MM-DD` of `meta.lastUpdated` (UTC).
    Date,
    /// `run=<value>`, one value for the whole run.
    Run(String),
}

impl PartitionBy {
    /// The partition column's name, if any.
    pub fn column(&self) -> Option<&'static str> {
        match self {
            PartitionBy::None => None,
            PartitionBy::Date => Some("date"),
            PartitionBy::Run(_) => Some("run"),
        }
    }
}

/// Is `value` usable as a `run=` partition value (a single folder name that every reader
/// parses back unchanged)? Letters, digits, `-`, `_`, `.`, not starting with `.`, 1–100 long.
pub fn valid_run_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The partition of one record within its type: a day number, "no date", or the whole type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Unpartitioned, or the run's one `run=` value.
    Whole,
    /// Days since 1970-01-01 of `meta.lastUpdated`.
    Day(i64),
    /// `meta.lastUpdated` missing.
    NoDate,
}

/// A writer's key: type and partition.
pub type Key = (TypeIdx, Part);

/// One open writer and when it was last used.
struct Slot<W> {
    writer: W,
    used: u64,
}

/// The open writers of a sink, keyed by (type, partition), at most `max_open` at a time.
pub struct Router<W> {
    by: PartitionBy,
    max_open: usize,
    open: HashMap<Key, Slot<W>>,
    /// Next file sequence number per key (kept when a writer is closed early, so a
    /// partition's later files get new names).
    seqs: HashMap<Key, u32>,
    tick: u64,
}

impl<W> Router<W> {
    /// A router for `by` keeping at most `max_open` (≥ 1) writers open.
    pub fn new(by: PartitionBy, max_open: usize) -> Self {
        Router {
            by,
            max_open: max_open.max(1),
            open: HashMap::new(),
            seqs: HashMap::new(),
            tick: 0,
        }
    }

    /// The partitioning.
    pub fn by(&self) -> &PartitionBy {
        &self.by
    }

    /// The key of a record.
    pub fn key(&self, r: &Record) -> Key {
        let part = match self.by {
            PartitionBy::Date => match r.last_updated {
                Some(us) => Part::Day(us.div_euclid(MICROS_PER_DAY)),
                None => Part::NoDate,
            },
            PartitionBy::None | PartitionBy::Run(_) => Part::Whole,
        };
        (r.type_idx, part)
    }

    /// The folder of a key, relative to the sink's root: `Patient`, `Patient/date=2024-01-31`,
    /// `Patient/run=42`.
    pub fn dir(&self, key: Key) -> String {
        let t = resource_type_name(key.0);
        match (&self.by, key.1) {
            (PartitionBy::Run(v), _) => format!("{t}/run={v}"),
            (_, Part::Day(day)) => {
                let (y, m, d) = civil_from_days(day);
                format!("{t}/date={y:04}-{m:02}-{d:02}")
            }
            (PartitionBy::Date, _) | (_, Part::NoDate) => {
                format!("{t}/date={HIVE_DEFAULT_PARTITION}")
            }
            (PartitionBy::None, Part::Whole) => t.to_string(),
        }
    }

    /// The open writer of `key`, if any, marked as just used.
    pub fn get(&mut self, key: Key) -> Option<&mut W> {
        self.tick += 1;
        let tick = self.tick;
        self.open.get_mut(&key).map(|s| {
            s.used = tick;
            &mut s.writer
        })
    }

    /// The writer of `key`, without touching its use time.
    pub fn peek(&mut self, key: Key) -> Option<&mut W> {
        self.open.get_mut(&key).map(|s| &mut s.writer)
    }

    /// When `key` has no open writer and the bound is reached: the least recently used
    /// writer's key, for the caller to write out and [`Router::remove`] before
    /// [`Router::insert`]ing `key`.
    pub fn to_evict_for(&self, key: Key) -> Option<Key> {
        if self.open.contains_key(&key) || self.open.len() < self.max_open {
            return None;
        }
        self.open
            .iter()
            .min_by_key(|(_, s)| s.used)
            .map(|(k, _)| *k)
    }

    /// Adds the writer of `key`.
    pub fn insert(&mut self, key: Key, writer: W) {
        self.tick += 1;
        self.open.insert(
            key,
            Slot {
                writer,
                used: self.tick,
            },
        );
    }

    /// Takes the sequence number for the next file of `key`.
    pub fn next_seq(&mut self, key: Key) -> u32 {
        let s = self.seqs.entry(key).or_insert(0);
        let n = *s;
        *s += 1;
        n
    }

    /// Number of open writers.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The keys of the open writers, sorted (deterministic order for flushing and closing).
    pub fn keys(&self) -> Vec<Key> {
        let mut k: Vec<Key> = self.open.keys().copied().collect();
        k.sort();
        k
    }

    /// Takes out the writer of `key`.
    pub fn remove(&mut self, key: Key) -> Option<W> {
        self.open.remove(&key).map(|s| s.writer)
    }

    /// The open writers.
    pub fn writers(&self) -> impl Iterator<Item = &W> {
        self.open.values().map(|s| &s.writer)
    }
}

/// The partition values of a file path relative to the sink's root
/// (`Patient/date=2024-01-31/part-00000.parquet` → `[("date", "2024-01-31")]`).
pub fn partition_values(rel: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = rel.split('/').collect();
    parts[..parts.len().saturating_sub(1)]
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Is the folder `dir` (relative, e.g. `Patient/date=2024-01-31`) a partition folder of this
/// layout: `<Type>/date=<YYYY-MM-DD or the default>` or `<Type>/run=<value>`?
pub fn is_partition_dir(dir: &Path) -> bool {
    let parts: Vec<String> = dir
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if parts.len() != 2 || crate::fhir::resource_type_index(&parts[0]).is_none() {
        return false;
    }
    match parts[1].split_once('=') {
        Some(("date", v)) => v == HIVE_DEFAULT_PARTITION || is_iso_date(v),
        Some(("run", v)) => valid_run_value(v),
        _ => false,
    }
}

fn is_iso_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::resource_type_index;

    fn rec(t: &str, last_updated: Option<i64>) -> Record {
        Record {
            type_idx: resource_type_index(t).unwrap(),
            line: 1,
            json: 0..0,
            id: 0..0,
            version_id: None,
            last_updated,
            entry: None,
        }
    }

    #[test]
    fn folders_per_partitioning() {
        // 2021-03-04T04:06:07.123Z
        let r = rec("Patient", Some(1_614_830_767_123_000));
        let none = Router::<()>::new(PartitionBy::None, 4);
        assert_eq!(none.dir(none.key(&r)), "Patient");
        let date = Router::<()>::new(PartitionBy::Date, 4);
        assert_eq!(date.dir(date.key(&r)), "Patient/date=2021-03-04");
        assert_eq!(
            date.dir(date.key(&rec("Observation", None))),
            "Observation/date=__HIVE_DEFAULT_PARTITION__"
        );
        // Before the epoch: floor division, not truncation.
        assert_eq!(
            date.dir(date.key(&rec("Patient", Some(-1)))),
            "Patient/date=1969-12-31"
        );
        let run = Router::<()>::new(PartitionBy::Run("b7".into()), 4);
        assert_eq!(run.dir(run.key(&r)), "Patient/run=b7");
    }

    #[test]
    fn least_recently_used_writer_is_evicted() {
        let mut r = Router::new(PartitionBy::Date, 2);
        let p = resource_type_index("Patient").unwrap();
        let (a, b, c) = ((p, Part::Day(1)), (p, Part::Day(2)), (p, Part::Day(3)));
        assert!(r.to_evict_for(a).is_none());
        r.insert(a, "a");
        assert!(r.to_evict_for(b).is_none());
        r.insert(b, "b");
        assert_eq!(r.get(a), Some(&mut "a")); // a is now newer than b
        assert_eq!(r.to_evict_for(a), None); // already open
        assert_eq!(r.to_evict_for(c), Some(b));
        assert_eq!(r.remove(b), Some("b"));
        r.insert(c, "c");
        assert_eq!(r.open_count(), 2);
        assert_eq!(r.keys(), vec![a, c]);
        assert_eq!((r.next_seq(b), r.next_seq(b), r.next_seq(a)), (0, 1, 0));
    }

    #[test]
    fn partition_paths() {
        assert_eq!(
            partition_values("Patient/date=2024-01-31/part-00000.parquet"),
            vec![("date".to_string(), "2024-01-31".to_string())]
        );
        assert!(partition_values("Patient/part-00000.parquet").is_empty());
        assert!(is_partition_dir(Path::new("Patient/date=2024-01-31")));
        assert!(is_partition_dir(Path::new(
            "Patient/date=__HIVE_DEFAULT_PARTITION__"
        )));
        assert!(is_partition_dir(Path::new("Patient/run=20240131-1")));
        assert!(!is_partition_dir(Path::new("Patient/date=yesterday")));
        assert!(!is_partition_dir(Path::new("Nope/run=1")));
        assert!(!is_partition_dir(Path::new("Patient/batch=1")));
        assert!(valid_run_value("2024-01-31T10.00_1"));
        assert!(!valid_run_value("a/b"));
        assert!(!valid_run_value(".hidden"));
        assert!(!valid_run_value(""));
    }
}
