//! PNG plots people look at rather than read: the LR finder's loss against learning rate
//! (log axis, suggestions marked), a run's training and validation loss, and its
//! learning-rate schedule. plotters draws into an RGB buffer with an embedded DejaVu
//! font, so nothing depends on the system's fonts; `image` encodes the PNG.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use vista_format::{EpochMetrics, GanStep, StepRecord, Suggestions};

use crate::error::{Error, Result};

const W: u32 = 800;
const H: u32 = 500;

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font parses; failure would be a broken dependency.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// A drawing error, naming the PNG being drawn.
pub fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn render(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    render_png(path, (W, H), draw)
}

/// The most pixels [`render_png`] draws.
pub const MAX_PICTURE_PIXELS: u64 = 64 << 20;

/// Draws with `draw` on a white `width` x `height` canvas (the embedded DejaVu font is
/// registered as "sans-serif") and writes the PNG atomically.
pub fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    // A picture sized from its data (a confusion matrix of a thousand classes) could
    // overflow the buffer's size or take gigabytes: 64 megapixels is the most drawn.
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PICTURE_PIXELS {
        return Err(plot_err(
            path,
            format!("a {width}x{height} picture is above the {MAX_PICTURE_PIXELS} pixels drawn"),
        ));
    }
    register_fonts();
    let mut buf = vec![0u8; pixels as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    let img =
        image::RgbImage::from_raw(width, height, buf).expect("buffer of width*height*3 bytes");
    write_png(path, &img)
}

/// Encodes `img` as PNG and writes it atomically.
pub fn write_png(path: &Path, img: &image::RgbImage) -> Result<()> {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| plot_err(path, e))?;
    Ok(vista_format::write_atomic(path, &png)?)
}

/// A chart with a title and room for the axes' labels.
fn framed<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    y_label_width: u32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(y_label_width);
    builder
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        None
    } else if lo == hi {
        Some((lo - 0.5, hi + 0.5))
    } else {
        Some((lo, hi))
    }
}

/// The LR finder's smoothed loss against the learning rate, fastai's suggestions marked.
pub fn lr_find_plot(path: &Path, lrs: &[f64], losses: &[f64], s: &Suggestions) -> Result<()> {
    // The whole sweep is drawn; the suggestions come from fastai's trimmed curve.
    let points: Vec<(f64, f64)> = lrs
        .iter()
        .zip(losses)
        .filter(|(l, v)| **l > 0.0 && v.is_finite())
        .map(|(&l, &v)| (l, v))
        .collect();
    let (Some((x0, x1)), Some((y0, y1))) = (
        finite_range(points.iter().map(|p| p.0)),
        finite_range(points.iter().map(|p| p.1)),
    ) else {
        return Err(plot_err(path, "the sweep recorded no finite loss"));
    };
    // Cap the view at 3x the lowest loss so the divergence does not flatten the valley.
    let y1 = y1.min(y0 + 3.0 * (y0.abs().max(1e-3)));
    render(path, |root| {
        let mut chart = framed(root, "LR finder", 60)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("learning rate (log scale)")
            .y_desc("smoothed loss")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, y)| (x, y.min(y1))),
                &BLUE,
            ))
            .map_err(|e| plot_err(path, e))?;
        let marks = [
            ("valley", s.valley, RED),
            ("steep", s.steep, GREEN),
            ("minimum/10", s.minimum, MAGENTA),
            ("slide", s.slide, CYAN),
        ];
        for (name, lr, color) in marks {
            let Some(lr) = lr else { continue };
            // The mark sits on the curve at the nearest recorded rate.
            let y = points
                .iter()
                .min_by(|a, b| {
                    (a.0.ln() - lr.ln())
                        .abs()
                        .total_cmp(&(b.0.ln() - lr.ln()).abs())
                })
                .map_or(y0, |p| p.1.min(y1));
            chart
                .draw_series(std::iter::once(Circle::new((lr, y), 6, color.filled())))
                .map_err(|e| plot_err(path, e))?
                .label(format!("{name}: {lr:.2e}"))
                .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        Ok(())
    })
}

/// Training loss per step (smoothed as fastai's recorder does) and validation loss per
/// epoch, against the step.
pub fn loss_plot(path: &Path, steps: &[StepRecord], epochs: &[EpochMetrics]) -> Result<()> {
    if steps.is_empty() {
        return Err(plot_err(path, "no training step was recorded"));
    }
    let mut avg = 0.0;
    let smooth: Vec<(f64, f64)> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            avg = 0.98 * avg + 0.02 * f64::from(s.loss);
            (i as f64, avg / (1.0 - 0.98f64.powi(i as i32 + 1)))
        })
        .collect();
    // The validation point of epoch e sits at the last step of that epoch.
    let valid: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|m| {
            let last = steps.iter().rposition(|s| s.epoch == m.epoch)?;
            Some((last as f64, f64::from(m.valid_loss)))
        })
        .collect();
    let (_, y1) = finite_range(smooth.iter().chain(&valid).map(|p| p.1))
        .ok_or_else(|| plot_err(path, "no finite loss"))?;
    let x1 = (steps.len().max(2) - 1) as f64;
    render(path, |root| {
        let mut chart = framed(root, "Loss", 60)
            .build_cartesian_2d(0.0..x1, 0.0..y1 * 1.05)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(smooth.iter().copied(), &BLUE))
            .map_err(|e| plot_err(path, e))?
            .label("train (smoothed)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(valid.iter().copied(), &RED))
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(valid.iter().map(|&p| Circle::new(p, 4, RED.filled())))
            .map_err(|e| plot_err(path, e))?
            .label("valid")
            .legend(|(x, y)| Circle::new((x, y), 4, RED.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        Ok(())
    })
}

/// The learning rate of every step.
pub fn lr_plot(path: &Path, steps: &[StepRecord]) -> Result<()> {
    let (_, y1) = finite_range(steps.iter().map(|s| s.lr))
        .ok_or_else(|| plot_err(path, "no training step was recorded"))?;
    let x1 = (steps.len().max(2) - 1) as f64;
    render(path, |root| {
        let mut chart = framed(root, "Learning rate", 70)
            .build_cartesian_2d(0.0..x1, 0.0..y1 * 1.05)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("learning rate")
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                steps.iter().enumerate().map(|(i, s)| (i as f64, s.lr)),
                &BLUE,
            ))
            .map_err(|e| plot_err(path, e))?;
        Ok(())
    })
}

/// A GAN run's curves against the generator step, smoothed as the loss plot is: the
/// critic's Wasserstein estimate (falling as the generator improves) and the
/// generator's loss.
pub fn gan_plot(path: &Path, steps: &[GanStep]) -> Result<()> {
    let smooth = |f: &dyn Fn(&GanStep) -> f32| -> Vec<(f64, f64)> {
        let mut avg = 0.0;
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                avg = 0.98 * avg + 0.02 * f64::from(f(s));
                (i as f64, avg / (1.0 - 0.98f64.powi(i as i32 + 1)))
            })
            .collect()
    };
    let w = smooth(&|s| s.wasserstein);
    let g = smooth(&|s| s.gen_loss);
    let (y0, y1) = finite_range(w.iter().chain(&g).map(|p| p.1))
        .ok_or_else(|| plot_err(path, "no finite GAN loss was recorded"))?;
    let pad = (y1 - y0) * 0.05;
    let x1 = (steps.len().max(2) - 1) as f64;
    render(path, |root| {
        let mut chart = framed(root, "WGAN", 80)
            .build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("generator step")
            .y_desc("value (smoothed)")
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (points, colour, label) in [
            (&w, BLUE, "Wasserstein estimate (critic)"),
            (&g, RED, "generator loss"),
        ] {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), &colour))
                .map_err(|e| plot_err(path, e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_find_plot_is_a_png_with_the_curve_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lr_find.png");
        let lrs: Vec<f64> = (0..100)
            .map(|i| 1e-7 * 10f64.powf(i as f64 * 8.0 / 100.0))
            .collect();
        let losses: Vec<f64> = lrs
            .iter()
            .map(|l| {
                2.3 - 1.5 * (-(l.log10() + 2.5).powi(2) / 4.0).exp()
                    + if *l > 1.0 { 5.0 } else { 0.0 }
            })
            .collect();
        let s = vista_schedule::suggest(&lrs, &losses, 100);
        lr_find_plot(&path, &lrs, &losses, &s).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W, H));
        let blue = img.pixels().filter(|p| p.0 == [0, 0, 255]).count();
        let red = img.pixels().filter(|p| p.0 == [255, 0, 0]).count();
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
        assert!(blue > 150, "the loss curve is drawn ({blue} blue pixels)");
        assert!(
            red > 50,
            "the valley suggestion is marked ({red} red pixels)"
        );
        assert!(dark > 2000, "axes and text are drawn ({dark} dark pixels)");
    }

    #[test]
    fn loss_and_lr_plots_render() {
        let dir = tempfile::tempdir().unwrap();
        let steps: Vec<StepRecord> = (0..50)
            .map(|i| StepRecord {
                step: i,
                epoch: i / 25 + 1,
                lr: vista_schedule::Schedule::one_cycle(1e-2).lr(i, 50),
                loss: 2.0 / (1.0 + i as f32 / 10.0),
            })
            .collect();
        let epochs: Vec<EpochMetrics> = (1..=2)
            .map(|e| EpochMetrics {
                phase: "28px".into(),
                epoch: e,
                size: 28,
                lr: 1e-3,
                train_loss: 1.0,
                valid_loss: 0.9 / e as f32,
                accuracy: 0.8,
                error_rate: 0.2,
                images_per_sec: 1.0,
                wall_s: 1.0,
            })
            .collect();
        loss_plot(&dir.path().join("loss.png"), &steps, &epochs).unwrap();
        lr_plot(&dir.path().join("lr.png"), &steps).unwrap();
        for name in ["loss.png", "lr.png"] {
            let img = image::open(dir.path().join(name)).unwrap().to_rgb8();
            let blue = img.pixels().filter(|p| p.0 == [0, 0, 255]).count();
            assert!(blue > 100, "{name}: {blue} blue pixels");
        }
        assert!(lr_plot(&dir.path().join("none.png"), &[]).is_err());
    }
}
