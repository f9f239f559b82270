#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vhdprep_fuzz::packages::rpm_sqlite_wal(data));
