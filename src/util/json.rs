//! JSON string escaping shared by the writers that build JSON by hand (the de-identification
//! engines, the sample generator): the bytes `serde_json` writes (`\"`, `\\`, the short
//! escapes of control characters, `\u00xx` for the others, nothing else), eight bytes at a
//! time, since most strings (codes, ids, base64, notes) have nothing to escape.

/// Appends `s` JSON-escaped, without quotes.
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Some byte of `w` is below 0x20, or is `"` or `\`.
    let special = |w: u64| {
        let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
        (w.wrapping_sub(LO * 0x20) & !w & HI) | zero(w ^ (LO * 0x22)) | zero(w ^ (LO * 0x5c))
    };
    let b = s.as_bytes();
    out.reserve(b.len());
    let mut start = 0;
    let mut i = 0;
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    while i < b.len() {
        if i + 8 <= b.len() {
            if special(word(i)) == 0 {
                i += 8;
                continue;
            }
        } else if b.len() >= 8 && special(word(b.len() - 8)) == 0 {
            // The tail, read as the last eight bytes (overlapping what was checked): clean.
            break;
        }
        let end = (i + 8).min(b.len());
        for (j, &c) in b.iter().enumerate().take(end).skip(i) {
            let esc: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..=0x1f => b"",
                _ => continue,
            };
            out.extend_from_slice(&b[start..j]);
            if esc.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            } else {
                out.extend_from_slice(esc);
            }
            start = j + 1;
        }
        i = end;
    }
    out.extend_from_slice(&b[start..]);
}

/// Appends `s` as a JSON string literal.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::write_str;

    #[test]
    fn escapes_as_serde_json_does() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than eight bytes".into(),
            "quote \" backslash \\ slash / tab \t nl \n cr \r".into(),
            "é ü 中文 😀 and \u{7f} \u{2028}".into(),
            "\"\"\"\"\"\"\"\"\"\\\\\\\\\\\\\\\\".into(),
        ];
        // Every control character, at every offset of a word.
        for c in 0u8..0x20 {
            for pad in 0..9 {
                cases.push(format!("{}{}{}", "a".repeat(pad), c as char, "bcdefghijk"));
            }
        }
        // A quote or a newline at every position of strings of 1 to 23 bytes, so that the
        // last, overlapping word of the scan meets it too.
        for len in 1..24 {
            for at in 0..len {
                for c in ['"', '\n'] {
                    let mut s: String = "x".repeat(len);
                    s.replace_range(at..at + 1, &c.to_string());
                    cases.push(s);
                }
            }
        }
        for s in &cases {
            let mut got = Vec::new();
            write_str(s, &mut got);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }
}
