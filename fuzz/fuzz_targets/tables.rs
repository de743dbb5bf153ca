//! Catalogue tables for `run --catalog`: FITS binary tables, ECSV and CSV, as sdss-tables reads
//! them. The first byte picks the format, so one corpus exercises all three readers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let path = std::path::Path::new("fuzz.table");
    let table = match kind % 3 {
        0 => sdss_tables::parse_fits(rest, path, None),
        1 => match std::str::from_utf8(rest) {
            Ok(text) => sdss_tables::parse_ecsv(text, path),
            Err(_) => return,
        },
        _ => match std::str::from_utf8(rest) {
            Ok(text) => sdss_tables::parse_csv(text, path),
            Err(_) => return,
        },
    };
    // Whatever was read must write back out.
    if let Ok(table) = table {
        let _ = sdss_tables::to_fits_bytes(&table);
        for (_, column) in table.columns() {
            for row in 0..table.nrows().min(64) {
                let _ = column.text(row);
            }
        }
    }
});
