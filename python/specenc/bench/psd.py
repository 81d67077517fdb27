"""`specenc bench psd`: throughput of the C++ specenc.psd block vs the NumPy path vs stock GNU Radio blocks.

All three compute Hann-windowed, 50 %-overlapped power spectra in dB of the same complex noise:
  specenc.psd   vector_source -> head -> specenc.psd -> null_sink
  numpy         dsp.power_spectrum on 1 Mi-sample chunks
  stock GR      vector_source -> head -> {stream_to_vector, delay(hop) -> stream_to_vector} -> interleave
                -> fft_vcc(shift) -> complex_to_mag_squared -> nlog10_ff -> null_sink
                (two staggered framings give the same 2 FFTs per nfft samples as 50 % overlap)
"MS/CPU-s" is input samples per CPU-second of the process (all threads, source and sink included):
the throughput one free core would give, less sensitive than wall-clock MS/s to other load on the
machine. "CPU @2.4 MS/s" is the share of one core an RTL-SDR stream would take. The
"source/head/sink only" row is the GNU Radio plumbing every GR variant pays.
"""

import resource
import time

import numpy as np

from .. import dsp

RTL_RATE = 2.4e6


def add_arguments(parser):
    parser.add_argument("--nfft", type=int, default=1024, help="FFT size (default 1024)")
    parser.add_argument("--overlap", type=float, default=0.5, help="overlap fraction (default 0.5)")
    parser.add_argument("--samples", type=float, default=3e7,
                        help="complex samples through each GNU Radio variant (default 3e7)")
    parser.add_argument("--numpy-samples", type=float, default=4e6,
                        help="complex samples through the NumPy path (default 4e6)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant; the best is kept (default 3)")


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn, repeats):
    """(best wall seconds, CPU seconds of that run)."""
    best = None
    for _ in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return best


def _gr_run(make_chain, x, n):
    from gnuradio import blocks, gr

    from ..app.interrupts import no_timing, run_to_end

    def run():
        tb = gr.top_block()
        src = blocks.vector_source_c(x, True)
        head = blocks.head(gr.sizeof_gr_complex, n)
        tb.connect(src, head)
        make_chain(tb, head)
        stopped = run_to_end(tb)
        if stopped:  # GNU Radio's own tb.run() took Ctrl-C as the end, and the cut-short run looked fastest
            raise no_timing(stopped)
    return run


def _specenc_chain(nfft, overlap):
    def make(tb, upstream):
        from gnuradio import blocks, specenc

        psd = specenc.psd(nfft=nfft, overlap=overlap)
        tb.connect(upstream, psd, blocks.null_sink(4 * nfft))
    return make


def _plumbing_chain(tb, upstream):
    from gnuradio import blocks, gr

    tb.connect(upstream, blocks.null_sink(gr.sizeof_gr_complex))


def _stock_chain(nfft, overlap):
    if overlap != 0.5:
        raise ValueError(f"the stock GNU Radio chain is built for overlap 0.5, got {overlap}")

    def make(tb, upstream):
        from gnuradio import blocks, fft
        from gnuradio.fft import window

        hop = dsp.hop_size(nfft, overlap)
        w = window.hann(nfft)
        a = blocks.stream_to_vector(8, nfft)
        b = blocks.stream_to_vector(8, nfft)
        delay = blocks.delay(8, hop)
        inter = blocks.interleave(8 * nfft, 1)
        f = fft.fft_vcc(nfft, True, w, True, 1)
        mag2 = blocks.complex_to_mag_squared(nfft)
        log = blocks.nlog10_ff(10, nfft, -20 * np.log10(sum(w)))
        tb.connect(upstream, a, (inter, 0))
        tb.connect(upstream, delay, b, (inter, 1))
        tb.connect(inter, f, mag2, log, blocks.null_sink(4 * nfft))
    return make


def main(args):
    dsp.check_params(args.nfft, args.overlap, 1)
    if args.repeats < 1:
        raise ValueError(f"--repeats={args.repeats} must be >= 1")
    if not (np.isfinite(args.samples) and np.isfinite(args.numpy_samples)):
        raise ValueError("--samples and --numpy-samples must be finite")
    n, n_np = int(args.samples), int(args.numpy_samples)
    if n < 10 * args.nfft or n_np < 10 * args.nfft:
        raise ValueError(f"--samples and --numpy-samples must be >= 10 * nfft ({10 * args.nfft})")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1 << 20) + 1j * rng.standard_normal(1 << 20)).astype(np.complex64) * 0.1

    def numpy_run():
        for start in range(0, n_np, len(x)):
            dsp.power_spectrum(x[: min(len(x), n_np - start)], args.nfft, args.overlap)

    rows = []
    variants = [
        ("specenc.psd (C++)", n, _gr_run(_specenc_chain(args.nfft, args.overlap), x, n)),
        ("numpy dsp.power_spectrum", n_np, numpy_run),
    ]
    if args.overlap == 0.5:
        variants.append(("stock GR fft_vcc chain", n, _gr_run(_stock_chain(args.nfft, args.overlap), x, n)))
    variants.append(("source/head/sink only", n, _gr_run(_plumbing_chain, x, n)))
    for name, count, fn in variants:
        wall, cpu = _timed(fn, args.repeats)
        rows.append((name, count / wall, count / cpu))
    base = rows[1][1]
    hop = dsp.hop_size(args.nfft, args.overlap)
    print(f"PSD throughput, nfft {args.nfft}, overlap {args.overlap} (hop {hop}), Hann, dB, "
          f"best of {args.repeats}")
    print(f"{'variant':<28} {'MS/s':>8} {'spectra/s':>11} {'MS/CPU-s':>9} {'CPU @2.4 MS/s':>14} {'vs numpy':>9}")
    for name, rate, per_cpu in rows:
        print(f"{name:<28} {rate / 1e6:8.1f} {rate / hop:11.0f} {per_cpu / 1e6:9.1f} "
              f"{100 * RTL_RATE / per_cpu:13.1f}% {rate / base:8.1f}x")
    return 0
