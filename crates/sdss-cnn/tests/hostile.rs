//! Crafted weight files: every one is refused with an error naming the file and what it claims, before
//! anything of the claimed size is allocated. The committed fuzz regression inputs (fuzz/regressions/)
//! run here too, on stable, without the fuzzer.

use std::path::{Path, PathBuf};

use sdss_cnn::keras::read_keras_bytes;
use sdss_cnn::weights::read_safetensors_bytes;
use sdss_cnn::{CnnConfig, CnnError};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cnn")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces the `count` occurrences of `from` in `bytes` with `to` (same length).
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8], count: usize) {
    assert_eq!(from.len(), to.len());
    let hits: Vec<usize> = (0..=bytes.len() - from.len())
        .filter(|&i| &bytes[i..i + from.len()] == from)
        .collect();
    assert_eq!(hits.len(), count, "pattern found {} times", hits.len());
    for at in hits {
        bytes[at..at + to.len()].copy_from_slice(to);
    }
}

fn u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn an_hdf5_dataset_with_an_absurd_shape_is_refused_before_it_is_read() {
    // The first kernel of the small network is (6, 6, 3, 16); its dataspace (dimensions and maximum
    // dimensions) now claims 2^40 filters.
    let mut bytes = fixture("small_tfkeras2.h5");
    patch(
        &mut bytes,
        &u64s(&[6, 6, 3, 16]),
        &u64s(&[6, 6, 3, 1 << 40]),
        2,
    );
    let err = read_keras_bytes(bytes, Path::new("crafted.h5")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("crafted.h5"), "{text}");
    assert!(
        text.contains("claims shape") && text.contains("1099511627776"),
        "{text}"
    );
}

#[test]
fn an_hdf5_file_too_short_for_the_weights_it_declares_is_refused() {
    // Cut to its first tenth: the architecture (24,009 parameters, 96 KB of weights) still parses,
    // but cannot be in 14 KB.
    let bytes = fixture("small_tfkeras2.h5");
    let cut = bytes[..bytes.len() / 10].to_vec();
    let err = read_keras_bytes(cut, Path::new("cut.h5")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cut.h5"), "{text}");
}

#[test]
fn a_zip_member_declaring_gigabytes_is_refused_before_it_is_inflated() {
    // Central directory entry of config.json: its uncompressed size (offset 24) now says ~4 GB.
    let mut bytes = fixture("small_keras3.keras");
    let name = b"config.json";
    let entry = (0..bytes.len() - 46)
        .find(|&i| {
            bytes[i..i + 4] == *b"PK\x01\x02"
                && usize::from(u16::from_le_bytes([bytes[i + 28], bytes[i + 29]])) == name.len()
                && bytes[i + 46..i + 46 + name.len()] == *name
        })
        .expect("config.json in the central directory");
    bytes[entry + 24..entry + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let err = read_keras_bytes(bytes, Path::new("crafted.keras")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("crafted.keras"), "{text}");
    assert!(
        text.contains("config.json") && text.contains("16777216 bytes"),
        "{text}"
    );
}

#[test]
fn an_architecture_of_absurd_size_is_an_invalid_config_not_an_overflow() {
    for (height, dense) in [
        (80, 1usize << 40),
        (1 << 40, 128),
        (usize::MAX / 2, usize::MAX / 2),
    ] {
        let config = CnnConfig {
            input_height: height,
            dense_units: dense,
            ..CnnConfig::default()
        };
        match config.parameter_count() {
            Err(CnnError::InvalidConfig(text)) => {
                assert!(
                    text.contains("parameters") || text.contains("input"),
                    "{text}"
                )
            }
            other => panic!("{height} x {dense}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn a_safetensors_header_claiming_terabytes_is_refused() {
    // An 8-byte header length of 2^50, then nothing.
    let mut bytes = (1u64 << 50).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let err = read_safetensors_bytes(&bytes, Path::new("crafted.safetensors")).unwrap_err();
    assert!(err.to_string().contains("crafted.safetensors"), "{err}");
}

/// Every input the fuzzers found a problem with, fed to the same entry point as its fuzz target: each
/// must give `Ok` or a typed error, never a panic.
#[test]
fn fuzz_regression_inputs_give_errors_not_panics() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut ran = 0;
    for target in ["keras_h5", "keras_zip", "safetensors"] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            match target {
                "safetensors" => {
                    let _ = read_safetensors_bytes(&data, &path);
                }
                _ => {
                    let _ = read_keras_bytes(data, &path);
                }
            }
            ran += 1;
        }
    }
    eprintln!("{ran} regression inputs");
}
