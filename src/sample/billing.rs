//! Billing for one encounter: its Claim and the payer's ExplanationOfBenefit.
//!
//! Owns: the billable lines of a visit ([`Line`]), the adjudication arithmetic (allowed
//! amount, deductible, copay, coinsurance and payment, all in integer cents per payer
//! type), and rendering both resources. The Claim references the patient, the encounter,
//! the provider and payer Organizations and the visit's Conditions and Procedures; the EOB
//! references the Claim, the same parties and the treating Practitioner. Coverage is named
//! by display only (no Coverage resources are generated, so no dangling references).

use super::codes::{EncKind, SNOMED};
use super::json::{Id, J};
use super::output::{Block, Kind};
use super::pool::{Org, Prac};
use super::rng::Rng;
use super::time::{Secs, DAY, SIM_END};

/// What a billed line is, for the EOB service category.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cat {
    Visit,
    Procedure,
    Lab,
    Vaccine,
    Drug,
}

impl Cat {
    /// `(BlueButton line_cms_type_srvc_cd, display)`
    fn cms(self) -> (&'static str, &'static str) {
        match self {
            Cat::Visit | Cat::Procedure => ("1", "Medical care"),
            Cat::Lab => ("5", "Diagnostic laboratory"),
            Cat::Vaccine => ("V", "Pneumococcal/flu vaccine"),
            Cat::Drug => ("9", "Other medical items or services"),
        }
    }
}

/// One billed item.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    pub(crate) system: &'static str,
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
    pub(crate) unit_cents: i64,
    pub(crate) qty: u32,
    pub(crate) cat: Cat,
}

/// Everything the two resources of a visit need.
pub(crate) struct Visit<'a> {
    pub(crate) claim: Id,
    pub(crate) eob: Id,
    pub(crate) patient: &'a Id,
    pub(crate) patient_name: &'a str,
    pub(crate) encounter: &'a Id,
    pub(crate) provider: &'a Org,
    pub(crate) prac: &'a Prac,
    pub(crate) payer: &'a Org,
    pub(crate) member_id: &'a str,
    pub(crate) kind: EncKind,
    pub(crate) start: Secs,
    pub(crate) end: Secs,
    pub(crate) offset_min: i32,
    pub(crate) diagnoses: &'a [Id],
    pub(crate) procedures: &'a [Id],
    pub(crate) lines: &'a [Line],
}

const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";

/// Payer terms: allowed share of the charge (per mille), coinsurance paid by the payer (per
/// mille), copay per visit and yearly-deductible share applied to one visit (cents).
fn terms(payer_code: &str) -> (i64, i64, i64, i64) {
    match payer_code {
        "MCR" => (550, 800, 0, 2_000),
        "MCD" => (450, 1_000, 300, 0),
        _ => (700, 850, 2_500, 5_000),
    }
}

struct Adjudicated {
    submitted: i64,
    allowed: i64,
    deductible: i64,
    copay: i64,
    benefit: i64,
}

fn adjudicate(lines: &[Line], payer_code: &str, rng: &mut Rng) -> Vec<Adjudicated> {
    let (allowed_pm, coins_pm, copay, deductible) = terms(payer_code);
    let mut deductible_left = if rng.chance(0.3) { deductible } else { 0 };
    let mut copay_left = copay;
    lines
        .iter()
        .map(|l| {
            let submitted = l.unit_cents * i64::from(l.qty);
            let allowed = submitted * allowed_pm / 1_000;
            let copay = copay_left.min(allowed);
            copay_left -= copay;
            let deductible = deductible_left.min(allowed - copay);
            deductible_left -= deductible;
            let benefit = (allowed - copay - deductible) * coins_pm / 1_000;
            Adjudicated {
                submitted,
                allowed,
                deductible,
                copay,
                benefit,
            }
        })
        .collect()
}

fn claim_type(kind: EncKind) -> (&'static str, &'static str) {
    match kind {
        EncKind::Inpatient | EncKind::Emergency | EncKind::Procedure => {
            ("institutional", "Institutional")
        }
        _ => ("professional", "Professional"),
    }
}

fn product(j: &mut J<'_>, l: &Line) {
    j.k_cc("productOrService", l.system, l.code, l.display, l.display);
}

/// An item's quantity, unit price and net amount; the first item also names the encounter.
fn amounts(j: &mut J<'_>, l: &Line, a: &Adjudicated, first: bool, v: &Visit<'_>) {
    j.k_obj("quantity");
    j.k_int("value", i64::from(l.qty));
    j.end();
    j.k_money("unitPrice", l.unit_cents);
    j.k_money("net", a.submitted);
    if first {
        j.k_ref_list("encounter", "Encounter", v.encounter, "");
    }
}

fn header(j: &mut J<'_>, v: &Visit<'_>) {
    j.k_str("status", "active");
    let (code, display) = claim_type(v.kind);
    j.k_cc("type", CLAIM_TYPE, code, display, "");
    j.k_str("use", "claim");
    j.k_ref("patient", "Patient", v.patient, v.patient_name);
    j.k_period("billablePeriod", v.start, v.end, v.offset_min);
    j.k_datetime("created", v.end, v.offset_min);
}

fn diagnoses(j: &mut J<'_>, v: &Visit<'_>, eob: bool) {
    if v.diagnoses.is_empty() {
        return;
    }
    j.k_arr("diagnosis");
    for (i, d) in v.diagnoses.iter().enumerate() {
        j.obj();
        j.k_int("sequence", i as i64 + 1);
        j.k_ref("diagnosisReference", "Condition", d, "");
        if eob {
            let code = if i == 0 { "principal" } else { "secondary" };
            j.k_cc_list(
                "type",
                "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                code,
                "",
                "",
            );
        }
        j.end();
    }
    j.end_arr();
}

fn insurance(j: &mut J<'_>, v: &Visit<'_>, sequence: bool) {
    j.k_arr("insurance");
    j.obj();
    if sequence {
        j.k_int("sequence", 1);
    }
    j.k_bool("focal", true);
    j.k_obj("coverage");
    j.k_str("display", &v.payer.name);
    j.end();
    j.end();
    j.end_arr();
}

fn adjudication_entry(j: &mut J<'_>, code: &str, display: &str, cents: i64) {
    j.obj();
    j.k_cc("category", ADJUDICATION, code, display, "");
    j.k_money("amount", cents);
    j.end();
}

/// Renders the Claim and ExplanationOfBenefit of one visit.
pub(crate) fn write(block: &mut Block, rng: &mut Rng, v: &Visit<'_>) {
    let adj = adjudicate(v.lines, v.payer.payer_code, rng);
    let total: i64 = adj.iter().map(|a| a.submitted).sum();
    let millis = rng.below(1_000) as u32;
    let created = v.end;

    let mut j = block.begin(
        Kind::Claim,
        &v.claim,
        1,
        (created + 60).min(SIM_END),
        millis,
    );
    header(&mut j, v);
    j.k_ref("insurer", "Organization", &v.payer.id, &v.payer.name);
    j.k_ref("provider", "Organization", &v.provider.id, &v.provider.name);
    j.k_cc(
        "priority",
        "http://terminology.hl7.org/CodeSystem/processpriority",
        "normal",
        "Normal",
        "",
    );
    diagnoses(&mut j, v, false);
    if !v.procedures.is_empty() {
        j.k_arr("procedure");
        for (i, p) in v.procedures.iter().enumerate() {
            j.obj();
            j.k_int("sequence", i as i64 + 1);
            j.k_ref("procedureReference", "Procedure", p, "");
            j.end();
        }
        j.end_arr();
    }
    insurance(&mut j, v, true);
    j.k_arr("item");
    for (i, (l, a)) in v.lines.iter().zip(&adj).enumerate() {
        j.obj();
        j.k_int("sequence", i as i64 + 1);
        product(&mut j, l);
        j.k_period("servicedPeriod", v.start, v.end, v.offset_min);
        amounts(&mut j, l, a, i == 0, v);
        j.end();
    }
    j.end_arr();
    j.k_money("total", total);
    j.done();

    let mut j = block.begin(
        Kind::ExplanationOfBenefit,
        &v.eob,
        1,
        (created + 3 * DAY).min(SIM_END),
        millis,
    );
    j.k_arr("identifier");
    j.obj();
    j.k_str(
        "system",
        "https://bluebutton.cms.gov/resources/variables/clm_id",
    );
    j.k_id("value", &v.claim);
    j.end();
    j.obj();
    j.k_str("system", "urn:fhirpipe:sample:member-id");
    j.k_str("value", v.member_id);
    j.end();
    j.end_arr();
    header(&mut j, v);
    j.k_ref("insurer", "Organization", &v.payer.id, &v.payer.name);
    j.k_ref("provider", "Organization", &v.provider.id, &v.provider.name);
    j.k_ref("claim", "Claim", &v.claim, "");
    j.k_str("outcome", "complete");
    j.k_arr("careTeam");
    j.obj();
    j.k_int("sequence", 1);
    j.k_ref("provider", "Practitioner", &v.prac.id, &v.prac.full);
    j.k_cc(
        "role",
        "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
        "primary",
        "Primary provider",
        "",
    );
    j.end();
    j.end_arr();
    diagnoses(&mut j, v, true);
    insurance(&mut j, v, false);
    let (place, place_display) = v.kind.place();
    j.k_arr("item");
    for (i, (l, a)) in v.lines.iter().zip(&adj).enumerate() {
        j.obj();
        j.k_int("sequence", i as i64 + 1);
        j.k_arr("careTeamSequence");
        j.int(1);
        j.end_arr();
        if !v.diagnoses.is_empty() && l.cat == Cat::Visit {
            j.k_arr("diagnosisSequence");
            j.int(1);
            j.end_arr();
        }
        let (cms, cms_display) = l.cat.cms();
        j.k_cc(
            "category",
            "https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd",
            cms,
            cms_display,
            "",
        );
        product(&mut j, l);
        j.k_period("servicedPeriod", v.start, v.end, v.offset_min);
        j.k_cc(
            "locationCodeableConcept",
            "http://terminology.hl7.org/CodeSystem/ex-serviceplace",
            place,
            place_display,
            "",
        );
        amounts(&mut j, l, a, i == 0, v);
        j.k_arr("adjudication");
        adjudication_entry(&mut j, "submitted", "Submitted Amount", a.submitted);
        adjudication_entry(&mut j, "eligible", "Eligible Amount", a.allowed);
        adjudication_entry(&mut j, "deductible", "Deductible", a.deductible);
        adjudication_entry(&mut j, "copay", "CoPay", a.copay);
        adjudication_entry(&mut j, "benefit", "Benefit Amount", a.benefit);
        j.end_arr();
        j.end();
    }
    j.end_arr();
    let benefit: i64 = adj.iter().map(|a| a.benefit).sum();
    j.k_arr("total");
    adjudication_entry(&mut j, "submitted", "Submitted Amount", total);
    adjudication_entry(&mut j, "benefit", "Benefit Amount", benefit);
    j.end_arr();
    j.k_obj("payment");
    j.k_money("amount", benefit);
    j.end();
    j.done();
}

/// The visit line of an encounter type.
pub(crate) fn visit_line(kind: EncKind, child: bool) -> Line {
    let (code, display) = kind.snomed(child);
    Line {
        system: SNOMED,
        code,
        display,
        unit_cents: kind.cents(),
        qty: 1,
        cat: Cat::Visit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjudication_never_pays_more_than_allowed() {
        let mut rng = Rng::new(1);
        let lines = [
            visit_line(EncKind::Emergency, false),
            Line {
                system: SNOMED,
                code: "1",
                display: "x",
                unit_cents: 1_999,
                qty: 30,
                cat: Cat::Drug,
            },
            Line {
                system: SNOMED,
                code: "2",
                display: "y",
                unit_cents: 5,
                qty: 1,
                cat: Cat::Lab,
            },
        ];
        for payer in ["MCR", "MCD", "AET"] {
            for _ in 0..50 {
                for a in adjudicate(&lines, payer, &mut rng) {
                    assert!(a.allowed <= a.submitted);
                    assert!(a.copay + a.deductible <= a.allowed);
                    assert!(a.benefit >= 0 && a.benefit + a.copay + a.deductible <= a.allowed);
                }
            }
        }
    }
}
