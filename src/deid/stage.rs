//! The `[deidentify]` pipeline stage: runs the engine on every record that passed the checks
//! and the transform, on the worker that checked it. Without a transform each line is
//! de-identified right after its checks, on the check stage's own simd-json tape (no second
//! parse), and the outputs are written one after another into a buffer that becomes the
//! batch's text; after a transform, [`deidentify_batch`] does the same for the batch's
//! rewritten records. Each record is re-pointed at its new text, and its id, versionId and
//! lastUpdated are read again (rules may hash or shift them); a resource the engine refuses
//! becomes a reject with the reason, so conservation holds unchanged. Free-text counts are
//! summed into the batch for the run report.

use super::Deidentifier;
use crate::batch::{Batch, Reject};
use crate::fhirpath::Json;
use crate::stage::check::{examine, examine_head, Outcome};

/// The `scope_prefix` of [`Deidentifier::deidentify`] for the records of the file `name`:
/// the file name, or with `dateShiftScope = folder` the name of its folder.
pub fn scope_prefix(d: &Deidentifier, name: &str) -> String {
    let path = std::path::Path::new(name);
    let part = match d.parameters().date_shift_scope {
        super::DateShiftScope::Folder => path.parent().and_then(|p| p.file_name()),
        _ => path.file_name(),
    };
    part.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A worker's buffers for the stage, reused from one resource to the next.
#[derive(Default)]
pub struct Scratch {
    /// The streaming engine's vectors.
    walk: super::stream::Buffers,
}

/// De-identifies one resource, `text`, or `parsed` when the caller has its tape already
/// (with the parser's structural indexes of `text`), appending the output to `dest`. `Outcome::Ok` gives the output's id, versionId and
/// lastUpdated (`dest` then holds the output after its old length); `Outcome::Reject` the
/// reason (`dest` unchanged; the caller adds the resource type).
#[allow(clippy::too_many_arguments)]
pub(crate) fn deidentify_one(
    d: &Deidentifier,
    known: Option<&super::text::KnownIndex>,
    prefix: &str,
    parsed: Option<(Json<'_>, &[u32])>,
    text: &[u8],
    scratch: &mut Scratch,
    dest: &mut Vec<u8>,
    batch_strings: &mut String,
    stats: &mut crate::phi::carriers::CarrierStats,
) -> Outcome {
    let start = dest.len();
    let streamed = match (parsed, d.plan.as_ref()) {
        (Some((root, ix)), Some(plan)) => super::stream::run_parsed(
            d,
            plan,
            root,
            text,
            prefix,
            known,
            Some(ix),
            &mut scratch.walk,
            dest,
        ),
        _ => None,
    };
    // Read id, versionId and lastUpdated of the new text (rules may have changed them):
    // from the streaming engine's record of them (as strings without a parse when they are
    // plain), else from the whole output.
    let mark = batch_strings.len();
    let outcome = match streamed {
        Some(s) => {
            stats.merge(&s.text.stats);
            let out = scratch.walk.out();
            match s.head.strings(out) {
                Some([id, version_id, last_updated]) => {
                    examine_head(s.type_idx, id, version_id, last_updated, batch_strings)
                }
                None => examine_text(&mut s.head.json(s.resource_type(), out), batch_strings),
            }
        }
        None => match d.deidentify_with(text, prefix, known) {
            Ok(o) => {
                stats.merge(&o.text.stats);
                dest.extend_from_slice(&o.json);
                let mut head = o.head.unwrap_or(o.json);
                examine_text(&mut head, batch_strings)
            }
            Err(e) => return Outcome::Reject(e.to_string(), None, None),
        },
    };
    match outcome {
        ok @ Outcome::Ok { .. } => ok,
        other => {
            batch_strings.truncate(mark);
            dest.truncate(start);
            let reason = match other {
                Outcome::Reject(m, ..) => m,
                _ => "not a resource".into(),
            };
            Outcome::Reject(format!("after de-identification: {reason}"), None, None)
        }
    }
}

/// [`examine`] of a JSON text (parsed in place).
fn examine_text(text: &mut [u8], strings: &mut String) -> Outcome {
    match simd_json::to_tape(text) {
        Ok(tape) => examine(tape.as_value(), None, strings),
        Err(e) => Outcome::Reject(format!("{e}"), None, None),
    }
}

/// De-identifies every record of `batch` (whose text is in `data`) when they were not
/// de-identified as they were checked (after a transform): `data` is replaced by the
/// outputs, the old buffer going back to the batch's pool.
pub fn deidentify_batch(
    d: &Deidentifier,
    known: Option<&super::text::KnownIndex>,
    batch: &mut Batch,
    data: &mut Vec<u8>,
) {
    let prefix = scope_prefix(d, &batch.file.name);
    let records = std::mem::take(&mut batch.records);
    let mut rejected = false;
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(data.len());
    for mut r in records {
        let text = &data[r.json.clone()];
        let start = out.len();
        let outcome = deidentify_one(
            d,
            known,
            &prefix,
            None,
            text,
            &mut scratch,
            &mut out,
            &mut batch.strings,
            &mut batch.text,
        );
        match outcome {
            Outcome::Ok {
                id,
                version_id,
                last_updated,
                ..
            } => {
                r.json = start..out.len();
                r.id = id;
                r.version_id = version_id;
                r.last_updated = last_updated;
                batch.records.push(r);
            }
            other => {
                let reason = match other {
                    Outcome::Reject(m, ..) => m,
                    _ => "not a resource".into(),
                };
                // The original text is copied only for a reject.
                batch.rejects.push(Reject {
                    line: r.line,
                    text: text.to_vec(),
                    reason,
                    type_idx: Some(r.type_idx),
                    outcome: None,
                    entry: r.entry,
                });
                rejected = true;
            }
        }
    }
    let old = std::mem::replace(data, out);
    if let Some(pool) = &batch.pool {
        pool.give(old);
    }
    if rejected {
        batch.rejects.sort_by_key(|r| (r.line, r.entry));
    }
}
