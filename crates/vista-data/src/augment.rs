//! fastai-style data augmentation on the CPU, in one resampling pass per image.
//!
//! The default set is fastai's `aug_transforms()` (fastai `vision/augment.py`):
//! horizontal flip (p 0.5), rotation up to 10°, zoom 1–1.1 and perspective warp 0.2,
//! each drawn with p_affine 0.75; brightness and contrast 0.2 in logit space, each with
//! p_lighting 0.75; reflection padding and bilinear sampling with aligned corners, as
//! `F.grid_sample(..., padding_mode="reflection", align_corners=True)` does. A random
//! resized crop (torchvision's algorithm) picks the source region first; with the default
//! `min_scale` of 1 it keeps the whole image, like `aug_transforms(min_scale=1.)`.
//!
//! Every random choice is drawn from the RNG passed in, so one seed gives one output.
//! Crop, zoom, rotation, flip and warp are composed into one coordinate map from output
//! pixels to source pixels, so each output pixel is interpolated once.

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Augmentation settings; `Default` is fastai's `aug_transforms()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip.
    pub flip_p: f32,
    /// Largest rotation, in degrees, either way.
    pub max_rotate: f32,
    /// Smallest zoom factor drawn; 1 keeps the image's scale, above 1 zooms in.
    pub min_zoom: f32,
    /// Largest zoom factor drawn (fastai `max_zoom`); at least `min_zoom`.
    pub max_zoom: f32,
    /// Perspective warp magnitude (fastai `max_warp`).
    pub max_warp: f32,
    /// Probability of each of rotation, zoom and warp.
    pub p_affine: f32,
    /// Brightness and contrast magnitude (fastai `max_lighting`).
    pub max_lighting: f32,
    /// Probability of each of brightness and contrast.
    pub p_lighting: f32,
    /// Random-resized-crop: smallest fraction of the image area kept.
    pub min_scale: f32,
    /// Random-resized-crop: range of the crop's aspect ratio (width / height).
    pub ratio: (f32, f32),
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            flip_p: 0.5,
            max_rotate: 10.0,
            min_zoom: 1.0,
            max_zoom: 1.1,
            max_warp: 0.2,
            p_affine: 0.75,
            max_lighting: 0.2,
            p_lighting: 0.75,
            min_scale: 1.0,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all: every probability is zero.
    pub fn none() -> Self {
        Self {
            flip_p: 0.0,
            p_affine: 0.0,
            p_lighting: 0.0,
            ..Self::default()
        }
    }

    /// Checks ranges, so a typo in a config fails early and says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let prob = |name: &str, p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{name} = {p} is not a probability"))
            }
        };
        prob("flip_p", self.flip_p)?;
        prob("p_affine", self.p_affine)?;
        prob("p_lighting", self.p_lighting)?;
        if !(self.min_zoom > 0.0 && self.min_zoom <= self.max_zoom) {
            return Err(format!(
                "zoom range {}..{} is empty or not positive",
                self.min_zoom, self.max_zoom
            ));
        }
        if !(0.0..1.0).contains(&self.max_lighting) {
            return Err(format!(
                "max_lighting = {} must be in [0, 1)",
                self.max_lighting
            ));
        }
        if !(self.min_scale > 0.0 && self.min_scale <= 1.0) {
            return Err(format!("min_scale = {} must be in (0, 1]", self.min_scale));
        }
        if !(self.ratio.0 > 0.0 && self.ratio.0 <= self.ratio.1) {
            return Err(format!(
                "ratio range {:?} is empty or not positive",
                self.ratio
            ));
        }
        if !(0.0..1.0).contains(&self.max_warp) {
            return Err(format!("max_warp = {} must be in [0, 1)", self.max_warp));
        }
        Ok(())
    }
}

/// A region of the source image, in pixel-centre coordinates: it covers pixel centres
/// `x ..= x + w - 1` and `y ..= y + h - 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRect {
    /// Left edge: the first column of pixel centres covered, in source pixels.
    pub x: f32,
    /// Top edge: the first row of pixel centres covered, in source pixels.
    pub y: f32,
    /// Width of the region, in source pixels (at least 1).
    pub w: f32,
    /// Height of the region, in source pixels (at least 1).
    pub h: f32,
}

impl CropRect {
    /// True when the region lies inside a `width` x `height` image.
    pub fn is_within(&self, width: u32, height: u32) -> bool {
        self.x >= 0.0
            && self.y >= 0.0
            && self.w >= 1.0
            && self.h >= 1.0
            && self.x + self.w <= width as f32 + 1e-3
            && self.y + self.h <= height as f32 + 1e-3
    }
}

/// Every random choice of one augmentation, drawn up front.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    /// The source region the output is taken from (the random resized crop).
    pub crop: CropRect,
    /// Whether the image is mirrored left to right.
    pub flip: bool,
    /// Rotation in degrees (0 when not drawn).
    pub rotate: f32,
    /// Zoom factor (1 when not drawn) and its centre, as fractions of the width and height.
    pub zoom: f32,
    /// Centre of the zoom, as fractions (0..1) of the width and height; `(0.5, 0.5)`
    /// when not drawn.
    pub zoom_centre: (f32, f32),
    /// Perspective warp magnitudes along x and y (0 when not drawn).
    pub warp: (f32, f32),
    /// Brightness target in (0, 1), 0.5 is neutral; `None` when not drawn.
    pub brightness: Option<f32>,
    /// Contrast factor in logit space, 1 is neutral; `None` when not drawn.
    pub contrast: Option<f32>,
}

impl AugmentParams {
    /// The identity: the whole image (cropped to an allowed aspect ratio), nothing else.
    pub fn identity(width: u32, height: u32, ratio: (f32, f32)) -> Self {
        Self {
            crop: centre_crop(width, height, ratio),
            flip: false,
            rotate: 0.0,
            zoom: 1.0,
            zoom_centre: (0.5, 0.5),
            warp: (0.0, 0.0),
            brightness: None,
            contrast: None,
        }
    }
}

/// The largest centred region whose aspect ratio lies within `ratio`.
pub fn centre_crop(width: u32, height: u32, ratio: (f32, f32)) -> CropRect {
    let (w, h) = (width as f32, height as f32);
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w / ratio.0).min(h))
    } else if in_ratio > ratio.1 {
        ((h * ratio.1).min(w), h)
    } else {
        (w, h)
    };
    CropRect {
        x: (w - cw) / 2.0,
        y: (h - ch) / 2.0,
        w: cw,
        h: ch,
    }
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect
/// ratio, then the centre crop.
pub fn random_resized_crop<R: Rng + ?Sized>(
    width: u32,
    height: u32,
    min_scale: f32,
    ratio: (f32, f32),
    rng: &mut R,
) -> CropRect {
    let (w, h) = (width as f32, height as f32);
    if min_scale < 1.0 {
        let area = w * h;
        let (lo, hi) = (ratio.0.ln(), ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.random_range(min_scale..=1.0);
            let aspect = if hi > lo {
                rng.random_range(lo..hi).exp()
            } else {
                ratio.0
            };
            let cw = (target * aspect).sqrt().round();
            let ch = (target / aspect).sqrt().round();
            if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
                let x = if w > cw {
                    rng.random_range(0.0..=(w - cw)).floor()
                } else {
                    0.0
                };
                let y = if h > ch {
                    rng.random_range(0.0..=(h - ch)).floor()
                } else {
                    0.0
                };
                return CropRect { x, y, w: cw, h: ch };
            }
        }
    }
    centre_crop(width, height, ratio)
}

/// Draws one set of parameters for a `width` x `height` source image.
pub fn draw_params<R: Rng + ?Sized>(
    cfg: &AugmentConfig,
    width: u32,
    height: u32,
    rng: &mut R,
) -> AugmentParams {
    // The draw order is fixed (and every draw is made even when its transform is not
    // applied), so changing one probability does not shift the other random choices.
    let crop = random_resized_crop(width, height, cfg.min_scale, cfg.ratio, rng);
    let flip = rng.random::<f32>() < cfg.flip_p;
    let rotate_on = rng.random::<f32>() < cfg.p_affine;
    let rotate = rng.random_range(-1.0f32..=1.0) * cfg.max_rotate;
    let zoom_on = rng.random::<f32>() < cfg.p_affine;
    let zoom = rng.random_range(cfg.min_zoom..=cfg.max_zoom);
    let zoom_centre = (rng.random::<f32>(), rng.random::<f32>());
    let warp_on = rng.random::<f32>() < cfg.p_affine;
    let warp = (
        rng.random_range(-1.0f32..=1.0) * cfg.max_warp,
        rng.random_range(-1.0f32..=1.0) * cfg.max_warp,
    );
    let bright_on = rng.random::<f32>() < cfg.p_lighting;
    let brightness =
        rng.random_range(0.5 * (1.0 - cfg.max_lighting)..=0.5 * (1.0 + cfg.max_lighting));
    let contrast_on = rng.random::<f32>() < cfg.p_lighting;
    let log_c = -(1.0 - cfg.max_lighting).ln();
    let contrast = if log_c > 0.0 {
        rng.random_range(-log_c..=log_c).exp()
    } else {
        1.0
    };
    AugmentParams {
        crop,
        flip,
        rotate: if rotate_on { rotate } else { 0.0 },
        zoom: if zoom_on { zoom } else { 1.0 },
        zoom_centre: if zoom_on { zoom_centre } else { (0.5, 0.5) },
        warp: if warp_on { warp } else { (0.0, 0.0) },
        brightness: bright_on.then_some(brightness),
        contrast: contrast_on.then_some(contrast),
    }
}

/// Draws parameters and applies them: `out` receives `3 * size * size` values in
/// `[0, 1]`, channel-major (CHW).
pub fn augment<R: Rng + ?Sized>(
    src: &RgbImage,
    size: u32,
    cfg: &AugmentConfig,
    rng: &mut R,
    out: &mut [f32],
) {
    let params = draw_params(cfg, src.width(), src.height(), rng);
    apply(src, &params, size, out);
}

/// The validation transform: the centred region of allowed aspect ratio, resized.
pub fn resize_plain(src: &RgbImage, size: u32, ratio: (f32, f32), out: &mut [f32]) {
    apply(
        src,
        &AugmentParams::identity(src.width(), src.height(), ratio),
        size,
        out,
    );
}

/// A 3x3 projective map acting on column vectors `[x, y, 1]`.
type Mat3 = [[f32; 3]; 3];

fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// The map from output coordinates to source coordinates, both normalized to [-1, 1].
fn affine_matrix(p: &AugmentParams) -> Mat3 {
    // fastai `zoom_mat`: scale 1/zoom about a random centre.
    let s = 1.0 / p.zoom;
    let zoom = [
        [s, 0.0, (1.0 - s) * (2.0 * p.zoom_centre.0 - 1.0)],
        [0.0, s, (1.0 - s) * (2.0 * p.zoom_centre.1 - 1.0)],
        [0.0, 0.0, 1.0],
    ];
    let (sin, cos) = p.rotate.to_radians().sin_cos();
    let rotate = [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]];
    let f = if p.flip { -1.0 } else { 1.0 };
    let flip = [[f, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    mat_mul(&flip, &mat_mul(&rotate, &zoom))
}

/// fastai `_WarpCoord`: the homography that moves the four corners by the warp
/// magnitudes (fastai's `find_coeffs(targ_pts, orig_pts)`).
fn warp_matrix(warp: (f32, f32)) -> Option<Mat3> {
    let (xm, ym) = warp;
    if xm == 0.0 && ym == 0.0 {
        return None;
    }
    let orig = [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]];
    let targ = [
        [-(1.0 + ym), -(1.0 + xm)],
        [-(1.0 - ym), 1.0 + xm],
        [1.0 - ym, -(1.0 - xm)],
        [1.0 + ym, 1.0 - xm],
    ];
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let (x, y): (f64, f64) = (orig[i][0], orig[i][1]);
        let (u, v) = (f64::from(targ[i][0]), f64::from(targ[i][1]));
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    let c = solve8(a)?;
    Some([
        [c[0] as f32, c[1] as f32, c[2] as f32],
        [c[3] as f32, c[4] as f32, c[5] as f32],
        [c[6] as f32, c[7] as f32, 1.0],
    ])
}

/// Gaussian elimination with partial pivoting on an 8x8 system in augmented form.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let pivot_row = a[col];
                let f = a[row][col] / pivot_row[col];
                for (v, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for i in 0..8 {
        x[i] = a[i][8] / a[i][i];
    }
    Some(x)
}

/// Reflects a normalized coordinate into [-1, 1] (PyTorch's reflection padding).
fn reflect(v: f32) -> f32 {
    if (-1.0..=1.0).contains(&v) {
        return v;
    }
    if !v.is_finite() {
        return 0.0;
    }
    let m = (v + 1.0).abs().rem_euclid(4.0);
    (if m > 2.0 { 4.0 - m } else { m }) - 1.0
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The composed coordinate map of one augmentation: output pixel -> source pixel.
#[derive(Debug, Clone)]
pub struct CoordMap {
    aff: Mat3,
    warp: Option<Mat3>,
    crop: CropRect,
}

impl CoordMap {
    /// The map for `params`, sampling from `crop` of the source image (normally
    /// `params.crop`, scaled when the source was shrunk first).
    pub fn new(params: &AugmentParams, crop: CropRect) -> Self {
        Self {
            aff: affine_matrix(params),
            warp: warp_matrix(params.warp),
            crop,
        }
    }

    /// Source position (pixel-centre coordinates) sampled for output pixel `(ox, oy)` of
    /// an `n` x `n` output. Reflection padding keeps it inside the crop.
    pub fn source(&self, ox: usize, oy: usize, n: usize) -> (f32, f32) {
        let norm = |i: usize| {
            if n > 1 {
                i as f32 * 2.0 / (n - 1) as f32 - 1.0
            } else {
                0.0
            }
        };
        let (u, v) = (norm(ox), norm(oy));
        let a = &self.aff;
        let mut x = a[0][0] * u + a[0][1] * v + a[0][2];
        let mut y = a[1][0] * u + a[1][1] * v + a[1][2];
        if let Some(m) = &self.warp {
            let d = m[2][0] * x + m[2][1] * y + m[2][2];
            let (nx, ny) = (
                m[0][0] * x + m[0][1] * y + m[0][2],
                m[1][0] * x + m[1][1] * y + m[1][2],
            );
            (x, y) = (nx / d, ny / d);
        }
        let (x, y) = (reflect(x), reflect(y));
        let c = &self.crop;
        (
            c.x + (x + 1.0) * 0.5 * (c.w - 1.0),
            c.y + (y + 1.0) * 0.5 * (c.h - 1.0),
        )
    }
}

/// Applies `params` to `src`, writing a `size` x `size` CHW image in [0, 1] into `out`.
///
/// # Panics
/// When `out` does not hold exactly `3 * size * size` values.
pub fn apply(src: &RgbImage, params: &AugmentParams, size: u32, out: &mut [f32]) {
    let n = size as usize;
    assert_eq!(
        out.len(),
        3 * n * n,
        "output buffer must hold 3 x {size} x {size} values"
    );
    // Bilinear sampling aliases when it shrinks a lot; past 3x, shrink the source to
    // twice the output size with a proper filter first. (Up to 3x, bilinear is what
    // fastai's GPU path does too, and re-filtering every image every epoch costs more
    // than the augmentation itself.)
    let mut crop = params.crop;
    let shrink = (crop.w.min(crop.h) / size as f32) / 2.0;
    let resized;
    let img = if shrink > 1.5 {
        let nw = ((src.width() as f32 / shrink).round() as u32).max(1);
        let nh = ((src.height() as f32 / shrink).round() as u32).max(1);
        resized = crate::resize::resize_rgb(src, nw, nh, crate::resize::Filter::Triangle);
        let (sx, sy) = (
            nw as f32 / src.width() as f32,
            nh as f32 / src.height() as f32,
        );
        crop = CropRect {
            x: crop.x * sx,
            y: crop.y * sy,
            w: (crop.w * sx).max(1.0),
            h: (crop.h * sy).max(1.0),
        };
        &resized
    } else {
        src
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let map = CoordMap::new(params, crop);
    // Lighting is a function of each value alone, so it is tabulated once over the 256
    // source levels and interpolated with them (fastai applies it after interpolation;
    // the two differ by far less than one level).
    let lut = lighting_table(params);
    let plane = n * n;
    let (max_x, max_y) = ((w - 1) as f32, (h - 1) as f32);
    for oy in 0..n {
        for ox in 0..n {
            let (sx, sy) = map.source(ox, oy, n);
            // The map stays inside the crop; the clamp only guards against rounding.
            let (sx, sy) = (sx.clamp(0.0, max_x), sy.clamp(0.0, max_y));
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let (i00, i01, i10, i11) = (
                3 * (y0 * w + x0),
                3 * (y0 * w + x1),
                3 * (y1 * w + x0),
                3 * (y1 * w + x1),
            );
            let o = oy * n + ox;
            for c in 0..3 {
                let top = lut[raw[i00 + c] as usize] * (1.0 - fx) + lut[raw[i01 + c] as usize] * fx;
                let bottom =
                    lut[raw[i10 + c] as usize] * (1.0 - fx) + lut[raw[i11 + c] as usize] * fx;
                out[c * plane + o] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
}

/// Each 8-bit level's value in [0, 1] after brightness and contrast (fastai's logit-space
/// `_BrightnessLogit` then `_ContrastLogit`).
fn lighting_table(params: &AugmentParams) -> [f32; 256] {
    let mut lut = [0.0f32; 256];
    let lighting = params.brightness.is_some() || params.contrast.is_some();
    let b_shift = params.brightness.map_or(0.0, logit);
    let c_mul = params.contrast.unwrap_or(1.0);
    for (i, v) in lut.iter_mut().enumerate() {
        let x = i as f32 / 255.0;
        *v = if lighting {
            sigmoid((logit(x) + b_shift) * c_mul)
        } else {
            x
        };
    }
    lut
}

/// Mirrors an image left to right.
pub fn hflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

/// Mirrors a CHW image left to right, in place.
pub fn hflip_chw(data: &mut [f32], size: usize) {
    for row in data.chunks_exact_mut(size) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests;
