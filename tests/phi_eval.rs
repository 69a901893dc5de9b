//! Free-text PHI recognition measured on annotated notes from `fhirpipe sample
//! --annotations` (issue 6 item 4): precision, recall and F1 per category and overall, by the
//! exact and the overlap match rule (see `fhirpipe::phi::eval`). The recognizer was tuned on
//! seed 7 only; these seeds were not looked at while writing the rules. Floors are the
//! figures reached (rounded down), so a regression fails; the targets (recall ≥ 0.95,
//! precision ≥ 0.90 overall) are asserted on both rules, with and without the structured
//! data. The held-out seeds vary the names, values and template choices, not the phrasing:
//! the generator's sentence templates are the same for every seed, so these figures do not
//! say how the cues carry over to other writers' notes.

mod support;

use fhirpipe::phi::eval::{load_corpus, Doc, Scores};
use fhirpipe::phi::{KnownPhi, PhiType, Recognizer, Span};
use support::*;

/// Patients per corpus: about 23 notes each, so ~2,500 notes (3.4 MB of text) per seed.
const PATIENTS: &str = "110";

/// The annotated notes of `fhirpipe sample --patients N --seed S --annotations`.
fn corpus(patients: &str, seed: &str) -> Vec<Doc> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("corpus");
    let ann = tmp.path().join("notes.ndjson");
    let o = run(&[
        "sample",
        "--patients",
        patients,
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
        "--annotations",
        ann.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    load_corpus(&out, &ann).unwrap_or_else(|e| panic!("{e}"))
}

/// Scores of seed `seed`: with the structured data (`KnownPhi`) and with patterns and cues
/// only.
fn score(seed: &str) -> (Scores, Scores, usize) {
    let docs = corpus(PATIENTS, seed);
    let rec = Recognizer::new();
    let empty = KnownPhi::new();
    let (mut with, mut without) = (Scores::default(), Scores::default());
    let mut bytes = 0;
    for d in &docs {
        with.add(&rec.find(&d.text, &d.known), &d.gold);
        without.add(&rec.find(&d.text, &empty), &d.gold);
        bytes += d.text.len();
    }
    println!(
        "seed {seed}: {} notes, {bytes} bytes of text\n\
         with the record's structured data (KnownPhi):\n{}\n\
         patterns and context cues only (empty KnownPhi):\n{}",
        docs.len(),
        with.table(),
        without.table()
    );
    (with, without, docs.len())
}

/// (category or None for overall, exact P, exact R, overlap P, overlap R) floors.
type Floor = (Option<PhiType>, f64, f64, f64, f64);

fn check(what: &str, scores: &Scores, floors: &[Floor]) {
    let mut failed = Vec::new();
    for (t, ep, er, op, or) in floors {
        let c = t.map_or_else(|| scores.overall(), |t| scores.of(t));
        let (p, r, _) = c.exact();
        let (po, ro, _) = c.overlap();
        let name = t.map_or("overall", PhiType::label);
        for (rule, got, floor) in [
            ("exact P", p, ep),
            ("exact R", r, er),
            ("overlap P", po, op),
            ("overlap R", ro, or),
        ] {
            if got < *floor {
                failed.push(format!("{what}: {name} {rule} {got:.3} < floor {floor}"));
            }
        }
    }
    assert!(failed.is_empty(), "regressions:\n{}", failed.join("\n"));
}

/// The targets, on both match rules.
fn targets(scores: &Scores) {
    let all = scores.overall();
    for (rule, (p, r, _)) in [("exact", all.exact()), ("overlap", all.overlap())] {
        assert!(
            r >= 0.95,
            "overall {rule} recall {r:.3} below the 0.95 target"
        );
        assert!(
            p >= 0.90,
            "overall {rule} precision {p:.3} below the 0.90 target"
        );
    }
}

/// With KnownPhi: every category but NAME is exact; NAME's exact figures are lower because
/// the annotations split a relative's "Given Family" into two spans while the recognizer
/// (like the annotations for the patient) writes one.
const WITH_KNOWN: &[Floor] = &[
    (None, 0.975, 0.955, 0.999, 0.999),
    (Some(PhiType::Name), 0.93, 0.88, 0.999, 0.999),
    (Some(PhiType::Date), 0.999, 0.999, 0.999, 0.999),
    (Some(PhiType::Age), 0.999, 0.999, 0.999, 0.999),
    (Some(PhiType::Address), 0.999, 0.999, 0.999, 0.999),
    (Some(PhiType::City), 0.999, 0.999, 0.999, 0.999),
];

/// Without KnownPhi: names and cities rely on cues alone (and on the second pass that looks
/// for cued names elsewhere in the note).
const WITHOUT_KNOWN: &[Floor] = &[
    (None, 0.975, 0.955, 0.999, 0.999),
    (Some(PhiType::Name), 0.93, 0.88, 0.999, 0.999),
    (Some(PhiType::City), 0.999, 0.999, 0.999, 0.999),
];

fn evaluate(seed: &str) {
    let (with, without, notes) = score(seed);
    assert!(notes > 2000, "{notes} notes");
    check("with KnownPhi", &with, WITH_KNOWN);
    check("without KnownPhi", &without, WITHOUT_KNOWN);
    targets(&with);
    targets(&without);
}

#[test]
fn phi_recognition_seed_2026() {
    evaluate("2026");
}

#[test]
fn phi_recognition_seed_4242() {
    evaluate("4242");
}

/// The development corpus (seed 7, the only one looked at while writing the rules): prints
/// every gold span no found span overlaps and every found span overlapping no gold span
/// (set PHI_NO_KNOWN to leave out the structured data, PHI_EXACT for the exact rule). Run with
/// `cargo test --test phi_eval -- --ignored --nocapture`.
#[test]
#[ignore]
fn phi_errors_on_the_development_seed() {
    let docs = corpus("40", "7");
    let rec = Recognizer::new();
    let mut scores = Scores::default();
    let no_known = std::env::var_os("PHI_NO_KNOWN").is_some();
    let exact = std::env::var_os("PHI_EXACT").is_some();
    let same = |a: &Span, b: &Span| {
        a.kind == b.kind
            && if exact {
                a.start == b.start && a.end == b.end
            } else {
                a.start < b.end && b.start < a.end
            }
    };
    let empty = KnownPhi::new();
    for d in &docs {
        let found = rec.find(&d.text, if no_known { &empty } else { &d.known });
        scores.add(&found, &d.gold);
        let ctx = |s: usize, e: usize| {
            let a = d.text.floor_char_boundary(s.saturating_sub(25));
            let b = d.text.ceil_char_boundary((e + 25).min(d.text.len()));
            d.text[a..b].replace('\n', "⏎")
        };
        for f in &found {
            if !d.gold.iter().any(|g| same(g, f)) {
                println!(
                    "FOUND {:<7} {:?}  in «{}»",
                    f.kind.label(),
                    &d.text[f.start..f.end],
                    ctx(f.start, f.end)
                );
            }
        }
        for g in &d.gold {
            if !found.iter().any(|f| same(g, f)) {
                println!(
                    "MISSED {:<7} {:?}  in «{}»",
                    g.kind.label(),
                    &d.text[g.start..g.end],
                    ctx(g.start, g.end)
                );
            }
        }
    }
    println!("{}", scores.table());
}
