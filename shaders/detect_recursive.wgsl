// detect_recursive: ObsPy's recursive STA/LTA (recstalta.c) as a scan.
//
// Why a scan: sta_i = CSTA * a_i^2 + (1 - CSTA) * sta_{i-1} is sequential
// as written, but each sample is the affine map x -> A * x + B, and affine
// maps compose associatively, so a step's values are a parallel prefix of
// maps applied to the state carried from the previous step:
//   tiles:  each workgroup composes the maps of its tile of 1024 outputs
//           (4 per invocation, then a workgroup scan) into `tiles`;
//   carry:  one workgroup per channel scans the tile maps from the carried
//           `state`, writes each tile's starting state to `starts`, and
//           advances `state` past the step;
//   values: each workgroup rescans its tile from its starting state and
//           writes cft = sta / lta, NaN within NLTA outputs of a non-finite
//           sample (carried across steps), 0 for the first step.warm_up.
// ObsPy skips sample 0 of the stream (it never enters the recursion): its map
// is the identity. A non-finite sample enters as a^2 = 0. The latest
// non-finite position rides along in the scan (combined with max); positions
// are relative to the step's first output, NONE when there is none.
//
// CPU twin: src/kernels/detect_recursive.rs.

// struct Step: shaders/lib/step.wgsl, prepended by the host.

// x -> (a_s * x + b_s) for sta, (a_l * x + b_l) for lta; `bad` = latest
// non-finite position covered.
struct Map {
    a_s: f32,
    b_s: f32,
    a_l: f32,
    b_l: f32,
    bad: i32,
}

// A channel's state between steps (and a tile's starting state).
struct State {
    sta: f32,
    lta: f32,
    bad: i32,
    started: u32,
}

override Y_STRIDE: u32;
override CHUNK: u32;
// Tiles per channel in `tiles` and `starts`.
override MAX_TILES: u32;
override NLTA: u32;
override CSTA: f32;
override CLTA: f32;

const WG: u32 = 256u;
const ITEMS: u32 = 4u;
const TILE: u32 = 1024u;
const NONE: i32 = -1073741824;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> tiles: array<Map>;
@group(0) @binding(3) var<storage, read_write> state: array<State>;
@group(0) @binding(4) var<storage, read_write> starts: array<State>;
@group(0) @binding(5) var<storage, read_write> cft: array<f32>;

var<workgroup> scan: array<Map, 256>;

fn identity() -> Map {
    return Map(1.0, 0.0, 1.0, 0.0, NONE);
}

// `second` after `first`.
fn compose(first: Map, second: Map) -> Map {
    return Map(
        second.a_s * first.a_s,
        second.a_s * first.b_s + second.b_s,
        second.a_l * first.a_l,
        second.a_l * first.b_l + second.b_l,
        max(first.bad, second.bad),
    );
}

fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// The map of output i of channel c.
fn sample_map(c: u32, i: u32) -> Map {
    let x = y[c * Y_STRIDE + i];
    var m = Map(1.0 - CSTA, 0.0, 1.0 - CLTA, 0.0, NONE);
    if not_finite(x) {
        m.bad = i32(i);
    } else {
        let sq = x * x;
        m.b_s = CSTA * sq;
        m.b_l = CLTA * sq;
    }
    if i == 0u && step.base_lo == 0u && step.base_hi == 0u {
        m.a_s = 1.0;
        m.b_s = 0.0;
        m.a_l = 1.0;
        m.b_l = 0.0;
    }
    return m;
}

// The maps of an invocation's ITEMS outputs from `first`, composed.
fn items_map(c: u32, first: u32) -> Map {
    var m = identity();
    for (var k = 0u; k < ITEMS; k++) {
        if first + k < step.out_frames {
            m = compose(m, sample_map(c, first + k));
        }
    }
    return m;
}

// Inclusive workgroup scan of `scan` (Hillis-Steele); returns the exclusive
// prefix of invocation `lid`.
fn scan_exclusive(lid: u32, mine: Map) -> Map {
    scan[lid] = mine;
    workgroupBarrier();
    for (var off = 1u; off < WG; off *= 2u) {
        var s = scan[lid];
        if lid >= off {
            s = compose(scan[lid - off], s);
        }
        workgroupBarrier();
        scan[lid] = s;
        workgroupBarrier();
    }
    var prefix = identity();
    if lid > 0u {
        prefix = scan[lid - 1u];
    }
    return prefix;
}

@compute @workgroup_size(256)
fn tile_maps(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let tile = wid.x + wid.y * nwg.x;
    let mine = items_map(c, tile * TILE + lid * ITEMS);
    scan_exclusive(lid, mine);
    if lid == WG - 1u && tile < MAX_TILES {
        tiles[c * MAX_TILES + tile] = scan[WG - 1u];
    }
}

fn apply(m: Map, s: State) -> State {
    return State(m.a_s * s.sta + m.b_s, m.a_l * s.lta + m.b_l, max(s.bad, m.bad), s.started);
}

@compute @workgroup_size(256)
fn carry(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x;
    let n = (step.out_frames + TILE - 1u) / TILE;
    let per = (n + WG - 1u) / WG;
    let first = lid * per;
    let last = min(first + per, n);
    var mine = identity();
    for (var t = first; t < last; t++) {
        mine = compose(mine, tiles[c * MAX_TILES + t]);
    }
    let prefix = scan_exclusive(lid, mine);
    var s = state[c];
    if s.started == 0u || (step.base_lo == 0u && step.base_hi == 0u) {
        s = State(0.0, 0.0, NONE, 0u);
    }
    var at = apply(prefix, s);
    for (var t = first; t < last; t++) {
        starts[c * MAX_TILES + t] = at;
        at = apply(tiles[c * MAX_TILES + t], at);
    }
    if lid == WG - 1u {
        // `at` is now the state after the whole step; positions become
        // relative to the next step.
        at.bad = max(at.bad - i32(step.out_frames), NONE);
        at.started = 1u;
        state[c] = at;
    }
}

@compute @workgroup_size(256)
fn values(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.z;
    let tile = wid.x + wid.y * nwg.x;
    let first = tile * TILE + lid * ITEMS;
    let prefix = scan_exclusive(lid, items_map(c, first));
    if tile < MAX_TILES {
        var s = apply(prefix, starts[c * MAX_TILES + tile]);
        for (var k = 0u; k < ITEMS; k++) {
            let i = first + k;
            if i < step.out_frames {
                s = apply(sample_map(c, i), s);
                var v = s.sta / s.lta;
                if s.bad > i32(i) - i32(NLTA) || s.lta == 0.0 {
                    v = bitcast<f32>(0x7fc00000u);
                }
                if i < step.warm_up {
                    v = 0.0;
                }
                cft[c * CHUNK + i] = v;
            }
        }
    }
}
