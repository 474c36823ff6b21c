//! A whole segment file: open (footer, properties, index, filter), read every data block,
//! look keys up, iterate both ways. The first byte of the input, when odd, asks for every
//! checksum to be repaired first, so that mutations reach the decoders behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((repair, mut file)) = alluvium_fuzz::mode_and_file(data) else {
        return;
    };
    if repair {
        alluvium::fuzzing::fix_segment_checksums(&mut file);
    }
    let path = alluvium_fuzz::scratch_file("000001.seg", &file);
    alluvium_fuzz::judge(alluvium::fuzzing::segment(&path));
});
