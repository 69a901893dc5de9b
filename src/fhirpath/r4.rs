//! [`R4TypeInfo`]: the engine's [`TypeInfo`] answered by the R4 model (`crate::fhir::model`):
//! the declared type of every element (choice variants by their JSON name, backbone elements by
//! their path, content references resolved), and the derivations of the specification
//! (`code` → `string` → `Element`, `Age` → `Quantity`, `Patient` → `DomainResource` →
//! `Resource`, `Timing` → `BackboneElement` → `Element`). Lookups are a hash of the parent's
//! name and a binary search of its elements; the model is parsed once per process.
//!
//! The model holds concrete types only; the abstract bases (`Element`, `BackboneElement`,
//! `Resource`, `DomainResource`) and the Quantity profiles (`SimpleQuantity`, `MoneyQuantity`)
//! are answered from the small tables here, checked against the definitions by a test.

use super::types::TypeInfo;
use crate::fhir::model::{ElemType, Kind, Model, TypeDef};

/// Type information from the R4 model. `Copy` and cheap: it only points at the parsed model.
#[derive(Debug, Clone, Copy)]
pub struct R4TypeInfo {
    model: &'static Model,
}

impl Default for R4TypeInfo {
    fn default() -> Self {
        Self::new()
    }
}

/// The elements of the abstract base types, as `(type, element, element type)`.
const ABSTRACT: &[(&str, &str, &str)] = &[
    ("BackboneElement", "extension", "Extension"),
    ("BackboneElement", "id", "string"),
    ("BackboneElement", "modifierExtension", "Extension"),
    ("DomainResource", "contained", "Resource"),
    ("DomainResource", "extension", "Extension"),
    ("DomainResource", "id", "id"),
    ("DomainResource", "implicitRules", "uri"),
    ("DomainResource", "language", "code"),
    ("DomainResource", "meta", "Meta"),
    ("DomainResource", "modifierExtension", "Extension"),
    ("DomainResource", "text", "Narrative"),
    ("Element", "extension", "Extension"),
    ("Element", "id", "string"),
    ("Resource", "id", "id"),
    ("Resource", "implicitRules", "uri"),
    ("Resource", "language", "code"),
    ("Resource", "meta", "Meta"),
];

/// Type names that are FHIR types but not concrete types of the model.
const NOT_IN_MODEL: [&str; 6] = [
    "Element",
    "BackboneElement",
    "Resource",
    "DomainResource",
    "SimpleQuantity",
    "MoneyQuantity",
];

/// The model's type for a Quantity profile (`SimpleQuantity` → `Quantity`).
fn concrete(ty: &str) -> &str {
    match ty {
        "SimpleQuantity" | "MoneyQuantity" => "Quantity",
        t => t,
    }
}

impl R4TypeInfo {
    /// Type information from the committed R4 model.
    pub fn new() -> Self {
        R4TypeInfo { model: Model::r4() }
    }

    fn def(&self, name: &str) -> Option<&'static TypeDef> {
        let model = self.model;
        model.type_id(name).map(|id| model.get(id))
    }

    /// Whether `name` is one of the 146 resource types.
    pub fn is_resource(&self, name: &str) -> bool {
        self.def(name).is_some_and(|d| d.kind == Kind::Resource)
    }
}

impl TypeInfo for R4TypeInfo {
    fn child_type(&self, parent: &str, element: &str) -> Option<&'static str> {
        let parent = concrete(parent);
        let Some(def) = self.def(parent) else {
            return ABSTRACT
                .iter()
                .find(|(t, e, _)| *t == parent && *e == element)
                .map(|(_, _, ty)| *ty);
        };
        match def.element(element)?.ty {
            ElemType::Type(id) => Some(self.model.get(id).name.as_str()),
            ElemType::Resource => Some("Resource"),
        }
    }

    fn base_type(&self, ty: &str) -> Option<&'static str> {
        let Some(def) = self.def(ty) else {
            return match ty {
                "BackboneElement" => Some("Element"),
                "DomainResource" => Some("Resource"),
                "SimpleQuantity" | "MoneyQuantity" => Some("Quantity"),
                _ => None,
            };
        };
        Some(match def.kind {
            Kind::Primitive(_) => match ty {
                "code" | "id" | "markdown" => "string",
                "url" | "canonical" | "uuid" | "oid" => "uri",
                "unsignedInt" | "positiveInt" => "integer",
                _ => "Element",
            },
            Kind::Complex => match ty {
                "Age" | "Count" | "Distance" | "Duration" => "Quantity",
                "Dosage" | "ElementDefinition" | "MarketingStatus" | "Population"
                | "ProdCharacteristic" | "ProductShelfLife" | "SubstanceAmount" | "Timing" => {
                    "BackboneElement"
                }
                _ => "Element",
            },
            Kind::Resource => match ty {
                "Binary" | "Bundle" | "Parameters" => "Resource",
                _ => "DomainResource",
            },
            // A backbone element of a resource is a BackboneElement; one inside a data type
            // (`Timing.repeat`) is a plain Element.
            Kind::Backbone => {
                let root = ty.split('.').next().unwrap_or(ty);
                if self.is_resource(root) {
                    "BackboneElement"
                } else {
                    "Element"
                }
            }
        })
    }

    fn is_known(&self, ty: &str) -> bool {
        NOT_IN_MODEL.contains(&ty) || self.def(ty).is_some_and(|d| d.kind != Kind::Backbone)
    }

    fn has_element(&self, parent: &str, element: &str) -> Option<bool> {
        let parent = concrete(parent);
        match self.def(parent) {
            Some(def) => Some(
                def.element(element).is_some()
                    || def
                        .choices
                        .iter()
                        .any(|c| c.name.strip_suffix("[x]") == Some(element)),
            ),
            None if NOT_IN_MODEL.contains(&parent) => Some(
                ABSTRACT
                    .iter()
                    .any(|(t, e, _)| *t == parent && *e == element),
            ),
            None => None,
        }
    }

    fn choice_type(&self, parent: &str, element: &str, json_name: &str) -> Option<&'static str> {
        let parent = concrete(parent);
        let Some(def) = self.def(parent) else {
            return super::types::Fallback.choice_type(parent, element, json_name);
        };
        let e = def.element(json_name)?;
        let group = e.choice?;
        (def.choice_base(group) == Some(element)).then(|| match e.ty {
            ElemType::Type(id) => self.model.get(id).name.as_str(),
            ElemType::Resource => "Resource",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::is_subtype;
    use super::*;

    #[test]
    fn element_types_choices_backbones_and_content_references() {
        let r4 = R4TypeInfo::new();
        assert_eq!(r4.child_type("Patient", "birthDate"), Some("date"));
        assert_eq!(r4.child_type("Patient", "id"), Some("id"));
        assert_eq!(r4.child_type("Patient", "contact"), Some("Patient.contact"));
        assert_eq!(r4.child_type("Patient.contact", "name"), Some("HumanName"));
        assert_eq!(r4.child_type("Patient", "contained"), Some("Resource"));
        assert_eq!(r4.child_type("Patient", "deceased"), None);
        assert_eq!(
            r4.child_type("Observation", "effectiveDateTime"),
            Some("dateTime")
        );
        assert_eq!(
            r4.choice_type("Observation", "effective", "effectivePeriod"),
            Some("Period")
        );
        assert_eq!(
            r4.choice_type("Observation", "value", "effectivePeriod"),
            None
        );
        assert_eq!(r4.choice_type("Observation", "status", "status"), None);
        // Observation.component.referenceRange is a content reference.
        assert_eq!(
            r4.child_type("Observation.component", "referenceRange"),
            Some("Observation.referenceRange")
        );
        assert_eq!(r4.child_type("date", "extension"), Some("Extension"));
        assert_eq!(r4.child_type("SimpleQuantity", "value"), Some("decimal"));
        assert_eq!(r4.child_type("Element", "id"), Some("string"));
        assert_eq!(r4.child_type("Patient", "nope"), None);
        assert_eq!(r4.child_type("Nope", "id"), None);
    }

    #[test]
    fn derivations() {
        let r4 = R4TypeInfo::new();
        assert!(is_subtype(&r4, "Patient", "Resource"));
        assert!(is_subtype(&r4, "Patient", "DomainResource"));
        assert!(!is_subtype(&r4, "Bundle", "DomainResource"));
        assert!(is_subtype(&r4, "Age", "Quantity"));
        assert!(!is_subtype(&r4, "Age", "Duration"));
        assert!(is_subtype(&r4, "code", "string"));
        assert!(is_subtype(&r4, "positiveInt", "integer"));
        assert!(is_subtype(&r4, "Patient.contact", "BackboneElement"));
        assert!(!is_subtype(&r4, "Timing.repeat", "BackboneElement"));
        assert!(is_subtype(&r4, "Timing.repeat", "Element"));
        assert!(is_subtype(&r4, "Timing", "BackboneElement"));
        assert!(r4.is_known("HumanName") && r4.is_known("Resource") && r4.is_known("date"));
        assert!(!r4.is_known("string1") && !r4.is_known("Patient.contact"));
    }

    /// Every base type agrees with `baseDefinition` in the official definitions.
    #[test]
    fn base_types_match_the_definitions() {
        let Some(root) = crate::testutil::shared_dir() else {
            return;
        };
        let r4 = R4TypeInfo::new();
        let mut checked = 0;
        for file in ["profiles-types.json", "profiles-resources.json"] {
            let text = std::fs::read_to_string(root.join("fhir-r4").join(file)).expect(file);
            let bundle: serde_json::Value = serde_json::from_str(&text).expect(file);
            for e in bundle["entry"].as_array().expect("entries") {
                let r = &e["resource"];
                let kind = r["kind"].as_str().unwrap_or("");
                if r["resourceType"] != "StructureDefinition"
                    || r["derivation"] != "specialization"
                    || kind == "logical"
                {
                    continue;
                }
                let name = r["name"].as_str().expect("name");
                let base = r["baseDefinition"]
                    .as_str()
                    .and_then(|b| b.rsplit('/').next());
                assert_eq!(r4.base_type(name), base, "base of {name}");
                assert!(r4.is_known(name), "{name}");
                checked += 1;
            }
        }
        assert_eq!(checked, 20 + 39 + 148);
    }
}
