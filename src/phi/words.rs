//! Fixed vocabularies of the recognizer, all general knowledge rather than data: month
//! names, USPS state codes and street suffixes (USPS Publication 28, appendix C1, common
//! subset), personal titles, clinical credentials, kinship words and the field labels that
//! introduce names and identifiers. Nothing here is taken from the sample generator.

/// A short word in ASCII lower case, on the stack ("" when longer than 16 bytes: no word
/// of these vocabularies is), so the checks below allocate nothing.
pub(crate) struct Lower {
    buf: [u8; 16],
    len: usize,
}

impl Lower {
    pub(crate) fn new(w: &str) -> Self {
        let mut buf = [0u8; 16];
        let b = w.as_bytes();
        if b.len() > buf.len() {
            return Lower { buf, len: 0 };
        }
        buf[..b.len()].copy_from_slice(b);
        // Eight bytes at a time (the recognizer makes several of these per word): a byte
        // gets 0x20 added when it is in 'A'..='Z'.
        let (lo, hi) = buf.split_at_mut(8);
        for half in [lo, hi] {
            let mut x = [0u8; 8];
            x.copy_from_slice(half);
            half.copy_from_slice(&lower8(u64::from_le_bytes(x)).to_le_bytes());
        }
        Lower { buf, len: b.len() }
    }

    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: `buf[..len]` is a whole `&str` with its ASCII letters lower-cased, and
        // ASCII lower-casing leaves every other byte (all of a multi-byte character's) as it
        // was, so it is valid UTF-8. (Checking it again cost ~1.5% of the de-identification
        // pipeline with free text: the recognizer asks for several of these per word.)
        unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) }
    }
}

/// ASCII lower case of eight bytes at once; bytes from 0x80 up are left as they are.
#[inline]
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let seven = x & !HIGH;
    // High bit of each byte: its low seven bits are ≥ 'A', and > 'Z'.
    let ge_a = seven + ONES * u64::from(0x80 - b'A');
    let gt_z = seven + ONES * u64::from(0x80 - b'Z' - 1);
    let upper = ge_a & !gt_z & !x & HIGH;
    x | (upper >> 2)
}

/// Month names and their common abbreviations → month number.
pub(crate) fn month(w: &str) -> Option<u32> {
    let m = match Lower::new(w.trim_end_matches('.')).as_str() {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    };
    Some(m)
}

/// USPS two-letter codes of the states, DC and the territories.
pub(crate) const STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

pub(crate) fn is_state(w: &str) -> bool {
    match w.as_bytes() {
        [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => STATES.contains(&w),
        _ => false,
    }
}

/// Street suffixes (USPS standard abbreviations and their spelled-out forms).
pub(crate) fn is_street_suffix(w: &str) -> bool {
    matches!(
        w.trim_end_matches('.'),
        "St" | "Street"
            | "Ave"
            | "Av"
            | "Avenue"
            | "Rd"
            | "Road"
            | "Blvd"
            | "Boulevard"
            | "Dr"
            | "Drive"
            | "Ln"
            | "Lane"
            | "Way"
            | "Ct"
            | "Court"
            | "Pl"
            | "Place"
            | "Ter"
            | "Terrace"
            | "Pkwy"
            | "Parkway"
            | "Cir"
            | "Circle"
            | "Hwy"
            | "Highway"
            | "Sq"
            | "Square"
            | "Trl"
            | "Trail"
            | "Loop"
            | "Row"
            | "Run"
            | "Pike"
            | "Path"
            | "Xing"
            | "Crossing"
            | "Aly"
            | "Alley"
            | "Plz"
            | "Plaza"
            | "Cv"
            | "Cove"
            | "Pt"
            | "Point"
            | "Rdg"
            | "Ridge"
            | "Hts"
            | "Heights"
    )
}

/// Secondary unit designators that may follow a street line.
pub(crate) fn is_unit(w: &str) -> bool {
    matches!(
        w.trim_end_matches('.'),
        "Apt" | "Apartment" | "Unit" | "Suite" | "Ste" | "Fl" | "Floor" | "Rm" | "Room" | "Bldg"
    )
}

/// Directional words that may start a street name.
pub(crate) fn is_directional(w: &str) -> bool {
    matches!(
        w.trim_end_matches('.'),
        "N" | "S" | "E" | "W" | "NE" | "NW" | "SE" | "SW" | "North" | "South" | "East" | "West"
    )
}

/// Personal titles that precede a name.
pub(crate) fn is_title(w: &str) -> bool {
    matches!(
        w,
        "Mr" | "Mrs" | "Ms" | "Miss" | "Mx" | "Dr" | "Prof" | "Doctor" | "Mister"
    )
}

/// Clinical credentials written after a name (", MD").
pub(crate) fn is_credential(w: &str) -> bool {
    matches!(
        w.trim_end_matches('.'),
        "MD" | "DO"
            | "NP"
            | "RN"
            | "PA"
            | "PA-C"
            | "FNP"
            | "APRN"
            | "CNM"
            | "PhD"
            | "DDS"
            | "DMD"
            | "PharmD"
            | "LPN"
            | "LCSW"
            | "MBBS"
    )
}

/// Kinship and care words after which a name often follows ("his wife, Ana").
pub(crate) fn is_kinship(w: &str) -> bool {
    matches!(
        Lower::new(w).as_str(),
        "wife"
            | "husband"
            | "spouse"
            | "partner"
            | "son"
            | "daughter"
            | "mother"
            | "father"
            | "mom"
            | "dad"
            | "brother"
            | "sister"
            | "sibling"
            | "grandmother"
            | "grandfather"
            | "grandson"
            | "granddaughter"
            | "aunt"
            | "uncle"
            | "niece"
            | "nephew"
            | "cousin"
            | "friend"
            | "caregiver"
            | "guardian"
            | "fiance"
            | "fiancee"
            | "stepmother"
            | "stepfather"
    )
}

/// Field labels after which a person's name follows ("Patient: ...").
pub(crate) fn is_name_label(w: &str) -> bool {
    matches!(
        Lower::new(w).as_str(),
        "patient"
            | "name"
            | "re"
            | "attending"
            | "provider"
            | "physician"
            | "pcp"
            | "contact"
            | "by"
            | "cc"
            | "referred"
            | "author"
            | "guarantor"
            | "subscriber"
    )
}

/// Words that are capitalised in clinical text but are not names (section headings,
/// sentence starts, common clinical words). Used only to stop context-cued name guesses.
pub(crate) fn is_not_name(w: &str) -> bool {
    matches!(
        w,
        "The"
            | "A"
            | "An"
            | "He"
            | "She"
            | "They"
            | "His"
            | "Her"
            | "Patient"
            | "Pt"
            | "No"
            | "None"
            | "Date"
            | "Today"
            | "Seen"
            | "Visit"
            | "History"
            | "Medical"
            | "Record"
            | "Hospital"
            | "Clinic"
            | "Center"
            | "Emergency"
            | "Department"
            | "Primary"
            | "Care"
            | "Family"
            | "Medicine"
            | "Health"
            | "And"
            | "Or"
            | "With"
            | "In"
            | "On"
            | "At"
            | "Of"
            | "For"
            | "To"
            | "From"
            | "Is"
            | "Was"
            | "Returns"
            | "Presents"
            | "Reports"
            | "Denies"
            | "Notes"
            | "Follow"
            | "Electronically"
            | "Signed"
            | "Unknown"
            | "Self"
            | "Mother"
            | "Father"
    )
}

/// Labels that introduce another identifier.
pub(crate) fn is_id_label(w: &str) -> bool {
    matches!(
        Lower::new(w).as_str(),
        "id" | "member"
            | "policy"
            | "account"
            | "acct"
            | "license"
            | "licence"
            | "subscriber"
            | "certificate"
            | "serial"
            | "plate"
            | "vin"
    )
}

#[cfg(test)]
mod lower_tests {
    /// The eight-bytes-at-a-time lower case is `to_ascii_lowercase` on every byte value.
    #[test]
    fn lower_is_ascii_lowercase_for_every_byte() {
        for b in 0..=255u8 {
            let x = u64::from_le_bytes([b, b'A', b'Z', b'a', b'@', b'[', 0xC3, b]);
            let want: Vec<u8> = x.to_le_bytes().iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(super::lower8(x).to_le_bytes().to_vec(), want, "byte {b}");
        }
        assert_eq!(super::Lower::new("MRN").as_str(), "mrn");
        assert_eq!(super::Lower::new("Ärzte-ZENTRUM").as_str(), "Ärzte-zentrum");
        assert_eq!(super::Lower::new("SeventeenLetters!").as_str(), "");
    }
}
