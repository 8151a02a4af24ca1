//! FLAC: lossless audio, decoded packet by packet with `symphonia`.
//!
//! Why a decoder crate: FLAC's entropy coding and prediction are a codec,
//! not a header; symphonia is pure Rust, maintained, and decodes one
//! frame (at most 65,535 samples a channel) at a time, so memory stays
//! flat. Its FLAC decoder left-justifies samples to 32 bits; they are
//! shifted back to their stored width, so integer values are kept as WAV's
//! are (16-bit 32767 → 32767.0), and `--normalize` divides by 2^(bits−1),
//! as libsndfile and `soundfile.read` give floats.
//!
//! STREAMINFO's total sample count, when the file states one, is the
//! length: a stream that ends before it is truncated (an error), and
//! frames past it are dropped, as the format says.
//!
//! Only STREAMINFO reaches symphonia: the other metadata blocks (tags,
//! pictures, cue sheets, padding) are skipped here, read through without
//! being kept. Fuzzing found that symphonia allocates a Vorbis comment's
//! declared length (up to 4 GiB) before checking it against its block;
//! sigstream needs none of those blocks, so none is parsed.

use std::io::Read;
use std::path::{Path, PathBuf};

use symphonia::core::audio::AudioBufferRef;
use symphonia::core::codecs::{CODEC_TYPE_FLAC, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{ChunkSource, Dtype, Endian, Format, SignalInfo, SourceOptions, check_block};
use crate::error::{Error, Result};
use crate::pool::Block;

/// The magic a FLAC stream starts with.
pub(super) const MAGIC: &[u8] = b"fLaC";

/// A FLAC file or stream, decoded as it is read.
pub(super) struct FlacSource {
    info: SignalInfo,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    /// Right shift back to the stored width, and the scale after it.
    shift: u32,
    scale: f32,
    /// The last packet's samples not yet given, per channel, from `used`.
    carry: Vec<Vec<f32>>,
    used: usize,
    /// Frames given so far.
    given: u64,
    done: bool,
}

impl std::fmt::Debug for FlacSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlacSource")
            .field("info", &self.info)
            .finish()
    }
}

/// Opens a regular FLAC file.
pub(super) fn open_file(
    path: &Path,
    file: std::fs::File,
    opts: &SourceOptions,
) -> Result<FlacSource> {
    open_stream(path.to_path_buf(), std::io::BufReader::new(file), opts)
}

/// Opens a FLAC stream (a file, standard input, a FIFO) that starts with
/// its magic.
pub(super) fn open_stream<R: Read + Send + Sync + 'static>(
    path: PathBuf,
    mut reader: R,
    opts: &SourceOptions,
) -> Result<FlacSource> {
    let info = stream_info(&path, &mut reader)?;
    // fLaC, then STREAMINFO as the last metadata block, then the frames.
    let mut head = MAGIC.to_vec();
    head.extend_from_slice(&[0x80, 0, 0, STREAMINFO_BYTES as u8]);
    head.extend_from_slice(&info);
    let stream = std::io::Cursor::new(head).chain(reader);
    FlacSource::open(path, Box::new(ReadOnlySource::new(stream)), opts)
}

/// Bytes of a STREAMINFO block's body.
const STREAMINFO_BYTES: usize = 34;

/// Reads the magic and every metadata block from `reader`, keeping only
/// STREAMINFO's body; leaves `reader` at the first audio frame.
fn stream_info(path: &Path, reader: &mut impl Read) -> Result<[u8; STREAMINFO_BYTES]> {
    let short = |what: &str| bad(path, format!("the stream ends inside {what}"));
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|_| short("the magic"))?;
    if magic != MAGIC {
        return Err(bad(path, "no fLaC magic"));
    }
    let mut info = None;
    loop {
        let mut h = [0u8; 4];
        reader
            .read_exact(&mut h)
            .map_err(|_| short("a metadata block header"))?;
        let last = h[0] & 0x80 != 0;
        let kind = h[0] & 0x7f;
        let len = u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]]));
        match kind {
            0 if info.is_some() => return Err(bad(path, "two STREAMINFO blocks")),
            0 if len != STREAMINFO_BYTES as u64 => {
                return Err(bad(path, format!("STREAMINFO of {len} bytes, not 34")));
            }
            0 => {
                let mut body = [0u8; STREAMINFO_BYTES];
                reader
                    .read_exact(&mut body)
                    .map_err(|_| short("STREAMINFO"))?;
                info = Some(body);
            }
            127 => return Err(bad(path, "metadata block type 127 (invalid)")),
            _ => {
                let skipped = std::io::copy(&mut reader.by_ref().take(len), &mut std::io::sink())
                    .map_err(|e| Error::io(path, e))?;
                if skipped < len {
                    return Err(short(&format!("a metadata block of type {kind}")));
                }
            }
        }
        if last {
            break;
        }
    }
    info.ok_or_else(|| bad(path, "no STREAMINFO block"))
}

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("invalid FLAC: {e}"))
}

impl FlacSource {
    fn open(path: PathBuf, source: Box<dyn MediaSource>, opts: &SourceOptions) -> Result<Self> {
        let stream = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        hint.with_extension("flac");
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| bad(&path, e))?;
        let reader = probed.format;
        let track = reader
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec == CODEC_TYPE_FLAC)
            .ok_or_else(|| bad(&path, "no FLAC track"))?;
        let params = track.codec_params.clone();
        let id = track.id;
        let channels = params.channels.map_or(0, |c| c.count());
        let bits = params.bits_per_sample.unwrap_or(0);
        if channels == 0 || !(4..=32).contains(&bits) {
            return Err(bad(
                &path,
                format!("STREAMINFO gives {channels} channels of {bits} bits"),
            ));
        }
        let rate = params.sample_rate.filter(|&r| r > 0).map(f64::from);
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions { verify: true })
            .map_err(|e| bad(&path, e))?;
        let scale = if opts.normalize {
            (0.5f64).powi(bits as i32 - 1) as f32
        } else {
            1.0
        };
        let info = SignalInfo {
            path,
            format: Format::Flac,
            dtype: match bits {
                ..=8 => Dtype::I8,
                9..=16 => Dtype::I16,
                17..=24 => Dtype::I24,
                _ => Dtype::I32,
            },
            endian: Endian::Little,
            channels,
            complex: false,
            center_frequency: None,
            annotations: Vec::new(),
            frames: params.n_frames.filter(|&n| n > 0),
            sample_rate: opts.sample_rate.or(rate),
            data_offset: 0,
            start_time: opts.start_time,
            channel_names: Vec::new(),
            segment: None,
        };
        Ok(FlacSource {
            info,
            reader,
            decoder,
            track: id,
            shift: 32 - bits,
            scale,
            carry: vec![Vec::new(); channels],
            used: 0,
            given: 0,
            done: false,
        })
    }

    /// Decodes the next packet into `carry`; false at the end.
    fn decode_next(&mut self) -> Result<bool> {
        let path = &self.info.path;
        loop {
            let packet = match self.reader.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(false);
                }
                Err(SymphoniaError::IoError(e)) => return Err(Error::io(path, e)),
                Err(e) => return Err(bad(path, e)),
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = self.decoder.decode(&packet).map_err(|e| bad(path, e))?;
            let AudioBufferRef::S32(buf) = decoded else {
                return Err(bad(path, "the decoder gave samples of an unexpected type"));
            };
            use symphonia::core::audio::Signal;
            let (shift, scale) = (self.shift, self.scale);
            for (c, carry) in self.carry.iter_mut().enumerate() {
                carry.clear();
                carry.extend(buf.chan(c).iter().map(|&s| (s >> shift) as f32 * scale));
            }
            self.used = 0;
            if buf.frames() > 0 {
                return Ok(true);
            }
        }
    }
}

impl ChunkSource for FlacSource {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        check_block(block, self.info.channels);
        block.start = self.given;
        let mut n = 0;
        let want = match self.info.frames {
            Some(total) => (total - self.given).min(block.capacity() as u64) as usize,
            None => block.capacity(),
        };
        while n < want && !self.done {
            if self.used == self.carry[0].len() && !self.decode_next()? {
                self.done = true;
                if let Some(total) = self.info.frames
                    && self.given + (n as u64) < total
                {
                    return Err(Error::format(
                        &self.info.path,
                        format!(
                            "truncated FLAC: STREAMINFO says {total} samples per channel, the stream holds {}",
                            self.given + n as u64
                        ),
                    ));
                }
                break;
            }
            let take = (self.carry[0].len() - self.used).min(want - n);
            for (c, carry) in self.carry.iter().enumerate() {
                block.channel_capacity_mut(c)[n..n + take]
                    .copy_from_slice(&carry[self.used..self.used + take]);
            }
            self.used += take;
            n += take;
        }
        block.set_frames(n);
        self.given += n as u64;
        Ok(n)
    }
}
