//! Steim-1 and Steim-2 decompression (SEED 2.4 manual, appendix B).
//!
//! Data come in 64-byte frames of sixteen 32-bit words. Word 0 of each
//! frame holds sixteen 2-bit codes, one per word, saying what the word
//! holds; in the first frame, words 1 and 2 are the forward and reverse
//! integration constants X0 (the first sample) and Xn (the last). The other
//! words pack first differences, most significant first:
//!
//! | code | Steim-1            | Steim-2 (by the word's top 2 bits, `dnib`)          |
//! |------|--------------------|-----------------------------------------------------|
//! | 0    | no data            | no data                                             |
//! | 1    | four 8-bit         | four 8-bit                                          |
//! | 2    | two 16-bit         | 01: one 30-bit, 10: two 15-bit, 11: three 10-bit    |
//! | 3    | one 32-bit         | 00: five 6-bit, 01: six 5-bit, 10: seven 4-bit      |
//!
//! Sample 0 is X0 (the first difference, relative to the previous
//! record, is skipped), sample i is sample i−1 plus difference i, and the
//! last sample must equal Xn: libmseed's integrity check. A record that
//! fails it, holds fewer differences than its header's sample count, or
//! uses an invalid `dnib` is corrupt, and decoding it is an error rather
//! than a warning: sigstream never processes samples it cannot trust.

/// Which Steim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    One,
    Two,
}

/// The layout of a data word, by `code * 4 + (word >> 30)`: (bits per
/// difference, differences, unused top bits: 32 − bits × differences); a
/// count above 7 marks an invalid sub-code. Steim-1 ignores the word's top
/// bits.
type Layouts = [(u32, u32, u32); 16];

#[rustfmt::skip]
const STEIM1: Layouts = [
    (32, 0, 0), (32, 0, 0), (32, 0, 0), (32, 0, 0), // 0: no data
    (8, 4, 0), (8, 4, 0), (8, 4, 0), (8, 4, 0),     // 1: four 8-bit
    (16, 2, 0), (16, 2, 0), (16, 2, 0), (16, 2, 0), // 2: two 16-bit
    (32, 1, 0), (32, 1, 0), (32, 1, 0), (32, 1, 0), // 3: one 32-bit
];

#[rustfmt::skip]
const STEIM2: Layouts = [
    (32, 0, 0), (32, 0, 0), (32, 0, 0), (32, 0, 0), // 0: no data
    (8, 4, 0), (8, 4, 0), (8, 4, 0), (8, 4, 0),     // 1: four 8-bit
    (32, 8, 0), (30, 1, 2), (15, 2, 2), (10, 3, 2), // 2: 00 invalid; one 30, two 15, three 10
    (6, 5, 2), (5, 6, 2), (4, 7, 4), (32, 8, 0),    // 3: five 6, six 5, seven 4 (low 28 bits); 11 invalid
];

/// Decodes `samples` samples from `data` (whole frames; a partial frame at
/// the end is ignored) into `out` (cleared first), in the given byte order.
///
/// # Errors
/// A corrupt frame: too few differences, an invalid Steim-2 sub-code, or a
/// last sample that is not the reverse integration constant.
pub(super) fn decode(
    kind: Kind,
    data: &[u8],
    samples: usize,
    big: bool,
    out: &mut Vec<f32>,
    diffs: &mut Vec<i32>,
) -> Result<(), String> {
    out.clear();
    if samples == 0 {
        return Ok(());
    }
    let frames = data.len() / 64;
    if frames == 0 {
        return Err(format!(
            "{samples} Steim samples but no whole 64-byte frame"
        ));
    }
    // At most seven differences in each of 15 words a frame (13 in the
    // first), and the first difference does not make a sample.
    let most = (frames * 105).saturating_sub(14);
    if samples > most {
        return Err(format!(
            "corrupt Steim frames: the header says {samples} samples but {frames} frames hold at most {most}"
        ));
    }
    // Two passes, each a tight loop: every word's differences into
    // `diffs` (the first difference, relative to the previous record,
    // included), then the running sum into `out`.
    // Grown once, never cleared: only the `len` values written are read.
    let room = frames * 15 * 7 + 7;
    if diffs.len() < room {
        diffs.resize(room, 0);
    }
    let mut len = 0usize;
    let mut words = [0u32; 16];
    let (mut x0, mut xn) = (0i32, 0i32);
    for (f, frame) in data.chunks_exact(64).enumerate() {
        for (w, b) in words.iter_mut().zip(frame.chunks_exact(4)) {
            let b = [b[0], b[1], b[2], b[3]];
            *w = if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
        }
        let first = if f == 0 {
            x0 = words[1] as i32;
            xn = words[2] as i32;
            3
        } else {
            1
        };
        let nibbles = words[0];
        let table = match kind {
            Kind::One => &STEIM1,
            Kind::Two => &STEIM2,
        };
        for (w, &v) in words.iter().enumerate().skip(first) {
            // Branch-free: the code and the word's top bits pick the
            // layout, and all seven slots are written (those past `count`
            // are overwritten by the next word), so random data does not
            // make the branch predictor guess.
            let code = (nibbles >> (30 - 2 * w)) & 3;
            let (bits, count, pad) = table[(code * 4 + (v >> 30)) as usize];
            if count > 7 {
                let what = if code == 2 {
                    "code 2 with sub-code 00"
                } else {
                    "code 3 with sub-code 11"
                };
                return Err(corrupt(f, w, what));
            }
            let at = &mut diffs[len..len + 7];
            for (k, d) in at.iter_mut().enumerate() {
                let up = v.wrapping_shl(pad + bits * k as u32) as i32;
                *d = up.wrapping_shr(32 - bits);
            }
            len += count as usize;
        }
        if len > samples {
            break;
        }
    }
    // Sample 0 is X0; difference 0 is skipped.
    let made = len.max(1).min(samples);
    out.resize(made, 0.0);
    out[0] = x0 as f32;
    let mut last = x0;
    for (o, &d) in out[1..].iter_mut().zip(&diffs[1..made]) {
        last = last.wrapping_add(d);
        *o = last as f32;
    }
    if made < samples {
        return Err(format!(
            "corrupt Steim frames: they hold {made} samples but the header says {samples}"
        ));
    }
    if last != xn {
        return Err(format!(
            "corrupt Steim data: the last sample is {last} but the reverse integration constant says {xn}"
        ));
    }
    Ok(())
}

fn corrupt(frame: usize, word: usize, what: &str) -> String {
    format!("corrupt Steim-2 frame {frame}, word {word}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steim frames (big-endian words) holding X0, Xn and then the given
    /// (code, word) pairs.
    fn frames(x0: i32, xn: i32, words: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = words;
        let mut first = true;
        loop {
            // Word 0 is the codes, filled in below.
            let mut ws = vec![(0u32, 0u32)];
            if first {
                ws.extend([(0, x0 as u32), (0, xn as u32)]);
            }
            let take = (16 - ws.len()).min(rest.len());
            ws.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            ws.resize(16, (0, 0));
            ws[0].1 = ws
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &(c, _))| n | (c << (30 - 2 * i)));
            for &(_, w) in &ws {
                out.extend_from_slice(&w.to_be_bytes());
            }
            first = false;
            if rest.is_empty() {
                return out;
            }
        }
    }

    #[test]
    fn steim2_subcodes_unpack_signed_differences_msb_first() {
        // X0 = 10; differences (first skipped): [_, -1, 2] as three 10-bit,
        // then seven 4-bit [1, -1, 1, -1, 7, -8, 0].
        let three10 = (3u32 << 30) | ((999 & 0x3ff) << 20) | ((-1i32 as u32 & 0x3ff) << 10) | 2;
        let mut s4 = 2u32 << 30;
        for (k, &d) in [1i32, -1, 1, -1, 7, -8, 0].iter().enumerate() {
            s4 |= (d as u32 & 0xf) << (4 * (6 - k));
        }
        let expect = [10, 9, 11, 12, 11, 12, 11, 18, 10, 10];
        let data = frames(10, 10, &[(2, three10), (3, s4)]);
        let mut out = Vec::new();
        decode(
            Kind::Two,
            &data,
            expect.len(),
            true,
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(out, expect.map(|v| v as f32));
        // Little-endian words decode the same.
        let le: Vec<u8> = data
            .chunks(4)
            .flat_map(|w| [w[3], w[2], w[1], w[0]])
            .collect();
        decode(
            Kind::Two,
            &le,
            expect.len(),
            false,
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(out, expect.map(|v| v as f32));
    }

    #[test]
    fn corrupt_frames_are_errors() {
        // An Xn that disagrees with the integration.
        let data = frames(5, 6, &[(1, 0x0001_0100)]);
        let mut out = Vec::new();
        let e = decode(Kind::One, &data, 3, true, &mut out, &mut Vec::new()).unwrap_err();
        assert!(e.contains("reverse integration constant"), "{e}");
        // More samples than differences.
        let e = decode(Kind::One, &data, 9, true, &mut out, &mut Vec::new()).unwrap_err();
        assert!(e.contains("header says 9"), "{e}");
        // Steim-2 code 3 with sub-code 11.
        let data = frames(0, 0, &[(3, 3 << 30)]);
        let e = decode(Kind::Two, &data, 2, true, &mut out, &mut Vec::new()).unwrap_err();
        assert!(e.contains("sub-code 11"), "{e}");
        // The same bytes with the right Xn: 0x0001_0100 is the four
        // differences [0 (skipped), 1, 1, 0].
        let data = frames(5, 7, &[(1, 0x0001_0100)]);
        decode(Kind::One, &data, 3, true, &mut out, &mut Vec::new()).unwrap();
        assert_eq!(out, [5.0, 6.0, 7.0]);
    }
}
