//! Stored samples (any [`Dtype`], either byte order, interleaved channels)
//! to planar `f32`: the hottest loop of the program.
//!
//! Why it looks like this: every byte of every input passes through here, so
//! the choice of loop is made once per input, not once per sample. Each
//! (dtype, byte order, mono/interleaved, normalize) combination is its own
//! monomorphized function, picked when the source opens and called through
//! one function pointer per block; the inner loops contain no branch on the
//! dtype, the byte order or the channel. Little-endian `f32` mono is a plain
//! `memcpy` into the block. Columnar inputs (Arrow, whose channels are
//! stored one after the other) take the same decoders one column at a time
//! ([`plane`]), so a format's values never depend on its layout.
//!
//! Values: integer samples keep their integer values (int16 `32767` becomes
//! `32767.0`, u8 `200` becomes `200.0`), as `numpy.load` and
//! `scipy.io.wavfile.read` give them. 24-bit samples become their true
//! sign-extended 24-bit value (−8388608..=8388607); note that scipy instead
//! returns them left-justified in an int32 (the value × 256) — we
//! deliberately do not. `i32` values beyond ±2^24 round to the nearest
//! `f32`, and so do the `i64`, `u32` and `u64` of Arrow columns beyond
//! 2^24; `f64` samples round to the nearest `f32` (`as f32`), and `f16`
//! ones are exact.
//!
//! With `normalize`, signed integers are divided by 2^(bits−1), giving
//! [−1, 1); unsigned ones are centred first: u8 → (v−128)/128,
//! u16 → (v−32768)/32768 (u32 and u64 at 2^31 and 2^63). Floats are never scaled (their bits pass through
//! unchanged, NaN payloads included, except for the rounding of `f64`).

use super::{Dtype, Endian};
use crate::pool::Block;

/// Converts whole frames of `src` into the first frames of each channel of
/// the block; the `usize` is the channel count.
type ConvertFn = fn(&[u8], usize, &mut Block);

/// The conversion for one input, chosen once when it opens.
#[derive(Clone, Copy)]
pub(super) struct Converter {
    f: ConvertFn,
    channels: usize,
    frame_bytes: usize,
}

impl std::fmt::Debug for Converter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter")
            .field("channels", &self.channels)
            .field("frame_bytes", &self.frame_bytes)
            .finish_non_exhaustive()
    }
}

impl Converter {
    /// The conversion for samples of `dtype` in `endian` order, `channels`
    /// interleaved, scaled to [−1, 1) when `normalize` and integer.
    pub(super) fn new(dtype: Dtype, endian: Endian, channels: usize, normalize: bool) -> Self {
        let f: ConvertFn = match (dtype, endian) {
            (Dtype::F32, Endian::Little) if channels == 1 && cfg!(target_endian = "little") => {
                copy_f32_le_mono
            }
            _ => dispatch(
                dtype,
                endian,
                Interleaved {
                    channels,
                    normalize,
                },
            ),
        };
        Converter {
            f,
            channels,
            frame_bytes: channels * dtype.size(),
        }
    }

    /// Bytes of one stored frame.
    pub(super) fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// Converts the whole frames in `src` into `block`, sets its frame count
    /// and returns it.
    ///
    /// # Panics
    /// If `src` holds more frames than the block's capacity, or the block
    /// has another channel count (bugs in the caller).
    pub(super) fn convert(&self, src: &[u8], block: &mut Block) -> usize {
        debug_assert_eq!(src.len() % self.frame_bytes, 0, "partial frame");
        assert_eq!(block.channels(), self.channels, "block of the wrong shape");
        let frames = src.len() / self.frame_bytes;
        assert!(
            frames <= block.capacity(),
            "{frames} frames do not fit a block of {}",
            block.capacity()
        );
        (self.f)(&src[..frames * self.frame_bytes], self.channels, block);
        block.set_frames(frames);
        frames
    }
}

/// The loop for decoder `D` and `channels` interleaved channels,
/// normalizing or not.
fn select<D: Decode>(channels: usize, normalize: bool) -> ConvertFn {
    if normalize {
        select_channels::<D, true>(channels)
    } else {
        select_channels::<D, false>(channels)
    }
}

/// Mono, 2 to 4 channels with the frame size known at compile time (so the
/// strided loads vectorize), or any other count.
fn select_channels<D: Decode, const NORM: bool>(channels: usize) -> ConvertFn {
    match channels {
        1 => convert_mono::<D, NORM>,
        2 => convert_interleaved::<D, NORM, 2>,
        3 => convert_interleaved::<D, NORM, 3>,
        4 => convert_interleaved::<D, NORM, 4>,
        5..WIDE => convert_interleaved::<D, NORM, 0>,
        _ if channels <= ROW_VALUES => convert_wide::<D, NORM>,
        _ => convert_interleaved::<D, NORM, 0>,
    }
}

/// Channels from which [`convert_wide`] is used.
const WIDE: usize = 16;

/// `f32` values of the stack buffer of [`convert_wide`] (64 KiB).
const ROW_VALUES: usize = 16384;

/// Many channels (at least [`WIDE`], at most [`ROW_VALUES`]): a few frames
/// at a time, decoded in one straight run over their bytes into a buffer
/// on the stack (a loop the compiler vectorizes: no stride, no per-channel
/// offset), then picked out channel by channel from that buffer, which
/// stays in the L1 cache. Decoding sample by sample at a stride, as
/// [`convert_interleaved`] does, took 1.3 ns per int16 sample on 385
/// channels; this takes a fraction of that (see the README's spike
/// benchmark).
fn convert_wide<D: Decode, const NORM: bool>(src: &[u8], channels: usize, block: &mut Block) {
    let frame = D::SIZE * channels;
    let rows = (ROW_VALUES / channels).max(1);
    let stride = block.capacity();
    let planes = block.planes_mut();
    let mut buf = [0.0f32; ROW_VALUES];
    for (t, tile) in src.chunks(frame * rows).enumerate() {
        let first = t * rows;
        let n = tile.len() / frame;
        let values = &mut buf[..n * channels];
        for (d, b) in values.iter_mut().zip(tile.chunks_exact(D::SIZE)) {
            *d = D::get::<NORM>(b);
        }
        let values = &buf[..n * channels];
        for (c, plane) in planes.chunks_exact_mut(stride).enumerate() {
            for (d, v) in plane[first..first + n]
                .iter_mut()
                .zip(values[c..].iter().step_by(channels))
            {
                *d = *v;
            }
        }
    }
}

/// Converts consecutive samples of one stored column into one plane
/// (`src` holds whole samples, at most `dst.len()` of them).
pub(super) type PlaneFn = fn(&[u8], &mut [f32]);

/// The conversion of one column stored on its own (Arrow's columnar
/// buffers): the same values as [`Converter`] gives an interleaved channel
/// of that type, chosen once per column.
pub(super) fn plane(dtype: Dtype, endian: Endian, normalize: bool) -> PlaneFn {
    match (dtype, endian) {
        (Dtype::F32, Endian::Little) if cfg!(target_endian = "little") => copy_f32_le_plane,
        _ => dispatch(dtype, endian, Plane { normalize }),
    }
}

/// Picks the loop for a decoder: what [`dispatch`] is asked to build.
trait Pick {
    /// The loop it makes.
    type Out;
    /// The loop for decoder `D`.
    fn pick<D: Decode>(self) -> Self::Out;
}

/// Interleaved frames of `channels` channels into a block.
struct Interleaved {
    channels: usize,
    normalize: bool,
}

impl Pick for Interleaved {
    type Out = ConvertFn;
    fn pick<D: Decode>(self) -> ConvertFn {
        select::<D>(self.channels, self.normalize)
    }
}

/// One column into one plane.
struct Plane {
    normalize: bool,
}

impl Pick for Plane {
    type Out = PlaneFn;
    fn pick<D: Decode>(self) -> PlaneFn {
        if self.normalize {
            convert_plane::<D, true>
        } else {
            convert_plane::<D, false>
        }
    }
}

/// The one place a (dtype, byte order) pair becomes a decoder.
fn dispatch<P: Pick>(dtype: Dtype, endian: Endian, p: P) -> P::Out {
    use Endian::{Big, Little};
    match (dtype, endian) {
        (Dtype::F32, Little) => p.pick::<F32Le>(),
        (Dtype::F32, Big) => p.pick::<F32Be>(),
        (Dtype::F64, Little) => p.pick::<F64Le>(),
        (Dtype::F64, Big) => p.pick::<F64Be>(),
        (Dtype::F16, Little) => p.pick::<F16Le>(),
        (Dtype::F16, Big) => p.pick::<F16Be>(),
        (Dtype::I8, _) => p.pick::<I8>(),
        (Dtype::U8, _) => p.pick::<U8>(),
        (Dtype::I16, Little) => p.pick::<I16Le>(),
        (Dtype::I16, Big) => p.pick::<I16Be>(),
        (Dtype::U16, Little) => p.pick::<U16Le>(),
        (Dtype::U16, Big) => p.pick::<U16Be>(),
        (Dtype::I24, Little) => p.pick::<I24Le>(),
        (Dtype::I24, Big) => p.pick::<I24Be>(),
        (Dtype::I32, Little) => p.pick::<I32Le>(),
        (Dtype::I32, Big) => p.pick::<I32Be>(),
        (Dtype::U32, Little) => p.pick::<U32Le>(),
        (Dtype::U32, Big) => p.pick::<U32Be>(),
        (Dtype::I64, Little) => p.pick::<I64Le>(),
        (Dtype::I64, Big) => p.pick::<I64Be>(),
        (Dtype::U64, Little) => p.pick::<U64Le>(),
        (Dtype::U64, Big) => p.pick::<U64Be>(),
    }
}

/// Little-endian `f32` into a plane on a little-endian machine: a copy.
fn copy_f32_le_plane(src: &[u8], dst: &mut [f32]) {
    let n = src.len() / 4;
    bytemuck::cast_slice_mut::<f32, u8>(&mut dst[..n]).copy_from_slice(&src[..n * 4]);
}

/// One column: consecutive samples into consecutive values.
fn convert_plane<D: Decode, const NORM: bool>(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(D::SIZE)) {
        *d = D::get::<NORM>(s);
    }
}

/// Little-endian `f32` mono on a little-endian machine: the stored bytes
/// are already the block's bytes.
fn copy_f32_le_mono(src: &[u8], _channels: usize, block: &mut Block) {
    let frames = src.len() / 4;
    let dst = &mut block.channel_capacity_mut(0)[..frames];
    bytemuck::cast_slice_mut::<f32, u8>(dst).copy_from_slice(src);
}

/// One channel: consecutive samples.
fn convert_mono<D: Decode, const NORM: bool>(src: &[u8], _channels: usize, block: &mut Block) {
    let dst = block.channel_capacity_mut(0);
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(D::SIZE)) {
        *d = D::get::<NORM>(s);
    }
}

/// Frames per tile of the transposing deinterleave: 32 frames of 385 int16
/// channels are 24 KiB of input, which stay in the L1 cache while every
/// channel's 32 samples (two cache lines of `f32` output) are picked out of
/// them. Walking each channel over a whole chunk instead re-reads the chunk
/// from memory once per channel (a line holds only 32 int16 channels),
/// which made deinterleaving 385 channels memory-bound.
const TILE_FRAMES: usize = 32;

/// Several channels: tile by tile of [`TILE_FRAMES`] frames, and in each
/// tile channel by channel, a strided walk over the tile's frames (every
/// write is sequential, and the bounds check on the sample's place in its
/// frame is the same for every frame, so it leaves the loop). `CH` is the
/// channel count when fixed at compile time, 0 when it is not.
fn convert_interleaved<D: Decode, const NORM: bool, const CH: usize>(
    src: &[u8],
    channels: usize,
    block: &mut Block,
) {
    let channels = if CH == 0 { channels } else { CH };
    let frame = D::SIZE * channels;
    let stride = block.capacity();
    let planes = block.planes_mut();
    for (t, tile) in src.chunks(frame * TILE_FRAMES).enumerate() {
        let first = t * TILE_FRAMES;
        for (c, plane) in planes.chunks_exact_mut(stride).enumerate() {
            let at = c * D::SIZE;
            let dst = &mut plane[first..];
            for (d, f) in dst.iter_mut().zip(tile.chunks_exact(frame)) {
                *d = D::get::<NORM>(&f[at..at + D::SIZE]);
            }
        }
    }
}

/// How one stored sample type becomes an `f32`.
trait Decode {
    /// Bytes per sample.
    const SIZE: usize;
    /// Whether `normalize` scales it (integers yes, floats no).
    const INTEGER: bool;
    /// Subtracted before scaling (the midpoint of unsigned types).
    const BIAS: f32;
    /// 1 / 2^(bits − 1).
    const SCALE: f32;
    /// The sample's value; `b` holds at least `SIZE` bytes.
    fn value(b: &[u8]) -> f32;

    /// The sample's value, normalized when `NORM` and an integer.
    #[inline(always)]
    fn get<const NORM: bool>(b: &[u8]) -> f32 {
        let v = Self::value(b);
        if NORM && Self::INTEGER {
            (v - Self::BIAS) * Self::SCALE
        } else {
            v
        }
    }
}

/// Declares a unit type implementing [`Decode`]; `|b| expr` turns the
/// sample's bytes `b: [u8; size]` into an `f32`.
macro_rules! decoder {
    ($(#[$doc:meta])* $name:ident, $size:literal, integer: $int:literal, bias: $bias:expr,
     scale: $scale:expr, |$b:ident| $value:expr) => {
        $(#[$doc])*
        struct $name;
        impl Decode for $name {
            const SIZE: usize = $size;
            const INTEGER: bool = $int;
            const BIAS: f32 = $bias;
            const SCALE: f32 = $scale;
            #[inline(always)]
            fn value(b: &[u8]) -> f32 {
                let $b: [u8; $size] = b[..$size].try_into().unwrap_or([0; $size]);
                $value
            }
        }
    };
}

/// 2^-7, 2^-15, 2^-23, 2^-31, 2^-63: exact powers of two, so scaling is exact.
const INV_2_7: f32 = 1.0 / 128.0;
const INV_2_15: f32 = 1.0 / 32768.0;
const INV_2_23: f32 = 1.0 / 8_388_608.0;
const INV_2_31: f32 = 1.0 / 2_147_483_648.0;
const INV_2_63: f32 = 1.0 / 9_223_372_036_854_775_808.0;

decoder!(/// Little-endian f32.
    F32Le, 4, integer: false, bias: 0.0, scale: 1.0, |b| f32::from_le_bytes(b));
decoder!(/// Big-endian f32.
    F32Be, 4, integer: false, bias: 0.0, scale: 1.0, |b| f32::from_be_bytes(b));
decoder!(/// Little-endian f64, rounded to f32.
    F64Le, 8, integer: false, bias: 0.0, scale: 1.0, |b| f64::from_le_bytes(b) as f32);
decoder!(/// Big-endian f64, rounded to f32.
    F64Be, 8, integer: false, bias: 0.0, scale: 1.0, |b| f64::from_be_bytes(b) as f32);
decoder!(/// Signed 8-bit.
    I8, 1, integer: true, bias: 0.0, scale: INV_2_7, |b| f32::from(i8::from_le_bytes(b)));
decoder!(/// Unsigned 8-bit (WAV's 8-bit PCM).
    U8, 1, integer: true, bias: 128.0, scale: INV_2_7, |b| f32::from(b[0]));
decoder!(/// Little-endian signed 16-bit.
    I16Le, 2, integer: true, bias: 0.0, scale: INV_2_15, |b| f32::from(i16::from_le_bytes(b)));
decoder!(/// Big-endian signed 16-bit.
    I16Be, 2, integer: true, bias: 0.0, scale: INV_2_15, |b| f32::from(i16::from_be_bytes(b)));
decoder!(/// Little-endian unsigned 16-bit.
    U16Le, 2, integer: true, bias: 32768.0, scale: INV_2_15, |b| f32::from(u16::from_le_bytes(b)));
decoder!(/// Big-endian unsigned 16-bit.
    U16Be, 2, integer: true, bias: 32768.0, scale: INV_2_15, |b| f32::from(u16::from_be_bytes(b)));
decoder!(/// Little-endian signed 24-bit, packed: placed in the top three bytes
    /// of an i32 and shifted back down, which sign-extends.
    I24Le, 3, integer: true, bias: 0.0, scale: INV_2_23,
    |b| (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32);
decoder!(/// Big-endian signed 24-bit, packed.
    I24Be, 3, integer: true, bias: 0.0, scale: INV_2_23,
    |b| (i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8) as f32);
decoder!(/// Little-endian signed 32-bit (rounded to the nearest f32 beyond ±2^24).
    I32Le, 4, integer: true, bias: 0.0, scale: INV_2_31, |b| i32::from_le_bytes(b) as f32);
decoder!(/// Big-endian signed 32-bit.
    I32Be, 4, integer: true, bias: 0.0, scale: INV_2_31, |b| i32::from_be_bytes(b) as f32);

decoder!(/// Little-endian unsigned 32-bit (Arrow's uint32; centred at 2^31 by
    /// `normalize`, as u8 and u16 are at their midpoints).
    U32Le, 4, integer: true, bias: 2_147_483_648.0, scale: INV_2_31,
    |b| u32::from_le_bytes(b) as f32);
decoder!(/// Big-endian unsigned 32-bit.
    U32Be, 4, integer: true, bias: 2_147_483_648.0, scale: INV_2_31,
    |b| u32::from_be_bytes(b) as f32);
decoder!(/// Little-endian signed 64-bit (Arrow's int64; rounded to the nearest f32).
    I64Le, 8, integer: true, bias: 0.0, scale: INV_2_63, |b| i64::from_le_bytes(b) as f32);
decoder!(/// Big-endian signed 64-bit.
    I64Be, 8, integer: true, bias: 0.0, scale: INV_2_63, |b| i64::from_be_bytes(b) as f32);
decoder!(/// Little-endian unsigned 64-bit (Arrow's uint64; centred at 2^63 by
    /// `normalize`).
    U64Le, 8, integer: true, bias: 9_223_372_036_854_775_808.0, scale: INV_2_63,
    |b| u64::from_le_bytes(b) as f32);
decoder!(/// Big-endian unsigned 64-bit.
    U64Be, 8, integer: true, bias: 9_223_372_036_854_775_808.0, scale: INV_2_63,
    |b| u64::from_be_bytes(b) as f32);
decoder!(/// Little-endian IEEE half precision (Arrow's float16): exact in f32.
    F16Le, 2, integer: false, bias: 0.0, scale: 1.0,
    |b| half::f16::from_bits(u16::from_le_bytes(b)).to_f32());
decoder!(/// Big-endian IEEE half precision.
    F16Be, 2, integer: false, bias: 0.0, scale: 1.0,
    |b| half::f16::from_bits(u16::from_be_bytes(b)).to_f32());

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(dtype: Dtype, endian: Endian, channels: usize, norm: bool, src: &[u8]) -> Block {
        let frames = src.len() / (dtype.size() * channels);
        let mut block = Block::new(channels, frames.max(1));
        Converter::new(dtype, endian, channels, norm).convert(src, &mut block);
        block
    }

    #[test]
    fn i24_extremes_sign_extend() {
        // 0x7FFFFF, 0x800000, 0xFFFFFF, 1 — little endian.
        let src = [
            0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x80, 0xFF, 0xFF, 0xFF, 1, 0, 0,
        ];
        let b = convert(Dtype::I24, Endian::Little, 1, false, &src);
        assert_eq!(b.channel(0), &[8_388_607.0, -8_388_608.0, -1.0, 1.0]);
        let be = [
            0x7F, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0, 0, 1,
        ];
        let b = convert(Dtype::I24, Endian::Big, 1, false, &be);
        assert_eq!(b.channel(0), &[8_388_607.0, -8_388_608.0, -1.0, 1.0]);
        let b = convert(Dtype::I24, Endian::Little, 1, true, &src);
        assert_eq!(b.channel(0)[1], -1.0);
        assert_eq!(b.channel(0)[0], 8_388_607.0 / 8_388_608.0);
    }

    #[test]
    fn unsigned_normalization_is_centred() {
        let b = convert(Dtype::U8, Endian::Little, 1, true, &[0, 128, 255]);
        assert_eq!(b.channel(0), &[-1.0, 0.0, 127.0 / 128.0]);
        let src: Vec<u8> = [0u16, 32768, 65535]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let b = convert(Dtype::U16, Endian::Big, 1, true, &src);
        assert_eq!(b.channel(0), &[-1.0, 0.0, 32767.0 / 32768.0]);
    }

    #[test]
    fn many_channels_go_planar_across_tiles() {
        // Each side of the wide path's bounds (16 and 4,096 channels), and
        // 385; frame counts that are not a whole number of tiles or rows.
        for channels in [15, WIDE, 385, ROW_VALUES, ROW_VALUES + 1] {
            let frames = 3 * TILE_FRAMES + 5;
            let value = |f: usize, c: usize| ((f * 7919 + c * 31) % 65536) as i16;
            let src: Vec<u8> = (0..frames)
                .flat_map(|f| (0..channels).map(move |c| value(f, c)))
                .flat_map(|v| v.to_be_bytes())
                .collect();
            for norm in [false, true] {
                let b = convert(Dtype::I16, Endian::Big, channels, norm, &src);
                let scale = if norm { 1.0 / 32768.0 } else { 1.0 };
                for c in 0..channels {
                    let want: Vec<f32> = (0..frames)
                        .map(|f| f32::from(value(f, c)) * scale)
                        .collect();
                    assert_eq!(b.channel(c), &want[..], "{channels} channels: channel {c}");
                }
            }
        }
    }

    #[test]
    fn one_column_converts_as_one_interleaved_channel() {
        // Arrow's columns go through `plane`; the same bytes as a mono
        // interleaved input must give the same values, bit for bit, for
        // every type, byte order and scaling.
        let bytes: Vec<u8> = (0u32..8 * 64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let all = [
            Dtype::F32,
            Dtype::F64,
            Dtype::F16,
            Dtype::I8,
            Dtype::U8,
            Dtype::I16,
            Dtype::U16,
            Dtype::I24,
            Dtype::I32,
            Dtype::U32,
            Dtype::I64,
            Dtype::U64,
        ];
        for dtype in all {
            for endian in [Endian::Little, Endian::Big] {
                for norm in [false, true] {
                    let n = bytes.len() / dtype.size();
                    let src = &bytes[..n * dtype.size()];
                    let want = convert(dtype, endian, 1, norm, src);
                    let mut got = vec![0.0f32; n];
                    plane(dtype, endian, norm)(src, &mut got);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got),
                        bits(want.channel(0)),
                        "{dtype:?} {endian:?} normalize {norm}"
                    );
                }
            }
        }
        // The new types' values.
        let v = |dtype, b: &[u8]| {
            let mut out = [0.0f32];
            plane(dtype, Endian::Little, false)(b, &mut out);
            out[0]
        };
        assert_eq!(v(Dtype::F16, &0x3C00u16.to_le_bytes()), 1.0);
        assert_eq!(v(Dtype::F16, &0xC000u16.to_le_bytes()), -2.0);
        assert_eq!(v(Dtype::U32, &u32::MAX.to_le_bytes()), u32::MAX as f32);
        assert_eq!(v(Dtype::I64, &i64::MIN.to_le_bytes()), -9.223_372e18);
        assert_eq!(
            v(Dtype::U64, &(1u64 << 40).to_le_bytes()),
            1_099_511_627_776.0
        );
        let mut out = [0.0f32];
        plane(Dtype::U32, Endian::Little, true)(&0u32.to_le_bytes(), &mut out);
        assert_eq!(out[0], -1.0, "u32 centred at 2^31");
    }

    #[test]
    fn interleaved_goes_planar() {
        let src: Vec<u8> = (0i16..6).flat_map(|v| v.to_le_bytes()).collect();
        let b = convert(Dtype::I16, Endian::Little, 3, false, &src);
        assert_eq!(b.channel(0), &[0.0, 3.0]);
        assert_eq!(b.channel(1), &[1.0, 4.0]);
        assert_eq!(b.channel(2), &[2.0, 5.0]);
    }
}
