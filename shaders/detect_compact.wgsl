// detect_compact: stream compaction of the candidates of a step's cft.
//
// A candidate is an output whose cft is >= LOW = min(on, off) (rounded down
// to f32); NaN never is. Only candidates go back to the host, which replays
// ObsPy's trigger from them (a gap between candidates is a run of values
// below every level: see Trigger::push_below). Each workgroup takes a tile of
// 1024 outputs of one channel (4 consecutive per invocation), counts its
// candidates with a workgroup scan, reserves space for all of them with one
// atomicAdd on the channel's counter, and writes (index in step, cft bits)
// pairs in index order within the tile; tiles land in any order, so the host
// sorts. Channel c's candidate j lives at c * FAST + j for j < FAST (the
// region read back after every step), else in the overflow region after all
// channels' first FAST.
//
// CPU twin: src/kernels/detect_compact.rs. Dispatch: (gx, gy, channels).

// struct Step: shaders/lib/step.wgsl, prepended by the host.

override CHUNK: u32;
override FAST: u32;
override CHANNELS: u32;
override LOW: f32;

const WG: u32 = 256u;
const ITEMS: u32 = 4u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> cft: array<f32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> cands: array<vec2<u32>>;

var<workgroup> sums: array<u32, 256>;
var<workgroup> base: u32;

fn is_candidate(v: f32) -> bool {
    let nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
    return !nan && v >= LOW;
}

fn slot(c: u32, j: u32) -> u32 {
    if j < FAST {
        return c * FAST + j;
    }
    return CHANNELS * FAST + c * (CHUNK - FAST) + (j - FAST);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let first = (wid.x + wid.y * nwg.x) * (WG * ITEMS) + lid * ITEMS;
    var n = 0u;
    for (var k = 0u; k < ITEMS; k++) {
        let i = first + k;
        if i < step.out_frames && is_candidate(cft[c * CHUNK + i]) {
            n++;
        }
    }
    // Inclusive scan of the counts (Hillis-Steele).
    sums[lid] = n;
    workgroupBarrier();
    for (var off = 1u; off < WG; off *= 2u) {
        var s = sums[lid];
        if lid >= off {
            s += sums[lid - off];
        }
        workgroupBarrier();
        sums[lid] = s;
        workgroupBarrier();
    }
    if lid == WG - 1u {
        base = atomicAdd(&counts[c], sums[WG - 1u]);
    }
    var pos = workgroupUniformLoad(&base) + sums[lid] - n;
    for (var k = 0u; k < ITEMS; k++) {
        let i = first + k;
        if i < step.out_frames {
            let v = cft[c * CHUNK + i];
            if is_candidate(v) {
                cands[slot(c, pos)] = vec2<u32>(i, bitcast<u32>(v));
                pos++;
            }
        }
    }
}
