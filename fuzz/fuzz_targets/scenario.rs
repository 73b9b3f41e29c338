//! The scenario loader and the plan on any text: a plan or an error naming the file and a
//! line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdload::scenario::{parse, Source};

fuzz_target!(|data: &[u8]| {
    let src = Source {
        path: "fuzz.toml".into(),
        text: String::from_utf8_lossy(data).into_owned(),
    };
    match parse(&src) {
        Ok(scenario) => {
            let _ = sdload::plan::Plan::from_parts(&Default::default(), &scenario, &src);
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.toml:")),
    }
});
