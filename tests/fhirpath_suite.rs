//! The official FHIRPath R4 suite (`../shared/suites/fhirpath-r4/tests-fhir-r4.xml`): every test
//! whose input exists as JSON (`input-json/`, `input/`) is run; tests whose input exists only as
//! XML are counted as not run and listed. Prints pass / fail / not run per group and overall, and
//! fails when fewer pass than the floor (so regressions fail). Fails under CI=true when
//! ../shared is missing; skips with a reason elsewhere.

mod support;

use fhirpipe::fhirpath::{Decimal, Expression, Item, TemporalKind};
use std::collections::BTreeMap;
use std::path::Path;

/// Tests that passed when this floor was last raised.
const PASS_FLOOR: usize = 908;

#[derive(Debug, Default)]
struct Test {
    group: String,
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
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
                ordered: attr(tag, "ordered").as_deref() != Some("false"),
                ..Test::default()
            });
        } else if tag.starts_with("<expression") {
            if let Some(t) = cur.as_mut() {
                t.expression = text;
                t.invalid = attr(tag, "invalid").is_some();
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
    let items = match expr.evaluate(tape.as_value()) {
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
    let mut inputs: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for t in &tests {
        let g = groups.entry(&t.group).or_default();
        let resource = match &t.input {
            None => Some(b"{}".to_vec()),
            Some(f) => inputs
                .entry(f.clone())
                .or_insert_with(|| {
                    json_input(&suite, f).map(|p| std::fs::read(p).expect("input file"))
                })
                .clone(),
        };
        let Some(resource) = resource else {
            g[2] += 1;
            not_run.push(format!(
                "{} ({}): input {} exists only as XML",
                t.name,
                t.group,
                t.input.as_deref().unwrap_or("")
            ));
            continue;
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
    assert!(
        pass >= PASS_FLOOR,
        "{pass} tests passed, the floor is {PASS_FLOOR}"
    );
}
