//! `${VAR}` and `${VAR:-default}` expansion in string values of a pipeline definition.
//! Only string values are expanded (keys and numbers are not), so a secret never changes the
//! shape of the document. `$${` stands for a literal `${`.

use super::locate::Locator;
use super::ConfigError;
use std::path::Path;

/// Byte index of the `}` closing a `${`, allowing nested `${...}` in defaults.
fn closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands one string. Errors carry the variable name (never its value).
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = closing_brace(body_start) else {
            return Err("`${` without a closing `}`".to_string());
        };
        let body = &body_start[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("`${{{body}}}` is not a variable name"));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(&expand(d, env)?),
            (None, None) => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn walk_value(
    v: &mut toml_edit::Value,
    path: &mut Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<(Vec<String>, String)>,
) {
    match v {
        toml_edit::Value::String(s) => match expand(s.value(), env) {
            Ok(new) if new != *s.value() => {
                let decor = s.decor().clone();
                let mut f = toml_edit::Formatted::new(new);
                *f.decor_mut() = decor;
                *s = f;
            }
            Ok(_) => {}
            Err(e) => errors.push((path.clone(), e)),
        },
        toml_edit::Value::Array(a) => {
            for (i, item) in a.iter_mut().enumerate() {
                path.push(i.to_string());
                walk_value(item, path, env, errors);
                path.pop();
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (k, item) in t.iter_mut() {
                path.push(k.get().to_string());
                walk_value(item, path, env, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

fn walk_item(
    item: &mut toml_edit::Item,
    path: &mut Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<(Vec<String>, String)>,
) {
    match item {
        toml_edit::Item::Value(v) => walk_value(v, path, env, errors),
        toml_edit::Item::Table(t) => {
            for (k, it) in t.iter_mut() {
                path.push(k.get().to_string());
                walk_item(it, path, env, errors);
                path.pop();
            }
        }
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter_mut().enumerate() {
                path.push(i.to_string());
                for (k, it) in t.iter_mut() {
                    path.push(k.get().to_string());
                    walk_item(it, path, env, errors);
                    path.pop();
                }
                path.pop();
            }
        }
        toml_edit::Item::None => {}
    }
}

/// Expands every string in `doc`; the first failure is reported with its line in `original`.
pub(crate) fn expand_document(
    file: &Path,
    original: &toml_edit::Document<String>,
    doc: &mut toml_edit::DocumentMut,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let mut path = Vec::new();
    walk_item(doc.as_item_mut(), &mut path, env, &mut errors);
    if let Some((path, msg)) = errors.into_iter().next() {
        let segs: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .filter(|s| s.parse::<usize>().is_err())
            .collect();
        let line = Locator::new(original.raw()).line(&segs);
        return Err(ConfigError::new(
            file,
            msg,
            "export the variable before running, give a default with ${VAR:-default}, or write $${ for a literal ${",
        )
        .at(line, Some(segs.join("."))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME_DIR" => Some("/home/x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("${HOME_DIR}/out", &env).unwrap(), "/home/x/out");
        assert_eq!(expand("${NOPE:-out}", &env).unwrap(), "out");
        assert_eq!(expand("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${NOPE:-${HOME_DIR}/o}", &env).unwrap(), "/home/x/o");
        assert_eq!(
            expand("${NOPE", &env).unwrap_err(),
            "`${` without a closing `}`"
        );
        assert_eq!(expand("a$b", &env).unwrap(), "a$b");
        assert_eq!(expand("$${HOME_DIR}", &env).unwrap(), "${HOME_DIR}");
        assert_eq!(
            expand("${NOPE}", &env).unwrap_err(),
            "environment variable `NOPE` is not set"
        );
        assert!(expand("${a b}", &env).is_err());
    }
}
