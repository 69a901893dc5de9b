//! The value transformations of the anonymizer methods, on plain strings: partial dates and the
//! age-over-89 rule, date shifting with the reference's offset derivation, ZIP codes, the id
//! part of references for cryptoHash, HMAC-SHA256, AES-CBC encryption. No tree here.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;

/// A civil date (year, month, day).
pub type Ymd = (i64, u32, u32);

/// Today's date in UTC from the system clock.
pub fn today_utc() -> Ymd {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    civil_from_days(secs.div_euclid(86_400))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil((y, m, d): Ymd) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> Ymd {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A FHIR date or dateTime split the way the anonymizer's regexes split it.
#[derive(Debug, PartialEq)]
pub struct DateParts<'s> {
    /// The year text.
    pub year: &'s str,
    /// Month, if given.
    pub month: Option<u32>,
    /// Day, if given.
    pub day: Option<u32>,
    /// `T` + time + zone, when the value has a complete time with a zone (the dateTime regex's
    /// group 8); a time without zone is dropped by date shifting, as in the reference.
    pub time: Option<&'s str>,
}

fn two(s: &str, at: usize) -> Option<u32> {
    let b = s.as_bytes().get(at..at + 2)?;
    if b.iter().all(u8::is_ascii_digit) {
        Some(((b[0] - b'0') * 10 + (b[1] - b'0')) as u32)
    } else {
        None
    }
}

/// Splits `s`; `None` when it does not start with a 4-digit year.
pub fn date_parts(s: &str) -> Option<DateParts<'_>> {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) || &s[..4] == "0000" {
        return None;
    }
    let mut p = DateParts {
        year: &s[..4],
        month: None,
        day: None,
        time: None,
    };
    if b.get(4) == Some(&b'-') {
        if let Some(m) = two(s, 5).filter(|m| (1..=12).contains(m)) {
            p.month = Some(m);
            if b.get(7) == Some(&b'-') {
                if let Some(d) = two(s, 8).filter(|d| (1..=31).contains(d)) {
                    p.day = Some(d);
                    let rest = &s[10..];
                    if valid_time_with_zone(rest) {
                        p.time = Some(rest);
                    }
                }
            }
        }
    }
    Some(p)
}

fn valid_time_with_zone(t: &str) -> bool {
    let Some(r) = t.strip_prefix('T') else {
        return false;
    };
    let b = r.as_bytes();
    if b.len() < 8
        || two(r, 0).is_none_or(|h| h > 23)
        || b[2] != b':'
        || two(r, 3).is_none_or(|m| m > 59)
        || b[5] != b':'
        || two(r, 6).is_none_or(|s| s > 60)
    {
        return false;
    }
    let mut i = 8;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    let zone = &r[i..];
    zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes()[3] == b':'
            && two(zone, 1).is_some_and(|h| h <= 14)
            && two(zone, 4).is_some_and(|m| m <= 59))
}

/// The anonymizer's age test: would someone born on this date be over 89 on `today`?
pub fn age_over_89(p: &DateParts<'_>, today: Ymd) -> bool {
    let year: i64 = p.year.parse().unwrap_or(0);
    let (m, d) = (p.month.unwrap_or(1), p.day.unwrap_or(1));
    let age = today.0 - year - i64::from(today.1 < m || (today.1 == m && today.2 < d));
    age > 89
}

/// redact of a date/dateTime/instant with partial dates: the year, or nothing when over 89.
/// `None` from the outer option means "leave as is" (the value has no year).
pub fn redact_date(s: &str, partial: bool, today: Ymd) -> Option<Option<String>> {
    if !partial {
        return Some(None);
    }
    let p = date_parts(s)?;
    Some(if age_over_89(&p, today) {
        None
    } else {
        Some(p.year.to_string())
    })
}

/// The reference's offset: `(offset × 131 + byte) mod 101` over the UTF-8 bytes of
/// `prefix + key`, minus 50 (so −50..=50 days).
pub fn date_shift_offset(prefix: &str, key: &str) -> i64 {
    let offset = shift_fold(shift_fold(0, prefix.as_bytes()), key.as_bytes());
    i64::from(offset) - 50
}

/// `offset = (offset × 131 + byte) mod 101` over `bytes`, four bytes per reduction: with
/// `P(k) = 131^k mod 101` (30, 92, 33, 81) four steps are
/// `(offset × P(4) + b0 × P(3) + b1 × P(2) + b2 × P(1) + b3) mod 101`, below
/// 100 × 81 + 255 × 156 in u32 (one dependent reduction instead of four; issue 6 item 7).
fn shift_fold(mut offset: u32, bytes: &[u8]) -> u32 {
    let mut quads = bytes.chunks_exact(4);
    for q in &mut quads {
        let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(u32::from);
        offset = (offset * 81 + a * 33 + b * 92 + c * 30 + d) % 101;
    }
    for &b in quads.remainder() {
        offset = (offset * 131 + u32::from(b)) % 101;
    }
    offset
}

/// Shifts a date by `offset` days; a time with zone keeps its zone and has its digits zeroed.
/// `None` when the value is not shiftable (no day, or over 89: the caller redacts instead).
pub fn shift_date(s: &str, offset: i64, today: Ymd) -> Option<String> {
    let p = date_parts(s)?;
    let (m, d) = (p.month?, p.day?);
    if age_over_89(&p, today) {
        return None;
    }
    let y: i64 = p.year.parse().ok()?;
    let (ny, nm, nd) = civil_from_days(days_from_civil((y, m, d)) + offset);
    // Built as bytes: `format!`, then chars pushed one at a time, cost a noticeable share
    // of Safe Harbor (issue 6 item 7).
    let mut out = Vec::with_capacity(s.len().max(10));
    if (0..=9999).contains(&ny) {
        let digit = |n: i64| b'0' + (n % 10) as u8;
        let (nm, nd) = (i64::from(nm), i64::from(nd));
        out.extend_from_slice(&[
            digit(ny / 1000),
            digit(ny / 100),
            digit(ny / 10),
            digit(ny),
            b'-',
            digit(nm / 10),
            digit(nm),
            b'-',
            digit(nd / 10),
            digit(nd),
        ]);
    } else {
        out.extend_from_slice(format!("{ny:04}-{nm:02}-{nd:02}").as_bytes());
    }
    if let Some(t) = p.time {
        // Zero the digits of hh:mm:ss(.fff), keep the zone. ASCII digits are never part of
        // a multi-byte character, so replacing them keeps the text UTF-8.
        let tb = t.as_bytes();
        let zone_at = tb[1..]
            .iter()
            .position(|b| matches!(b, b'Z' | b'+' | b'-'))
            .map_or(tb.len(), |i| i + 1);
        let at = out.len();
        out.extend_from_slice(tb);
        for b in &mut out[at + 1..at + zone_at] {
            if b.is_ascii_digit() {
                *b = b'0';
            }
        }
    }
    String::from_utf8(out).ok()
}

/// redact of a postal code with partial ZIP codes: restricted areas all zeros, others the first
/// three characters and zeros for the remaining digits.
pub fn partial_zip(s: &str, restricted: &[String]) -> String {
    if restricted.iter().any(|r| s.starts_with(r.as_str())) {
        return s
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
    }
    if s.chars().count() >= 3 {
        let head: String = s.chars().take(3).collect();
        let tail: String = s
            .chars()
            .skip(3)
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        return head + &tail;
    }
    s.to_string()
}

/// HMAC-SHA256 of `input` with `key`, lowercase hex.
pub fn hmac_hex(input: &str, key: &str) -> String {
    HashKey::new(key).hex(input)
}

/// HMAC-SHA256 keyed once: the key's two padded blocks are hashed at construction, so each
/// value costs only its own blocks (issue 6 item 7).
#[derive(Clone)]
pub struct HashKey {
    mac: Hmac<Sha256>,
    /// Tells this key's entries in the per-thread cache from another key's.
    id: u64,
}

/// How many results [`HashKey::reference`] keeps per thread (a power of two).
const CACHE_SLOTS: usize = 1 << 12;

/// One thread's recent results of [`HashKey::reference`] for the key `owner`: a direct-mapped
/// table (a slot per input hash; a new input takes the slot over), so a lookup is one probe
/// and memory is fixed, whatever the input (no collision chains to flood).
#[derive(Default)]
struct HashCache {
    owner: u64,
    /// (the reference, its result).
    slots: Vec<(String, String)>,
}

thread_local! {
    static HASHED: std::cell::RefCell<HashCache> = std::cell::RefCell::default();
}

impl HashKey {
    /// Keys the state with `key` (HMAC accepts keys of any length).
    pub fn new(key: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        HashKey {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts keys of any length"),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The lower-case hex HMAC-SHA256 of `input`.
    pub fn hex(&self, input: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(input.as_bytes());
        let bytes = mac.finalize().into_bytes();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        // ASCII by construction: the check cannot fail.
        std::str::from_utf8(&buf).unwrap_or_default().to_string()
    }

    /// The cryptoHash of a reference: [`HashKey::hex`] of its id part
    /// ([`transform_reference_id`]). The same references recur across the resources of an
    /// export (every Observation names its Patient and Encounter), so each thread keeps
    /// recent results for this key ([`CACHE_SLOTS`]): a repeat costs a probe instead of an
    /// HMAC (issue 6 item 7). Other values (ids above all) are mostly unique and are hashed
    /// with [`HashKey::hex`] directly: they would only push references out.
    pub fn reference(&self, v: &str) -> String {
        let compute = || transform_reference_id(v, |s| self.hex(s));
        if v.is_empty() {
            // An empty slot would match "".
            return compute();
        }
        HASHED
            .try_with(|c| {
                let mut c = c.borrow_mut();
                if c.owner != self.id || c.slots.is_empty() {
                    c.owner = self.id;
                    c.slots = vec![Default::default(); CACHE_SLOTS];
                }
                let mut h = crate::util::hash::FastHasher::default();
                std::hash::Hasher::write(&mut h, v.as_bytes());
                let slot = &mut c.slots[std::hash::Hasher::finish(&h) as usize & (CACHE_SLOTS - 1)];
                if slot.0 == v {
                    return slot.1.clone();
                }
                let out = compute();
                slot.0.clear();
                slot.0.push_str(v);
                slot.1.clear();
                slot.1.push_str(&out);
                out
            })
            .unwrap_or_else(|_| compute())
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(***)")
    }
}

fn literal_reference() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let types = crate::fhir::RESOURCE_TYPES.join("|");
        regex::Regex::new(&format!(
            r"^(?P<prefix>((http|https)://([A-Za-z0-9\\/\.:%$])*)?({types})/)(?P<id>[A-Za-z0-9\-\.]{{1,64}})(?P<suffix>/_history/[A-Za-z0-9\-\.]{{1,64}})?$"
        ))
        .expect("reference regex")
    })
}

/// `Type/id` or `Type/id/_history/vid` split as the literal-reference regex does when there is
/// no `http(s)://` part: (`Type/`, id, `/_history/vid` or `""`).
fn relative_reference(r: &str) -> Option<(&str, &str, &str)> {
    let id_ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    let slash = r.find('/')?;
    crate::fhir::resource_type_index(&r[..slash])?;
    let rest = &r[slash + 1..];
    let (id, suffix) = match rest.find('/') {
        None => (rest, ""),
        Some(i) => {
            let vid = rest[i..].strip_prefix("/_history/")?;
            id_ok(vid).then_some(())?;
            (&rest[..i], &rest[i..])
        }
    };
    id_ok(id).then_some((&r[..=slash], id, suffix))
}

/// The reference's `TransformReferenceId`: applies `f` to the id part of a literal reference
/// (`Patient/123`, an absolute URL, `urn:oid:`, `urn:uuid:`, `#contained`), or to the whole
/// value when it has no id part.
pub fn transform_reference_id(reference: &str, f: impl Fn(&str) -> String) -> String {
    if let Some(internal) = reference.strip_prefix('#') {
        return format!("#{}", f(internal));
    }
    if !reference.contains("://") {
        // Without a scheme the regex's optional URL part cannot match, so the prefix is just
        // `Type/`: split it by hand (the regex's captures cost microseconds per reference).
        if let Some((prefix, id, suffix)) = relative_reference(reference) {
            return format!("{prefix}{}{suffix}", f(id));
        }
    } else if let Some(c) = literal_reference().captures(reference) {
        return format!(
            "{}{}{}",
            &c["prefix"],
            f(&c["id"]),
            c.name("suffix").map_or("", |m| m.as_str())
        );
    }
    if let Some(id) = reference.strip_prefix("urn:oid:") {
        let ok = id.split('.').count() > 1
            && id.starts_with(['0', '1', '2'])
            && id.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'))
            })
            && id.split('.').next().is_some_and(|p| p.len() == 1);
        if ok {
            return format!("urn:oid:{}", f(id));
        }
    }
    if let Some(id) = reference.strip_prefix("urn:uuid:") {
        let groups: Vec<&str> = id.split('-').collect();
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            return format!("urn:uuid:{}", f(id));
        }
    }
    f(reference)
}

/// AES-CBC with PKCS7 padding and a random IV, the IV prefixed, base64; the key is the UTF-8 of
/// `key` (16, 24 or 32 bytes, checked when the configuration is loaded).
pub fn encrypt(plain: &str, key: &str, iv: [u8; 16]) -> Option<String> {
    let k = key.as_bytes();
    let mut buf = vec![0u8; plain.len() + 16];
    buf[..plain.len()].copy_from_slice(plain.as_bytes());
    let ct_len = match k.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(k, &iv)
            .ok()?
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .ok()?
            .len(),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(k, &iv)
            .ok()?
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .ok()?
            .len(),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(k, &iv)
            .ok()?
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .ok()?
            .len(),
        _ => return None,
    };
    let mut out = iv.to_vec();
    out.extend_from_slice(&buf[..ct_len]);
    Some(base64::engine::general_purpose::STANDARD.encode(out))
}

/// A random IV from the operating system.
pub fn random_iv() -> [u8; 16] {
    let mut iv = [0u8; 16];
    if getrandom::getrandom(&mut iv).is_err() {
        // No OS randomness: fall back to a per-process generator (still unique per value).
        for b in &mut iv {
            *b = fastrand::u8(..);
        }
    }
    iv
}

#[cfg(test)]
mod tests;
