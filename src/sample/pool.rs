//! The shared pool of Organizations (clinics, hospitals, payers) and Practitioners.
//!
//! Owns: generating the pool from the run seed alone (the same pool whatever the number of
//! patients, so patient `i` is identical in every run with the same seed), the lookup of
//! clinics/hospitals by state used to place patients, and rendering the pool's
//! Organization and Practitioner resources.

use super::json::Id;
use super::names::{self, City};
use super::output::{Block, Kind};
use super::rng::{Rng, SplitMix64, STREAM_POOL, STREAM_POOL_IDS};
use super::time::{Secs, DAY, SIM_END, YEAR};

const CLINICS_PER_STATE: usize = 2;
const HOSPITALS_PER_STATE: usize = 1;
const PRACTITIONERS_PER_CLINIC: usize = 4;
const PRACTITIONERS_PER_HOSPITAL: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OrgKind {
    Clinic,
    Hospital,
    Payer,
}

#[derive(Debug)]
pub(crate) struct Org {
    pub(crate) id: Id,
    pub(crate) kind: OrgKind,
    pub(crate) name: String,
    pub(crate) city: &'static City,
    pub(crate) line: String,
    pub(crate) phone: String,
    pub(crate) npi: String,
    /// Practitioner indices working here.
    pub(crate) pracs: std::ops::Range<usize>,
    /// Payer short code (member id prefix); empty for providers.
    pub(crate) payer_code: &'static str,
    pub(crate) updated: Secs,
}

#[derive(Debug)]
pub(crate) struct Prac {
    pub(crate) id: Id,
    pub(crate) given: &'static str,
    pub(crate) family: &'static str,
    pub(crate) female: bool,
    pub(crate) org: usize,
    pub(crate) npi: String,
    /// `(v2-0360 code, display)`
    pub(crate) credential: (&'static str, &'static str),
    /// "Given Family"
    pub(crate) full: String,
    pub(crate) updated: Secs,
}

/// The shared provider and payer pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) orgs: Vec<Org>,
    pub(crate) pracs: Vec<Prac>,
    /// Clinic org indices per state (index into [`names::STATES`]).
    pub(crate) clinics: Vec<Vec<usize>>,
    /// Hospital org indices per state.
    pub(crate) hospitals: Vec<Vec<usize>>,
    /// Payer org indices, in [`names::PAYERS`] order.
    pub(crate) payers: Vec<usize>,
}

/// A 10-digit NPI with a valid Luhn check digit (prefix 80840 per the NPI standard).
fn npi(rng: &mut Rng) -> String {
    let mut digits = [0u32; 9];
    digits[0] = 1 + rng.below(2) as u32;
    for d in digits.iter_mut().skip(1) {
        *d = rng.below(10) as u32;
    }
    // Luhn over "80840" + 9 digits: the constant prefix contributes 24.
    let mut sum = 24;
    for (i, &d) in digits.iter().rev().enumerate() {
        sum += if i % 2 == 0 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    let check = (10 - sum % 10) % 10;
    let mut s = String::with_capacity(10);
    for d in digits.iter().chain(std::iter::once(&check)) {
        s.push(char::from(b'0' + *d as u8));
    }
    s
}

pub(crate) fn phone(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(12);
    s.push_str("555-");
    let a = rng.range(200, 999);
    let b = rng.range(0, 9_999);
    s.push_str(itoa::Buffer::new().format(a));
    s.push('-');
    let bs = itoa::Buffer::new().format(b).to_string();
    for _ in bs.len()..4 {
        s.push('0');
    }
    s.push_str(&bs);
    s
}

pub(crate) fn street_line(rng: &mut Rng, unit: bool) -> String {
    let mut s = String::with_capacity(32);
    s.push_str(itoa::Buffer::new().format(rng.range(1, 9_899)));
    s.push(' ');
    let (street, suffix) = (*rng.pick(names::STREETS), *rng.pick(names::STREET_SUFFIX));
    s.push_str(street);
    s.push(' ');
    s.push_str(suffix);
    if unit {
        s.push(' ');
        let p = *rng.pick(names::UNIT_PREFIX);
        s.push_str(p);
        if p != "#" {
            s.push(' ');
        }
        s.push_str(itoa::Buffer::new().format(rng.range(1, 40)));
        if rng.chance(0.3) {
            s.push(char::from(b'A' + rng.below(4) as u8));
        }
    }
    s
}

impl Pool {
    /// Builds the pool from the seed alone.
    pub(crate) fn new(seed: u64) -> Pool {
        let mut rng = Rng::derive(seed, STREAM_POOL, 0);
        let mut ids = SplitMix64::new(super::rng::derive_seed(seed, STREAM_POOL_IDS, 0));
        let mut orgs = Vec::new();
        let mut pracs = Vec::new();
        let n_states = names::STATES.len();
        let mut clinics = vec![Vec::new(); n_states];
        let mut hospitals = vec![Vec::new(); n_states];
        let updated = |rng: &mut Rng| SIM_END - rng.range(30 * DAY, 2 * YEAR);

        for (si, state) in names::STATES.iter().enumerate() {
            let cities: Vec<&'static City> =
                names::CITIES.iter().filter(|c| c.state == *state).collect();
            for n in 0..CLINICS_PER_STATE + HOSPITALS_PER_STATE {
                let hospital = n >= CLINICS_PER_STATE;
                let city = *rng.pick(&cities);
                let name = if hospital {
                    format!("{} {}", city.name, rng.pick(names::HOSPITAL_KIND))
                } else {
                    format!(
                        "{} {}",
                        rng.pick(names::CLINIC_FIRST),
                        rng.pick(names::CLINIC_KIND)
                    )
                };
                let idx = orgs.len();
                let per = if hospital {
                    PRACTITIONERS_PER_HOSPITAL
                } else {
                    PRACTITIONERS_PER_CLINIC
                };
                let first = pracs.len();
                let id = Id::next(&mut ids);
                let line = street_line(&mut rng, false);
                let ph = phone(&mut rng);
                let onpi = npi(&mut rng);
                let up = updated(&mut rng);
                for _ in 0..per {
                    let female = rng.chance(0.5);
                    let given = *rng.pick(if female {
                        names::FEMALE_GIVEN
                    } else {
                        names::MALE_GIVEN
                    });
                    let family = *rng.pick(names::FAMILY);
                    let credential = match rng.below(10) {
                        0 => ("DO", "Doctor of Osteopathy"),
                        1 => ("NP", "Nurse practitioner"),
                        _ => ("MD", "Doctor of Medicine"),
                    };
                    pracs.push(Prac {
                        id: Id::next(&mut ids),
                        given,
                        family,
                        female,
                        org: idx,
                        npi: npi(&mut rng),
                        credential,
                        full: format!("{given} {family}"),
                        updated: updated(&mut rng),
                    });
                }
                orgs.push(Org {
                    id,
                    kind: if hospital {
                        OrgKind::Hospital
                    } else {
                        OrgKind::Clinic
                    },
                    name,
                    city,
                    line,
                    phone: ph,
                    npi: onpi,
                    pracs: first..pracs.len(),
                    payer_code: "",
                    updated: up,
                });
                if hospital {
                    hospitals[si].push(idx);
                } else {
                    clinics[si].push(idx);
                }
            }
        }
        let mut payers = Vec::new();
        for (name, code) in names::PAYERS {
            payers.push(orgs.len());
            let city = rng.pick(names::CITIES);
            orgs.push(Org {
                id: Id::next(&mut ids),
                kind: OrgKind::Payer,
                name: (*name).to_string(),
                city,
                line: street_line(&mut rng, false),
                phone: phone(&mut rng),
                npi: String::new(),
                pracs: 0..0,
                payer_code: code,
                updated: updated(&mut rng),
            });
        }
        Pool {
            orgs,
            pracs,
            clinics,
            hospitals,
            payers,
        }
    }

    /// Renders every Organization and Practitioner into `out`.
    pub(crate) fn write(&self, out: &mut Block) {
        for o in &self.orgs {
            let mut j = out.begin(
                Kind::Organization,
                &o.id,
                1,
                o.updated,
                (o.updated % 997) as u32,
            );
            if !o.npi.is_empty() {
                j.k_arr("identifier");
                j.obj();
                j.k_str("system", "http://hl7.org/fhir/sid/us-npi");
                j.k_str("value", &o.npi);
                j.end();
                j.end_arr();
            }
            j.k_bool("active", true);
            let (code, display) = match o.kind {
                OrgKind::Payer => ("pay", "Payer"),
                _ => ("prov", "Healthcare Provider"),
            };
            j.k_cc_list(
                "type",
                "http://terminology.hl7.org/CodeSystem/organization-type",
                code,
                display,
                display,
            );
            j.k_str("name", &o.name);
            j.k_arr("telecom");
            j.contact_point("phone", &o.phone, "work");
            j.end_arr();
            write_address(&mut j, &o.line, o.city, "work");
            j.done();
        }
        for p in &self.pracs {
            let org = &self.orgs[p.org];
            let mut j = out.begin(
                Kind::Practitioner,
                &p.id,
                1,
                p.updated,
                (p.updated % 991) as u32,
            );
            j.k_arr("identifier");
            j.obj();
            j.k_str("system", "http://hl7.org/fhir/sid/us-npi");
            j.k_str("value", &p.npi);
            j.end();
            j.end_arr();
            j.k_bool("active", true);
            let prefix = if p.credential.0 == "NP" { "" } else { "Dr." };
            j.k_official_name(p.family, &[p.given], prefix);
            j.k_arr("telecom");
            j.contact_point("phone", &org.phone, "work");
            j.end_arr();
            write_address(&mut j, &org.line, org.city, "work");
            j.k_str("gender", if p.female { "female" } else { "male" });
            j.k_arr("qualification");
            j.obj();
            j.k_cc(
                "code",
                "http://terminology.hl7.org/CodeSystem/v2-0360",
                p.credential.0,
                p.credential.1,
                p.credential.1,
            );
            j.end();
            j.end_arr();
            j.done();
        }
    }
}

/// `"address":[{..}]` with one US address.
pub(crate) fn write_address(j: &mut super::json::J<'_>, line: &str, city: &City, use_: &str) {
    j.k_arr("address");
    j.obj();
    j.k_str("use", use_);
    j.k_arr("line");
    j.str(line);
    j.end_arr();
    j.k_str("city", city.name);
    j.k_str("state", city.state);
    j.k_str("postalCode", city.zip);
    j.k_str("country", "US");
    j.end();
    j.end_arr();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_has_valid_luhn_check_digit() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let n = npi(&mut rng);
            assert_eq!(n.len(), 10);
            let digits: Vec<u32> = format!("80840{n}")
                .bytes()
                .map(|b| u32::from(b - b'0'))
                .collect();
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    if i % 2 == 1 {
                        if d * 2 > 9 {
                            d * 2 - 9
                        } else {
                            d * 2
                        }
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{n}");
        }
    }

    #[test]
    fn pool_depends_on_seed_only_and_covers_every_state() {
        let a = Pool::new(42);
        let b = Pool::new(42);
        let c = Pool::new(43);
        assert_eq!(a.orgs.len(), b.orgs.len());
        assert!(a
            .orgs
            .iter()
            .zip(&b.orgs)
            .all(|(x, y)| x.id == y.id && x.name == y.name));
        assert!(a.orgs.iter().zip(&c.orgs).any(|(x, y)| x.id != y.id));
        assert!(a.clinics.iter().all(|v| !v.is_empty()));
        assert!(a.hospitals.iter().all(|v| !v.is_empty()));
        assert_eq!(a.payers.len(), names::PAYERS.len());
        assert!(a.pracs.iter().all(|p| !a.orgs[p.org].pracs.is_empty()));
    }
}
