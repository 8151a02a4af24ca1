// detect_classic: ObsPy's classic STA/LTA cft from a segment-sum pyramid.
//
// Why a pyramid: a window sum taken as the difference of two f32 prefix sums
// loses everything after a loud burst (the prefix sums grow huge and the
// quiet windows after it are tiny differences of them). Here every window
// sum is a sum of O(log nlta) aligned segment sums, all >= 0, with no
// subtraction, so its relative error stays a few f32 ulps whatever came
// before.
//
// Per step and channel, the extended sequence is the last H = NLTA - 1
// squares of earlier steps (`hist`, zeros before the stream start, like the
// CPU detector's ring) followed by this step's E - H squares:
//   squares: level 0 = ext squares, +inf for a non-finite sample (so every
//            window holding one sums to inf, and its cft is NaN: the CPU's
//            NaN stretch of nlta samples);
//   reduce:  level k (k = 1 .. floor(log2 NLTA)) = pairwise sums of k - 1
//            (one dispatch per level, `level.k`);
//   ratio:   cft = sta / lta * FRAC, NaN where lta is not finite, 0 for the
//            first `step.warm_up` outputs;
//   history: the last H squares become the next step's `hist`.
// Level k of channel c starts at c * PSTRIDE + PSTRIDE - (PSTRIDE >> k)
// (PSTRIDE = 2 * CAP, CAP a power of two >= H + chunk).
//
// CPU twin: src/kernels/detect_classic.rs. Dispatch: (gx, gy, channels)
// workgroups of 256 invocations, one element each.

// struct Step: shaders/lib/step.wgsl, prepended by the host.

struct Level {
    k: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

override Y_STRIDE: u32;
override CHUNK: u32;
override NSTA: u32;
override NLTA: u32;
// floor(log2(NLTA)): the highest level built.
override LEVELS: u32;
override PSTRIDE: u32;
override FRAC: f32;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> hist: array<f32>;
@group(0) @binding(3) var<storage, read_write> pyr: array<f32>;
@group(0) @binding(4) var<storage, read_write> cft: array<f32>;
@group(0) @binding(5) var<uniform> level: Level;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid;
}

fn level_start(k: u32) -> u32 {
    return PSTRIDE - (PSTRIDE >> k);
}

fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(256)
fn squares(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let j = index(wid, nwg, lid);
    let h = NLTA - 1u;
    if j < h + step.out_frames {
        var sq: f32;
        if j < h {
            sq = hist[c * h + j];
        } else {
            let x = y[c * Y_STRIDE + j - h];
            if not_finite(x) {
                sq = bitcast<f32>(0x7f800000u);
            } else {
                sq = x * x;
            }
        }
        pyr[c * PSTRIDE + j] = sq;
    }
}

@compute @workgroup_size(256)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let j = index(wid, nwg, lid);
    let k = level.k;
    if j < ((NLTA - 1u + step.out_frames) >> k) {
        let below = c * PSTRIDE + level_start(k - 1u) + 2u * j;
        pyr[c * PSTRIDE + level_start(k) + j] = pyr[below] + pyr[below + 1u];
    }
}

// Sum of ext[s .. e) of channel c as aligned segments, left to right, each
// the largest that starts at `s` and fits.
fn window_sum(c: u32, s0: u32, e: u32) -> f32 {
    var s = s0;
    var acc = 0.0;
    while s < e {
        var k = min(countTrailingZeros(s), LEVELS);
        while s + (1u << k) > e {
            k -= 1u;
        }
        acc += pyr[c * PSTRIDE + level_start(k) + (s >> k)];
        s += 1u << k;
    }
    return acc;
}

@compute @workgroup_size(256)
fn ratio(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let i = index(wid, nwg, lid);
    if i < step.out_frames {
        // Output i is ext element H + i; its windows end there.
        let e = NLTA + i;
        let lta = window_sum(c, e - NLTA, e);
        let sta = window_sum(c, e - NSTA, e);
        var v = sta / lta * FRAC;
        // A non-finite sample in the long window (inf), or a long window of
        // zeros (0/0 on the CPU): NaN, spelled out because WGSL arithmetic
        // may assume there are no NaNs.
        if not_finite(lta) || lta == 0.0 {
            v = bitcast<f32>(0x7fc00000u);
        }
        if i < step.warm_up {
            v = 0.0;
        }
        cft[c * CHUNK + i] = v;
    }
}

@compute @workgroup_size(256)
fn history(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let t = index(wid, nwg, lid);
    let h = NLTA - 1u;
    if t < h {
        hist[c * h + t] = pyr[c * PSTRIDE + step.out_frames + t];
    }
}
