//! Exporters: `Report` → bytes, one file per format. Writing files happens once, here.

pub mod capacity_text;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod text;

use std::path::Path;

/// Writes a file atomically (a temporary file beside it, then a rename), so that a reader
/// never sees half a report and a failed write leaves the previous file in place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
