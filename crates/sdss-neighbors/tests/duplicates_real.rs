//! The known pixel-identical galaxies of the real sample (../shared/README.md): 65 groups covering 144
//! galaxies, among them 515/3227 and 521/649/3234.

use std::path::Path;

use sdss_neighbors::duplicates;

#[test]
#[ignore = "needs ../shared"]
fn finds_the_65_known_groups_of_identical_images() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sdss-6437/images");
    let loaded = sdss_io::load_image_folder(&dir, &sdss_io::LoadOptions::default()).unwrap();
    let ids = loaded.stack.ids().to_vec();
    assert_eq!(ids.len(), 6437);
    let x = loaded.stack.pixel_matrix();
    let groups = duplicates(x, 0.0).unwrap();
    assert_eq!(groups.len(), 65);
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 144);
    let named: Vec<Vec<&str>> = groups
        .iter()
        .map(|g| g.iter().map(|&i| ids[i].as_str()).collect())
        .collect();
    assert!(named.contains(&vec!["0515", "3227"]), "{named:?}");
    assert!(named.contains(&vec!["0521", "0649", "3234"]), "{named:?}");
    // Members really are identical, pixel for pixel.
    for g in &groups {
        for &i in &g[1..] {
            assert_eq!(x.row(g[0]), x.row(i));
        }
    }
}
