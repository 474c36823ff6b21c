//! A whole commit log file, read as recovery reads it and as the change feed reads it; the
//! two must agree. The first byte of the input, when odd, asks for every checksum to be
//! repaired first, so that mutations reach the record decoder behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((repair, mut file)) = alluvium_fuzz::mode_and_file(data) else {
        return;
    };
    if repair {
        alluvium::fuzzing::fix_framed_checksums(&mut file);
    }
    let path = alluvium_fuzz::scratch_file("000001.log", &file);
    alluvium_fuzz::judge(alluvium::fuzzing::log_file(&path));
});
