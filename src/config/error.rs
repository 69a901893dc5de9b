//! The one error type of configuration: where (file, line, field), what, and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a pipeline definition or its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The definition file.
    pub file: PathBuf,
    /// 1-based line in the file, when the problem has one.
    pub line: Option<usize>,
    /// Dotted path of the field (`sinks.lake.path`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(file: &Path, message: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn at(mut self, line: Option<usize>, field: Option<String>) -> Self {
        self.line = line;
        self.field = field;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}\n  fix: {}", self.message, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(crate) fn from_syntax(path: &Path, text: &str, e: &toml_edit::TomlError) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start));
    let msg = e.message().trim().to_string();
    ConfigError::new(
        path,
        format!("TOML syntax error: {msg}"),
        "correct the TOML syntax at that line (strings need quotes, tables use [section])",
    )
    .at(line, None)
}

/// Extracts the text between the first pair of backticks after `prefix`.
fn backticked_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    let start = rest.find('`')? + 1;
    let end = start + rest[start..].find('`')?;
    Some(&rest[start..end])
}

/// The names serde lists after "expected" (`one of `a`, `b``, `` `a` or `b` ``, `` `a` ``).
fn expected_names(msg: &str) -> Vec<String> {
    match msg.find("expected ") {
        Some(i) => msg[i..]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn closest<'a>(word: &str, options: &'a [String]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (edit_distance(word, o), o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o.as_str())
}

/// Finds the line of `key =` in the table that starts at `from` (serde errors from tagged
/// sections point at the whole table; the key itself is what the user needs to see).
fn key_line_within(text: &str, from: usize, key: &str) -> Option<usize> {
    let start = line_start(text, from);
    let mut offset = start;
    for (n, line) in text[start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if n > 0 && trimmed.starts_with('[') {
            break;
        }
        if key_of_line(line).as_deref() == Some(key) {
            return Some(line_of(text, offset));
        }
        offset += line.len();
    }
    None
}

fn line_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text[..offset].rfind('\n').map_or(0, |p| p + 1)
}

/// The key of a `key = value` line, if it is one.
fn key_of_line(line: &str) -> Option<String> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    .then(|| k.to_string())
}

/// Dotted path of the TOML table whose header is on or before the line of `offset`
/// (`[sinks.lake]` → `sinks.lake`).
fn table_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let end = text[offset..].find('\n').map_or(text.len(), |p| offset + p);
    text[..end].lines().rev().find_map(|l| {
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        } else {
            None
        }
    })
}

pub(crate) fn from_deserialize(
    path: &Path,
    text: &str,
    e: &toml::de::Error,
    overridden: &[String],
) -> ConfigError {
    let msg = e.message().trim().to_string();
    let span = e.span();
    let table = span.clone().and_then(|s| table_at(text, s.start));
    // The key on the line the error points at, when it is a `key = value` line.
    let key_here = span.clone().and_then(|s| {
        let start = line_start(text, s.start);
        let end = text[start..].find('\n').map_or(text.len(), |p| start + p);
        key_of_line(&text[start..end])
    });
    let join = |k: &str| match &table {
        Some(t) if !t.is_empty() => format!("{t}.{k}"),
        _ => k.to_string(),
    };
    if let Some(field) = backticked_after(&msg, "unknown field ") {
        let options = expected_names(&msg);
        let line = span
            .clone()
            .and_then(|s| key_line_within(text, s.start, field))
            .or_else(|| span.clone().map(|s| line_of(text, s.start)));
        let fix = match closest(field, &options) {
            Some(best) => format!("did you mean `{best}`? Rename `{field}` to `{best}`"),
            None if options.is_empty() => format!("remove `{field}`"),
            None => format!(
                "remove `{field}`; the accepted fields here are: {}",
                options.join(", ")
            ),
        };
        return ConfigError::new(path, format!("unknown field `{field}`"), fix)
            .at(line, Some(join(field)));
    }
    if let Some(variant) = backticked_after(&msg, "unknown variant ") {
        let options = expected_names(&msg);
        let fix = match closest(variant, &options) {
            Some(best) => format!(
                "did you mean `{best}`? Accepted values: {}",
                options.join(", ")
            ),
            None => format!("use one of: {}", options.join(", ")),
        };
        let line = span.clone().map(|s| line_of(text, s.start));
        let field = key_here.as_deref().map(join).or(table);
        return ConfigError::new(path, format!("unknown value `{variant}`"), fix).at(line, field);
    }
    if let Some(field) = backticked_after(&msg, "missing field ") {
        let line = span.clone().map(|s| line_of(text, s.start));
        let where_ = table.clone().unwrap_or_else(|| "the top level".into());
        return ConfigError::new(
            path,
            format!("missing field `{field}` in [{where_}]"),
            format!("add `{field} = ...` to [{where_}] (see pipelines/README.md for its meaning)"),
        )
        .at(line, Some(join(field)));
    }
    let line = span.map(|s| line_of(text, s.start));
    let fix = if overridden.is_empty() {
        "correct the value's type (strings in quotes, numbers bare, lists in [ ])".to_string()
    } else {
        format!(
            "correct the value's type in the file or in the --set overrides ({})",
            overridden.join(", ")
        )
    };
    let field = key_here.as_deref().map(join).or(table);
    ConfigError::new(path, msg, fix).at(line, field)
}
