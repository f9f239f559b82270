#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vhdprep_fuzz::binary::shim_chain(data));
