//! The committed synthetic set (`fixtures/galaxies`, written by `cargo xtask gen-fixtures`) is what
//! the generator describes, and loads.

use std::path::Path;

use sdss_io::synthetic::{fixture_config, read_params_csv, sample_params, GalaxyClass, PARAMS_CSV};
use sdss_io::{load_image_folder, read_ids_csv, LoadOptions};

#[test]
fn committed_set_matches_the_generator_and_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/galaxies");
    let config = fixture_config();
    let params = read_params_csv(dir.join(PARAMS_CSV)).unwrap();
    assert_eq!(params.len(), config.count);
    for (i, p) in params.iter().enumerate() {
        let mut expected = sample_params(&config, i);
        // The CSV does not keep the star's colour.
        if let Some(s) = expected.star.as_mut() {
            s.g_r = 0.0;
        }
        assert_eq!(
            *p, expected,
            "row {i} differs: regenerate with `cargo xtask gen-fixtures`"
        );
    }
    for class in GalaxyClass::ALL {
        assert!(
            params.iter().filter(|p| p.class == class).count() >= 20,
            "{class}"
        );
    }
    let loaded = load_image_folder(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.stack.images().shape(), &[config.count, 80, 80, 3]);
    assert_eq!(
        loaded.stack.ids(),
        read_ids_csv(dir.join(PARAMS_CSV)).unwrap()
    );
}
