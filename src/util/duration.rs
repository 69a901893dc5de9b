//! Durations as people write them in pipeline definitions: `"500ms"`, `"10s"`, `"5m"`,
//! `"12h"`, or a bare number of seconds.

use std::time::Duration;

/// Parses `"500ms"`, `"10s"`, `"5m"`, `"12h"`, `"30"` (seconds). The error says what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let ms = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("`{other}` in `{text}` is not a time unit")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_others() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 30 "), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(
            parse_duration("3d"),
            Err("`d` in `3d` is not a time unit".to_string())
        );
        assert_eq!(
            parse_duration("soon"),
            Err("`soon` is not a duration".to_string())
        );
    }
}
