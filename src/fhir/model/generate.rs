//! The generator of the committed R4 model: reads the official definitions
//! (`profiles-types.json`, `profiles-resources.json`, `valuesets.json`) and writes the compact,
//! sorted line format that `r4.model` holds and [`super::Model`] parses.
//!
//! Not a hot path: it uses `serde_json::Value` and runs only when the model is regenerated
//! (`cargo test -- --ignored regenerate_r4_model`) or compared in a test.
//!
//! Format (one record per line, fields separated by one space, everything sorted):
//!
//! ```text
//! fhirpipe-r4-model 1
//! type <name> <primitive|complex|resource|backbone>
//! pattern <regex>                          (primitive types: the `value` regex, rest of line)
//! elem <name> <min> <max|*> <type>[,<type>...] [<value set>]
//! valueset <name> <code> <code>...
//! ```
//!
//! `elem` lines belong to the `type` line above them. `<name>` keeps `[x]` for choice elements;
//! each listed type is one variant (`value[x]` + `Quantity` = `valueQuantity`). Backbone
//! elements become types named by their path (`Patient.contact`); content references point at
//! such a type. `Resource` as an element type means "any resource" (`contained`,
//! `Bundle.entry.resource`). A value set is listed (and named on `code` elements with a
//! required binding) only when every code of it can be enumerated from `valuesets.json`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// First line of the format; bump the number when the format changes.
pub const HEADER: &str = "fhirpipe-r4-model 1";

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A definition file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A definition file is not JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A definition does not have the shape R4 promises.
    #[error("unexpected definition: {0}")]
    Shape(String),
}

fn load(dir: &Path, name: &str) -> Result<Value, GenerateError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| GenerateError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| GenerateError::Json { path, source })
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
}

fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// Short name of a value set in the model: the part after `http://hl7.org/fhir/ValueSet/`.
fn vs_name(url: &str) -> String {
    let url = strip_version(url);
    url.strip_prefix("http://hl7.org/fhir/ValueSet/")
        .unwrap_or(url)
        .to_string()
}

/// Enumerates value sets and code systems from `valuesets.json`.
struct Terminology<'a> {
    code_systems: BTreeMap<&'a str, Vec<String>>,
    value_sets: BTreeMap<&'a str, &'a Value>,
}

fn collect_concepts(concepts: &Value, out: &mut Vec<String>) {
    for c in concepts.as_array().into_iter().flatten() {
        if let Some(code) = c["code"].as_str() {
            out.push(code.to_string());
        }
        collect_concepts(&c["concept"], out);
    }
}

impl<'a> Terminology<'a> {
    fn new(bundle: &'a Value) -> Self {
        let mut code_systems = BTreeMap::new();
        let mut value_sets = BTreeMap::new();
        for r in entries(bundle) {
            let Some(url) = r["url"].as_str() else {
                continue;
            };
            match r["resourceType"].as_str() {
                Some("CodeSystem") if r["content"] == "complete" => {
                    let mut codes = Vec::new();
                    collect_concepts(&r["concept"], &mut codes);
                    code_systems.insert(url, codes);
                }
                Some("ValueSet") => {
                    value_sets.insert(url, r);
                }
                _ => {}
            }
        }
        Terminology {
            code_systems,
            value_sets,
        }
    }

    /// All codes of a value set, or `None` when they cannot all be enumerated (filters,
    /// excludes, code systems not in the file).
    fn expand(&self, url: &str, depth: usize) -> Option<BTreeSet<String>> {
        if depth > 8 {
            return None;
        }
        let vs = self.value_sets.get(strip_version(url))?;
        let compose = vs.get("compose")?;
        if compose.get("exclude").is_some() {
            return None;
        }
        let mut codes = BTreeSet::new();
        for inc in compose["include"].as_array()? {
            if inc.get("filter").is_some() {
                return None;
            }
            let mut part: Option<BTreeSet<String>> = None;
            if let Some(concepts) = inc["concept"].as_array() {
                part = Some(
                    concepts
                        .iter()
                        .filter_map(|c| c["code"].as_str().map(String::from))
                        .collect(),
                );
            } else if let Some(system) = inc["system"].as_str() {
                part = Some(self.code_systems.get(system)?.iter().cloned().collect());
            }
            for sub in inc["valueSet"].as_array().into_iter().flatten() {
                let sub = self.expand(sub.as_str()?, depth + 1)?;
                part = Some(match part {
                    // `system` + `valueSet` together mean the intersection.
                    Some(p) if inc.get("system").is_some() => {
                        p.intersection(&sub).cloned().collect()
                    }
                    Some(mut p) => {
                        p.extend(sub);
                        p
                    }
                    None => sub,
                });
            }
            codes.extend(part?);
        }
        // The line format separates codes by spaces; a set with a code containing whitespace is
        // left unchecked rather than split wrongly.
        let clean = !codes.is_empty() && !codes.iter().any(|c| c.contains(char::is_whitespace));
        clean.then_some(codes)
    }
}

/// One element line before sorting.
struct Elem {
    name: String,
    min: u64,
    max: String,
    types: Vec<String>,
    value_set: Option<String>,
}

struct TypeOut {
    kind: &'static str,
    pattern: Option<String>,
    elems: Vec<Elem>,
}

/// The FHIR type of one `type` entry: System types are mapped through the
/// `structuredefinition-fhir-type` extension to the FHIR primitive they stand for (`xhtml.id`
/// lacks it: a bare `System.String` is a `string`).
fn type_code(t: &Value) -> Result<String, GenerateError> {
    let code = t["code"]
        .as_str()
        .ok_or_else(|| GenerateError::Shape("type without code".into()))?;
    if !code.starts_with("http://hl7.org/fhirpath/System.") {
        return Ok(code.to_string());
    }
    t["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["url"] == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
        })
        .and_then(|e| e["valueUrl"].as_str())
        .map(String::from)
        .or_else(|| (code == "http://hl7.org/fhirpath/System.String").then(|| "string".into()))
        .ok_or_else(|| GenerateError::Shape(format!("System type {code} without a FHIR type")))
}

/// Generates the compact model text from the definitions in `dir` (`../shared/fhir-r4`).
pub fn generate(dir: &Path) -> Result<String, GenerateError> {
    let types_bundle = load(dir, "profiles-types.json")?;
    let resources_bundle = load(dir, "profiles-resources.json")?;
    let vs_bundle = load(dir, "valuesets.json")?;
    let terminology = Terminology::new(&vs_bundle);

    let mut types: BTreeMap<String, TypeOut> = BTreeMap::new();
    let mut value_sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let sds = entries(&types_bundle)
        .chain(entries(&resources_bundle))
        .filter(|r| r["resourceType"] == "StructureDefinition");
    for sd in sds {
        let kind = match sd["kind"].as_str() {
            Some("primitive-type") => "primitive",
            Some("complex-type") => "complex",
            Some("resource") => "resource",
            _ => continue,
        };
        // Abstract bases (Element, BackboneElement, Resource, DomainResource) are folded into
        // their specializations' snapshots; constraints (SimpleQuantity, MoneyQuantity) are
        // profiles, not types an element can name.
        if sd["abstract"] == true || sd["derivation"] != "specialization" {
            continue;
        }
        let name = sd["name"]
            .as_str()
            .ok_or_else(|| GenerateError::Shape("StructureDefinition without name".into()))?;
        let elements = sd["snapshot"]["element"]
            .as_array()
            .ok_or_else(|| GenerateError::Shape(format!("{name} has no snapshot")))?;
        let root = elements
            .first()
            .and_then(|e| e["path"].as_str())
            .ok_or_else(|| GenerateError::Shape(format!("{name} has no root element")))?
            .to_string();
        types.insert(
            name.to_string(),
            TypeOut {
                kind,
                pattern: None,
                elems: Vec::new(),
            },
        );
        for el in &elements[1..] {
            let path = el["path"]
                .as_str()
                .ok_or_else(|| GenerateError::Shape(format!("{name}: element without path")))?;
            let rest = path.strip_prefix(&root).unwrap_or(path);
            let full = format!("{name}{rest}");
            let (owner, elem_name) = full
                .rsplit_once('.')
                .ok_or_else(|| GenerateError::Shape(format!("bad path {path}")))?;
            let max = el["max"].as_str().unwrap_or("1").to_string();
            if max == "0" {
                continue;
            }
            let min = el["min"].as_u64().unwrap_or(0);
            if kind == "primitive" && elem_name == "value" {
                let regex = el["type"][0]["extension"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/regex")
                    .and_then(|e| e["valueString"].as_str());
                if let Some(t) = types.get_mut(name) {
                    t.pattern = regex.map(String::from);
                }
                continue;
            }
            let mut value_set = None;
            let elem_types: Vec<String> = if let Some(cr) = el["contentReference"].as_str() {
                vec![cr.trim_start_matches('#').to_string()]
            } else {
                let mut codes = Vec::new();
                for t in el["type"].as_array().into_iter().flatten() {
                    codes.push(type_code(t)?);
                }
                if codes.is_empty() {
                    return Err(GenerateError::Shape(format!("{path} has no type")));
                }
                if codes.len() == 1 && (codes[0] == "BackboneElement" || codes[0] == "Element") {
                    types.insert(
                        full.clone(),
                        TypeOut {
                            kind: "backbone",
                            pattern: None,
                            elems: Vec::new(),
                        },
                    );
                    codes[0] = full.clone();
                }
                // The resource id is an `id` (the snapshot says System.String / string).
                if kind == "resource" && owner == name && elem_name == "id" {
                    codes[0] = "id".into();
                }
                let b = &el["binding"];
                if b["strength"] == "required" && codes.iter().all(|c| c == "code") {
                    if let Some(url) = b["valueSet"].as_str() {
                        if let Some(codes) = terminology.expand(url, 0) {
                            let vs = vs_name(url);
                            value_sets.insert(vs.clone(), codes);
                            value_set = Some(vs);
                        }
                    }
                }
                codes
            };
            let owner_type = types
                .get_mut(owner)
                .ok_or_else(|| GenerateError::Shape(format!("{path}: parent {owner} unknown")))?;
            owner_type.elems.push(Elem {
                name: elem_name.to_string(),
                min,
                max,
                types: elem_types,
                value_set,
            });
        }
    }
    // Every named type must exist.
    for (tname, t) in &types {
        for e in &t.elems {
            for ty in &e.types {
                if ty != "Resource" && !types.contains_key(ty) {
                    return Err(GenerateError::Shape(format!(
                        "{tname}.{}: unknown type {ty}",
                        e.name
                    )));
                }
            }
        }
    }
    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    for (tname, t) in &mut types {
        out.push_str(&format!("type {tname} {}\n", t.kind));
        if let Some(p) = &t.pattern {
            out.push_str(&format!("pattern {p}\n"));
        }
        t.elems.sort_by(|a, b| a.name.cmp(&b.name));
        for e in &t.elems {
            out.push_str(&format!(
                "elem {} {} {} {}",
                e.name,
                e.min,
                e.max,
                e.types.join(",")
            ));
            if let Some(vs) = &e.value_set {
                out.push(' ');
                out.push_str(vs);
            }
            out.push('\n');
        }
    }
    for (name, codes) in &value_sets {
        out.push_str("valueset ");
        out.push_str(name);
        for c in codes {
            out.push(' ');
            out.push_str(c);
        }
        out.push('\n');
    }
    Ok(out)
}
