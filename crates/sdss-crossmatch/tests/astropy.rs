//! Sky matching against astropy's `search_around_sky` on a committed fixture (made by
//! `tests/fixtures/make_fixtures.py`): known pairs, near-ties, pairs either side of the radius,
//! across ra = 0/360 and near both poles. Every galaxy's candidate set must be astropy's, and each
//! separation within 1e-6 arcsec of astropy's.

use std::collections::BTreeMap;
use std::path::Path;

use sdss_crossmatch::{match_sky, SkyPosition};

const RADIUS_ARCSEC: f64 = 2.0;

fn rows(name: &str) -> Vec<Vec<f64>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn positions(name: &str) -> Vec<Option<SkyPosition>> {
    rows(name)
        .iter()
        .map(|r| Some(SkyPosition::new(r[0], r[1]).unwrap()))
        .collect()
}

#[test]
fn candidates_and_separations_match_astropy() {
    let galaxies = positions("galaxies.csv");
    let catalogue = positions("catalogue.csv");
    let mut expected: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for r in rows("pairs.csv") {
        expected
            .entry(r[0] as usize)
            .or_default()
            .push((r[1] as usize, r[2]));
    }
    let m = match_sky(&galaxies, &catalogue, RADIUS_ARCSEC).unwrap();

    let mut found: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for (g, row) in m.matched.iter().enumerate() {
        if let Some(r) = row {
            found.insert(g, vec![(*r, m.separation_arcsec[g])]);
        }
    }
    for a in &m.ambiguous {
        let mut c: Vec<(usize, f64)> = a
            .candidates
            .iter()
            .copied()
            .zip(a.separations_arcsec.iter().copied())
            .collect();
        c.sort_by_key(|p| p.0);
        found.insert(a.galaxy, c);
    }
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "galaxies with a candidate"
    );
    for (g, want) in &expected {
        let got = &found[g];
        assert_eq!(
            got.iter().map(|p| p.0).collect::<Vec<_>>(),
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            "galaxy {g}"
        );
        for (a, b) in got.iter().zip(want) {
            assert!(
                (a.1 - b.1).abs() < 1e-6,
                "galaxy {g}: {} vs astropy {}",
                a.1,
                b.1
            );
        }
    }
    // Galaxies with two or more candidates are ambiguous (the 10 planted near-ties, and galaxies
    // crowded near the poles, where the fixture's galaxies lie within arcseconds of each other).
    let crowded = expected.values().filter(|c| c.len() > 1).count();
    assert!(crowded >= 10, "{crowded}");
    assert_eq!(m.ambiguous.len(), crowded);
    assert_eq!(
        m.n_matched() + m.ambiguous.len() + m.unmatched_galaxies.len(),
        galaxies.len()
    );
}
