//! JSON equality with numbers compared by their literal text (`1.50` ≠ `1.5`), the measure of
//! the lossless round trip: objects as unordered maps, arrays in order, strings after
//! unescaping. Works on the original bytes with the span scanner, so no f64 is involved.

use crate::stage::transform::splice::{decode, skip_ws, Elements, Members};
use std::collections::BTreeMap;

/// The first difference between two JSON texts, as a JSON Pointer and what differs; `None`
/// when they are equal.
pub fn json_diff(a: &[u8], b: &[u8]) -> Option<String> {
    diff(a, skip_ws(a, 0), b, skip_ws(b, 0), &mut String::new())
}

fn end(s: &[u8], i: usize) -> usize {
    crate::stage::transform::splice::value_end(s, i)
}

fn diff(a: &[u8], i: usize, b: &[u8], j: usize, ptr: &mut String) -> Option<String> {
    let (ka, kb) = (a.get(i).copied(), b.get(j).copied());
    let show = |s: &[u8], k: usize| {
        String::from_utf8_lossy(&s[k..end(s, k)])
            .chars()
            .take(80)
            .collect::<String>()
    };
    let here = |ptr: &String| {
        if ptr.is_empty() {
            "/".to_string()
        } else {
            ptr.clone()
        }
    };
    match (ka, kb) {
        (Some(b'{'), Some(b'{')) => {
            let ma: BTreeMap<String, usize> = Members::new(a, i)
                .map(|m| (decode(&a[m.key]).into_owned(), m.value.start))
                .collect();
            let mb: BTreeMap<String, usize> = Members::new(b, j)
                .map(|m| (decode(&b[m.key]).into_owned(), m.value.start))
                .collect();
            for (k, &va) in &ma {
                let at = ptr.len();
                ptr.push('/');
                ptr.push_str(k);
                let d = match mb.get(k) {
                    None => Some(format!("{ptr}: missing on the right")),
                    Some(&vb) => diff(a, va, b, vb, ptr),
                };
                ptr.truncate(at);
                if d.is_some() {
                    return d;
                }
            }
            mb.keys()
                .find(|k| !ma.contains_key(*k))
                .map(|k| format!("{}/{k}: only on the right", ptr))
        }
        (Some(b'['), Some(b'[')) => {
            let ea: Vec<usize> = Elements::new(a, i).map(|r| r.start).collect();
            let eb: Vec<usize> = Elements::new(b, j).map(|r| r.start).collect();
            if ea.len() != eb.len() {
                return Some(format!("{}: {} items vs {}", here(ptr), ea.len(), eb.len()));
            }
            for (n, (&x, &y)) in ea.iter().zip(&eb).enumerate() {
                let at = ptr.len();
                ptr.push_str(&format!("/{n}"));
                let d = diff(a, x, b, y, ptr);
                ptr.truncate(at);
                if d.is_some() {
                    return d;
                }
            }
            None
        }
        (Some(b'"'), Some(b'"')) => {
            let (x, y) = (&a[i..end(a, i)], &b[j..end(b, j)]);
            (decode(x) != decode(y))
                .then(|| format!("{}: {} vs {}", here(ptr), show(a, i), show(b, j)))
        }
        _ => {
            let (x, y) = (&a[i..end(a, i)], &b[j..end(b, j)]);
            (x != y).then(|| format!("{}: {} vs {}", here(ptr), show(a, i), show(b, j)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_diff;

    #[test]
    fn numbers_compare_by_text_and_objects_by_members() {
        assert_eq!(
            json_diff(br#"{"a":1,"b":[1,"x"]}"#, br#"{ "b":[1,"x"], "a":1 }"#),
            None
        );
        assert_eq!(
            json_diff(br#"{"a":{"v":1.50}}"#, br#"{"a":{"v":1.5}}"#).as_deref(),
            Some("/a/v: 1.50 vs 1.5")
        );
        assert_eq!(
            json_diff(br#"{"s":"\u00e9"}"#, "{\"s\":\"\u{e9}\"}".as_bytes()),
            None
        );
        assert_eq!(
            json_diff(br#"{"a":[1]}"#, br#"{"a":[1,2]}"#).as_deref(),
            Some("/a: 1 items vs 2")
        );
        assert_eq!(
            json_diff(br#"{"a":1}"#, br#"{"a":1,"b":null}"#).as_deref(),
            Some("/b: only on the right")
        );
    }
}
