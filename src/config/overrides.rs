//! `--set dotted.path=value` overrides applied to the parsed document before deserialization.
//! A value that parses as a TOML value (`4`, `true`, `["a","b"]`, `"quoted"`) is taken as such;
//! anything else is taken as a plain string (`/tmp/out`).

use super::ConfigError;
use std::path::Path;

/// Applies every override; returns the dotted paths that were set (for error messages).
pub(crate) fn apply(
    file: &Path,
    doc: &mut toml_edit::DocumentMut,
    sets: &[String],
) -> Result<Vec<String>, ConfigError> {
    let mut done = Vec::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(ConfigError::new(
                file,
                format!("--set `{set}` has no `=`"),
                "write overrides as --set dotted.path=value, e.g. --set sinks.lake.path=/tmp/out",
            ));
        };
        let key = key.trim();
        let segs: Vec<&str> = key.split('.').map(str::trim).collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::new(
                file,
                format!("--set `{set}`: `{key}` is not a dotted path"),
                "name the field as section.field, e.g. source.path or sinks.lake.path",
            ));
        }
        let parsed = value
            .trim()
            .parse::<toml_edit::Value>()
            .unwrap_or_else(|_| toml_edit::Value::from(value));
        let mut table: &mut toml_edit::Table = doc.as_table_mut();
        for (i, seg) in segs.iter().enumerate() {
            if i + 1 == segs.len() {
                let decor_kept = table
                    .get(seg)
                    .and_then(|it| it.as_value())
                    .map(|v| (v.decor().prefix().cloned(), v.decor().suffix().cloned()));
                let mut v = parsed.clone();
                if let Some((pre, suf)) = decor_kept {
                    if let Some(p) = pre {
                        v.decor_mut().set_prefix(p);
                    }
                    if let Some(s) = suf {
                        v.decor_mut().set_suffix(s);
                    }
                }
                table.insert(seg, toml_edit::Item::Value(v));
                break;
            }
            let entry = table
                .entry(seg)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            if let Some(inline) = entry.as_inline_table().cloned() {
                *entry = toml_edit::Item::Table(inline.into_table());
            }
            table = match entry.as_table_mut() {
                Some(t) => t,
                None => {
                    return Err(ConfigError::new(
                        file,
                        format!(
                            "--set `{set}`: `{}` is a value, not a section",
                            segs[..=i].join(".")
                        ),
                        "set the value itself, or check the dotted path against the definition",
                    ))
                }
            };
        }
        done.push(key.to_string());
    }
    Ok(done)
}
