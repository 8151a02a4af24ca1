// detect_threshold: the threshold detector's characteristic function,
// cft = |y|, for every output of the step and every channel.
//
// CPU twin: src/kernels/detect_threshold.rs. Dispatch: (gx, gy, channels)
// workgroups of 256 invocations, one output each; the linear workgroup index
// is id.x + id.y * num_workgroups.x (see context::grid).

// struct Step: shaders/lib/step.wgsl, prepended by the host.

// Elements between two channels' outputs in `y`.
override Y_STRIDE: u32;
// Elements between two channels' cft in `cft` (the planned chunk).
override CHUNK: u32;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> cft: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if i < step.out_frames {
        // |y| by clearing the sign bit: exact, and NaN stays NaN (WGSL lets
        // implementations assume there are no NaNs in arithmetic).
        cft[c * CHUNK + i] = bitcast<f32>(bitcast<u32>(y[c * Y_STRIDE + i]) & 0x7fffffffu);
    }
}
