//! FHIR R4 knowledge: the table of resource types, the `id` rule, the type and id a literal
//! reference names ([`reference_type_id`]), parsing of `instant` values
//! into UTC microseconds (the basic checks every line passes), and the generated R4 model
//! ([`model`]: elements, cardinalities, choice types, required bindings) that structure
//! validation walks; [`xml`]: XML resources converted to JSON with it.

pub mod instant;
pub mod model;
mod resource_types;
pub mod validate;
pub mod xml;

pub use instant::{parse_instant_micros, InstantError};
pub use resource_types::RESOURCE_TYPES;

/// Index of a resource type in [`RESOURCE_TYPES`]; small and `Copy`, used to route records.
pub type TypeIdx = u16;

/// Looks a resource type name up in the R4 table (hashed: it runs for every line and for
/// every reference at level `structure`).
pub fn resource_type_index(name: &str) -> Option<TypeIdx> {
    static INDEX: std::sync::OnceLock<model::NameIndex> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| model::NameIndex::new(RESOURCE_TYPES.iter().copied()))
        .find(name, |i| RESOURCE_TYPES[i])
        .map(|i| i as TypeIdx)
}

/// The resource type and id a literal `Reference.reference` names: `Type/id`, also at the end
/// of an absolute URL or followed by `/_history/n`. `None` for a contained (`#id`) or `urn:`
/// reference, an empty id, or a type part that does not start with a capital letter.
pub fn reference_type_id(reference: &str) -> Option<(&str, &str)> {
    let r = match reference.find("/_history/") {
        Some(p) => &reference[..p],
        None => reference,
    };
    let (rest, id) = r.rsplit_once('/')?;
    let rtype = rest.rsplit('/').next().unwrap_or(rest);
    if id.is_empty() || !rtype.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    Some((rtype, id))
}

/// The name of a resource type index returned by [`resource_type_index`].
pub fn resource_type_name(idx: TypeIdx) -> &'static str {
    RESOURCE_TYPES[idx as usize]
}

/// Checks an R4 logical id: `[A-Za-z0-9\-\.]{1,64}`. Branch-free per byte (no early exit,
/// so it vectorizes): it runs for every line and every `Type/id` reference.
pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter().fold(true, |ok, &c| {
            let letter = (c | 0x20).wrapping_sub(b'a') < 26;
            let digit = c.wrapping_sub(b'0') < 10;
            ok & (letter | digit | (c == b'-') | (c == b'.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_exact_and_case_sensitive() {
        assert_eq!(RESOURCE_TYPES.len(), 146);
        assert!(RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        let p = resource_type_index("Patient").unwrap();
        assert_eq!(resource_type_name(p), "Patient");
        assert_eq!(resource_type_index("patient"), None);
        assert_eq!(resource_type_index("Resource"), None);
        assert_eq!(resource_type_index("DomainResource"), None);
        assert!(resource_type_index("Bundle").is_some());
    }

    #[test]
    fn id_rule() {
        assert!(is_valid_id("a"));
        assert!(is_valid_id("018f428e-34f6-4707-8009-5ad742f901e7"));
        assert!(is_valid_id("A.b-9"));
        assert!(is_valid_id(&"x".repeat(64)));
        assert!(!is_valid_id(&"x".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a_b"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("é"));
    }

    /// The committed table must equal what the official R4 definitions say.
    #[test]
    fn resource_types_match_r4_definitions() {
        let Some(root) = crate::testutil::shared_dir() else {
            return;
        };
        let path = root.join("fhir-r4/profiles-resources.json");
        let text = std::fs::read_to_string(&path).expect("read profiles-resources.json");
        let bundle: serde_json::Value = serde_json::from_str(&text).expect("parse bundle");
        let mut names: Vec<String> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| {
                r["resourceType"] == "StructureDefinition"
                    && r["kind"] == "resource"
                    && r["derivation"] == "specialization"
                    && r["abstract"] != true
            })
            .map(|r| r["name"].as_str().expect("name").to_string())
            .collect();
        names.sort();
        let ours: Vec<String> = RESOURCE_TYPES.iter().map(|s| s.to_string()).collect();
        assert_eq!(ours, names);
    }
}
