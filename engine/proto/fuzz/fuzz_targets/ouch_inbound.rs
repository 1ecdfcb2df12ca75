#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petrel_proto::fuzzing::ouch_inbound(data));
