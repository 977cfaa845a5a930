#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| faas_fuzz_targets::settle(data));
