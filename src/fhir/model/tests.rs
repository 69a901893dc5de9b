//! Tests of the model: the committed `r4.model` parses, has the shapes the validator relies
//! on, and equals a fresh generation from `../shared/fhir-r4`.

use super::*;

fn committed_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/fhir/model/r4.model")
}

#[test]
fn committed_model_parses_with_every_resource_type() {
    let m = Model::r4();
    for name in crate::fhir::RESOURCE_TYPES {
        let t = m.get(m.type_id(name).unwrap());
        assert_eq!(t.kind, Kind::Resource, "{name}");
    }
    let resources = m.types.iter().filter(|t| t.kind == Kind::Resource).count();
    assert_eq!(resources, 146);
    let prims = m
        .types
        .iter()
        .filter(|t| matches!(t.kind, Kind::Primitive(_)))
        .count();
    assert_eq!(prims, 20);
}

#[test]
fn choices_content_references_backbones_and_bindings() {
    let m = Model::r4();
    let obs = m.get(m.type_id("Observation").unwrap());
    let vq = obs.element("valueQuantity").unwrap();
    assert_eq!(vq.ty, ElemType::Type(m.type_id("Quantity").unwrap()));
    let group = vq.choice.unwrap() as usize;
    assert_eq!(obs.choices[group].name, "value[x]");
    assert_eq!(obs.element("valueString").unwrap().choice, vq.choice);
    assert!(obs.element("value").is_none());
    // status is required (1..1) with a required binding.
    let status = obs.element("status").unwrap();
    assert_eq!((status.min, status.max), (1, 1));
    let vs = &m.value_sets[status.value_set.unwrap() as usize];
    assert_eq!(vs.name, "observation-status");
    assert!(vs.contains("final") && !vs.contains("done"));
    // Backbone element and a content reference to it.
    let rr = obs.element("referenceRange").unwrap();
    let ElemType::Type(rr_t) = rr.ty else {
        panic!("referenceRange is a type")
    };
    assert_eq!(m.get(rr_t).name, "Observation.referenceRange");
    assert_eq!(m.get(rr_t).kind, Kind::Backbone);
    let comp = m.get(m.type_id("Observation.component").unwrap());
    assert_eq!(comp.element("referenceRange").unwrap().ty, rr.ty);
    let q_item = m.get(m.type_id("Questionnaire.item").unwrap());
    assert_eq!(
        q_item.element("item").unwrap().ty,
        ElemType::Type(m.type_id("Questionnaire.item").unwrap())
    );
    // Resource id is an `id`; contained is any resource; many = MANY.
    let patient = m.get(m.type_id("Patient").unwrap());
    assert_eq!(
        patient.element("id").unwrap().ty,
        ElemType::Type(m.type_id("id").unwrap())
    );
    let contained = patient.element("contained").unwrap();
    assert_eq!((contained.ty, contained.max), (ElemType::Resource, MANY));
    let gender = patient.element("gender").unwrap();
    assert_eq!(
        m.value_sets[gender.value_set.unwrap() as usize].codes,
        ["female", "male", "other", "unknown"]
    );
    // Primitive patterns come from the definitions.
    let date = m.get(m.type_id("date").unwrap());
    assert_eq!(date.kind, Kind::Primitive(Primitive::Date));
    assert!(date
        .pattern
        .as_deref()
        .unwrap()
        .starts_with("([0-9]([0-9]([0-9][1-9]"));
    // Extension.url is required; Extension.value[x] has 50 variants.
    let ext = m.get(m.type_id("Extension").unwrap());
    assert_eq!(ext.element("url").unwrap().min, 1);
    assert_eq!(
        ext.elements.iter().filter(|e| e.choice.is_some()).count(),
        50
    );
}

/// The hashed element index finds every element of every type by its name and nothing else;
/// the precomputed primitive and required masks agree with the tables they summarize.
#[test]
fn element_index_and_masks_agree_with_the_element_tables() {
    let m = Model::r4();
    let mut probes = 0;
    for t in &m.types {
        for e in &t.elements {
            let found = t.element(&e.name).expect("every element is found");
            assert!(std::ptr::eq(found, e), "{}.{}", t.name, e.name);
            let expected = match e.ty {
                ElemType::Type(et) => match m.get(et).kind {
                    Kind::Primitive(p) => Some(p),
                    _ => None,
                },
                ElemType::Resource => None,
            };
            assert_eq!(e.primitive, expected, "{}.{}", t.name, e.name);
            for wrong in [
                format!("{}x", e.name),
                format!("_{}", e.name),
                e.name[1..].into(),
            ] {
                if t.elements.iter().all(|o| o.name != wrong) {
                    assert!(t.element(&wrong).is_none(), "{}.{wrong}", t.name);
                    probes += 1;
                }
            }
        }
        assert_eq!(t.required_mask.count_ones() as usize, t.required.len());
        let required_groups = t.choices.iter().filter(|c| c.min > 0).count();
        assert_eq!(t.required_choices.count_ones() as usize, required_groups);
        assert!(t.element("").is_none());
    }
    assert!(probes > 20_000, "{probes}");
}

#[test]
fn parse_errors_name_the_line() {
    let e = Model::parse("nope\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "r4.model line 1: expected the header \"fhirpipe-r4-model 1\""
    );
    let e = Model::parse("fhirpipe-r4-model 1\ntype A complex\nelem x 0 1 B\n").unwrap_err();
    assert_eq!(e.to_string(), "r4.model line 3: unknown type B");
}

/// The committed model must equal a fresh generation from the official definitions.
#[test]
fn committed_model_matches_r4_definitions() {
    let Some(root) = crate::testutil::shared_dir() else {
        return;
    };
    let fresh = generate::generate(&root.join("fhir-r4")).expect("generate");
    let committed = std::fs::read_to_string(committed_path()).expect("read r4.model");
    assert!(
        fresh == committed,
        "src/fhir/model/r4.model is stale: run `cargo test -- --ignored regenerate_r4_model`"
    );
}

/// Rewrites `src/fhir/model/r4.model` from `../shared/fhir-r4`.
#[test]
#[ignore = "rewrites the committed model; run on purpose"]
fn regenerate_r4_model() {
    let root = crate::testutil::shared_dir().expect("../shared is needed to regenerate");
    let fresh = generate::generate(&root.join("fhir-r4")).expect("generate");
    std::fs::write(committed_path(), fresh).expect("write r4.model");
}

#[test]
fn issue_6_item_7_name_index_tells_short_names_apart() {
    // Every string of 0 to 9 letters over "ab" (short names are packed in at most two
    // loads): half of them indexed, each found at its position, none of the others found.
    let mut all = vec![String::new()];
    for len in 1..=9 {
        for i in 0..(1u32 << len) {
            all.push(
                (0..len)
                    .map(|b| if i >> b & 1 == 1 { 'b' } else { 'a' })
                    .collect(),
            );
        }
    }
    let (indexed, others): (Vec<_>, Vec<_>) = all.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let names: Vec<&str> = indexed.iter().map(|(_, s)| s.as_str()).collect();
    let index = NameIndex::new(names.iter().copied());
    for (pos, name) in names.iter().enumerate() {
        assert_eq!(index.find(name, |i| names[i]), Some(pos), "{name:?}");
    }
    for (_, name) in others {
        assert_eq!(index.find(name, |i| names[i]), None, "{name:?}");
    }
}
