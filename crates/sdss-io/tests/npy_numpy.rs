//! `.npy` interoperability with numpy both ways, on files written by `numpy.save`
//! (`fixtures/io/npy/`, made by `fixtures/io/make_fixtures.py`): we read exactly the values numpy
//! wrote, and what we write is byte-for-byte what numpy writes for the same array (so `np.load` reads it).

use std::path::{Path, PathBuf};

use ndarray::{Array, Array1, Array2, Array4, ArrayD, IxDyn};
use sdss_io::npy::{read_npy, read_npy_as, write_npy, NpyArray};
use sdss_io::read_image_stack_npy;

fn npy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/io/npy")
}

fn stack_f64() -> Array4<f64> {
    Array::from_shape_fn((2, 4, 5, 3), |(n, y, x, c)| {
        (((n * 4 + y) * 5 + x) * 3 + c) as f64 / 119.0
    })
}

fn stack_u8() -> Array4<u8> {
    Array::from_shape_fn((2, 4, 5, 3), |(n, y, x, c)| {
        ((((n * 4 + y) * 5 + x) * 3 + c) * 2) as u8
    })
}

fn matrix_f32() -> Array2<f32> {
    Array::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32 * 0.5 - 1.0)
}

fn labels_i32() -> Array1<i32> {
    Array::from_iter((0..7).map(|i| i - 3))
}

fn labels_i64() -> Array1<i64> {
    Array::from_iter((0..7).map(|i| i * (1i64 << 40) - 5))
}

#[test]
fn we_read_what_numpy_wrote() {
    let d = npy_dir();
    assert_eq!(
        read_npy_as::<f64>(d.join("stack_f64.npy")).unwrap(),
        stack_f64().into_dyn()
    );
    assert_eq!(
        read_npy_as::<u8>(d.join("stack_u8.npy")).unwrap(),
        stack_u8().into_dyn()
    );
    assert_eq!(
        read_npy_as::<f32>(d.join("matrix_f32.npy")).unwrap(),
        matrix_f32().into_dyn()
    );
    assert_eq!(
        read_npy_as::<i32>(d.join("labels_i32.npy")).unwrap(),
        labels_i32().into_dyn()
    );
    assert_eq!(
        read_npy_as::<i64>(d.join("labels_i64.npy")).unwrap(),
        labels_i64().into_dyn()
    );
    assert_eq!(
        read_npy(d.join("scalar_f64.npy")).unwrap(),
        NpyArray::F64(ArrayD::from_elem(IxDyn(&[]), 2.5))
    );
    assert_eq!(read_npy(d.join("empty_f32.npy")).unwrap().shape(), &[0, 3]);
    let fortran = Array::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    assert_eq!(
        read_npy_as::<f64>(d.join("fortran_f64.npy")).unwrap(),
        fortran.into_dyn()
    );
    let big = Array::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32 / 4.0);
    assert_eq!(
        read_npy_as::<f32>(d.join("big_endian_f4.npy")).unwrap(),
        big.into_dyn()
    );
}

#[test]
fn numpy_image_stacks_load_as_images() {
    let d = npy_dir();
    // float64 in [0, 1] like the original x.npy: taken as is.
    let f = read_image_stack_npy(d.join("stack_f64.npy")).unwrap();
    assert_eq!(f.images().shape(), &[2, 4, 5, 3]);
    assert_eq!(f.ids(), ["0000", "0001"]);
    assert!((f.images()[[1, 3, 4, 2]] - 1.0).abs() < 1e-7);
    // uint8: scaled by 1/255.
    let u = read_image_stack_npy(d.join("stack_u8.npy")).unwrap();
    assert!((u.images()[[0, 0, 1, 0]] - 6.0 / 255.0).abs() < 1e-7);
}

/// Writes `array` with our writer and compares the bytes with numpy's file.
fn assert_same_bytes<T: sdss_io::npy::NpyElement, D: ndarray::Dimension>(
    name: &str,
    array: &Array<T, D>,
) {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join(name);
    write_npy(&ours, &array.view()).unwrap();
    let numpy = std::fs::read(npy_dir().join(name)).unwrap();
    let ours = std::fs::read(&ours).unwrap();
    let header_end = |b: &[u8]| 10 + usize::from(u16::from_le_bytes([b[8], b[9]]));
    assert_eq!(
        String::from_utf8_lossy(&ours[..header_end(&ours)]),
        String::from_utf8_lossy(&numpy[..header_end(&numpy)]),
        "{name}: header differs from numpy's"
    );
    assert!(ours == numpy, "{name}: data differs from numpy's");
}

#[test]
fn what_we_write_is_byte_identical_to_numpy() {
    assert_same_bytes("stack_f64.npy", &stack_f64());
    assert_same_bytes("stack_u8.npy", &stack_u8());
    assert_same_bytes("matrix_f32.npy", &matrix_f32());
    assert_same_bytes("labels_i32.npy", &labels_i32());
    assert_same_bytes("labels_i64.npy", &labels_i64());
    assert_same_bytes("scalar_f64.npy", &ndarray::arr0(2.5f64));
    assert_same_bytes("empty_f32.npy", &Array2::<f32>::zeros((0, 3)));
}
