//! The FHIRPath `Decimal`: an exact scaled integer (`mantissa / 10^scale`, i128), so `0.1 + 0.2 =
//! 0.3` and equality never goes through f64. Keeps the scale it was written with (`1.0` stays
//! `1.0` in output); operations that overflow return `None` and the evaluator reports an error.

use std::cmp::Ordering;
use std::fmt;

/// Digits kept after the point by division and the transcendental functions.
pub const DIVISION_SCALE: u32 = 8;
const MAX_SCALE: u32 = 28;

/// An exact decimal number.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    /// `mantissa / 10^scale`.
    pub fn new(mantissa: i128, scale: u32) -> Self {
        Decimal { mantissa, scale }
    }

    /// An integer value with scale 0.
    pub fn from_int(i: i64) -> Self {
        Decimal::new(i as i128, 0)
    }

    /// The number of digits after the point.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Parses `[+-]?digits[.digits][e[+-]digits]`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (neg, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (num, exp) = match rest.find(['e', 'E']) {
            Some(p) => (&rest[..p], rest[p + 1..].parse::<i32>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = match num.split_once('.') {
            Some((i, f)) if !f.is_empty() => (i, f),
            Some(_) => return None,
            None => (num, ""),
        };
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut m: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac.len() as i64 - exp as i64;
        while scale < 0 {
            m = m.checked_mul(10)?;
            scale += 1;
        }
        while scale > MAX_SCALE as i64 {
            m /= 10;
            scale -= 1;
        }
        Some(Decimal::new(if neg { -m } else { m }, scale as u32))
    }

    /// The shortest decimal that round-trips the float (JSON numbers arrive as f64).
    pub fn from_f64(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        Decimal::parse(&format!("{f}"))
    }

    /// An approximation, for the transcendental functions only.
    pub fn to_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// Rounded to [`DIVISION_SCALE`] digits, trailing zeros removed.
    pub fn from_f64_rounded(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        Decimal::parse(&format!("{f:.prec$}", prec = DIVISION_SCALE as usize))
            .map(|d| d.normalized())
    }

    /// Trailing zeros after the point removed.
    pub fn normalized(self) -> Self {
        let mut d = self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    fn rescale(&self, scale: u32) -> Option<i128> {
        self.mantissa
            .checked_mul(pow10(scale.checked_sub(self.scale)?)?)
    }

    fn aligned(a: &Self, b: &Self) -> Option<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?, b.rescale(s)?, s))
    }

    /// `a + b`.
    pub fn add(&self, o: &Self) -> Option<Self> {
        let (a, b, s) = Self::aligned(self, o)?;
        Some(Decimal::new(a.checked_add(b)?, s))
    }

    /// `a - b`.
    pub fn sub(&self, o: &Self) -> Option<Self> {
        self.add(&o.neg())
    }

    /// `-a`.
    pub fn neg(&self) -> Self {
        Decimal::new(-self.mantissa, self.scale)
    }

    /// FHIRPath `lowBoundary(precision)` / `highBoundary(precision)`: the value's
    /// uncertainty interval from the digits it was written with (`1.587` means
    /// [1.5865, 1.5875)), written with `precision` digits after the point: padded with
    /// zeros, or cut (the low boundary toward zero, the high one rounded half up, mirrored
    /// for negative values, as the official suite expects). `None` outside 0..=28 digits.
    pub fn boundary(&self, high: bool, precision: u32) -> Option<Self> {
        if precision > MAX_SCALE {
            return None;
        }
        if self.mantissa < 0 {
            return self.neg().boundary(!high, precision).map(|d| d.neg());
        }
        let (b, scale) = if self.mantissa == 0 {
            (if high { 5 } else { -5 }, 1)
        } else {
            let m = self.mantissa.checked_mul(10)?;
            (if high { m.checked_add(5)? } else { m - 5 }, self.scale + 1)
        };
        if precision >= scale {
            return Some(Decimal::new(
                b.checked_mul(pow10(precision - scale)?)?,
                precision,
            ));
        }
        let unit = pow10(scale - precision)?;
        let (q, r) = (b / unit, (b % unit).abs());
        let up = high && r.checked_mul(2)? >= unit;
        Some(Decimal::new(if up { q + b.signum() } else { q }, precision))
    }

    /// `a * b`.
    pub fn mul(&self, o: &Self) -> Option<Self> {
        let mut d = Decimal::new(self.mantissa.checked_mul(o.mantissa)?, self.scale + o.scale);
        while d.scale > MAX_SCALE {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        Some(d)
    }

    /// `a / b` to [`DIVISION_SCALE`] digits (trailing zeros removed); `None` for division by zero.
    pub fn div(&self, o: &Self) -> Option<Self> {
        if o.mantissa == 0 {
            return None;
        }
        let s = self.scale.max(o.scale);
        let (a, b) = (self.rescale(s)?, o.rescale(s)?);
        let num = a.checked_mul(pow10(DIVISION_SCALE + 1)?)?;
        let q = num / b;
        let rounded = (q + q.signum() * 5) / 10;
        Some(Decimal::new(rounded, DIVISION_SCALE).normalized())
    }

    /// Truncated division (`div`); `None` for division by zero.
    pub fn div_trunc(&self, o: &Self) -> Option<Self> {
        let (a, b, _) = Self::aligned(self, o)?;
        a.checked_div(b).map(|q| Decimal::new(q, 0))
    }

    /// The remainder of truncated division (`mod`); `None` for division by zero.
    pub fn rem(&self, o: &Self) -> Option<Self> {
        let (a, b, s) = Self::aligned(self, o)?;
        a.checked_rem(b).map(|r| Decimal::new(r, s))
    }

    /// Whether there is no fractional part.
    pub fn is_integer(&self) -> bool {
        pow10(self.scale).is_some_and(|p| self.mantissa % p == 0)
    }

    /// The integer part (truncated), when it fits an i64.
    pub fn trunc_i64(&self) -> Option<i64> {
        i64::try_from(self.mantissa / pow10(self.scale)?).ok()
    }

    /// Rounded to `digits` after the point, half away from zero.
    pub fn round(&self, digits: u32) -> Option<Self> {
        if digits >= self.scale {
            return Some(Decimal::new(self.rescale(digits)?, digits));
        }
        let p = pow10(self.scale - digits)?;
        let q = self.mantissa / p;
        let r = self.mantissa % p;
        let q = if r.abs() * 2 >= p {
            q + self.mantissa.signum()
        } else {
            q
        };
        Some(Decimal::new(q, digits))
    }

    /// The largest integer not above.
    pub fn floor(&self) -> Option<Self> {
        let p = pow10(self.scale)?;
        Some(Decimal::new(self.mantissa.div_euclid(p), 0))
    }

    /// The smallest integer not below.
    pub fn ceiling(&self) -> Option<Self> {
        let p = pow10(self.scale)?;
        let f = self.mantissa.div_euclid(p);
        Some(Decimal::new(
            if self.mantissa.rem_euclid(p) == 0 {
                f
            } else {
                f + 1
            },
            0,
        ))
    }

    /// The absolute value.
    pub fn abs(&self) -> Self {
        Decimal::new(self.mantissa.abs(), self.scale)
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Numeric order (scale ignored: `1.0` equals `1`).
    pub fn compare(&self, o: &Self) -> Ordering {
        match Self::aligned(self, o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.to_f64().total_cmp(&o.to_f64()),
        }
    }
}

impl PartialEq for Decimal {
    fn eq(&self, o: &Self) -> bool {
        self.compare(o) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let s = self.scale as usize;
        if s == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (i, frac) = padded.split_at(padded.len() - s);
        write!(f, "{sign}{i}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn boundaries_follow_the_written_precision() {
        let lo = |v: &str, p| d(v).boundary(false, p).map(|x| x.to_string());
        let hi = |v: &str, p| d(v).boundary(true, p).map(|x| x.to_string());
        assert_eq!(lo("1.587", 8).as_deref(), Some("1.58650000"));
        assert_eq!(lo("1.587", 2).as_deref(), Some("1.58"));
        assert_eq!(lo("1.587", 0).as_deref(), Some("1"));
        assert_eq!(lo("-1.587", 2).as_deref(), Some("-1.59"));
        assert_eq!(lo("-1.587", 0).as_deref(), Some("-2"));
        assert_eq!(lo("120", 2).as_deref(), Some("119.50"));
        assert_eq!(lo("12.500", 4).as_deref(), Some("12.4995"));
        assert_eq!(lo("0.0034", 1).as_deref(), Some("0.0"));
        assert_eq!(hi("1.587", 2).as_deref(), Some("1.59"));
        assert_eq!(hi("-1.587", 6).as_deref(), Some("-1.586500"));
        assert_eq!(hi("1", 0).as_deref(), Some("2"));
        assert_eq!(hi("0.0034", 1).as_deref(), Some("0.0"));
        assert_eq!(hi("0", 2).as_deref(), Some("0.50"));
        assert_eq!(lo("0", 1).as_deref(), Some("-0.5"));
        assert_eq!(lo("1.587", 29), None);
    }

    #[test]
    fn parses_and_prints_with_scale() {
        assert_eq!(d("1.0").to_string(), "1.0");
        assert_eq!(d("-0.05").to_string(), "-0.05");
        assert_eq!(d("1.5e2").to_string(), "150");
        assert_eq!(Decimal::from_f64(185.25).unwrap().to_string(), "185.25");
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse("abc").is_none());
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(d("0.1").add(&d("0.2")).unwrap(), d("0.3"));
        assert_eq!(d("1").div(&d("3")).unwrap().to_string(), "0.33333333");
        assert_eq!(d("1").div(&d("2")).unwrap().to_string(), "0.5");
        assert_eq!(d("2.2").rem(&d("1.8")).unwrap().to_string(), "0.4");
        assert_eq!(d("2.2").div_trunc(&d("1.8")).unwrap().to_string(), "1");
        assert_eq!(d("3.14159").round(3).unwrap().to_string(), "3.142");
        assert_eq!(d("-1.5").round(0).unwrap().to_string(), "-2");
        assert_eq!(d("-1.5").floor().unwrap().to_string(), "-2");
        assert_eq!(d("-1.5").ceiling().unwrap().to_string(), "-1");
        assert!(d("1").div(&d("0")).is_none());
    }
}
