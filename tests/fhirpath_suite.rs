//! The official FHIRPath R4 suite (`../shared/suites/fhirpath-r4/tests-fhir-r4.xml`): every test
//! is run on the input it names: an XML file is converted at test time by `fhirpipe::fhir::xml`
//! (never committed), a JSON file is read as it is.
//! Prints pass / fail / not run per group and overall, and fails when fewer pass than the floor
//! (so regressions fail). A second test converts the inputs that exist in both forms and
//! compares them with the JSON. Fails under CI=true when ../shared is missing; skips with a
//! reason elsewhere.

mod support;

use fhirpipe::fhir;
use fhirpipe::fhirpath::{Decimal, Expression, Item, R4TypeInfo, TemporalKind};
use simd_json::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Tests that passed when this floor was last raised.
const PASS_FLOOR: usize = 934;

#[derive(Debug, Default)]
struct Test {
    group: String,
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
    /// `mode="strict"` or `invalid="semantic"`: the static check must find the error.
    strict: bool,
    predicate: bool,
    ordered: bool,
    outputs: Vec<(String, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + end]))
}

/// Reads the suite's simple format: `<group>`, `<test>`, `<expression>`, `<output>`; skips
/// comments and `<modeTest>`.
fn read_suite(xml: &str) -> Vec<Test> {
    let mut tests = Vec::new();
    let mut group = String::new();
    let mut cur: Option<Test> = None;
    let mut i = 0;
    while let Some(p) = xml[i..].find('<') {
        let start = i + p;
        if xml[start..].starts_with("<!--") {
            i = xml[start..]
                .find("-->")
                .map_or(xml.len(), |e| start + e + 3);
            continue;
        }
        let Some(e) = xml[start..].find('>') else {
            break;
        };
        let tag = &xml[start..start + e + 1];
        i = start + e + 1;
        let text_end = xml[i..].find('<').map_or(xml.len(), |t| i + t);
        let text = unescape(&xml[i..text_end]);
        if tag.starts_with("<group ") {
            group = attr(tag, "name").unwrap_or_default();
        } else if tag.starts_with("<test ") || tag == "<test>" {
            cur = Some(Test {
                group: group.clone(),
                name: attr(tag, "name").unwrap_or_else(|| format!("(unnamed {})", tests.len())),
                input: attr(tag, "inputfile"),
                predicate: attr(tag, "predicate").as_deref() == Some("true"),
                strict: attr(tag, "mode").as_deref() == Some("strict"),
                ordered: attr(tag, "ordered").as_deref() != Some("false"),
                ..Test::default()
            });
        } else if tag.starts_with("<expression") {
            if let Some(t) = cur.as_mut() {
                t.expression = text;
                t.invalid = attr(tag, "invalid").is_some();
                t.strict |= attr(tag, "invalid").as_deref() == Some("semantic");
            }
        } else if tag.starts_with("<output") {
            if let Some(t) = cur.as_mut() {
                t.outputs
                    .push((attr(tag, "type").unwrap_or_default(), text));
            }
        } else if tag.starts_with("</test>") {
            tests.extend(cur.take());
        }
    }
    tests
}

/// The JSON file for an input, if the suite has one.
fn json_input(suite: &Path, input: &str) -> Option<std::path::PathBuf> {
    let json = input
        .strip_suffix(".xml")
        .map_or(input.to_string(), |b| format!("{b}.json"));
    [
        suite.join("input-json").join(&json),
        suite.join("input").join(&json),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The input as JSON. A test that names an XML file runs on that file converted (the suite's
/// JSON copies lack some of what the XML has: `xml_inputs_convert_to_their_json` shows where);
/// one that names a JSON file runs on it. `Err` says why there is no input.
fn input_json(suite: &Path, input: &str) -> Result<Vec<u8>, String> {
    let xml = suite.join("input").join(input);
    if !input.ends_with(".xml") || !xml.is_file() {
        return json_input(suite, input)
            .map(|p| std::fs::read(p).expect("input file"))
            .ok_or_else(|| format!("input {input} not found"));
    }
    let text = std::fs::read_to_string(&xml).map_err(|e| format!("input {input}: {e}"))?;
    fhir::xml::resource_to_json(&text)
        .map(String::into_bytes)
        .map_err(|e| format!("input {input} does not convert: {e}"))
}

/// An item as the suite writes outputs.
fn shown(it: &Item<'_>) -> String {
    match &*it.prim() {
        Item::Bool(b) => b.to_string(),
        Item::Int(i) => i.to_string(),
        Item::Dec(d) => d.to_string(),
        Item::Str(s) => s.to_string(),
        Item::Temporal(t) if t.kind == TemporalKind::Time => format!("@T{t}"),
        Item::Temporal(t) => format!("@{t}"),
        Item::Quantity(v, u) => format!("{v} '{u}'"),
        other => fhirpipe::fhirpath::to_json(std::slice::from_ref(other)),
    }
}

fn same(expected: &(String, String), got: &str) -> bool {
    if expected.0 == "decimal" || expected.0 == "integer" {
        if let (Some(a), Some(b)) = (Decimal::parse(&expected.1), Decimal::parse(got)) {
            return a == b;
        }
    }
    expected.1 == got
}

/// Runs one test: `Ok(())` or `Err(what happened)`.
fn run(t: &Test, resource: &[u8]) -> Result<(), String> {
    let mut bytes = resource.to_vec();
    let tape = simd_json::to_tape(&mut bytes).map_err(|e| format!("input: {e}"))?;
    let expr = match Expression::parse(&t.expression) {
        Ok(e) => e,
        Err(_) if t.invalid => return Ok(()),
        Err(e) => return Err(format!("parse error {e}")),
    };
    // Strict mode (the static check against the R4 model) runs on every test: it must find
    // the semantic errors and raise no false alarm on the valid expressions.
    let resource = tape.as_value();
    let context = resource
        .get("resourceType")
        .and_then(|r| r.into_string())
        .unwrap_or("");
    match expr.check(context, &R4TypeInfo::new()) {
        Err(_) if t.invalid && t.strict => return Ok(()),
        Err(e) if !t.invalid => return Err(format!("strict check: {e}")),
        _ => {}
    }
    let items = match expr.evaluate(resource) {
        Ok(v) => v,
        Err(_) if t.invalid => return Ok(()),
        Err(e) => return Err(format!("error {e}")),
    };
    if t.invalid {
        return Err(format!(
            "expected an error, got {}",
            fhirpipe::fhirpath::to_json(&items)
        ));
    }
    let mut got: Vec<String> = items.iter().map(shown).collect();
    if t.predicate {
        let b = match items.as_slice() {
            [x] => !matches!(&*x.prim(), Item::Bool(false)),
            _ => !items.is_empty(),
        };
        got = vec![b.to_string()];
    }
    let mut want = t.outputs.clone();
    if !t.ordered {
        got.sort();
        want.sort_by(|a, b| a.1.cmp(&b.1));
    }
    if got.len() == want.len() && want.iter().zip(&got).all(|(w, g)| same(w, g)) {
        Ok(())
    } else {
        let w: Vec<&str> = want.iter().map(|w| w.1.as_str()).collect();
        Err(format!("expected {w:?}, got {got:?}"))
    }
}

#[test]
fn official_fhirpath_r4_suite() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let suite = shared.join("suites/fhirpath-r4");
    let xml = std::fs::read_to_string(suite.join("tests-fhir-r4.xml")).expect("the suite file");
    let tests = read_suite(&xml);
    // 937 `<test` tags, two of them inside an XML comment.
    assert_eq!(tests.len(), 935, "tests read from tests-fhir-r4.xml");
    let mut groups: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let (mut failures, mut not_run) = (Vec::new(), Vec::new());
    let mut inputs: BTreeMap<String, Result<Vec<u8>, String>> = BTreeMap::new();
    for t in &tests {
        let g = groups.entry(&t.group).or_default();
        let resource = match &t.input {
            None => Ok(b"{}".to_vec()),
            Some(f) => inputs
                .entry(f.clone())
                .or_insert_with(|| input_json(&suite, f))
                .clone(),
        };
        let resource = match resource {
            Ok(r) => r,
            Err(why) => {
                g[2] += 1;
                not_run.push(format!("{} ({}): {why}", t.name, t.group));
                continue;
            }
        };
        match run(t, &resource) {
            Ok(()) => g[0] += 1,
            Err(e) => {
                g[1] += 1;
                failures.push(format!(
                    "{} ({}): {} => {e}",
                    t.name,
                    t.group,
                    t.expression.replace('\n', " ")
                ));
            }
        }
    }
    println!(
        "{:<45} {:>5} {:>5} {:>7}",
        "group", "pass", "fail", "not run"
    );
    for (g, [p, f, n]) in &groups {
        println!("{g:<45} {p:>5} {f:>5} {n:>7}");
    }
    let pass: usize = groups.values().map(|c| c[0]).sum();
    let fail: usize = groups.values().map(|c| c[1]).sum();
    println!(
        "total: {pass} pass, {fail} fail, {} not run, of {}",
        not_run.len(),
        tests.len()
    );
    println!("\nnot run:");
    for n in &not_run {
        println!("  {n}");
    }
    println!("\nfailures:");
    for f in &failures {
        println!("  {f}");
    }
    // The one left: LowBoundaryDecimal15 expects `-0.0`; our exact decimal (an i128
    // mantissa) has no negative zero and prints `0.0`, the same number.
    assert!(
        pass >= PASS_FLOOR,
        "{pass} tests passed, the floor is {PASS_FLOOR}"
    );
}

/// Issue 3: the converter on the suite's inputs that exist both as XML and as JSON: each XML
/// file converted must equal its JSON file (as JSON values: key order and number spelling do
/// not count). Prints how many are equal and the first difference of the others.
#[test]
fn xml_inputs_convert_to_their_json() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let suite = shared.join("suites/fhirpath-r4");
    let mut names: Vec<String> = std::fs::read_dir(suite.join("input"))
        .expect("input folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    let (mut both, mut equal, mut different) = (0, 0, Vec::new());
    for name in &names {
        let Some(json) = json_input(&suite, name) else {
            continue;
        };
        both += 1;
        let xml = std::fs::read_to_string(suite.join("input").join(name)).expect("xml");
        let converted = fhir::xml::resource_to_json(&xml)
            .unwrap_or_else(|e| panic!("{name} does not convert: {e}"));
        let got: serde_json::Value = serde_json::from_str(&converted).expect("converted JSON");
        let want: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("suite JSON");
        match first_difference(&want, &got, "") {
            None => equal += 1,
            Some(d) => different.push(format!("{name}: {d}")),
        }
    }
    println!("{equal} of {both} XML inputs convert to exactly their JSON");
    for d in &different {
        println!("  {d}");
    }
    assert_eq!(both, 4, "inputs in both forms");
    // codesystem-example.xml: its `description` attribute has a line break, which XML
    // attribute normalisation turns into spaces (one per whitespace character); the suite's
    // JSON has one space there. observation-example.json lacks the XML's patient-age
    // extension (which testFHIRPathIsFunction8-10 query). Both are the JSON copies' doing.
    let names: Vec<String> = different
        .iter()
        .map(|d| d.split(": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        names,
        [
            "codesystem-example.xml: .description",
            "observation-example.xml: .extension"
        ],
        "{different:#?}"
    );
    assert_eq!(equal, 2);
}

/// The path of the first difference between two JSON values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => {
                        if let Some(d) = first_difference(v, w, &p) {
                            return Some(d);
                        }
                    }
                    (v, w) => return Some(format!("{p}: JSON has {v:?}, converted has {w:?}")),
                }
            }
            None
        }
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        (Number(x), Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path}: JSON has {a}, converted has {b}")),
    }
}
