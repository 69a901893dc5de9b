//! Finds the line of a dotted key path in a TOML text, so checks made after deserialization can
//! still point at the line the user has to edit.

use super::error::line_of;

/// Spans of keys in the final (interpolated, overridden) definition text.
pub(crate) struct Locator {
    text: String,
    doc: Option<toml_edit::Document<String>>,
}

impl Locator {
    pub(crate) fn new(text: &str) -> Self {
        Locator {
            text: text.to_string(),
            doc: toml_edit::Document::parse(text.to_string()).ok(),
        }
    }

    /// 1-based line of the key at `path` (or of the deepest existing table on the way).
    pub(crate) fn line(&self, path: &[&str]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut item: &toml_edit::Item = doc.as_item();
        let mut best = None;
        for seg in path {
            let (key, next) = match item {
                toml_edit::Item::Table(t) => t.get_key_value(seg)?,
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => t.get_key_value(seg)?,
                _ => break,
            };
            if let Some(span) = key.span().or_else(|| next.span()) {
                best = Some(line_of(&self.text, span.start));
            }
            item = next;
        }
        best
    }
}
