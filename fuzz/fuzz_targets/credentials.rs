//! The credentials reader on any bytes: credentials with a user name each, or an error naming
//! the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    match sdload::credentials::parse_csv(path, data) {
        Ok(creds) => assert!(creds.iter().all(|c| !c.username.is_empty())),
        Err(e) => assert!(e.to_string().starts_with("fuzz.csv")),
    }
});
