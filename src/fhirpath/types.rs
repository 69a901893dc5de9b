//! Type information the engine needs: the FHIR type of an element (`Patient.birthDate` is a
//! `date`), and which types derive from which (`code` is a `string`, `Age` is a `Quantity`, every
//! resource is a `Resource`). [`TypeInfo`] is the seam; the R4 model implements it
//! (`super::r4::R4TypeInfo`, used for FHIR resources). [`Fallback`], used for JSON that is not
//! a FHIR resource, infers types from `resourceType`, choice suffixes (`valueQuantity`) and JSON
//! shapes, plus a small table of the elements whose type cannot be inferred.

/// What the engine asks about types.
pub trait TypeInfo: Send + Sync {
    /// The declared type of `parent.element` (e.g. `("Patient", "birthDate")` → `date`), if known.
    fn child_type(&self, parent: &str, element: &str) -> Option<&'static str>;
    /// The type `ty` derives from (`code` → `string`, `Patient` → `DomainResource`), if any.
    fn base_type(&self, ty: &str) -> Option<&'static str>;
    /// Whether `ty` names a FHIR type at all (so `ofType(string1)` can be reported).
    fn is_known(&self, ty: &str) -> bool;
    /// Whether `parent` has an element `element` (a choice element by its name without `[x]`:
    /// `value`); `None` when this information does not describe `parent`. Used by strict mode.
    fn has_element(&self, parent: &str, element: &str) -> Option<bool> {
        let _ = (parent, element);
        None
    }
    /// The type of `json_name` when it is a variant of the choice element `parent.element`
    /// (`("Observation", "value", "valueQuantity")` → `Quantity`), else `None`. The default
    /// reads the type from the name's suffix.
    fn choice_type(&self, parent: &str, element: &str, json_name: &str) -> Option<&'static str> {
        let _ = parent;
        let suffix = json_name.strip_prefix(element)?;
        if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
            return None;
        }
        type_from_suffix(suffix)
    }
}

/// The FHIR primitive types.
pub const PRIMITIVES: [&str; 20] = [
    "boolean",
    "integer",
    "string",
    "decimal",
    "uri",
    "url",
    "canonical",
    "base64Binary",
    "instant",
    "date",
    "dateTime",
    "time",
    "code",
    "oid",
    "id",
    "markdown",
    "unsignedInt",
    "positiveInt",
    "uuid",
    "xhtml",
];

const COMPLEX: [&str; 40] = [
    "Element",
    "BackboneElement",
    "Extension",
    "Narrative",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "Meta",
    "Dosage",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "SimpleQuantity",
    "MoneyQuantity",
    "Resource",
    "DomainResource",
    "MarketingStatus",
];

/// Elements whose type JSON does not reveal, as `Parent.element` → type.
const TABLE: &[(&str, &str)] = &[
    ("Patient.active", "boolean"),
    ("Patient.gender", "code"),
    ("Patient.birthDate", "date"),
    ("Patient.deceasedDateTime", "dateTime"),
    ("Patient.name", "HumanName"),
    ("Patient.telecom", "ContactPoint"),
    ("Patient.address", "Address"),
    ("Patient.identifier", "Identifier"),
    ("Patient.managingOrganization", "Reference"),
    ("Patient.contact", "BackboneElement"),
    ("HumanName.use", "code"),
    ("HumanName.family", "string"),
    ("HumanName.given", "string"),
    ("HumanName.period", "Period"),
    ("Period.start", "dateTime"),
    ("Period.end", "dateTime"),
    ("Identifier.use", "code"),
    ("Identifier.system", "uri"),
    ("Identifier.value", "string"),
    ("Identifier.period", "Period"),
    ("Identifier.type", "CodeableConcept"),
    ("ContactPoint.system", "code"),
    ("ContactPoint.use", "code"),
    ("ContactPoint.value", "string"),
    ("Observation.status", "code"),
    ("Observation.issued", "instant"),
    ("Observation.code", "CodeableConcept"),
    ("Observation.subject", "Reference"),
    ("Observation.category", "CodeableConcept"),
    ("CodeableConcept.coding", "Coding"),
    ("CodeableConcept.text", "string"),
    ("Coding.system", "uri"),
    ("Coding.code", "code"),
    ("Coding.display", "string"),
    ("Coding.version", "string"),
    ("Quantity.value", "decimal"),
    ("Quantity.unit", "string"),
    ("Quantity.system", "uri"),
    ("Quantity.code", "code"),
    ("Reference.reference", "string"),
    ("Reference.display", "string"),
    ("Extension.url", "uri"),
    ("Meta.lastUpdated", "instant"),
    ("Meta.versionId", "id"),
    ("Resource.id", "id"),
    ("Resource.url", "uri"),
    ("Resource.meta", "Meta"),
    ("DomainResource.text", "Narrative"),
    ("DomainResource.extension", "Extension"),
    ("Element.extension", "Extension"),
    ("Element.id", "string"),
];

const BASES: &[(&str, &str)] = &[
    ("code", "string"),
    ("id", "string"),
    ("markdown", "string"),
    ("url", "uri"),
    ("canonical", "uri"),
    ("uuid", "uri"),
    ("oid", "uri"),
    ("unsignedInt", "integer"),
    ("positiveInt", "integer"),
    ("Age", "Quantity"),
    ("Count", "Quantity"),
    ("Distance", "Quantity"),
    ("Duration", "Quantity"),
    ("SimpleQuantity", "Quantity"),
    ("MoneyQuantity", "Quantity"),
    ("BackboneElement", "Element"),
    ("DomainResource", "Resource"),
    ("Bundle", "Resource"),
    ("Binary", "Resource"),
    ("Parameters", "Resource"),
];

/// Type information without the model: for JSON that is not a FHIR resource.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fallback;

impl TypeInfo for Fallback {
    fn child_type(&self, parent: &str, element: &str) -> Option<&'static str> {
        let lookup = |p: &str| {
            TABLE.iter().find(|(k, _)| {
                k.len() == p.len() + 1 + element.len()
                    && k.starts_with(p)
                    && k.ends_with(element)
                    && k.as_bytes()[p.len()] == b'.'
            })
        };
        let base = if crate::fhir::resource_type_index(parent).is_some() {
            "DomainResource"
        } else {
            "Element"
        };
        let hit = lookup(parent).or_else(|| lookup(base)).or_else(|| {
            if base == "DomainResource" {
                lookup("Resource")
            } else {
                None
            }
        });
        hit.map(|(_, t)| *t)
    }

    fn base_type(&self, ty: &str) -> Option<&'static str> {
        if let Some((_, b)) = BASES.iter().find(|(t, _)| *t == ty) {
            return Some(b);
        }
        if crate::fhir::resource_type_index(ty).is_some() {
            return Some("DomainResource");
        }
        if PRIMITIVES.contains(&ty) || ty == "Element" || ty == "Resource" {
            return None;
        }
        if COMPLEX.contains(&ty) {
            return Some("Element");
        }
        None
    }

    fn is_known(&self, ty: &str) -> bool {
        PRIMITIVES.contains(&ty)
            || COMPLEX.contains(&ty)
            || crate::fhir::resource_type_index(ty).is_some()
    }
}

/// The type named by a choice suffix: `Quantity` → `Quantity`, `DateTime` → `dateTime`.
pub fn type_from_suffix(suffix: &str) -> Option<&'static str> {
    PRIMITIVES
        .iter()
        .chain(COMPLEX.iter())
        .find(|t| {
            t.len() == suffix.len()
                && t[1..] == suffix[1..]
                && t.as_bytes()[0].eq_ignore_ascii_case(&suffix.as_bytes()[0])
        })
        .copied()
        .filter(|t| suffix.as_bytes()[0].is_ascii_uppercase() || PRIMITIVES.contains(t))
}

/// Whether `ty` is `target` or derives from it.
pub fn is_subtype(info: &dyn TypeInfo, ty: &str, target: &str) -> bool {
    let mut t = Some(ty);
    let mut steps = 0;
    while let Some(cur) = t {
        if cur == target {
            return true;
        }
        steps += 1;
        if steps > 16 {
            return false;
        }
        t = info.base_type(cur);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_answers() {
        let f = Fallback;
        assert_eq!(f.child_type("Patient", "birthDate"), Some("date"));
        assert_eq!(f.child_type("Patient", "id"), Some("id"));
        assert_eq!(f.child_type("HumanName", "extension"), Some("Extension"));
        assert_eq!(type_from_suffix("DateTime"), Some("dateTime"));
        assert_eq!(type_from_suffix("Quantity"), Some("Quantity"));
        assert!(is_subtype(&f, "code", "string"));
        assert!(is_subtype(&f, "Patient", "Resource"));
        assert!(!is_subtype(&f, "Age", "Duration"));
        assert!(f.is_known("Patient") && !f.is_known("string1"));
    }
}
