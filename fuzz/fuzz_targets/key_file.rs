#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault_fuzzing::key_file(data));
