//! Free-text clinical notes with ground-truth PHI spans.
//!
//! Owns: [`NoteBuilder`] (a note's text plus the byte spans of every PHI mention written
//! into it, in order and never overlapping), the note templates ([`compose`]: headers,
//! history, social history, vitals, labs, assessment and plan, follow-up, signature, in
//! several styles per encounter kind), and the annotation line of one note
//! ([`NoteBuilder::write_annotation`]).
//!
//! What is tagged: the patient's names (full, first, last, "Last, First"; a title such as
//! "Mr." is not part of the span), a relative's and the clinician's names (NAME); every
//! full calendar date (DATE); phone and fax numbers; e-mail; SSN; MRN; other personal
//! identifiers such as an insurance member id (ID); the street line (ADDRESS), city, state
//! and ZIP of an address, including the city inside a hospital name ("<CITY> Memorial
//! Hospital"); URLs and IP addresses of telehealth sessions and portals; and the number of
//! every stated age (AGE). Clock times, years of service, clinic names, payer names, codes,
//! doses and measurements are not PHI and are written untagged on purpose.

use super::codes::{Cond, EncKind, Med, Proc, Test, Vaccine};
use super::json::{Id, J};
use super::names::City;
use super::rng::Rng;
use super::time::{self, NoteDate, Secs};

/// A kind of PHI span (the `type` of an annotation): the recognizer's categories, so the
/// labels of both sides are one list.
pub(crate) use crate::phi::PhiType as Phi;

/// One PHI span: byte offsets into the note text, end exclusive.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: Phi,
}

/// A note under construction. Text is only appended, so spans come out sorted and
/// non-overlapping by construction.
#[derive(Default)]
pub(crate) struct NoteBuilder {
    pub(crate) text: String,
    pub(crate) spans: Vec<Span>,
}

impl NoteBuilder {
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }

    /// Plain (non-PHI) text.
    #[inline]
    pub(crate) fn t(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// A plain number.
    pub(crate) fn n(&mut self, v: i64) -> &mut Self {
        self.text.push_str(itoa::Buffer::new().format(v));
        self
    }

    /// A plain fixed-point number.
    pub(crate) fn f(&mut self, v: f64, decimals: u32) -> &mut Self {
        let mut b = Vec::with_capacity(12);
        super::json::push_fixed(&mut b, v, decimals);
        // push_fixed writes ASCII digits, '-' and '.' only.
        self.text.push_str(std::str::from_utf8(&b).unwrap_or("0"));
        self
    }

    /// PHI text of `kind`.
    pub(crate) fn phi(&mut self, kind: Phi, s: &str) -> &mut Self {
        if !s.is_empty() {
            let start = self.text.len();
            self.text.push_str(s);
            self.spans.push(Span {
                start,
                end: self.text.len(),
                kind,
            });
        }
        self
    }

    /// A calendar date (DATE span) in a note format.
    pub(crate) fn date(&mut self, day: i64, fmt: NoteDate) -> &mut Self {
        let start = self.text.len();
        time::push_note_date(&mut self.text, day, fmt);
        self.spans.push(Span {
            start,
            end: self.text.len(),
            kind: Phi::Date,
        });
        self
    }

    /// An age number (AGE span).
    pub(crate) fn age(&mut self, years: i64) -> &mut Self {
        let start = self.text.len();
        self.text.push_str(itoa::Buffer::new().format(years));
        self.spans.push(Span {
            start,
            end: self.text.len(),
            kind: Phi::Age,
        });
        self
    }

    /// Appends the annotation line of this note.
    pub(crate) fn write_annotation(&self, buf: &mut Vec<u8>, doc: &Id, patient: &Id) {
        let mut j = J::new(buf);
        j.obj();
        j.k_str("resourceType", "DocumentReference");
        j.k_id("id", doc);
        j.key("patient");
        let mut r = Vec::with_capacity(44);
        r.extend_from_slice(b"Patient/");
        r.extend_from_slice(patient.as_bytes());
        j.raw_str(&r);
        j.k_arr("spans");
        for s in &self.spans {
            j.obj();
            j.k_int("start", s.start as i64);
            j.k_int("end", s.end as i64);
            j.k_str("type", s.kind.label());
            j.k_str("text", self.text.get(s.start..s.end).unwrap_or(""));
            j.end();
        }
        j.end_arr();
        j.end();
        j.buf.push(b'\n');
    }
}

/// The patient as notes mention them.
pub(crate) struct Person<'a> {
    pub(crate) given: &'a str,
    pub(crate) family: &'a str,
    pub(crate) female: bool,
    pub(crate) married: bool,
    pub(crate) birth_day: i64,
    pub(crate) phone: &'a str,
    pub(crate) email: &'a str,
    pub(crate) ssn: &'a str,
    pub(crate) mrn: &'a str,
    pub(crate) line: &'a str,
    pub(crate) city: &'a City,
    pub(crate) occupation: &'a str,
    /// Next of kin: given, family, relation word ("wife", "mother", ...), phone.
    pub(crate) relative: (&'a str, &'a str, &'a str, &'a str),
    pub(crate) payer: &'a str,
    pub(crate) member_id: &'a str,
    pub(crate) smoker: bool,
    pub(crate) allergy: Option<&'a str>,
}

/// Vital signs measured at a visit.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Vitals {
    pub(crate) height: Option<f64>,
    pub(crate) weight: f64,
    pub(crate) bmi: Option<f64>,
    pub(crate) bp: Option<(f64, f64)>,
    pub(crate) hr: f64,
    pub(crate) rr: Option<f64>,
    pub(crate) temp: Option<f64>,
    pub(crate) spo2: Option<f64>,
    pub(crate) pain: Option<f64>,
}

/// The visit a note documents.
pub(crate) struct Visit<'a> {
    pub(crate) kind: EncKind,
    pub(crate) start: Secs,
    pub(crate) end: Secs,
    pub(crate) offset_min: i32,
    pub(crate) age_years: i64,
    pub(crate) age_months: i64,
    /// Clinician: title-free full name, and whether they are a nurse practitioner.
    pub(crate) prac_name: &'a str,
    pub(crate) prac_np: bool,
    pub(crate) org_name: &'a str,
    /// The city a hospital is named after (tagged inside the name).
    pub(crate) org_city: Option<&'a City>,
    pub(crate) org_phone: &'a str,
    pub(crate) reason: Option<&'a Cond>,
    pub(crate) new_diagnosis: bool,
    /// Chronic conditions known at the visit.
    pub(crate) history: &'a [&'a Cond],
    pub(crate) meds_new: &'a [&'a Med],
    pub(crate) meds_active: &'a [&'a Med],
    pub(crate) procs: &'a [&'a Proc],
    pub(crate) vaccines: &'a [&'a Vaccine],
    pub(crate) vitals: Option<Vitals>,
    pub(crate) labs: &'a [(&'a Test, f64)],
    pub(crate) follow_up_day: Option<i64>,
    /// Session token of a telehealth visit (URL path) and the patient's IPv4 address.
    pub(crate) session: Option<(&'a str, [u8; 4])>,
}

const DATE_FORMATS: [NoteDate; 5] = [
    NoteDate::Iso,
    NoteDate::Us,
    NoteDate::Long,
    NoteDate::DayMonYear,
    NoteDate::UsShort,
];

fn pick_fmt(rng: &mut Rng) -> NoteDate {
    DATE_FORMATS[rng.index(DATE_FORMATS.len())]
}

fn day_of(t: Secs, offset_min: i32) -> i64 {
    (t + i64::from(offset_min) * 60).div_euclid(time::DAY)
}

/// Writes a clinical note for `v` into `nb` (cleared first).
pub(crate) fn compose(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, v: &Visit<'_>) {
    nb.clear();
    let fmt = pick_fmt(rng);
    let visit_day = day_of(v.start, v.offset_min);
    header(nb, rng, p, v, fmt, visit_day);
    opening(nb, rng, p, v);
    if v.kind == EncKind::Inpatient {
        nb.t("\n\nHospital course: ");
        nb.t("Admitted on ")
            .date(visit_day, fmt)
            .t(" and discharged on ")
            .date(day_of(v.end, v.offset_min), fmt)
            .t(". ");
        if let Some(c) = v.reason {
            nb.t("Treated for ").t(c.text).t(". ").t(c.plan);
        }
        nb.t(" Diet advanced as tolerated; ambulating independently at discharge.");
    }
    history(nb, rng, p, v);
    if rng.chance(0.55) || v.kind == EncKind::Wellness {
        social(nb, rng, p, v);
    }
    vitals(nb, rng, v);
    exam(nb, rng, v);
    labs(nb, v);
    if !v.procs.is_empty() {
        nb.t("\n\nProcedures: ");
        for (i, pr) in v.procs.iter().enumerate() {
            if i > 0 {
                nb.t("; ");
            }
            nb.t(pr.short);
        }
        nb.t(" performed without complication.");
    }
    if !v.vaccines.is_empty() {
        nb.t("\n\nImmunizations: ");
        for (i, vx) in v.vaccines.iter().enumerate() {
            if i > 0 {
                nb.t(", ");
            }
            nb.t(vx.short);
        }
        nb.t(" given today. VIS provided and questions answered.");
    }
    plan(nb, rng, p, v, fmt);
    signature(nb, rng, v, fmt);
}

fn sex_word(p: &Person<'_>, age: i64) -> &'static str {
    match (p.female, age < 18) {
        (true, true) => "girl",
        (false, true) => "boy",
        (true, false) => "woman",
        (false, false) => "man",
    }
}

fn title(p: &Person<'_>) -> &'static str {
    if !p.female {
        "Mr. "
    } else if p.married {
        "Mrs. "
    } else {
        "Ms. "
    }
}

fn pron(p: &Person<'_>) -> (&'static str, &'static str) {
    if p.female {
        ("She", "her")
    } else {
        ("He", "his")
    }
}

fn full_name(nb: &mut NoteBuilder, p: &Person<'_>) {
    let start = nb.text.len();
    nb.text.push_str(p.given);
    nb.text.push(' ');
    nb.text.push_str(p.family);
    nb.spans.push(Span {
        start,
        end: nb.text.len(),
        kind: Phi::Name,
    });
}

fn last_first(nb: &mut NoteBuilder, p: &Person<'_>) {
    let start = nb.text.len();
    nb.text.push_str(p.family);
    nb.text.push_str(", ");
    nb.text.push_str(p.given);
    nb.spans.push(Span {
        start,
        end: nb.text.len(),
        kind: Phi::Name,
    });
}

/// How the narrative refers to the patient after the first mention.
fn short_ref(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, age: i64) {
    if age < 18 || rng.chance(0.3) {
        nb.phi(Phi::Name, p.given);
    } else if rng.chance(0.15) {
        nb.t("The patient");
    } else {
        nb.t(title(p)).phi(Phi::Name, p.family);
    }
}

fn org(nb: &mut NoteBuilder, v: &Visit<'_>) {
    match v
        .org_city
        .and_then(|c| v.org_name.strip_prefix(c.name).map(|rest| (c, rest)))
    {
        Some((c, rest)) => {
            nb.phi(Phi::City, c.name).t(rest);
        }
        None => {
            nb.t(v.org_name);
        }
    }
}

fn prac(nb: &mut NoteBuilder, v: &Visit<'_>) {
    if v.prac_np {
        nb.phi(Phi::Name, v.prac_name).t(", NP");
    } else {
        nb.t("Dr. ").phi(Phi::Name, v.prac_name);
    }
}

fn age_phrase(nb: &mut NoteBuilder, v: &Visit<'_>, compact: bool) {
    if v.age_years < 2 {
        nb.age(v.age_months)
            .t(if compact { " mo" } else { "-month-old" });
    } else {
        nb.age(v.age_years)
            .t(if compact { " y/o" } else { "-year-old" });
    }
}

fn address(nb: &mut NoteBuilder, p: &Person<'_>) {
    nb.phi(Phi::Address, p.line)
        .t(", ")
        .phi(Phi::City, p.city.name)
        .t(", ")
        .phi(Phi::State, p.city.state)
        .t(" ");
    nb.phi(Phi::Zip, p.city.zip);
}

fn note_title(kind: EncKind) -> &'static str {
    match kind {
        EncKind::Wellness => "ANNUAL PREVENTIVE VISIT",
        EncKind::Ambulatory => "OFFICE VISIT",
        EncKind::FollowUp => "FOLLOW-UP NOTE",
        EncKind::Emergency => "EMERGENCY DEPARTMENT NOTE",
        EncKind::Inpatient => "DISCHARGE SUMMARY",
        EncKind::Telehealth => "TELEHEALTH PROGRESS NOTE",
        EncKind::Procedure => "PROCEDURE NOTE",
    }
}

fn header(
    nb: &mut NoteBuilder,
    rng: &mut Rng,
    p: &Person<'_>,
    v: &Visit<'_>,
    fmt: NoteDate,
    visit_day: i64,
) {
    let dob_fmt = pick_fmt(rng);
    match rng.below(4) {
        0 => {
            nb.t(note_title(v.kind)).t("\n\nPatient: ");
            full_name(nb, p);
            nb.t("\nDOB: ")
                .date(p.birth_day, dob_fmt)
                .t("\nMRN: ")
                .phi(Phi::Mrn, p.mrn);
            nb.t("\nDate of service: ")
                .date(visit_day, fmt)
                .t("\nProvider: ");
            prac(nb, v);
            nb.t("\nLocation: ");
            org(nb, v);
            nb.t("\n\n");
        }
        1 => {
            org(nb, v);
            nb.t(" | ").t(note_title(v.kind)).t("\n");
            last_first(nb, p);
            nb.t(" | MRN ")
                .phi(Phi::Mrn, p.mrn)
                .t(" | DOB ")
                .date(p.birth_day, dob_fmt)
                .t(" | ");
            age_phrase(nb, v, true);
            nb.t(if p.female { " F" } else { " M" })
                .t("\nSeen ")
                .date(visit_day, fmt)
                .t(" at ");
            time::push_note_time(&mut nb.text, v.start, v.offset_min);
            nb.t(" by ");
            prac(nb, v);
            nb.t(".\n\n");
        }
        2 => {
            nb.t(note_title(v.kind))
                .t(" - ")
                .date(visit_day, fmt)
                .t("\nName: ");
            full_name(nb, p);
            nb.t("    Medical record #: ")
                .phi(Phi::Mrn, p.mrn)
                .t("    Date of birth: ")
                .date(p.birth_day, dob_fmt);
            nb.t("\nAttending: ");
            prac(nb, v);
            nb.t("\n\n");
        }
        _ => {
            nb.t("Visit date: ").date(visit_day, fmt).t("\nRe: ");
            if v.age_years >= 18 && rng.chance(0.5) {
                nb.t(title(p)).phi(Phi::Name, p.family);
            } else {
                full_name(nb, p);
            }
            nb.t("\n\n");
        }
    }
}

fn opening(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, v: &Visit<'_>) {
    let (he, his) = pron(p);
    let age = v.age_years;
    nb.t(match v.kind {
        EncKind::Inpatient => "History: ",
        EncKind::Procedure => "Indication: ",
        _ => "Subjective: ",
    });
    if v.kind == EncKind::Telehealth {
        if let Some((token, ip)) = v.session {
            nb.t("This visit was conducted by secure video at ");
            let mut url = String::with_capacity(64);
            url.push_str("https://telehealth.example.org/visit/");
            url.push_str(token);
            nb.phi(Phi::Url, &url)
                .t("; the patient connected from IP address ");
            let mut ip_s = String::with_capacity(15);
            for (i, o) in ip.iter().enumerate() {
                if i > 0 {
                    ip_s.push('.');
                }
                ip_s.push_str(itoa::Buffer::new().format(*o));
            }
            nb.phi(Phi::Ip, &ip_s)
                .t(". Identity was verified with date of birth ")
                .date(p.birth_day, pick_fmt(rng));
            nb.t(" and home address ");
            address(nb, p);
            nb.t(". ");
        }
    }
    match (v.kind, v.reason) {
        (EncKind::Wellness, _) if age < 2 => {
            nb.phi(Phi::Name, p.given).t(" is a ");
            age_phrase(nb, v, false);
            nb.t(" ")
                .t(sex_word(p, age))
                .t(" brought in by ")
                .t(his)
                .t(" ")
                .t(p.relative.2)
                .t(", ");
            nb.phi(Phi::Name, p.relative.0).t(", for a well-child visit. Feeding well, normal stooling, meeting developmental milestones.");
        }
        (EncKind::Wellness, _) => {
            if rng.chance(0.5) {
                full_name(nb, p);
            } else {
                nb.t(title(p)).phi(Phi::Name, p.family);
            }
            nb.t(" is a ");
            age_phrase(nb, v, false);
            nb.t(" ").t(sex_word(p, age));
            if age >= 18 && !p.occupation.is_empty() && rng.chance(0.5) {
                nb.t(" who works as ").t(p.occupation).t(",");
            }
            nb.t(" presenting for a routine preventive examination. ")
                .t(he)
                .t(" has no acute complaints today.");
            if !v.history.is_empty() {
                nb.t(" Chronic problems are reviewed below.");
            }
        }
        (EncKind::Emergency, Some(c)) => {
            age_phrase(nb, v, false);
            nb.t(" ").t(sex_word(p, age)).t(" arrived ");
            nb.t(if rng.chance(0.3) {
                "by ambulance"
            } else {
                "by private vehicle"
            })
            .t(" at ");
            time::push_note_time(&mut nb.text, v.start, v.offset_min);
            nb.t(" with ").t(c.complaint).t(". ");
            short_ref(nb, rng, p, age);
            nb.t(" reports ").t(c.hpi).t(".");
            if rng.chance(0.4) {
                nb.t(" Accompanied by ")
                    .t(his)
                    .t(" ")
                    .t(p.relative.2)
                    .t(" ");
                nb.phi(Phi::Name, p.relative.0)
                    .t(" ")
                    .phi(Phi::Name, p.relative.1)
                    .t(".");
            }
        }
        (EncKind::FollowUp, Some(c)) | (EncKind::Telehealth, Some(c)) if c.chronic => {
            short_ref(nb, rng, p, age);
            nb.t(" returns for follow-up of ").t(c.text).t(".");
            if let Some(m) = v.meds_active.first() {
                nb.t(" Reports good adherence to ")
                    .t(m.short)
                    .t(" without side effects.");
            }
            nb.t(" ")
                .t(he)
                .t(" denies chest pain, shortness of breath or new symptoms.");
        }
        (_, Some(c)) => {
            if rng.chance(0.5) {
                full_name(nb, p);
            } else {
                short_ref(nb, rng, p, age);
            }
            nb.t(", a ");
            age_phrase(nb, v, false);
            nb.t(" ")
                .t(sex_word(p, age))
                .t(", presents with ")
                .t(c.complaint)
                .t(". ")
                .t(he)
                .t(" describes ")
                .t(c.hpi)
                .t(".");
            if c.fever {
                nb.t(" Tmax at home 38.6 C.");
            }
        }
        (_, None) => {
            full_name(nb, p);
            nb.t(" is seen today for routine care.");
        }
    }
}

fn history(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, v: &Visit<'_>) {
    nb.t("\n\nPast medical history: ");
    if v.history.is_empty() {
        nb.t("None.");
    } else {
        for (i, c) in v.history.iter().enumerate() {
            if i > 0 {
                nb.t("; ");
            }
            nb.t(c.text).t(" (ICD-10 ").t(c.icd10).t(")");
        }
        nb.t(".");
    }
    nb.t("\nMedications: ");
    if v.meds_active.is_empty() {
        nb.t("None.");
    } else {
        for (i, m) in v.meds_active.iter().enumerate() {
            if i > 0 {
                nb.t("; ");
            }
            nb.t(m.short);
            if rng.chance(0.4) {
                nb.t(" - ").t(m.sig.trim_end_matches('.'));
            }
        }
        nb.t(".");
    }
    nb.t("\nAllergies: ")
        .t(p.allergy.unwrap_or("No known drug allergies."));
}

fn social(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, v: &Visit<'_>) {
    let (he, his) = pron(p);
    nb.t("\nSocial history: ");
    if rng.chance(0.6) {
        nb.t("Lives at ");
        address(nb, p);
        nb.t(" with ").t(his).t(" ").t(p.relative.2).t(", ");
        nb.phi(Phi::Name, p.relative.0).t(". ");
    } else {
        nb.t("Lives in ")
            .phi(Phi::City, p.city.name)
            .t(" with family. ");
    }
    if v.age_years >= 16 {
        nb.t(if p.smoker {
            "Current smoker, about 10 cigarettes per day; cessation advised. "
        } else {
            "Never smoker. "
        });
        nb.t("Alcohol: ").t(if rng.chance(0.5) {
            "social, 2-3 drinks per week."
        } else {
            "none."
        });
    }
    if rng.chance(0.5) {
        nb.t("\nContact: ")
            .t(he)
            .t(" can be reached at ")
            .phi(Phi::Phone, p.phone);
        if !p.email.is_empty() && rng.chance(0.6) {
            nb.t(" or by e-mail at ").phi(Phi::Email, p.email);
        }
        nb.t(".");
    }
    if rng.chance(0.35) {
        nb.t("\nEmergency contact: ")
            .phi(Phi::Name, p.relative.0)
            .t(" ")
            .phi(Phi::Name, p.relative.1);
        nb.t(" (")
            .t(p.relative.2)
            .t("), ")
            .phi(Phi::Phone, p.relative.3)
            .t(".");
    }
    if rng.chance(0.3) {
        nb.t("\nInsurance: ")
            .t(p.payer)
            .t(", member ID ")
            .phi(Phi::Id, p.member_id)
            .t(".");
    }
    if rng.chance(0.1) {
        nb.t("\nSSN ")
            .phi(Phi::Ssn, p.ssn)
            .t(" verified at registration.");
    }
}

fn vitals(nb: &mut NoteBuilder, rng: &mut Rng, v: &Visit<'_>) {
    let Some(vs) = v.vitals else { return };
    nb.t("\n\nVital signs: ");
    if let Some((s, d)) = vs.bp {
        nb.t("BP ").f(s, 0).t("/").f(d, 0).t(" mmHg, ");
    }
    nb.t("HR ").f(vs.hr, 0);
    if let Some(rr) = vs.rr {
        nb.t(", RR ").f(rr, 0);
    }
    if let Some(temp) = vs.temp {
        nb.t(", Temp ").f(temp, 1).t(" C");
    }
    if let Some(o) = vs.spo2 {
        nb.t(", SpO2 ").f(o, 0).t("% on room air");
    }
    nb.t(", Wt ").f(vs.weight, 1).t(" kg");
    if let Some(h) = vs.height {
        nb.t(", Ht ").f(h, 1).t(" cm");
    }
    if let Some(b) = vs.bmi {
        nb.t(", BMI ").f(b, 1);
    }
    if let Some(pain) = vs.pain {
        nb.t(". Pain ").f(pain, 0).t("/10");
    }
    nb.t(".");
    if v.kind == EncKind::Wellness && v.age_years >= 12 && rng.chance(0.7) {
        nb.t(" PHQ-9 score ")
            .n(rng.range(0, 6))
            .t("; GAD-7 score ")
            .n(rng.range(0, 5))
            .t(".");
    }
}

fn exam(nb: &mut NoteBuilder, rng: &mut Rng, v: &Visit<'_>) {
    if v.kind == EncKind::Telehealth {
        nb.t("\n\nExam: Limited by video. Well appearing, speaking in full sentences, no respiratory distress.");
        return;
    }
    nb.t("\n\nExam: General: Alert and oriented, in no acute distress. ");
    let c = v.reason;
    let resp = c.is_some_and(|c| {
        matches!(
            c.snomed,
            "233604007" | "10509002" | "185086009" | "195967001"
        )
    });
    let injury = c.is_some_and(|c| c.injury);
    if rng.chance(0.7) {
        nb.t("HEENT: Normocephalic, atraumatic; PERRLA; oropharynx ");
        nb.t(if c.is_some_and(|c| c.fever) {
            "erythematous. "
        } else {
            "clear. "
        });
    }
    nb.t(if resp {
        "Lungs: Scattered rhonchi, no wheezes. "
    } else {
        "Lungs: Clear to auscultation bilaterally. "
    });
    nb.t(if c.is_some_and(|c| c.snomed == "49436004") {
        "Heart: Irregularly irregular rhythm. "
    } else {
        "Heart: Regular rate and rhythm, no murmurs. "
    });
    if rng.chance(0.6) {
        nb.t("Abdomen: Soft, nontender, nondistended. ");
    }
    if injury {
        nb.t("Extremities: Focal tenderness and swelling at the site of injury; neurovascularly intact distally. ");
    }
    if v.kind == EncKind::Emergency {
        nb.t("Neuro: Glasgow Coma Scale 15, no focal deficits.");
    }
    // Every phrase above ends with a space; no span ends in one.
    while nb.text.ends_with(' ') {
        nb.text.pop();
    }
}

fn labs(nb: &mut NoteBuilder, v: &Visit<'_>) {
    if v.labs.is_empty() {
        return;
    }
    nb.t("\n\nLabs: ");
    for (i, (t, val)) in v.labs.iter().enumerate() {
        if i > 0 {
            nb.t(", ");
        }
        nb.t(t.short).t(" ").f(*val, t.decimals).t(" ").t(t.ucum);
        if *val > t.high {
            nb.t(" (H)");
        } else if *val < t.low {
            nb.t(" (L)");
        }
    }
    nb.t(".");
}

fn plan(nb: &mut NoteBuilder, rng: &mut Rng, p: &Person<'_>, v: &Visit<'_>, fmt: NoteDate) {
    nb.t("\n\nAssessment and plan:\n");
    let mut n = 1;
    if let Some(c) = v.reason {
        nb.n(n).t(". ").t(c.text).t(" (").t(c.icd10).t(")");
        if c.chronic && !v.new_diagnosis {
            nb.t(". ").t(match rng.below(3) {
                0 => "Stable on the current regimen; continue and recheck at the next visit.",
                1 => "Improved since the last visit. Goals reviewed; no changes today.",
                _ => "Partially controlled; lifestyle measures reinforced and adherence discussed.",
            });
        } else {
            nb.t(if c.chronic { ", new diagnosis. " } else { ". " })
                .t(c.plan);
        }
        let verb = if c.chronic && !v.new_diagnosis {
            " Refilled "
        } else {
            " Prescribed "
        };
        for m in v.meds_new {
            nb.t(verb).t(m.short).t(": ").t(m.sig);
            if !m.sig.ends_with('.') {
                nb.t(".");
            }
        }
        nb.t("\n");
        n += 1;
    } else if v.kind == EncKind::Wellness {
        nb.n(n).t(". Routine health maintenance. Age-appropriate screening and anticipatory guidance reviewed.");
        for m in v.meds_new {
            nb.t(" Started ").t(m.short).t(".");
        }
        nb.t("\n");
        n += 1;
    }
    for c in v
        .history
        .iter()
        .filter(|c| v.reason.is_none_or(|r| !std::ptr::eq(r, **c)))
        .take(3)
    {
        nb.n(n)
            .t(". ")
            .t(c.text)
            .t(" - stable, continue current management.\n");
        n += 1;
    }
    if v.kind == EncKind::Inpatient {
        nb.t("Discharged home with ")
            .t(p.relative.2)
            .t(" in stable condition.\n");
    }
    if let Some(day) = v.follow_up_day {
        nb.t("Follow-up: Return to clinic on ").date(day, fmt);
        nb.t(if rng.chance(0.5) {
            " or sooner if symptoms worsen.\n"
        } else {
            ". Patient verbalized understanding.\n"
        });
    } else {
        nb.t("Follow-up: As needed.\n");
    }
    if rng.chance(0.2) {
        nb.t("Records requested from the previous provider; please fax to ");
        let mut fax = v.org_phone.to_string();
        if let Some(last) = fax.pop() {
            let d = last.to_digit(10).map_or(0, |d| (d + 1) % 10);
            fax.push(char::from(b'0' + d as u8));
        }
        nb.phi(Phi::Fax, &fax).t(".\n");
    }
    if rng.chance(0.15) {
        nb.t("Results will be released to the patient portal at ");
        let mut url = String::with_capacity(64);
        url.push_str("https://portal.example.org/chart/");
        url.push_str(p.mrn);
        nb.phi(Phi::Url, &url).t(".\n");
    }
}

fn signature(nb: &mut NoteBuilder, rng: &mut Rng, v: &Visit<'_>, fmt: NoteDate) {
    let signed = v.end + rng.range(10, 240) * 60;
    nb.t("\nElectronically signed by ");
    prac(nb, v);
    nb.t(" on ")
        .date(day_of(signed, v.offset_min), fmt)
        .t(" at ");
    time::push_note_time(&mut nb.text, signed, v.offset_min);
    if rng.chance(0.3) {
        nb.t(", ");
        org(nb, v);
    }
    nb.t(".\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::codes;
    use crate::sample::names::CITIES;

    fn person() -> Person<'static> {
        Person {
            given: "José",
            family: "O'Brien",
            female: false,
            married: true,
            birth_day: 3_000,
            phone: "555-201-3344",
            email: "jose.obrien@example.com",
            ssn: "123-45-6789",
            mrn: "40012345",
            line: "12 Main St Apt 4",
            city: &CITIES[0],
            occupation: "a chef",
            relative: ("Ana", "O'Brien", "wife", "555-201-9999"),
            payer: "Aetna",
            member_id: "AET123456789",
            smoker: false,
            allergy: None,
        }
    }

    #[test]
    fn spans_are_sorted_disjoint_and_exact() {
        let p = person();
        let hist = [&codes::HYPERTENSION];
        let meds = [&codes::LISINOPRIL];
        let labs = [(&codes::LDL, 141.0)];
        let mut nb = NoteBuilder::default();
        let mut rng = Rng::new(3);
        for i in 0..200 {
            let kind = [
                EncKind::Wellness,
                EncKind::Emergency,
                EncKind::Telehealth,
                EncKind::FollowUp,
                EncKind::Inpatient,
            ][i % 5];
            let v = Visit {
                kind,
                start: 19_000 * time::DAY,
                end: 19_000 * time::DAY + 1_800,
                offset_min: -300,
                age_years: 1 + (i as i64 % 95),
                age_months: 14,
                prac_name: "Ann Lee",
                prac_np: i % 3 == 0,
                org_name: "Boston Memorial Hospital",
                org_city: Some(&CITIES[0]),
                org_phone: "555-300-1009",
                reason: Some(if i % 2 == 0 {
                    &codes::HYPERTENSION
                } else {
                    &codes::PNEUMONIA
                }),
                new_diagnosis: i % 4 == 0,
                history: &hist,
                meds_new: &meds,
                meds_active: &meds,
                procs: &[],
                vaccines: &[],
                vitals: Some(Vitals {
                    height: Some(170.0),
                    weight: 80.0,
                    bmi: Some(27.7),
                    bp: Some((128.0, 82.0)),
                    hr: 72.0,
                    rr: Some(16.0),
                    temp: Some(36.8),
                    spo2: Some(98.0),
                    pain: None,
                }),
                labs: &labs,
                follow_up_day: Some(19_090),
                session: Some(("a1b2c3", [198, 51, 100, 7])),
            };
            compose(&mut nb, &mut rng, &p, &v);
            let mut end = 0;
            for s in &nb.spans {
                assert!(s.start >= end && s.end > s.start, "{s:?}");
                assert!(nb.text.get(s.start..s.end).is_some());
                end = s.end;
            }
            assert!(
                nb.text.contains("José") || nb.text.contains("O'Brien"),
                "{}",
                nb.text
            );
            assert!(nb.spans.iter().any(|s| s.kind == Phi::Date));
        }
        let mut line = Vec::new();
        let mut ids = crate::sample::rng::SplitMix64::new(1);
        let doc = Id::next(&mut ids);
        nb.write_annotation(&mut line, &doc, &doc);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!(v["resourceType"], "DocumentReference");
        assert!(v["spans"].as_array().is_some_and(|a| !a.is_empty()));
    }
}
