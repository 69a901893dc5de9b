//! One synthetic patient's life: demographics, planned history, and every clinical resource.
//!
//! Owns: drawing a patient from its own streams `(seed, index)` — identity and PHI,
//! chronic-disease plan, encounter timeline — and rendering, per encounter, the Encounter,
//! Conditions, vital-sign and lab Observations with their DiagnosticReports, Procedures,
//! Immunizations, MedicationRequests and the clinical-note DocumentReference (billing is in
//! [`super::billing`], note text in [`super::notes`]). Every reference points at a resource
//! generated in the same run, and every time lies between birth and death or the
//! simulation end.

use base64::Engine as _;

use super::billing::{self, Cat, Line};
use super::codes::{
    self, Cond, EncKind, Med, Panel, Proc, SexRule, Test, Vaccine, CVX, ICD10CM, LOINC, RXNORM,
    SNOMED,
};
use super::json::Id;
use super::names::{self, City};
use super::notes::{self, NoteBuilder, Vitals};
use super::output::{Block, Kind, Res};
use super::pool::{self, Pool};
use super::rng::{derive_seed, Rng, SplitMix64, STREAM_PATIENT, STREAM_PATIENT_IDS};
use super::time::{self, Secs, COVID_START, COVID_VACCINE_START, DAY, HOUR, MINUTE, SIM_END, YEAR};

/// Years of history generated before the simulation end (Synthea-like record depth).
const HISTORY_YEARS: i64 = 10;

const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const MRN_SYSTEM: &str = "https://fhirpipe.example.org/sample/mrn";

/// Reusable per-worker buffers.
#[derive(Default)]
pub(crate) struct Scratch {
    note: NoteBuilder,
    b64: String,
}

/// Next of kin.
struct Relative {
    given: &'static str,
    family: &'static str,
    /// Word used in notes ("wife", "mother", ...).
    word: &'static str,
    /// v3-RoleCode code and display.
    role: (&'static str, &'static str),
    phone: String,
}

/// The patient's identity and fixed traits.
struct Person {
    id: Id,
    female: bool,
    given: &'static str,
    middle: Option<&'static str>,
    family: &'static str,
    full: String,
    married: bool,
    marital: (&'static str, &'static str),
    birth_day: i64,
    birth: Secs,
    death: Option<Secs>,
    /// Death or simulation end.
    end: Secs,
    city: &'static City,
    line: String,
    phone: String,
    email: String,
    ssn: String,
    mrn: String,
    occupation: &'static str,
    relative: Relative,
    language: (&'static str, &'static str),
    clinic: usize,
    hospital: usize,
    gp: usize,
    payer: usize,
    member_id: String,
    adult_height: f64,
    bmi_base: f64,
    smoker: bool,
    allergy: Option<&'static str>,
}

/// A chronic condition of the plan.
struct Chronic {
    cond: &'static Cond,
    onset: Secs,
    med: Option<&'static Med>,
    /// The Condition resource, once recorded at a visit.
    id: Option<Id>,
}

#[derive(Clone, Copy)]
enum Reason {
    None,
    Acute(&'static Cond),
    Chronic(usize),
    Colonoscopy,
}

#[derive(Clone, Copy)]
struct Planned {
    start: Secs,
    end: Secs,
    kind: EncKind,
    reason: Reason,
}

/// Generation state of one patient.
struct Gen<'a> {
    pool: &'a Pool,
    p: Person,
    rng: Rng,
    ids: SplitMix64,
    chronic: Vec<Chronic>,
    /// Chronic conditions first seen as an acute admission (e.g. heart failure).
    admitted: Vec<(&'static Cond, Id)>,
    zoster: bool,
    pneumo: u8,
    covid_doses: u8,
}

fn years(t: Secs) -> i64 {
    t / YEAR
}

/// Generates patient `index` of the run into `block`.
pub(crate) fn generate(
    pool: &Pool,
    seed: u64,
    index: u64,
    block: &mut Block,
    scratch: &mut Scratch,
) {
    let mut rng = Rng::derive(seed, STREAM_PATIENT, index);
    let mut ids = SplitMix64::new(derive_seed(seed, STREAM_PATIENT_IDS, index));
    let p = person(pool, &mut rng, &mut ids);
    let mut g = Gen {
        pool,
        p,
        rng,
        ids,
        chronic: Vec::new(),
        admitted: Vec::new(),
        zoster: false,
        pneumo: 0,
        covid_doses: 0,
    };
    g.plan_chronic();
    g.write_patient(block);
    let visits = g.plan_visits();
    for v in &visits {
        g.visit(block, scratch, v);
    }
}

fn person(pool: &Pool, rng: &mut Rng, ids: &mut SplitMix64) -> Person {
    let id = Id::next(ids);
    let female = rng.chance(0.51);
    let given = *rng.pick(if female {
        names::FEMALE_GIVEN
    } else {
        names::MALE_GIVEN
    });
    let middle = rng.chance(0.5).then(|| {
        *rng.pick(if female {
            names::FEMALE_GIVEN
        } else {
            names::MALE_GIVEN
        })
    });
    let family = *rng.pick(names::FAMILY);
    let age = match rng.weighted(&[22, 36, 25, 17]) {
        0 => rng.range(0, 17),
        1 => rng.range(18, 44),
        2 => rng.range(45, 64),
        _ => rng.range(65, 97),
    };
    let end_day = SIM_END / DAY;
    let birth_day = end_day - age * 365 - age / 4 - rng.range(1, 364);
    let city = rng.pick(names::CITIES);
    let birth = birth_day * DAY + rng.range(0, DAY - 1) - i64::from(city.offset_min) * MINUTE;
    let death = if rng.chance(if age >= 60 {
        ((age - 60) as f64 / 90.0).min(0.45)
    } else {
        0.01
    }) {
        let lo = (SIM_END - HISTORY_YEARS * YEAR).max(birth + 60 * DAY);
        (lo < SIM_END - 30 * DAY).then(|| rng.range(lo, SIM_END - 30 * DAY))
    } else {
        None
    };
    let end = death.unwrap_or(SIM_END);
    let end_age = years(end - birth);
    let married = end_age >= 20 && rng.chance(0.55);
    let marital = if married {
        ("M", "Married")
    } else if end_age < 20 {
        ("S", "Never Married")
    } else {
        match rng.below(4) {
            0 => ("D", "Divorced"),
            1 if end_age > 60 => ("W", "Widowed"),
            _ => ("S", "Never Married"),
        }
    };
    let relative = {
        let (female_rel, word, role) = if end_age < 18 {
            if rng.chance(0.7) {
                (true, "mother", ("MTH", "mother"))
            } else {
                (false, "father", ("FTH", "father"))
            }
        } else if married {
            if female {
                (false, "husband", ("HUSB", "husband"))
            } else {
                (true, "wife", ("WIFE", "wife"))
            }
        } else if end_age >= 60 {
            if rng.chance(0.5) {
                (true, "daughter", ("DAU", "natural daughter"))
            } else {
                (false, "son", ("SON", "natural son"))
            }
        } else if rng.chance(0.5) {
            (true, "sister", ("SIS", "sister"))
        } else {
            (false, "brother", ("BRO", "brother"))
        };
        let rgiven = *rng.pick(if female_rel {
            names::FEMALE_GIVEN
        } else {
            names::MALE_GIVEN
        });
        let rfamily = if word == "daughter" && rng.chance(0.5) {
            *rng.pick(names::FAMILY)
        } else {
            family
        };
        Relative {
            given: rgiven,
            family: rfamily,
            word,
            role,
            phone: pool::phone(rng),
        }
    };
    let si = names::STATES
        .iter()
        .position(|s| *s == city.state)
        .unwrap_or(0);
    let clinic = pool
        .clinics
        .get(si)
        .and_then(|v| v.first().map(|_| v[rng.index(v.len())]))
        .unwrap_or(0);
    let hospital = pool
        .hospitals
        .get(si)
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    let pr = &pool.orgs[clinic].pracs;
    let gp = pr.start + rng.index(pr.len().max(1));
    let unit = rng.chance(0.25);
    let line = pool::street_line(rng, unit);
    let phone = pool::phone(rng);
    let mut email = String::new();
    if end_age >= 14 && rng.chance(0.8) {
        names::ascii_fold_into(&mut email, given);
        email.push(if rng.chance(0.5) { '.' } else { '_' });
        names::ascii_fold_into(&mut email, family);
        if rng.chance(0.5) {
            email.push_str(itoa::Buffer::new().format(rng.range(1, 99)));
        }
        email.push('@');
        let domain = *rng.pick(names::EMAIL_DOMAINS);
        email.push_str(domain);
    }
    let ssn = {
        let mut area = rng.range(1, 899);
        if area == 666 {
            area = 667;
        }
        format!(
            "{area:03}-{:02}-{:04}",
            rng.range(1, 99),
            rng.range(1, 9_999)
        )
    };
    let mrn = format!("{:08}", rng.range(10_000_000, 99_999_999));
    let payer_idx = if end_age >= 65 {
        0
    } else if rng.chance(0.15) {
        1
    } else {
        2 + rng.index(pool.payers.len().saturating_sub(2).max(1))
    };
    let payer = pool.payers.get(payer_idx).copied().unwrap_or(0);
    let member_id = format!(
        "{}{:09}",
        pool.orgs[payer].payer_code,
        rng.range(0, 999_999_999)
    );
    let language = match rng.weighted(&[85, 8, 2, 2, 1, 1, 1]) {
        0 => ("en-US", "English (United States)"),
        1 => ("es", "Spanish"),
        2 => ("zh", "Chinese"),
        3 => ("vi", "Vietnamese"),
        4 => ("fr", "French"),
        5 => ("ar", "Arabic"),
        _ => ("ko", "Korean"),
    };
    let adult_height = if female {
        rng.normal(162.0, 6.5)
    } else {
        rng.normal(176.0, 7.0)
    };
    let bmi_base = rng.normal(26.5, 4.0).clamp(17.5, 42.0);
    let occupation = if end_age >= 18 {
        *rng.pick(names::OCCUPATIONS)
    } else {
        ""
    };
    let allergy = match rng.below(12) {
        0 => Some("Penicillin (hives)."),
        1 => Some("Sulfa drugs (rash)."),
        2 => Some("Peanuts (anaphylaxis); carries an EpiPen."),
        3 => Some("Latex (contact dermatitis)."),
        _ => None,
    };
    Person {
        id,
        female,
        given,
        middle,
        family,
        full: format!("{given} {family}"),
        married,
        marital,
        birth_day,
        birth,
        death,
        end,
        city,
        line,
        phone,
        email,
        ssn,
        mrn,
        occupation,
        relative,
        language,
        clinic,
        hospital,
        gp,
        payer,
        member_id,
        adult_height,
        bmi_base,
        smoker: end_age >= 16 && rng.chance(0.14),
        allergy,
    }
}

fn sex_ok(c: &Cond, female: bool) -> bool {
    match c.sex {
        SexRule::Any => true,
        SexRule::Female => female,
        SexRule::Male => !female,
    }
}

/// A local time of day on the local date of `t`, as UTC seconds.
fn at_local(t: Secs, offset_min: i32, secs_of_day: Secs) -> Secs {
    let off = i64::from(offset_min) * MINUTE;
    (t + off).div_euclid(DAY) * DAY + secs_of_day - off
}

fn child_height(age: f64) -> f64 {
    if age < 1.0 {
        50.0 + 25.0 * age
    } else if age < 2.0 {
        75.0 + 12.0 * (age - 1.0)
    } else if age < 12.0 {
        87.0 + 6.3 * (age - 2.0)
    } else {
        150.0 + 4.0 * (age - 12.0)
    }
}

impl Gen<'_> {
    fn id(&mut self) -> Id {
        Id::next(&mut self.ids)
    }

    fn age_at(&self, t: Secs) -> i64 {
        time::age_years(self.p.birth_day, t, self.p.city.offset_min)
    }

    fn has(&self, c: &Cond, t: Secs) -> bool {
        self.chronic
            .iter()
            .any(|x| std::ptr::eq(x.cond, c) && x.onset <= t)
    }

    fn plan_chronic(&mut self) {
        let end_age = years(self.p.end - self.p.birth);
        for c in codes::CHRONIC {
            if !sex_ok(c, self.p.female) || end_age < c.min_age.max(1) {
                continue;
            }
            let scale = ((end_age - c.min_age + 10) as f64 / 50.0).min(1.0);
            if !self.rng.chance(c.prevalence * scale) {
                continue;
            }
            let lo = self.p.birth + c.min_age.max(1) * YEAR;
            let hi = self.p.end - 30 * DAY;
            if hi <= lo {
                continue;
            }
            let onset = self.rng.range(lo, hi);
            let med =
                (!c.meds.is_empty() && self.rng.chance(c.med_prob)).then(|| *self.rng.pick(c.meds));
            if std::ptr::eq(*c, &codes::OBESITY) {
                self.p.bmi_base = self.rng.normal(33.5, 2.5).max(30.5);
            }
            self.chronic.push(Chronic {
                cond: c,
                onset,
                med,
                id: None,
            });
        }
    }

    fn plan_visits(&mut self) -> Vec<Planned> {
        let p = &self.p;
        let window = (SIM_END - HISTORY_YEARS * YEAR).max(p.birth + 2 * DAY);
        let end = p.end - DAY;
        let mut raw: Vec<(Secs, EncKind, Reason)> = Vec::new();
        if window >= end {
            return Vec::new();
        }
        // Preventive visits: well-child schedule, then every 1-3 years by age.
        for m in [0i64, 2, 4, 6, 9, 12, 15, 18, 24, 30, 36] {
            let t = p.birth
                + if m == 0 {
                    4 * DAY
                } else {
                    m * YEAR / 12 + self.rng.range(0, 10) * DAY
                };
            raw.push((t, EncKind::Wellness, Reason::None));
        }
        for a in 4..18 {
            raw.push((
                p.birth + a * YEAR + self.rng.range(0, 60) * DAY,
                EncKind::Wellness,
                Reason::None,
            ));
        }
        let mut t = p.birth + 18 * YEAR + self.rng.range(0, 365) * DAY;
        while t < end {
            raw.push((t, EncKind::Wellness, Reason::None));
            let age = years(t - p.birth);
            let step = if age >= 65 {
                1
            } else if age >= 50 {
                2
            } else {
                3
            };
            t += step * YEAR + self.rng.range(-45, 45) * DAY;
        }
        // Acute problems.
        let mut t = window;
        loop {
            let age = years(t - p.birth);
            let rate_milli = if age < 5 {
                1_800
            } else if age < 18 {
                900
            } else if age < 65 {
                800
            } else {
                1_200
            };
            t += self.rng.range(1, 2 * 365_000 / rate_milli) * DAY;
            if t >= end {
                break;
            }
            let age = years(t - p.birth);
            let eligible: Vec<&'static Cond> = codes::ACUTE
                .iter()
                .copied()
                .filter(|c| sex_ok(c, p.female) && age >= c.min_age && age <= c.max_age)
                .filter(|c| !std::ptr::eq(*c, &codes::COVID19) || t >= COVID_START)
                .collect();
            let weights: Vec<u32> = eligible
                .iter()
                .map(|c| {
                    let w = (c.prevalence * 10.0) as u32;
                    if c.settings == codes::IMP {
                        w / 4
                    } else {
                        w
                    }
                })
                .collect();
            if eligible.is_empty() {
                continue;
            }
            let c = eligible[self.rng.weighted(&weights)];
            let kinds = [
                (EncKind::Ambulatory, 6),
                (EncKind::Telehealth, if t >= COVID_START { 3 } else { 0 }),
                (EncKind::Emergency, 2),
                (EncKind::Inpatient, 2),
                (EncKind::Procedure, 2),
            ];
            let w: Vec<u32> = kinds
                .iter()
                .map(|(k, w)| if c.settings & k.setting() != 0 { *w } else { 0 })
                .collect();
            if w.iter().all(|&x| x == 0) {
                continue;
            }
            raw.push((t, kinds[self.rng.weighted(&w)].0, Reason::Acute(c)));
        }
        // Chronic disease: diagnosis visit, then follow-up every 6-12 months.
        for (i, c) in self.chronic.iter().enumerate() {
            let mut t = c.onset.max(window);
            if c.onset >= window {
                raw.push((t, EncKind::Ambulatory, Reason::Chronic(i)));
            }
            loop {
                t += self.rng.range(180, 365) * DAY;
                if t >= end {
                    break;
                }
                let kind = if t >= COVID_START && self.rng.chance(0.3) {
                    EncKind::Telehealth
                } else {
                    EncKind::FollowUp
                };
                raw.push((t, kind, Reason::Chronic(i)));
            }
        }
        // Screening colonoscopy around age 50, every 10 years.
        let mut t = p.birth + 50 * YEAR + self.rng.range(0, 3 * 365) * DAY;
        while t < end {
            raw.push((t, EncKind::Procedure, Reason::Colonoscopy));
            t += 10 * YEAR;
        }

        raw.retain(|(t, _, _)| *t >= window && *t < end);
        raw.sort_by_key(|(t, _, _)| *t);
        let off = p.city.offset_min;
        let mut out: Vec<Planned> = Vec::with_capacity(raw.len());
        let mut prev_end = Secs::MIN;
        for (t, kind, reason) in raw {
            let (local, dur) = match kind {
                EncKind::Emergency => (
                    self.rng.range(0, DAY - 1),
                    self.rng.range(2 * HOUR, 7 * HOUR),
                ),
                EncKind::Inpatient => {
                    (self.rng.range(0, DAY - 1), self.rng.range(2 * DAY, 6 * DAY))
                }
                EncKind::Procedure => (
                    self.rng.range(7 * HOUR, 13 * HOUR),
                    self.rng.range(HOUR, 3 * HOUR),
                ),
                EncKind::Wellness => (
                    self.rng.range(8 * HOUR, 16 * HOUR),
                    self.rng.range(20, 45) * MINUTE,
                ),
                _ => (
                    self.rng.range(8 * HOUR, 17 * HOUR),
                    self.rng.range(15, 30) * MINUTE,
                ),
            };
            let mut start = at_local(t, off, local / MINUTE * MINUTE);
            if start < p.birth + DAY {
                start = p.birth + DAY;
            }
            if start < prev_end + 2 * HOUR {
                start = at_local(prev_end + DAY, off, local / MINUTE * MINUTE);
            }
            let e = start + dur;
            if e > end {
                continue;
            }
            prev_end = e;
            out.push(Planned {
                start,
                end: e,
                kind,
                reason,
            });
        }
        out
    }

    fn updated(&mut self, t: Secs) -> (Secs, u32) {
        (
            (t + self.rng.range(60, 3 * HOUR)).min(SIM_END),
            self.rng.below(1_000) as u32,
        )
    }

    fn write_patient(&mut self, block: &mut Block) {
        let (up, ms) = self.updated(self.p.death.unwrap_or(SIM_END - 40 * DAY));
        let p = &self.p;
        let mut j = block.begin(Kind::Patient, &p.id, 1, up, ms);
        j.k_arr("identifier");
        j.typed_identifier(V2_0203, "MR", "Medical Record Number", MRN_SYSTEM, &p.mrn);
        j.typed_identifier(
            V2_0203,
            "SS",
            "Social Security Number",
            "http://hl7.org/fhir/sid/us-ssn",
            &p.ssn,
        );
        j.end_arr();
        j.k_bool("active", p.death.is_none());
        let prefix = if years(p.end - p.birth) < 18 {
            ""
        } else if !p.female {
            "Mr."
        } else if p.married {
            "Mrs."
        } else {
            "Ms."
        };
        match p.middle {
            Some(m) => j.k_official_name(p.family, &[p.given, m], prefix),
            None => j.k_official_name(p.family, &[p.given], prefix),
        }
        j.k_arr("telecom");
        j.contact_point("phone", &p.phone, "home");
        if !p.email.is_empty() {
            j.contact_point("email", &p.email, "home");
        }
        j.end_arr();
        j.k_str("gender", if p.female { "female" } else { "male" });
        j.k_date("birthDate", p.birth_day);
        if let Some(d) = p.death {
            j.k_datetime("deceasedDateTime", d, p.city.offset_min);
        }
        pool::write_address(&mut j, &p.line, p.city, "home");
        j.k_cc(
            "maritalStatus",
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
            p.marital.0,
            p.marital.1,
            p.marital.1,
        );
        j.k_arr("contact");
        j.obj();
        j.k_arr("relationship");
        j.cc(
            "http://terminology.hl7.org/CodeSystem/v2-0131",
            "N",
            "Next-of-Kin",
            "",
        );
        j.cc(
            "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
            p.relative.role.0,
            p.relative.role.1,
            "",
        );
        j.end_arr();
        j.k_obj("name");
        j.k_str("family", p.relative.family);
        j.k_arr("given");
        j.str(p.relative.given);
        j.end_arr();
        j.end();
        j.k_arr("telecom");
        j.contact_point("phone", &p.relative.phone, "");
        j.end_arr();
        j.end();
        j.end_arr();
        j.k_arr("communication");
        j.obj();
        j.k_cc(
            "language",
            "urn:ietf:bcp:47",
            p.language.0,
            p.language.1,
            p.language.1,
        );
        j.k_bool("preferred", true);
        j.end();
        j.end_arr();
        let gp = &self.pool.pracs[p.gp];
        j.k_ref_list("generalPractitioner", "Practitioner", &gp.id, &gp.full);
        let clinic = &self.pool.orgs[p.clinic];
        j.k_ref(
            "managingOrganization",
            "Organization",
            &clinic.id,
            &clinic.name,
        );
        j.done();
    }

    /// Renders one encounter and everything recorded at it.
    fn visit(&mut self, block: &mut Block, scratch: &mut Scratch, v: &Planned) {
        let pool = self.pool;
        let off = self.p.city.offset_min;
        let age = self.age_at(v.start);
        let age_months = time::age_months(self.p.birth_day, v.start, off);
        let at_hospital = matches!(
            v.kind,
            EncKind::Emergency | EncKind::Inpatient | EncKind::Procedure
        );
        let org_idx = if at_hospital {
            self.p.hospital
        } else {
            self.p.clinic
        };
        let org = &pool.orgs[org_idx];
        let prac_idx = if !at_hospital && self.rng.chance(0.8) {
            self.p.gp
        } else {
            org.pracs.start + self.rng.index(org.pracs.len().max(1))
        };
        let prac = &pool.pracs[prac_idx];
        let enc = self.id();

        // ---- conditions ----
        let mut diagnoses: Vec<Id> = Vec::new();
        let mut reason: Option<(&'static Cond, Id)> = None;
        let mut new_diagnosis = false;
        let mut meds_new: Vec<(&'static Med, Option<Id>)> = Vec::new();
        match v.reason {
            Reason::Acute(c) if c.chronic => {
                let known = self
                    .admitted
                    .iter()
                    .find(|(x, _)| std::ptr::eq(*x, c))
                    .map(|(_, id)| *id);
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id = self.id();
                        let onset = v.start - self.rng.range(1, 14) * DAY;
                        self.write_condition(block, &id, c, &enc, prac_idx, onset, v.start, None);
                        self.admitted.push((c, id));
                        new_diagnosis = true;
                        id
                    }
                };
                reason = Some((c, id));
            }
            Reason::Acute(c) => {
                let id = self.id();
                let onset = (v.start - self.rng.range(0, 5) * DAY - self.rng.range(0, 12) * HOUR)
                    .max(self.p.birth + HOUR);
                let abate = v.start + self.rng.range(7, 35) * DAY;
                self.write_condition(
                    block,
                    &id,
                    c,
                    &enc,
                    prac_idx,
                    onset,
                    v.start,
                    (abate < self.p.end).then_some(abate),
                );
                reason = Some((c, id));
                new_diagnosis = true;
            }
            Reason::Colonoscopy if self.rng.chance(0.3) => {
                let id = self.id();
                self.write_condition(
                    block,
                    &id,
                    &codes::COLON_POLYP,
                    &enc,
                    prac_idx,
                    v.start,
                    v.start,
                    None,
                );
                reason = Some((&codes::COLON_POLYP, id));
            }
            _ => {}
        }
        // Chronic conditions are recorded at the first visit after onset that examines them.
        let records_chronic = !matches!(v.kind, EncKind::Procedure | EncKind::Emergency);
        for i in 0..self.chronic.len() {
            let is_reason = matches!(v.reason, Reason::Chronic(r) if r == i);
            let (cond, onset, known) = (
                self.chronic[i].cond,
                self.chronic[i].onset,
                self.chronic[i].id,
            );
            if onset > v.start || (!is_reason && !records_chronic) {
                continue;
            }
            let id = match known {
                Some(id) => id,
                None => {
                    let id = self.id();
                    self.write_condition(block, &id, cond, &enc, prac_idx, onset, v.start, None);
                    self.chronic[i].id = Some(id);
                    if let Some(m) = self.chronic[i].med {
                        meds_new.push((m, Some(id)));
                    }
                    if is_reason {
                        new_diagnosis = true;
                    }
                    id
                }
            };
            if is_reason {
                reason = Some((cond, id));
                if known.is_some() && self.rng.chance(0.5) {
                    if let Some(m) = self.chronic[i].med {
                        meds_new.push((m, Some(id)));
                    }
                }
            } else if records_chronic && known.is_none() {
                diagnoses.push(id);
            }
        }
        if let Some((_, id)) = reason {
            diagnoses.insert(0, id);
        }
        if let Some((c, id)) = reason {
            if !c.chronic && !c.meds.is_empty() && self.rng.chance(c.med_prob) {
                meds_new.push((*self.rng.pick(c.meds), Some(id)));
            }
        }
        let history: Vec<&'static Cond> = self
            .chronic
            .iter()
            .filter(|c| c.id.is_some())
            .map(|c| c.cond)
            .chain(self.admitted.iter().map(|(c, _)| *c))
            .collect();
        let meds_active: Vec<&'static Med> = self
            .chronic
            .iter()
            .filter(|c| c.id.is_some())
            .filter_map(|c| c.med)
            .collect();

        let mut lines: Vec<Line> = vec![billing::visit_line(v.kind, age < 18)];

        // ---- medication requests ----
        let mut notes_meds: Vec<&'static Med> = Vec::new();
        for (m, cond) in &meds_new {
            let m = match m.child {
                Some(child) if age < 12 => child,
                _ => *m,
            };
            let qty = self.write_med(block, m, cond.as_ref(), &enc, prac_idx, v);
            lines.push(Line {
                system: RXNORM,
                code: m.rxnorm,
                display: m.display,
                unit_cents: m.unit_cents,
                qty,
                cat: Cat::Drug,
            });
            notes_meds.push(m);
        }

        // ---- observations ----
        let vitals = self.write_vitals(block, v, &enc, age, age_months);
        let mut panels: Vec<&'static Panel> = Vec::new();
        let cond = reason.map(|(c, _)| c);
        match v.kind {
            EncKind::Wellness if age >= 20 => {
                if self.rng.chance(0.35) || self.has(&codes::HYPERLIPIDEMIA, v.start) {
                    panels.push(&codes::LIPID_PANEL);
                }
                if age >= 40 && self.rng.chance(0.5) {
                    panels.push(&codes::METABOLIC_PANEL);
                }
                if self.rng.chance(0.3) {
                    panels.push(&codes::CBC_PANEL);
                }
            }
            EncKind::FollowUp | EncKind::Ambulatory if cond.is_some_and(|c| c.chronic) => {
                let c = cond.map_or("", |c| c.snomed);
                match c {
                    "44054006" | "15777000" => {
                        panels.extend([&codes::A1C_PANEL, &codes::METABOLIC_PANEL])
                    }
                    "38341003" | "431855005" => panels.push(&codes::METABOLIC_PANEL),
                    "55822004" => panels.push(&codes::LIPID_PANEL),
                    "271737000" => panels.push(&codes::CBC_PANEL),
                    _ => {}
                }
            }
            EncKind::Emergency
                if cond.is_some_and(|c| c.fever || !c.injury) && self.rng.chance(0.6) =>
            {
                panels.extend([&codes::CBC_PANEL, &codes::METABOLIC_PANEL]);
            }
            EncKind::Inpatient => panels.extend([&codes::CBC_PANEL, &codes::METABOLIC_PANEL]),
            _ => {}
        }
        let mut lab_values: Vec<(&'static Test, f64)> = Vec::new();
        for panel in &panels {
            self.write_panel(block, panel, v, &enc, org_idx, prac_idx, &mut lab_values);
            lines.push(Line {
                system: LOINC,
                code: panel.loinc,
                display: panel.display,
                unit_cents: panel.cents,
                qty: 1,
                cat: Cat::Lab,
            });
        }

        // ---- procedures ----
        let mut procs: Vec<&'static Proc> = Vec::new();
        if let Reason::Colonoscopy = v.reason {
            procs.push(&codes::COLONOSCOPY);
        }
        if let Some(c) = cond {
            let factor = if matches!(v.kind, EncKind::FollowUp | EncKind::Telehealth) {
                0.3
            } else {
                1.0
            };
            for (pr, prob) in c.procs {
                if v.kind != EncKind::Telehealth && self.rng.chance(prob * factor) {
                    procs.push(pr);
                }
            }
        }
        if v.kind == EncKind::Wellness {
            if age >= 12 && self.rng.chance(0.5) {
                procs.push(&codes::DEPRESSION_SCREEN);
            }
            if age >= 18 && self.rng.chance(0.3) {
                procs.push(&codes::HEALTH_NEEDS);
            }
            if !meds_active.is_empty() {
                procs.push(if self.rng.chance(0.5) {
                    &codes::MED_RECONCILIATION
                } else {
                    &codes::MED_DOCUMENTATION
                });
            }
        }
        let mut proc_ids: Vec<Id> = Vec::with_capacity(procs.len());
        let mut pt = v.start + 5 * MINUTE;
        for pr in &procs {
            let id = self.id();
            let end = (pt + pr.minutes * MINUTE).min(v.end);
            self.write_procedure(
                block,
                &id,
                pr,
                v,
                &enc,
                prac_idx,
                pt.min(end),
                end,
                reason.map(|(_, id)| id).as_ref(),
            );
            pt = end;
            proc_ids.push(id);
            lines.push(Line {
                system: SNOMED,
                code: pr.snomed,
                display: pr.display,
                unit_cents: pr.cents,
                qty: 1,
                cat: Cat::Procedure,
            });
        }

        // ---- immunizations ----
        let vaccines = if v.kind == EncKind::Wellness {
            self.vaccines_due(v.start, age, age_months)
        } else {
            Vec::new()
        };
        for vx in &vaccines {
            self.write_immunization(block, vx, v, &enc, prac_idx);
            lines.push(Line {
                system: CVX,
                code: vx.cvx,
                display: vx.display,
                unit_cents: vx.cents,
                qty: 1,
                cat: Cat::Vaccine,
            });
        }

        // ---- encounter ----
        self.write_encounter(block, v, &enc, org_idx, prac_idx, age < 18, reason);

        // ---- note ----
        let follow_up_day = match v.kind {
            EncKind::Wellness => None,
            _ if self.rng.chance(0.6) => {
                let d = v.end + self.rng.range(14, 120) * DAY;
                Some((d + i64::from(off) * MINUTE).div_euclid(DAY))
            }
            _ => None,
        };
        let token = {
            let mut s = String::with_capacity(16);
            let x = self.rng.next_u64();
            for k in 0..12 {
                s.push(char::from(
                    b"0123456789abcdef"[((x >> (4 * k)) & 0xF) as usize],
                ));
            }
            s
        };
        let ip = {
            let first = *self
                .rng
                .pick(&[24u8, 50, 67, 68, 71, 73, 76, 98, 99, 108, 174]);
            [
                first,
                self.rng.below(256) as u8,
                self.rng.below(256) as u8,
                1 + self.rng.below(254) as u8,
            ]
        };
        let p = &self.p;
        let person = notes::Person {
            given: p.given,
            family: p.family,
            female: p.female,
            married: p.married,
            birth_day: p.birth_day,
            phone: &p.phone,
            email: &p.email,
            ssn: &p.ssn,
            mrn: &p.mrn,
            line: &p.line,
            city: p.city,
            occupation: p.occupation,
            relative: (
                p.relative.given,
                p.relative.family,
                p.relative.word,
                &p.relative.phone,
            ),
            payer: &pool.orgs[p.payer].name,
            member_id: &p.member_id,
            smoker: p.smoker,
            allergy: p.allergy,
        };
        let nv = notes::Visit {
            kind: v.kind,
            start: v.start,
            end: v.end,
            offset_min: off,
            age_years: age,
            age_months,
            prac_name: &prac.full,
            prac_np: prac.credential.0 == "NP",
            org_name: &org.name,
            org_city: (org.kind == pool::OrgKind::Hospital).then_some(org.city),
            org_phone: &org.phone,
            reason: cond,
            new_diagnosis,
            history: &history,
            meds_new: &notes_meds,
            meds_active: &meds_active,
            procs: &procs,
            vaccines: &vaccines,
            vitals,
            labs: &lab_values,
            follow_up_day,
            session: (v.kind == EncKind::Telehealth).then_some((token.as_str(), ip)),
        };
        notes::compose(&mut scratch.note, &mut self.rng, &person, &nv);
        let doc = self.id();
        self.write_document(block, scratch, v, &doc, &enc, org_idx, prac_idx);
        if let Some(ann) = block.ann.as_mut() {
            scratch.note.write_annotation(ann, &doc, &self.p.id);
        }

        // ---- billing ----
        let (claim, eob) = (self.id(), self.id());
        let bv = billing::Visit {
            claim,
            eob,
            patient: &self.p.id,
            patient_name: &self.p.full,
            encounter: &enc,
            provider: org,
            prac,
            payer: &pool.orgs[self.p.payer],
            member_id: &self.p.member_id,
            kind: v.kind,
            start: v.start,
            end: v.end,
            offset_min: off,
            diagnoses: &diagnoses,
            procedures: &proc_ids,
            lines: &lines,
        };
        billing::write(block, &mut self.rng, &bv);
    }

    fn vaccines_due(&mut self, t: Secs, age: i64, months: i64) -> Vec<&'static Vaccine> {
        let mut v: Vec<&'static Vaccine> = match months {
            0 => vec![&codes::HEPB],
            1..=3 => vec![
                &codes::DTAP,
                &codes::IPV,
                &codes::HIB,
                &codes::PCV13,
                &codes::ROTAVIRUS,
                &codes::HEPB,
            ],
            4..=5 => vec![
                &codes::DTAP,
                &codes::IPV,
                &codes::HIB,
                &codes::PCV13,
                &codes::ROTAVIRUS,
            ],
            6..=8 => vec![&codes::DTAP, &codes::IPV, &codes::PCV13, &codes::HEPB],
            12..=14 => vec![&codes::MMR, &codes::VARICELLA, &codes::HEPA, &codes::HIB],
            15..=20 => vec![&codes::DTAP, &codes::HEPA],
            _ => Vec::new(),
        };
        match age {
            4 => v.extend([&codes::DTAP, &codes::IPV, &codes::MMR, &codes::VARICELLA]),
            11 => v.extend([&codes::TDAP, &codes::HPV, &codes::MCV4]),
            12 => v.push(&codes::HPV),
            16 => v.push(&codes::MCV4),
            19.. if self.rng.chance(0.1) => v.push(&codes::TD),
            _ => {}
        }
        if age >= 50 && !self.zoster && self.rng.chance(0.5) {
            self.zoster = true;
            v.push(&codes::ZOSTER);
        }
        if age >= 65 && self.pneumo < 2 {
            v.push(if self.pneumo == 0 {
                &codes::PCV13
            } else {
                &codes::PPSV23
            });
            self.pneumo += 1;
        }
        if months >= 6 && self.rng.chance(0.75) {
            v.push(&codes::FLU);
        }
        if t >= COVID_VACCINE_START && age >= 12 && self.covid_doses < 3 && self.rng.chance(0.7) {
            self.covid_doses += 1;
            v.push(&codes::COVID_VACCINE);
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn write_condition(
        &mut self,
        block: &mut Block,
        id: &Id,
        c: &Cond,
        enc: &Id,
        prac: usize,
        onset: Secs,
        recorded: Secs,
        abatement: Option<Secs>,
    ) {
        let (up, ms) = self.updated(abatement.unwrap_or(recorded));
        let off = self.p.city.offset_min;
        let mut j = block.begin(Kind::Condition, id, 1, up, ms);
        let (status, status_display) = if abatement.is_some() {
            ("resolved", "Resolved")
        } else {
            ("active", "Active")
        };
        j.k_cc(
            "clinicalStatus",
            CONDITION_CLINICAL,
            status,
            status_display,
            "",
        );
        j.k_cc(
            "verificationStatus",
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "confirmed",
            "Confirmed",
            "",
        );
        let (cat, cat_display) = if c.chronic {
            ("problem-list-item", "Problem List Item")
        } else {
            ("encounter-diagnosis", "Encounter Diagnosis")
        };
        j.k_cc_list(
            "category",
            "http://terminology.hl7.org/CodeSystem/condition-category",
            cat,
            cat_display,
            "",
        );
        j.k_obj("code");
        j.k_arr("coding");
        j.coding(SNOMED, c.snomed, c.display);
        j.coding(ICD10CM, c.icd10, c.icd10_display);
        j.end_arr();
        j.k_str("text", c.display);
        j.end();
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_datetime("onsetDateTime", onset, off);
        if let Some(a) = abatement {
            j.k_datetime("abatementDateTime", a, off);
        }
        j.k_datetime("recordedDate", recorded, off);
        let pr = &self.pool.pracs[prac];
        j.k_ref("recorder", "Practitioner", &pr.id, &pr.full);
        j.done();
    }

    /// Writes a MedicationRequest; returns the dispensed quantity.
    fn write_med(
        &mut self,
        block: &mut Block,
        m: &Med,
        cond: Option<&Id>,
        enc: &Id,
        prac: usize,
        v: &Planned,
    ) -> u32 {
        let id = self.id();
        let (up, ms) = self.updated(v.end);
        let off = self.p.city.offset_min;
        let course_end = v.start + i64::from(m.days) * DAY;
        let status = if course_end < self.p.end {
            "completed"
        } else if self.p.death.is_some() {
            "stopped"
        } else {
            "active"
        };
        let per_day = f64::from(m.per_day.max(1));
        let qty = if m.per_day == 0 {
            1
        } else {
            (m.dose * per_day * f64::from(m.days)).round().max(1.0) as u32
        };
        let (unit, ucum) = m.form.unit();
        let mut j = block.begin(Kind::MedicationRequest, &id, 1, up, ms);
        j.k_str("status", status);
        j.k_str("intent", "order");
        j.k_cc(
            "medicationCodeableConcept",
            RXNORM,
            m.rxnorm,
            m.display,
            m.display,
        );
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_datetime("authoredOn", v.start + 10 * MINUTE, off);
        let pr = &self.pool.pracs[prac];
        j.k_ref("requester", "Practitioner", &pr.id, &pr.full);
        if let Some(c) = cond {
            j.k_ref_list("reasonReference", "Condition", c, "");
        }
        j.k_arr("dosageInstruction");
        j.obj();
        j.k_int("sequence", 1);
        j.k_str("text", m.sig);
        if m.per_day > 0 {
            j.k_obj("timing");
            j.k_obj("repeat");
            j.k_int("frequency", i64::from(m.per_day));
            j.k_int("period", 1);
            j.k_str("periodUnit", "d");
            j.end();
            j.end();
        }
        j.k_bool("asNeededBoolean", m.as_needed);
        j.k_arr("doseAndRate");
        j.obj();
        j.k_cc(
            "type",
            "http://terminology.hl7.org/CodeSystem/dose-rate-type",
            "ordered",
            "Ordered",
            "",
        );
        j.k_quantity("doseQuantity", m.dose, 1, unit, ucum);
        j.end();
        j.end_arr();
        j.end();
        j.end_arr();
        j.k_obj("dispenseRequest");
        j.k_int("numberOfRepeatsAllowed", if m.days >= 30 { 3 } else { 0 });
        j.k_quantity("quantity", f64::from(qty), 0, unit, ucum);
        j.k_quantity("expectedSupplyDuration", f64::from(m.days), 0, "days", "d");
        j.end();
        j.done();
        qty
    }

    /// Starts an Observation up to its value; the caller writes the value and closes it.
    #[allow(clippy::too_many_arguments)]
    fn obs_head<'b>(
        &mut self,
        block: &'b mut Block,
        id: &Id,
        cat: (&str, &str),
        loinc: &str,
        display: &str,
        enc: &Id,
        t: Secs,
        issued: Secs,
    ) -> Res<'b> {
        let (up, ms) = self.updated(issued);
        let off = self.p.city.offset_min;
        let mut j = block.begin(Kind::Observation, id, 1, up, ms);
        j.k_str("status", "final");
        j.k_cc_list("category", OBS_CATEGORY, cat.0, cat.1, "");
        j.k_cc("code", LOINC, loinc, display, display);
        j.k_ref("subject", "Patient", &self.p.id, "");
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_datetime("effectiveDateTime", t, off);
        j.k_instant("issued", issued, ms);
        j
    }

    /// One vital-sign Observation with a single quantity.
    fn vital(&mut self, block: &mut Block, test: &Test, value: f64, enc: &Id, t: Secs) {
        let id = self.id();
        let mut j = self.obs_head(
            block,
            &id,
            ("vital-signs", "Vital Signs"),
            test.loinc,
            test.display,
            enc,
            t,
            t,
        );
        j.k_quantity("valueQuantity", value, test.decimals, test.ucum, test.ucum);
        j.done();
    }

    fn write_vitals(
        &mut self,
        block: &mut Block,
        v: &Planned,
        enc: &Id,
        age: i64,
        age_months: i64,
    ) -> Option<Vitals> {
        if v.kind == EncKind::Telehealth {
            return None;
        }
        let t = v.start + 5 * MINUTE;
        let age_f = if age < 2 {
            age_months as f64 / 12.0
        } else {
            age as f64
        };
        let scale = self.p.adult_height / if self.p.female { 162.0 } else { 176.0 };
        let mut height = if age < 18 {
            (child_height(age_f) * scale).min(self.p.adult_height)
        } else {
            self.p.adult_height
        };
        if age > 70 {
            height -= (age - 70) as f64 * 0.1;
        }
        height += self.rng.normal(0.0, 0.3);
        let bmi = if age_f < 2.0 {
            13.5 + 3.0 * age_f.min(1.0)
        } else if age_f < 6.0 {
            16.5 - 0.15 * (age_f - 2.0)
        } else if age_f < 18.0 {
            15.9 + (self.p.bmi_base - 15.9) * (age_f - 6.0) / 12.0
        } else {
            self.p.bmi_base + self.rng.normal(0.0, 0.5)
        };
        let weight = bmi * height * height / 10_000.0;
        let bmi = weight / (height * height / 10_000.0);
        let c = match v.reason {
            Reason::Acute(c) => Some(c),
            _ => None,
        };
        let fever = c.is_some_and(|c| c.fever);
        let htn = self.has(&codes::HYPERTENSION, v.start);
        let (hr_mean, rr_mean) = if age < 1 {
            (130.0, 38.0)
        } else if age < 6 {
            (105.0, 26.0)
        } else if age < 13 {
            (88.0, 20.0)
        } else {
            (74.0, 15.0)
        };
        let hr = self
            .rng
            .normal(hr_mean + if fever { 15.0 } else { 0.0 }, 7.0);
        let rr = self.rng.normal(rr_mean, 1.5).round();
        let temp = if fever {
            self.rng.range(381, 394) as f64 / 10.0
        } else {
            self.rng.normal(36.8, 0.2)
        };
        let bp = (age >= 3).then(|| {
            let (s, d) = if age < 13 {
                (95.0 + 1.5 * age as f64, 60.0)
            } else {
                (117.0, 76.0)
            };
            let extra = if htn { (16.0, 8.0) } else { (0.0, 0.0) };
            (
                self.rng.normal(s + extra.0, 9.0),
                self.rng.normal(d + extra.1, 6.0),
            )
        });
        let lung = c.is_some_and(|c| matches!(c.snomed, "233604007" | "840539006" | "88805009"));
        let spo2 = matches!(
            v.kind,
            EncKind::Emergency | EncKind::Inpatient | EncKind::Ambulatory | EncKind::Procedure
        )
        .then(|| {
            if lung {
                self.rng.range(89, 94) as f64
            } else {
                self.rng.range(96, 100) as f64
            }
        });
        let pain = (matches!(v.kind, EncKind::Emergency | EncKind::Ambulatory) && c.is_some())
            .then(|| {
                if c.is_some_and(|c| c.injury) {
                    self.rng.range(4, 8) as f64
                } else {
                    self.rng.range(0, 4) as f64
                }
            });

        // Follow-up visits record weight, blood pressure and pulse only.
        let full = v.kind != EncKind::FollowUp;
        if full {
            self.vital(block, &codes::HEIGHT, height, enc, t);
        }
        self.vital(block, &codes::WEIGHT, weight, enc, t);
        if age >= 2 && full {
            self.vital(block, &codes::BMI, bmi, enc, t);
        }
        if let Some((s, d)) = bp {
            let id = self.id();
            let mut j = self.obs_head(
                block,
                &id,
                ("vital-signs", "Vital Signs"),
                codes::BP_PANEL.0,
                codes::BP_PANEL.1,
                enc,
                t,
                t,
            );
            j.k_arr("component");
            for ((code, display), val) in [(codes::SYSTOLIC, s), (codes::DIASTOLIC, d)] {
                j.obj();
                j.k_cc("code", LOINC, code, display, display);
                j.k_quantity("valueQuantity", val, 0, "mm[Hg]", "mm[Hg]");
                j.end();
            }
            j.end_arr();
            j.done();
        }
        self.vital(block, &codes::HEART_RATE, hr, enc, t);
        if full {
            self.vital(block, &codes::RESP_RATE, rr, enc, t);
            self.vital(block, &codes::TEMPERATURE, temp, enc, t);
        }
        if let Some(o) = spo2 {
            self.vital(block, &codes::SPO2, o, enc, t);
        }
        if let Some(pn) = pain {
            self.vital(block, &codes::PAIN, pn, enc, t);
        }
        Some(Vitals {
            height: full.then_some(height),
            weight,
            bmi: (age >= 2 && full).then_some(bmi),
            bp,
            hr: hr.round(),
            rr: full.then_some(rr),
            temp: full.then_some(temp),
            spo2,
            pain,
        })
    }

    fn lab_value(&mut self, test: &Test, t: Secs) -> f64 {
        let mut mean = test.mean;
        let mut sd = test.sd;
        let diabetic = self.has(&codes::DIABETES, t);
        let pre = self.has(&codes::PREDIABETES, t);
        match test.loinc {
            "2339-0" if diabetic => mean += 45.0,
            "2339-0" if pre => mean += 12.0,
            "4548-4" if diabetic => {
                mean = 7.4;
                sd = 0.7;
            }
            "4548-4" if pre => mean = 6.0,
            "18262-6" if self.has(&codes::HYPERLIPIDEMIA, t) => mean += 40.0,
            "2093-3" if self.has(&codes::HYPERLIPIDEMIA, t) => mean += 45.0,
            "2571-8" if self.has(&codes::HYPERLIPIDEMIA, t) => mean += 60.0,
            "38483-4" if self.has(&codes::KIDNEY_DISEASE, t) => mean += 0.5,
            "718-7" if self.has(&codes::ANEMIA, t) => mean -= 2.8,
            "4544-3" if self.has(&codes::ANEMIA, t) => mean -= 8.0,
            _ => {}
        }
        self.rng.normal(mean, sd).max(test.mean * 0.2)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_panel(
        &mut self,
        block: &mut Block,
        panel: &Panel,
        v: &Planned,
        enc: &Id,
        org: usize,
        prac: usize,
        values: &mut Vec<(&'static Test, f64)>,
    ) {
        let t = v.start + 15 * MINUTE;
        let issued = (v.end + self.rng.range(1, 36) * HOUR)
            .min(self.p.end)
            .max(t);
        let mut result_ids: Vec<(Id, &'static str)> = Vec::with_capacity(panel.tests.len());
        for test in panel.tests {
            let id = self.id();
            let value = self.lab_value(test, t);
            let mut j = self.obs_head(
                block,
                &id,
                ("laboratory", "Laboratory"),
                test.loinc,
                test.display,
                enc,
                t,
                issued,
            );
            j.k_quantity("valueQuantity", value, test.decimals, test.ucum, test.ucum);
            let rounded = round_to(value, test.decimals);
            let (code, display) = if rounded > test.high {
                ("H", "High")
            } else if rounded < test.low {
                ("L", "Low")
            } else {
                ("N", "Normal")
            };
            j.k_cc_list(
                "interpretation",
                "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                code,
                display,
                "",
            );
            j.k_arr("referenceRange");
            j.obj();
            if test.low > 0.0 {
                j.k_quantity("low", test.low, test.decimals, test.ucum, test.ucum);
            }
            j.k_quantity("high", test.high, test.decimals, test.ucum, test.ucum);
            j.end();
            j.end_arr();
            j.done();
            result_ids.push((id, test.short));
            values.push((test, rounded));
        }
        let id = self.id();
        let (up, ms) = self.updated(issued);
        let off = self.p.city.offset_min;
        let mut j = block.begin(Kind::DiagnosticReport, &id, 1, up, ms);
        j.k_str("status", "final");
        j.k_cc_list(
            "category",
            "http://terminology.hl7.org/CodeSystem/v2-0074",
            "LAB",
            "Laboratory",
            "",
        );
        j.k_cc("code", LOINC, panel.loinc, panel.display, panel.display);
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_datetime("effectiveDateTime", t, off);
        j.k_instant("issued", issued, ms);
        let o = &self.pool.orgs[org];
        j.k_ref_list("performer", "Organization", &o.id, &o.name);
        let pr = &self.pool.pracs[prac];
        j.k_ref_list("resultsInterpreter", "Practitioner", &pr.id, &pr.full);
        j.k_arr("result");
        for (rid, short) in &result_ids {
            j.reference("Observation", rid, short);
        }
        j.end_arr();
        j.done();
    }

    #[allow(clippy::too_many_arguments)]
    fn write_procedure(
        &mut self,
        block: &mut Block,
        id: &Id,
        pr: &Proc,
        v: &Planned,
        enc: &Id,
        prac: usize,
        start: Secs,
        end: Secs,
        reason: Option<&Id>,
    ) {
        let (up, ms) = self.updated(v.end);
        let off = self.p.city.offset_min;
        let mut j = block.begin(Kind::Procedure, id, 1, up, ms);
        j.k_str("status", "completed");
        j.k_cc("code", SNOMED, pr.snomed, pr.display, pr.display);
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_period("performedPeriod", start, end, off);
        let p = &self.pool.pracs[prac];
        j.k_arr("performer");
        j.obj();
        j.k_ref("actor", "Practitioner", &p.id, &p.full);
        j.end();
        j.end_arr();
        if let Some(r) = reason {
            j.k_ref_list("reasonReference", "Condition", r, "");
        }
        j.done();
    }

    fn write_immunization(
        &mut self,
        block: &mut Block,
        vx: &Vaccine,
        v: &Planned,
        enc: &Id,
        prac: usize,
    ) {
        let id = self.id();
        let (up, ms) = self.updated(v.end);
        let off = self.p.city.offset_min;
        let t = v.start + 20 * MINUTE;
        let t = t.min(v.end);
        let lot = {
            let mut s = String::with_capacity(8);
            s.push(char::from(b'A' + self.rng.below(26) as u8));
            s.push(char::from(b'A' + self.rng.below(26) as u8));
            s.push_str(&format!("{:04}", self.rng.range(0, 9_999)));
            s
        };
        let mut j = block.begin(Kind::Immunization, &id, 1, up, ms);
        j.k_str("status", "completed");
        j.k_cc("vaccineCode", CVX, vx.cvx, vx.display, vx.display);
        j.k_ref("patient", "Patient", &self.p.id, &self.p.full);
        j.k_ref("encounter", "Encounter", enc, "");
        j.k_datetime("occurrenceDateTime", t, off);
        j.k_datetime("recorded", v.end, off);
        j.k_bool("primarySource", true);
        j.k_str("lotNumber", &lot);
        j.k_cc(
            "route",
            "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
            "IM",
            "Injection, intramuscular",
            "",
        );
        j.k_quantity("doseQuantity", 0.5, 1, "mL", "mL");
        let p = &self.pool.pracs[prac];
        j.k_arr("performer");
        j.obj();
        j.k_ref("actor", "Practitioner", &p.id, &p.full);
        j.end();
        j.end_arr();
        j.done();
    }

    #[allow(clippy::too_many_arguments)]
    fn write_encounter(
        &mut self,
        block: &mut Block,
        v: &Planned,
        enc: &Id,
        org: usize,
        prac: usize,
        child: bool,
        reason: Option<(&'static Cond, Id)>,
    ) {
        let (up, ms) = self.updated(v.end);
        let off = self.p.city.offset_min;
        let mut j = block.begin(Kind::Encounter, enc, 1, up, ms);
        j.k_str("status", "finished");
        let (class, class_display) = v.kind.class();
        j.k_obj("class");
        j.k_str("system", "http://terminology.hl7.org/CodeSystem/v3-ActCode");
        j.k_str("code", class);
        j.k_str("display", class_display);
        j.end();
        let (code, display) = v.kind.snomed(child);
        j.k_cc_list("type", SNOMED, code, display, display);
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        let p = &self.pool.pracs[prac];
        j.k_arr("participant");
        j.obj();
        j.k_cc_list(
            "type",
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "PPRF",
            "primary performer",
            "",
        );
        j.k_period("period", v.start, v.end, off);
        j.k_ref("individual", "Practitioner", &p.id, &p.full);
        j.end();
        j.end_arr();
        j.k_period("period", v.start, v.end, off);
        if let Some((c, id)) = reason {
            j.k_cc_list("reasonCode", SNOMED, c.snomed, c.display, c.display);
            j.k_ref_list("reasonReference", "Condition", &id, "");
        }
        if v.kind == EncKind::Inpatient {
            j.k_obj("hospitalization");
            j.k_cc(
                "dischargeDisposition",
                "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                "home",
                "Home",
                "",
            );
            j.end();
        }
        let o = &self.pool.orgs[org];
        j.k_ref("serviceProvider", "Organization", &o.id, &o.name);
        j.done();
    }

    #[allow(clippy::too_many_arguments)]
    fn write_document(
        &mut self,
        block: &mut Block,
        scratch: &mut Scratch,
        v: &Planned,
        doc: &Id,
        enc: &Id,
        org: usize,
        prac: usize,
    ) {
        let signed = (v.end + self.rng.range(10, 240) * MINUTE).min(self.p.end.max(v.end));
        let (up, ms) = self.updated(signed);
        let off = self.p.city.offset_min;
        let (code, display) = v.kind.note_type();
        let mut j = block.begin(Kind::DocumentReference, doc, 1, up, ms);
        j.k_str("status", "current");
        j.k_str("docStatus", "final");
        j.k_cc("type", LOINC, code, display, display);
        j.k_cc_list(
            "category",
            "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "clinical-note",
            "Clinical Note",
            "",
        );
        j.k_ref("subject", "Patient", &self.p.id, &self.p.full);
        j.k_instant("date", signed, ms);
        let p = &self.pool.pracs[prac];
        j.k_ref_list("author", "Practitioner", &p.id, &p.full);
        let o = &self.pool.orgs[org];
        j.k_ref("custodian", "Organization", &o.id, &o.name);
        j.k_arr("content");
        j.obj();
        j.k_obj("attachment");
        j.k_str("contentType", "text/plain");
        j.k_str("language", "en-US");
        scratch.b64.clear();
        base64::engine::general_purpose::STANDARD
            .encode_string(scratch.note.text.as_bytes(), &mut scratch.b64);
        j.key("data");
        j.raw_str(scratch.b64.as_bytes());
        j.k_str("title", display);
        j.k_datetime("creation", signed, off);
        j.end();
        j.end();
        j.end_arr();
        j.k_obj("context");
        j.k_ref_list("encounter", "Encounter", enc, "");
        j.k_period("period", v.start, v.end, off);
        j.end();
        j.done();
    }
}

fn round_to(v: f64, decimals: u32) -> f64 {
    let s = 10f64.powi(decimals as i32);
    (v * s).round() / s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_growth_is_monotonic() {
        let mut last = 0.0;
        for m in 0..(18 * 12) {
            let h = child_height(f64::from(m) / 12.0);
            assert!(h >= last);
            last = h;
        }
    }

    #[test]
    fn local_time_helper() {
        let t = crate::util::calendar::days_from_civil(2024, 3, 14) * DAY + 2 * HOUR; // 21:00 local the day before at -5h
        let s = at_local(t, -300, 9 * HOUR);
        let mut b = Vec::new();
        time::write_datetime(&mut b, s, -300);
        assert_eq!(
            String::from_utf8(b).unwrap_or_default(),
            "2024-03-13T09:00:00-05:00"
        );
    }
}
