//! The threshold detector: the cft is the sample's magnitude.
//!
//! Why a detector of its own: the simplest detector, and the one whose cft
//! costs nothing, so its speed is the trigger's idle scan. The `f32`
//! magnitudes are widened to `f64` into a fixed scratch block and compared
//! in `f64`, like the STA/LTA detectors' cft.

use super::{Detector, Event, SCRATCH_BLOCK, Trigger};

/// cft = |y|, triggered with ObsPy's rules.
pub(super) struct Threshold {
    trigger: Trigger,
    /// |y| of the current sub-block.
    cft: Box<[f64]>,
}

impl Threshold {
    /// A threshold detector around `trigger`.
    pub(super) fn new(trigger: Trigger) -> Self {
        Threshold {
            trigger,
            cft: vec![0.0; SCRATCH_BLOCK].into_boxed_slice(),
        }
    }
}

impl Detector for Threshold {
    fn process(&mut self, samples: &[f32], offset: u64, events: &mut Vec<Event>) {
        for (b, block) in samples.chunks(SCRATCH_BLOCK).enumerate() {
            let cft = &mut self.cft[..block.len()];
            for (c, &y) in cft.iter_mut().zip(block) {
                *c = f64::from(y.abs());
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
}
