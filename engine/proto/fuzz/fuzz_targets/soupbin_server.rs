#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petrel_proto::fuzzing::soupbin_server_stream(data));
