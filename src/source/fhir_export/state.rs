//! The `fhir_export` state file: the last committed export's `transactionTime` (the next
//! run's `_since`), as a small JSON document on local disk or in a blob. Reads tolerate a
//! missing file (the first run); writes are atomic (temp file + rename, or one blob put), so
//! a crash leaves either the old or the new watermark, never half of one.

use super::super::SourceError;
use crate::storage::{BlobStore, Location, StorageConfig};
use serde::{Deserialize, Serialize};

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportState {
    /// The manifest's `transactionTime` of the last run that committed.
    pub transaction_time: String,
    /// Its kick-off request (without query), for people reading the file.
    pub request: String,
    /// The pipeline that wrote it.
    pub pipeline: String,
}

fn state_err(loc: &Location, message: impl Into<String>) -> SourceError {
    SourceError::State {
        path: loc.to_string(),
        message: message.into(),
    }
}

/// Reads the state file; `None` when it does not exist yet.
pub(super) fn load(
    loc: &Location,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ExportState>, SourceError> {
    let bytes = match loc {
        Location::Local(p) => match std::fs::read(p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_err(loc, format!("cannot read it: {e}"))),
        },
        Location::Blob(b) => {
            let store = BlobStore::open(b, storage, env)?;
            if store.size(&b.prefix)?.is_none() {
                return Ok(None);
            }
            store.get(&b.prefix)?
        }
    };
    let st: ExportState = serde_json::from_slice(&bytes).map_err(|e| {
        state_err(
            loc,
            format!("is not a fhirpipe export state ({e}); fix: delete it to export everything again, or write {{\"transactionTime\": \"<instant>\", \"request\": \"\", \"pipeline\": \"<name>\"}}"),
        )
    })?;
    if crate::fhir::parse_instant_micros(&st.transaction_time).is_err() {
        return Err(state_err(
            loc,
            format!(
                "transactionTime `{}` is not a FHIR instant; fix: correct or delete the file",
                st.transaction_time
            ),
        ));
    }
    Ok(Some(st))
}

/// Writes the state file atomically.
pub(super) fn save(
    loc: &Location,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
    st: &ExportState,
) -> Result<(), SourceError> {
    let mut text = serde_json::to_vec_pretty(st)
        .map_err(|e| state_err(loc, format!("cannot encode it: {e}")))?;
    text.push(b'\n');
    match loc {
        Location::Local(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| state_err(loc, format!("cannot create its folder: {e}")))?;
            }
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "state".into());
            let tmp = p.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&text)?;
                f.sync_all()?;
                std::fs::rename(&tmp, p)
            };
            write().map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                state_err(loc, format!("cannot write it: {e}"))
            })
        }
        Location::Blob(b) => {
            let store = BlobStore::open(b, storage, env)?;
            store.put(&b.prefix, text)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn issue5_state_round_trips_and_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::Local(dir.path().join("state/export.json"));
        let cfg = StorageConfig::default();
        assert_eq!(load(&loc, &cfg, &no_env).unwrap(), None);
        let st = ExportState {
            transaction_time: "2026-11-23T12:00:00Z".into(),
            request: "https://fhir.example/$export".into(),
            pipeline: "p".into(),
        };
        save(&loc, &cfg, &no_env, &st).unwrap();
        assert_eq!(load(&loc, &cfg, &no_env).unwrap(), Some(st.clone()));
        let newer = ExportState {
            transaction_time: "2026-11-24T12:00:00Z".into(),
            ..st
        };
        save(&loc, &cfg, &no_env, &newer).unwrap();
        assert_eq!(load(&loc, &cfg, &no_env).unwrap(), Some(newer));
        // No temp file is left beside it.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["export.json"]);
    }

    #[test]
    fn issue5_a_corrupt_state_file_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(
            &p,
            r#"{"transactionTime": "yesterday", "request": "", "pipeline": "p"}"#,
        )
        .unwrap();
        let e = load(
            &Location::Local(p.clone()),
            &StorageConfig::default(),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            format!(
                "state file {}: transactionTime `yesterday` is not a FHIR instant; fix: correct or delete the file",
                p.display()
            )
        );
    }
}
