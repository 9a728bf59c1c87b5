#![no_main]
use lightbox::fuzzing::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lightbox::fuzzing::decode(Codec::JpegLs, data);
});
