//! Feature matrices written a batch at a time and read back through a memory map: the file is
//! exactly what `write_npy` (and so numpy) writes, and bad files are typed errors naming the file.

use ndarray::{s, Array2};
use sdss_io::mapped::{MappedMatrix, NpyMatrixWriter};
use sdss_io::npy::write_npy;
use sdss_io::IoError;

fn matrix(n: usize, d: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| (i * d + j) as f32 * 0.5 - 3.0)
}

#[test]
fn a_file_written_in_batches_is_byte_identical_to_write_npy() {
    let dir = tempfile::tempdir().unwrap();
    let x = matrix(1000, 7);
    // Started for more rows than arrive (as when bad images are skipped): the header is
    // rewritten, and 1000 has fewer digits than 123456.
    let streamed = dir.path().join("streamed.npy");
    let mut w = NpyMatrixWriter::create(&streamed, 7, 123_456).unwrap();
    for batch in x.axis_chunks_iter(ndarray::Axis(0), 333) {
        w.append(batch).unwrap();
    }
    assert_eq!(w.rows(), 1000);
    assert!(!streamed.exists(), "the file appears only when finished");
    w.finish().unwrap();
    let whole = dir.path().join("whole.npy");
    write_npy(&whole, &x.view()).unwrap();
    assert_eq!(
        std::fs::read(&streamed).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    let mapped = MappedMatrix::open(&streamed).unwrap();
    assert_eq!((mapped.nrows(), mapped.ncols()), (1000, 7));
    assert_eq!(mapped.view(), x.view());
    // Blocks cover every row once, in order, and the pages handed back read again unchanged.
    let mut seen = Vec::new();
    mapped
        .for_each_block(64, |start, block| {
            assert_eq!(block, x.slice(s![start..start + block.nrows(), ..]));
            seen.push((start, block.nrows()));
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(seen.len(), 16);
    assert_eq!(seen.last(), Some(&(960, 40)));
    mapped.release_rows(0, 1000);
    assert_eq!(mapped.view(), x.view());
}

#[test]
fn a_transposed_view_is_written_in_logical_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npy");
    let x = matrix(5, 9);
    let mut w = NpyMatrixWriter::create(&path, 5, 9).unwrap();
    w.append(x.t()).unwrap();
    w.finish().unwrap();
    assert_eq!(MappedMatrix::open(&path).unwrap().view(), x.t());
}

#[test]
fn an_unfinished_writer_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.npy");
    let mut w = NpyMatrixWriter::create(&path, 3, 10).unwrap();
    w.append(matrix(4, 3).view()).unwrap();
    // Refused: the wrong width, and more rows than the file was started for.
    let err = w.append(matrix(2, 4).view()).unwrap_err();
    assert!(
        matches!(err, IoError::NpyShape { .. }) && err.to_string().contains("f.npy"),
        "{err}"
    );
    let err = w.append(matrix(7, 3).view()).unwrap_err();
    assert!(err.to_string().contains("at most 10"), "{err}");
    drop(w);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn files_that_cannot_be_mapped_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npy");
    let expect_err = |what: &str| {
        let err = MappedMatrix::open(&path).unwrap_err();
        assert!(err.to_string().contains("bad.npy"), "{what}: {err}");
        err
    };
    write_npy(&path, &Array2::<f64>::zeros((2, 2)).view()).unwrap();
    assert!(matches!(expect_err("f8"), IoError::NpyDtype { .. }));
    write_npy(&path, &ndarray::Array3::<f32>::zeros((2, 2, 2)).view()).unwrap();
    assert!(matches!(expect_err("3-D"), IoError::NpyShape { .. }));
    write_npy(&path, &matrix(10, 10).view()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(expect_err("truncated").to_string().contains("truncated"));
    let mut fortran = bytes.clone();
    let at = fortran.windows(5).position(|w| w == b"False").unwrap();
    fortran[at..at + 5].copy_from_slice(b"True ");
    std::fs::write(&path, &fortran).unwrap();
    assert!(expect_err("fortran").to_string().contains("Fortran"));
    std::fs::write(&path, b"\x93NUMPY").unwrap();
    expect_err("short");
    std::fs::write(&path, b"").unwrap();
    expect_err("empty");
    assert!(matches!(
        MappedMatrix::open(dir.path().join("missing.npy")),
        Err(IoError::Io { .. })
    ));
}
