//! The payload of one commit log frame: a batch and its acknowledgements (`FORMAT.md`,
//! "Record payload"). This is also the batch decoder: a batch exists on disk only as a record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alluvium_fuzz::judge(alluvium::fuzzing::log_record(data));
});
