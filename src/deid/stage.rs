//! The `[deidentify]` pipeline stage: runs the engine on every record of a batch after the
//! checks and the transform, on the worker that checked it. The de-identified text is appended
//! to the batch's buffer and the record re-pointed at it (its id, versionId and lastUpdated are
//! read again, since rules may hash or shift them); a resource the engine refuses becomes a
//! reject with the reason, so conservation holds unchanged. Free-text counts are summed into
//! the batch for the run report.

use super::Deidentifier;
use crate::batch::{Batch, Reject};
use crate::stage::check::{examine, Outcome};

/// De-identifies every record of `batch` (whose text is in `data`).
pub fn deidentify_batch(
    d: &Deidentifier,
    known: Option<&super::text::KnownIndex>,
    batch: &mut Batch,
    data: &mut Vec<u8>,
) {
    let prefix = std::path::Path::new(&batch.file.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = match d.parameters().date_shift_scope {
        super::DateShiftScope::Folder => std::path::Path::new(&batch.file.name)
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => prefix,
    };
    let records = std::mem::take(&mut batch.records);
    let mut rejected = false;
    let mut buf = Vec::new();
    for mut r in records {
        let original = r.json.clone();
        // The original text is copied only for a reject.
        let fail = |data: &[u8], reason: String| Reject {
            line: r.line,
            text: data[original.clone()].to_vec(),
            reason,
            type_idx: Some(r.type_idx),
            outcome: None,
            entry: r.entry,
        };
        let out = match d.deidentify_with(&data[original.clone()], &prefix, known) {
            Ok(o) => {
                batch.text.merge(&o.text.stats);
                o
            }
            Err(e) => {
                batch.rejects.push(fail(data, e.to_string()));
                rejected = true;
                continue;
            }
        };
        // Read id, versionId and lastUpdated of the new text (rules may have changed them):
        // from the streaming engine's summary of them, else from the whole output.
        buf.clear();
        buf.extend_from_slice(out.head.as_deref().unwrap_or(&out.json));
        let mark = batch.strings.len();
        let outcome = match simd_json::to_tape(&mut buf) {
            Ok(tape) => examine(tape.as_value(), None, &mut batch.strings),
            Err(e) => Outcome::Reject(format!("{e}"), None, None),
        };
        match outcome {
            Outcome::Ok {
                id,
                version_id,
                last_updated,
                ..
            } => {
                let start = data.len();
                data.extend_from_slice(&out.json);
                r.json = start..data.len();
                r.id = id;
                r.version_id = version_id;
                r.last_updated = last_updated;
                batch.records.push(r);
            }
            other => {
                batch.strings.truncate(mark);
                let reason = match other {
                    Outcome::Reject(m, ..) => m,
                    _ => "not a resource".into(),
                };
                batch
                    .rejects
                    .push(fail(data, format!("after de-identification: {reason}")));
                rejected = true;
            }
        }
    }
    if rejected {
        batch.rejects.sort_by_key(|r| (r.line, r.entry));
    }
}
