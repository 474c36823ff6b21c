//! The payload of one manifest frame: a version edit (`FORMAT.md`, "Version edit").
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alluvium_fuzz::judge(alluvium::fuzzing::manifest_edit(data));
});
