//! Clinical code tables for the sample generator.
//!
//! Owns: the coded content every resource draws from — conditions (SNOMED CT with their
//! ICD-10-CM equivalents), medications (RxNorm), procedures and encounter types (SNOMED CT),
//! vaccines (CVX), vital signs and laboratory tests (LOINC with UCUM units and reference
//! ranges), lab panels, and the code-system URIs. Codes and displays follow the ones
//! Synthea emits (checked against the Synthea sample data in `shared/data`).

pub(crate) const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const LOINC: &str = "http://loinc.org";
pub(crate) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub(crate) const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub(crate) const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// Where a condition can be the reason for an encounter (bit set).
pub(crate) const AMB: u8 = 1;
pub(crate) const ED: u8 = 2;
pub(crate) const IMP: u8 = 4;
pub(crate) const VR: u8 = 8;
pub(crate) const PROC: u8 = 16;

/// Sex restriction of a condition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SexRule {
    Any,
    Male,
    Female,
}

/// Dose form: the UCUM unit of one dose.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Form {
    Tablet,
    Capsule,
    Puff,
    Ml,
    Unit,
    Spray,
}

impl Form {
    /// `(unit display, UCUM code)`
    pub(crate) fn unit(self) -> (&'static str, &'static str) {
        match self {
            Form::Tablet => ("tablet", "{tbl}"),
            Form::Capsule => ("capsule", "{capsule}"),
            Form::Puff => ("puff", "{puff}"),
            Form::Ml => ("mL", "mL"),
            Form::Unit => ("IU", "[IU]"),
            Form::Spray => ("spray", "{spray}"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Med {
    pub(crate) rxnorm: &'static str,
    pub(crate) display: &'static str,
    /// Lower-case name used in notes.
    pub(crate) short: &'static str,
    pub(crate) form: Form,
    pub(crate) dose: f64,
    /// Doses per day (0 = as needed only).
    pub(crate) per_day: u32,
    pub(crate) as_needed: bool,
    pub(crate) sig: &'static str,
    /// Price of one dispensed unit, in cents.
    pub(crate) unit_cents: i64,
    /// Days of a course for acute use.
    pub(crate) days: u32,
    pub(crate) child: Option<&'static Med>,
}

#[allow(clippy::too_many_arguments)] // a table-row constructor
const fn med(
    rxnorm: &'static str,
    display: &'static str,
    short: &'static str,
    form: Form,
    dose: f64,
    per_day: u32,
    as_needed: bool,
    sig: &'static str,
    unit_cents: i64,
    days: u32,
) -> Med {
    Med {
        rxnorm,
        display,
        short,
        form,
        dose,
        per_day,
        as_needed,
        sig,
        unit_cents,
        days,
        child: None,
    }
}

pub(crate) static ACETAMINOPHEN_160: Med = med(
    "282464",
    "Acetaminophen 160 MG Oral Tablet",
    "acetaminophen 160 mg",
    Form::Tablet,
    1.0,
    4,
    true,
    "Take 1 tablet by mouth every 6 hours as needed for fever or pain.",
    12,
    5,
);
pub(crate) static ACETAMINOPHEN_325: Med = Med {
    child: Some(&ACETAMINOPHEN_160),
    ..med(
        "313782",
        "Acetaminophen 325 MG Oral Tablet",
        "acetaminophen 325 mg",
        Form::Tablet,
        2.0,
        4,
        true,
        "Take 2 tablets by mouth every 6 hours as needed for pain or fever.",
        9,
        7,
    )
};
pub(crate) static IBUPROFEN_100: Med = med(
    "198405",
    "Ibuprofen 100 MG Oral Tablet",
    "ibuprofen 100 mg",
    Form::Tablet,
    1.0,
    3,
    true,
    "Take 1 tablet by mouth every 8 hours as needed for pain.",
    15,
    7,
);
pub(crate) static IBUPROFEN_200: Med = Med {
    child: Some(&IBUPROFEN_100),
    ..med(
        "310965",
        "Ibuprofen 200 MG Oral Tablet",
        "ibuprofen 200 mg",
        Form::Tablet,
        2.0,
        3,
        true,
        "Take 2 tablets by mouth every 8 hours with food as needed for pain.",
        11,
        10,
    )
};
pub(crate) static NAPROXEN_220: Med = med(
    "849574",
    "Naproxen sodium 220 MG Oral Tablet",
    "naproxen sodium 220 mg",
    Form::Tablet,
    1.0,
    2,
    true,
    "Take 1 tablet by mouth every 12 hours as needed for pain.",
    14,
    10,
);
pub(crate) static NAPROXEN_500: Med = med(
    "198014",
    "Naproxen 500 MG Oral Tablet",
    "naproxen 500 mg",
    Form::Tablet,
    1.0,
    2,
    false,
    "Take 1 tablet by mouth twice daily with food.",
    32,
    30,
);
pub(crate) static AMOXICILLIN_250: Med = med(
    "308182",
    "Amoxicillin 250 MG Oral Capsule",
    "amoxicillin 250 mg",
    Form::Capsule,
    1.0,
    3,
    false,
    "Take 1 capsule by mouth three times daily for 10 days.",
    38,
    10,
);
pub(crate) static AMOXICILLIN_500: Med = Med {
    child: Some(&AMOXICILLIN_250),
    ..med(
        "308192",
        "Amoxicillin 500 MG Oral Tablet",
        "amoxicillin 500 mg",
        Form::Tablet,
        1.0,
        3,
        false,
        "Take 1 tablet by mouth three times daily for 10 days.",
        52,
        10,
    )
};
pub(crate) static AMOX_CLAV: Med = med(
    "562251",
    "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet",
    "amoxicillin-clavulanate 250-125 mg",
    Form::Tablet,
    1.0,
    3,
    false,
    "Take 1 tablet by mouth every 8 hours for 10 days.",
    95,
    10,
);
pub(crate) static PENICILLIN_250: Med = med(
    "834061",
    "Penicillin V Potassium 250 MG Oral Tablet",
    "penicillin V potassium 250 mg",
    Form::Tablet,
    1.0,
    4,
    false,
    "Take 1 tablet by mouth four times daily for 10 days.",
    27,
    10,
);
pub(crate) static PENICILLIN_500: Med = Med {
    child: Some(&PENICILLIN_250),
    ..med(
        "834102",
        "Penicillin V Potassium 500 MG Oral Tablet",
        "penicillin V potassium 500 mg",
        Form::Tablet,
        1.0,
        2,
        false,
        "Take 1 tablet by mouth twice daily for 10 days.",
        41,
        10,
    )
};
pub(crate) static COUGH_SYRUP: Med = med("1043400", "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / doxylamine succinate 0.417 MG/ML Oral Solution", "nighttime cough and cold syrup", Form::Ml, 30.0, 1, true, "Take 30 mL by mouth at bedtime as needed for cough.", 4, 7);
pub(crate) static NITROFURANTOIN: Med = med(
    "311989",
    "Nitrofurantoin 5 MG/ML Oral Suspension",
    "nitrofurantoin oral suspension",
    Form::Ml,
    20.0,
    4,
    false,
    "Take 20 mL by mouth four times daily for 5 days.",
    6,
    5,
);
pub(crate) static PHENAZOPYRIDINE: Med = med(
    "1094107",
    "Phenazopyridine hydrochloride 100 MG Oral Tablet",
    "phenazopyridine 100 mg",
    Form::Tablet,
    1.0,
    3,
    false,
    "Take 1 tablet by mouth three times daily after meals for 2 days.",
    58,
    2,
);
pub(crate) static OXYCODONE_APAP: Med = med(
    "1049221",
    "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
    "oxycodone-acetaminophen 5-325 mg",
    Form::Tablet,
    1.0,
    4,
    true,
    "Take 1 tablet by mouth every 6 hours as needed for severe pain.",
    75,
    3,
);
pub(crate) static METFORMIN: Med = med(
    "860975",
    "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    "metformin ER 500 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth daily with the evening meal.",
    22,
    30,
);
pub(crate) static INSULIN: Med = med(
    "106892",
    "insulin isophane, human 70 UNT/ML / insulin regular, human 30 UNT/ML Injectable Suspension",
    "insulin 70/30",
    Form::Unit,
    10.0,
    2,
    false,
    "Inject 10 units subcutaneously twice daily before meals.",
    9,
    30,
);
pub(crate) static LISINOPRIL: Med = med(
    "314076",
    "lisinopril 10 MG Oral Tablet",
    "lisinopril 10 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    13,
    30,
);
pub(crate) static HCTZ: Med = med(
    "310798",
    "Hydrochlorothiazide 25 MG Oral Tablet",
    "hydrochlorothiazide 25 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth every morning.",
    10,
    30,
);
pub(crate) static AMLODIPINE: Med = med(
    "197361",
    "amLODIPine 5 MG Oral Tablet",
    "amlodipine 5 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    12,
    30,
);
pub(crate) static SIMVASTATIN_10: Med = med(
    "316672",
    "Simvastatin 10 MG Oral Tablet",
    "simvastatin 10 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth nightly.",
    11,
    30,
);
pub(crate) static SIMVASTATIN_20: Med = med(
    "312961",
    "Simvastatin 20 MG Oral Tablet",
    "simvastatin 20 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth nightly.",
    13,
    30,
);
pub(crate) static ATORVASTATIN: Med = med(
    "259255",
    "Atorvastatin 80 MG Oral Tablet",
    "atorvastatin 80 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    35,
    30,
);
pub(crate) static ALBUTEROL: Med = med(
    "745679",
    "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
    "albuterol inhaler",
    Form::Puff,
    2.0,
    0,
    true,
    "Inhale 2 puffs every 4 to 6 hours as needed for wheezing or shortness of breath.",
    30,
    30,
);
pub(crate) static FLUTICASONE: Med = med(
    "895994",
    "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
    "fluticasone 44 mcg inhaler",
    Form::Puff,
    2.0,
    2,
    false,
    "Inhale 2 puffs twice daily; rinse mouth after use.",
    150,
    30,
);
pub(crate) static FLUTICASONE_SALMETEROL: Med = med("896209", "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler", "fluticasone-salmeterol 250/50 inhaler", Form::Puff, 1.0, 2, false, "Inhale 1 puff twice daily.", 520, 30);
pub(crate) static WARFARIN: Med = med(
    "855332",
    "Warfarin Sodium 5 MG Oral Tablet",
    "warfarin 5 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth daily in the evening; dose per INR.",
    16,
    30,
);
pub(crate) static DIGOXIN: Med = med(
    "197604",
    "Digoxin 0.125 MG Oral Tablet",
    "digoxin 0.125 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    45,
    30,
);
pub(crate) static METOPROLOL: Med = med(
    "866414",
    "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet [Toprol]",
    "metoprolol succinate ER 100 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    95,
    30,
);
pub(crate) static CLOPIDOGREL: Med = med(
    "309362",
    "Clopidogrel 75 MG Oral Tablet",
    "clopidogrel 75 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    28,
    30,
);
pub(crate) static NITROGLYCERIN: Med = med("705129", "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray", "nitroglycerin 0.4 mg spray", Form::Spray, 1.0, 0, true, "Spray 1 dose under the tongue at onset of chest pain; may repeat every 5 minutes up to 3 doses.", 900, 30);
pub(crate) static ASPIRIN: Med = med(
    "243670",
    "Aspirin 81 MG Oral Tablet",
    "aspirin 81 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    3,
    30,
);
pub(crate) static ALENDRONATE: Med = med(
    "904419",
    "Alendronic acid 10 MG Oral Tablet",
    "alendronate 10 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth every morning with a full glass of water, 30 minutes before food.",
    40,
    30,
);
pub(crate) static DONEPEZIL: Med = med(
    "997223",
    "Donepezil hydrochloride 10 MG Oral Tablet",
    "donepezil 10 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth at bedtime.",
    60,
    30,
);
pub(crate) static GALANTAMINE: Med = med(
    "310436",
    "Galantamine 4 MG Oral Tablet",
    "galantamine 4 mg",
    Form::Tablet,
    1.0,
    2,
    false,
    "Take 1 tablet by mouth twice daily with meals.",
    150,
    30,
);
pub(crate) static SERTRALINE: Med = med(
    "312938",
    "Sertraline 100 MG Oral Tablet",
    "sertraline 100 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    21,
    30,
);
pub(crate) static FERROUS_SULFATE: Med = med(
    "310325",
    "ferrous sulfate 325 MG Oral Tablet",
    "ferrous sulfate 325 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily with orange juice.",
    5,
    30,
);
pub(crate) static ALLOPURINOL: Med = med(
    "197319",
    "Allopurinol 100 MG Oral Tablet",
    "allopurinol 100 mg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth once daily.",
    14,
    30,
);
pub(crate) static LEVOTHYROXINE: Med = med(
    "966222",
    "Levothyroxine Sodium 0.075 MG Oral Tablet",
    "levothyroxine 75 mcg",
    Form::Tablet,
    1.0,
    1,
    false,
    "Take 1 tablet by mouth every morning on an empty stomach.",
    19,
    30,
);
pub(crate) static FEXOFENADINE: Med = med(
    "997488",
    "Fexofenadine hydrochloride 30 MG Oral Tablet",
    "fexofenadine 30 mg",
    Form::Tablet,
    1.0,
    2,
    false,
    "Take 1 tablet by mouth twice daily.",
    24,
    30,
);

#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) snomed: &'static str,
    pub(crate) display: &'static str,
    pub(crate) short: &'static str,
    pub(crate) minutes: i64,
    pub(crate) cents: i64,
}

const fn pr(
    snomed: &'static str,
    display: &'static str,
    short: &'static str,
    minutes: i64,
    cents: i64,
) -> Proc {
    Proc {
        snomed,
        display,
        short,
        minutes,
        cents,
    }
}

pub(crate) static MED_RECONCILIATION: Proc = pr(
    "430193006",
    "Medication Reconciliation (procedure)",
    "medication reconciliation",
    10,
    42_500,
);
pub(crate) static MED_DOCUMENTATION: Proc = pr(
    "428191000124101",
    "Documentation of current medications (procedure)",
    "documentation of current medications",
    5,
    8_300,
);
pub(crate) static DEPRESSION_SCREEN: Proc = pr(
    "171207006",
    "Depression screening (procedure)",
    "depression screening",
    10,
    4_200,
);
pub(crate) static HEALTH_NEEDS: Proc = pr(
    "710824005",
    "Assessment of health and social care needs (procedure)",
    "assessment of health and social care needs",
    10,
    4_200,
);
pub(crate) static COLONOSCOPY: Proc = pr("73761001", "Colonoscopy", "colonoscopy", 45, 1_236_900);
pub(crate) static THROAT_CULTURE: Proc = pr(
    "117015009",
    "Throat culture (procedure)",
    "throat culture",
    5,
    2_950,
);
pub(crate) static CHEST_XRAY: Proc = pr(
    "399208008",
    "Plain chest X-ray (procedure)",
    "chest X-ray",
    15,
    18_900,
);
pub(crate) static PLAIN_XRAY: Proc = pr(
    "168537006",
    "Plain radiography (procedure)",
    "plain radiograph",
    15,
    14_500,
);
pub(crate) static SUTURE: Proc = pr(
    "288086009",
    "Suture open wound",
    "laceration repair with sutures",
    30,
    36_800,
);
pub(crate) static IMMOBILIZATION: Proc = pr(
    "274474001",
    "Bone immobilization",
    "splint immobilization",
    20,
    54_100,
);
pub(crate) static SPIROMETRY: Proc = pr(
    "127783003",
    "Spirometry (procedure)",
    "spirometry",
    20,
    12_300,
);
pub(crate) static BONE_DENSITY: Proc = pr(
    "312681000",
    "Bone density scan (procedure)",
    "bone density scan",
    20,
    25_600,
);
pub(crate) static PCI: Proc = pr(
    "415070008",
    "Percutaneous coronary intervention",
    "percutaneous coronary intervention",
    90,
    2_873_200,
);
pub(crate) static CARDIOVERSION: Proc = pr(
    "180325003",
    "Electrical cardioversion",
    "electrical cardioversion",
    30,
    2_155_300,
);
pub(crate) static ECHO: Proc = pr(
    "433236007",
    "Transthoracic echocardiography (procedure)",
    "transthoracic echocardiogram",
    40,
    140_000,
);
pub(crate) static ECG: Proc = pr(
    "29303009",
    "Electrocardiographic procedure",
    "electrocardiogram",
    10,
    6_100,
);
pub(crate) static APPENDECTOMY: Proc = pr(
    "80146002",
    "Appendectomy",
    "laparoscopic appendectomy",
    75,
    1_843_300,
);
pub(crate) static URINE_CULTURE: Proc = pr("117010004", "Urine culture", "urine culture", 5, 3_300);
pub(crate) static WISDOM_TOOTH: Proc = pr(
    "65546002",
    "Extraction of wisdom tooth",
    "extraction of impacted wisdom teeth",
    60,
    162_300,
);

#[derive(Debug)]
pub(crate) struct Cond {
    pub(crate) snomed: &'static str,
    pub(crate) display: &'static str,
    pub(crate) icd10: &'static str,
    pub(crate) icd10_display: &'static str,
    /// Lower-case name used in notes.
    pub(crate) text: &'static str,
    pub(crate) complaint: &'static str,
    pub(crate) hpi: &'static str,
    pub(crate) plan: &'static str,
    pub(crate) chronic: bool,
    pub(crate) min_age: i64,
    pub(crate) max_age: i64,
    pub(crate) sex: SexRule,
    /// Chronic: lifetime probability once `min_age` is reached. Acute: relative weight.
    pub(crate) prevalence: f64,
    pub(crate) settings: u8,
    pub(crate) fever: bool,
    pub(crate) injury: bool,
    pub(crate) meds: &'static [&'static Med],
    pub(crate) med_prob: f64,
    pub(crate) procs: &'static [(&'static Proc, f64)],
}

const BASE: Cond = Cond {
    snomed: "",
    display: "",
    icd10: "",
    icd10_display: "",
    text: "",
    complaint: "",
    hpi: "",
    plan: "",
    chronic: false,
    min_age: 0,
    max_age: 120,
    sex: SexRule::Any,
    prevalence: 0.0,
    settings: 0,
    fever: false,
    injury: false,
    meds: &[],
    med_prob: 0.0,
    procs: &[],
};

// ---- acute conditions (reasons for ambulatory, virtual, emergency and inpatient visits) ----

pub(crate) static VIRAL_SINUSITIS: Cond = Cond {
    snomed: "444814009", display: "Viral sinusitis (disorder)", icd10: "J01.90", icd10_display: "Acute sinusitis, unspecified",
    text: "viral sinusitis", complaint: "sinus congestion and facial pressure",
    hpi: "nasal congestion, facial pressure and clear rhinorrhea for about a week without high fever",
    plan: "Supportive care with saline irrigation, fluids and rest; antibiotics are not indicated at this time.",
    min_age: 2, prevalence: 10.0, settings: AMB | VR, meds: &[&ACETAMINOPHEN_325], med_prob: 0.3, ..BASE
};
pub(crate) static VIRAL_PHARYNGITIS: Cond = Cond {
    snomed: "195662009", display: "Acute viral pharyngitis (disorder)", icd10: "J02.9", icd10_display: "Acute pharyngitis, unspecified",
    text: "acute viral pharyngitis", complaint: "sore throat",
    hpi: "a sore throat, low-grade fever and mild cough for three days",
    plan: "Symptomatic treatment with fluids, rest and acetaminophen as needed; rapid strep test was negative.",
    min_age: 2, prevalence: 8.0, settings: AMB | VR, fever: true, meds: &[&ACETAMINOPHEN_325, &IBUPROFEN_200], med_prob: 0.4,
    procs: &[(&THROAT_CULTURE, 0.4)], ..BASE
};
pub(crate) static BRONCHITIS: Cond = Cond {
    snomed: "10509002", display: "Acute bronchitis (disorder)", icd10: "J20.9", icd10_display: "Acute bronchitis, unspecified",
    text: "acute bronchitis", complaint: "cough",
    hpi: "a productive cough and chest congestion for ten days without fever or shortness of breath",
    plan: "Supportive care with fluids and a humidifier; return if fever, shortness of breath or symptoms beyond three weeks.",
    min_age: 2, prevalence: 6.0, settings: AMB | VR | ED, meds: &[&COUGH_SYRUP, &ACETAMINOPHEN_325], med_prob: 0.5,
    procs: &[(&CHEST_XRAY, 0.25)], ..BASE
};
pub(crate) static STREP_THROAT: Cond = Cond {
    snomed: "43878008", display: "Streptococcal sore throat (disorder)", icd10: "J02.0", icd10_display: "Streptococcal pharyngitis",
    text: "streptococcal pharyngitis", complaint: "sore throat and fever",
    hpi: "fever to 38.9 C, painful swallowing and tender anterior cervical lymph nodes since yesterday",
    plan: "Rapid strep test positive; start a 10-day course of antibiotics. May return to school or work after 24 hours of therapy.",
    min_age: 3, max_age: 60, prevalence: 4.0, settings: AMB, fever: true, meds: &[&PENICILLIN_500, &AMOXICILLIN_500], med_prob: 1.0,
    procs: &[(&THROAT_CULTURE, 1.0)], ..BASE
};
pub(crate) static OTITIS_MEDIA: Cond = Cond {
    snomed: "65363002",
    display: "Otitis media",
    icd10: "H66.90",
    icd10_display: "Otitis media, unspecified, unspecified ear",
    text: "acute otitis media",
    complaint: "ear pain",
    hpi: "ear pain, pulling at the ear, irritability and fever since yesterday",
    plan: "Start amoxicillin-clavulanate; recheck the ears in two weeks if symptoms persist.",
    max_age: 12,
    prevalence: 9.0,
    settings: AMB,
    fever: true,
    meds: &[&AMOX_CLAV],
    med_prob: 0.8,
    ..BASE
};
pub(crate) static ANKLE_SPRAIN: Cond = Cond {
    snomed: "44465007", display: "Sprain of ankle", icd10: "S93.409A", icd10_display: "Sprain of unspecified ligament of unspecified ankle, initial encounter",
    text: "ankle sprain", complaint: "ankle pain after a fall",
    hpi: "pain and swelling of the ankle after rolling it while stepping off a curb; able to bear weight with difficulty",
    plan: "Rest, ice, compression and elevation; ankle brace and weight bearing as tolerated.",
    min_age: 5, prevalence: 4.0, settings: AMB | ED, injury: true, meds: &[&IBUPROFEN_200, &NAPROXEN_220], med_prob: 0.6,
    procs: &[(&PLAIN_XRAY, 0.5)], ..BASE
};
pub(crate) static WRIST_SPRAIN: Cond = Cond {
    snomed: "70704007", display: "Sprain of wrist", icd10: "S63.509A", icd10_display: "Unspecified sprain of unspecified wrist, initial encounter",
    text: "wrist sprain", complaint: "wrist pain",
    hpi: "wrist pain after falling onto an outstretched hand, with mild swelling and no deformity",
    plan: "Wrist splint for comfort, ice and anti-inflammatory medication; return if numbness or worsening pain.",
    min_age: 5, prevalence: 2.0, settings: AMB | ED, injury: true, meds: &[&IBUPROFEN_200], med_prob: 0.5,
    procs: &[(&PLAIN_XRAY, 0.7)], ..BASE
};
pub(crate) static LACERATION: Cond = Cond {
    snomed: "283371005", display: "Laceration of forearm", icd10: "S51.819A", icd10_display: "Laceration without foreign body of unspecified forearm, initial encounter",
    text: "forearm laceration", complaint: "cut on the forearm",
    hpi: "a 3 cm laceration of the forearm sustained on a kitchen knife about two hours before arrival",
    plan: "Wound irrigated and closed with simple interrupted sutures; suture removal in 10 days; wound care reviewed.",
    min_age: 3, prevalence: 3.0, settings: ED | AMB, injury: true, meds: &[&IBUPROFEN_200], med_prob: 0.3,
    procs: &[(&SUTURE, 1.0)], ..BASE
};
pub(crate) static CONCUSSION: Cond = Cond {
    snomed: "62106007", display: "Concussion with no loss of consciousness", icd10: "S06.0X0A", icd10_display: "Concussion without loss of consciousness, initial encounter",
    text: "concussion without loss of consciousness", complaint: "head injury",
    hpi: "headache and mild dizziness after striking the head during a fall, without loss of consciousness or vomiting",
    plan: "Cognitive and physical rest with a graded return to activity; head injury precautions reviewed.",
    min_age: 4, max_age: 80, prevalence: 2.0, settings: ED, injury: true, meds: &[&ACETAMINOPHEN_325], med_prob: 0.6, ..BASE
};
pub(crate) static FOREARM_FRACTURE: Cond = Cond {
    snomed: "65966004",
    display: "Fracture of forearm",
    icd10: "S52.90XA",
    icd10_display: "Unspecified fracture of unspecified forearm, initial encounter",
    text: "closed forearm fracture",
    complaint: "arm pain after a fall",
    hpi: "pain, swelling and deformity of the forearm after a fall from a bicycle",
    plan: "Closed fracture immobilized in a splint; orthopedic follow-up within one week.",
    min_age: 4,
    prevalence: 1.5,
    settings: ED,
    injury: true,
    meds: &[&OXYCODONE_APAP, &IBUPROFEN_200],
    med_prob: 0.9,
    procs: &[(&PLAIN_XRAY, 1.0), (&IMMOBILIZATION, 1.0)],
    ..BASE
};
pub(crate) static CYSTITIS: Cond = Cond {
    snomed: "38822007",
    display: "Cystitis",
    icd10: "N30.90",
    icd10_display: "Cystitis, unspecified without hematuria",
    text: "acute cystitis",
    complaint: "painful urination",
    hpi: "dysuria and urinary frequency for two days without fever or flank pain",
    plan: "Urine culture sent; start antibiotics and a urinary analgesic; increase fluid intake.",
    min_age: 15,
    sex: SexRule::Female,
    prevalence: 4.0,
    settings: AMB | VR,
    meds: &[&NITROFURANTOIN, &PHENAZOPYRIDINE],
    med_prob: 1.0,
    procs: &[(&URINE_CULTURE, 0.9)],
    ..BASE
};
pub(crate) static PNEUMONIA: Cond = Cond {
    snomed: "233604007", display: "Pneumonia", icd10: "J18.9", icd10_display: "Pneumonia, unspecified organism",
    text: "community-acquired pneumonia", complaint: "cough and fever",
    hpi: "fever, productive cough and shortness of breath for four days, with right-sided pleuritic chest pain",
    plan: "Treat with oral antibiotics; return for worsening breathing; repeat chest X-ray in six weeks.",
    prevalence: 2.0, settings: ED | IMP | AMB, fever: true, meds: &[&AMOXICILLIN_500], med_prob: 0.9,
    procs: &[(&CHEST_XRAY, 1.0)], ..BASE
};
pub(crate) static COVID19: Cond = Cond {
    snomed: "840539006", display: "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)", icd10: "U07.1", icd10_display: "COVID-19",
    text: "COVID-19", complaint: "fever and cough",
    hpi: "fever, dry cough, fatigue and loss of taste for three days after a household exposure",
    plan: "Isolation per public health guidance, supportive care and pulse oximetry at home; return if short of breath.",
    prevalence: 4.0, settings: AMB | VR | ED, fever: true, meds: &[&ACETAMINOPHEN_325], med_prob: 0.5, ..BASE
};
pub(crate) static APPENDICITIS: Cond = Cond {
    snomed: "74400008", display: "Appendicitis", icd10: "K37", icd10_display: "Unspecified appendicitis",
    text: "acute appendicitis", complaint: "abdominal pain",
    hpi: "periumbilical pain migrating to the right lower quadrant with nausea and anorexia since yesterday",
    plan: "Taken to the operating room for appendectomy; tolerated a regular diet before discharge.",
    min_age: 5, max_age: 70, prevalence: 2.0, settings: IMP, fever: true, meds: &[&OXYCODONE_APAP], med_prob: 0.8,
    procs: &[(&APPENDECTOMY, 1.0)], ..BASE
};
pub(crate) static MYOCARDIAL_INFARCTION: Cond = Cond {
    snomed: "22298006", display: "Myocardial Infarction", icd10: "I21.9", icd10_display: "Acute myocardial infarction, unspecified",
    text: "acute myocardial infarction", complaint: "chest pain",
    hpi: "substernal chest pressure radiating to the left arm with diaphoresis for one hour",
    plan: "Dual antiplatelet therapy and high-intensity statin; cardiac rehabilitation referral placed.",
    min_age: 45, prevalence: 2.0, settings: IMP, meds: &[&CLOPIDOGREL, &ASPIRIN], med_prob: 1.0,
    procs: &[(&ECG, 1.0), (&PCI, 0.7), (&ECHO, 0.5)], ..BASE
};
pub(crate) static STROKE: Cond = Cond {
    snomed: "230690007",
    display: "Stroke",
    icd10: "I63.9",
    icd10_display: "Cerebral infarction, unspecified",
    text: "acute ischemic stroke",
    complaint: "sudden weakness",
    hpi: "sudden right-sided weakness and slurred speech first noticed by family at breakfast",
    plan: "Antiplatelet therapy and statin; physical, occupational and speech therapy arranged.",
    min_age: 55,
    prevalence: 1.5,
    settings: IMP,
    meds: &[&CLOPIDOGREL, &ATORVASTATIN],
    med_prob: 1.0,
    procs: &[(&ECG, 0.8), (&ECHO, 0.5)],
    ..BASE
};
pub(crate) static HEART_FAILURE: Cond = Cond {
    snomed: "88805009",
    display: "Chronic congestive heart failure (disorder)",
    icd10: "I50.9",
    icd10_display: "Heart failure, unspecified",
    text: "congestive heart failure",
    complaint: "shortness of breath and leg swelling",
    hpi: "progressive shortness of breath, orthopnea and bilateral leg swelling over two weeks",
    plan: "Diuresed to dry weight; beta blocker continued; daily weights and a low-sodium diet.",
    chronic: true,
    min_age: 60,
    prevalence: 2.0,
    settings: IMP,
    meds: &[&METOPROLOL, &DIGOXIN],
    med_prob: 1.0,
    procs: &[(&ECHO, 0.8), (&CHEST_XRAY, 0.6)],
    ..BASE
};
pub(crate) static IMPACTED_MOLARS: Cond = Cond {
    snomed: "196416002",
    display: "Impacted molars",
    icd10: "K01.1",
    icd10_display: "Impacted teeth",
    text: "impacted third molars",
    complaint: "jaw pain",
    hpi: "intermittent jaw pain and swelling behind the last molars",
    plan: "Soft diet for several days, salt-water rinses and follow-up in one week.",
    min_age: 16,
    max_age: 35,
    prevalence: 1.0,
    settings: PROC,
    meds: &[&IBUPROFEN_200],
    med_prob: 0.8,
    procs: &[(&WISDOM_TOOTH, 1.0)],
    ..BASE
};
pub(crate) static COLON_POLYP: Cond = Cond {
    snomed: "68496003",
    display: "Polyp of colon",
    icd10: "K63.5",
    icd10_display: "Polyp of colon",
    text: "colon polyp",
    complaint: "screening colonoscopy",
    hpi: "no gastrointestinal symptoms; presents for age-appropriate colorectal cancer screening",
    plan: "Polyp removed and sent to pathology; repeat colonoscopy in five years.",
    min_age: 40,
    prevalence: 1.0,
    settings: PROC,
    ..BASE
};

pub(crate) static ACUTE: &[&Cond] = &[
    &VIRAL_SINUSITIS,
    &VIRAL_PHARYNGITIS,
    &BRONCHITIS,
    &STREP_THROAT,
    &OTITIS_MEDIA,
    &ANKLE_SPRAIN,
    &WRIST_SPRAIN,
    &LACERATION,
    &CONCUSSION,
    &FOREARM_FRACTURE,
    &CYSTITIS,
    &PNEUMONIA,
    &COVID19,
    &APPENDICITIS,
    &MYOCARDIAL_INFARCTION,
    &STROKE,
    &HEART_FAILURE,
    &IMPACTED_MOLARS,
];

// ---- chronic conditions (planned per patient, recorded at the first eligible visit) ----

pub(crate) static OBESITY: Cond = Cond {
    snomed: "162864005",
    display: "Body mass index 30+ - obesity (finding)",
    icd10: "E66.9",
    icd10_display: "Obesity, unspecified",
    text: "obesity",
    complaint: "weight gain",
    hpi: "gradual weight gain over several years",
    plan:
        "Counseled on nutrition and physical activity with a goal of 5 to 10 percent weight loss.",
    chronic: true,
    min_age: 18,
    prevalence: 0.25,
    ..BASE
};
pub(crate) static PREDIABETES: Cond = Cond {
    snomed: "15777000",
    display: "Prediabetes",
    icd10: "R73.03",
    icd10_display: "Prediabetes",
    text: "prediabetes",
    complaint: "abnormal blood sugar",
    hpi: "an elevated fasting glucose on screening labs",
    plan: "Lifestyle modification; repeat hemoglobin A1c in six months.",
    chronic: true,
    min_age: 25,
    prevalence: 0.15,
    ..BASE
};
pub(crate) static DIABETES: Cond = Cond {
    snomed: "44054006", display: "Diabetes mellitus type 2 (disorder)", icd10: "E11.9", icd10_display: "Type 2 diabetes mellitus without complications",
    text: "type 2 diabetes mellitus", complaint: "follow-up of diabetes", hpi: "increased thirst and urination with elevated home glucose readings",
    plan: "Continue metformin, home glucose monitoring, annual eye and foot examinations; diabetes education referral.",
    chronic: true, min_age: 30, prevalence: 0.11, meds: &[&METFORMIN, &METFORMIN, &INSULIN], med_prob: 1.0, ..BASE
};
pub(crate) static HYPERTENSION: Cond = Cond {
    snomed: "38341003", display: "Hypertension", icd10: "I10", icd10_display: "Essential (primary) hypertension",
    text: "essential hypertension", complaint: "follow-up of blood pressure", hpi: "elevated blood pressure readings at home and at the pharmacy",
    plan: "Continue antihypertensive therapy, low-sodium diet and home blood pressure log; goal below 130/80.",
    chronic: true, min_age: 30, prevalence: 0.28, meds: &[&LISINOPRIL, &HCTZ, &AMLODIPINE], med_prob: 1.0, ..BASE
};
pub(crate) static HYPERLIPIDEMIA: Cond = Cond {
    snomed: "55822004",
    display: "Hyperlipidemia",
    icd10: "E78.5",
    icd10_display: "Hyperlipidemia, unspecified",
    text: "hyperlipidemia",
    complaint: "follow-up of cholesterol",
    hpi: "an elevated LDL cholesterol on prior screening",
    plan: "Continue statin therapy and a heart-healthy diet; repeat lipid panel in one year.",
    chronic: true,
    min_age: 35,
    prevalence: 0.2,
    meds: &[&SIMVASTATIN_10, &SIMVASTATIN_20, &ATORVASTATIN],
    med_prob: 1.0,
    ..BASE
};
pub(crate) static ASTHMA: Cond = Cond {
    snomed: "195967001",
    display: "Asthma",
    icd10: "J45.909",
    icd10_display: "Unspecified asthma, uncomplicated",
    text: "asthma",
    complaint: "wheezing",
    hpi: "intermittent wheezing and night-time cough, worse with exercise and cold air",
    plan: "Controller inhaler daily with a rescue inhaler as needed; asthma action plan reviewed.",
    chronic: true,
    min_age: 3,
    prevalence: 0.08,
    meds: &[&ALBUTEROL, &FLUTICASONE],
    med_prob: 1.0,
    procs: &[(&SPIROMETRY, 0.4)],
    ..BASE
};
pub(crate) static COPD: Cond = Cond {
    snomed: "185086009",
    display: "Chronic obstructive bronchitis (disorder)",
    icd10: "J44.9",
    icd10_display: "Chronic obstructive pulmonary disease, unspecified",
    text: "chronic obstructive pulmonary disease",
    complaint: "shortness of breath",
    hpi: "chronic productive cough and exertional dyspnea",
    plan:
        "Maintenance inhaler, smoking cessation counseling and pulmonary rehabilitation referral.",
    chronic: true,
    min_age: 50,
    prevalence: 0.05,
    meds: &[&FLUTICASONE_SALMETEROL, &ALBUTEROL],
    med_prob: 1.0,
    procs: &[(&SPIROMETRY, 0.5)],
    ..BASE
};
pub(crate) static ATRIAL_FIBRILLATION: Cond = Cond {
    snomed: "49436004",
    display: "Atrial Fibrillation",
    icd10: "I48.91",
    icd10_display: "Unspecified atrial fibrillation",
    text: "atrial fibrillation",
    complaint: "palpitations",
    hpi: "intermittent palpitations and fatigue; irregularly irregular pulse on examination",
    plan: "Rate control and anticoagulation; INR monitoring every four weeks.",
    chronic: true,
    min_age: 60,
    prevalence: 0.08,
    meds: &[&WARFARIN, &METOPROLOL, &DIGOXIN],
    med_prob: 1.0,
    procs: &[(&ECG, 0.8), (&CARDIOVERSION, 0.1)],
    ..BASE
};
pub(crate) static CORONARY_DISEASE: Cond = Cond {
    snomed: "53741008",
    display: "Coronary Heart Disease",
    icd10: "I25.10",
    icd10_display:
        "Atherosclerotic heart disease of native coronary artery without angina pectoris",
    text: "coronary artery disease",
    complaint: "exertional chest discomfort",
    hpi: "chest tightness with exertion relieved by rest",
    plan: "Antiplatelet therapy, sublingual nitroglycerin as needed and cardiology follow-up.",
    chronic: true,
    min_age: 50,
    prevalence: 0.08,
    meds: &[&CLOPIDOGREL, &NITROGLYCERIN, &ASPIRIN],
    med_prob: 1.0,
    procs: &[(&ECG, 0.6)],
    ..BASE
};
pub(crate) static KNEE_OSTEOARTHRITIS: Cond = Cond {
    snomed: "239873007",
    display: "Osteoarthritis of knee",
    icd10: "M17.9",
    icd10_display: "Osteoarthritis of knee, unspecified",
    text: "osteoarthritis of the knee",
    complaint: "knee pain",
    hpi: "knee pain and stiffness worse after activity and in the morning",
    plan: "Physical therapy, weight management and scheduled anti-inflammatory medication.",
    chronic: true,
    min_age: 50,
    prevalence: 0.15,
    meds: &[&NAPROXEN_500, &ACETAMINOPHEN_325],
    med_prob: 0.8,
    procs: &[(&PLAIN_XRAY, 0.3)],
    ..BASE
};
pub(crate) static OSTEOPOROSIS: Cond = Cond {
    snomed: "64859006",
    display: "Osteoporosis (disorder)",
    icd10: "M81.0",
    icd10_display: "Age-related osteoporosis without current pathological fracture",
    text: "osteoporosis",
    complaint: "follow-up of bone density",
    hpi: "low bone density on screening without prior fracture",
    plan: "Bisphosphonate therapy with calcium and vitamin D; fall prevention reviewed.",
    chronic: true,
    min_age: 55,
    sex: SexRule::Female,
    prevalence: 0.15,
    meds: &[&ALENDRONATE],
    med_prob: 1.0,
    procs: &[(&BONE_DENSITY, 0.6)],
    ..BASE
};
pub(crate) static ALZHEIMERS: Cond = Cond {
    snomed: "26929004",
    display: "Alzheimer's disease (disorder)",
    icd10: "G30.9",
    icd10_display: "Alzheimer's disease, unspecified",
    text: "Alzheimer's disease",
    complaint: "memory loss",
    hpi: "progressive short-term memory loss reported by family over the past year",
    plan:
        "Cholinesterase inhibitor started; home safety evaluation and caregiver support discussed.",
    chronic: true,
    min_age: 70,
    prevalence: 0.08,
    meds: &[&DONEPEZIL, &GALANTAMINE],
    med_prob: 1.0,
    ..BASE
};
pub(crate) static DEPRESSION: Cond = Cond {
    snomed: "35489007", display: "Depressive disorder (disorder)", icd10: "F32.A", icd10_display: "Depression, unspecified",
    text: "depression", complaint: "low mood", hpi: "low mood, poor sleep and loss of interest in activities for two months; denies suicidal ideation",
    plan: "Start an SSRI and refer for counseling; safety plan reviewed.",
    chronic: true, min_age: 14, prevalence: 0.1, meds: &[&SERTRALINE], med_prob: 0.8,
    procs: &[(&DEPRESSION_SCREEN, 0.8)], ..BASE
};
pub(crate) static ANXIETY: Cond = Cond {
    snomed: "197480006",
    display: "Anxiety disorder (disorder)",
    icd10: "F41.9",
    icd10_display: "Anxiety disorder, unspecified",
    text: "anxiety disorder",
    complaint: "anxiety",
    hpi: "persistent worry, restlessness and difficulty concentrating for several months",
    plan: "Cognitive behavioral therapy referral; SSRI discussed and started.",
    chronic: true,
    min_age: 12,
    prevalence: 0.08,
    meds: &[&SERTRALINE],
    med_prob: 0.6,
    ..BASE
};
pub(crate) static ANEMIA: Cond = Cond {
    snomed: "271737000",
    display: "Anemia (disorder)",
    icd10: "D64.9",
    icd10_display: "Anemia, unspecified",
    text: "anemia",
    complaint: "fatigue",
    hpi: "fatigue and exertional lightheadedness with a low hemoglobin",
    plan: "Iron supplementation and repeat blood count in three months.",
    chronic: true,
    prevalence: 0.06,
    meds: &[&FERROUS_SULFATE],
    med_prob: 0.9,
    ..BASE
};
pub(crate) static KIDNEY_DISEASE: Cond = Cond {
    snomed: "431855005", display: "Chronic kidney disease stage 1 (disorder)", icd10: "N18.1", icd10_display: "Chronic kidney disease, stage 1",
    text: "chronic kidney disease stage 1", complaint: "abnormal kidney function", hpi: "mildly elevated creatinine and microalbuminuria on routine labs",
    plan: "Optimize blood pressure and glucose control; avoid NSAIDs; repeat renal panel in six months.",
    chronic: true, min_age: 50, prevalence: 0.05, ..BASE
};
pub(crate) static HYPOTHYROIDISM: Cond = Cond {
    snomed: "83664006",
    display: "Idiopathic atrophic hypothyroidism",
    icd10: "E03.9",
    icd10_display: "Hypothyroidism, unspecified",
    text: "hypothyroidism",
    complaint: "fatigue and cold intolerance",
    hpi: "fatigue, cold intolerance and constipation with an elevated TSH",
    plan: "Levothyroxine replacement; recheck TSH in six weeks.",
    chronic: true,
    min_age: 20,
    prevalence: 0.05,
    meds: &[&LEVOTHYROXINE],
    med_prob: 1.0,
    ..BASE
};
pub(crate) static ALLERGIC_RHINITIS: Cond = Cond {
    snomed: "446096008",
    display: "Perennial allergic rhinitis",
    icd10: "J30.89",
    icd10_display: "Other allergic rhinitis",
    text: "perennial allergic rhinitis",
    complaint: "sneezing and congestion",
    hpi: "year-round sneezing, nasal congestion and itchy eyes",
    plan: "Daily antihistamine and allergen avoidance.",
    chronic: true,
    min_age: 3,
    prevalence: 0.12,
    meds: &[&FEXOFENADINE],
    med_prob: 0.8,
    ..BASE
};
pub(crate) static GOUT: Cond = Cond {
    snomed: "90560007",
    display: "Gout",
    icd10: "M10.9",
    icd10_display: "Gout, unspecified",
    text: "gout",
    complaint: "toe pain",
    hpi: "recurrent episodes of acute pain and swelling of the first toe",
    plan: "Urate-lowering therapy, hydration and limiting alcohol and red meat.",
    chronic: true,
    min_age: 40,
    sex: SexRule::Male,
    prevalence: 0.05,
    meds: &[&ALLOPURINOL],
    med_prob: 1.0,
    ..BASE
};
pub(crate) static CHRONIC_PAIN: Cond = Cond {
    snomed: "82423001",
    display: "Chronic pain",
    icd10: "G89.29",
    icd10_display: "Other chronic pain",
    text: "chronic low back pain",
    complaint: "back pain",
    hpi: "low back pain for more than six months without radicular symptoms",
    plan: "Physical therapy, core strengthening and scheduled NSAID with food.",
    chronic: true,
    min_age: 25,
    prevalence: 0.06,
    meds: &[&NAPROXEN_500],
    med_prob: 0.7,
    ..BASE
};

pub(crate) static CHRONIC: &[&Cond] = &[
    &OBESITY,
    &PREDIABETES,
    &DIABETES,
    &HYPERTENSION,
    &HYPERLIPIDEMIA,
    &ASTHMA,
    &COPD,
    &ATRIAL_FIBRILLATION,
    &CORONARY_DISEASE,
    &KNEE_OSTEOARTHRITIS,
    &OSTEOPOROSIS,
    &ALZHEIMERS,
    &DEPRESSION,
    &ANXIETY,
    &ANEMIA,
    &KIDNEY_DISEASE,
    &HYPOTHYROIDISM,
    &ALLERGIC_RHINITIS,
    &GOUT,
    &CHRONIC_PAIN,
];

// ---- vaccines ----

#[derive(Debug)]
pub(crate) struct Vaccine {
    pub(crate) cvx: &'static str,
    pub(crate) display: &'static str,
    pub(crate) short: &'static str,
    pub(crate) cents: i64,
}

const fn vx(cvx: &'static str, display: &'static str, short: &'static str) -> Vaccine {
    Vaccine {
        cvx,
        display,
        short,
        cents: 14_052,
    }
}

pub(crate) static FLU: Vaccine = vx(
    "140",
    "Influenza, seasonal, injectable, preservative free",
    "influenza",
);
pub(crate) static TD: Vaccine = vx("113", "Td (adult) preservative free", "Td");
pub(crate) static TDAP: Vaccine = vx("115", "Tdap", "Tdap");
pub(crate) static PCV13: Vaccine = vx("133", "Pneumococcal conjugate PCV 13", "PCV13");
pub(crate) static PPSV23: Vaccine = vx(
    "33",
    "pneumococcal polysaccharide vaccine, 23 valent",
    "PPSV23",
);
pub(crate) static MCV4: Vaccine = vx("114", "meningococcal MCV4P", "meningococcal conjugate");
pub(crate) static HPV: Vaccine = vx("62", "HPV, quadrivalent", "HPV");
pub(crate) static DTAP: Vaccine = vx("20", "DTaP", "DTaP");
pub(crate) static IPV: Vaccine = vx("10", "IPV", "IPV");
pub(crate) static HEPB: Vaccine = vx("08", "Hep B, adolescent or pediatric", "hepatitis B");
pub(crate) static HIB: Vaccine = vx("49", "Hib (PRP-OMP)", "Hib");
pub(crate) static ROTAVIRUS: Vaccine = vx("119", "rotavirus, monovalent", "rotavirus");
pub(crate) static MMR: Vaccine = vx("03", "MMR", "MMR");
pub(crate) static VARICELLA: Vaccine = vx("21", "varicella", "varicella");
pub(crate) static HEPA: Vaccine = vx("83", "Hep A, ped/adol, 2 dose", "hepatitis A");
pub(crate) static ZOSTER: Vaccine = vx("121", "zoster", "zoster");
pub(crate) static COVID_VACCINE: Vaccine = vx(
    "208",
    "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
    "COVID-19 mRNA",
);

// ---- observations ----

/// A quantitative observation definition (vital sign or lab).
#[derive(Debug)]
pub(crate) struct Test {
    pub(crate) loinc: &'static str,
    pub(crate) display: &'static str,
    /// Short name for notes.
    pub(crate) short: &'static str,
    pub(crate) ucum: &'static str,
    pub(crate) decimals: u32,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) mean: f64,
    pub(crate) sd: f64,
}

#[allow(clippy::too_many_arguments)] // a table-row constructor
const fn t(
    loinc: &'static str,
    display: &'static str,
    short: &'static str,
    ucum: &'static str,
    decimals: u32,
    low: f64,
    high: f64,
    mean: f64,
    sd: f64,
) -> Test {
    Test {
        loinc,
        display,
        short,
        ucum,
        decimals,
        low,
        high,
        mean,
        sd,
    }
}

pub(crate) static HEIGHT: Test = t(
    "8302-2",
    "Body height",
    "height",
    "cm",
    1,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static WEIGHT: Test = t(
    "29463-7",
    "Body weight",
    "weight",
    "kg",
    1,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static BMI: Test = t(
    "39156-5",
    "Body mass index (BMI) [Ratio]",
    "BMI",
    "kg/m2",
    1,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static HEART_RATE: Test = t(
    "8867-4",
    "Heart rate",
    "heart rate",
    "/min",
    0,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static RESP_RATE: Test = t(
    "9279-1",
    "Respiratory rate",
    "respiratory rate",
    "/min",
    0,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static TEMPERATURE: Test = t(
    "8310-5",
    "Body temperature",
    "temperature",
    "Cel",
    1,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static SPO2: Test = t(
    "59408-5",
    "Oxygen saturation in Arterial blood by Pulse oximetry",
    "oxygen saturation",
    "%",
    0,
    0.0,
    0.0,
    0.0,
    0.0,
);
pub(crate) static PAIN: Test = t(
    "72514-3",
    "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    "pain score",
    "{score}",
    0,
    0.0,
    0.0,
    0.0,
    0.0,
);

pub(crate) const BP_PANEL: (&str, &str) =
    ("85354-9", "Blood pressure panel with all children optional");
pub(crate) const SYSTOLIC: (&str, &str) = ("8480-6", "Systolic blood pressure");
pub(crate) const DIASTOLIC: (&str, &str) = ("8462-4", "Diastolic blood pressure");

pub(crate) static CHOLESTEROL: Test = t(
    "2093-3",
    "Cholesterol [Mass/volume] in Serum or Plasma",
    "total cholesterol",
    "mg/dL",
    0,
    125.0,
    200.0,
    185.0,
    25.0,
);
pub(crate) static TRIGLYCERIDES: Test = t(
    "2571-8",
    "Triglyceride [Mass/volume] in Serum or Plasma",
    "triglycerides",
    "mg/dL",
    0,
    0.0,
    150.0,
    125.0,
    35.0,
);
pub(crate) static LDL: Test = t(
    "18262-6",
    "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
    "LDL",
    "mg/dL",
    0,
    0.0,
    100.0,
    108.0,
    22.0,
);
pub(crate) static HDL: Test = t(
    "2085-9",
    "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
    "HDL",
    "mg/dL",
    0,
    40.0,
    60.0,
    52.0,
    9.0,
);
pub(crate) static GLUCOSE: Test = t(
    "2339-0",
    "Glucose [Mass/volume] in Blood",
    "glucose",
    "mg/dL",
    0,
    70.0,
    99.0,
    90.0,
    8.0,
);
pub(crate) static UREA_NITROGEN: Test = t(
    "6299-2",
    "Urea nitrogen [Mass/volume] in Blood",
    "BUN",
    "mg/dL",
    0,
    7.0,
    20.0,
    14.0,
    3.5,
);
pub(crate) static CREATININE: Test = t(
    "38483-4",
    "Creatinine [Mass/volume] in Blood",
    "creatinine",
    "mg/dL",
    2,
    0.6,
    1.3,
    0.95,
    0.15,
);
pub(crate) static CALCIUM: Test = t(
    "49765-1",
    "Calcium [Mass/volume] in Blood",
    "calcium",
    "mg/dL",
    1,
    8.5,
    10.2,
    9.4,
    0.3,
);
pub(crate) static SODIUM: Test = t(
    "2947-0",
    "Sodium [Moles/volume] in Blood",
    "sodium",
    "mmol/L",
    0,
    136.0,
    145.0,
    140.0,
    1.8,
);
pub(crate) static POTASSIUM: Test = t(
    "6298-4",
    "Potassium [Moles/volume] in Blood",
    "potassium",
    "mmol/L",
    1,
    3.5,
    5.1,
    4.2,
    0.3,
);
pub(crate) static CHLORIDE: Test = t(
    "2069-3",
    "Chloride [Moles/volume] in Blood",
    "chloride",
    "mmol/L",
    0,
    98.0,
    107.0,
    103.0,
    2.0,
);
pub(crate) static CO2: Test = t(
    "20565-8",
    "Carbon dioxide, total [Moles/volume] in Blood",
    "bicarbonate",
    "mmol/L",
    0,
    22.0,
    29.0,
    25.5,
    1.6,
);
pub(crate) static HBA1C: Test = t(
    "4548-4",
    "Hemoglobin A1c/Hemoglobin.total in Blood",
    "hemoglobin A1c",
    "%",
    1,
    4.0,
    5.6,
    5.2,
    0.25,
);
pub(crate) static WBC: Test = t(
    "6690-2",
    "Leukocytes [#/volume] in Blood by Automated count",
    "WBC",
    "10*3/uL",
    1,
    4.5,
    11.0,
    7.2,
    1.4,
);
pub(crate) static RBC: Test = t(
    "789-8",
    "Erythrocytes [#/volume] in Blood by Automated count",
    "RBC",
    "10*6/uL",
    2,
    4.2,
    5.9,
    4.8,
    0.3,
);
pub(crate) static HEMOGLOBIN: Test = t(
    "718-7",
    "Hemoglobin [Mass/volume] in Blood",
    "hemoglobin",
    "g/dL",
    1,
    12.0,
    17.5,
    14.2,
    0.9,
);
pub(crate) static HEMATOCRIT: Test = t(
    "4544-3",
    "Hematocrit [Volume Fraction] of Blood by Automated count",
    "hematocrit",
    "%",
    1,
    36.0,
    52.0,
    42.0,
    2.5,
);
pub(crate) static MCV: Test = t(
    "787-2",
    "MCV [Entitic volume] by Automated count",
    "MCV",
    "fL",
    1,
    80.0,
    100.0,
    90.0,
    3.5,
);
pub(crate) static PLATELETS: Test = t(
    "777-3",
    "Platelets [#/volume] in Blood by Automated count",
    "platelets",
    "10*3/uL",
    0,
    150.0,
    450.0,
    260.0,
    45.0,
);

#[derive(Debug)]
pub(crate) struct Panel {
    pub(crate) loinc: &'static str,
    pub(crate) display: &'static str,
    pub(crate) tests: &'static [&'static Test],
    pub(crate) cents: i64,
}

pub(crate) static LIPID_PANEL: Panel = Panel {
    loinc: "57698-3",
    display: "Lipid panel with direct LDL - Serum or Plasma",
    tests: &[&CHOLESTEROL, &TRIGLYCERIDES, &LDL, &HDL],
    cents: 7_200,
};
pub(crate) static METABOLIC_PANEL: Panel = Panel {
    loinc: "51990-0",
    display: "Basic metabolic panel - Blood",
    tests: &[
        &GLUCOSE,
        &UREA_NITROGEN,
        &CREATININE,
        &CALCIUM,
        &SODIUM,
        &POTASSIUM,
        &CHLORIDE,
        &CO2,
    ],
    cents: 6_400,
};
pub(crate) static CBC_PANEL: Panel = Panel {
    loinc: "58410-2",
    display: "CBC panel - Blood by Automated count",
    tests: &[&WBC, &RBC, &HEMOGLOBIN, &HEMATOCRIT, &MCV, &PLATELETS],
    cents: 4_800,
};
pub(crate) static A1C_PANEL: Panel = Panel {
    loinc: "4548-4",
    display: "Hemoglobin A1c/Hemoglobin.total in Blood",
    tests: &[&HBA1C],
    cents: 3_900,
};

// ---- encounters ----

/// The kinds of encounter the generator produces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum EncKind {
    Wellness,
    Ambulatory,
    FollowUp,
    Emergency,
    Inpatient,
    Telehealth,
    Procedure,
}

impl EncKind {
    /// `(v3-ActCode code, display)`
    pub(crate) fn class(self) -> (&'static str, &'static str) {
        match self {
            EncKind::Emergency => ("EMER", "emergency"),
            EncKind::Inpatient => ("IMP", "inpatient encounter"),
            EncKind::Telehealth => ("VR", "virtual"),
            _ => ("AMB", "ambulatory"),
        }
    }

    /// `(SNOMED code, display)` of the encounter type.
    pub(crate) fn snomed(self, child: bool) -> (&'static str, &'static str) {
        match self {
            EncKind::Wellness if child => ("410620009", "Well child visit (procedure)"),
            EncKind::Wellness => ("185349003", "Encounter for check up (procedure)"),
            EncKind::Ambulatory => ("185345009", "Encounter for symptom (procedure)"),
            EncKind::FollowUp => ("390906007", "Follow-up encounter (procedure)"),
            EncKind::Emergency => ("50849002", "Emergency room admission (procedure)"),
            EncKind::Inpatient => ("183452005", "Emergency hospital admission (procedure)"),
            EncKind::Telehealth => (
                "448337001",
                "Telemedicine consultation with patient (procedure)",
            ),
            EncKind::Procedure => ("371883000", "Outpatient procedure (procedure)"),
        }
    }

    /// Setting bit matched against [`Cond::settings`].
    pub(crate) fn setting(self) -> u8 {
        match self {
            EncKind::Emergency => ED,
            EncKind::Inpatient => IMP,
            EncKind::Telehealth => VR,
            EncKind::Procedure => PROC,
            _ => AMB,
        }
    }

    /// Base charge of the visit, in cents.
    pub(crate) fn cents(self) -> i64 {
        match self {
            EncKind::Wellness => 13_680,
            EncKind::Ambulatory => 12_550,
            EncKind::FollowUp => 9_870,
            EncKind::Emergency => 146_210,
            EncKind::Inpatient => 1_021_700,
            EncKind::Telehealth => 7_500,
            EncKind::Procedure => 65_400,
        }
    }

    /// `(LOINC code, display)` of the clinical note written for the visit.
    pub(crate) fn note_type(self) -> (&'static str, &'static str) {
        match self {
            EncKind::Wellness => ("34117-2", "History and physical note"),
            EncKind::Emergency => ("34111-5", "Emergency department note"),
            EncKind::Inpatient => ("18842-5", "Discharge summary"),
            EncKind::Procedure => ("28570-0", "Procedure note"),
            _ => ("11506-3", "Progress note"),
        }
    }

    /// `(ex-serviceplace code, display)`
    pub(crate) fn place(self) -> (&'static str, &'static str) {
        match self {
            EncKind::Emergency | EncKind::Procedure => ("19", "Off Campus-Outpatient Hospital"),
            EncKind::Inpatient => ("21", "Inpatient Hospital"),
            _ => ("11", "Office"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_consistent() {
        for c in ACUTE.iter().chain(CHRONIC.iter()) {
            assert!(
                !c.snomed.is_empty() && c.snomed.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                c.display
            );
            assert!(
                !c.icd10.is_empty()
                    && !c.text.is_empty()
                    && !c.hpi.is_empty()
                    && !c.plan.is_empty(),
                "{}",
                c.display
            );
            assert!(c.min_age <= c.max_age);
            if c.med_prob > 0.0 {
                assert!(!c.meds.is_empty(), "{}", c.display);
            }
        }
        for c in ACUTE {
            assert!(c.settings != 0 && c.prevalence > 0.0, "{}", c.display);
        }
        for c in CHRONIC {
            assert!(
                c.chronic && c.prevalence > 0.0 && c.prevalence < 1.0,
                "{}",
                c.display
            );
        }
        for p in [&LIPID_PANEL, &METABOLIC_PANEL, &CBC_PANEL, &A1C_PANEL] {
            for t in p.tests {
                assert!(t.low < t.high && t.sd > 0.0, "{}", t.display);
            }
        }
    }
}
