//! Exit codes (DESIGN.md section 5): CI tells "the service is slow" from "the tool broke".

pub const OK: u8 = 0;
pub const THRESHOLD_FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const TOOL_FAILURE: u8 = 4;
pub const INTERRUPTED: u8 = 130;
