//! Upload and readback staging slots, as a small explicit state machine.
//!
//! Why: host↔GPU transfers go through mappable buffers, and a mapping is
//! only usable once the GPU has finished with the buffer. `queue.write_buffer`
//! would hide that, but allocates a fresh staging buffer on every call; here
//! each slot owns one upload buffer (MAP_WRITE) and one readback buffer
//! (MAP_READ), allocated once at plan time and reused for every chunk. A
//! slot moves through three states (as FutureSDR's upload slots do):
//!
//! ```text
//!  Writable ──submit()──▶ InFlight ──complete()──▶ Readable ──release()──▶ Writable
//!  (upload mapped        (GPU owns both;          (readback mapped for
//!   for writing)          maps requested)          reading; upload re-mapped)
//! ```
//!
//! Every transition checks the state it starts from and fails with a message
//! (a bug in the caller, not a panic in a user's run). Map completion is
//! driven by waiting on *this slot's* submission index, so while the host
//! reads slot k−1 the GPU keeps running slot k: the poller never drains the
//! whole queue.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

use super::GpuContext;

/// Where a slot is in its cycle.
#[derive(Debug)]
enum State {
    /// The upload buffer is mapped for writing; the readback is idle.
    Writable,
    /// Submitted as `submission`; both buffers have maps pending.
    InFlight(wgpu::SubmissionIndex),
    /// The readback buffer is mapped for reading.
    Readable,
}

/// Result of a `map_async` callback, once it has run.
type MapStatus = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// One upload buffer and one readback buffer that travel together.
pub struct Slot {
    upload: wgpu::Buffer,
    readback: wgpu::Buffer,
    state: State,
    upload_status: MapStatus,
    readback_status: MapStatus,
    name: &'static str,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("upload_bytes", &self.upload.size())
            .finish_non_exhaustive()
    }
}

impl Slot {
    /// A slot with `upload_bytes` of upload space and `readback_bytes` of
    /// readback space, writable at once (mapped at creation).
    pub fn new(
        ctx: &GpuContext,
        name: &'static str,
        upload_bytes: u64,
        readback_bytes: u64,
    ) -> Self {
        let upload = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("upload slot"),
            size: upload_bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        let readback = ctx.buffer(
            "readback slot",
            readback_bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        Slot {
            upload,
            readback,
            state: State::Writable,
            upload_status: Arc::default(),
            readback_status: Arc::default(),
            name,
        }
    }

    /// The upload buffer (copy source of the step's commands).
    pub fn upload(&self) -> &wgpu::Buffer {
        &self.upload
    }

    /// The readback buffer (copy target of the step's commands).
    pub fn readback(&self) -> &wgpu::Buffer {
        &self.readback
    }

    /// Whether the slot is writable (not in flight, not being read).
    pub fn is_writable(&self) -> bool {
        matches!(self.state, State::Writable)
    }

    fn expect(&self, want: &str, ok: bool) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::gpu(format!(
                "{} slot: expected state {want}, found {:?}",
                self.name, self.state
            )))
        }
    }

    /// Writes the step's upload bytes: `fill` gets the mapped upload view.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not writable or the mapping fails.
    pub fn write(&mut self, fill: impl FnOnce(&mut wgpu::BufferViewMut)) -> Result<()> {
        self.expect("Writable", self.is_writable())?;
        let mut view = self
            .upload
            .slice(..)
            .get_mapped_range_mut()
            .map_err(|e| Error::gpu(format!("{} slot: {e}", self.name)))?;
        fill(&mut view);
        Ok(())
    }

    /// Unmaps the upload buffer so the step's commands can read it; call
    /// before submitting them.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not writable.
    pub fn unmap_upload(&mut self) -> Result<()> {
        self.expect("Writable", self.is_writable())?;
        self.upload.unmap();
        Ok(())
    }

    /// Records that the step's commands were submitted as `submission` and
    /// requests both mappings, which complete once the GPU is done.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not writable.
    pub fn submitted(&mut self, submission: wgpu::SubmissionIndex) -> Result<()> {
        self.expect("Writable", self.is_writable())?;
        for (buffer, status, mode) in [
            (&self.upload, &self.upload_status, wgpu::MapMode::Write),
            (&self.readback, &self.readback_status, wgpu::MapMode::Read),
        ] {
            let status = status.clone();
            if let Ok(mut s) = status.lock() {
                *s = None;
            }
            buffer.slice(..).map_async(mode, move |r| {
                if let Ok(mut s) = status.lock() {
                    *s = Some(r);
                }
            });
        }
        self.state = State::InFlight(submission);
        Ok(())
    }

    /// Waits for this slot's submission (not for later ones) and for both
    /// mappings; the readback is then mapped for reading.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not in flight, the device was lost, or
    /// a mapping failed.
    pub fn complete(&mut self, ctx: &GpuContext) -> Result<()> {
        let State::InFlight(index) = &self.state else {
            return self.expect("InFlight", false);
        };
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index.clone()),
                timeout: None,
            })
            .map_err(|e| Error::gpu(format!("{}: {e}", ctx.info.name)))?;
        ctx.check()?;
        for status in [&self.upload_status, &self.readback_status] {
            let result = status.lock().ok().and_then(|mut s| s.take());
            match result {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    return Err(Error::gpu(format!(
                        "{}: {} slot: mapping failed: {e}",
                        ctx.info.name, self.name
                    )));
                }
                None => {
                    return Err(Error::gpu(format!(
                        "{}: {} slot: mapping did not complete after its submission",
                        ctx.info.name, self.name
                    )));
                }
            }
        }
        self.state = State::Readable;
        Ok(())
    }

    /// The mapped readback bytes `range`.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not readable.
    pub fn read(&self, range: std::ops::Range<u64>) -> Result<wgpu::BufferView> {
        self.expect("Readable", matches!(self.state, State::Readable))?;
        self.readback
            .slice(range)
            .get_mapped_range()
            .map_err(|e| Error::gpu(format!("{} slot: {e}", self.name)))
    }

    /// Done reading: the readback is unmapped and the slot writable again
    /// (its upload buffer was re-mapped by [`Slot::complete`]).
    ///
    /// # Errors
    /// [`Error::Gpu`] if the slot is not readable.
    pub fn release(&mut self) -> Result<()> {
        self.expect("Readable", matches!(self.state, State::Readable))?;
        self.readback.unmap();
        self.state = State::Writable;
        Ok(())
    }
}
