//! The uncompressed contents of a data or index block (`FORMAT.md`, "Data block"): parse,
//! decode every entry, seek; a block that decodes sorted must rebuild to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alluvium_fuzz::judge(alluvium::fuzzing::block(data));
    alluvium::fuzzing::filter(data);
});
