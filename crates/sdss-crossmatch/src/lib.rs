//! Joining galaxies to a catalogue, by id or by position on the sky.
//!
//! An astronomer's catalogue (MaNGA Pipe3D, the NASA-Sloan Atlas, a Galaxy Zoo table) rarely lists
//! exactly the galaxies whose images were clustered: some galaxies are missing from it, it has rows
//! for galaxies that were not imaged, and an id may appear twice. The original project joined with a
//! pandas merge that silently dropped misses and, for repeated ids, kept whichever row came first.
//! Here every galaxy ends up in exactly one of three lists, and so does every catalogue row:
//!
//! * **matched**: one galaxy, one catalogue row;
//! * **unmatched**: nothing to pair with (or, on the sky, no position);
//! * **ambiguous**: more than one candidate. An ambiguous galaxy is *not* joined: choosing the first
//!   row would make the result depend on the catalogue's order, and choosing the nearest of two
//!   objects within the radius is a guess. The candidates are listed so the user can decide.
//!
//! A join that matches nothing is an error ([`CrossMatchError::NothingMatched`]): it almost always
//! means the wrong id column or a catalogue of other galaxies.
//!
//! # By id
//!
//! Ids are compared as exact text. SDSS `objid` values are 64-bit integers (up to about 1.2 × 10¹⁸,
//! beyond the 2⁵³ a double holds exactly), so callers pass integer columns as decimal text, never
//! through a float.
//!
//! ```
//! use sdss_crossmatch::match_ids;
//!
//! let galaxies = ["1237648720693755918", "1237648720693756000", "8485-1901"];
//! let catalogue = [Some("8485-1901"), Some("1237648720693755918"), None, Some("7443-12703")];
//! let m = match_ids(&galaxies, &catalogue).unwrap();
//! assert_eq!(m.matched, vec![Some(1), None, Some(0)]);
//! assert_eq!(m.unmatched_galaxies, vec![1]);
//! assert_eq!(m.unmatched_catalog, vec![2, 3]);
//! ```
//!
//! # By sky position
//!
//! A galaxy matches the catalogue rows whose angular separation from it is at most the radius. The
//! separation is computed with the Vincenty formula (as astropy's `angular_separation`), which is
//! accurate from sub-milliarcsecond to antipodal distances; the search scans a declination band of
//! the sorted catalogue, so right ascension wrapping at 0/360° and the poles need no special case.
//!
//! ```
//! use sdss_crossmatch::{match_sky, SkyPosition};
//!
//! let galaxies = [Some(SkyPosition::new(359.9999, 10.0).unwrap())];
//! let catalogue = [Some(SkyPosition::new(0.0001, 10.0).unwrap())];
//! let m = match_sky(&galaxies, &catalogue, 1.0).unwrap();
//! assert_eq!(m.matched, vec![Some(0)]);
//! assert!((m.separation_arcsec[0] - 0.709).abs() < 1e-3); // 0.72″ of RA at dec 10°
//! ```

use std::collections::HashMap;

/// Why a join could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CrossMatchError {
    /// Not a single galaxy was matched.
    #[error(
        "the join matched none of the {galaxies} galaxies to any of the {catalog_rows} catalogue rows{hint}"
    )]
    NothingMatched {
        /// Galaxies offered.
        galaxies: usize,
        /// Catalogue rows offered.
        catalog_rows: usize,
        /// A hint on the likely cause (the id column, the radius), empty when there is none.
        hint: String,
    },
    /// The match radius is not a positive, finite number of arcseconds.
    #[error("match radius must be a positive number of arcseconds, got {0}")]
    InvalidRadius(f64),
    /// A position outside ra ∈ [0, 360], dec ∈ [−90, 90], or not finite.
    #[error("invalid sky position ra = {ra}, dec = {dec}: ra must be in [0, 360] and dec in [-90, 90] degrees")]
    InvalidPosition {
        /// Right ascension, degrees.
        ra: f64,
        /// Declination, degrees.
        dec: f64,
    },
}

/// An equatorial position (ICRS/J2000), in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkyPosition {
    ra: f64,
    dec: f64,
}

impl SkyPosition {
    /// A position from right ascension in [0, 360] and declination in [−90, 90], degrees.
    pub fn new(ra: f64, dec: f64) -> Result<Self, CrossMatchError> {
        if !(ra.is_finite()
            && dec.is_finite()
            && (0.0..=360.0).contains(&ra)
            && (-90.0..=90.0).contains(&dec))
        {
            return Err(CrossMatchError::InvalidPosition { ra, dec });
        }
        Ok(Self { ra, dec })
    }

    /// Right ascension, degrees.
    pub fn ra(&self) -> f64 {
        self.ra
    }

    /// Declination, degrees.
    pub fn dec(&self) -> f64 {
        self.dec
    }

    /// Angular separation from `other`, in arcseconds (Vincenty formula).
    pub fn separation_arcsec(&self, other: &SkyPosition) -> f64 {
        angular_separation_deg(self.ra, self.dec, other.ra, other.dec) * 3600.0
    }
}

/// Great-circle distance in degrees between two positions given in degrees: the Vincenty formula
/// used by astropy (`astropy.coordinates.angle_utilities.angular_separation`), well conditioned at
/// every separation.
pub fn angular_separation_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (sdlon, cdlon) = (ra2 - ra1).to_radians().sin_cos();
    let (slat1, clat1) = dec1.to_radians().sin_cos();
    let (slat2, clat2) = dec2.to_radians().sin_cos();
    let num1 = clat2 * sdlon;
    let num2 = clat1 * slat2 - slat1 * clat2 * cdlon;
    let denominator = slat1 * slat2 + clat1 * clat2 * cdlon;
    num1.hypot(num2).atan2(denominator).to_degrees()
}

/// A galaxy with more than one candidate catalogue row; it is left unjoined.
#[derive(Debug, Clone, PartialEq)]
pub struct Ambiguity {
    /// The galaxy (row of the galaxies given).
    pub galaxy: usize,
    /// The candidate catalogue rows, nearest first on the sky, in catalogue order for ids.
    pub candidates: Vec<usize>,
    /// Separations of the candidates in arcseconds (sky matches only; empty for ids).
    pub separations_arcsec: Vec<f64>,
}

/// The outcome of a join: every galaxy and every catalogue row accounted for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossMatch {
    /// For each galaxy, the catalogue row joined to it.
    pub matched: Vec<Option<usize>>,
    /// For each galaxy, the separation from its catalogue row in arcseconds (sky matches; NaN where
    /// unjoined). Empty for id joins.
    pub separation_arcsec: Vec<f64>,
    /// Galaxies with no candidate (ascending).
    pub unmatched_galaxies: Vec<usize>,
    /// Galaxies with more than one candidate, left unjoined (ascending by galaxy).
    pub ambiguous: Vec<Ambiguity>,
    /// Catalogue rows joined to no galaxy and not a candidate of an ambiguous one (ascending),
    /// including rows with no id or no position.
    pub unmatched_catalog: Vec<usize>,
    /// Catalogue rows joined to more than one galaxy (sky matches only: two images of one object).
    pub shared_catalog: Vec<usize>,
}

impl CrossMatch {
    /// Number of galaxies joined to a catalogue row.
    pub fn n_matched(&self) -> usize {
        self.matched.iter().filter(|m| m.is_some()).count()
    }

    fn finish(mut self, n_catalog: usize, hint: &str) -> Result<Self, CrossMatchError> {
        let mut uses = vec![0usize; n_catalog];
        for &row in self.matched.iter().flatten() {
            uses[row] += 1;
        }
        for a in &self.ambiguous {
            for &row in &a.candidates {
                uses[row] = uses[row].max(1);
            }
        }
        self.unmatched_catalog = (0..n_catalog).filter(|&r| uses[r] == 0).collect();
        self.shared_catalog = (0..n_catalog)
            .filter(|&r| {
                self.matched
                    .iter()
                    .filter(|&&m| m == Some(r))
                    .take(2)
                    .count()
                    > 1
            })
            .collect();
        if self.n_matched() == 0 {
            return Err(CrossMatchError::NothingMatched {
                galaxies: self.matched.len(),
                catalog_rows: n_catalog,
                hint: hint.to_owned(),
            });
        }
        Ok(self)
    }
}

/// Joins galaxies to catalogue rows by exact id text.
///
/// `catalog_ids[r]` is `None` for a row without an id. A galaxy whose id appears in more than one
/// row is ambiguous and left unjoined.
pub fn match_ids<G: AsRef<str>, C: AsRef<str>>(
    galaxy_ids: &[G],
    catalog_ids: &[Option<C>],
) -> Result<CrossMatch, CrossMatchError> {
    let mut rows: HashMap<&str, Vec<usize>> = HashMap::with_capacity(catalog_ids.len());
    for (r, id) in catalog_ids.iter().enumerate() {
        if let Some(id) = id {
            rows.entry(id.as_ref()).or_default().push(r);
        }
    }
    let mut out = CrossMatch {
        matched: vec![None; galaxy_ids.len()],
        ..CrossMatch::default()
    };
    for (g, id) in galaxy_ids.iter().enumerate() {
        match rows.get(id.as_ref()).map(Vec::as_slice) {
            None | Some([]) => out.unmatched_galaxies.push(g),
            Some([r]) => out.matched[g] = Some(*r),
            Some(candidates) => out.ambiguous.push(Ambiguity {
                galaxy: g,
                candidates: candidates.to_vec(),
                separations_arcsec: Vec::new(),
            }),
        }
    }
    out.finish(
        catalog_ids.len(),
        "; are the galaxy ids (image file names) in the id column given?",
    )
}

/// Joins galaxies to the catalogue rows within `radius_arcsec` of them on the sky.
///
/// A galaxy without a position (`None`) or with no row within the radius is unmatched; one with two
/// or more rows within the radius is ambiguous and left unjoined. A catalogue row may be joined to
/// more than one galaxy (two cutouts of one object); such rows are listed in
/// [`CrossMatch::shared_catalog`].
pub fn match_sky(
    galaxies: &[Option<SkyPosition>],
    catalog: &[Option<SkyPosition>],
    radius_arcsec: f64,
) -> Result<CrossMatch, CrossMatchError> {
    if !(radius_arcsec.is_finite() && radius_arcsec > 0.0) {
        return Err(CrossMatchError::InvalidRadius(radius_arcsec));
    }
    // Catalogue rows with a position, sorted by declination: a galaxy's candidates lie in the band
    // dec ± radius, found by binary search, whatever their right ascension.
    let mut by_dec: Vec<(f64, usize)> = catalog
        .iter()
        .enumerate()
        .filter_map(|(r, p)| p.map(|p| (p.dec, r)))
        .collect();
    by_dec.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let radius_deg = radius_arcsec / 3600.0;
    let mut out = CrossMatch {
        matched: vec![None; galaxies.len()],
        separation_arcsec: vec![f64::NAN; galaxies.len()],
        ..CrossMatch::default()
    };
    for (g, p) in galaxies.iter().enumerate() {
        let Some(p) = p else {
            out.unmatched_galaxies.push(g);
            continue;
        };
        let lo = by_dec.partition_point(|&(d, _)| d < p.dec - radius_deg);
        let mut candidates: Vec<(f64, usize)> = by_dec[lo..]
            .iter()
            .take_while(|&&(d, _)| d <= p.dec + radius_deg)
            .filter_map(|&(_, r)| {
                let c = catalog[r]?;
                let sep = p.separation_arcsec(&c);
                (sep <= radius_arcsec).then_some((sep, r))
            })
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        match candidates.as_slice() {
            [] => out.unmatched_galaxies.push(g),
            [(sep, r)] => {
                out.matched[g] = Some(*r);
                out.separation_arcsec[g] = *sep;
            }
            many => out.ambiguous.push(Ambiguity {
                galaxy: g,
                candidates: many.iter().map(|c| c.1).collect(),
                separations_arcsec: many.iter().map(|c| c.0).collect(),
            }),
        }
    }
    let hint = format!(
        "; is the match radius ({radius_arcsec}″) large enough, and are both positions in degrees?"
    );
    out.finish(catalog.len(), &hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(ra: f64, dec: f64) -> Option<SkyPosition> {
        Some(SkyPosition::new(ra, dec).unwrap())
    }

    #[test]
    fn ids_with_duplicates_are_ambiguous_not_first_wins() {
        let m = match_ids(&["a", "b", "c"], &[Some("b"), Some("a"), Some("b"), None]).unwrap();
        assert_eq!(m.matched, vec![Some(1), None, None]);
        assert_eq!(m.unmatched_galaxies, vec![2]);
        assert_eq!(m.ambiguous.len(), 1);
        assert_eq!(m.ambiguous[0].galaxy, 1);
        assert_eq!(m.ambiguous[0].candidates, vec![0, 2]);
        assert_eq!(m.unmatched_catalog, vec![3]);
    }

    #[test]
    fn ids_are_exact_text() {
        // Neighbouring 64-bit objids differ only beyond a double's precision.
        let m = match_ids(
            &["1237648720693755918"],
            &[Some("1237648720693755919"), Some("1237648720693755918")],
        )
        .unwrap();
        assert_eq!(m.matched, vec![Some(1)]);
        let err = match_ids(&["a"], &[Some("A"), Some(" a")]).unwrap_err();
        assert!(matches!(
            err,
            CrossMatchError::NothingMatched {
                galaxies: 1,
                catalog_rows: 2,
                ..
            }
        ));
    }

    #[test]
    fn separation_agrees_with_closed_forms() {
        assert!((angular_separation_deg(0.0, 0.0, 90.0, 0.0) - 90.0).abs() < 1e-12);
        assert!((angular_separation_deg(10.0, 90.0, 200.0, 90.0)).abs() < 1e-12);
        assert!((angular_separation_deg(0.0, -90.0, 0.0, 90.0) - 180.0).abs() < 1e-12);
        // One arcsecond of declination, and RA shrinking by cos(dec).
        let one = SkyPosition::new(150.0, 30.0).unwrap();
        let two = SkyPosition::new(150.0, 30.0 + 1.0 / 3600.0).unwrap();
        assert!((one.separation_arcsec(&two) - 1.0).abs() < 1e-9);
        let three = SkyPosition::new(150.0 + 1.0 / 3600.0, 60.0).unwrap();
        let four = SkyPosition::new(150.0, 60.0).unwrap();
        assert!((three.separation_arcsec(&four) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn sky_matches_across_ra_zero_and_at_the_poles() {
        let galaxies = [
            pos(359.99995, 0.0),
            pos(123.0, 89.99999),
            pos(10.0, -89.9999),
            pos(50.0, 50.0),
        ];
        let catalogue = [
            pos(0.00005, 0.0),
            pos(303.0, 89.99999),
            pos(190.0, -89.9999),
            pos(50.0, 51.0),
        ];
        let m = match_sky(&galaxies, &catalogue, 1.0).unwrap();
        assert_eq!(m.matched, vec![Some(0), Some(1), Some(2), None]);
        assert!(
            (m.separation_arcsec[0] - 0.36).abs() < 1e-6,
            "{}",
            m.separation_arcsec[0]
        );
        // Two points 0.036″ from the north pole on opposite meridians are 0.072″ apart.
        assert!(
            (m.separation_arcsec[1] - 0.072).abs() < 1e-4,
            "{}",
            m.separation_arcsec[1]
        );
        assert!(
            (m.separation_arcsec[2] - 0.72).abs() < 1e-4,
            "{}",
            m.separation_arcsec[2]
        );
        assert_eq!(m.unmatched_galaxies, vec![3]);
        assert_eq!(m.unmatched_catalog, vec![3]);
    }

    #[test]
    fn sky_near_ties_are_ambiguous_and_listed_nearest_first() {
        let galaxies = [pos(180.0, 0.0), pos(181.0, 0.0), None];
        let catalogue = [
            pos(180.0, 1.0 / 3600.0),
            pos(180.0, -0.9 / 3600.0),
            pos(181.0, 0.5 / 3600.0),
            None,
        ];
        let m = match_sky(&galaxies, &catalogue, 1.5).unwrap();
        assert_eq!(m.matched, vec![None, Some(2), None]);
        assert_eq!(m.ambiguous.len(), 1);
        assert_eq!(m.ambiguous[0].candidates, vec![1, 0]);
        assert!((m.ambiguous[0].separations_arcsec[0] - 0.9).abs() < 1e-9);
        assert_eq!(m.unmatched_galaxies, vec![2]);
        assert_eq!(m.unmatched_catalog, vec![3]);
    }

    #[test]
    fn a_row_shared_by_two_cutouts_is_listed() {
        let galaxies = [pos(20.0, 20.0), pos(20.0, 20.0001)];
        let m = match_sky(&galaxies, &[pos(20.0, 20.00005)], 1.0).unwrap();
        assert_eq!(m.matched, vec![Some(0), Some(0)]);
        assert_eq!(m.shared_catalog, vec![0]);
    }

    #[test]
    fn bad_radius_and_positions_are_errors() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                match_sky(&[], &[], r),
                Err(CrossMatchError::InvalidRadius(_))
            ));
        }
        for (ra, dec) in [(-0.1, 0.0), (360.1, 0.0), (0.0, 90.5), (f64::NAN, 0.0)] {
            assert!(SkyPosition::new(ra, dec).is_err());
        }
        let err = match_sky(&[pos(1.0, 1.0)], &[pos(2.0, 2.0)], 1.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("match radius (1″)"), "{err}");
    }
}
