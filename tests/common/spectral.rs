//! Helpers shared by the spectral tests (`tests/spectral.rs`,
//! `tests/spectral_complex.rs`): feeding planes in chunks, comparing rows
//! of spectra, running the binary, and reading PNG outputs.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::Path;
use std::process::Command;

use sigstream::pool::Block;

/// Feeds `x` in chunks of `chunk` frames to `push`.
pub fn chunks(x: &[Vec<f32>], chunk: usize, mut push: impl FnMut(&Block)) {
    let n = x[0].len();
    let mut block = Block::new(x.len(), chunk);
    let mut at = 0;
    while at < n {
        let take = chunk.min(n - at);
        for (c, ch) in x.iter().enumerate() {
            block.channel_capacity_mut(c)[..take].copy_from_slice(&ch[at..at + take]);
        }
        block.set_frames(take);
        push(&block);
        at += take;
    }
}

/// Checks `got` against `want` row by row (rows of `bins`), relative to each
/// row's largest value; reports the first failure.
pub fn assert_rows_close(got: &[f32], want: &[f64], bins: usize, tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (r, (g, w)) in got.chunks(bins).zip(want.chunks(bins)).enumerate() {
        let scale = w.iter().fold(0.0f64, |a, &b| a.max(b.abs())).max(1e-300);
        for (k, (&g, &w)) in g.iter().zip(w).enumerate() {
            let err = (f64::from(g) - w).abs() / scale;
            assert!(
                err <= tol,
                "{what}: row {r} bin {k}: got {g}, want {w} (error {err:.2e} of the row's peak)"
            );
        }
    }
}

/// Runs `sigstream args` in `dir`: its exit code and stderr.
pub fn sigstream(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A PNG's width and height, from its header.
pub fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

/// The RGB pixels of a PNG, with its size.
pub fn png_rgb(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, px)
}
