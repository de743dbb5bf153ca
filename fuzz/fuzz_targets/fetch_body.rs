//! The body a cutout server returns, checked before it is written as a galaxy image.
//!
//! The first byte picks the content type the server claimed, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("image/jpeg"),
    None,
    Some("text/html; charset=utf-8"),
    Some("application/octet-stream"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let _ = sdss_fetch::check_jpeg(body, content_type, 424, 424);
});
