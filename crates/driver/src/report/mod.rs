//! The report a run leaves in its output folder: plots, galleries, dendrograms and `index.html`; and the
//! plots `train` leaves (loss curves, predicted against true).

pub mod browse;
pub mod dendrogram;
pub mod draw;
pub mod gallery;
pub mod html;
pub mod map;
pub mod plots;
pub mod properties;
pub mod search;
pub mod train_plots;
