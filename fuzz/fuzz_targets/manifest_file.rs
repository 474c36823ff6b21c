//! A whole manifest, replayed as open replays it. The first byte of the input, when odd, asks
//! for every checksum to be repaired first, so that mutations reach the edit decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((repair, mut file)) = alluvium_fuzz::mode_and_file(data) else {
        return;
    };
    if repair {
        alluvium::fuzzing::fix_framed_checksums(&mut file);
    }
    let path = alluvium_fuzz::scratch_file("MANIFEST-000001", &file);
    alluvium_fuzz::judge(alluvium::fuzzing::manifest_file(&path));
});
