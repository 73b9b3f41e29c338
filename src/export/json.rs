//! The JSON report: serde_json of `Report`, the stable machine contract.

use crate::report::Report;

pub fn render(report: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(report).expect("a report always serializes");
    out.push(b'\n');
    out
}

/// Reads a saved report back: the schema is checked first, so that another JSON file is told
/// apart from a damaged report. The error says what is wrong, without the file's name.
pub fn parse(bytes: &[u8]) -> Result<Report, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(crate::report::SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "schema `{other}` is not {} (a report from another tool or version)",
                crate::report::SCHEMA
            ))
        }
        None => {
            return Err(format!(
                "not an sdload report (no \"schema\": \"{}\")",
                crate::report::SCHEMA
            ))
        }
    }
    serde_json::from_value(value).map_err(|e| format!("a damaged report: {e}"))
}

/// Reads a report file; the error names the file.
pub fn read(path: &std::path::Path) -> Result<Report, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
