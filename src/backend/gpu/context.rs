//! The wgpu device every GPU stage shares: adapter choice, limits, error
//! capture and pipeline creation.
//!
//! Why it exists: choosing an adapter has rules users rely on (`auto` never
//! picks a software rasteriser; `--gpu-adapter NAME` picks among several; no
//! adapter is an error, never a panic), and wgpu reports failures (shader
//! rejected, out of memory, device lost) through callbacks rather than
//! return values. This module turns both into [`Error::Gpu`] at the places
//! where the pipeline can act on them, and requests the adapter's real
//! limits (storage binding size, workgroup memory) instead of WebGPU's
//! conservative defaults, so kernels can size themselves to the device.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Which adapter to open.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// Only adapters whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    /// Whether a software adapter (lavapipe, llvmpipe, WARP: device type
    /// `Cpu`) may be chosen. `--backend auto` says no, `--backend gpu` yes.
    pub allow_software: bool,
}

/// An open device with its queue, the adapter's description and the limits
/// granted. Shared (`Arc`) by every stage planned on it.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter says about itself.
    pub info: wgpu::AdapterInfo,
    /// The limits granted (the adapter's own, for the ones we raise).
    pub limits: wgpu::Limits,
    /// The first asynchronous failure (validation, out of memory, device
    /// lost) reported by wgpu, if any.
    failure: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .finish_non_exhaustive()
    }
}

/// Preference among device types: real GPUs first, software last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu can see on the native backends (Vulkan, Metal, DX12).
pub fn adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .map(wgpu::Adapter::get_info)
        .collect()
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc)
}

impl GpuContext {
    /// Opens the best adapter allowed by `options`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when no adapter matches (the message lists those
    /// seen) or the device cannot be created.
    pub fn new(options: &GpuOptions) -> Result<Arc<Self>> {
        let instance = instance();
        let all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        let seen: Vec<String> = all
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend)
            })
            .collect();
        let wanted = options.adapter.as_deref().map(str::to_lowercase);
        let chosen = all
            .into_iter()
            .filter(|a| {
                let info = a.get_info();
                let name_ok = wanted
                    .as_deref()
                    .is_none_or(|w| info.name.to_lowercase().contains(w));
                let type_ok = options.allow_software || info.device_type != wgpu::DeviceType::Cpu;
                name_ok && type_ok
            })
            .min_by_key(|a| rank(a.get_info().device_type));
        let Some(adapter) = chosen else {
            let what = match (&options.adapter, options.allow_software) {
                (Some(name), _) => format!("no GPU adapter named like {name:?}"),
                (None, true) => "no GPU adapter found".to_owned(),
                (None, false) => "no hardware GPU adapter found".to_owned(),
            };
            let seen = if seen.is_empty() {
                "none (is a Vulkan, Metal or DX12 driver installed?)".to_owned()
            } else {
                seen.join("; ")
            };
            return Err(Error::gpu(format!("{what}; adapters seen: {seen}")));
        };
        let info = adapter.get_info();
        let have = adapter.limits();
        // Start from WebGPU's defaults and raise what our kernels size
        // themselves by to what the adapter really has.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            max_compute_workgroup_storage_size: have.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: have.max_compute_invocations_per_workgroup,
            max_compute_workgroup_size_x: have.max_compute_workgroup_size_x,
            max_compute_workgroups_per_dimension: have.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: have.max_storage_buffers_per_shader_stage,
            ..wgpu::Limits::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sigstream"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::gpu(format!("{}: cannot open the device: {e}", info.name)))?;
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            record(&sink, e.to_string());
        }));
        let sink = failure.clone();
        device.set_device_lost_callback(move |reason, msg| {
            // Also when destroyed on purpose: only checked while running.
            record(&sink, format!("device lost ({reason:?}): {msg}"));
        });
        Ok(Arc::new(GpuContext {
            device,
            queue,
            info,
            limits,
            failure,
        }))
    }

    /// The adapter in words, as in the report's `device` field.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = if i.driver_info.is_empty() {
            i.driver.clone()
        } else {
            format!("{} {}", i.driver, i.driver_info)
        };
        format!(
            "{} ({:?}, {:?}, {})",
            i.name,
            i.device_type,
            i.backend,
            driver.trim()
        )
    }

    /// Whether the adapter is a software rasteriser.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Fails with the first error wgpu reported asynchronously, if any.
    ///
    /// # Errors
    /// [`Error::Gpu`] naming the adapter and wgpu's message.
    pub fn check(&self) -> Result<()> {
        let failure = self.failure.lock().map_or(None, |f| f.clone());
        match failure {
            Some(msg) => Err(Error::gpu(format!("{}: {msg}", self.info.name))),
            None => Ok(()),
        }
    }

    /// Compiles `source` (WGSL) and builds the compute pipeline for `entry`,
    /// with pipeline-overridable constants.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the shader or pipeline is rejected.
    pub fn pipeline(
        &self,
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::gpu(format!(
                "{}: kernel {label} rejected: {e}",
                self.info.name
            )));
        }
        Ok(pipeline)
    }

    /// A buffer of `size` bytes (at least 4) with `usage`, not mapped.
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer (read-write in shaders, copy source and target).
    pub fn storage(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.buffer(
            label,
            size,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A storage buffer filled with `data` at creation (for tables computed
    /// once on the host: twiddles, kernel spectra).
    ///
    /// # Errors
    /// [`Error::Gpu`] if the new buffer cannot be mapped.
    pub fn storage_init<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (bytes.len() as u64).max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        });
        self.fill_mapped(&buffer, bytes)?;
        Ok(buffer)
    }

    /// A uniform buffer holding `value`.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the new buffer cannot be mapped.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::bytes_of(value);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (bytes.len() as u64).next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        });
        self.fill_mapped(&buffer, bytes)?;
        Ok(buffer)
    }

    /// Copies `bytes` to the start of `buffer`, mapped at creation, and
    /// unmaps it.
    fn fill_mapped(&self, buffer: &wgpu::Buffer, bytes: &[u8]) -> Result<()> {
        {
            let mut view = buffer
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::gpu(format!("{}: {e}", self.info.name)))?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buffer.unmap();
        Ok(())
    }

    /// A bind group for group 0 of `pipeline`, binding `buffers` whole, in
    /// order, to bindings 0, 1, ...
    pub fn bind(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Blocks until all submitted work is done and map callbacks have run.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the device was lost or reported an error.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu(format!("{}: {e}", self.info.name)))?;
        self.check()
    }

    /// Submits `encoder`'s commands and waits for them (tests, benches and
    /// one-off work; the streaming path overlaps instead).
    ///
    /// # Errors
    /// As [`GpuContext::wait`].
    pub fn run(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.queue.submit(Some(encoder.finish()));
        self.wait()
    }

    /// Copies `len` bytes of `buffer` from `offset` back to the host
    /// (allocates a readback buffer: tests and one-off work only).
    ///
    /// # Errors
    /// As [`GpuContext::wait`].
    pub fn read<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: usize,
    ) -> Result<Vec<T>> {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        let staging = self.buffer(
            "readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut encoder = self.encoder("readback");
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes.next_multiple_of(4));
        self.queue.submit(Some(encoder.finish()));
        self.map_blocking(&staging, bytes.max(4), wgpu::MapMode::Read)?;
        let slice = staging.slice(..bytes.max(4));
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::gpu(format!("{}: {e}", self.info.name)))?;
        let out = bytemuck::pod_collect_to_vec::<u8, T>(&data[..bytes as usize]);
        drop(data);
        staging.unmap();
        Ok(out)
    }

    /// Maps the first `bytes` of `buffer` (a MAP_READ or MAP_WRITE buffer,
    /// not in use by pending work that must overlap) and waits for it: for
    /// one-off and batch-synchronous paths; the streaming path uses
    /// [`super::staging::Slot`] instead.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the device fails or the mapping is refused.
    pub fn map_blocking(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        mode: wgpu::MapMode,
    ) -> Result<()> {
        let status: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let s = status.clone();
        buffer.slice(..bytes).map_async(mode, move |r| {
            if let Ok(mut s) = s.lock() {
                *s = Some(r);
            }
        });
        self.wait()?;
        match status.lock().ok().and_then(|mut s| s.take()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::gpu(format!(
                "{}: mapping failed: {e}",
                self.info.name
            ))),
            None => Err(Error::gpu(format!(
                "{}: mapping never completed",
                self.info.name
            ))),
        }
    }

    /// Writes `data` into `buffer` at `offset` (through wgpu's own staging:
    /// tests and one-off work only, never per chunk).
    pub fn write<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, offset: u64, data: &[T]) {
        self.queue
            .write_buffer(buffer, offset, bytemuck::cast_slice(data));
    }

    /// A command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }
}

fn record(sink: &Mutex<Option<String>>, msg: String) {
    if let Ok(mut slot) = sink.lock()
        && slot.is_none()
    {
        *slot = Some(msg);
    }
}

/// Workgroups for `n` items at `per_group` items each, folded into a 2-D
/// grid when there are more than the per-dimension limit (65535 by
/// default): shaders recover the linear index as `id.x + id.y * nx`, where
/// `nx` is the first component returned, and skip indices past `n`.
pub fn grid(n: u64, per_group: u64, max_per_dim: u32) -> (u32, u32) {
    let groups = n.div_ceil(per_group).max(1);
    let max = u64::from(max_per_dim.max(1));
    if groups <= max {
        (groups as u32, 1)
    } else {
        let y = groups.div_ceil(max);
        let x = groups.div_ceil(y);
        (x as u32, y as u32)
    }
}
