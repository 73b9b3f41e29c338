//! The JSON report: serde_json of `Report`, the stable machine contract.

use crate::report::Report;

pub fn render(report: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(report).expect("a report always serializes");
    out.push(b'\n');
    out
}
