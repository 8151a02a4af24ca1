//! Every input format read back against an independent reference: raw bytes
//! encoded here, `.npy` files written by `npyz`, WAV files written by
//! `hound` (and read back by hound for the expected values), RF64 and odd
//! headers built byte by byte. Every comparison is exact (bit for bit): the
//! conversions are integer → f32 (exact up to 2^24, rounding-to-nearest above,
//! which the reference does the same way), scaling by powers of two (exact),
//! and f64 → f32 with `as` on both sides. Then every kind of bad input, each
//! of which must give an error of the right kind that names the problem.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use sigstream::Error;
use sigstream::pool::Block;
use sigstream::source::{ChunkSource, Dtype, Endian, Format, SourceOptions, from_reader, open};

// ---------------------------------------------------------------- helpers

/// SplitMix64: a seeded generator, so every run tests the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }

    /// Uniform in [-scale, scale).
    fn float(&mut self, scale: f64) -> f64 {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
    }
}

/// Every frame of `source`, channel by channel, read `capacity` frames at a
/// time; checks that block starts are consecutive and blocks never overfill.
fn read_all(mut source: Box<dyn ChunkSource>, capacity: usize) -> sigstream::Result<Vec<Vec<f32>>> {
    let channels = source.info().channels;
    let mut block = Block::new(channels, capacity);
    let mut out = vec![Vec::new(); channels];
    let mut next = 0u64;
    loop {
        let n = source.read_block(&mut block)?;
        assert_eq!(block.start, next, "block starts where the last one ended");
        assert_eq!(n, block.frames());
        assert!(n <= capacity);
        if n == 0 {
            // The end stays the end.
            assert_eq!(source.read_block(&mut block)?, 0);
            return Ok(out);
        }
        next += n as u64;
        for (c, ch) in out.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
}

/// Opens and reads a whole path, panicking on any error.
fn read_path(path: &Path, opts: &SourceOptions, capacity: usize) -> Vec<Vec<f32>> {
    let source = open(path, opts).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    read_all(source, capacity).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Splits interleaved samples into channels.
fn planar(interleaved: &[f32], channels: usize) -> Vec<Vec<f32>> {
    (0..channels)
        .map(|c| {
            interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .copied()
                .collect()
        })
        .collect()
}

/// Bit-exact equality, naming the first differing channel and index.
fn assert_bits_eq(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: channel count");
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: channel {c} length");
        if let Some(i) = g
            .iter()
            .zip(w)
            .position(|(a, b)| a.to_bits() != b.to_bits())
        {
            panic!(
                "{what}: channel {c} first differs at frame {i}: got {} want {}",
                g[i], w[i]
            );
        }
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The error `open` gives.
fn open_err(path: &Path, opts: &SourceOptions) -> Error {
    match open(path, opts) {
        Ok(_) => panic!("{} opened, expected an error", path.display()),
        Err(e) => e,
    }
}

/// The error opening and reading `path` gives, at either step.
fn read_err(path: &Path, opts: &SourceOptions) -> Error {
    match open(path, opts).and_then(|s| read_all(s, 7)) {
        Ok(_) => panic!("{} read fine, expected an error", path.display()),
        Err(e) => e,
    }
}

/// The error reading `bytes` as a stream gives, at either step.
fn stream_err(name: &str, bytes: Vec<u8>, opts: &SourceOptions) -> Error {
    match from_reader(name, Cursor::new(bytes), opts).and_then(|s| read_all(s, 7)) {
        Ok(_) => panic!("stream {name} read fine, expected an error"),
        Err(e) => e,
    }
}

/// Asserts `e` is a format error whose message holds every `needle`.
fn assert_format(e: &Error, needles: &[&str]) {
    assert!(
        matches!(e, Error::Format { .. }),
        "expected a format error, got {e:?}"
    );
    let msg = e.to_string();
    for needle in needles {
        assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
    }
}

fn raw_opts(dtype: Dtype, endian: Endian, channels: usize, offset: u64) -> SourceOptions {
    SourceOptions {
        dtype: Some(dtype),
        endian,
        offset,
        channels,
        ..SourceOptions::default()
    }
}

const ALL_DTYPES: [Dtype; 8] = [
    Dtype::F32,
    Dtype::F64,
    Dtype::I8,
    Dtype::I16,
    Dtype::I24,
    Dtype::I32,
    Dtype::U8,
    Dtype::U16,
];

/// Stored bytes of random samples, with the values the reader must give
/// (plain and normalized), interleaved.
struct Encoded {
    bytes: Vec<u8>,
    values: Vec<f32>,
    normalized: Vec<f32>,
}

/// `n` random samples of `dtype` in `endian` order, the extremes first.
fn encode(dtype: Dtype, endian: Endian, n: usize, seed: u64) -> Encoded {
    let mut rng = Rng(seed);
    let mut enc = Encoded {
        bytes: Vec::new(),
        values: Vec::new(),
        normalized: Vec::new(),
    };
    let be = endian == Endian::Big;
    match dtype {
        Dtype::F32 => {
            for i in 0..n {
                let v = if i == 0 { -0.0 } else { rng.float(1e4) as f32 };
                enc.bytes
                    .extend(if be { v.to_be_bytes() } else { v.to_le_bytes() });
                enc.values.push(v);
                enc.normalized.push(v);
            }
        }
        Dtype::F64 => {
            for i in 0..n {
                let v = if i == 0 { f64::MAX } else { rng.float(1e6) };
                enc.bytes
                    .extend(if be { v.to_be_bytes() } else { v.to_le_bytes() });
                enc.values.push(v as f32);
                enc.normalized.push(v as f32);
            }
        }
        _ => {
            let (bits, signed) = match dtype {
                Dtype::I8 => (8, true),
                Dtype::U8 => (8, false),
                Dtype::I16 => (16, true),
                Dtype::U16 => (16, false),
                Dtype::I24 => (24, true),
                _ => (32, true),
            };
            let (lo, hi) = if signed {
                (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
            } else {
                (0, (1i64 << bits) - 1)
            };
            let bias = if signed { 0 } else { 1i64 << (bits - 1) };
            let size = bits / 8;
            for i in 0..n {
                let v = match i {
                    0 => lo,
                    1 => hi,
                    2 => bias,
                    _ => rng.int(lo, hi),
                };
                let word = (v as u64).to_le_bytes();
                let mut sample: Vec<u8> = word[..size].to_vec();
                if be {
                    sample.reverse();
                }
                enc.bytes.extend(sample);
                enc.values.push(v as f32);
                enc.normalized
                    .push(((v - bias) as f64 / (1i64 << (bits - 1)) as f64) as f32);
            }
        }
    }
    enc
}

// ---------------------------------------------------------------- raw

#[test]
fn raw_round_trips_every_dtype_endianness_and_channel_count() {
    let dir = tempdir();
    for (k, dtype) in ALL_DTYPES.into_iter().enumerate() {
        for endian in [Endian::Little, Endian::Big] {
            // 1, 2 to 4 (channel count fixed at compile time) and 5 (not).
            for channels in [1, 2, 3, 4, 5] {
                for offset in [0u64, 13] {
                    let frames = 257;
                    let enc = encode(
                        dtype,
                        endian,
                        frames * channels,
                        k as u64 * 100 + channels as u64,
                    );
                    let mut bytes = vec![0x5A; offset as usize];
                    bytes.extend_from_slice(&enc.bytes);
                    let path = write_file(dir.path(), "signal.bin", &bytes);
                    let what = format!("{dtype:?} {endian:?} ×{channels} offset {offset}");
                    let mut opts = raw_opts(dtype, endian, channels, offset);
                    let source = open(&path, &opts).unwrap();
                    let info = source.info();
                    assert_eq!(info.format, Format::Raw, "{what}");
                    assert_eq!((info.dtype, info.endian), (dtype, endian), "{what}");
                    assert_eq!(info.channels, channels, "{what}");
                    assert_eq!(info.frames, Some(frames as u64), "{what}");
                    assert_eq!(info.data_offset, offset, "{what}");
                    assert_eq!(info.sample_rate, None, "{what}");
                    assert_eq!(info.path, path, "{what}");
                    for capacity in [1, 64, frames] {
                        let got = read_path(&path, &opts, capacity);
                        assert_bits_eq(&got, &planar(&enc.values, channels), &what);
                    }
                    opts.normalize = true;
                    let got = read_path(&path, &opts, 100);
                    assert_bits_eq(
                        &got,
                        &planar(&enc.normalized, channels),
                        &format!("{what} normalized"),
                    );
                }
            }
        }
    }
}

#[test]
fn raw_normalization_reaches_minus_one_and_stays_below_one() {
    let dir = tempdir();
    let bytes: Vec<u8> = [i16::MIN, i16::MAX]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = write_file(dir.path(), "x.raw", &bytes);
    let mut opts = raw_opts(Dtype::I16, Endian::Little, 1, 0);
    opts.normalize = true;
    let got = read_path(&path, &opts, 16);
    assert_eq!(got[0], [-1.0, 32767.0 / 32768.0]);
}

#[test]
fn nan_and_infinity_pass_through_bit_for_bit() {
    let dir = tempdir();
    let specials = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7FA0_0001), // signalling NaN with a payload
        f32::from_bits(0x7FC1_2345), // quiet NaN with a payload
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::MIN_POSITIVE / 4.0, // subnormal
        f32::MAX,
    ];
    for endian in [Endian::Little, Endian::Big] {
        for channels in [1, 3] {
            let bytes: Vec<u8> = specials
                .iter()
                .flat_map(|v| match endian {
                    Endian::Little => v.to_le_bytes(),
                    Endian::Big => v.to_be_bytes(),
                })
                .collect();
            let path = write_file(dir.path(), "special.f32", &bytes);
            for normalize in [false, true] {
                let mut opts = raw_opts(Dtype::F32, endian, channels, 0);
                opts.normalize = normalize;
                let got = read_path(&path, &opts, 2);
                assert_bits_eq(
                    &got,
                    &planar(&specials, channels),
                    &format!("{endian:?} ×{channels} normalize {normalize}"),
                );
            }
        }
    }
}

#[test]
fn detection_prefers_magic_over_extension() {
    let dir = tempdir();
    let npy = npy_with_npyz::<f32>(&[1.0, 2.0], &[2], None, npyz::Order::C);
    let path = write_file(dir.path(), "actually-npy.dat", &npy);
    assert_eq!(
        open(&path, &SourceOptions::default())
            .unwrap()
            .info()
            .format,
        Format::Npy
    );
    let path = write_file(dir.path(), "actually-npy.wav", &npy);
    assert_eq!(
        open(&path, &SourceOptions::default())
            .unwrap()
            .info()
            .format,
        Format::Npy
    );
    // Raw data in a file with another extension is raw.
    let path = write_file(dir.path(), "data.f32", &1.5f32.to_le_bytes());
    let source = open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(source.info().format, Format::Raw);
    assert_eq!(read_all(source, 4).unwrap(), [[1.5]]);
}

// ---------------------------------------------------------------- npy

/// An `.npy` file written by npyz (format version 1) with `dtype` (numpy
/// spelling) or npyz's default for `T`.
fn npy_with_npyz<T>(data: &[T], shape: &[u64], dtype: Option<&str>, order: npyz::Order) -> Vec<u8>
where
    T: npyz::Serialize + npyz::AutoSerialize + Copy,
{
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let dtype = match dtype {
        Some(d) => npyz::DType::Plain(d.parse().unwrap()),
        None => T::default_dtype(),
    };
    let mut w = npyz::WriteOptions::new()
        .dtype(dtype)
        .shape(shape)
        .order(order)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

/// The same array with a format version 2 or 3 header (u32 header length),
/// padded like numpy to a multiple of 64 bytes.
fn npy_as_version(v1: &[u8], version: u8) -> Vec<u8> {
    assert_eq!(v1[6], 1, "input must be version 1");
    let len = u16::from_le_bytes([v1[8], v1[9]]) as usize;
    let text = std::str::from_utf8(&v1[10..10 + len]).unwrap().trim_end();
    npy_raw_header(version, text, &v1[10 + len..])
}

/// An `.npy` file with a hand-written header dictionary.
fn npy_raw_header(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut text = dict.to_string();
    while !(prefix + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((text.len() as u16).to_le_bytes());
    } else {
        out.extend((text.len() as u32).to_le_bytes());
    }
    out.extend(text.as_bytes());
    out.extend(data);
    out
}

/// Writes `values` (interleaved, `channels` wide) as npy with npyz in every
/// header version and both shapes that fit, and checks what we read.
fn check_npy<T>(
    values: &[T],
    dtype: Option<&str>,
    want: Dtype,
    want_endian: Endian,
    to_f32: fn(T) -> f32,
) where
    T: npyz::Serialize + npyz::AutoSerialize + Copy,
{
    let dir = tempdir();
    let expected: Vec<f32> = values.iter().map(|&v| to_f32(v)).collect();
    let n = values.len() as u64;
    for (shape, channels) in [(vec![n], 1usize), (vec![n / 3, 3], 3)] {
        let v1 = npy_with_npyz(values, &shape, dtype, npyz::Order::C);
        for version in [1, 2, 3] {
            let bytes = if version == 1 {
                v1.clone()
            } else {
                npy_as_version(&v1, version)
            };
            let path = write_file(dir.path(), "a.npy", &bytes);
            let what = format!("{want:?} shape {shape:?} v{version}");
            let opts = SourceOptions {
                // Raw options must not matter for npy.
                dtype: Some(Dtype::U8),
                channels: 5,
                offset: 3,
                ..SourceOptions::default()
            };
            let source = open(&path, &opts).unwrap();
            let info = source.info().clone();
            assert_eq!(info.format, Format::Npy, "{what}");
            assert_eq!((info.dtype, info.endian), (want, want_endian), "{what}");
            assert_eq!(info.channels, channels, "{what}");
            assert_eq!(info.frames, Some(n / channels as u64), "{what}");
            assert_eq!(info.sample_rate, None, "{what}");
            assert_eq!(
                info.data_offset as usize,
                bytes.len() - values.len() * want.size(),
                "{what}"
            );
            assert_eq!(
                info.data_offset % 64,
                0,
                "{what}: numpy aligns data to 64 bytes"
            );
            for capacity in [1, 7, 1000] {
                assert_bits_eq(
                    &read_path(&path, &opts, capacity),
                    &planar(&expected, channels),
                    &what,
                );
            }
            // The same through the stream reader.
            let stream = from_reader("-", Cursor::new(bytes.clone()), &opts).unwrap();
            assert_eq!(stream.info().frames, info.frames, "{what} stream");
            assert_eq!(stream.info().data_offset, info.data_offset, "{what} stream");
            assert_bits_eq(
                &read_all(stream, 7).unwrap(),
                &planar(&expected, channels),
                &format!("{what} stream"),
            );
        }
    }
}

#[test]
fn npy_f4_f8_i2_i4_u1_in_every_header_version() {
    let mut rng = Rng(7);
    let n = 300; // a multiple of 3 for the 2-D shape
    let f4: Vec<f32> = (0..n).map(|_| rng.float(100.0) as f32).collect();
    let f8: Vec<f64> = (0..n).map(|_| rng.float(1e9)).collect();
    let i2: Vec<i16> = (0..n)
        .map(|i| if i == 0 { i16::MIN } else { rng.next() as i16 })
        .collect();
    let i4: Vec<i32> = (0..n).map(|_| rng.next() as i32).collect();
    let u1: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let u2: Vec<u16> = (0..n).map(|_| rng.next() as u16).collect();
    let i1: Vec<i8> = (0..n).map(|_| rng.next() as i8).collect();
    check_npy(&f4, None, Dtype::F32, Endian::Little, |v| v);
    check_npy(&f4, Some(">f4"), Dtype::F32, Endian::Big, |v| v);
    check_npy(&f8, None, Dtype::F64, Endian::Little, |v| v as f32);
    check_npy(&f8, Some(">f8"), Dtype::F64, Endian::Big, |v| v as f32);
    check_npy(&i2, None, Dtype::I16, Endian::Little, f32::from);
    check_npy(&i2, Some(">i2"), Dtype::I16, Endian::Big, f32::from);
    check_npy(&i4, None, Dtype::I32, Endian::Little, |v| v as f32);
    check_npy(&i4, Some(">i4"), Dtype::I32, Endian::Big, |v| v as f32);
    check_npy(&u1, None, Dtype::U8, Endian::Little, f32::from);
    check_npy(&u2, Some(">u2"), Dtype::U16, Endian::Big, f32::from);
    check_npy(&i1, None, Dtype::I8, Endian::Little, f32::from);
}

#[test]
fn npy_normalize_and_sample_rate_option() {
    let dir = tempdir();
    let bytes = npy_with_npyz::<i16>(&[-32768, 0, 16384], &[3], None, npyz::Order::C);
    let path = write_file(dir.path(), "n.npy", &bytes);
    let opts = SourceOptions {
        normalize: true,
        sample_rate: Some(250.0),
        ..SourceOptions::default()
    };
    let source = open(&path, &opts).unwrap();
    assert_eq!(source.info().sample_rate, Some(250.0));
    assert_eq!(read_all(source, 8).unwrap(), [[-1.0, 0.0, 0.5]]);
}

#[test]
fn npy_trailing_bytes_are_ignored() {
    let dir = tempdir();
    let mut bytes = npy_with_npyz::<f32>(&[1.0, 2.0, 3.0], &[3], None, npyz::Order::C);
    bytes.extend([0xEE; 5]);
    let path = write_file(dir.path(), "t.npy", &bytes);
    let source = open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(source.info().frames, Some(3));
    assert_eq!(read_all(source, 2).unwrap(), [[1.0, 2.0, 3.0]]);
    let stream = from_reader("t.npy", Cursor::new(bytes), &SourceOptions::default()).unwrap();
    assert_eq!(read_all(stream, 2).unwrap(), [[1.0, 2.0, 3.0]]);
}

#[test]
fn npy_bad_inputs() {
    let dir = tempdir();
    let opts = SourceOptions::default();
    let check = |name: &str, bytes: &[u8], needles: &[&str]| {
        let path = write_file(dir.path(), name, bytes);
        assert_format(&open_err(&path, &opts), needles);
        assert_format(&stream_err(name, bytes.to_vec(), &opts), needles);
    };

    // The header declares 1000 × 2 f32 (8000 bytes); only 4000 follow.
    let full = npy_with_npyz::<f32>(&vec![0.5; 2000], &[1000, 2], None, npyz::Order::C);
    let lying = &full[..full.len() - 4000];
    check(
        "lying.npy",
        lying,
        &[
            "npy header declares 1000 samples × 2 channels (8000 bytes)",
            "holds only 4000 bytes",
        ],
    );
    // Header cut short, and garbage in the header.
    check("cut.npy", &full[..40], &["invalid or truncated npy header"]);
    check("cut8.npy", &full[..8], &["invalid or truncated npy header"]);
    check(
        "garbage.npy",
        &npy_raw_header(1, "{'descr': '<f4', 'shape': (3,), oops", &[0; 12]),
        &["invalid or truncated npy header"],
    );
    check(
        "nokey.npy",
        &npy_raw_header(1, "{'descr': '<f4', 'shape': (3,), }", &[0; 12]),
        &["invalid or truncated npy header", "fortran_order"],
    );
    let mut huge = b"\x93NUMPY\x02\x00".to_vec();
    huge.extend(0xFFFF_FF00u32.to_le_bytes());
    huge.extend([b' '; 100]);
    check("huge.npy", &huge, &["invalid or truncated npy header"]);
    check(
        "v9.npy",
        &npy_raw_header(1, "{}", &[])
            .iter()
            .enumerate()
            .map(|(i, &b)| if i == 6 { 9 } else { b })
            .collect::<Vec<_>>(),
        &["invalid or truncated npy header", "version 9"],
    );
    // Unsupported dtypes.
    // complex256 (numpy's clongdouble); complex64/128 are read (tests/complex.rs).
    for descr in ["<c32", "|b1", "<u4", "<i8", "<f2", "|O"] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
        let name = format!("dtype{}.npy", descr.replace(['<', '|'], ""));
        check(
            &name,
            &npy_raw_header(1, &dict, &[0; 32]),
            &[&format!("unsupported dtype '{descr}'"), "supported: <f4"],
        );
    }
    let structured =
        "{'descr': [('a', '<f4'), ('b', '<i2')], 'fortran_order': False, 'shape': (2,), }";
    check(
        "rec.npy",
        &npy_raw_header(1, structured, &[0; 12]),
        &["unsupported dtype", "structured"],
    );
    // Shapes.
    check(
        "3d.npy",
        &npy_with_npyz::<f32>(&[0.0; 8], &[2, 2, 2], None, npyz::Order::C),
        &["3-dimensional", "(samples, channels)"],
    );
    check(
        "0d.npy",
        &npy_raw_header(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            &[0; 4],
        ),
        &["0-dimensional"],
    );
    check(
        "fortran.npy",
        &npy_with_npyz::<f32>(&[0.0; 6], &[3, 2], None, npyz::Order::Fortran),
        &["Fortran order", "not interleaved"],
    );
    check(
        "zero.npy",
        &npy_raw_header(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 0), }",
            &[],
        ),
        &["zero channels"],
    );
    check(
        "empty-array.npy",
        &npy_with_npyz::<f32>(&[], &[0], None, npyz::Order::C),
        &["empty: no samples"],
    );
    // An .npy name without the magic.
    check(
        "raw-inside.npy",
        &[0u8; 64],
        &["missing or invalid npy header"],
    );
    check("nothing.npy", &[], &["missing or invalid npy header"]);
    // Fortran order is fine in 1-D (the same bytes either way).
    let path = write_file(
        dir.path(),
        "f1d.npy",
        &npy_with_npyz::<f32>(&[1.0, 2.0], &[2], None, npyz::Order::Fortran),
    );
    assert_eq!(read_path(&path, &opts, 4), [[1.0, 2.0]]);
}

// ---------------------------------------------------------------- wav

/// Writes a WAV file with hound and returns its path and the samples hound
/// reads back from it (interleaved, as f32 of their integer or float value).
fn hound_wav(dir: &Path, spec: hound::WavSpec, frames: usize, seed: u64) -> (PathBuf, Vec<f32>) {
    let path = dir.join(format!(
        "h{}-{}-{:?}.wav",
        spec.bits_per_sample, spec.channels, spec.sample_format
    ));
    let mut rng = Rng(seed);
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    let n = frames * usize::from(spec.channels);
    let bits = u32::from(spec.bits_per_sample);
    for i in 0..n {
        match spec.sample_format {
            hound::SampleFormat::Float => {
                w.write_sample(rng.float(2.0) as f32).unwrap();
            }
            hound::SampleFormat::Int => {
                let (lo, hi) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
                let v = match i {
                    0 => lo,
                    1 => hi,
                    _ => rng.int(lo, hi),
                };
                match bits {
                    8 => w.write_sample(v as i8).unwrap(),
                    16 => w.write_sample(v as i16).unwrap(),
                    _ => w.write_sample(v as i32).unwrap(),
                }
            }
        }
    }
    w.finalize().unwrap();
    let mut r = hound::WavReader::open(&path).unwrap();
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => r.samples::<i32>().map(|s| s.unwrap() as f32).collect(),
    };
    (path, samples)
}

#[test]
fn wav_from_hound_pcm_and_float_in_every_layout() {
    let dir = tempdir();
    let cases = [
        (hound::SampleFormat::Int, 8, Dtype::U8),
        (hound::SampleFormat::Int, 16, Dtype::I16),
        (hound::SampleFormat::Int, 24, Dtype::I24),
        (hound::SampleFormat::Int, 32, Dtype::I32),
        (hound::SampleFormat::Float, 32, Dtype::F32),
    ];
    for (format, bits, dtype) in cases {
        for channels in [1u16, 2, 3] {
            let spec = hound::WavSpec {
                channels,
                sample_rate: 22_050,
                bits_per_sample: bits,
                sample_format: format,
            };
            let frames = 333;
            let (path, hound_says) = hound_wav(
                dir.path(),
                spec,
                frames,
                u64::from(bits) * 10 + u64::from(channels),
            );
            let what = format!("{format:?} {bits}-bit ×{channels}");
            // hound writes WAVE_FORMAT_EXTENSIBLE for > 16 bits or > 2 channels.
            let bytes = std::fs::read(&path).unwrap();
            let extensible = bits > 16 || channels > 2;
            assert_eq!(
                bytes[20..22] == [0xFE, 0xFF],
                extensible,
                "{what}: format tag"
            );
            // 8-bit WAV is unsigned: hound gives v − 128, we give the stored byte.
            let (offset, scale) = if bits == 8 {
                (128.0, 128.0)
            } else {
                (0.0, (1u64 << (bits - 1)) as f32)
            };
            let want: Vec<f32> = hound_says.iter().map(|v| v + offset).collect();
            let opts = SourceOptions::default();
            let source = open(&path, &opts).unwrap();
            let info = source.info().clone();
            assert_eq!(info.format, Format::Wav, "{what}");
            assert_eq!((info.dtype, info.endian), (dtype, Endian::Little), "{what}");
            assert_eq!(info.channels, usize::from(channels), "{what}");
            assert_eq!(info.frames, Some(frames as u64), "{what}");
            assert_eq!(info.sample_rate, Some(22_050.0), "{what}");
            assert_eq!(info.data_offset, if extensible { 68 } else { 44 }, "{what}");
            for capacity in [1, 7, 1000] {
                assert_bits_eq(
                    &read_path(&path, &opts, capacity),
                    &planar(&want, channels.into()),
                    &what,
                );
            }
            let stream = from_reader("-", Cursor::new(bytes), &opts).unwrap();
            assert_eq!(stream.info().frames, Some(frames as u64));
            assert_bits_eq(
                &read_all(stream, 7).unwrap(),
                &planar(&want, channels.into()),
                &format!("{what} stream"),
            );
            // Normalized: hound's signed value / 2^(bits−1) for integers.
            let norm = SourceOptions {
                normalize: true,
                ..SourceOptions::default()
            };
            let want_norm: Vec<f32> = match format {
                hound::SampleFormat::Float => hound_says.clone(),
                hound::SampleFormat::Int => hound_says
                    .iter()
                    .map(|v| (*v as f64 / scale as f64) as f32)
                    .collect(),
            };
            assert_bits_eq(
                &read_path(&path, &norm, 100),
                &planar(&want_norm, channels.into()),
                &format!("{what} normalized"),
            );
        }
    }
}

/// Little-endian helpers for building WAV files byte by byte.
fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A chunk: id, size field, body, pad byte when the body is odd.
fn chunk(id: &[u8; 4], size: u32, body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend(le32(size));
    out.extend(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A plain 16-byte fmt chunk body.
fn fmt_body(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(le16(tag));
    b.extend(le16(channels));
    b.extend(le32(rate));
    b.extend(le32(rate * u32::from(block_align)));
    b.extend(le16(block_align));
    b.extend(le16(bits));
    b
}

/// A 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk body.
fn fmt_extensible(
    channels: u16,
    rate: u32,
    block_align: u16,
    container: u16,
    valid: u16,
    sub: u16,
) -> Vec<u8> {
    let mut b = fmt_body(0xFFFE, channels, rate, block_align, container);
    b.extend(le16(22));
    b.extend(le16(valid));
    b.extend(le32(0));
    b.extend(le16(sub));
    b.extend([
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    b
}

/// A RIFF WAVE file made of `chunks`.
fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend(le32(4 + body.len() as u32));
    out.extend(b"WAVE");
    out.extend(body);
    out
}

fn i16_samples(values: &[i16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn rf64_and_bw64_sizes_come_from_ds64() {
    let dir = tempdir();
    let values: Vec<i16> = (0..200).map(|i| (i * 151 - 9000) as i16).collect();
    let data = i16_samples(&values);
    for magic in [b"RF64", b"BW64"] {
        let mut ds64 = Vec::new();
        ds64.extend(0u64.to_le_bytes()); // riff size: unused by us
        ds64.extend((data.len() as u64).to_le_bytes());
        ds64.extend(100u64.to_le_bytes());
        ds64.extend(le32(0));
        let mut bytes = magic.to_vec();
        bytes.extend(le32(u32::MAX));
        bytes.extend(b"WAVE");
        bytes.extend(chunk(b"ds64", 28, &ds64));
        bytes.extend(chunk(b"fmt ", 16, &fmt_body(1, 2, 8000, 4, 16)));
        bytes.extend(chunk(b"LIST", 5, b"abcde")); // odd: padded
        bytes.extend(chunk(b"data", u32::MAX, &data));
        bytes.extend(chunk(b"id3 ", 4, b"junk")); // after the data: ignored
        let path = write_file(dir.path(), "big.wav", &bytes);
        let want = planar(&values.iter().map(|&v| f32::from(v)).collect::<Vec<_>>(), 2);
        let source = open(&path, &SourceOptions::default()).unwrap();
        assert_eq!(source.info().frames, Some(100));
        assert_eq!(source.info().sample_rate, Some(8000.0));
        assert_bits_eq(&read_all(source, 7).unwrap(), &want, "rf64 file");
        let stream = from_reader("-", Cursor::new(bytes), &SourceOptions::default()).unwrap();
        assert_eq!(stream.info().frames, Some(100));
        assert_bits_eq(&read_all(stream, 7).unwrap(), &want, "rf64 stream");
    }
    // RF64 whose data size is 0xFFFFFFFF but no ds64 chunk.
    let mut bytes = b"RF64".to_vec();
    bytes.extend(le32(u32::MAX));
    bytes.extend(b"WAVE");
    bytes.extend(chunk(b"fmt ", 16, &fmt_body(1, 2, 8000, 4, 16)));
    bytes.extend(chunk(b"data", u32::MAX, &data));
    let path = write_file(dir.path(), "nods64.wav", &bytes);
    assert_format(&open_err(&path, &SourceOptions::default()), &["ds64"]);
}

#[test]
fn riff_data_size_of_all_ones_runs_to_the_end() {
    let dir = tempdir();
    let values: Vec<i16> = (0..50).map(|i| i * 3 - 70).collect();
    let bytes = riff(&[
        chunk(b"fmt ", 16, &fmt_body(1, 1, 48_000, 2, 16)),
        chunk(b"data", u32::MAX, &i16_samples(&values)),
    ]);
    let path = write_file(dir.path(), "stream.wav", &bytes);
    let want = vec![values.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()];
    let source = open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(source.info().frames, Some(50));
    assert_bits_eq(&read_all(source, 7).unwrap(), &want, "file");
    // A stream of unknown length: frames unknown, read to the end.
    let stream = from_reader("-", Cursor::new(bytes.clone()), &SourceOptions::default()).unwrap();
    assert_eq!(stream.info().frames, None);
    assert_bits_eq(&read_all(stream, 7).unwrap(), &want, "stream");
    // A partial frame at the end is an error.
    let mut odd = bytes;
    odd.push(1);
    let path = write_file(dir.path(), "odd.wav", &odd);
    assert_format(
        &open_err(&path, &SourceOptions::default()),
        &["not a whole number of 2-byte frames"],
    );
    assert_format(
        &stream_err("-", odd, &SourceOptions::default()),
        &["stream ended in the middle of a sample"],
    );
}

#[test]
fn wav_container_size_decides_the_dtype() {
    let dir = tempdir();
    // 12-bit samples, left-justified in 16-bit containers: we give the
    // container's value (as scipy does).
    let values: Vec<i16> = vec![-32768, -16, 0, 16, 32752];
    let data = i16_samples(&values);
    let want = [values.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()];
    let plain = riff(&[
        chunk(b"fmt ", 16, &fmt_body(1, 1, 1000, 2, 12)),
        chunk(b"data", 10, &data),
    ]);
    let ext = riff(&[
        chunk(b"fmt ", 40, &fmt_extensible(1, 1000, 2, 16, 12, 1)),
        chunk(b"data", 10, &data),
    ]);
    for (name, bytes) in [("plain12.wav", plain), ("ext12.wav", ext)] {
        let path = write_file(dir.path(), name, &bytes);
        let source = open(&path, &SourceOptions::default()).unwrap();
        assert_eq!(source.info().dtype, Dtype::I16, "{name}");
        assert_bits_eq(&read_all(source, 3).unwrap(), &want, name);
    }
    // 64-bit float WAV.
    let f: Vec<f64> = vec![0.1, -2.5e-40, 1e300];
    let data: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = riff(&[
        chunk(b"fmt ", 16, &fmt_body(3, 1, 1000, 8, 64)),
        chunk(b"data", 24, &data),
    ]);
    let path = write_file(dir.path(), "f64.wav", &bytes);
    let source = open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(source.info().dtype, Dtype::F64);
    assert_bits_eq(
        &read_all(source, 3).unwrap(),
        &[f.iter().map(|&v| v as f32).collect()],
        "f64",
    );
}

#[test]
fn wav_header_longer_than_the_first_read() {
    // A 200 kB chunk before fmt: the parsers must ask for more bytes.
    let dir = tempdir();
    let values: Vec<i16> = vec![1, -2, 3, -4];
    let bytes = riff(&[
        chunk(b"JUNK", 200_001, &vec![7u8; 200_001]),
        chunk(b"fmt ", 16, &fmt_body(1, 2, 1000, 4, 16)),
        chunk(b"data", 8, &i16_samples(&values)),
    ]);
    let want = [vec![1.0, 3.0], vec![-2.0, -4.0]];
    let path = write_file(dir.path(), "junk.wav", &bytes);
    let source = open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(source.info().data_offset, 12 + 200_010 + 24 + 8);
    assert_bits_eq(&read_all(source, 3).unwrap(), &want, "file");
    let stream = from_reader("-", Cursor::new(bytes), &SourceOptions::default()).unwrap();
    assert_bits_eq(&read_all(stream, 3).unwrap(), &want, "stream");
}

#[test]
fn wav_sample_rate_option_overrides_the_file() {
    let dir = tempdir();
    let bytes = riff(&[
        chunk(b"fmt ", 16, &fmt_body(1, 1, 44_100, 2, 16)),
        chunk(b"data", 2, &[1, 0]),
    ]);
    let path = write_file(dir.path(), "r.wav", &bytes);
    let opts = SourceOptions {
        sample_rate: Some(1000.0),
        ..SourceOptions::default()
    };
    assert_eq!(open(&path, &opts).unwrap().info().sample_rate, Some(1000.0));
    assert_eq!(
        open(&path, &SourceOptions::default())
            .unwrap()
            .info()
            .sample_rate,
        Some(44_100.0)
    );
}

#[test]
fn wav_bad_inputs() {
    let dir = tempdir();
    let opts = SourceOptions::default();
    let check = |name: &str, bytes: &[u8], needles: &[&str]| {
        let path = write_file(dir.path(), name, bytes);
        assert_format(&read_err(&path, &opts), needles);
        assert_format(&stream_err(name, bytes.to_vec(), &opts), needles);
    };
    let fmt16 = chunk(b"fmt ", 16, &fmt_body(1, 2, 8000, 4, 16));
    let data = i16_samples(&[1, 2, 3, 4, 5, 6, 7, 8]);

    // Data chunk cut short (a hound file, truncated).
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let (path, _) = hound_wav(dir.path(), spec, 100, 1);
    let full = std::fs::read(&path).unwrap();
    let cut = &full[..full.len() - 100];
    check(
        "cut.wav",
        cut,
        &["truncated WAV", "declares 400 bytes", "only 300 bytes"],
    );
    // No fmt chunk, fmt after data, no data chunk.
    check(
        "nofmt.wav",
        &riff(&[chunk(b"data", 16, &data)]),
        &["no 'fmt ' chunk"],
    );
    check(
        "late-fmt.wav",
        &riff(&[chunk(b"data", 16, &data), fmt16.clone()]),
        &["no 'fmt ' chunk"],
    );
    check(
        "nodata.wav",
        &riff(std::slice::from_ref(&fmt16)),
        &["no 'data' chunk"],
    );
    check("bare.wav", &riff(&[]), &["no 'fmt ' chunk"]);
    // fmt chunk cut in the middle.
    let whole = riff(&[fmt16.clone(), chunk(b"data", 16, &data)]);
    check(
        "cutfmt.wav",
        &whole[..20],
        &["truncated WAV header", "'fmt '"],
    );
    // Zero channels.
    check(
        "zero.wav",
        &riff(&[
            chunk(b"fmt ", 16, &fmt_body(1, 0, 8000, 0, 16)),
            chunk(b"data", 16, &data),
        ]),
        &["zero channels"],
    );
    // Bit depths: a 20-bit container, 40-bit PCM, 16-bit float.
    check(
        "c20.wav",
        &riff(&[
            chunk(b"fmt ", 40, &fmt_extensible(1, 8000, 3, 20, 20, 1)),
            chunk(b"data", 3, &[0; 3]),
        ]),
        &["unsupported WAV bit depth", "20-bit"],
    );
    check(
        "b40.wav",
        &riff(&[
            chunk(b"fmt ", 16, &fmt_body(1, 1, 8000, 5, 40)),
            chunk(b"data", 5, &[0; 5]),
        ]),
        &["unsupported WAV bit depth", "40-bit"],
    );
    check(
        "f16.wav",
        &riff(&[
            chunk(b"fmt ", 16, &fmt_body(3, 1, 8000, 2, 16)),
            chunk(b"data", 2, &[0; 2]),
        ]),
        &["unsupported WAV bit depth", "16-bit float"],
    );
    // Compressed formats, directly and inside WAVE_FORMAT_EXTENSIBLE.
    check(
        "adpcm.wav",
        &riff(&[
            chunk(b"fmt ", 16, &fmt_body(2, 1, 8000, 2, 16)),
            chunk(b"data", 2, &[0; 2]),
        ]),
        &["unsupported WAV format tag 0x0002", "ADPCM"],
    );
    check(
        "ext-mulaw.wav",
        &riff(&[
            chunk(b"fmt ", 40, &fmt_extensible(1, 8000, 1, 8, 8, 7)),
            chunk(b"data", 2, &[0; 2]),
        ]),
        &["unsupported WAV format tag 0x0007"],
    );
    check(
        "short-ext.wav",
        &riff(&[
            chunk(b"fmt ", 18, &fmt_extensible(1, 8000, 2, 16, 16, 1)[..18]),
            chunk(b"data", 2, &[0; 2]),
        ]),
        &["WAVE_FORMAT_EXTENSIBLE needs 40 bytes"],
    );
    check(
        "short-fmt.wav",
        &riff(&[
            chunk(b"fmt ", 14, &fmt_body(1, 1, 8000, 2, 16)[..14]),
            chunk(b"data", 2, &[0; 2]),
        ]),
        &["needs at least 16"],
    );
    // block_align inconsistent with channels × sample size.
    check(
        "align.wav",
        &riff(&[
            chunk(b"fmt ", 16, &fmt_body(1, 2, 8000, 6, 16)),
            chunk(b"data", 12, &[0; 12]),
        ]),
        &["block_align is 6", "2 channels × 2-byte samples make 4"],
    );
    // Data size not a whole number of frames.
    check(
        "partial.wav",
        &riff(&[fmt16.clone(), chunk(b"data", 14, &data[..14])]),
        &["not a whole number of 4-byte frames"],
    );
    // Empty data chunk.
    check(
        "empty.wav",
        &riff(&[fmt16.clone(), chunk(b"data", 0, &[])]),
        &["empty: no samples"],
    );
    // A .wav name without the magic.
    check(
        "notwav.wav",
        b"just some text, not a wave file",
        &["missing or invalid WAV header"],
    );
}

// ---------------------------------------------------------------- streams

/// A reader that hands out at most three bytes per call (pipes deliver
/// short reads).
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn streams_equal_files_at_every_block_size() {
    let dir = tempdir();
    let raw = encode(Dtype::I16, Endian::Big, 3 * 1234, 99);
    let mut raw_bytes = vec![0u8; 10];
    raw_bytes.extend(&raw.bytes);
    let raw_opts = raw_opts(Dtype::I16, Endian::Big, 3, 10);
    let npy = npy_as_version(
        &npy_with_npyz::<f64>(
            &(0..2000).map(|i| f64::from(i) * 0.37).collect::<Vec<_>>(),
            &[1000, 2],
            None,
            npyz::Order::C,
        ),
        3,
    );
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let (wav_path, _) = hound_wav(dir.path(), spec, 777, 5);
    let wav = std::fs::read(&wav_path).unwrap();
    let cases = [
        ("raw", raw_bytes, raw_opts, None),
        ("npy", npy, SourceOptions::default(), Some(1000)),
        ("wav", wav, SourceOptions::default(), Some(777)),
    ];
    for (name, bytes, opts, frames) in cases {
        let path = write_file(dir.path(), name, &bytes);
        let from_file = open(&path, &opts).unwrap();
        let file_info = from_file.info().clone();
        let want = read_all(from_file, 100_000).unwrap();
        for capacity in [1, 7, 1000] {
            let stream = from_reader("-", Cursor::new(bytes.clone()), &opts).unwrap();
            let info = stream.info().clone();
            assert_eq!(info.path, Path::new("-"));
            assert_eq!(info.frames, frames, "{name}");
            assert_eq!(
                (info.format, info.dtype, info.endian, info.channels),
                (
                    file_info.format,
                    file_info.dtype,
                    file_info.endian,
                    file_info.channels
                ),
                "{name}"
            );
            assert_eq!(
                (info.data_offset, info.sample_rate),
                (file_info.data_offset, file_info.sample_rate),
                "{name}"
            );
            assert_bits_eq(
                &read_all(stream, capacity).unwrap(),
                &want,
                &format!("{name} capacity {capacity}"),
            );
        }
        let trickle = from_reader("-", Trickle(Cursor::new(bytes.clone())), &opts).unwrap();
        assert_bits_eq(
            &read_all(trickle, 1000).unwrap(),
            &want,
            &format!("{name} short reads"),
        );
    }
}

#[test]
fn stream_bad_inputs() {
    let opts = SourceOptions::raw(Dtype::F32);
    // Raw stream ending mid-sample.
    assert_format(
        &stream_err("-", vec![0; 4 * 5 + 3], &opts),
        &["stream ended in the middle of a sample"],
    );
    // Empty stream, and one with only the offset.
    assert_format(&stream_err("-", vec![], &opts), &["empty: no samples"]);
    let skip = raw_opts(Dtype::F32, Endian::Little, 1, 100);
    assert_format(
        &stream_err("-", vec![0; 100], &skip),
        &["empty: no samples"],
    );
    assert_format(
        &stream_err("-", vec![0; 40], &skip),
        &["offset 100 is beyond the end"],
    );
    // npy stream shorter than its header says.
    let full = npy_with_npyz::<f32>(&vec![0.5; 2000], &[1000, 2], None, npyz::Order::C);
    let e = stream_err("-", full[..full.len() - 4000].to_vec(), &opts);
    assert_format(
        &e,
        &[
            "npy header declares 1000 samples × 2 channels (8000 bytes)",
            "stream holds only 4000 bytes",
        ],
    );
    // Channels 0 on a raw stream.
    let e = stream_err("-", vec![0; 8], &raw_opts(Dtype::F32, Endian::Little, 0, 0));
    assert!(matches!(e, Error::Usage { .. }), "{e:?}");
}

#[test]
fn a_fifo_is_read_as_a_stream() {
    let dir = tempdir();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    let values: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.25).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(fifo)
                .unwrap()
                .write_all(&bytes)
                .unwrap()
        })
    };
    let source = open(&fifo, &SourceOptions::raw(Dtype::F32)).unwrap();
    assert_eq!(source.info().frames, None);
    assert_bits_eq(&read_all(source, 999).unwrap(), &[values], "fifo");
    writer.join().unwrap();
}

// ---------------------------------------------------------------- bad files

#[test]
fn an_unrecognised_format_needs_a_dtype() {
    let dir = tempdir();
    // The start of a miniSEED record without its time (year 0): no npy,
    // WAV or miniSEED header, an extension naming no dtype.
    let mut record = b"000001D MXX  ELL10HHZ".to_vec();
    record.resize(512, 0);
    for name in ["rec.mseed", "rec.bin", "rec"] {
        let path = write_file(dir.path(), name, &record);
        let e = open_err(&path, &SourceOptions::default());
        // Named miniSEED, it is not taken for raw data.
        let says: &[&str] = if name == "rec.mseed" {
            &["not miniSEED"]
        } else {
            &["unrecognised format", "--dtype"]
        };
        assert_format(&e, says);
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        // The same bytes as a stream.
        assert_format(
            &stream_err(name, record.clone(), &SourceOptions::default()),
            says,
        );
        // With --dtype they are read as what the user says they are.
        let src = open(&path, &SourceOptions::raw(Dtype::I16)).unwrap();
        assert_eq!(src.info().dtype, Dtype::I16);
        assert_eq!(src.info().frames, Some(256));
    }
    // An extension that names a dtype is enough (any case), and --dtype wins
    // over it.
    for (name, dtype, frames) in [
        ("rec.f32", Dtype::F32, 128),
        ("rec.I16", Dtype::I16, 256),
        ("rec.u8", Dtype::U8, 512),
        ("rec.f64", Dtype::F64, 64),
    ] {
        let path = write_file(dir.path(), name, &record);
        let src = open(&path, &SourceOptions::default()).unwrap();
        assert_eq!(
            (src.info().dtype, src.info().frames),
            (dtype, Some(frames)),
            "{name}"
        );
        let src = open(&path, &SourceOptions::raw(Dtype::I32)).unwrap();
        assert_eq!(src.info().dtype, Dtype::I32, "{name} with --dtype i32");
    }
}

#[test]
fn missing_file_and_directory_are_open_errors() {
    let dir = tempdir();
    let e = open_err(&dir.path().join("nope.f32"), &SourceOptions::default());
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("no such file or directory"), "{e}");
    assert!(e.to_string().contains("nope.f32"), "{e}");
    let e = open_err(dir.path(), &SourceOptions::default());
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(e.to_string().ends_with("is a directory"), "{e}");
}

#[test]
fn raw_bad_inputs() {
    let dir = tempdir();
    let opts = SourceOptions::raw(Dtype::F32);
    let empty = write_file(dir.path(), "empty.raw", &[]);
    assert_format(&open_err(&empty, &opts), &["empty: no samples"]);
    let odd = write_file(dir.path(), "odd.raw", &[0; 1001]);
    assert_format(
        &open_err(&odd, &opts),
        &[
            "file size 1001 bytes (after a 0-byte offset) is not a whole number of 4-byte f32 samples × 1 channel",
        ],
    );
    assert_format(
        &open_err(&odd, &raw_opts(Dtype::I16, Endian::Little, 3, 1)),
        &[
            "file size 1000 bytes (after a 1-byte offset) is not a whole number of 2-byte i16 samples × 3 channels",
        ],
    );
    assert_format(
        &open_err(&odd, &raw_opts(Dtype::U8, Endian::Little, 1, 1001)),
        &["empty: no samples"],
    );
    assert_format(
        &open_err(&odd, &raw_opts(Dtype::U8, Endian::Little, 1, 5000)),
        &["offset 5000 is beyond the end of the file (1001 bytes)"],
    );
    let e = open_err(&odd, &raw_opts(Dtype::U8, Endian::Little, 0, 0));
    assert!(matches!(e, Error::Usage { .. }), "{e:?}");
    assert!(
        e.to_string().contains("--channels must be at least 1"),
        "{e}"
    );
    // channels 0 is a raw-only option: an npy file ignores it.
    let npy = write_file(
        dir.path(),
        "ok.npy",
        &npy_with_npyz::<f32>(&[1.0], &[1], None, npyz::Order::C),
    );
    assert!(open(&npy, &raw_opts(Dtype::U8, Endian::Little, 0, 0)).is_ok());
}

/// A 16-bit mono WAV with a LIST chunk of odd size before `data`, with or
/// without the pad byte RIFF asks for.
fn wav_with_odd_chunk(pad: bool, samples: &[i16]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&16u32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes()); // PCM
    body.extend_from_slice(&1u16.to_le_bytes()); // mono
    body.extend_from_slice(&8000u32.to_le_bytes());
    body.extend_from_slice(&16000u32.to_le_bytes());
    body.extend_from_slice(&2u16.to_le_bytes());
    body.extend_from_slice(&16u16.to_le_bytes());
    body.extend_from_slice(b"LIST");
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(b"INFOx");
    if pad {
        body.push(0);
    }
    body.extend_from_slice(b"data");
    body.extend_from_slice(&((samples.len() * 2) as u32).to_le_bytes());
    for s in samples {
        body.extend_from_slice(&s.to_le_bytes());
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

#[test]
fn an_odd_chunk_without_its_pad_byte_is_read_as_other_readers_do() {
    let dir = tempdir();
    let samples: Vec<i16> = (0..100).map(|i| i * 37 - 1800).collect();
    let want = vec![samples.iter().map(|&v| f32::from(v)).collect::<Vec<f32>>()];
    for pad in [true, false] {
        let bytes = wav_with_odd_chunk(pad, &samples);
        let path = write_file(dir.path(), &format!("odd-{pad}.wav"), &bytes);
        let src = open(&path, &SourceOptions::default()).unwrap();
        assert_eq!(src.info().frames, Some(100), "pad {pad}");
        assert_bits_eq(&read_all(src, 7).unwrap(), &want, "file");
        let src = from_reader("-", Cursor::new(bytes), &SourceOptions::default()).unwrap();
        assert_bits_eq(&read_all(src, 7).unwrap(), &want, "stream");
    }
}
