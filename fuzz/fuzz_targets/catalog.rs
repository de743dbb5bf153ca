//! The `fetch` catalogue CSV (objid, ra, dec, petroR50_r, with aliases and quoting).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The catalogue is read as UTF-8 text; invalid UTF-8 is refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(galaxies) = sdss_fetch::parse_catalog(text, std::path::Path::new("fuzz.csv")) {
        for galaxy in &galaxies {
            let _ =
                sdss_fetch::cutout_url(sdss_fetch::DR17_GETJPEG, galaxy, sdss_fetch::DEFAULT_SIZE);
            let _ = galaxy.file_name();
        }
    }
});
