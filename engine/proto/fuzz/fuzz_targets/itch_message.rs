#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petrel_proto::fuzzing::itch_message(data));
