#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/.

Small valid inputs of every layout the readers accept, and a few of the
near misses they must refuse, so that libFuzzer starts from the formats'
real structure instead of discovering magic numbers. Deterministic: running
it again rewrites the same files (the committed ones).

    python3 fuzz/seeds.py          # needs numpy for the .npy seeds

Seeds:
- npy: numpy.save of 1-D and (n, channels) arrays of every supported dtype in
  both byte orders, format versions 1.0, 2.0 and 3.0, and the refused
  shapes (0-d, 3-d, Fortran order, empty, structured, unsupported dtype);
  plus two text kernels (the target also feeds its input to load_kernel).
- wav: PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE (PCM and
  float), RF64 and BW64 with a ds64 chunk, a RIFF data size of 0xFFFFFFFF,
  odd-sized chunks with and without their pad byte, a LIST chunk before
  'fmt ', 12-bit PCM in 16-bit containers, and A-law (refused).
- raw_options: option sets in the target's `arbitrary` encoding (see
  fuzz_targets/raw_options.rs, struct Input) followed by the data bytes.
- arrow (needs pyarrow; skipped without it): Arrow IPC files and Feather
  v2 of columns a (int16) and b (float32) in several batches, with schema
  metadata; one row; an empty batch between others; every numeric type;
  a string column; and the near misses: LZ4-compressed, nulls, a
  dictionary column, a file cut short.
- sigmf: the data file's length (8 bytes, little-endian) then a
  `.sigmf-meta`: every meta of tests/fixtures/sigmf/ (written by the
  sigmf package) with its data file's length, and a few hand-written ones
  (minimal, later captures, core:offset, big-endian multi-channel, and
  near misses: an odd cf32 length, u32, header bytes in a later capture).
"""

import io
import math
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def signal(n, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    x = np.sin(2 * np.pi * t * (0.03 + 0.01 * np.arange(channels)))
    x = x + 0.1 * rng.standard_normal((n, channels))
    return x[:, 0] if channels == 1 else x


# ------------------------------------------------------------------ npy


def npy_bytes(a, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a)
    else:
        np.lib.format.write_array(buf, a, version=version)
    return buf.getvalue()


def npy_seeds():
    x = signal(64)
    for dt in ["<f4", ">f4", "<f8", ">f8", "|i1", "<i2", ">i2", "<i4", ">i4", "|u1", "<u2", ">u2"]:
        kind = np.dtype(dt).kind
        scale = 1 if kind == "f" else min(100, np.iinfo(np.dtype(dt)).max)
        v = x * scale
        if kind == "u":
            v = v + scale
        write("npy", f"mono_{dt[1:]}{'_be' if dt[0] == '>' else ''}.npy", npy_bytes(v.astype(dt)))
    write("npy", "stereo_f4.npy", npy_bytes(signal(32, 2).astype("<f4")))
    write("npy", "five_ch_i2.npy", npy_bytes((signal(16, 5) * 1000).astype(">i2")))
    write("npy", "v2_f4.npy", npy_bytes(signal(16).astype("<f4"), version=(2, 0)))
    write("npy", "v3_f4.npy", npy_bytes(signal(16).astype("<f4"), version=(3, 0)))
    # Refused layouts.
    write("npy", "fortran.npy", npy_bytes(np.asfortranarray(signal(8, 3).astype("<f4"))))
    write("npy", "scalar.npy", npy_bytes(np.array(1.5, dtype="<f4")))
    write("npy", "three_d.npy", npy_bytes(np.zeros((2, 2, 2), dtype="<f4")))
    write("npy", "empty.npy", npy_bytes(np.zeros(0, dtype="<f4")))
    write("npy", "zero_channels.npy", npy_bytes(np.zeros((4, 0), dtype="<f4")))
    write("npy", "structured.npy", npy_bytes(np.zeros(4, dtype=[("a", "<f4"), ("b", "<i2")])))
    write("npy", "complex.npy", npy_bytes(np.zeros(4, dtype="<c8")))
    write("npy", "i8.npy", npy_bytes(np.arange(8, dtype="<i8")))
    # Truncated data: the header declares more than the file holds.
    write("npy", "short.npy", npy_bytes(signal(32).astype("<f4"))[:-10])
    # Text kernels for load_kernel.
    write("npy", "kernel.txt", b"# moving average\n0.25, 0.5 0.25\n")
    write("npy", "kernel_bad.txt", b"1 2 x\n")


# ------------------------------------------------------------------ wav


def chunk(cid, body, pad=True):
    out = cid + struct.pack("<I", len(body)) + body
    if pad and len(body) % 2:
        out += b"\0"
    return out


def fmt_body(tag, channels, rate, bits, container=None):
    container = container or bits
    block = channels * ((container + 7) // 8)
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def extensible(sub_tag, channels, rate, bits, valid=None):
    base = fmt_body(0xFFFE, channels, rate, bits)
    guid = struct.pack("<H", sub_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return base + struct.pack("<HHI", 22, valid or bits, 0) + guid


def riff(chunks, magic=b"RIFF", size=None):
    body = b"WAVE" + b"".join(chunks)
    return magic + struct.pack("<I", len(body) if size is None else size) + body


def pcm(frames, channels, bits):
    x = signal(frames, channels).reshape(frames, channels)
    if bits == 8:
        return (x * 100 + 128).astype("u1").tobytes()
    if bits == 16:
        return (x * 30000).astype("<i2").tobytes()
    if bits == 24:
        v = (x * 8_000_000).astype("<i4").reshape(-1)
        return b"".join(int(s).to_bytes(4, "little", signed=True)[:3] for s in v)
    if bits == 32:
        return (x * 1_500_000_000).astype("<i4").tobytes()
    raise ValueError(bits)


def wav_seeds():
    rate = 8000
    for bits, ch in [(8, 1), (16, 2), (24, 1), (32, 3)]:
        data = pcm(24, ch, bits)
        write("wav", f"pcm{bits}_{ch}ch.wav", riff([chunk(b"fmt ", fmt_body(1, ch, rate, bits)), chunk(b"data", data)]))
    for bits, dt in [(32, "<f4"), (64, "<f8")]:
        data = signal(24, 2).astype(dt).tobytes()
        write("wav", f"float{bits}.wav", riff([chunk(b"fmt ", fmt_body(3, 2, rate, bits)), chunk(b"data", data)]))
    write("wav", "ext_pcm16.wav", riff([chunk(b"fmt ", extensible(1, 2, rate, 16)), chunk(b"data", pcm(16, 2, 16))]))
    write("wav", "ext_pcm24_valid20.wav", riff([chunk(b"fmt ", extensible(1, 1, rate, 24, 20)), chunk(b"data", pcm(16, 1, 24))]))
    write("wav", "ext_float32.wav", riff([chunk(b"fmt ", extensible(3, 1, rate, 32)), chunk(b"data", signal(16).astype("<f4").tobytes())]))
    # RF64 / BW64: sizes in ds64 (riffSize, dataSize, sampleCount, table length).
    data = pcm(20, 1, 16)
    ds64 = struct.pack("<QQQI", 0, len(data), 20, 0)
    for magic in (b"RF64", b"BW64"):
        write("wav", f"{magic.decode().lower()}.wav", riff(
            [chunk(b"ds64", ds64), chunk(b"fmt ", fmt_body(1, 1, rate, 16)), chunk(b"data", data)[:4] + b"\xff\xff\xff\xff" + data],
            magic=magic, size=0xFFFFFFFF))
    # A streaming writer's RIFF: data size unknown, runs to the end.
    write("wav", "riff_unknown_size.wav", riff(
        [chunk(b"fmt ", fmt_body(1, 1, rate, 16)), b"data\xff\xff\xff\xff" + data], size=0xFFFFFFFF))
    # Odd-sized chunks before 'fmt ', padded and not.
    info = b"INFOISFT" + struct.pack("<I", 5) + b"fuzz\0"
    write("wav", "list_padded.wav", riff([chunk(b"LIST", info + b"x"), chunk(b"fmt ", fmt_body(1, 1, rate, 16)), chunk(b"data", data)]))
    write("wav", "odd_unpadded.wav", riff([chunk(b"junk", b"abc", pad=False), chunk(b"fmt ", fmt_body(1, 1, rate, 16)), chunk(b"data", data)]))
    write("wav", "pcm12.wav", riff([chunk(b"fmt ", fmt_body(1, 1, rate, 12, 16)), chunk(b"data", data)]))
    write("wav", "alaw.wav", riff([chunk(b"fmt ", fmt_body(6, 1, rate, 8)), chunk(b"data", b"\x55" * 16)]))
    write("wav", "no_fmt.wav", riff([chunk(b"data", data)]))
    write("wav", "truncated.wav", riff([chunk(b"fmt ", fmt_body(1, 2, rate, 16)), chunk(b"data", pcm(32, 2, 16))])[:-7])


# ------------------------------------------------------------ raw_options
# The target's `arbitrary` encoding (arbitrary 1.x): u8 and bool one byte
# each (bool = low bit), integers little-endian, Option = a bool then the
# value, an enum = a u32 whose (v * variants) >> 32 is the variant, a Vec =
# a "more" bool before each element; the last field (data) takes the rest.

NAMES = ["f32", "f64", "i8", "i16", "i32", "u8", "u16", "I16", "F64", "i24", "", "f16"]
EXTS = ["bin", "f32", "i16", "u8", "", "npy", "wav"]


def u8(v):
    return bytes([v])


def boolean(b):
    return u8(1 if b else 0)


def none():
    return u8(0)


def some(b):
    return u8(1) + b


def num(v):
    """Num: tag 0 + u8, tag 3 + u16, tag 4 + u32, tag 5 + u64."""
    if v < 256:
        return u8(0) + u8(v)
    if v < 1 << 16:
        return u8(3) + struct.pack("<H", v)
    if v < 1 << 32:
        return u8(4) + struct.pack("<I", v)
    return u8(5) + struct.pack("<Q", v)


def flt(v):
    """Float: tag 0 + i16 in quarters when exact, else tag 2 + the f64's bits."""
    q = v * 4
    if q == int(q) and -32768 <= q < 32768:
        return u8(0) + struct.pack("<h", int(q))
    return u8(2) + struct.pack("<d", v)


def variant(i, count):
    return struct.pack("<I", math.ceil(i * (1 << 32) / count))


def name(n):
    return u8(NAMES.index(n))


def options(dtype="f32", big=False, offset=0, channels=1, rate=None, normalize=False,
            ext="bin", filt=b"", conv=0, det=b"", mem=None, chunk=None, threads=1, spectral=b""):
    return (name(dtype) + boolean(big) + num(offset) + num(channels)
            + (some(flt(rate)) if rate is not None else none())
            + boolean(normalize) + u8(EXTS.index(ext))
            + (some(filt) if filt else none()) + u8(conv)
            + (some(det) if det else none())
            + (some(num(mem)) if mem is not None else none())
            + (some(num(chunk)) if chunk is not None else none())
            + num(threads)
            + (some(spectral) if spectral else none()))


def kernel(taps):
    return variant(0, 6) + b"".join(u8(1) + flt(t) for t in taps) + u8(0)


def moving_average(n):
    return variant(1, 6) + num(n)


def lowpass(cutoff, taps):
    return variant(2, 6) + flt(cutoff) + num(taps)


def highpass(cutoff, taps):
    return variant(3, 6) + flt(cutoff) + num(taps)


def bandpass(low, high, taps):
    return variant(5, 6) + flt(low) + flt(high) + num(taps)


def detector(kind, on, off=None, sta=None, lta=None, max_len=None):
    def window(w):
        return none() if w is None else some(variant(0, 2) + num(w))
    return (u8(kind) + some(flt(on)) + (some(flt(off)) if off is not None else none())
            + window(sta) + window(lta) + (some(num(max_len)) if max_len is not None else none()))


def spectral(nfft, hop=None, noverlap=None, window=0, detrend=False, scale=0, density=True):
    return (num(nfft) + (some(num(hop)) if hop is not None else none())
            + (some(num(noverlap)) if noverlap is not None else none())
            + u8(window) + boolean(detrend) + u8(scale) + boolean(density))


def raw_seeds():
    x = signal(256, 2)
    f32 = x.astype("<f4").tobytes()
    i16be = (x * 3000).astype(">i2").tobytes()
    u8data = (x[:, 0] * 100 + 128).astype("u1").tobytes()
    seeds = {
        "f32_threshold": options(channels=2, filt=moving_average(3), det=detector(0, 0.5, 0.2)) + f32,
        "i16be_offset_stalta": options(dtype="i16", big=True, offset=4, channels=2, rate=100.0,
                                       filt=lowpass(10.0, 11), det=detector(1, 2.0, 1.0, sta=4, lta=32)) + b"HEAD" + i16be,
        "u8_normalize_recursive": options(dtype="u8", normalize=True, ext="u8", filt=highpass(5.0, 11), conv=2,
                                          rate=100.0, det=detector(2, 1.5, 0.5, sta=3, lta=30, max_len=50)) + u8data,
        "ext_dtype_bandpass": options(dtype="", ext="i16", rate=200.0, filt=bandpass(5.0, 40.0, 31),
                                      spectral=spectral(32, hop=8, window=1, detrend=True)) + i16be[:256],
        "kernel_chunked": options(channels=2, filt=kernel([0.25, 0.5, 0.25]), chunk=7, mem=16, threads=2) + f32[:512],
        "spectral_welch": options(dtype="f64", rate=1000.0, spectral=spectral(16, noverlap=8, window=2, scale=2, density=False))
                          + signal(64).astype("<f8").tobytes(),
        "npy_named": options(dtype="", ext="npy", det=detector(0, 0.5)) + npy_bytes(signal(32).astype("<f4")),
        "absurd_channels": options(dtype="i32", channels=(1 << 62) + 1, filt=moving_average(1 << 40)) + b"\0" * 8,
        "absurd_windows": options(rate=1e9, det=detector(1, 2.0, sta=1 << 20, lta=1 << 40), spectral=spectral(1 << 40)) + f32[:64],
    }
    for n, b in seeds.items():
        write("raw_options", n, b)


# ------------------------------------------------------------------ sigmf


def sigmf_seeds():
    import glob
    import json

    fixtures = os.path.join(os.path.dirname(ROOT), "..", "tests", "fixtures", "sigmf")
    for meta in sorted(glob.glob(os.path.join(fixtures, "*.sigmf-meta"))):
        with open(meta, "rb") as f:
            text = f.read()
        dataset = json.loads(text)["global"].get("core:dataset")
        data = os.path.join(fixtures, dataset) if dataset else meta[: -len("meta")] + "data"
        name = os.path.basename(meta)[: -len(".sigmf-meta")]
        write("sigmf", name, struct.pack("<Q", os.path.getsize(data)) + text)

    def meta(global_, captures=(), annotations=()):
        return json.dumps({"global": global_, "captures": list(captures),
                           "annotations": list(annotations)}).encode()

    seeds = {
        "minimal": (64, meta({"core:datatype": "ri16_le"})),
        "later_captures": (4096, meta(
            {"core:datatype": "cu8", "core:sample_rate": 2.4e6, "core:offset": 5},
            [{"core:sample_start": 5, "core:frequency": 1e8, "core:datetime": "2024-01-01T00:00:00Z"},
             {"core:sample_start": 1005, "core:frequency": 1.01e8},
             {"core:sample_start": 1500, "core:datetime": "2024-01-01T00:00:01.5Z"}],
            [{"core:sample_start": 6 + i, "core:sample_count": 3, "core:label": f"a{i}"} for i in range(8)])),
        "be_channels": (3 * 4 * 8 + 12, meta(
            {"core:datatype": "cf64_be", "core:num_channels": 3, "core:trailing_bytes": 4},
            [{"core:sample_start": 0, "core:header_bytes": 8}])),
        "odd_cf32": (12, meta({"core:datatype": "cf32_le"})),
        "u32": (16, meta({"core:datatype": "ru32_le"})),
        "later_header": (64, meta({"core:datatype": "ci8"},
                                   [{"core:sample_start": 0}, {"core:sample_start": 4, "core:header_bytes": 2}])),
    }
    for n, (length, text) in seeds.items():
        write("sigmf", n, struct.pack("<Q", length) + text)


def arrow_seeds():
    """Small Arrow IPC files written by pyarrow (skipped without it): the
    target reads columns named a and b when the input's length says so."""
    try:
        import pyarrow as pa
        import pyarrow.feather as feather
        import pyarrow.ipc as ipc
    except ImportError:
        print("pyarrow is not installed: no arrow seeds")
        return

    def ipc_file(table, chunk=None, batches=None):
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, table.schema) as w:
            for b in batches if batches is not None else table.to_batches(max_chunksize=chunk):
                w.write_batch(b)
        return sink.getvalue().to_pybytes()

    def feather_bytes(table, **kw):
        sink = pa.BufferOutputStream()
        feather.write_feather(table, sink, **kw)
        return sink.getvalue().to_pybytes()

    x = signal(40, 2)
    ab = pa.table({"a": (x[:, 0] * 1000).astype("<i2"), "b": x[:, 1].astype("<f4")})
    ab = ab.replace_schema_metadata({"sample_rate": "100", "start_time": "2024-01-01T00:00:00Z"})
    write("arrow", "two_batches.arrow", ipc_file(ab, 16))
    write("arrow", "one_row.arrow", ipc_file(ab.slice(0, 1)))
    empty = ab.slice(0, 0).to_batches() or [pa.record_batch([pa.array([], pa.int16()), pa.array([], pa.float32())], schema=ab.schema)]
    parts = ab.to_batches(max_chunksize=10)
    write("arrow", "empty_batch.arrow", ipc_file(ab, batches=parts[:2] + empty + parts[2:]))
    types = {t: pa.array(np.arange(-3, 5) * (1 if t.startswith(("int", "float")) else -1) % 7, type=t)
             for t in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                       "float16", "float32", "float64"]}
    types["a"] = types.pop("int16")
    types["b"] = types.pop("float64")
    write("arrow", "all_types.arrow", ipc_file(pa.table(types)))
    with_label = ab.append_column("label", pa.array(["p", "q"] * 20))
    write("arrow", "label.feather", feather_bytes(with_label, compression="uncompressed", chunksize=16))
    write("arrow", "lz4.feather", feather_bytes(ab))
    nulls = pa.table({"a": pa.array([1, None, 3], pa.int16()), "b": pa.array([1.0, 2.0, None], pa.float32())})
    write("arrow", "nulls.arrow", ipc_file(nulls))
    d = pa.table({"a": pa.array(np.arange(6, dtype="<i2")), "b": pa.array(["s", "t"] * 3).dictionary_encode()})
    write("arrow", "dict.arrow", ipc_file(d))
    write("arrow", "cut.arrow", ipc_file(ab, 16)[:-30])


if __name__ == "__main__":
    npy_seeds()
    wav_seeds()
    raw_seeds()
    sigmf_seeds()
    arrow_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(ROOT) for f in fs)
    count = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print(f"{count} seeds, {total} bytes, in {ROOT}")
