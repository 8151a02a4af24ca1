//! The threshold detector: the cft is the sample, its negative or its
//! magnitude.
//!
//! Why a detector of its own: the simplest detector, and the one whose cft
//! costs nothing, so its speed is the trigger's idle scan. The `f32`
//! samples are widened to `f64` (exact) into a fixed scratch block, with the
//! sign the [`Polarity`] asks for, and compared in `f64`, like the STA/LTA
//! detectors' cft. Negating or taking the magnitude is exact in either
//! precision, so `−f64::from(y)` is `f64::from(−y)`.

use super::{Detector, Event, Polarity, SCRATCH_BLOCK, Trigger};

/// cft = y, −y or |y|, triggered with ObsPy's rules.
pub(super) struct Threshold {
    trigger: Trigger,
    polarity: Polarity,
    /// The cft of the current sub-block.
    cft: Box<[f64]>,
}

impl Threshold {
    /// A threshold detector around `trigger`.
    pub(super) fn new(trigger: Trigger, polarity: Polarity) -> Self {
        Threshold {
            trigger,
            polarity,
            cft: vec![0.0; SCRATCH_BLOCK].into_boxed_slice(),
        }
    }
}

impl Detector for Threshold {
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
        for (b, block) in samples.chunks(SCRATCH_BLOCK).enumerate() {
            let cft = &mut self.cft[..block.len()];
            // One loop per polarity, so that each stays branch-free.
            let pairs = cft.iter_mut().zip(block);
            match self.polarity {
                Polarity::Pos => pairs.for_each(|(c, &y)| *c = f64::from(y)),
                Polarity::Neg => pairs.for_each(|(c, &y)| *c = -f64::from(y)),
                Polarity::Both => pairs.for_each(|(c, &y)| *c = f64::from(y.abs())),
            }
            self.trigger
                .push(cft, offset + (b * SCRATCH_BLOCK) as u64, events);
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
