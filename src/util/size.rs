//! Byte sizes as people write them in pipeline definitions: `1048576`, `"64KB"`, `"128 MB"`,
//! `"1GiB"`. Decimal units (KB, MB, GB) are powers of 1000, binary units (KiB, MiB, GiB) powers
//! of 1024, as on disk-vendor labels and in Azure's documentation.

use std::fmt;

/// Why a size string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteSizeError(pub String);

impl fmt::Display for ByteSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ByteSizeError {}

/// Parses `"128MB"`, `"1.5 GiB"`, `"4096"` (bytes) into a byte count.
pub fn parse_byte_size(text: &str) -> Result<u64, ByteSizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000 * 1000,
        "gb" | "g" => 1000 * 1000 * 1000,
        "tb" | "t" => 1000 * 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(ByteSizeError(format!(
                "unknown size unit `{unit}` in `{text}`: use B, KB, MB, GB, KiB, MiB or GiB"
            )))
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| ByteSizeError(format!("`{text}` is not a size such as \"128MB\"")))?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(ByteSizeError(format!("`{text}` is out of range")));
    }
    Ok(bytes.round() as u64)
}

/// Formats a byte count for people: `512 B`, `1.5 MB`, `3.2 GB` (decimal units).
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("64KB"), Ok(64_000));
        assert_eq!(parse_byte_size("128 MB"), Ok(128_000_000));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("1.5mib"), Ok(1_572_864));
        assert!(parse_byte_size("12 parsecs").is_err());
        assert!(parse_byte_size("MB").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1_500_000), "1.5 MB");
        assert_eq!(format_bytes(3_200_000_000), "3.2 GB");
    }
}
