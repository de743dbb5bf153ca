//! Reading, preprocessing and writing galaxy images and arrays.
//!
//! Every other crate of sdss-clustering reads and writes through this one:
//! - [`folder`]: a folder of JPEG/PNG/FITS cutouts → `(N, H, W, 3)` values in [0, 1] with galaxy ids (file
//!   stems), decoded in parallel, whole ([`load_image_folder`]) or streamed in batches
//!   ([`image_batches`]); bad files are all listed in one error, or skipped and reported;
//! - [`preprocess`]: one image, decoded and resized exactly as the original Python project did with
//!   Pillow (`Image.open(p).resize((80, 80))`, then `/ 255`);
//! - [`fits`]: FITS cutouts (`.fits`, `.fits.fz`) of three bands: a cube or three image HDUs, read
//!   as float channels with a per-band asinh normalisation, shown as a Lupton composite;
//! - [`lupton`]: the Lupton et al. (2004) asinh colour composite, as astropy's `make_lupton_rgb`;
//! - [`stack`]: image stacks in `.npy` with their ids CSV;
//! - [`npy`]: `.npy` arrays that numpy can load, and numpy's files;
//! - [`mapped`]: feature matrices written a batch at a time and read back through a memory map;
//! - [`atomic`]: atomic output files;
//! - [`synthetic`]: seeded SDSS-like synthetic galaxies with known parameters.
//!
//! ```
//! use sdss_io::{load_image_folder, LoadOptions};
//! use sdss_io::synthetic::{write_galaxy_set, SyntheticConfig};
//! # let dir = tempfile::tempdir().unwrap();
//! // Six synthetic 424×424 JPEG galaxies, then loaded back at the default 80×80.
//! let config = SyntheticConfig { count: 6, seed: 7, ..SyntheticConfig::default() };
//! write_galaxy_set(dir.path(), &config)?;
//! let loaded = load_image_folder(dir.path(), &LoadOptions::default())?;
//! assert_eq!(loaded.stack.images().shape(), &[6, 80, 80, 3]);
//! assert_eq!(loaded.stack.ids()[0], "gal0000");
//! assert!(loaded.skipped.is_empty());
//! # Ok::<(), sdss_io::IoError>(())
//! ```

pub mod atomic;
pub mod error;
pub mod fits;
pub mod folder;
pub mod lupton;
pub mod mapped;
pub mod npy;
pub mod preprocess;
pub mod stack;
pub mod synthetic;

pub use error::{BadImage, ImageProblem, IoError, Result};
pub use folder::{
    image_batches, list_images, load_image_folder, ImageBatch, ImageBatches, LoadOptions,
    LoadedImages,
};
pub use preprocess::{
    load_display_rgb, load_image, CentreCrop, Preprocess, DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_SIZE,
};
pub use stack::{
    read_ids_csv, read_image_stack_npy, write_ids_csv, write_image_stack_npy, ImageStack,
    StackDtype,
};
