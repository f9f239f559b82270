#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vhdprep_fuzz::vdi_and_chains::vhd_differencing(data));
