#!/usr/bin/env python3
"""Spike-detection benchmark: `sigstream process` against SpikeInterface on
one synthetic Neuropixels-like recording, scored against its ground truth.

    pip install spikeinterface          # once (numpy and scipy too)
    cargo build --release
    python3 scripts/bench_spikes.py [--seconds 60] [--jobs 2] [--keep DIR] [--json FILE]
    python3 scripts/bench_spikes.py --seconds 10 --only spikeinterface   # smoke test, no sigstream
    python3 scripts/bench_spikes.py --no-zero-phase     # sigstream forward-only (SI stays filtfilt)
    python3 scripts/bench_spikes.py --no-snippets       # both tools detect only
    python3 scripts/bench_spikes.py --dedup             # sigstream also drops duplicates
                                                        # (--dedup-window 0.0005)

Writes (chunk by chunk, numpy seeded) a raw recording of --seconds seconds:
385 channels of int16 little endian, interleaved (frames x channels), at
30 kHz, made of

- Gaussian noise of std 10 x U(0.8, 1.2) int16 units, per channel;
- LFP and drift: a 5 Hz sinusoid (amplitude 150, its phase sliding along
  the probe) plus a 0.25 Hz one (amplitude 80), which the band-pass has to
  remove;
- 50 common-mode artefacts a minute (at least one): 3 ms each, a fast
  swing to +775 units (0.1 ms) and a slower dip to -385 (1.5 ms), on
  every channel with a gain of 1 +- 0.3 % (std), so that a common median
  reference removes them and nothing else does: without it they are
  detected on all 385 channels;
- 40 units, each with a biphasic template (negative trough, then a slower
  positive repolarisation) on a footprint of 5 neighbouring channels (main
  channel 1, then about 0.7 and 0.25 on either side); amplitude SNR x the
  main channel's noise std, SNR uniform in [4, 15] per unit (the filtfilt
  band-pass keeps 80-100 % of the trough and about 60 % of the noise),
  times N(1, 0.15) (clipped to [0.6, 1.4]) spike to spike; firing as
  Poisson processes at 5-10 Hz with a 2 ms refractory period. The main
  channels are spread along the probe, at least 5 channels apart, so
  that footprints don't overlap.

The ground truth (gt.npy: frame of each spike's negative peak, unit, main
channel, amplitude scale; units.npz: main channels, footprints, amplitudes,
SNRs, noise stds; artefacts.npy: the artefacts' first frames) lies in the
same temporary directory.

Then times, each in a fresh process (wall time and the child's peak RSS,
ru_maxrss, via scripts/bench_mseed.py's `timed`):

- sigstream: `process REC --dtype i16 --channels 385 --sample-rate 30000
  --iir butter --order 5 --bandpass 300:6000 --zero-phase --reference median
  --detect threshold --polarity neg --on-noise 5 --dead-time 0.001
  --snippets SNIP.npy --snippet-samples 30:60 --events EV.csv
  --memory-limit 64` (SIGSTREAM_OPTS
  below; --no-zero-phase drops --zero-phase, --no-snippets the snippets);
  spike times are the events CSV's `peak_index`, channels its `channel`.
  Forward-only, the causal Butterworth leaves 0.35-0.55 of the trough
  (0.8-1 with filtfilt), and on about a third of these templates its
  ringing after the repolarisation becomes the deepest point, about 1 ms
  late: the 12-sample tolerance counts those as misses, which is what
  that variant is there to show.
- SpikeInterface (SI_RUN below): `read_binary(REC, sampling_frequency=30000,
  dtype='int16', num_channels=385)` -> `bandpass_filter(freq_min=300,
  freq_max=6000)` (its defaults: Butterworth order 5, sos, sosfiltfilt with
  an automatic margin, int16 out, rounded) -> `common_reference(
  reference='global', operator='median')` -> `get_noise_levels(method='mad',
  return_in_uV=False)` (the 0.105 name of `return_scaled`; by default 20
  unseeded random chunks of 500 ms, i.e. 10 s of filtered and referenced
  data however long the recording: a fixed cost about as long as the
  detection at --seconds 10)
  -> one node pipeline (`run_node_pipeline`, gather_mode='npy', so both
  outputs are written to .npy files as they come) of the `by_channel`
  peak detector (peak_sign='neg', detect_threshold=5, exclude_sweep_ms =
  1000 x --dead-time, the noise levels above) and `ExtractSparseWaveforms`
  (nbefore=30, nafter=60) with an identity sparsity mask, i.e. one 90-sample
  snippet per peak on the peak's own channel, as sigstream's --snippets; the
  job runs with n_jobs=--jobs, chunk_duration='1s'. With --no-snippets the
  pipeline is the detector alone (what `detect_peaks` runs).
  The channels get dummy locations (a line, 20 um apart) because the
  waveform node asks for them; nothing else uses them.

The dead time is not quite the same thing in both: SpikeInterface's
`exclude_sweep_ms` keeps a sample that crosses the threshold if it is the
channel's extremum within +-exclude_sweep_ms (a local-peak test on a
window both sides), while sigstream's `--dead-time` (being written as this
script is) is a hold-off after each event on its channel. On isolated
spikes both should give one event per spike and channel, at the trough.

Scoring (the same `score` for both): a detection matches a ground-truth
spike if |t_det - t_gt| <= 12 samples (0.4 ms: about half the
template's negative phase, well under the 1 ms dead time, so a match is the same
spike's trough and not the next spike's) and its channel is within the
unit's footprint. GT spikes are matched one-to-one, greedily by time
distance (each GT spike and each detection at most once); recall =
matched GT spikes / GT spikes. A detection on another footprint channel of
an already matched spike is a duplicate (by_channel detection reports a
spike on every channel where it crosses), not a false event: false events
are detections within 12 samples of no GT spike whose footprint holds their
channel. Artefact events are false events within an artefact's span (its
3 ms, widened by 0.5 ms on either side for the filter's ringing; by
chance alone, noise crossings put about one there a minute). Printed per tool: wall s, MB/s (recording bytes / wall), peak
RSS MiB, detections, recall, false events, artefact events, and the speed
ratio; --json FILE writes the same as JSON. The temporary directory is
removed afterwards unless --keep DIR.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import bench_mseed  # scripts/: its `timed` runs a command in a wrapper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGSTREAM = os.path.join(ROOT, "target", "release", "sigstream")

FS = 30000
NCH = 385
NUNITS = 40
FOOT = (0.25, 0.7, 1.0, 0.7, 0.25)  # weights on main-2 .. main+2
TBEFORE, TAFTER = 30, 60  # template support and snippet window, samples
ART_LEN = 90  # 3 ms
ART_PER_MIN = 50
# 0.4 ms: half the template's negative phase and well inside the 1 ms dead
# time, so a detection within it is the GT spike's own trough.
TOL = 12
ART_GUARD = 15  # 0.5 ms either side of an artefact: the filter's ringing
THRESHOLD = 5  # x noise (MAD); sigstream --on-noise, SI detect_threshold

# sigstream's options, in one place. {rec} {snip} {ev} {dead} are filled in;
# --no-zero-phase drops "--zero-phase", --no-snippets the --snippets pair and
# --snippet-samples pair.
SIGSTREAM_OPTS = [
    "process", "{rec}", "--dtype", "i16", "--channels", str(NCH), "--sample-rate", str(FS),
    "--iir", "butter", "--order", "5", "--bandpass", "300:6000", "--zero-phase",
    "--reference", "median",
    "--detect", "threshold", "--polarity", "neg", "--on-noise", str(THRESHOLD),
    "--dead-time", "{dead}",
    "--snippets", "{snip}", "--snippet-samples", f"{TBEFORE}:{TAFTER}",
    "--events", "{ev}",
    # Room for the zero-phase filter to stream (385 channels x its 2,476-
    # sample warm-up and a block: ~30 MB); under the default 24 MiB it goes
    # through a scratch file instead. SpikeInterface peaks at ~345 MiB.
    "--memory-limit", "64",
]

SI_RUN = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import spikeinterface as si
import spikeinterface.preprocessing as spre
from spikeinterface.core import get_noise_levels
from spikeinterface.core.node_pipeline import ExtractSparseWaveforms, run_node_pipeline
from spikeinterface.sortingcomponents.peak_detection.method_list import detect_peak_methods
rec_path, out_dir, nch, fs, thr, sweep_ms, n_jobs, nb, na, snippets = sys.argv[1:]
nch, fs, n_jobs, nb, na = int(nch), float(fs), int(n_jobs), int(nb), int(na)
t1 = time.perf_counter()
job = dict(n_jobs=n_jobs, chunk_duration="1s", progress_bar=False)
rec = si.read_binary(rec_path, sampling_frequency=fs, dtype="int16", num_channels=nch)
rec = spre.bandpass_filter(rec, freq_min=300.0, freq_max=6000.0)
rec = spre.common_reference(rec, reference="global", operator="median")
rec.set_channel_locations(np.c_[np.zeros(nch), 20.0 * np.arange(nch)])
noise = get_noise_levels(rec, method="mad", return_in_uV=False, **job)
t2 = time.perf_counter()
det = detect_peak_methods["by_channel"](rec, peak_sign="neg", detect_threshold=float(thr),
                                        exclude_sweep_ms=float(sweep_ms), noise_levels=noise,
                                        return_output=True)
nodes, names = [det], ["peaks"]
if snippets == "1":
    nodes.append(ExtractSparseWaveforms(rec, nbefore=nb, nafter=na, parents=[det], return_output=True,
                                        sparsity_mask=np.eye(nch, dtype=bool)))
    names.append("snippets")
outs = run_node_pipeline(rec, nodes, job, job_name="detect+snippets", gather_mode="npy",
                         dest=out_dir + "/si_pipeline", names=names, squeeze_output=False)
peaks = outs[0]
np.save(out_dir + "/si_peaks.npy", np.c_[peaks["sample_index"], peaks["channel_index"]].astype(np.int64))
t3 = time.perf_counter()
import resource
ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu = sum(r.ru_utime + r.ru_stime for r in ru)  # the job's worker processes included
print(json.dumps({"version": si.__version__, "cpu_s": cpu, "import_s": t1 - t0, "noise_s": t2 - t1,
                  "pipeline_s": t3 - t2, "peaks": int(len(peaks)),
                  "snippets_shape": list(outs[1].shape) if len(outs) > 1 else None,
                  "noise_median": float(np.median(noise))}))
"""


def template(rng):
    """A biphasic unit template over [-TBEFORE, TAFTER) samples, minimum -1
    at sample 0 (index TBEFORE)."""
    t = (np.arange(-TBEFORE, TAFTER)) / FS * 1e3  # ms
    w1 = rng.uniform(0.10, 0.16)
    w2 = rng.uniform(0.25, 0.40)
    rep = rng.uniform(0.25, 0.45)
    w = -np.exp(-0.5 * (t / w1) ** 2) + rep * np.exp(-0.5 * ((t - 0.5) / w2) ** 2)
    w -= w[0]
    w *= np.clip(1 - t / 2.0, 0, 1)  # taper the tail to 0 at 2 ms
    return (w / -w[TBEFORE]).astype(np.float32)


def artefact_shape():
    t = np.arange(ART_LEN) / FS * 1e3
    a = 1200 * (1 - np.exp(-t / 0.05)) * np.exp(-t / 0.35) - 400 * np.sin(np.pi * t / 3.0) ** 2
    a *= np.clip((3.0 - t) / 0.5, 0, 1)  # back to 0 at 3 ms
    return a.astype(np.float32)


def generate(path, work, seconds, seed=1):
    """Writes the recording to `path` and the ground truth next to it; returns
    (data bytes, gt, footprints, artefact starts)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * FS))
    noise_std = (10 * rng.uniform(0.8, 1.2, NCH)).astype(np.float32)
    # LFP phase slides along the probe; channel gains for the artefact.
    lfp_phase = np.linspace(0, np.pi, NCH, dtype=np.float32)
    art_gain = (1 + 0.003 * rng.standard_normal(NCH)).astype(np.float32)

    # Units: main channels spread along the probe, >= 5 channels apart.
    slots = rng.choice(np.arange(3, NCH - 3, 6)[: (NCH - 6) // 6], NUNITS, replace=False)
    mains = np.sort(slots + rng.integers(0, 2, NUNITS))
    foot = np.zeros((NUNITS, NCH), dtype=bool)
    wave = []  # per unit: (channels, templates (samples x channels))
    snr = rng.uniform(4, 15, NUNITS)
    amp = snr * noise_std[mains]
    for u, c in enumerate(mains):
        chans = np.arange(c - 2, c + 3)
        gains = np.array(FOOT) * rng.uniform(0.85, 1.15, 5)
        gains[2] = 1.0
        foot[u, chans] = True
        tpl = template(rng)
        wave.append((chans, amp[u] * tpl[:, None] * gains[None, :].astype(np.float32)))

    # Poisson trains with a 2 ms refractory period.
    frames, units = [], []
    for u in range(NUNITS):
        rate = rng.uniform(5, 10)
        mean_isi = 1 / rate - 0.002
        k = int(seconds * rate * 1.5 + 20)
        isi = 0.002 + rng.exponential(mean_isi, k)
        tt = np.cumsum(isi) + rng.uniform(0, 0.1)
        f = np.round(tt * FS).astype(np.int64)
        f = f[(f >= TBEFORE + 1) & (f < n - TAFTER - 1)]
        frames.append(f)
        units.append(np.full(len(f), u))
    frames, units = np.concatenate(frames), np.concatenate(units)
    order = np.argsort(frames, kind="stable")
    frames, units = frames[order], units[order]
    # Spike-to-spike amplitude variability (bursts, drift): x N(1, 0.15).
    scale = np.clip(rng.normal(1, 0.15, len(frames)), 0.6, 1.4).astype(np.float32)
    gt = np.zeros(len(frames), dtype=[("frame", "i8"), ("unit", "i4"), ("channel", "i4"),
                                      ("scale", "f4")])
    gt["frame"], gt["unit"], gt["channel"], gt["scale"] = frames, units, mains[units], scale

    # Artefacts: non-overlapping, uniformly spread.
    n_art = max(1, int(round(ART_PER_MIN * seconds / 60)))
    slot = (n - 2 * FS // 100) // n_art
    arts = (FS // 100 + np.arange(n_art) * slot
            + rng.integers(0, max(1, slot - ART_LEN), n_art)).astype(np.int64)
    ashape = artefact_shape()

    np.save(os.path.join(work, "gt.npy"), gt)
    np.save(os.path.join(work, "artefacts.npy"), arts)
    np.savez(os.path.join(work, "units.npz"), main=mains, footprint=foot, amplitude=amp, snr=snr,
             noise_std=noise_std)

    step = FS  # one second a chunk
    with open(path, "wb") as fh:
        for a in range(0, n, step):
            b = min(n, a + step)
            x = rng.standard_normal((b - a, NCH), dtype=np.float32)
            x *= noise_std
            # sin(wt + phase) = sin(wt) cos(phase) + cos(wt) sin(phase): two
            # rank-one products a term instead of a sine per sample.
            t = np.arange(a, b, dtype=np.float64) / FS
            for amp_l, f_hz, ph in ((150, 5.0, lfp_phase), (80, 0.25, 0.5 * lfp_phase)):
                w = 2 * np.pi * f_hz * t
                x += np.outer(amp_l * np.sin(w), np.cos(ph)).astype(np.float32)
                x += np.outer(amp_l * np.cos(w), np.sin(ph)).astype(np.float32)
            i0, i1 = np.searchsorted(frames, [a - TAFTER, b + TBEFORE])
            for f, u, sc in zip(frames[i0:i1], units[i0:i1], scale[i0:i1]):
                chans, w = wave[u]
                s0, s1 = f - TBEFORE, f + TAFTER
                lo, hi = max(s0, a), min(s1, b)
                x[lo - a:hi - a, chans[0]:chans[-1] + 1] += sc * w[lo - s0:hi - s0]
            for s in arts[(arts > a - ART_LEN) & (arts < b)]:
                lo, hi = max(s, a), min(s + ART_LEN, b)
                x[lo - a:hi - a] += ashape[lo - s:hi - s, None] * art_gain[None, :]
            np.clip(np.round(x), -32768, 32767, out=x)
            fh.write(x.astype("<i2").tobytes())
    return n * NCH * 2, gt, foot, arts


def score(det_t, det_c, gt, foot, arts):
    """Matches detections (frame, channel) against the ground truth; see the
    module's docstring for the definitions."""
    det_t = np.asarray(det_t, dtype=np.int64)
    det_c = np.asarray(det_c, dtype=np.int64)
    gt_t = gt["frame"]
    gt_u = gt["unit"]
    # Candidate pairs: each detection against the GT spikes within TOL.
    lo = np.searchsorted(gt_t, det_t - TOL, side="left")
    hi = np.searchsorted(gt_t, det_t + TOL, side="right")
    pd, pg = [], []
    for k in range(int((hi - lo).max(initial=0))):
        sel = np.nonzero(lo + k < hi)[0]
        g = lo[sel] + k
        ok = (det_c[sel] >= 0) & (det_c[sel] < foot.shape[1])
        ok[ok] = foot[gt_u[g[ok]], det_c[sel][ok]]
        pd.append(sel[ok])
        pg.append(g[ok])
    pd = np.concatenate(pd) if pd else np.zeros(0, np.int64)
    pg = np.concatenate(pg) if pg else np.zeros(0, np.int64)
    explained = np.zeros(len(det_t), dtype=bool)
    explained[pd] = True
    # Greedy one-to-one by time distance.
    order = np.argsort(np.abs(det_t[pd] - gt_t[pg]), kind="stable")
    used_d = np.zeros(len(det_t), dtype=bool)
    used_g = np.zeros(len(gt_t), dtype=bool)
    for i in order:
        d, g = pd[i], pg[i]
        if not used_d[d] and not used_g[g]:
            used_d[d] = used_g[g] = True
    false = ~explained
    # Artefact spans, widened by ART_GUARD.
    starts = np.sort(arts) - ART_GUARD
    j = np.searchsorted(starts, det_t, side="right") - 1
    in_art = (j >= 0) & (det_t < starts[np.maximum(j, 0)] + ART_LEN + 2 * ART_GUARD)
    per_unit = np.bincount(gt_u[used_g], minlength=foot.shape[0]) / np.maximum(
        np.bincount(gt_u, minlength=foot.shape[0]), 1)
    return {
        "detections": int(len(det_t)),
        "gt_spikes": int(len(gt_t)),
        "matched": int(used_g.sum()),
        "recall": float(used_g.mean()) if len(gt_t) else float("nan"),
        "duplicates": int((explained & ~used_d).sum()),
        "false_events": int(false.sum()),
        "artefact_events": int((false & in_art).sum()),
        "worst_unit_recall": float(per_unit.min()),
    }


def read_events(path):
    """sigstream's events CSV: (peak_index, channel) by header name."""
    import csv

    t, c = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            t.append(int(float(row["peak_index"])))
            ch = row["channel"].strip()
            if not ch.lstrip("-").isdigit():  # a name such as "ch12": its number
                ch = "".join(x for x in ch if x.isdigit()) or "-1"
            c.append(int(ch))
    return np.array(t, dtype=np.int64), np.array(c, dtype=np.int64)


def run_sigstream(a, rec, work):
    snip = os.path.join(work, "sig_snippets.npy")
    ev = os.path.join(work, "sig_events.csv")
    opts = list(SIGSTREAM_OPTS)
    if a.no_zero_phase:
        opts.remove("--zero-phase")
    if a.dedup:
        opts[opts.index("--events"):opts.index("--events")] = ["--dedup-window", "0.0005"]
    if a.no_snippets:
        for k in ("--snippets", "--snippet-samples"):
            i = opts.index(k)
            del opts[i:i + 2]
    fill = {"rec": rec, "snip": snip, "ev": ev, "dead": repr(a.dead_time)}
    cmd = [a.sigstream] + [o.format(**fill) for o in opts]
    print("sigstream:", " ".join(cmd), flush=True)
    r = bench_mseed.timed(cmd)
    t, c = read_events(ev)
    extra = {}
    if not a.no_snippets and os.path.exists(snip):
        try:
            extra["snippets_shape"] = list(np.load(snip, mmap_mode="r").shape)
        except Exception as e:  # noqa: BLE001 - report, don't fail the timing
            extra["snippets_shape"] = f"unreadable: {e}"
    return r, t, c, extra


def run_si(a, rec, work):
    cmd = [sys.executable, "-c", SI_RUN, rec, work, str(NCH), str(FS), str(THRESHOLD),
           repr(a.dead_time * 1e3), str(a.jobs), str(TBEFORE), str(TAFTER),
           "0" if a.no_snippets else "1"]
    print(f"SpikeInterface: read_binary -> bandpass_filter -> common_reference(median) -> "
          f"by_channel + ExtractSparseWaveforms, n_jobs={a.jobs}", flush=True)
    r = bench_mseed.timed(cmd)
    info = json.loads(r["out"].strip().splitlines()[-1])
    p = np.load(os.path.join(work, "si_peaks.npy"))
    return r, p[:, 0], p[:, 1], info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=2, help="SpikeInterface n_jobs (default 2)")
    ap.add_argument("--dead-time", type=float, default=0.001,
                    help="seconds; sigstream --dead-time, SI exclude_sweep_ms = 1000 x this")
    ap.add_argument("--sigstream", default=SIGSTREAM, help="the binary (default target/release/sigstream)")
    ap.add_argument("--only", choices=("both", "sigstream", "spikeinterface"), default="both")
    ap.add_argument("--no-zero-phase", action="store_true", help="sigstream forward-only filter")
    ap.add_argument("--no-snippets", action="store_true", help="detection only, both tools")
    ap.add_argument("--dedup", action="store_true",
                    help="sigstream: --dedup-window 0.0005 (a spike once, where it peaks)")
    ap.add_argument("--keep", help="make the recording in DIR and keep it")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    work = a.keep or tempfile.mkdtemp(prefix="sigstream-bench-spikes-")
    os.makedirs(work, exist_ok=True)
    try:
        rec = os.path.join(work, "rec.bin")
        t = time.perf_counter()
        size, gt, foot, arts = generate(rec, work, a.seconds, a.seed)
        print(f"wrote {rec}: {size / 1e6:.0f} MB, {NCH} ch x {a.seconds:g} s int16 at {FS} Hz, "
              f"{len(gt)} GT spikes of {NUNITS} units, {len(arts)} artefacts, "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
        with open(rec, "rb") as f:  # the page cache holds it for both runs alike
            while f.read(1 << 24):
                pass
        summary = {"seconds": a.seconds, "channels": NCH, "sample_rate": FS, "data_bytes": size,
                   "gt_spikes": int(len(gt)), "units": NUNITS, "artefacts": int(len(arts)),
                   "tolerance_samples": TOL, "dead_time_s": a.dead_time, "jobs": a.jobs,
                   "zero_phase": not a.no_zero_phase, "snippets": not a.no_snippets}
        rows = {}
        if a.only in ("both", "sigstream"):
            r, t, c, extra = run_sigstream(a, rec, work)
            rows["sigstream"] = dict(wall_s=r["wall"], peak_rss_mib=r["peak_kib"] / 1024,
                                     **score(t, c, gt, foot, arts), **extra)
        if a.only in ("both", "spikeinterface"):
            r, t, c, info = run_si(a, rec, work)
            summary["spikeinterface_version"] = info.pop("version")
            rows["spikeinterface"] = dict(wall_s=r["wall"], peak_rss_mib=r["peak_kib"] / 1024,
                                          **score(t, c, gt, foot, arts), **info)
        for v in rows.values():
            v["mb_s"] = size / 1e6 / v["wall_s"]
        summary.update(rows)
        if len(rows) == 2:
            summary["speed_ratio"] = rows["spikeinterface"]["wall_s"] / rows["sigstream"]["wall_s"]

        if "spikeinterface_version" in summary:
            print(f"\nSpikeInterface {summary['spikeinterface_version']}")
        print(f"\n{'':<15} {'wall s':>8} {'MB/s':>7} {'RSS MiB':>8} {'detections':>10} "
              f"{'recall':>7} {'false':>6} {'artefact':>8} {'dupl.':>7}")
        for name, v in rows.items():
            print(f"{name:<15} {v['wall_s']:>8.2f} {v['mb_s']:>7.1f} {v['peak_rss_mib']:>8.0f} "
                  f"{v['detections']:>10} {v['recall']:>7.4f} {v['false_events']:>6} "
                  f"{v['artefact_events']:>8} {v['duplicates']:>7}")
        if "spikeinterface" in rows:
            v = rows["spikeinterface"]
            print(f"\nSpikeInterface's run: imports {v['import_s']:.1f} s, noise levels {v['noise_s']:.1f} s, "
                  f"{'detection' if a.no_snippets else 'detection + snippets'} {v['pipeline_s']:.1f} s; CPU {v['cpu_s']:.1f} s (workers included)")
        if "speed_ratio" in summary:
            print(f"\nsigstream is {summary['speed_ratio']:.1f}x SpikeInterface's speed, at "
                  f"{rows['sigstream']['peak_rss_mib'] / rows['spikeinterface']['peak_rss_mib'] * 100:.0f}%"
                  " of its peak memory")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(summary, f, indent=1)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
