//! Bad input is a typed error naming what is wrong, never a panic.

use ndarray::{array, Array2};
use sdss_neighbors::{
    duplicates, ExactIndex, IdIndex, IvfIndex, IvfParams, Metric, NeighborError, NeighborIndex,
};

fn small() -> Array2<f32> {
    array![[0.0f32, 1.0], [1.0, 1.0], [2.0, 0.5], [3.0, 3.0]]
}

#[test]
fn k_larger_than_the_set() {
    let x = small();
    let exact = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
    let ivf = IvfIndex::new(x.view(), Metric::Euclidean).unwrap();
    for index in [&exact as &dyn NeighborIndex, &ivf] {
        // A query may ask for every row; the graph and a row's own query exclude the row itself.
        assert_eq!(index.query(x.row(0), 4).unwrap().len(), 4);
        assert_eq!(
            index.query(x.row(0), 5),
            Err(NeighborError::TooManyNeighbors {
                k: 5,
                available: 4,
                what: "galaxies in the index"
            })
        );
        assert_eq!(index.query_row(0, 3).unwrap().len(), 3);
        assert!(matches!(
            index.query_row(0, 4),
            Err(NeighborError::TooManyNeighbors {
                k: 4,
                available: 3,
                ..
            })
        ));
        assert!(matches!(
            index.knn_graph(4),
            Err(NeighborError::TooManyNeighbors {
                k: 4,
                available: 3,
                ..
            })
        ));
        assert_eq!(index.knn_graph(0), Err(NeighborError::ZeroNeighbors));
        assert_eq!(
            index.query_row(9, 1),
            Err(NeighborError::RowOutOfRange { row: 9, len: 4 })
        );
        let msg = index.knn_graph(4).unwrap_err().to_string();
        assert!(msg.contains("k = 4") && msg.contains("only 3"), "{msg}");
    }
    assert!(exact.kneighbors(x.view(), 5).is_err());
}

#[test]
fn unknown_duplicate_and_mismatched_ids() {
    let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    let index = IdIndex::new(ids.clone(), 4).unwrap();
    assert_eq!(index.row("c").unwrap(), 2);
    assert_eq!(index.id(2), Some("c"));
    let err = index.row("zz").unwrap_err();
    assert_eq!(err, NeighborError::UnknownId("zz".into()));
    assert_eq!(err.to_string(), "unknown galaxy id `zz`");
    assert_eq!(
        IdIndex::new(ids.clone(), 5).unwrap_err(),
        NeighborError::LengthMismatch { ids: 4, rows: 5 }
    );
    let twice: Vec<String> = ["a", "b", "a"].map(String::from).to_vec();
    assert_eq!(
        IdIndex::new(twice, 3).unwrap_err(),
        NeighborError::DuplicateId {
            id: "a".into(),
            first: 0,
            second: 2
        }
    );
}

#[test]
fn nan_empty_and_wrong_dimensions() {
    let mut x = small();
    x[[2, 1]] = f32::NAN;
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let err = ExactIndex::new(x.view(), metric).unwrap_err();
        assert!(matches!(
            err,
            NeighborError::NonFinite { row: 2, col: 1, .. }
        ));
        assert!(err.to_string().contains("row 2, column 1"), "{err}");
        assert!(IvfIndex::new(x.view(), metric).is_err());
    }
    assert!(matches!(
        duplicates(x.view(), 0.0),
        Err(NeighborError::NonFinite { row: 2, col: 1, .. })
    ));
    let empty = Array2::<f32>::zeros((0, 3));
    assert!(matches!(
        ExactIndex::new(empty.view(), Metric::Euclidean),
        Err(NeighborError::Empty { .. })
    ));
    assert!(IvfIndex::new(empty.view(), Metric::Euclidean).is_err());
    assert!(duplicates(empty.view(), 0.0).is_err());
    let no_features = Array2::<f32>::zeros((3, 0));
    assert!(ExactIndex::new(no_features.view(), Metric::Euclidean).is_err());

    let x = small();
    let index = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
    assert_eq!(
        index.query(array![1.0f32, 2.0, 3.0].view(), 1),
        Err(NeighborError::DimensionMismatch {
            expected: 2,
            found: 3
        })
    );
    assert!(matches!(
        index.query(array![f32::INFINITY, 0.0].view(), 1),
        Err(NeighborError::NonFinite { what: "query", .. })
    ));
}

#[test]
fn bad_parameters() {
    let x = small();
    assert!(duplicates(x.view(), -0.5).is_err());
    assert!(duplicates(x.view(), f32::INFINITY).is_err());
    let index = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
    assert!(index.pairs_within(f32::NAN).is_err());
    for params in [
        IvfParams {
            n_lists: Some(0),
            ..IvfParams::default()
        },
        IvfParams {
            n_probe: Some(0),
            ..IvfParams::default()
        },
        IvfParams {
            target_recall: 1.5,
            ..IvfParams::default()
        },
    ] {
        assert!(matches!(
            IvfIndex::with_params(x.view(), Metric::Euclidean, &params),
            Err(NeighborError::InvalidParameter { .. })
        ));
    }
    assert!("manhattan".parse::<Metric>().is_err());
    assert_eq!("Cosine".parse::<Metric>().unwrap(), Metric::Cosine);
}

#[test]
fn a_single_row_can_be_queried_but_has_no_graph() {
    let x = array![[1.0f32, 2.0]];
    let index = ExactIndex::new(x.view(), Metric::Euclidean).unwrap();
    assert_eq!(index.query(x.row(0), 1).unwrap()[0].index, 0);
    assert!(index.knn_graph(1).is_err());
    let ivf = IvfIndex::new(x.view(), Metric::Cosine).unwrap();
    assert_eq!(ivf.query(x.row(0), 1).unwrap()[0].distance, 0.0);
    assert!(ivf.query_row(0, 1).is_err());
}
