//! Durations as users type them (`30s`, `2m`, `1h`, `250ms`, `1m30s`).

use std::time::Duration;

/// Parses a human duration. A bare number is refused: `10` could mean seconds or
/// milliseconds, and guessing wrong silently is worse than asking for a unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (write e.g. 30s, 2m, 250ms)".into());
    }
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "`{text}` has no unit (write e.g. {text}s or {text}ms)"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 30s, 2m, 250ms"))
}

/// Short human form for reports: `30s`, `1m 30s`, `250ms`.
pub fn format(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn refuses_bare_numbers_and_garbage() {
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("").is_err());
        assert!(parse("fast").is_err());
    }
}
