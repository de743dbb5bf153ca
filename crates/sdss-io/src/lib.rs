//! Reading, preprocessing and writing galaxy images and arrays.
