//! `sigstream._sigstream`: the Python package's native module.
//!
//! Why it is thin: every option, check and message is the library's
//! ([`sigstream::process::ProcessOptions::from_pairs`] parses the keywords
//! through the CLI's own definitions); this module only converts types
//! (numpy arrays in, numpy arrays and JSON out), releases the GIL while
//! Rust works, takes it back for the progress callback and for Ctrl-C, and
//! maps [`sigstream::Error`] onto the package's exception classes
//! (`sigstream._errors`). The pure-Python layer (`sigstream/__init__.py`
//! and its modules) gives the Pythonic signatures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::ndarray::ArrayView2;
use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use sigstream::error::Error;
use sigstream::pipeline::MemorySource;
use sigstream::pool::Block;
use sigstream::process::{Observer, ProcessOptions};
use sigstream::sink::Transaction;
use sigstream::source::{self, ChunkSource, Dtype, SourceOptions};
use sigstream::spectral::ooc_fft::FftOptions;
use sigstream::spectral::{
    Detrend, Scale, Scaling, Stft, StftConfig, Stream, Welch, WelchConfig, Window,
};

/// Raises `e` as the package's exception for its kind: `OptionError`
/// (a `ValueError`) for options, `FileError` (an `OSError`, with
/// `.filename`) for inputs and outputs, `GpuError` and `Error` (both
/// `RuntimeError`s) for failures at run time.
fn raise(py: Python<'_>, e: Error) -> PyErr {
    let (class, path) = match &e {
        Error::Usage { .. } => ("OptionError", None),
        Error::Open { path, .. }
        | Error::Format { path, .. }
        | Error::Io { path, .. }
        | Error::Shrank { path, .. } => ("FileError", Some(path.clone())),
        Error::Gpu { .. } => ("GpuError", None),
        _ => ("RunError", None),
    };
    let make = || -> PyResult<PyErr> {
        let module = py.import("sigstream._errors")?;
        let cls = module.getattr(class)?;
        let exc = cls.call1((e.to_string(),))?;
        if let Some(p) = path {
            exc.setattr("filename", p.display().to_string())?;
        }
        exc.setattr("exit_code", e.exit_code())?;
        Ok(PyErr::from_value(exc))
    };
    make().unwrap_or_else(|err| err)
}

/// Hears a run for Python: warnings go to Python's `warnings` module,
/// progress to the callback, and every chunk checks for Ctrl-C. The first
/// Python exception (KeyboardInterrupt, or one the callback raised) stops
/// the run and is raised once it has unwound.
struct PyObserver {
    progress: Option<Py<PyAny>>,
    total: Option<u64>,
    raised: Option<PyErr>,
    /// Where a custom detector leaves the exception it raised (detectors
    /// may run on the engine's threads): the next chunk's progress stops
    /// the run with it.
    detector_failed: Arc<std::sync::Mutex<Option<PyErr>>>,
}

impl PyObserver {
    fn hold(&mut self, e: PyErr) -> Error {
        self.raised.get_or_insert(e);
        Error::Interrupted
    }
}

impl Observer for PyObserver {
    fn warn(&mut self, input: &Path, msg: &str, is_note: bool) {
        let text = format!("{}: {msg}", input.display());
        let result = Python::attach(|py| {
            let category = if is_note {
                py.get_type::<pyo3::exceptions::PyResourceWarning>()
            } else {
                py.get_type::<pyo3::exceptions::PyUserWarning>()
            };
            let text = std::ffi::CString::new(text).unwrap_or_default();
            PyErr::warn(py, &category, &text, 2)
        });
        if let Err(e) = result {
            self.raised.get_or_insert(e);
        }
    }

    fn start(&mut self, _input: &Path, total: Option<u64>) {
        self.total = total;
    }

    fn before_commit(&mut self) -> sigstream::Result<()> {
        match self.detector_failed.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(self.hold(e)),
            None => Ok(()),
        }
    }

    fn progress(&mut self, done: u64) -> sigstream::Result<()> {
        if let Some(e) = self.detector_failed.lock().ok().and_then(|mut f| f.take()) {
            return Err(self.hold(e));
        }
        if self.raised.is_some() {
            return Err(Error::Interrupted);
        }
        let result = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.progress {
                cb.call1(py, (done, self.total))?;
            }
            Ok(())
        });
        result.map_err(|e| self.hold(e))
    }
}

/// A table of events for pyarrow: record batches exported through the
/// Arrow C stream interface (`__arrow_c_stream__`, the PyCapsule protocol),
/// so `pyarrow.table(obj)` takes their buffers without copying them.
#[pyclass(frozen)]
struct EventStream {
    table: std::sync::Mutex<Option<sigstream::process::EventTable>>,
}

#[pymethods]
impl EventStream {
    /// The batches as an `ArrowArrayStream` capsule (once: the stream moves
    /// to its consumer).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        let _ = requested_schema; // the events' own schema is the only one offered
        let (schema, batches) = self
            .table
            .lock()
            .map_err(|_| PyTypeError::new_err("the events table is poisoned"))?
            .take()
            .ok_or_else(|| PyTypeError::new_err("the events table was already consumed"))?;
        let reader = arrow_array::RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        let stream = arrow_array::ffi_stream::FFI_ArrowArrayStream::new(Box::new(reader));
        // The capsule's pointer is the boxed stream itself, as the protocol
        // asks; pyarrow moves it out (leaving a released stream, which the
        // capsule's drop then leaves alone).
        pyo3::types::PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// A Python callable as a detector (the seed's `custom_detector(chunk,
/// offset)`): called with each chunk of a channel's filtered signal, a
/// read-only float32 array, and the absolute index of its first sample; it
/// returns the events complete in that chunk, each a sample index, a
/// `(start, end)` pair (inclusive; the peak is the first largest value in
/// it) or `(start, end, peak_index, peak_value)`, within the chunk.
///
/// The array is a view of the engine's block, not a copy
/// ([`Block::share`]): its base, a [`ChunkSamples`], holds the block's
/// storage, which the engine copies before writing to it again if the
/// callable kept the array (so a kept chunk keeps its values, and keeps
/// that block's storage alive as a numpy view keeps its base). Only the
/// magnitudes of a complex input, computed into a scratch buffer, are
/// copied into an array of their own.
struct PyDetector {
    func: Arc<Py<PyAny>>,
    failed: Arc<std::sync::Mutex<Option<PyErr>>>,
}

fn custom(
    py: Python<'_>,
    func: Py<PyAny>,
    failed: Arc<std::sync::Mutex<Option<PyErr>>>,
) -> sigstream::process::CustomDetector {
    let func = Arc::new(func.clone_ref(py));
    sigstream::process::CustomDetector(Arc::new(move || {
        Box::new(PyDetector {
            func: func.clone(),
            failed: failed.clone(),
        }) as Box<dyn sigstream::Detector>
    }))
}

/// The base object of the arrays a custom detector gets: a channel's
/// samples, shared with the engine's block (see [`PyDetector`]). It has no
/// buffer protocol of its own, so numpy refuses to make its arrays
/// writeable.
#[pyclass(frozen)]
struct ChunkSamples {
    samples: sigstream::pool::SharedSamples,
}

impl ChunkSamples {
    /// A read-only float32 array over `samples`, with them as its base.
    fn array(
        py: Python<'_>,
        samples: sigstream::pool::SharedSamples,
    ) -> PyResult<Bound<'_, PyArray1<f32>>> {
        let owner = Bound::new(py, ChunkSamples { samples })?;
        let view = numpy::ndarray::ArrayView1::from(&*owner.get().samples);
        // SAFETY: the array's memory is the storage `owner` holds an `Arc`
        // of, and `owner` becomes the array's base, so it lives as long as
        // the array. That storage is never written or moved while shared:
        // a block copies its storage before writing to it whenever a
        // `SharedSamples` of it is alive (`Arc::make_mut`).
        let chunk = unsafe { PyArray1::borrow_from_array(&view, owner.clone().into_any()) };
        readonly(&chunk)?;
        Ok(chunk)
    }
}

/// Clears `array`'s writeable flag.
fn readonly(array: &Bound<'_, PyArray1<f32>>) -> PyResult<()> {
    let kwargs = pyo3::types::PyDict::new(array.py());
    kwargs.set_item("write", false)?;
    array.call_method("setflags", (), Some(&kwargs))?;
    Ok(())
}

impl PyDetector {
    /// Calls the callable with `chunk`, an array of `samples`.
    fn call(
        &self,
        py: Python<'_>,
        chunk: Bound<'_, PyArray1<f32>>,
        samples: &[f32],
        offset: u64,
        events: &mut Vec<sigstream::Event>,
    ) -> PyResult<()> {
        let out = self.func.call1(py, (chunk, offset))?;
        let out = out.bind(py);
        if out.is_none() {
            return Ok(());
        }
        let end = offset + samples.len() as u64;
        let inside = |i: u64| -> PyResult<u64> {
            if i < offset || i >= end {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "custom detector: index {i} is outside the chunk [{offset}, {end}): return the events of this chunk"
                )));
            }
            Ok(i)
        };
        for item in out.try_iter()? {
            let item = item?;
            let event = if let Ok(i) = item.extract::<u64>() {
                let i = inside(i)?;
                sigstream::Event {
                    channel: 0,
                    start: i,
                    end: i,
                    peak_index: i,
                    peak_value: f64::from(samples[(i - offset) as usize]),
                }
            } else if let Ok((s, e)) = item.extract::<(u64, u64)>() {
                let (s, e) = (inside(s)?, inside(e)?);
                if e < s {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "custom detector: event ({s}, {e}) ends before it starts"
                    )));
                }
                let span = &samples[(s - offset) as usize..=(e - offset) as usize];
                let (k, v) =
                    span.iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |(bk, bv), (k, &v)| {
                            if v > bv { (k, v) } else { (bk, bv) }
                        });
                sigstream::Event {
                    channel: 0,
                    start: s,
                    end: e,
                    peak_index: s + k as u64,
                    peak_value: f64::from(v),
                }
            } else if let Ok((s, e, p, v)) = item.extract::<(u64, u64, u64, f64)>() {
                let (s, e, p) = (inside(s)?, inside(e)?, inside(p)?);
                if e < s || p < s || p > e {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "custom detector: event ({s}, {e}, {p}, {v}) needs start <= peak_index <= end"
                    )));
                }
                sigstream::Event {
                    channel: 0,
                    start: s,
                    end: e,
                    peak_index: p,
                    peak_value: v,
                }
            } else {
                return Err(PyTypeError::new_err(format!(
                    "custom detector: an event is an index, (start, end) or (start, end, peak_index, peak_value), not {}",
                    item.get_type().name()?
                )));
            };
            events.push(event);
        }
        Ok(())
    }
}

impl PyDetector {
    /// Runs the callable on `samples`, given to it as the array `make`
    /// makes; its events into `events`, its exception kept for the run's
    /// end.
    fn run(
        &self,
        samples: &[f32],
        offset: u64,
        events: &mut Vec<sigstream::Event>,
        make: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>>,
    ) {
        if samples.is_empty() || self.failed.lock().map(|f| f.is_some()).unwrap_or(true) {
            // Nothing to look at; or the run stops at the end of this chunk.
            return;
        }
        let mut found = Vec::new();
        let called = Python::attach(|py| {
            let chunk = make(py)?;
            self.call(py, chunk, samples, offset, &mut found)
        });
        match called {
            Ok(()) => events.append(&mut found),
            Err(e) => {
                if let Ok(mut f) = self.failed.lock() {
                    f.get_or_insert(e);
                }
            }
        }
    }
}

impl sigstream::Detector for PyDetector {
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<sigstream::Event>) {
        self.run(samples, offset, events, |py| {
            let chunk = PyArray1::from_slice(py, samples);
            readonly(&chunk)?;
            Ok(chunk)
        });
    }

    fn process_in(
        &mut self,
        block: &Block,
        channel: usize,
        frames: std::ops::Range<usize>,
        offset: u64,
        events: &mut Vec<sigstream::Event>,
    ) {
        let samples = block.channel_span(channel, frames.clone());
        self.run(samples, offset, events, |py| {
            ChunkSamples::array(py, block.share(channel, frames))
        });
    }

    fn finish(&mut self, _events: &mut Vec<sigstream::Event>) {}
}

/// `process`'s options for a Python run (GPUs listed in process, no
/// terminal output) and the observer that hears it.
fn front(
    py: Python<'_>,
    inputs: &[PathBuf],
    options: Vec<(String, String)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(ProcessOptions, PyObserver)> {
    let mut opts = ProcessOptions::from_pairs(inputs, options).map_err(|e| raise(py, e))?;
    opts.run.backend.probe_in_process = true;
    opts.run.quiet = true;
    let observer = PyObserver {
        progress,
        total: None,
        raised: None,
        detector_failed: Arc::default(),
    };
    Ok((opts, observer))
}

/// Runs `sigstream process` over `inputs` with `options` (name, value)
/// pairs, the GIL released. Returns the report as JSON (the CLI's
/// `--report`), whose `inputs` holds one entry per input, and with
/// detection each input's events as an [`EventStream`]; an input that
/// fails raises (after the inputs before it committed their outputs).
#[pyfunction]
#[pyo3(signature = (inputs, options, progress=None, custom_detector=None))]
fn process(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    options: Vec<(String, String)>,
    progress: Option<Py<PyAny>>,
    custom_detector: Option<Py<PyAny>>,
) -> PyResult<(String, Vec<Option<EventStream>>)> {
    let (mut opts, mut observer) = front(py, &inputs, options, progress)?;
    if let Some(func) = custom_detector {
        opts.custom_detector = Some(custom(py, func, observer.detector_failed.clone()));
    }
    type Tables = Vec<Option<sigstream::process::EventTable>>;
    let result = py.detach(|| -> sigstream::Result<(serde_json::Value, Tables)> {
        let prepared = opts.prepare()?;
        let backend = prepared.backend();
        let mut report = sigstream::report::Report::new("process");
        report.set_backend(backend.name(), &backend.device());
        let mut tables = Vec::new();
        for input in prepared.inputs() {
            let (entry, _, table) = prepared.process_collecting(input, &mut observer)?;
            report.push(entry);
            tables.push(table);
        }
        Ok((report.finish(), tables))
    });
    if let Some(e) = observer.raised.take() {
        return Err(e);
    }
    if let Some(e) = observer
        .detector_failed
        .lock()
        .ok()
        .and_then(|mut f| f.take())
    {
        return Err(e);
    }
    let (report, tables) = result.map_err(|e| raise(py, e))?;
    let streams = tables
        .into_iter()
        .map(|t| {
            t.map(|t| EventStream {
                table: std::sync::Mutex::new(Some(t)),
            })
        })
        .collect();
    Ok((report.to_string(), streams))
}

/// Checks the run options (chunk size, memory limit, threads, backend) as
/// the CLI does, without opening anything.
#[pyfunction]
fn check_run(py: Python<'_>, options: Vec<(String, String)>) -> PyResult<()> {
    let dummy = [PathBuf::from("-")];
    ProcessOptions::from_pairs(&dummy, options)
        .and_then(|o| o.run.validate())
        .map_err(|e| raise(py, e))
}

/// The convolution modes, as numpy names them.
fn conv_mode(mode: &str) -> PyResult<sigstream::ConvMode> {
    match mode {
        "full" => Ok(sigstream::ConvMode::Full),
        "same" => Ok(sigstream::ConvMode::Same),
        "valid" => Ok(sigstream::ConvMode::Valid),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "mode {other:?}: full, same or valid"
        ))),
    }
}

/// `numpy.convolve(x, kernel, mode)` through the chunk engine, `chunk_size`
/// samples at a time, the GIL released. `x` is read in place when it is a
/// contiguous float32 array; other float and integer arrays are converted
/// a chunk at a time.
#[pyfunction]
#[pyo3(signature = (x, kernel, mode, chunk_size))]
fn convolve<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: PyReadonlyArray1<'py, f32>,
    mode: &str,
    chunk_size: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let mode = conv_mode(mode)?;
    let kernel = kernel.as_slice()?.to_vec();
    macro_rules! run {
        ($($t:ty),*) => {
            $(
                if let Ok(a) = x.cast::<PyArray1<$t>>() {
                    let a = a.readonly();
                    let out = match a.as_slice() {
                        Ok(s) => py.detach(|| {
                            sigstream::pipeline::convolve_array(s, &kernel, mode, chunk_size)
                        }),
                        Err(_) => {
                            // Not contiguous: one copy, as numpy would make.
                            let owned: Vec<$t> = a.as_array().iter().copied().collect();
                            py.detach(|| {
                                sigstream::pipeline::convolve_array(
                                    &owned, &kernel, mode, chunk_size,
                                )
                            })
                        }
                    };
                    return out
                        .map(|v| PyArray1::from_vec(py, v))
                        .map_err(|e| raise(py, e));
                }
            )*
        };
    }
    run!(f32, f64, i8, i16, i32, u8, u16);
    Err(PyTypeError::new_err(format!(
        "x: a one-dimensional numpy array of float32, float64 or (u)int8/16, int32; got {}",
        x.get_type().name()?
    )))
}

/// A mapped window of a file: the base object of the arrays
/// [`Chunks`] yields, kept alive as long as any of them.
#[pyclass(frozen)]
struct MappedWindow {
    map: memmap::Mapped,
}

mod memmap {
    //! The one mapping this module makes.

    /// A read-only mapping of part of a file.
    pub struct Mapped(pub memmap2::Mmap);

    // SAFETY: a read-only `Mmap` is plain memory, shared freely between
    // threads; `memmap2::Mmap` is `Send + Sync` itself, the newtype only
    // names it.
    unsafe impl Send for Mapped {}
}

/// An iterator over a file's frames, `chunk_size` frames at a time with
/// `overlap` frames of the previous chunk before each, as read-only numpy
/// arrays of shape (frames, channels) in the file's own sample type that
/// point into a mapping of that part of the file (no copy). Memory stays
/// flat as long as the arrays are dropped: each chunk maps only its own
/// window.
#[pyclass]
struct Chunks {
    file: Arc<std::fs::File>,
    path: PathBuf,
    data_offset: u64,
    frame_bytes: u64,
    channels: usize,
    dtype: Dtype,
    complex: bool,
    frames: u64,
    chunk: u64,
    overlap: u64,
    next: u64,
}

#[pymethods]
impl Chunks {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u64, Bound<'py, PyAny>)>> {
        if self.next >= self.frames {
            return Ok(None);
        }
        let first = self.next.saturating_sub(self.overlap);
        let end = (self.next + self.chunk).min(self.frames);
        let start = first * self.frame_bytes + self.data_offset;
        let len = (end - first) * self.frame_bytes;
        let page = 4096u64;
        let aligned = start - start % page;
        let skip = (start - aligned) as usize;
        let size = usize::try_from(len).map_err(|_| {
            pyo3::exceptions::PyOverflowError::new_err("chunk larger than the address space")
        })? + skip;
        // SAFETY: a read-only private mapping of a region that lies inside
        // the file (checked when the iterator was made: data_offset +
        // frames × frame_bytes ≤ its length). Another process truncating
        // the file while an array is alive would make reads fault, as for
        // numpy.memmap; the library's own reader guards against that with
        // its SIGBUS handler, which Python's arrays cannot use.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(aligned)
                .len(size)
                .map(&*self.file)
        }
        .map_err(|e| raise(py, Error::io(&self.path, e)))?;
        let window = Bound::new(
            py,
            MappedWindow {
                map: memmap::Mapped(map),
            },
        )?;
        let rows = (end - first) as usize;
        let ptr = window.get().map.0.as_ptr().wrapping_add(skip);
        let array = match (self.dtype, self.complex) {
            (Dtype::F32, false) => view::<f32>(ptr, rows, self.channels, window)?,
            (Dtype::F64, false) => view::<f64>(ptr, rows, self.channels, window)?,
            (Dtype::I8, false) => view::<i8>(ptr, rows, self.channels, window)?,
            (Dtype::I16, false) => view::<i16>(ptr, rows, self.channels, window)?,
            (Dtype::I32, false) => view::<i32>(ptr, rows, self.channels, window)?,
            (Dtype::U8, false) => view::<u8>(ptr, rows, self.channels, window)?,
            (Dtype::U16, false) => view::<u16>(ptr, rows, self.channels, window)?,
            (Dtype::F32, true) => view::<numpy::Complex32>(ptr, rows, self.channels, window)?,
            (Dtype::F64, true) => view::<numpy::Complex64>(ptr, rows, self.channels, window)?,
            (d, complex) => {
                return Err(raise(
                    py,
                    Error::format(
                        &self.path,
                        format!(
                            "{} samples have no numpy type to view them as: process them, which converts them",
                            d.sample_name(complex)
                        ),
                    ),
                ));
            }
        };
        let offset = first;
        self.next = end;
        Ok(Some((offset, array)))
    }
}

/// A read-only (rows, channels) array of `T` at `ptr`, inside `window`'s
/// mapping, which becomes its base object.
fn view<'py, T: Element>(
    ptr: *const u8,
    rows: usize,
    channels: usize,
    window: Bound<'py, MappedWindow>,
) -> PyResult<Bound<'py, PyAny>> {
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(PyTypeError::new_err(
            "the samples are not aligned to their type in the file: read them with process",
        ));
    }
    // SAFETY: `ptr` points at `rows × channels` samples of `T` (the frames
    // mapped by the caller, aligned as checked above) inside the mapping
    // owned by `window`, which the array takes as its base object, so the
    // memory outlives the array; the mapping is never written.
    let array = unsafe {
        let data = ArrayView2::from_shape_ptr((rows, channels), ptr.cast::<T>());
        PyArray2::borrow_from_array(&data, window.into_any())
    };
    let array = array.into_any();
    let kwargs = pyo3::types::PyDict::new(array.py());
    kwargs.set_item("write", false)?;
    array.call_method("setflags", (), Some(&kwargs))?;
    Ok(array)
}

/// Iterates over `path`'s frames as numpy views (see [`Chunks`]).
/// `options` are the input options as (name, value) pairs (dtype,
/// channels, offset, endian, ...), as `process` takes them.
#[pyfunction]
#[pyo3(signature = (path, chunk_size, overlap, options))]
fn chunks(
    py: Python<'_>,
    path: PathBuf,
    chunk_size: u64,
    overlap: u64,
    options: Vec<(String, String)>,
) -> PyResult<Chunks> {
    if chunk_size == 0 {
        return Err(raise(py, Error::usage("chunk_size must be at least 1")));
    }
    let opts = ProcessOptions::from_pairs(std::slice::from_ref(&path), options)
        .map_err(|e| raise(py, e))?;
    let source_opts: SourceOptions = opts.input.source_options().map_err(|e| raise(py, e))?;
    let src = source::open(&path, &source_opts).map_err(|e| raise(py, e))?;
    let info = src.info().clone();
    if !src.seekable() {
        return Err(raise(
            py,
            Error::format(
                &path,
                format!(
                    "{:?} is decoded, not stored as fixed frames: it cannot be viewed in place; process it, or convert it first",
                    info.format
                ),
            ),
        ));
    }
    if info.endian != sigstream::source::Endian::native() && info.dtype.size() > 1 {
        return Err(raise(
            py,
            Error::format(
                &path,
                "the samples are not in this machine's byte order: they cannot be viewed in place",
            ),
        ));
    }
    let viewable = matches!(
        (info.dtype, info.complex),
        (Dtype::F32 | Dtype::F64, _)
            | (
                Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::U8 | Dtype::U16,
                false
            )
    );
    if !viewable {
        return Err(raise(
            py,
            Error::format(
                &path,
                format!(
                    "{} samples have no numpy type to view them as: process them, which converts them",
                    info.dtype.sample_name(info.complex)
                ),
            ),
        ));
    }
    let frames = info.frames.unwrap_or(0);
    // A complex channel is two planes (I and Q) of `channels`.
    let frame_bytes = (info.channels * info.dtype.size()) as u64;
    let file = std::fs::File::open(&path).map_err(|e| raise(py, Error::open(&path, e)))?;
    let len = file
        .metadata()
        .map_err(|e| raise(py, Error::open(&path, e)))?
        .len();
    if info.data_offset + frames * frame_bytes > len {
        return Err(raise(
            py,
            Error::format(&path, "the file is shorter than its header says"),
        ));
    }
    Ok(Chunks {
        file: Arc::new(file),
        path,
        data_offset: info.data_offset,
        frame_bytes,
        channels: info.signal_channels(),
        dtype: info.dtype,
        complex: info.complex,
        frames,
        chunk: chunk_size,
        overlap,
        next: 0,
    })
}

/// Where a spectral function reads: a file (with `process`'s input options)
/// or a numpy array in memory, (frames,) or (frames, channels).
fn with_source<R: Send>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    sample_rate: Option<f64>,
    options: Vec<(String, String)>,
    f: impl FnOnce(&mut dyn ChunkSource) -> sigstream::Result<R> + Send,
) -> PyResult<R> {
    if let Ok(path) = x.extract::<PathBuf>() {
        let mut options = options;
        if let Some(r) = sample_rate {
            options.push(("sample_rate".into(), format!("{r:?}")));
        }
        let opts = ProcessOptions::from_pairs(std::slice::from_ref(&path), options)
            .and_then(|o| o.input.source_options())
            .map_err(|e| raise(py, e))?;
        return py
            .detach(|| {
                let mut src = source::open(&path, &opts)?;
                f(src.as_mut())
            })
            .map_err(|e| raise(py, e));
    }
    if !options.is_empty() {
        return Err(raise(
            py,
            Error::usage(format!(
                "{}: input options describe files; an array describes itself",
                options[0].0
            )),
        ));
    }
    macro_rules! arrays {
        ($($t:ty),*) => {
            $(
                if let Ok(a) = x.cast::<PyArray1<$t>>() {
                    let a = a.readonly();
                    let data = a.as_slice()?;
                    return py
                        .detach(|| f(&mut MemorySource::new(data, 1, sample_rate)?))
                        .map_err(|e| raise(py, e));
                }
                if let Ok(a) = x.cast::<PyArray2<$t>>() {
                    let a = a.readonly();
                    let channels = a.shape()[1];
                    let data = a.as_slice()?;
                    return py
                        .detach(|| f(&mut MemorySource::new(data, channels, sample_rate)?))
                        .map_err(|e| raise(py, e));
                }
            )*
        };
    }
    arrays!(f32, f64, i8, i16, i32, u8, u16);
    Err(PyTypeError::new_err(format!(
        "x: a path, or a C-contiguous numpy array of shape (frames,) or (frames, channels) of float32, float64 or (u)int8/16, int32; got {}",
        x.get_type().name()?
    )))
}

/// The block a spectral transform of frames of `frame_len` reads `info`
/// into, planned as the CLI's spectral commands plan theirs
/// (`budget::plan_blocks`, the transform's own state included) within the
/// default memory budget, before the transform or the block is built.
fn spectral_block(
    info: &sigstream::source::SignalInfo,
    frame_len: usize,
) -> sigstream::Result<Block> {
    let channels = info.channels;
    let frames = sigstream::pipeline::budget::plan_blocks(
        None,
        sigstream::options::memory_limit(None)?,
        &sigstream::pipeline::InputShape {
            channels,
            sample_bytes: info.dtype.size(),
            frames: info.frames,
        },
        1,
        sigstream::spectral::state_bytes(channels, frame_len),
    )?;
    Ok(Block::new(channels, frames))
}

/// Reads every block of `src` into `block` and `f`, checking for Ctrl-C
/// between blocks.
fn each_block(
    src: &mut dyn ChunkSource,
    block: &mut Block,
    mut f: impl FnMut(&Block) -> sigstream::Result<()>,
) -> sigstream::Result<u64> {
    let mut total = 0u64;
    loop {
        check_signals()?;
        let n = src.read_block(block)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        f(block)?;
    }
}

thread_local! {
    /// The exception that stopped a run in this thread (Ctrl-C's
    /// `KeyboardInterrupt`), raised once the run has unwound.
    static PENDING: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Runs Python's signal handlers (from a thread that released the GIL);
/// an exception (Ctrl-C) is kept for [`interrupted_or`] and stops the run.
fn check_signals() -> sigstream::Result<()> {
    match Python::attach(|py| py.check_signals()) {
        Ok(()) => Ok(()),
        Err(e) => {
            PENDING.with(|p| *p.borrow_mut() = Some(e));
            Err(Error::Interrupted)
        }
    }
}

/// The exception that interrupted the run, if one did; else `e`.
fn interrupted_or(e: PyErr) -> PyErr {
    PENDING.with(|p| p.borrow_mut().take()).unwrap_or(e)
}

fn window(name: &str) -> PyResult<Window> {
    Ok(match name {
        "hann" => Window::Hann,
        "hamming" => Window::Hamming,
        "blackman" => Window::Blackman,
        "rect" | "boxcar" => Window::Rect,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "window {other:?}: hann, hamming, blackman or rect (boxcar)"
            )));
        }
    })
}

fn detrend(name: Option<&str>) -> PyResult<Detrend> {
    match name {
        Some("constant") => Ok(Detrend::Constant),
        None => Ok(Detrend::None),
        Some(other) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "detrend {other:?}: \"constant\" or None"
        ))),
    }
}

/// The GPU for `backend` ("cpu": none).
fn gpu_for(backend: &str) -> sigstream::Result<Option<Arc<sigstream::backend::gpu::GpuContext>>> {
    let choice = match backend {
        "cpu" => sigstream::BackendChoice::Cpu,
        "gpu" => sigstream::BackendChoice::Gpu,
        "auto" => sigstream::BackendChoice::Auto,
        other => {
            return Err(Error::usage(format!("backend {other:?}: auto, cpu or gpu")));
        }
    };
    sigstream::backend::open_gpu(choice, None, &sigstream::backend::AdapterProbe::InProcess)
}

/// A frequency or time axis.
type Axis<'py> = Bound<'py, PyArray1<f64>>;

/// Welch's PSD (`scipy.signal.welch`'s conventions): the frequencies and,
/// per channel, the values.
#[pyfunction]
#[pyo3(signature = (x, sample_rate, nperseg, noverlap, window_name, detrend_name, density, backend, options))]
#[expect(clippy::too_many_arguments, reason = "the Python signature's keywords")]
fn psd<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sample_rate: Option<f64>,
    nperseg: usize,
    noverlap: Option<usize>,
    window_name: &str,
    detrend_name: Option<&str>,
    density: bool,
    backend: &str,
    options: Vec<(String, String)>,
) -> PyResult<(Axis<'py>, Bound<'py, PyArray2<f64>>)> {
    let config = WelchConfig {
        nperseg,
        noverlap: noverlap.unwrap_or(nperseg / 2),
        window: window(window_name)?,
        detrend: detrend(detrend_name)?,
        scaling: if density {
            Scaling::Density
        } else {
            Scaling::Spectrum
        },
    };
    let result = with_source(py, x, sample_rate, options, |src| {
        let mut block = spectral_block(src.info(), nperseg)?;
        let gpu = gpu_for(backend)?;
        let stream = Stream::of(src.info());
        let mut welch = Welch::for_stream(config, stream, gpu.as_ref())?;
        each_block(src, &mut block, |b| welch.push(b))?;
        welch.finish()
    })
    .map_err(interrupted_or)?;
    let values = PyArray2::from_vec2(py, &result.values)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok((PyArray1::from_vec(py, result.frequencies), values))
}

/// The streaming STFT's power spectrogram (`scipy.signal.spectrogram`'s
/// conventions): frequencies, frame times, and the values as (frames,
/// channels, bins).
#[pyfunction]
#[pyo3(signature = (x, sample_rate, nfft, hop, window_name, detrend_name, scale, backend, options))]
#[expect(clippy::too_many_arguments, reason = "the Python signature's keywords")]
fn spectrogram<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sample_rate: Option<f64>,
    nfft: usize,
    hop: Option<usize>,
    window_name: &str,
    detrend_name: Option<&str>,
    scale: &str,
    backend: &str,
    options: Vec<(String, String)>,
) -> PyResult<(Axis<'py>, Axis<'py>, Bound<'py, PyAny>)> {
    let config = StftConfig {
        nfft,
        hop: hop.unwrap_or_else(|| StftConfig::default_hop(nfft)),
        window: window(window_name)?,
        detrend: detrend(detrend_name)?,
        scale: match scale {
            "power" => Scale::Power,
            "db" => Scale::Db,
            "magnitude" => Scale::Magnitude,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "scale {other:?}: power, db or magnitude"
                )));
            }
        },
    };
    let (axis, rate, frames, channels, values) = with_source(py, x, sample_rate, options, |src| {
        let info = src.info().clone();
        let mut block = spectral_block(&info, nfft)?;
        let gpu = gpu_for(backend)?;
        let stream = Stream::of(&info);
        let mut stft = Stft::for_stream(config, stream, gpu.as_ref())?;
        let axis = stft.axis();
        let mut values: Vec<f32> = Vec::new();
        each_block(src, &mut block, |b| {
            stft.push(b, |rows| {
                values.extend_from_slice(rows.values);
                Ok(())
            })
        })?;
        Ok((
            axis,
            info.sample_rate.unwrap_or(1.0),
            stft.frames(),
            info.signal_channels(),
            values,
        ))
    })
    .map_err(interrupted_or)?;
    let freqs: Vec<f64> = (0..axis.bins).map(|k| axis.frequency(k)).collect();
    let times: Vec<f64> = (0..frames)
        .map(|k| (k as f64 * config.hop as f64 + (config.nfft / 2) as f64) / rate)
        .collect();
    let array = PyArray1::from_vec(py, values)
        .reshape([frames as usize, channels, axis.bins])?
        .into_any();
    Ok((
        PyArray1::from_vec(py, freqs),
        PyArray1::from_vec(py, times),
        array,
    ))
}

/// The DFT of one channel (`np.fft.rfft`, or `fft` with `full` and for
/// complex input), out of core beyond `memory_limit_mb`, written to
/// `output` (a .npy of complex64).
#[pyfunction]
#[pyo3(signature = (x, output, full, channel, memory_limit_mb, backend, options))]
#[expect(clippy::too_many_arguments, reason = "the Python signature's keywords")]
fn fft(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    output: PathBuf,
    full: bool,
    channel: Option<usize>,
    memory_limit_mb: u64,
    backend: &str,
    options: Vec<(String, String)>,
) -> PyResult<()> {
    with_source(py, x, None, options, |src| {
        let limit = sigstream::options::memory_limit(Some(memory_limit_mb))?;
        let fft = FftOptions {
            memory_limit: limit.bytes,
            full,
            channel,
            gpu: gpu_for(backend)?,
            ..FftOptions::default()
        };
        let written = Transaction::begin();
        let mut interrupted = false;
        let mut on_pass = |_: &sigstream::spectral::ooc_fft::PassProgress| {
            interrupted |= check_signals().is_err();
        };
        sigstream::spectral::ooc_fft::fft_source(src, &fft, &output, &mut on_pass)?;
        if interrupted {
            // Ctrl-C during the passes: the spectrum is abandoned.
            return Err(Error::Interrupted);
        }
        written.commit()
    })
    .map_err(interrupted_or)
}

/// Runs `process`'s job (filter, reference, detection, snippets, outputs)
/// over an array in memory, (frames,) or (frames, channels), converted to
/// `f32` a chunk at a time. Returns the report entry as JSON and the events.
#[pyfunction]
#[pyo3(signature = (x, sample_rate, options, progress=None))]
fn detect(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    sample_rate: Option<f64>,
    options: Vec<(String, String)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, Option<EventStream>)> {
    let name = PathBuf::from("<array>");
    let (opts, mut observer) = front(py, std::slice::from_ref(&name), options, progress)?;
    let result = with_source(py, x, sample_rate, Vec::new(), |source| {
        let prepared = opts.prepare()?;
        let (entry, _, table) = prepared
            .process_source(&name, Box::new(source), &mut observer)
            .map_err(|e| match e {
                // About the array, which is no file: a bad option for it.
                Error::Format { path, msg } if path == name => Error::Usage {
                    msg: format!("the array: {msg}"),
                },
                e => e,
            })?;
        Ok((entry, table))
    });
    if let Some(e) = observer.raised.take() {
        return Err(e);
    }
    let (entry, table) = result?;
    Ok((
        serde_json::Value::Object(entry).to_string(),
        table.map(|t| EventStream {
            table: std::sync::Mutex::new(Some(t)),
        }),
    ))
}

/// The length in samples of `input` as `options` read it (`None` for a
/// stream or a miniSEED file split at gaps): what a driver cuts into shards.
#[pyfunction]
fn input_frames(
    py: Python<'_>,
    input: PathBuf,
    options: Vec<(String, String)>,
) -> PyResult<Option<u64>> {
    let inputs = [input];
    let opts = ProcessOptions::from_pairs(&inputs, options).map_err(|e| raise(py, e))?;
    py.detach(|| opts.input_frames(&inputs[0]))
        .map_err(|e| raise(py, e))
}

/// Creates `output`, the filtered output of `input` its shards write into
/// (the header for the whole input, room for every sample), as a driver
/// does before its shards run.
#[pyfunction]
fn create_shared_output(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    options: Vec<(String, String)>,
) -> PyResult<()> {
    let inputs = [input];
    let opts = ProcessOptions::from_pairs(&inputs, options).map_err(|e| raise(py, e))?;
    py.detach(|| opts.create_shared_output(&inputs[0], &output))
        .map_err(|e| raise(py, e))
}

/// Which of a run's merged events (columns of the events table, in its
/// order: start, then channel) the de-duplication that `options` ask for
/// on `input` keeps; `None` when they ask for none. A driver's step after
/// its shards, which cannot de-duplicate across their boundaries.
#[pyfunction]
#[expect(clippy::too_many_arguments, reason = "the events table's columns")]
fn dedup_keep<'py>(
    py: Python<'py>,
    input: PathBuf,
    options: Vec<(String, String)>,
    channel: PyReadonlyArray1<'py, i64>,
    start: PyReadonlyArray1<'py, i64>,
    end: PyReadonlyArray1<'py, i64>,
    peak_index: PyReadonlyArray1<'py, i64>,
    peak_value: PyReadonlyArray1<'py, f64>,
) -> PyResult<Option<Bound<'py, PyArray1<bool>>>> {
    let inputs = [input];
    let opts = ProcessOptions::from_pairs(&inputs, options).map_err(|e| raise(py, e))?;
    let Some(spec) = py
        .detach(|| opts.dedup_spec(&inputs[0]))
        .map_err(|e| raise(py, e))?
    else {
        return Ok(None);
    };
    let columns = [&channel, &start, &end, &peak_index];
    let n = peak_value.len();
    if columns.iter().any(|c| c.len() != n) {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "dedup_keep: the events' columns differ in length",
        ));
    }
    let (channel, start, end, peak_index, peak_value) = (
        channel.as_slice()?,
        start.as_slice()?,
        end.as_slice()?,
        peak_index.as_slice()?,
        peak_value.as_slice()?,
    );
    let index = |v: i64| {
        u64::try_from(v).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!("dedup_keep: a negative index {v}"))
        })
    };
    let events = (0..n)
        .map(|i| {
            Ok(sigstream::Event {
                channel: index(channel[i])? as usize,
                start: index(start[i])?,
                end: index(end[i])?,
                peak_index: index(peak_index[i])?,
                peak_value: peak_value[i],
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let kept = py.detach(|| sigstream::detect::dedup::keep(spec, &events));
    Ok(Some(PyArray1::from_vec(py, kept)))
}

/// The native module.
#[pymodule]
fn _sigstream(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(check_run, m)?)?;
    m.add_function(wrap_pyfunction!(convolve, m)?)?;
    m.add_function(wrap_pyfunction!(chunks, m)?)?;
    m.add_function(wrap_pyfunction!(psd, m)?)?;
    m.add_function(wrap_pyfunction!(spectrogram, m)?)?;
    m.add_function(wrap_pyfunction!(fft, m)?)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(input_frames, m)?)?;
    m.add_function(wrap_pyfunction!(create_shared_output, m)?)?;
    m.add_function(wrap_pyfunction!(dedup_keep, m)?)?;
    m.add_class::<Chunks>()?;
    m.add_class::<MappedWindow>()?;
    m.add_class::<ChunkSamples>()?;
    m.add_class::<EventStream>()?;
    Ok(())
}
