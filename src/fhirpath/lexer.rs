//! Cuts a FHIRPath expression into tokens with their byte positions: identifiers (plain and
//! `` `delimited` ``), strings with escapes, numbers, `@` date/time literals, `%` environment
//! variables, operators and punctuation. Comments (`//`, `/* */`) and whitespace are skipped.

use super::error::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (`Patient`, `and`, `` `div` `` gives `div` with `quoted`).
    Ident {
        /// The name, unescaped.
        name: String,
        /// Written with backticks (never a keyword).
        quoted: bool,
    },
    /// A string literal, unescaped.
    Str(String),
    /// A number as written (`12`, `1.50`).
    Number(String),
    /// `@2015-02-04T14:34`, without the `@`.
    DateTime(String),
    /// `@T14:34`, without the `@T`.
    Time(String),
    /// `%name`, `` %`vs-x` `` or `%'x'`, without the `%`.
    Env(String),
    /// An operator or punctuation: `. , ( ) [ ] { } + - * / & | = != ~ !~ < > <= >= $`.
    Sym(&'static str),
    /// The end of the expression.
    End,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset in the expression.
    pub pos: usize,
}

const SYMS: [&str; 22] = [
    "!=", "!~", "<=", ">=", ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "&", "|",
    "=", "~", "<", ">",
];

/// Undoes the escapes of FHIRPath strings (the same as JSON's).
pub fn unescape(s: &str, pos: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                out.push(ch.ok_or_else(|| ParseError::new(pos, format!("bad escape \\u{hex}")))?);
            }
            Some(c) => out.push(c),
            None => return Err(ParseError::new(pos, "unfinished escape")),
        }
    }
    Ok(out)
}

/// Reads a quoted run starting after the opening `q`; returns the raw text and the end offset.
fn quoted(src: &str, start: usize, q: u8) -> Result<(&str, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return Ok((&src[start + 1..i], i + 1)),
            _ => i += 1,
        }
    }
    Err(ParseError::new(start, "unterminated quote"))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `src` into tokens, ending with [`Tok::End`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |p| i + p);
            continue;
        }
        if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .ok_or_else(|| ParseError::new(i, "unterminated comment"))?;
            i += end + 4;
            continue;
        }
        let pos = i;
        let tok = if is_ident_start(c) {
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            Tok::Ident {
                name: src[pos..i].to_string(),
                quoted: false,
            }
        } else if c == b'`' {
            let (raw, end) = quoted(src, i, b'`')?;
            i = end;
            Tok::Ident {
                name: unescape(raw, pos)?,
                quoted: true,
            }
        } else if c == b'\'' {
            let (raw, end) = quoted(src, i, b'\'')?;
            i = end;
            Tok::Str(unescape(raw, pos)?)
        } else if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Tok::Number(src[pos..i].to_string())
        } else if c == b'@' {
            i += 1;
            let time = b.get(i) == Some(&b'T');
            if time {
                i += 1;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b"-:.TZ+".contains(&b[i])) {
                if b[i] == b'.' && !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    break;
                }
                // a `+`/`-` after the seconds is a zone only when followed by hh:mm
                if (b[i] == b'+' || b[i] == b'-') && i > start && src[start..i].contains(':') {
                    let z = &b[i + 1..];
                    if !(z.len() >= 5 && z[..2].iter().all(u8::is_ascii_digit) && z[2] == b':') {
                        break;
                    }
                }
                i += 1;
            }
            let text = src[start..i].to_string();
            if time {
                Tok::Time(text)
            } else {
                Tok::DateTime(text)
            }
        } else if c == b'%' {
            i += 1;
            match b.get(i) {
                Some(&q @ (b'`' | b'\'')) => {
                    let (raw, end) = quoted(src, i, q)?;
                    i = end;
                    Tok::Env(unescape(raw, pos)?)
                }
                Some(&c) if is_ident_start(c) => {
                    let s = i;
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                    Tok::Env(src[s..i].to_string())
                }
                _ => return Err(ParseError::new(pos, "expected a variable name after %")),
            }
        } else if c == b'$' {
            let s = i + 1;
            i = s;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            match &src[s..i] {
                "this" => Tok::Sym("$this"),
                "index" => Tok::Sym("$index"),
                "total" => Tok::Sym("$total"),
                other => {
                    return Err(ParseError::new(
                        pos,
                        format!("unknown special variable ${other}"),
                    ))
                }
            }
        } else if let Some(s) = SYMS.iter().find(|s| src[i..].starts_with(**s)) {
            i += s.len();
            Tok::Sym(s)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(ParseError::new(pos, format!("unexpected character {ch:?}")));
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn cuts_tokens() {
        assert_eq!(
            toks("Patient.name /* c */ != 'a\\'b' // x"),
            vec![
                Tok::Ident {
                    name: "Patient".into(),
                    quoted: false
                },
                Tok::Sym("."),
                Tok::Ident {
                    name: "name".into(),
                    quoted: false
                },
                Tok::Sym("!="),
                Tok::Str("a'b".into()),
                Tok::End
            ]
        );
        assert_eq!(
            toks("@2015-02-04T14:34:28+10:00")[0],
            Tok::DateTime("2015-02-04T14:34:28+10:00".into())
        );
        assert_eq!(
            toks("@T14:34 - 1")[..3],
            [
                Tok::Time("14:34".into()),
                Tok::Sym("-"),
                Tok::Number("1".into())
            ]
        );
        assert_eq!(
            toks("1.5.round()")[..2],
            [Tok::Number("1.5".into()), Tok::Sym(".")]
        );
        assert_eq!(toks("%`vs-x`")[0], Tok::Env("vs-x".into()));
        assert_eq!(
            toks("@2015.is(Date)")[..2],
            [Tok::DateTime("2015".into()), Tok::Sym(".")]
        );
    }

    #[test]
    fn reports_positions() {
        assert_eq!(
            tokenize("1 + 'abc").unwrap_err().to_string(),
            "at 4: unterminated quote"
        );
        assert_eq!(
            tokenize("2 /* x").unwrap_err().to_string(),
            "at 2: unterminated comment"
        );
        assert_eq!(
            tokenize("a # b").unwrap_err().to_string(),
            "at 2: unexpected character '#'"
        );
    }
}
