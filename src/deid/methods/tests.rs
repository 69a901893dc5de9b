use super::*;
use aes::cipher::BlockDecryptMut;

const TODAY: Ymd = (2021, 6, 1);

#[test]
fn date_shift_offset_matches_the_reference() {
    // patient-basic.json (id "example", key "123") moves 2000-01-01 to 2000-02-11 upstream.
    assert_eq!(date_shift_offset("example", "123"), 41);
    assert_eq!(date_shift_offset("", ""), -50);
    for p in ["a", "Patient-1", "00000000-0000-0000-0000-000000000000"] {
        assert!((-50..=50).contains(&date_shift_offset(p, "k")));
    }
}

/// Issue 6 item 7: the offset folded four bytes at a time is the byte-wise recurrence, for
/// every length (remainders 0–3) and for bytes up to 0xff (non-ASCII UTF-8).
#[test]
fn issue_6_item_7_shift_fold_is_the_bytewise_recurrence() {
    let bytewise = |s: &[u8]| {
        let mut o: u32 = 0;
        for &b in s {
            o = (o * 131 + u32::from(b)) % 101;
        }
        o
    };
    let mut x: u32 = 12345;
    for len in 0..70 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        assert_eq!(shift_fold(0, &bytes), bytewise(&bytes), "{bytes:?}");
        let (a, b) = bytes.split_at(len / 3);
        assert_eq!(shift_fold(shift_fold(0, a), b), bytewise(&bytes));
    }
    assert_eq!(shift_fold(0, &[0xff; 13]), bytewise(&[0xff; 13]));
    assert_eq!(
        date_shift_offset("Patient-ü-0123456789", "key"),
        i64::from(bytewise("Patient-ü-0123456789key".as_bytes())) - 50
    );
}

#[test]
fn shifting_dates_and_date_times() {
    assert_eq!(
        shift_date("2000-01-01", 41, TODAY).as_deref(),
        Some("2000-02-11")
    );
    assert_eq!(
        shift_date("2000-01-01T01:01:01-01:00", 41, TODAY).as_deref(),
        Some("2000-02-11T00:00:00-01:00")
    );
    assert_eq!(
        shift_date("2015-08-05T13:45:12.123Z", -3, TODAY).as_deref(),
        Some("2015-08-02T00:00:00.000Z")
    );
    // A time without a zone is not the reference's dateTime form: the date alone is kept.
    assert_eq!(
        shift_date("2000-03-01T10:00:00", -1, TODAY).as_deref(),
        Some("2000-02-29")
    );
    // No day, or born over 89 years ago: not shiftable (the caller redacts).
    assert_eq!(shift_date("2002", 5, TODAY), None);
    assert_eq!(shift_date("2002-05", 5, TODAY), None);
    assert_eq!(shift_date("1920-05-01", 5, TODAY), None);
}

#[test]
fn partial_date_redaction_and_the_age_over_89_rule() {
    assert_eq!(
        redact_date("2000-03-04", true, TODAY),
        Some(Some("2000".into()))
    );
    assert_eq!(redact_date("2000-03-04", false, TODAY), Some(None));
    // Born 1931-06-02: 89 on 2021-06-01, year kept; born 1931-06-01: 90, removed.
    assert_eq!(
        redact_date("1931-06-02", true, TODAY),
        Some(Some("1931".into()))
    );
    assert_eq!(redact_date("1931-06-01", true, TODAY), Some(None));
    assert_eq!(redact_date("1931", true, TODAY), Some(None));
    assert_eq!(redact_date("garbage", true, TODAY), None);
}

#[test]
fn zip_codes() {
    assert_eq!(partial_zip("12345", &[]), "12300");
    assert_eq!(partial_zip("12345-6789", &[]), "12300-0000");
    assert_eq!(partial_zip("03645", &["036".to_string()]), "00000");
    assert_eq!(partial_zip("12", &[]), "12");
}

#[test]
fn hmac_sha256_hex() {
    // Patient.id "example" with key "123" in the upstream expected outputs.
    assert_eq!(
        hmac_hex("example", "123"),
        "698d54f0494528a759f19c8e87a9f99e75a5881b9267ee3926bcf62c992d84ba"
    );
}

#[test]
fn references_hash_only_their_id() {
    let f = |s: &str| format!("h({s})");
    assert_eq!(transform_reference_id("Patient/123", f), "Patient/h(123)");
    assert_eq!(
        transform_reference_id("http://x.org/fhir/Patient/1/_history/2", f),
        "http://x.org/fhir/Patient/h(1)/_history/2"
    );
    assert_eq!(transform_reference_id("#p1", f), "#h(p1)");
    assert_eq!(
        transform_reference_id("urn:uuid:0b2d5e1a-8c8e-4f3c-9d2a-6f1e2d3c4b5a", f),
        "urn:uuid:h(0b2d5e1a-8c8e-4f3c-9d2a-6f1e2d3c4b5a)"
    );
    assert_eq!(
        transform_reference_id("urn:oid:1.2.3", f),
        "urn:oid:h(1.2.3)"
    );
    assert_eq!(transform_reference_id("NotAType/1", f), "h(NotAType/1)");
}

#[test]
fn encryption_prefixes_the_iv_and_round_trips() {
    let key = "0123456789abcdef";
    let iv = [7u8; 16];
    let b64 = encrypt("Smith", key, iv).expect("encrypts");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .expect("base64");
    assert_eq!(&bytes[..16], &iv);
    assert_eq!(bytes.len(), 32, "IV + one padded block");
    let mut ct = bytes[16..].to_vec();
    let plain = cbc::Decryptor::<aes::Aes128>::new_from_slices(key.as_bytes(), &iv)
        .expect("key")
        .decrypt_padded_mut::<Pkcs7>(&mut ct)
        .expect("padding");
    assert_eq!(plain, b"Smith");
    assert_eq!(encrypt("x", "short", iv), None);
    assert_ne!(random_iv(), random_iv());
}

#[test]
fn civil_day_arithmetic() {
    assert_eq!(days_from_civil((1970, 1, 1)), 0);
    assert_eq!(
        civil_from_days(days_from_civil((2000, 2, 28)) + 1),
        (2000, 2, 29)
    );
    assert_eq!(
        civil_from_days(days_from_civil((1999, 12, 31)) + 1),
        (2000, 1, 1)
    );
    assert_eq!(
        civil_from_days(days_from_civil((2021, 3, 1)) - 1),
        (2021, 2, 28)
    );
}

/// Issue 6 item 7: relative references are split by hand, not by the literal-reference
/// regex; the split must be exactly the regex's on every shape.
#[test]
fn relative_reference_split_agrees_with_the_regex() {
    let long = format!("Patient/{}", "a".repeat(65));
    let ok64 = format!("Patient/{}", "a".repeat(64));
    for r in [
        "Patient/123",
        "Patient/6e85520e-e9c1-42a5-8995-2030a90384c4",
        "Encounter/a.b-c",
        "Patient/1/_history/2",
        "Patient/1/_history/",
        "Patient/1/_history",
        "Patient/1/other/2",
        "Patient/",
        "Patient",
        "/Patient/1",
        "NotAType/1",
        "patient/1",
        "Patient/1 2",
        "Patient/ä",
        "Patient/1/_history/2/3",
        &long,
        &ok64,
    ] {
        let by_regex = literal_reference().captures(r).map(|c| {
            (
                c.name("prefix").unwrap().as_str(),
                c.name("id").unwrap().as_str(),
                c.name("suffix").map_or("", |m| m.as_str()),
            )
        });
        assert_eq!(relative_reference(r), by_regex, "{r:?}");
    }
    assert_eq!(
        relative_reference("Patient/1/_history/2"),
        Some(("Patient/", "1", "/_history/2"))
    );
}
