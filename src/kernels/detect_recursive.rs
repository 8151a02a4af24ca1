//! CPU twin of `shaders/detect_recursive.wgsl`: ObsPy's recursive STA/LTA as
//! a scan of affine maps (entry points `tile_maps`, `carry`, `values`).
//!
//! Why a scan (see the shader): each sample is the map x -> A·x + B of the
//! recursion, maps compose associatively, so a step is a parallel prefix
//! over tiles of 1024 outputs applied to the state carried from the previous
//! step. The twin keeps the shader's buffers and mirrors its workgroup scans
//! (Hillis-Steele, same combination order), in f32.

use super::step::StepParams;

/// Invocations per workgroup.
const WG: usize = 256;
/// Outputs per invocation.
const ITEMS: usize = 4;
/// Outputs per tile (workgroup).
pub const TILE: usize = WG * ITEMS;
/// "No non-finite sample" as a position.
pub const NONE: i32 = -1_073_741_824;

/// The shader's override constants.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// `Y_STRIDE`.
    pub y_stride: usize,
    /// `CHUNK`.
    pub chunk: usize,
    /// `MAX_TILES` = ceil(chunk / 1024).
    pub max_tiles: usize,
    /// `NLTA`.
    pub nlta: usize,
    /// `CSTA` = 1 / nsta.
    pub csta: f32,
    /// `CLTA` = 1 / nlta.
    pub clta: f32,
}

/// The shader's `Map`: x -> a·x + b for sta and lta, and the latest
/// non-finite position covered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Map {
    /// Factor for sta.
    pub a_s: f32,
    /// Offset for sta.
    pub b_s: f32,
    /// Factor for lta.
    pub a_l: f32,
    /// Offset for lta.
    pub b_l: f32,
    /// Latest non-finite position in the step, or [`NONE`].
    pub bad: i32,
}

/// The shader's `State`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    /// Short-term average.
    pub sta: f32,
    /// Long-term average.
    pub lta: f32,
    /// Latest non-finite position (relative to the step), or [`NONE`].
    pub bad: i32,
    /// 1 once a step has run.
    pub started: u32,
}

/// The identity map.
pub const IDENTITY: Map = Map {
    a_s: 1.0,
    b_s: 0.0,
    a_l: 1.0,
    b_l: 0.0,
    bad: NONE,
};

/// The shader's `compose`: `second` after `first`.
pub fn compose(first: Map, second: Map) -> Map {
    Map {
        a_s: second.a_s * first.a_s,
        b_s: second.a_s * first.b_s + second.b_s,
        a_l: second.a_l * first.a_l,
        b_l: second.a_l * first.b_l + second.b_l,
        bad: first.bad.max(second.bad),
    }
}

/// The shader's `apply`.
pub fn apply(m: Map, s: State) -> State {
    State {
        sta: m.a_s * s.sta + m.b_s,
        lta: m.a_l * s.lta + m.b_l,
        bad: s.bad.max(m.bad),
        started: s.started,
    }
}

fn sample_map(p: &Params, step: &StepParams, y: &[f32], c: usize, i: usize) -> Map {
    let x = y[c * p.y_stride + i];
    let mut m = Map {
        a_s: 1.0 - p.csta,
        b_s: 0.0,
        a_l: 1.0 - p.clta,
        b_l: 0.0,
        bad: NONE,
    };
    if x.is_finite() {
        let sq = x * x;
        m.b_s = p.csta * sq;
        m.b_l = p.clta * sq;
    } else {
        m.bad = i as i32;
    }
    if i == 0 && step.base_lo == 0 && step.base_hi == 0 {
        (m.a_s, m.b_s, m.a_l, m.b_l) = (1.0, 0.0, 1.0, 0.0);
    }
    m
}

fn items_map(p: &Params, step: &StepParams, y: &[f32], c: usize, first: usize) -> Map {
    let mut m = IDENTITY;
    for i in first..first + ITEMS {
        if i < step.out_frames as usize {
            m = compose(m, sample_map(p, step, y, c, i));
        }
    }
    m
}

/// The shader's `scan_exclusive` for a whole workgroup: the inclusive scan
/// and each invocation's exclusive prefix.
fn scan(mine: &[Map; WG]) -> ([Map; WG], [Map; WG]) {
    let mut s = *mine;
    let mut off = 1;
    while off < WG {
        let prev = s;
        for lid in off..WG {
            s[lid] = compose(prev[lid - off], prev[lid]);
        }
        off *= 2;
    }
    let mut prefix = [IDENTITY; WG];
    prefix[1..].copy_from_slice(&s[..WG - 1]);
    (s, prefix)
}

/// Entry point `tile_maps`: each tile's composed map into `tiles`.
pub fn tile_maps(p: &Params, channels: usize, step: &StepParams, y: &[f32], tiles: &mut [Map]) {
    for c in 0..channels {
        for tile in 0..(step.out_frames as usize).div_ceil(TILE) {
            let mine: [Map; WG] =
                std::array::from_fn(|lid| items_map(p, step, y, c, tile * TILE + lid * ITEMS));
            let (s, _) = scan(&mine);
            tiles[c * p.max_tiles + tile] = s[WG - 1];
        }
    }
}

/// Entry point `carry`: tile starting states from the carried `state`, and
/// the state after the step.
pub fn carry(
    p: &Params,
    channels: usize,
    step: &StepParams,
    tiles: &[Map],
    state: &mut [State],
    starts: &mut [State],
) {
    let n = (step.out_frames as usize).div_ceil(TILE);
    let per = n.div_ceil(WG);
    for c in 0..channels {
        let mine: [Map; WG] = std::array::from_fn(|lid| {
            let first = lid * per;
            let mut m = IDENTITY;
            for t in first..(first + per).min(n) {
                m = compose(m, tiles[c * p.max_tiles + t]);
            }
            m
        });
        let (_, prefix) = scan(&mine);
        let mut s = state[c];
        if s.started == 0 || (step.base_lo == 0 && step.base_hi == 0) {
            s = State {
                sta: 0.0,
                lta: 0.0,
                bad: NONE,
                started: 0,
            };
        }
        for (lid, pre) in prefix.iter().enumerate() {
            let first = lid * per;
            let mut at = apply(*pre, s);
            for t in first..(first + per).min(n) {
                starts[c * p.max_tiles + t] = at;
                at = apply(tiles[c * p.max_tiles + t], at);
            }
            if lid == WG - 1 {
                at.bad = (at.bad - step.out_frames as i32).max(NONE);
                at.started = 1;
                state[c] = at;
            }
        }
    }
}

/// Entry point `values`: cft = sta / lta, NaN within nlta outputs of a
/// non-finite sample or where lta is 0, 0 during the warm-up.
pub fn values(
    p: &Params,
    channels: usize,
    step: &StepParams,
    y: &[f32],
    starts: &[State],
    cft: &mut [f32],
) {
    let n = step.out_frames as usize;
    for c in 0..channels {
        for tile in 0..n.div_ceil(TILE) {
            let mine: [Map; WG] =
                std::array::from_fn(|lid| items_map(p, step, y, c, tile * TILE + lid * ITEMS));
            let (_, prefix) = scan(&mine);
            for (lid, pre) in prefix.iter().enumerate() {
                let first = tile * TILE + lid * ITEMS;
                let mut s = apply(*pre, starts[c * p.max_tiles + tile]);
                for i in first..(first + ITEMS).min(n) {
                    s = apply(sample_map(p, step, y, c, i), s);
                    let mut v = s.sta / s.lta;
                    if s.bad > i as i32 - p.nlta as i32 || s.lta == 0.0 {
                        v = f32::NAN;
                    }
                    if i < step.warm_up as usize {
                        v = 0.0;
                    }
                    cft[c * p.chunk + i] = v;
                }
            }
        }
    }
}
