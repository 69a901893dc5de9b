//! The `[transform]` stage: runs on the rayon workers right after a line passed the checks,
//! on the same simd-json tape. Per resource, in this order:
//!
//! 1. **unbundle**: a Bundle line is consumed; each entry's resource is checked like a line
//!    and goes on as a resource of its own (its text is the entry's span of the line);
//!    `urn:uuid:` references to other entries of the Bundle become `Type/id`;
//! 2. **types**: other types are filtered (reason `type`);
//! 3. **where**: the type's FHIRPath filter must be true (else `where`; an error dead-letters);
//! 4. **dedupe**: only the winner of its (type, id) is kept (else `duplicate`; see [`dedupe`]);
//! 5. **remove**, 6. **meta**, 7. **references**: edits, done as one lossless rewriting copy
//!    of the original text ([`splice`]) into a per-chunk buffer; a resource nothing applies to
//!    keeps its original bytes.
//!
//! Owns: the per-worker [`Transformer`], its config ([`config`]), the span scanner and
//! rewriter ([`splice`]) and the dedupe index ([`dedupe`]).

pub mod config;
pub mod dedupe;
pub mod splice;

use crate::batch::{Batch, FilterReason, Filtered, Record, Reject};
use crate::config::TransformPlan;
use crate::fhir::{resource_type_index, resource_type_name, TypeIdx, RESOURCE_TYPES};
use crate::fhirpath::{Item, Json};
use crate::stage::check::{examine, Outcome};
use dedupe::DedupeIndex;
use memchr::memmem::Finder;
use simd_json::prelude::*;
use splice::{decode, rewrite, skip_ws, Edits, Elements, Members, ReferenceMap};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Which pass of the run the transformer serves.
#[derive(Clone)]
pub enum Mode {
    /// The first pass of a dedupe run: resources that reach the dedupe step become records
    /// unedited, so the collector can offer them to the index.
    Collect,
    /// The pass that writes; with dedupe, the index built by the first pass.
    Emit(Option<Arc<DedupeIndex>>),
}

/// What the checks extracted from a resource.
pub struct Checked {
    /// Type.
    pub type_idx: TypeIdx,
    /// `id` in `Batch::strings`.
    pub id: Range<usize>,
    /// `meta.versionId` in `Batch::strings`.
    pub version_id: Option<Range<usize>>,
    /// `meta.lastUpdated`, µs.
    pub last_updated: Option<i64>,
}

/// Per-worker transform state; buffers are reused from chunk to chunk.
pub struct Transformer {
    plan: Arc<TransformPlan>,
    mode: Mode,
    keep: Option<Vec<bool>>,
    bundle: Option<TypeIdx>,
    base: Option<(Finder<'static>, Finder<'static>)>,
    urn: Finder<'static>,
    /// Edited texts of this chunk's records.
    rewritten: Vec<u8>,
    /// Records whose `json` range is in `rewritten`.
    moved: Vec<usize>,
    seq: u64,
    candidates: u32,
}

/// Where one resource is.
struct Res<'v> {
    value: Json<'v>,
    text: Range<usize>,
    checked: Checked,
    line: u64,
    entry: Option<u32>,
}

impl Transformer {
    /// A transformer for `plan` in `mode`.
    pub fn new(plan: Arc<TransformPlan>, mode: Mode) -> Self {
        let keep = plan.types.as_ref().map(|t| {
            let mut v = vec![false; RESOURCE_TYPES.len()];
            for &i in t {
                v[i as usize] = true;
            }
            v
        });
        let base = plan.strip_base_url.as_ref().map(|b| {
            (
                Finder::new(b.as_bytes()).into_owned(),
                Finder::new(b.replace('/', "\\/").as_bytes()).into_owned(),
            )
        });
        Transformer {
            keep,
            bundle: plan
                .unbundle
                .then(|| resource_type_index("Bundle"))
                .flatten(),
            base,
            urn: Finder::new(b"urn:uuid:").into_owned(),
            plan,
            mode,
            rewritten: Vec::new(),
            moved: Vec::new(),
            seq: 0,
            candidates: 0,
        }
    }

    /// Starts a chunk.
    pub fn begin(&mut self, seq: u64) {
        self.seq = seq;
        self.candidates = 0;
        self.rewritten.clear();
        self.moved.clear();
    }

    /// Ends a chunk: appends the edited texts to `data` and points their records at them.
    pub fn finish(&mut self, batch: &mut Batch, data: &mut Vec<u8>) {
        let base = data.len();
        data.extend_from_slice(&self.rewritten);
        for &i in &self.moved {
            let r = &mut batch.records[i];
            r.json = r.json.start + base..r.json.end + base;
        }
    }

    /// Takes a line of `data` (at `span`) that passed the checks, with its parsed value.
    pub fn line(
        &mut self,
        data: &[u8],
        span: Range<usize>,
        value: Json<'_>,
        checked: Checked,
        line: u64,
        batch: &mut Batch,
    ) {
        if Some(checked.type_idx) == self.bundle {
            batch.bundles_consumed += 1;
            batch.strings.truncate(checked.id.start);
            self.unbundle(data, span, value, line, batch);
            return;
        }
        let res = Res {
            value,
            text: span,
            checked,
            line,
            entry: None,
        };
        self.resource(data, res, None, batch);
    }

    fn unbundle(
        &mut self,
        data: &[u8],
        span: Range<usize>,
        value: Json<'_>,
        line: u64,
        batch: &mut Batch,
    ) {
        let text = &data[span.clone()];
        let at = span.start;
        let Some(entries) = Members::new(text, skip_ws(text, 0))
            .find(|m| &*decode(&text[m.key.clone()]) == "entry" && text[m.value.start] == b'[')
        else {
            return;
        };
        let Some(tape) = value.get("entry").and_then(|e| e.as_array()) else {
            return;
        };
        // (entry span, resource span, fullUrl)
        let mut spans: Vec<(Range<usize>, Option<Range<usize>>)> = Vec::new();
        let mut urns: HashMap<String, String> = HashMap::new();
        for (el, tv) in Elements::new(text, entries.value.start).zip(tape.iter()) {
            let mut res = None;
            if text[el.start] == b'{' {
                for m in Members::new(text, el.start) {
                    if &*decode(&text[m.key.clone()]) == "resource" && text[m.value.start] == b'{' {
                        res = Some(m.value.start + at..m.value.end + at);
                    }
                }
            }
            let full = tv.get("fullUrl").and_then(|f| f.into_string());
            let r = tv.get("resource");
            if let (Some(full), Some(r)) = (full, r) {
                let rt = r.get("resourceType").and_then(|v| v.into_string());
                let id = r.get("id").and_then(|v| v.into_string());
                if let (true, Some(rt), Some(id)) = (full.starts_with("urn:uuid:"), rt, id) {
                    urns.insert(full.to_string(), format!("{rt}/{id}"));
                }
            }
            spans.push((el.start + at..el.end + at, res));
        }
        for (i, ((entry, res), tv)) in spans.into_iter().zip(tape.iter()).enumerate() {
            let idx = i as u32;
            let rv = tv.get("resource").filter(|r| r.is_object());
            let (Some(res), Some(rv)) = (res, rv) else {
                batch.rejects.push(Reject {
                    line,
                    text: data[entry].to_vec(),
                    reason: format!("Bundle entry {i} has no resource"),
                    type_idx: None,
                    outcome: None,
                    entry: Some(idx),
                });
                continue;
            };
            let mark = batch.strings.len();
            match examine(rv, None, &mut batch.strings) {
                Outcome::Ok {
                    type_idx,
                    id,
                    version_id,
                    last_updated,
                } => {
                    let r = Res {
                        value: rv,
                        text: res,
                        checked: Checked {
                            type_idx,
                            id,
                            version_id,
                            last_updated,
                        },
                        line,
                        entry: Some(idx),
                    };
                    self.resource(data, r, Some(&urns), batch);
                }
                Outcome::Filtered(t) => {
                    batch.strings.truncate(mark);
                    self.filter(batch, t, FilterReason::Type, true);
                }
                Outcome::Reject(reason, type_idx, _) => batch.rejects.push(Reject {
                    line,
                    text: data[res].to_vec(),
                    reason: format!("Bundle entry {i}: {reason}"),
                    type_idx,
                    outcome: None,
                    entry: Some(idx),
                }),
            }
        }
    }

    fn filter(&mut self, batch: &mut Batch, t: TypeIdx, reason: FilterReason, from_entry: bool) {
        batch.filtered.push(Filtered {
            type_idx: t,
            reason,
            from_entry,
        });
    }

    fn resource(
        &mut self,
        data: &[u8],
        res: Res<'_>,
        urns: Option<&HashMap<String, String>>,
        batch: &mut Batch,
    ) {
        let t = res.checked.type_idx;
        let dropped = |me: &mut Self, batch: &mut Batch, reason| {
            batch.strings.truncate(res.checked.id.start);
            me.filter(batch, t, reason, res.entry.is_some());
        };
        if let Some(keep) = &self.keep {
            if !keep[t as usize] {
                return dropped(self, batch, FilterReason::Type);
            }
        }
        if let Some(expr) = self.plan.filter_for(t) {
            let verdict = match expr.evaluate(res.value) {
                Ok(items) => truth(&items),
                Err(e) => Err(e.to_string()),
            };
            match verdict {
                Ok(true) => {}
                Ok(false) => return dropped(self, batch, FilterReason::Where),
                Err(e) => {
                    batch.strings.truncate(res.checked.id.start);
                    let at = match res.entry {
                        Some(i) => format!("Bundle entry {i}: "),
                        None => String::new(),
                    };
                    batch.rejects.push(Reject {
                        line: res.line,
                        text: data[res.text].to_vec(),
                        reason: format!(
                            "{at}the where filter of {} (`{}`) failed: {e}",
                            resource_type_name(t),
                            expr.source()
                        ),
                        type_idx: Some(t),
                        outcome: None,
                        entry: res.entry,
                    });
                    return;
                }
            }
        }
        let mut json = res.text.clone();
        let mut moved = false;
        if self.plan.dedupe {
            let pos = dedupe::position(self.seq, self.candidates);
            self.candidates += 1;
            match &self.mode {
                Mode::Collect => {}
                Mode::Emit(index) => {
                    let k = dedupe::key(t, &batch.strings[res.checked.id.clone()]);
                    if index.as_ref().is_some_and(|ix| !ix.is_winner(k, pos)) {
                        return dropped(self, batch, FilterReason::Duplicate);
                    }
                }
            }
        }
        if matches!(self.mode, Mode::Emit(_)) {
            let text = &data[res.text.clone()];
            let urn = urns.filter(|u| !u.is_empty() && self.urn.find(text).is_some());
            let base = self.plan.strip_base_url.as_deref().filter(|_| {
                self.base
                    .as_ref()
                    .is_some_and(|(a, b)| a.find(text).is_some() || b.find(text).is_some())
            });
            let remove = self.plan.remove_for(t);
            let meta = self.plan.meta_source.is_some() || !self.plan.meta_tags.is_empty();
            if remove.is_some() || meta || urn.is_some() || base.is_some() {
                let f = |r: &str| -> Option<String> {
                    if let Some(to) = urn.and_then(|u| u.get(r)) {
                        return Some(to.clone());
                    }
                    base.and_then(|b| strip_base(r, b)).map(str::to_string)
                };
                let edits = Edits {
                    remove,
                    meta_source: self.plan.meta_source.as_deref(),
                    meta_tags: &self.plan.meta_tags,
                    reference: (urn.is_some() || base.is_some()).then_some(&f as ReferenceMap<'_>),
                };
                let start = self.rewritten.len();
                if rewrite(text, &edits, &mut self.rewritten) {
                    json = start..self.rewritten.len();
                    moved = true;
                } else {
                    self.rewritten.truncate(start);
                }
            }
        }
        if moved {
            self.moved.push(batch.records.len());
        }
        batch.records.push(Record {
            type_idx: t,
            line: res.line,
            json,
            id: res.checked.id,
            version_id: res.checked.version_id,
            last_updated: res.checked.last_updated,
            entry: res.entry,
        });
    }
}

/// `<base>/Type/id…` → `Type/id…` when what follows the base starts with an R4 type.
fn strip_base<'r>(r: &'r str, base: &str) -> Option<&'r str> {
    let rest = r.strip_prefix(base)?.strip_prefix('/')?;
    let (ty, tail) = rest.split_once('/')?;
    (resource_type_index(ty).is_some() && !tail.is_empty()).then_some(rest)
}

/// A `where` result as a verdict: empty is false; one boolean is itself; anything else is an
/// error.
fn truth(items: &[Item<'_>]) -> Result<bool, String> {
    match items {
        [] => Ok(false),
        [Item::Bool(b)] => Ok(*b),
        [Item::Node(n)] if n.value.is_some_and(|v| v.as_bool().is_some()) => {
            Ok(n.value.and_then(|v| v.as_bool()) == Some(true))
        }
        [_] => Err("the expression gave a value that is not a boolean".into()),
        many => Err(format!(
            "the expression gave {} items; it must give true, false or nothing",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests;
