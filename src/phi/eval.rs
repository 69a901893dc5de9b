//! Measuring the recognizer: loading an annotated corpus written by `fhirpipe sample
//! --annotations` (the notes, their gold spans, and the [`KnownPhi`] of each note taken from
//! the generated Patient, author Practitioner and custodian Organization) and scoring found
//! spans against gold spans per category, by two match rules:
//!
//! * **exact**: same start, end and category;
//! * **overlap**: a found span counts as correct when it overlaps a gold span of the same
//!   category, and a gold span counts as found when a found span of its category overlaps it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{KnownPhi, PhiType, Span};

/// Why a corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Bad {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One annotated note.
#[derive(Clone, Debug)]
pub struct Doc {
    /// DocumentReference id.
    pub id: String,
    /// Patient id (the date-shift scope).
    pub patient: String,
    /// The decoded note.
    pub text: String,
    /// PHI from the structured data of the note's patient, author and custodian.
    pub known: KnownPhi,
    /// Gold spans.
    pub gold: Vec<Span>,
}

fn read_lines(path: &Path) -> Result<Vec<serde_json::Value>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Bad {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })
        })
        .collect()
}

fn by_id(dir: &Path, file: &str) -> Result<HashMap<String, serde_json::Value>, EvalError> {
    Ok(read_lines(&dir.join(file))?
        .into_iter()
        .filter_map(|v| Some((v["id"].as_str()?.to_string(), v)))
        .collect())
}

fn ref_id(v: &serde_json::Value) -> &str {
    v["reference"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("")
}

/// Loads the notes of a generated folder `dir` and their gold spans from `annotations`.
pub fn load_corpus(dir: &Path, annotations: &Path) -> Result<Vec<Doc>, EvalError> {
    let patients = by_id(dir, "Patient.ndjson")?;
    let pracs = by_id(dir, "Practitioner.ndjson")?;
    let orgs = by_id(dir, "Organization.ndjson")?;
    let mut gold: HashMap<String, Vec<Span>> = HashMap::new();
    for (i, a) in read_lines(annotations)?.into_iter().enumerate() {
        let bad = |reason: &str| EvalError::Bad {
            path: annotations.to_path_buf(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let mut spans = Vec::new();
        for s in a["spans"].as_array().ok_or_else(|| bad("no spans"))? {
            let kind = s["type"]
                .as_str()
                .and_then(PhiType::from_label)
                .ok_or_else(|| bad("unknown span type"))?;
            let (Some(start), Some(end)) = (s["start"].as_u64(), s["end"].as_u64()) else {
                return Err(bad("span without start/end"));
            };
            spans.push(Span {
                start: start as usize,
                end: end as usize,
                kind,
                confidence: 1.0,
            });
        }
        let id = a["id"].as_str().ok_or_else(|| bad("no id"))?.to_string();
        gold.insert(id, spans);
    }
    let docs_path = dir.join("DocumentReference.ndjson");
    let mut docs = Vec::new();
    for (i, d) in read_lines(&docs_path)?.into_iter().enumerate() {
        let bad = |reason: &str| EvalError::Bad {
            path: docs_path.clone(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let id = d["id"].as_str().unwrap_or("").to_string();
        let data = d["content"][0]["attachment"]["data"]
            .as_str()
            .ok_or_else(|| bad("no attachment data"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| bad(&e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| bad(&e.to_string()))?;
        let patient = ref_id(&d["subject"]).to_string();
        let mut known = KnownPhi::new();
        for r in [
            patients.get(&patient),
            pracs.get(ref_id(&d["author"][0])),
            orgs.get(ref_id(&d["custodian"])),
        ]
        .into_iter()
        .flatten()
        {
            known.add_resource(r);
        }
        let gold = gold
            .remove(&id)
            .ok_or_else(|| bad("note without annotation"))?;
        docs.push(Doc {
            id,
            patient,
            text,
            known,
            gold,
        });
    }
    Ok(docs)
}

/// Counts of one category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Spans found.
    pub found: u64,
    /// Gold spans.
    pub gold: u64,
    /// Found spans equal to a gold span.
    pub exact: u64,
    /// Found spans overlapping a gold span of the category.
    pub found_overlapping: u64,
    /// Gold spans overlapped by a found span of the category.
    pub gold_overlapped: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl Counts {
    /// (precision, recall, F1) by the exact rule.
    pub fn exact(&self) -> (f64, f64, f64) {
        let (p, r) = (ratio(self.exact, self.found), ratio(self.exact, self.gold));
        (p, r, f1(p, r))
    }

    /// (precision, recall, F1) by the overlap rule.
    pub fn overlap(&self) -> (f64, f64, f64) {
        let p = ratio(self.found_overlapping, self.found);
        let r = ratio(self.gold_overlapped, self.gold);
        (p, r, f1(p, r))
    }

    fn add(&mut self, o: &Counts) {
        self.found += o.found;
        self.gold += o.gold;
        self.exact += o.exact;
        self.found_overlapping += o.found_overlapping;
        self.gold_overlapped += o.gold_overlapped;
    }
}

/// Scores per category.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    pub per_type: [Counts; 15],
}

fn overlaps(a: &Span, b: &Span) -> bool {
    a.kind == b.kind && a.start < b.end && b.start < a.end
}

impl Scores {
    /// Adds one document's found and gold spans.
    pub fn add(&mut self, found: &[Span], gold: &[Span]) {
        for f in found {
            let c = &mut self.per_type[f.kind as usize];
            c.found += 1;
            if gold
                .iter()
                .any(|g| g.kind == f.kind && g.start == f.start && g.end == f.end)
            {
                c.exact += 1;
            }
            if gold.iter().any(|g| overlaps(f, g)) {
                c.found_overlapping += 1;
            }
        }
        for g in gold {
            let c = &mut self.per_type[g.kind as usize];
            c.gold += 1;
            if found.iter().any(|f| overlaps(f, g)) {
                c.gold_overlapped += 1;
            }
        }
    }

    /// All categories together.
    pub fn overall(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.per_type {
            t.add(c);
        }
        t
    }

    /// Counts of one category.
    pub fn of(&self, kind: PhiType) -> Counts {
        self.per_type[kind as usize]
    }

    /// A printable table: per category and overall, gold/found counts and P/R/F1 by both
    /// rules.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<8} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}",
            "type", "gold", "found", "P=", "R=", "F1=", "P~", "R~", "F1~"
        );
        let row = |s: &mut String, name: &str, c: &Counts| {
            let (p, r, f) = c.exact();
            let (po, ro, fo) = c.overlap();
            let _ = writeln!(
                s,
                "{name:<8} {:>6} {:>6} | {p:>6.3} {r:>6.3} {f:>6.3} | {po:>6.3} {ro:>6.3} {fo:>6.3}",
                c.gold, c.found
            );
        };
        for t in PhiType::ALL {
            row(&mut s, t.label(), &self.of(t));
        }
        row(&mut s, "overall", &self.overall());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(start: usize, end: usize, kind: PhiType) -> Span {
        Span {
            start,
            end,
            kind,
            confidence: 1.0,
        }
    }

    #[test]
    fn spans_serialize_for_reports() {
        let s = serde_json::to_string(&sp(3, 8, PhiType::Mrn)).unwrap_or_default();
        assert_eq!(s, r#"{"start":3,"end":8,"type":"MRN","confidence":1.0}"#);
    }

    #[test]
    fn exact_and_overlap_rules() {
        let gold = [
            sp(0, 3, PhiType::Name),
            sp(4, 10, PhiType::Name),
            sp(20, 30, PhiType::Date),
        ];
        // One found name covers both gold names; a date of the wrong type; a false zip.
        let found = [
            sp(0, 10, PhiType::Name),
            sp(20, 30, PhiType::Age),
            sp(40, 45, PhiType::Zip),
        ];
        let mut s = Scores::default();
        s.add(&found, &gold);
        let n = s.of(PhiType::Name);
        assert_eq!((n.found, n.gold, n.exact), (1, 2, 0));
        assert_eq!((n.found_overlapping, n.gold_overlapped), (1, 2));
        assert_eq!(n.overlap(), (1.0, 1.0, 1.0));
        let all = s.overall();
        assert_eq!((all.found, all.gold, all.exact), (3, 3, 0));
        assert_eq!(all.overlap().0, 1.0 / 3.0);
        assert_eq!(all.overlap().1, 2.0 / 3.0);
    }
}
