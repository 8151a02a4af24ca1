//! ObsPy's recursive STA/LTA (`recstalta.c`), streamed.
//!
//! Why it looks like this: the recursion is inherently sequential (each
//! value depends on the previous one), so the state `(sta, lta)` is simply
//! carried from call to call, together with the number of samples seen (the
//! first sample is skipped, as in ObsPy, and the first `nlta` values are
//! zeroed). The squares are prepared for a whole sub-block first, with a
//! branch-free loop that vectorises; the recursion then runs over them with
//! exactly `recstalta.c`'s operations and order, so the cft is bit-for-bit
//! ObsPy's for finite input.

use super::{Detector, Event, Masks, SCRATCH_BLOCK, Trigger, squares_into};

/// Recursive STA/LTA with state carried across chunks.
pub(super) struct RecursiveStaLta {
    csta: f64,
    clta: f64,
    icsta: f64,
    iclta: f64,
    sta: f64,
    lta: f64,
    /// Samples consumed since construction.
    seen: u64,
    masks: Masks,
    /// Squares, then cft, of the current sub-block.
    buf: Box<[f64]>,
    trigger: Trigger,
}

impl RecursiveStaLta {
    /// A detector with windows `nsta < nlta` (validated by the caller).
    pub(super) fn new(nsta: usize, nlta: usize, trigger: Trigger) -> Self {
        let csta = 1.0 / nsta as f64;
        let clta = 1.0 / nlta as f64;
        RecursiveStaLta {
            csta,
            clta,
            icsta: 1.0 - csta,
            iclta: 1.0 - clta,
            // recstalta.c starts both at 0 (so an all-zero start gives
            // 0/0 = NaN, hidden by the warm-up zeros as long as it lasts
            // less than nlta samples).
            sta: 0.0,
            lta: 0.0,
            seen: 0,
            masks: Masks {
                warm_up: nlta as u64,
                poison_len: nlta as u64,
                bad_until: 0,
            },
            buf: vec![0.0; SCRATCH_BLOCK].into_boxed_slice(),
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
        let buf = &mut self.buf[..samples.len()];
        let any_bad = squares_into(buf, samples);
        // recstalta.c's loop starts at i = 1: sample 0 never enters.
        let skip = usize::from(self.seen == 0);
        let (csta, clta, icsta, iclta) = (self.csta, self.clta, self.icsta, self.iclta);
        let (mut sta, mut lta) = (self.sta, self.lta);
        // The divisions are grouped so they can go out as packed divides;
        // the recursion itself runs sample by sample, in recstalta.c's order.
        let mut groups = buf[skip..].chunks_exact_mut(LANES);
        for group in &mut groups {
            let mut sv = [0.0f64; LANES];
            let mut lv = [0.0f64; LANES];
            for ((&sq, s), l) in group.iter().zip(&mut sv).zip(&mut lv) {
                sta = csta * sq + icsta * sta;
                lta = clta * sq + iclta * lta;
                (*s, *l) = (sta, lta);
            }
            for ((v, s), l) in group.iter_mut().zip(sv).zip(lv) {
                *v = s / l;
            }
        }
        for v in groups.into_remainder() {
            let sq = *v;
            sta = csta * sq + icsta * sta;
            lta = clta * sq + iclta * lta;
            *v = sta / lta;
        }
        (self.sta, self.lta) = (sta, lta);
        self.masks.apply(buf, samples, self.seen, any_bad);
        self.trigger.push(buf, offset, events);
        self.seen += samples.len() as u64;
    }
}

/// Samples per group of divisions.
const LANES: usize = 4;

impl Detector for RecursiveStaLta {
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
        for (b, block) in samples.chunks(SCRATCH_BLOCK).enumerate() {
            self.block(block, offset + (b * SCRATCH_BLOCK) as u64, events);
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
