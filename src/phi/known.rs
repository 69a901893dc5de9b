//! [`KnownPhi`]: the PHI of one record taken from its structured data, so the recognizer
//! can find it in that record's free text whatever the wording.

use super::PhiType;

/// Names, addresses, cities and identifiers of one patient's record (the patient, their
/// contacts and related persons, the clinicians and organisations of the document).
/// Build one per patient (or per document) with the `add_*` methods or
/// [`KnownPhi::add_resource`], then pass it to [`super::Recognizer::find`].
#[derive(Clone, Debug, Default)]
pub struct KnownPhi {
    /// Single name words (given, family, middle), as written.
    pub(crate) name_words: crate::util::hash::FastSet<String>,
    /// Literal strings of a category searched as whole words: street lines, cities,
    /// identifiers, phone numbers, e-mail addresses.
    pub(crate) literals: Vec<(String, PhiType)>,
}

impl KnownPhi {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.name_words.is_empty() && self.literals.is_empty()
    }

    /// A person's name (one part or a full name): every word of two letters or more becomes
    /// a known name word.
    pub fn add_name(&mut self, name: &str) {
        for w in name.split(|c: char| c.is_whitespace() || c == ',') {
            let w = w.trim_matches(|c: char| c == '.' || c == '"');
            if w.chars().filter(|c| c.is_alphabetic()).count() >= 2 {
                self.name_words.insert(w.to_string());
            }
        }
    }

    /// A literal of a category (street line, city, MRN, SSN, other identifier, phone,
    /// e-mail); ignored when shorter than three characters.
    pub fn add_literal(&mut self, kind: PhiType, value: &str) {
        let v = value.trim();
        if v.len() >= 3 && !self.literals.iter().any(|(s, k)| s == v && *k == kind) {
            self.literals.push((v.to_string(), kind));
        }
    }

    /// Adds everything `o` holds.
    pub fn merge(&mut self, o: &KnownPhi) {
        self.name_words.extend(o.name_words.iter().cloned());
        for (v, k) in &o.literals {
            self.add_literal(*k, v);
        }
    }

    /// Takes the PHI of a FHIR resource: `name` (HumanName or, for Organization, left out:
    /// organisation names are not PHI), `contact[].name`, `telecom`, `address` (line → ADDRESS,
    /// city → CITY, postalCode → ZIP) and `identifier` (type MR → MRN, SS or the us-ssn
    /// system → SSN, others → ID; NPIs of clinicians and organisations are skipped as they
    /// are public). Works for Patient, RelatedPerson, Practitioner and Organization.
    pub fn add_resource(&mut self, r: &serde_json::Value) {
        let rtype = r["resourceType"].as_str().unwrap_or("");
        if rtype != "Organization" {
            self.add_human_names(&r["name"]);
        }
        if let Some(contacts) = r["contact"].as_array() {
            for c in contacts {
                self.add_human_names(&c["name"]);
                self.add_telecom(&c["telecom"]);
                self.add_addresses(&c["address"]);
            }
        }
        self.add_telecom(&r["telecom"]);
        self.add_addresses(&r["address"]);
        if let Some(ids) = r["identifier"].as_array() {
            for id in ids {
                let Some(value) = id["value"].as_str() else {
                    continue;
                };
                let system = id["system"].as_str().unwrap_or("");
                if system.ends_with("us-npi") {
                    continue;
                }
                let code = id["type"]["coding"][0]["code"].as_str().unwrap_or("");
                let kind = if code == "MR" {
                    PhiType::Mrn
                } else if code == "SS" || system.ends_with("us-ssn") {
                    PhiType::Ssn
                } else {
                    PhiType::Id
                };
                self.add_literal(kind, value);
            }
        }
    }

    fn add_human_names(&mut self, v: &serde_json::Value) {
        let one = |this: &mut Self, n: &serde_json::Value| {
            if let Some(f) = n["family"].as_str() {
                this.add_name(f);
            }
            for g in n["given"].as_array().into_iter().flatten() {
                if let Some(g) = g.as_str() {
                    this.add_name(g);
                }
            }
            if let Some(t) = n["text"].as_str() {
                this.add_name(t);
            }
        };
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|n| one(self, n)),
            serde_json::Value::Object(_) => one(self, v),
            _ => {}
        }
    }

    fn add_telecom(&mut self, v: &serde_json::Value) {
        for t in v.as_array().into_iter().flatten() {
            let Some(value) = t["value"].as_str() else {
                continue;
            };
            let kind = match t["system"].as_str() {
                Some("email") => PhiType::Email,
                Some("fax") => PhiType::Fax,
                Some("url") => PhiType::Url,
                _ => PhiType::Phone,
            };
            self.add_literal(kind, value);
        }
    }

    fn add_addresses(&mut self, v: &serde_json::Value) {
        let one = |this: &mut Self, a: &serde_json::Value| {
            for l in a["line"].as_array().into_iter().flatten() {
                if let Some(l) = l.as_str() {
                    this.add_literal(PhiType::Address, l);
                }
            }
            if let Some(c) = a["city"].as_str() {
                this.add_literal(PhiType::City, c);
            }
            if let Some(z) = a["postalCode"].as_str() {
                this.add_literal(PhiType::Zip, z);
            }
        };
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| one(self, x)),
            serde_json::Value::Object(_) => one(self, v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_names_telecom_address_and_identifiers_but_not_npis() {
        let p: serde_json::Value = serde_json::json!({
            "resourceType": "Patient",
            "identifier": [
                {"type": {"coding": [{"code": "MR"}]}, "value": "52860516"},
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "442-96-5745"},
                {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}
            ],
            "name": [{"family": "Bailey", "given": ["Janet", "Q"]}],
            "telecom": [{"system": "email", "value": "jb@example.com"}],
            "address": [{"line": ["3723 Bridge Ct"], "city": "Savannah", "postalCode": "31401"}],
            "contact": [{"name": {"family": "Bailey", "given": ["Raj"]}}]
        });
        let mut k = KnownPhi::new();
        k.add_resource(&p);
        let mut words: Vec<_> = k.name_words.iter().cloned().collect();
        words.sort();
        assert_eq!(words, ["Bailey", "Janet", "Raj"]);
        assert_eq!(
            k.literals,
            [
                ("jb@example.com".to_string(), PhiType::Email),
                ("3723 Bridge Ct".to_string(), PhiType::Address),
                ("Savannah".to_string(), PhiType::City),
                ("31401".to_string(), PhiType::Zip),
                ("52860516".to_string(), PhiType::Mrn),
                ("442-96-5745".to_string(), PhiType::Ssn),
            ]
        );
    }
}
