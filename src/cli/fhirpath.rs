//! `fhirpipe fhirpath EXPR [FILE]`: evaluates an expression on a JSON resource, on an XML
//! resource (converted by `fhir::xml`), or on every line of an NDJSON file (stdin when FILE is
//! absent), and prints one JSON array per resource. For
//! debugging de-identification rules and views. `--var name=value` defines `%name` as a string;
//! `--strict` first checks the expression against the R4 model for each resource's type.
//! Exit codes: 2 bad expression (position shown), bad or undefined variable, 3 I/O, 5 invalid
//! JSON input.

use crate::exit::ExitCode;
use crate::fhirpath::{default_types, to_json, Env, Expression};
use simd_json::prelude::*;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Arguments of `fhirpipe fhirpath`.
#[derive(Debug, clap::Args)]
pub struct FhirpathArgs {
    /// The FHIRPath expression, e.g. "Patient.name.where(use='official').given.first()".
    expression: String,
    /// A JSON resource or an NDJSON file (one resource per line); stdin when absent.
    file: Option<PathBuf>,
    /// Defines `%NAME` as the string VALUE (repeatable), e.g. `--var system=http://loinc.org`.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Check the expression against the R4 model for each resource's type before evaluating
    /// (unknown elements, `valueQuantity` instead of `value.ofType(Quantity)`, ...).
    #[arg(long)]
    strict: bool,
}

/// The expression with a caret under byte `pos`.
fn pointed(expr: &str, pos: usize) -> String {
    let col = expr[..pos.min(expr.len())].chars().count();
    format!("  {expr}\n  {}^", " ".repeat(col))
}

/// Evaluates one JSON text; `Err((message, exit code))`.
fn eval_one(
    expr: &Expression,
    env: &Env<'_>,
    strict: bool,
    text: &[u8],
    out: &mut String,
) -> Result<(), (String, ExitCode)> {
    let mut bytes = text.to_vec();
    let tape = simd_json::to_tape(&mut bytes)
        .map_err(|e| (format!("invalid JSON: {e}"), ExitCode::InvalidInput))?;
    let resource = tape.as_value();
    if strict {
        let context = resource
            .get("resourceType")
            .and_then(|r| r.into_string())
            .unwrap_or("");
        expr.check(context, default_types(resource)).map_err(|e| {
            (
                format!("strict check failed {e}\n{}", pointed(expr.source(), e.pos)),
                ExitCode::Usage,
            )
        })?;
    }
    let items = expr
        .evaluate_with_env(resource, default_types(resource), env)
        .map_err(|e| {
            (
                format!("evaluation failed {e}\n{}", pointed(expr.source(), e.pos)),
                ExitCode::Usage,
            )
        })?;
    out.push_str(&to_json(&items));
    out.push('\n');
    Ok(())
}

/// Runs the command; returns the exit code.
pub fn run(a: FhirpathArgs) -> i32 {
    let expr = match Expression::parse(&a.expression) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "fhirpipe: bad expression {e}\n{}",
                pointed(&a.expression, e.pos)
            );
            return ExitCode::Usage.code();
        }
    };
    let mut env = Env::new();
    for v in &a.vars {
        let set = match v.split_once('=') {
            Some((name, value)) => env
                .set_str(name, value)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err(format!("expected NAME=VALUE, got {v:?}")),
        };
        if let Err(e) = set {
            eprintln!("fhirpipe: --var {e}");
            return ExitCode::Usage.code();
        }
    }
    let mut input = Vec::new();
    let read = match &a.file {
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut input)),
        None => std::io::stdin().read_to_end(&mut input),
    };
    let source = a
        .file
        .as_ref()
        .map_or("stdin".to_string(), |p| p.display().to_string());
    if let Err(e) = read {
        eprintln!("fhirpipe: cannot read {source}: {e}");
        return ExitCode::Io.code();
    }
    // A FHIR XML resource is converted to JSON first (with the R4 model).
    let text = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&input);
    if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        let converted = std::str::from_utf8(text)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|xml| crate::fhir::xml::resource_to_json(xml).map_err(|e| e.to_string()));
        match converted {
            Ok(json) => input = json.into_bytes(),
            Err(e) => {
                eprintln!("fhirpipe: {source} is not an R4 XML resource: {e}");
                return ExitCode::InvalidInput.code();
            }
        }
    }
    let mut out = String::new();
    // One JSON document (possibly pretty-printed) first; otherwise NDJSON, line by line.
    let whole = eval_one(&expr, &env, a.strict, &input, &mut out);
    let result = match whole {
        Err((_, ExitCode::InvalidInput)) => {
            out.clear();
            let mut r = Ok(());
            for (n, line) in input.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err((m, code)) = eval_one(&expr, &env, a.strict, line, &mut out) {
                    r = Err((format!("{source} line {}: {m}", n + 1), code));
                    break;
                }
            }
            r
        }
        other => other,
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    match result {
        Ok(()) => ExitCode::Success.code(),
        Err((m, code)) => {
            eprintln!("fhirpipe: {m}");
            code.code()
        }
    }
}
