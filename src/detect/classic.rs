//! ObsPy's classic STA/LTA (`stalta.c`), streamed.
//!
//! Why it looks like this: the two window sums are running sums, updated as
//! `sum += a² − a_old²` with the difference taken first, exactly as
//! `stalta.c` does, so the only loop-carried dependency is one add per sum
//! and per sample. Per sub-block of at most [`BLOCK`] samples:
//!
//! 1. the squares go into a history ring of `nlta + BLOCK` values (which
//!    holds every square still needed, so nothing is overwritten early), in
//!    a branch-free loop that vectorises;
//! 2. one sequential pass over contiguous slices of the ring (the new
//!    squares and those `nsta` and `nlta` samples back) takes the
//!    differences, adds them to the sums and divides; the divisions are
//!    grouped four at a time so they can go out as packed divides (about
//!    1.5x faster than one at a time).
//!
//! The ring starts as zeros, which reproduces `stalta.c`'s warm-up sums
//! exactly (`x − 0` is `x`). Each time the ring's write position wraps
//! (every `nlta + BLOCK` samples, at fixed sample counts, so independent of
//! chunking), the sums are recomputed from the ring to stop rounding drift;
//! see the parent module's docs.

use super::{BLOCK, Detector, Event, Masks, Trigger, squares_into};

/// Classic STA/LTA with running sums and a history ring.
pub(super) struct ClassicStaLta {
    nsta: usize,
    nlta: usize,
    /// nlta / nsta, as `stalta.c` computes it.
    frac: f64,
    /// Squares of the last `ring.len()` samples; sample count `c` lives at
    /// `c % ring.len()`.
    ring: Box<[f64]>,
    sta: f64,
    lta: f64,
    /// Samples consumed since construction.
    seen: u64,
    masks: Masks,
    /// cft of the current sub-block.
    cft: Box<[f64]>,
    trigger: Trigger,
}

impl ClassicStaLta {
    /// A detector with windows `nsta < nlta` (validated by the caller).
    pub(super) fn new(nsta: usize, nlta: usize, trigger: Trigger) -> Self {
        ClassicStaLta {
            nsta,
            nlta,
            frac: nlta as f64 / nsta as f64,
            ring: vec![0.0; nlta + BLOCK].into_boxed_slice(),
            sta: 0.0,
            lta: 0.0,
            seen: 0,
            masks: Masks {
                // stalta.c: charfct[0 .. nlta - 1) = 0.
                warm_up: nlta as u64 - 1,
                poison_len: nlta as u64,
                bad_until: 0,
            },
            cft: vec![0.0; BLOCK].into_boxed_slice(),
            trigger,
        }
    }

    /// The same detector, its sample count starting at `origin` (the
    /// stream index of its first sample, for a shard of a longer stream):
    /// no warm-up unless `origin` is 0.
    pub(super) fn starting_at(mut self, origin: u64) -> Self {
        self.seen = origin;
        self
    }

    fn block(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
        let n = samples.len();
        let r = self.ring.len();
        let w = (self.seen % r as u64) as usize;

        // 1. Squares into the ring (at most one wrap: n <= BLOCK < r).
        let first = n.min(r - w);
        let mut any_bad = squares_into(&mut self.ring[w..w + first], &samples[..first]);
        any_bad |= squares_into(&mut self.ring[..n - first], &samples[first..]);

        // 2. Running sums and ratio, over stretches where none of the three
        //    ring positions wraps. A stretch that ends at ring slot r - 1
        //    ends with a resync: that sample's windows are then the
        //    contiguous tails of the ring.
        let (mut sta, mut lta) = (self.sta, self.lta);
        let frac = self.frac;
        let mut k = 0;
        while k < n {
            let p_new = (w + k) % r;
            let p_sta = (w + k + r - self.nsta) % r;
            let p_lta = (w + k + r - self.nlta) % r;
            let len = (n - k).min(r - p_new).min(r - p_sta).min(r - p_lta);
            let new = &self.ring[p_new..p_new + len];
            let old_sta = &self.ring[p_sta..p_sta + len];
            let old_lta = &self.ring[p_lta..p_lta + len];
            let cft = &mut self.cft[k..k + len];
            running_ratio(cft, new, old_sta, old_lta, &mut sta, &mut lta, frac);
            k += len;
            if p_new + len == r {
                sta = window_sum(&self.ring[r - self.nsta..]);
                lta = window_sum(&self.ring[r - self.nlta..]);
                self.cft[k - 1] = sta / lta * frac;
            }
        }
        (self.sta, self.lta) = (sta, lta);

        let cft = &mut self.cft[..n];
        self.masks.apply(cft, samples, self.seen, any_bad);
        self.trigger.push(cft, offset, events);
        self.seen += n as u64;
    }
}

/// Running sums and ratio over one stretch: `sta += new − old_sta`,
/// `lta += new − old_lta`, `cft = sta / lta * frac`, for each sample in
/// order. The two add chains are the only loop-carried dependencies; the
/// divisions are grouped by [`LANES`] so they can go out as packed divides.
fn running_ratio(
    cft: &mut [f64],
    new: &[f64],
    old_sta: &[f64],
    old_lta: &[f64],
    sta: &mut f64,
    lta: &mut f64,
    frac: f64,
) {
    let (mut s, mut l) = (*sta, *lta);
    let mut c_it = cft.chunks_exact_mut(LANES);
    let mut n_it = new.chunks_exact(LANES);
    let mut s_it = old_sta.chunks_exact(LANES);
    let mut l_it = old_lta.chunks_exact(LANES);
    for (((c, a), os), ol) in (&mut c_it).zip(&mut n_it).zip(&mut s_it).zip(&mut l_it) {
        let mut sv = [0.0f64; LANES];
        let mut lv = [0.0f64; LANES];
        for j in 0..LANES {
            s += a[j] - os[j];
            l += a[j] - ol[j];
            sv[j] = s;
            lv[j] = l;
        }
        for j in 0..LANES {
            c[j] = sv[j] / lv[j] * frac;
        }
    }
    let rest = c_it
        .into_remainder()
        .iter_mut()
        .zip(n_it.remainder())
        .zip(s_it.remainder())
        .zip(l_it.remainder());
    for (((c, &a), &os), &ol) in rest {
        s += a - os;
        l += a - ol;
        *c = s / l * frac;
    }
    (*sta, *lta) = (s, l);
}

/// Samples per group of divisions in [`running_ratio`].
const LANES: usize = 4;

/// A fresh sum of `values` (all >= 0, so no cancellation), in a fixed order
/// of eight lanes so that it vectorises and is the same on every call.
fn window_sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let mut sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for &v in rest {
        sum += v;
    }
    sum
}

impl Detector for ClassicStaLta {
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
        for (b, block) in samples.chunks(BLOCK).enumerate() {
            self.block(block, offset + (b * BLOCK) as u64, events);
        }
    }

    fn finish(&mut self, events: &mut Vec<Event>) {
        self.trigger.finish(events);
    }

    fn open_event_start(&self) -> Option<u64> {
        self.trigger.open_start()
    }

    fn open_event_peak(&self) -> Option<u64> {
        self.trigger.open_peak()
    }
}
