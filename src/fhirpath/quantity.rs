//! UCUM units as far as FHIRPath needs them: a unit string (`mg`, `cm.m`, `g/dL`, `m2`, `wk`,
//! calendar words like `days`) is reduced to a factor and powers of base units, so quantities in
//! different units can be compared, added, multiplied and divided. Calendar `year`/`month` are
//! not the same as UCUM `a`/`mo` (the spec leaves their comparison empty).

use super::decimal::Decimal;

/// A unit reduced to base units: `factor × Π base^power`, powers sorted by base name.
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    /// Multiply a value in the unit by this to get the value in base units.
    pub factor: Decimal,
    /// The base units and their powers.
    pub dims: Vec<(&'static str, i32)>,
}

fn d(s: &str) -> Decimal {
    Decimal::parse(s).unwrap_or(Decimal::from_int(1))
}

/// The UCUM code for a calendar word (`days` → `d`); years and months keep their word.
pub fn calendar_to_ucum(unit: &str) -> &str {
    match unit {
        "week" | "weeks" => "wk",
        "day" | "days" => "d",
        "hour" | "hours" => "h",
        "minute" | "minutes" => "min",
        "second" | "seconds" => "s",
        "millisecond" | "milliseconds" => "ms",
        "years" => "year",
        "months" => "month",
        u => u,
    }
}

fn atom(a: &str) -> Option<(Decimal, &'static str, i32)> {
    Some(match a {
        "1" => (d("1"), "1", 0),
        "m" => (d("1"), "m", 1),
        "g" => (d("1"), "g", 1),
        "s" => (d("1"), "s", 1),
        "mol" => (d("1"), "mol", 1),
        "L" | "l" => (d("0.001"), "m", 3),
        "min" => (d("60"), "s", 1),
        "h" => (d("3600"), "s", 1),
        "d" => (d("86400"), "s", 1),
        "wk" => (d("604800"), "s", 1),
        "mo" => (d("2629800"), "s", 1),
        "a" => (d("31557600"), "s", 1),
        "year" => (d("1"), "year", 1),
        "month" => (d("1"), "month", 1),
        "[in_i]" => (d("0.0254"), "m", 1),
        "[ft_i]" => (d("0.3048"), "m", 1),
        "[lb_av]" => (d("453.59237"), "g", 1),
        "[oz_av]" => (d("28.349523125"), "g", 1),
        "%" => (d("0.01"), "1", 0),
        _ => return None,
    })
}

fn prefixed(a: &str) -> Option<(Decimal, &'static str, i32)> {
    if let Some(x) = atom(a) {
        return Some(x);
    }
    let mut chars = a.chars();
    let p = chars.next()?;
    let f = match p {
        'k' => "1000",
        'h' => "100",
        'd' => "0.1",
        'c' => "0.01",
        'm' => "0.001",
        'u' => "0.000001",
        'n' => "0.000000001",
        _ => return None,
    };
    let (g, base, pow) = atom(chars.as_str())?;
    if base == "year" || base == "month" {
        return None;
    }
    Some((d(f).mul(&g)?, base, pow))
}

/// Reduces a unit string; `None` for units this table does not know.
pub fn canonical(unit: &str) -> Option<Canonical> {
    let unit = calendar_to_ucum(unit);
    let mut factor = d("1");
    let mut dims: Vec<(&'static str, i32)> = Vec::new();
    let mut sign = 1;
    let mut rest = unit;
    loop {
        let end = rest.find(['.', '/']).unwrap_or(rest.len());
        let term = &rest[..end];
        let digits = term.len()
            - term
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
                .len();
        let (name, exp) = if digits > 0 && digits < term.len() {
            (
                &term[..term.len() - digits],
                term[term.len() - digits..].parse::<i32>().ok()?,
            )
        } else {
            (term, 1)
        };
        let (f, base, pow) = prefixed(name)?;
        let e = exp * sign;
        for _ in 0..e.abs() {
            factor = if e > 0 {
                factor.mul(&f)?
            } else {
                factor.div(&f)?
            };
        }
        if pow != 0 {
            match dims.iter_mut().find(|(b, _)| *b == base) {
                Some(x) => x.1 += pow * e,
                None => dims.push((base, pow * e)),
            }
        }
        if end == rest.len() {
            break;
        }
        sign = if rest.as_bytes()[end] == b'/' { -1 } else { 1 };
        rest = &rest[end + 1..];
    }
    dims.retain(|(_, p)| *p != 0);
    dims.sort();
    Some(Canonical { factor, dims })
}

/// `value` in `from` expressed in `to`, when both are known and of the same dimension.
pub fn convert(value: &Decimal, from: &str, to: &str) -> Option<Decimal> {
    if calendar_to_ucum(from) == calendar_to_ucum(to) {
        return Some(*value);
    }
    let (a, b) = (canonical(from)?, canonical(to)?);
    if a.dims != b.dims {
        return None;
    }
    value.mul(&a.factor)?.div(&b.factor)
}

/// Whether a calendar year/month is being matched with a UCUM `a`/`mo` (an empty comparison).
pub fn calendar_mismatch(a: &str, b: &str) -> bool {
    let cal = |u: &str| matches!(calendar_to_ucum(u), "year" | "month");
    let ucum = |u: &str| matches!(u, "a" | "mo");
    (cal(a) && ucum(b)) || (ucum(a) && cal(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_units() {
        let v = Decimal::parse("4").unwrap();
        assert_eq!(convert(&v, "g", "mg").unwrap().to_string(), "4000");
        assert_eq!(
            convert(&Decimal::parse("7").unwrap(), "days", "wk")
                .unwrap()
                .to_string(),
            "1"
        );
        assert_eq!(
            canonical("cm.m").unwrap(),
            canonical("dm2").unwrap().clone().tap_factor("0.01")
        );
        assert!(convert(&v, "cm", "s").is_none());
        assert!(calendar_mismatch("year", "a"));
    }

    impl Canonical {
        fn tap_factor(mut self, f: &str) -> Self {
            self.factor = Decimal::parse(f).unwrap();
            self
        }
    }
}
