//! Arrow: Feather v2 / Arrow IPC files written by pyarrow as input
//! (tests/fixtures/make_arrow.py), read as numpy converts their columns and
//! processed as the same samples given as raw f32; events written as Arrow
//! IPC and Parquet, read back with arrow-rs's readers, equal to the events
//! CSV row for row; refusals of bad files; flat memory.
//!
//! Every comparison of samples and events is exact: the reader converts
//! each stored value once (`as f32`, as numpy's `astype(float32)` rounds),
//! and the events tables hold the very values the CSV prints.

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, Float32Array, Float64Array, Int16Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use cli::{assert_refused, sigstream, sigstream_bounded, stderr};
use sigstream::Event;
use sigstream::pool::Block;
use sigstream::sink::EventClock;
use sigstream::sink::events::{self, EventsFormat};
use sigstream::source::{self, ChunkSource, Dtype, Format, SourceOptions};
use sigstream::time::UtcTime;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn arrow_fixture(name: &str) -> PathBuf {
    fixture("arrow").join(name)
}

fn columns(names: &[&str]) -> SourceOptions {
    SourceOptions {
        columns: names.iter().map(|s| s.to_string()).collect(),
        ..SourceOptions::default()
    }
}

/// Every sample of `src`, read `capacity` frames at a time, checking that
/// blocks are full but for the last and start where the last one ended.
fn read_all(src: &mut dyn ChunkSource, capacity: usize) -> Vec<Vec<f32>> {
    let channels = src.info().channels;
    let frames = src.info().frames.unwrap();
    let mut block = Block::new(channels, capacity);
    let mut all = vec![Vec::new(); channels];
    let mut next = 0u64;
    loop {
        let n = src.read_block(&mut block).unwrap();
        assert_eq!(block.start, next);
        if n == 0 {
            break;
        }
        next += n as u64;
        assert!(
            n == capacity || next == frames,
            "a short block before the end"
        );
        for (c, ch) in all.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
    assert_eq!(next, frames);
    all
}

/// Interleaved little-endian f32 (numpy's `tofile`) as channels.
fn f32_planes(path: &Path, channels: usize) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (0..channels)
        .map(|c| values.iter().skip(c).step_by(channels).copied().collect())
        .collect()
}

fn bits(planes: &[Vec<f32>]) -> Vec<Vec<u32>> {
    planes
        .iter()
        .map(|p| p.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn pyarrow_feather_reads_as_numpy_converts_it_for_any_block_size() {
    let path = arrow_fixture("mixed.feather");
    let want = f32_planes(&arrow_fixture("mixed.f32"), 3);
    let mut src = source::open(&path, &columns(&["a", "b", "c"])).unwrap();
    let info = src.info().clone();
    assert_eq!(info.format, Format::Arrow);
    assert_eq!(info.channels, 3);
    assert_eq!(info.channel_names, ["a", "b", "c"]);
    assert_eq!(info.frames, Some(2000));
    assert_eq!(info.dtype, Dtype::F64, "the widest column's type");
    assert_eq!(info.sample_rate, Some(250.0), "schema metadata sample_rate");
    assert_eq!(
        info.start_time,
        Some(UtcTime::parse("2024-03-01T12:00:00.25Z").unwrap())
    );
    assert!(src.seekable());
    // The batches hold 512 rows: blocks smaller, equal to, across and
    // larger than them.
    for capacity in [1, 7, 511, 512, 513, 1000, 2000, 4096] {
        assert_eq!(
            bits(&read_all(src.as_mut(), capacity)),
            bits(&want),
            "capacity {capacity}"
        );
        src.seek(0).unwrap();
    }
    // The order --columns gives.
    let mut swapped = source::open(&path, &columns(&["c", "a"])).unwrap();
    assert_eq!(swapped.info().channel_names, ["c", "a"]);
    let got = read_all(swapped.as_mut(), 300);
    assert_eq!(bits(&got), bits(&[want[2].clone(), want[0].clone()]));
    // The options override the metadata.
    let opts = SourceOptions {
        sample_rate: Some(1000.0),
        ..columns(&["b"])
    };
    assert_eq!(
        source::open(&path, &opts).unwrap().info().sample_rate,
        Some(1000.0)
    );
}

#[test]
fn seeking_lands_on_any_row_across_batches() {
    let want = f32_planes(&arrow_fixture("mixed.f32"), 3);
    let mut src =
        source::open(&arrow_fixture("mixed.feather"), &columns(&["a", "b", "c"])).unwrap();
    let mut block = Block::new(3, 100);
    for frame in [1500u64, 0, 511, 512, 513, 1999, 1024, 1900] {
        src.seek(frame).unwrap();
        let n = src.read_block(&mut block).unwrap();
        assert_eq!(block.start, frame);
        assert_eq!(n, (2000 - frame as usize).min(100));
        for (c, w) in want.iter().enumerate() {
            assert_eq!(
                block.channel(c),
                &w[frame as usize..frame as usize + n],
                "frame {frame}"
            );
        }
    }
    src.seek(2000).unwrap();
    assert_eq!(src.read_block(&mut block).unwrap(), 0);
    assert!(src.seek(2001).is_err());
}

#[test]
fn every_numeric_type_converts_as_numpy_astype_float32() {
    let path = arrow_fixture("types.arrow");
    let names = [
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
        "float32", "float64",
    ];
    let want = f32_planes(&arrow_fixture("types.f32"), names.len());
    let mut src = source::open(&path, &SourceOptions::default()).unwrap();
    assert_eq!(src.info().channel_names, names);
    assert_eq!(src.info().sample_rate, None, "no metadata");
    let got = read_all(src.as_mut(), 77);
    for (c, name) in names.iter().enumerate() {
        assert_eq!(bits(&got[c..=c]), bits(&want[c..=c]), "{name}");
    }
    // --normalize: integers scaled as the other formats scale them
    // (unsigned ones centred), floats untouched.
    let opts = SourceOptions {
        normalize: true,
        ..SourceOptions::default()
    };
    let norm = read_all(source::open(&path, &opts).unwrap().as_mut(), 300);
    let scale = |c: usize, bias: f32, scale: f32| -> Vec<f32> {
        want[c].iter().map(|&v| (v - bias) * scale).collect()
    };
    assert_eq!(norm[0], scale(0, 0.0, 1.0 / 128.0), "int8");
    assert_eq!(norm[1], scale(1, 0.0, 1.0 / 32768.0), "int16");
    assert_eq!(norm[4], scale(4, 128.0, 1.0 / 128.0), "uint8");
    assert_eq!(
        norm[6],
        scale(6, 2_147_483_648.0, 1.0 / 2_147_483_648.0),
        "uint32"
    );
    assert_eq!(norm[1][0], -1.0, "int16's minimum");
    assert_eq!(bits(&norm[8..]), bits(&want[8..]), "floats are not scaled");
}

/// `sigstream process INPUT args`, asserting success.
fn process(dir: &Path, input: &Path, args: &[&str]) {
    let mut all = vec!["process", input.to_str().unwrap(), "-q"];
    all.extend_from_slice(args);
    let out = sigstream(dir, &all);
    assert_eq!(out.status.code(), Some(0), "{all:?}: {}", stderr(&out));
}

/// The events CSV as a header and rows of fields.
fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn processing_arrow_equals_processing_the_same_samples_as_raw_f32_for_any_chunk_size() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let job = [
        "--moving-average",
        "3",
        "--detect",
        "threshold",
        "--on",
        "20",
        "--off",
        "10",
    ];
    let raw = arrow_fixture("mixed.f32");
    let mut args = job.to_vec();
    args.extend([
        "--channels",
        "3",
        "--sample-rate",
        "250",
        "--start-time",
        "2024-03-01T12:00:00.25Z",
        "-o",
        "raw.f32",
        "--events",
        "raw.csv",
    ]);
    process(dir, &raw, &args);
    let (_, raw_rows) = csv_rows(&dir.join("raw.csv"));
    for c in ["0", "1", "2"] {
        assert!(raw_rows.iter().any(|r| r[0] == c), "events on channel {c}");
    }
    let want = std::fs::read(dir.join("raw.f32")).unwrap();
    for chunk in [
        None,
        Some("1"),
        Some("7"),
        Some("511"),
        Some("512"),
        Some("999"),
    ] {
        let mut args = job.to_vec();
        args.extend(["--columns", "a,b,c", "-o", "out.f32", "--events", "ev.csv"]);
        if let Some(c) = chunk {
            args.extend(["--chunk-size", c]);
        }
        process(dir, &arrow_fixture("mixed.feather"), &args);
        assert!(
            std::fs::read(dir.join("out.f32")).unwrap() == want,
            "output, chunk {chunk:?}"
        );
        // The same events; the Arrow input's channels carry their names.
        let (header, rows) = csv_rows(&dir.join("ev.csv"));
        assert_eq!(header[0], "channel");
        assert_eq!(header[5], "channel_index");
        assert_eq!(rows.len(), raw_rows.len(), "chunk {chunk:?}");
        for (r, w) in rows.iter().zip(&raw_rows) {
            assert_eq!(["a", "b", "c"][w[0].parse::<usize>().unwrap()], r[0]);
            assert_eq!(r[1..5], w[1..5], "chunk {chunk:?}");
            assert_eq!(r[6..], w[5..], "times, chunk {chunk:?}");
        }
    }
    // Random access (the noise estimate seeks) gives the same levels and
    // events as the raw file's.
    let noise = [
        "--detect",
        "threshold",
        "--on-noise",
        "8",
        "--noise-chunks",
        "4",
        "--noise-chunk-samples",
        "200",
        "--events",
    ];
    let mut a = noise.to_vec();
    a.extend(["noise_raw.csv", "--channels", "3"]);
    process(dir, &raw, &a);
    let mut b = noise.to_vec();
    b.extend(["noise_arrow.csv", "--columns", "a,b,c"]);
    process(dir, &arrow_fixture("mixed.feather"), &b);
    let (_, x) = csv_rows(&dir.join("noise_raw.csv"));
    let (_, y) = csv_rows(&dir.join("noise_arrow.csv"));
    assert!(!x.is_empty());
    assert_eq!(
        x.iter().map(|r| r[1..5].to_vec()).collect::<Vec<_>>(),
        y.iter().map(|r| r[1..5].to_vec()).collect::<Vec<_>>()
    );
}

/// Every record batch of an events table, read back with arrow-rs's
/// readers.
fn read_table(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    match EventsFormat::from_path(path) {
        EventsFormat::Arrow => arrow_ipc::reader::FileReader::try_new(file, None)
            .unwrap()
            .map(Result::unwrap)
            .collect(),
        EventsFormat::Parquet => {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }
        EventsFormat::Csv => unreachable!("a table"),
    }
}

/// Asserts that the table holds exactly the CSV's rows: same column names in
/// the same order, and each cell the value the CSV's text stands for
/// (integers and names as text, floats to the bit, times to the
/// microsecond, the snippet flag as 0/1/empty).
fn assert_table_equals_csv(table: &Path, csv: &Path) {
    let (header, rows) = csv_rows(csv);
    let batches = read_table(table);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .expect("at least one batch");
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        header.iter().collect::<Vec<_>>(),
        "{}",
        table.display()
    );
    let mut r = 0;
    for batch in &batches {
        for i in 0..batch.num_rows() {
            let row = &rows[r];
            for (c, col) in batch.columns().iter().enumerate() {
                let what = format!("{} row {r} column {}", table.display(), header[c]);
                let text = &row[c];
                match col.data_type() {
                    DataType::UInt64 => {
                        let v = col.as_any().downcast_ref::<UInt64Array>().unwrap();
                        assert_eq!(v.value(i).to_string(), *text, "{what}");
                    }
                    DataType::Float64 => {
                        let v = col.as_any().downcast_ref::<Float64Array>().unwrap();
                        let want: f64 = text.parse().unwrap();
                        assert_eq!(v.value(i).to_bits(), want.to_bits(), "{what}");
                    }
                    DataType::Utf8 => {
                        let v = col.as_any().downcast_ref::<StringArray>().unwrap();
                        assert_eq!(v.value(i), text, "{what}");
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
                        assert_eq!(tz.as_ref(), "UTC");
                        let v = col
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .unwrap();
                        let t = UtcTime::from_ns(v.value(i) * 1000);
                        assert_eq!(t.to_string(), *text, "{what}");
                    }
                    DataType::Boolean => {
                        let v = col.as_any().downcast_ref::<BooleanArray>().unwrap();
                        let cell = if v.is_null(i) {
                            ""
                        } else if v.value(i) {
                            "1"
                        } else {
                            "0"
                        };
                        assert_eq!(cell, text, "{what}");
                    }
                    t => panic!("{what}: unexpected type {t}"),
                }
            }
            r += 1;
        }
    }
    assert_eq!(r, rows.len(), "{}: rows", table.display());
}

#[test]
fn events_as_arrow_and_parquet_equal_the_csv_row_for_row() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mseed = fixture("mseed.json");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mseed).unwrap()).unwrap();
    let det = &reference["detect"];
    let s = |k: &str| det[k].to_string();
    let (taps, cutoff, nsta, nlta, on, off) = (
        s("taps"),
        s("cutoff"),
        s("nsta"),
        s("nlta"),
        s("on"),
        s("off"),
    );
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        // Named channels, a rate and a start time, snippets: every column.
        (
            "mixed",
            arrow_fixture("mixed.feather"),
            vec![
                "--columns",
                "a,b,c",
                "--moving-average",
                "3",
                "--detect",
                "threshold",
                "--on",
                "3000",
                "--snippets",
                "s.npy",
                "--snippet-samples",
                "400:400",
            ],
        ),
        // No names, no rate: the five first columns only.
        (
            "raw",
            arrow_fixture("mixed.f32"),
            vec!["--channels", "3", "--detect", "threshold", "--on", "30"],
        ),
        // Two segments: a segment column, the clock changing between them.
        (
            "gappy",
            fixture("gappy.mseed"),
            vec![
                "--select",
                "XX.GAP.00.BHZ",
                "--lowpass",
                &cutoff,
                "--taps",
                &taps,
                "--detect",
                "sta-lta",
                "--sta",
                &nsta,
                "--lta",
                &nlta,
                "--on",
                &on,
                "--off",
                &off,
            ],
        ),
    ];
    for (name, input, args) in &cases {
        let mut tables = Vec::new();
        for ext in ["csv", "arrow", "feather", "parquet"] {
            let out = format!("{name}.{ext}");
            let mut a = args.clone();
            a.extend(["--events", &out]);
            process(dir, input, &a);
            tables.push(dir.join(out));
        }
        let (header, rows) = csv_rows(&tables[0]);
        assert!(rows.len() > 1, "{name}: events found");
        match *name {
            "mixed" => {
                assert_eq!(header.last().unwrap(), "snippet_padded");
                assert!(rows.iter().any(|r| r.last().unwrap() == "1"), "padded");
                assert!(header.contains(&"peak_time".to_string()));
            }
            "raw" => assert_eq!(
                header,
                ["channel", "start", "end", "peak_index", "peak_value"]
            ),
            _ => {
                assert!(header.contains(&"segment".to_string()));
                let seg = header.iter().position(|h| h == "segment").unwrap();
                assert!(rows.iter().any(|r| r[seg] == "0") && rows.iter().any(|r| r[seg] == "1"));
            }
        }
        for table in &tables[1..] {
            assert_table_equals_csv(table, &tables[0]);
        }
        assert_eq!(
            std::fs::read(&tables[1]).unwrap(),
            std::fs::read(&tables[2]).unwrap(),
            ".arrow and .feather are the same format"
        );
    }
    // Nothing but the outputs is left in the directory.
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".sigstream"), "left behind: {name}");
    }
}

#[test]
fn many_events_are_written_in_bounded_batches() {
    // More events than one batch holds: a threshold below every sample's
    // magnitude makes each run of samples above it an event.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let n = 3 * events::BATCH_ROWS + 1234;
    let signal: Vec<f32> = (0..2 * n)
        .map(|i| if i % 2 == 0 { 10.0 } else { 0.0 })
        .collect();
    let input = dir.join("x.f32");
    std::fs::write(&input, bytemuck::cast_slice(&signal)).unwrap();
    for ext in ["csv", "arrow", "parquet"] {
        process(
            dir,
            &input,
            &[
                "--detect",
                "threshold",
                "--on",
                "5",
                "--sample-rate",
                "100",
                "--events",
                &format!("many.{ext}"),
            ],
        );
    }
    let batches = read_table(&dir.join("many.arrow"));
    assert!(batches.len() >= 4, "{} batches", batches.len());
    assert!(batches.iter().all(|b| b.num_rows() <= events::BATCH_ROWS));
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), n);
    assert_table_equals_csv(&dir.join("many.arrow"), &dir.join("many.csv"));
    assert_table_equals_csv(&dir.join("many.parquet"), &dir.join("many.csv"));
    let file = std::fs::File::open(dir.join("many.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader as _;
    let meta = reader.metadata();
    assert!(meta.num_row_groups() >= 4, "one row group per batch");
    assert_eq!(
        meta.row_group(0).column(0).compression(),
        parquet::basic::Compression::SNAPPY
    );
}

#[test]
fn a_failed_run_leaves_no_events_table() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let input = dir.join("short.f32");
    let signal: Vec<f32> = (0..1000)
        .map(|i| if i % 100 == 0 { 9.0 } else { 0.0 })
        .collect();
    std::fs::write(&input, bytemuck::cast_slice(&signal)).unwrap();
    for ext in ["arrow", "parquet"] {
        // A stream shorter than the snippet window: known only at its end,
        // after the events were written.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigstream"))
            .current_dir(dir)
            .args([
                "process",
                "-",
                "--dtype",
                "f32",
                "--detect",
                "threshold",
                "--on",
                "5",
                "--snippets",
                "s.npy",
                "--snippet-samples",
                "600:600",
                "--events",
                &format!("ev.{ext}"),
                "-q",
            ])
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "short.f32")
            .collect();
        assert!(left.is_empty(), "{ext}: left behind {left:?}");
    }
}

#[test]
fn record_batch_is_the_csv_table_for_the_python_front() {
    let events = [
        Event {
            channel: 1,
            start: 10,
            end: 19,
            peak_index: 12,
            peak_value: 3.5,
        },
        Event {
            channel: 0,
            start: 1_000_000,
            end: 1_000_001,
            peak_index: 1_000_001,
            peak_value: -0.25,
        },
    ];
    let clock = EventClock {
        channel_names: vec!["X".into(), "Y".into()],
        sample_rate: Some(3.0),
        start_time: Some(UtcTime::parse("2024-03-01T00:00:00Z").unwrap()),
        segment: Some(4),
    };
    let flags = [Some(true), None];
    let batch = events::record_batch(&events, &clock, Some(&flags)).unwrap();
    assert_eq!(batch.schema(), events::schema(&clock, true));
    let names: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "channel",
            "start",
            "end",
            "peak_index",
            "peak_value",
            "channel_index",
            "segment",
            "start_s",
            "end_s",
            "peak_s",
            "start_time",
            "end_time",
            "peak_time",
            "snippet_padded"
        ]
    );
    let col = |name: &str| batch.column_by_name(name).unwrap().clone();
    let channel = col("channel");
    let channel = channel.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((channel.value(0), channel.value(1)), ("Y", "X"));
    let secs = col("start_s");
    let secs = secs.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(secs.value(0), 10.0 / 3.0);
    let t = col("end_time");
    let t = t
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    // 19 / 3 s = 6.333333333 s: 6,333,333 µs (the CSV's
    // 2024-03-01T00:00:06.333333Z).
    assert_eq!(t.value(0) - 1_709_251_200_000_000, 6_333_333);
    let flag = col("snippet_padded");
    let flag = flag.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert!(flag.value(0) && flag.is_null(1));
    // Without names or a clock: the first five columns, channel as an index.
    let bare = events::record_batch(&events, &EventClock::default(), None).unwrap();
    assert_eq!(bare.num_columns(), 5);
    assert_eq!(bare.schema().field(0).data_type(), &DataType::UInt64);
    assert!(events::record_batch(&events, &clock, Some(&flags[..1])).is_err());
}

/// Writes an Arrow IPC file of `batches` with arrow-rs.
fn write_ipc(path: &Path, schema: &Arc<Schema>, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, schema).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

/// The byte offsets, in `bytes`, of the fields of the footer's first
/// record batch block: (offset, metaDataLength, bodyLength).
fn first_block_fields(bytes: &[u8]) -> (usize, usize, usize) {
    let n = bytes.len();
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let start = n - 10 - footer_len;
    let footer = arrow_ipc::root_as_footer(&bytes[start..n - 10]).unwrap();
    let block = footer.recordBatches().unwrap().get(0);
    let at = block as *const arrow_ipc::Block as usize - bytes.as_ptr() as usize;
    // struct Block { offset: long; metaDataLength: int; (pad) bodyLength: long; }
    (at, at + 8, at + 16)
}

#[test]
fn bad_files_are_refused_with_the_path_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let refused = |file: &Path, args: &[&str], phrase: &str| {
        let mut all = vec!["info", file.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = sigstream_bounded(dir, &all);
        assert_refused(&out, file.to_str().unwrap(), phrase, &format!("{all:?}"));
    };
    // pyarrow's files that sigstream does not read.
    refused(&arrow_fixture("lz4.feather"), &[], "LZ4_FRAME-compressed");
    refused(&arrow_fixture("nulls.arrow"), &[], "holds 1 null:");
    refused(
        &arrow_fixture("dict.arrow"),
        &[],
        "column 'kind' is dictionary-encoded",
    );
    refused(&arrow_fixture("v1.feather"), &[], "Feather version 1");
    refused(&arrow_fixture("stream.arrows"), &[], "Arrow IPC stream");
    refused(
        &arrow_fixture("mixed.feather"),
        &[],
        "column 'label' is of type Utf8, not numeric",
    );
    // ... but a dictionary or string column left out is no obstacle.
    for (file, cols) in [("dict.arrow", "x"), ("mixed.feather", "c,b")] {
        let out = sigstream(
            dir,
            &[
                "info",
                arrow_fixture(file).to_str().unwrap(),
                "--columns",
                cols,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // Options that cannot apply.
    let mixed = arrow_fixture("mixed.feather");
    let out = sigstream(dir, &["info", mixed.to_str().unwrap(), "--columns", "a,zz"]);
    assert_refused(&out, "", "--columns zz", "unknown column");
    let out = sigstream(dir, &["info", mixed.to_str().unwrap(), "--columns", "a,a"]);
    assert_refused(&out, "", "names a twice", "a column twice");
    let raw = arrow_fixture("mixed.f32");
    let out = sigstream(dir, &["info", raw.to_str().unwrap(), "--columns", "a"]);
    assert_refused(
        &out,
        "--columns a",
        "not an Arrow IPC",
        "--columns on raw data",
    );
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_sigstream"))
        .args(["info", "-"])
        .stdin(std::fs::File::open(&mixed).unwrap())
        .output()
        .unwrap();
    assert_refused(&piped, "-", "read from a regular file", "standard input");

    let bytes = std::fs::read(&mixed).unwrap();
    let write = |name: &str, b: &[u8]| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    // Cut short anywhere.
    for cut in [0, 5, 8, 100, 704, 20_000, bytes.len() - 11, bytes.len() - 1] {
        refused(
            &write("cut.feather", &bytes[..cut]),
            &["--columns", "a"],
            "",
        );
    }
    // A footer that lies about its length.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 10..n - 6].copy_from_slice(&(n as i32).to_le_bytes());
    refused(&write("footer.feather", &b), &[], "the footer claims");
    b[n - 10..n - 6].copy_from_slice(&(-5i32).to_le_bytes());
    refused(&write("footer.feather", &b), &[], "the footer claims");
    // A footer whose first batch lies outside the file, or is too short
    // for its message, or points at the wrong bytes.
    let (off, meta, body) = first_block_fields(&bytes);
    for (at, value, phrase) in [
        (off, (n as i64) << 1, "outside the file"),
        (body, 1i64 << 40, "outside the file"),
        (off, 3, "outside the file"),
        (off, 8, "record batch 0"),
    ] {
        let mut b = bytes.clone();
        b[at..at + 8].copy_from_slice(&value.to_le_bytes());
        refused(&write("block.feather", &b), &["--columns", "a"], phrase);
    }
    let mut b = bytes.clone();
    b[meta..meta + 4].copy_from_slice(&4i32.to_le_bytes());
    refused(
        &write("block.feather", &b),
        &["--columns", "a"],
        "outside the file",
    );

    // A batch whose columns disagree with its length: the field node's
    // length (777, then its null count 0) lied about, either way.
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int16, false)]));
    let x = Int16Array::from_iter_values((0..777).map(|i| i as i16));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(x)]).unwrap();
    let good = dir.join("good.arrow");
    write_ipc(&good, &schema, std::slice::from_ref(&batch));
    let good_bytes = std::fs::read(&good).unwrap();
    let mut node = 777i64.to_le_bytes().to_vec();
    node.extend_from_slice(&0i64.to_le_bytes());
    let at: Vec<usize> = good_bytes
        .windows(16)
        .enumerate()
        .filter(|(_, w)| *w == node.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "the field node is found");
    for &i in &at {
        for lie in [776i64, 778, 1 << 40] {
            let mut b = good_bytes.clone();
            b[i..i + 8].copy_from_slice(&lie.to_le_bytes());
            refused(&write("lie.arrow", &b), &[], "record batch 0");
        }
    }
    // No columns; no rows.
    let empty = Arc::new(Schema::empty());
    let none = RecordBatch::try_new_with_options(
        empty.clone(),
        vec![],
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(5)),
    )
    .unwrap();
    let p = dir.join("nocolumns.arrow");
    write_ipc(&p, &empty, &[none]);
    refused(&p, &[], "no columns");
    let p = dir.join("norows.arrow");
    write_ipc(&p, &schema, &[]);
    refused(&p, &[], "empty");
    // A sample rate in the metadata that is not one.
    let meta = Arc::new(
        schema
            .as_ref()
            .clone()
            .with_metadata(std::collections::HashMap::from([(
                "sample_rate".to_string(),
                "fast".to_string(),
            )])),
    );
    let p = dir.join("rate.arrow");
    write_ipc(&p, &meta, &[batch.with_schema(meta.clone()).unwrap()]);
    refused(&p, &[], "schema metadata sample_rate");
}

#[test]
fn corrupted_bytes_are_refused_or_read_never_a_panic() {
    // A deterministic spray of byte changes over the whole file (header,
    // metadata, bodies, footer): each must open and read, or be refused as
    // bad input.
    let bytes = std::fs::read(arrow_fixture("types.arrow")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("x.arrow");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..600 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % b.len() as u64) as usize;
            b[at] = next() as u8;
        }
        std::fs::write(&path, &b).unwrap();
        match source::open(&path, &SourceOptions::default()) {
            Ok(mut src) => {
                let mut block = Block::new(src.info().channels, 64);
                loop {
                    match src.read_block(&mut block) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            assert_eq!(e.exit_code(), 2, "{e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => assert_eq!(e.exit_code(), 2, "{e}"),
        }
    }
}

/// Writes an Arrow file of two f32 columns in batches of `rows` rows each,
/// `mib` MiB of samples in all.
fn write_big(path: &Path, mib: usize, rows: usize) {
    let block: Vec<f32> = (0..1 << 16)
        .map(|i| ((i as f32) * 0.618_034).sin() * if i % 50_000 < 300 { 30.0 } else { 1.0 })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("y", DataType::Float32, false),
    ]));
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &schema).unwrap();
    let total = mib * (1 << 20) / 8;
    let mut done = 0;
    while done < total {
        let n = rows.min(total - done);
        let col = || -> Arc<dyn Array> {
            Arc::new(Float32Array::from_iter_values(
                (done..done + n).map(|i| block[i % block.len()]),
            ))
        };
        let batch = RecordBatch::try_new(schema.clone(), vec![col(), col()]).unwrap();
        w.write(&batch).unwrap();
        done += n;
    }
    w.finish().unwrap();
}

/// Peak RSS in MiB of one `sigstream process` run (the report's VmHWM).
fn peak_rss(input: &Path, dir: &Path) -> f64 {
    let report = dir.join("report.json");
    process(
        dir,
        input,
        &[
            "--moving-average",
            "3",
            "--detect",
            "threshold",
            "--on",
            "10",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    v["peak_rss_mb"].as_f64().unwrap()
}

/// tests/memory.rs's bound on the growth of peak RSS from a 64 MiB to a
/// 512 MiB input: anything proportional to the file, or to a batch, would
/// add tens to hundreds of MiB.
const MAX_GROWTH_MIB: f64 = 2.0;

#[test]
fn peak_rss_stays_flat_as_the_file_and_its_batches_grow() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // 64 MiB in batches of 8 MiB, and 512 MiB in two batches of 256 MiB:
    // the pages of a batch must leave the process as they are read.
    let small = dir.join("small.arrow");
    let large = dir.join("large.arrow");
    write_big(&small, 64, 1 << 20);
    write_big(&large, 512, 1 << 25);
    let a = peak_rss(&small, dir).max(peak_rss(&small, dir));
    let b = peak_rss(&large, dir);
    assert!(
        b - a < MAX_GROWTH_MIB,
        "peak RSS {a:.2} MiB for 64 MiB but {b:.2} MiB for 512 MiB"
    );
}
