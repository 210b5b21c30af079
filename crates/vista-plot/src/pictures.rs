//! Pictures people look at rather than read: the confusion matrix as a heat map and the
//! top losses as a captioned grid of the images themselves.

use std::path::Path;

use image::RgbImage;
use image::imageops::FilterType;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use vista_format::Confusion;

use crate::curves::{plot_err, render_png};
use crate::error::Result;

/// The confusion matrix as a heat map: actual classes down, predicted across, each cell
/// shaded by its share of the actual class and labelled with its count.
pub fn confusion_png(path: &Path, confusion: &Confusion, classes: &[String]) -> Result<()> {
    let k = confusion.num_classes;
    let cell = if k <= 10 { 56 } else { 36 };
    let label = 150;
    let (w, h) = (label + k as u32 * cell + 30, label + k as u32 * cell + 50);
    render_png(path, (w, h), |root| {
        let err = |e| plot_err(path, e);
        root.draw(&Text::new(
            "Confusion matrix (rows: actual, columns: predicted)",
            (10, 10),
            ("sans-serif", 18),
        ))
        .map_err(err)?;
        let (x0, y0) = (label as i32, (label + 20) as i32);
        let c = cell as i32;
        for (a, class) in classes.iter().enumerate().take(k) {
            let row: u64 = (0..k).map(|p| confusion.get(a, p)).sum();
            for p in 0..k {
                let n = confusion.get(a, p);
                let share = if row > 0 { n as f64 / row as f64 } else { 0.0 };
                // White to a deep blue; the diagonal in blue, errors in red, so mistakes
                // stand out even when small.
                let shade = |full: u8| (255.0 - share * (255.0 - f64::from(full))) as u8;
                let colour = if a == p {
                    RGBColor(shade(33), shade(102), shade(172))
                } else {
                    RGBColor(shade(178), shade(24), shade(43))
                };
                let (x, y) = (x0 + p as i32 * c, y0 + a as i32 * c);
                root.draw(&Rectangle::new(
                    [(x, y), (x + c - 1, y + c - 1)],
                    colour.filled(),
                ))
                .map_err(err)?;
                let text_colour = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    n.to_string(),
                    (x + c / 2, y + c / 2),
                    ("sans-serif", 14)
                        .into_font()
                        .color(&text_colour)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))
                .map_err(err)?;
            }
            root.draw(&Text::new(
                class.clone(),
                (x0 - 8, y0 + a as i32 * c + c / 2),
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                class.clone(),
                (x0 + a as i32 * c + c / 2, y0 - 8),
                ("sans-serif", 14)
                    .into_font()
                    .transform(FontTransform::Rotate270)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// One captioned picture of a grid.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The picture, scaled to the grid's tile size when drawn.
    pub image: RgbImage,
    /// Up to three lines under the picture.
    pub caption: Vec<String>,
}

/// Pictures in a grid, each scaled to `side` pixels (nearest-neighbour when enlarged,
/// so small images stay sharp) with its caption below.
pub fn tiles_png(path: &Path, title: &str, tiles: &[Tile], cols: usize, side: u32) -> Result<()> {
    let cols = cols.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let caption_h = 54;
    let (tw, th) = (side + 16, side + caption_h);
    let (w, h) = (cols as u32 * tw + 10, rows as u32 * th + 40);
    render_png(path, (w, h), |root| {
        let err = |e| plot_err(path, e);
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 18)))
            .map_err(err)?;
        for (i, tile) in tiles.iter().enumerate() {
            let (cx, cy) = (
                (i % cols) as i32 * tw as i32 + 13,
                (i / cols) as i32 * th as i32 + 40,
            );
            let img = &tile.image;
            let scale = side as f32 / img.width().max(img.height()) as f32;
            let (sw, sh) = (
                ((img.width() as f32 * scale).round() as u32).max(1),
                ((img.height() as f32 * scale).round() as u32).max(1),
            );
            let filter = if scale >= 1.0 {
                FilterType::Nearest
            } else {
                FilterType::Triangle
            };
            let shown = image::imageops::resize(img, sw, sh, filter);
            for (x, y, p) in shown.enumerate_pixels() {
                root.draw_pixel((cx + x as i32, cy + y as i32), &RGBColor(p[0], p[1], p[2]))
                    .map_err(err)?;
            }
            for (l, line) in tile.caption.iter().take(3).enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (cx, cy + side as i32 + 3 + 16 * l as i32),
                    ("sans-serif", 13),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}
