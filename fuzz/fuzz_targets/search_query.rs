#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phivault_fuzzing::search_query(data));
