//! vista-plot: the pictures people look at rather than read, as PNG files written
//! atomically. plotters draws into an RGB buffer with an embedded DejaVu font, so
//! nothing depends on the system's fonts; `image` encodes the PNG. No burn.
//!
//! - Curves ([`loss_plot`], [`lr_plot`], [`lr_find_plot`], [`gan_plot`]) from the records
//!   of `vista-format` ([`vista_format::EpochMetrics`], [`vista_format::StepRecord`], ...).
//! - Pictures: [`confusion_png`] (the confusion matrix as a heat map) and [`tiles_png`]
//!   (captioned image grids, for top losses and flagged images).
//! - [`render_png`] for any other drawing.

#![warn(missing_docs)]

mod curves;
mod error;
mod pictures;

pub use curves::{
    MAX_PICTURE_PIXELS, gan_plot, loss_plot, lr_find_plot, lr_plot, plot_err, render_png, write_png,
};
pub use error::{Error, Result};
pub use pictures::{Tile, confusion_png, tiles_png};
