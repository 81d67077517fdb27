"""`specenc bench flowgraph`: the whole IQ-to-alerts flowgraph vs model.predict alone on the same spectra.

Default case: a 2.4 MS/s stream, nfft 1024, 50 % overlap, K = 4 averaging -> 2.4e6 / 2048 = 1172
spectra/s needed for real time. The flowgraph is sigmf_source -> psd -> spectrum_encoder ->
anomaly_detector -> alert_sink, with the detections consumed too; the model-only figure is
model.predict in batches on dsp.power_spectrum of the same IQ. Overhead = flowgraph time / model
time - 1. Each figure is the best of --repeat runs (the machine is shared; best-of is the least noisy).
"""

import os
import tempfile
import time

from .. import dsp, sigmf_io


def add_arguments(parser):
    from ..app.run import add_model_arguments

    parser.add_argument("--rate", type=float, default=2.4e6, help="stream sample rate in Hz (default 2.4e6)")
    parser.add_argument("--seconds", type=float, default=2.0, help="IQ length in seconds (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (default 3)")
    parser.add_argument("--input", default="", help="SigMF recording to use instead of a generated scene")
    add_model_arguments(parser)
    parser.set_defaults(average=4)


def scene(rate, seconds, folder):
    """A generated demo scene at `rate` (emitters and ghost anomalies, so every code path runs)."""
    from ..synth import write_scenario

    return write_scenario(os.path.join(folder, "bench.sigmf-meta"), scenario="demo", seconds=seconds, seed=1,
                          sample_rate=rate)


def time_model(model, spectra, rx_freq, batch, repeat):
    """Best wall time of model.predict over all spectra in batches of `batch`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(spectra), batch):
            model.predict(spectra[i:i + batch], rx_freq=rx_freq)
        best = min(best, time.perf_counter() - start)
    return best


def time_flowgraph(rec, model, average, batch, repeat):
    """Best wall time of the headless chain (app.flowgraph.run_chain) over the recording, and its result."""
    from ..app.flowgraph import run_chain

    best, result = float("inf"), None
    for _ in range(repeat):
        result = run_chain(rec, model, average=average, batch=batch)
        best = min(best, result.wall_s)
    return best, result


def rows(label, seconds, n_spectra, step, duration):
    rate = n_spectra / seconds
    return (f"{label:<28} {rate:>10.0f} {rate * step / 1e6:>12.3f} {duration / seconds:>8.2f}x")


def main(args):
    from ..app.run import load

    if args.repeat < 1:
        raise ValueError(f"--repeat={args.repeat} must be >= 1")
    model, average = load(args)
    nfft = model.nfft
    with tempfile.TemporaryDirectory() as folder:
        meta = args.input or scene(args.rate, args.seconds, folder)
        rec = sigmf_io.read_meta(meta)
        iq = sigmf_io.read_samples(rec)
        spectra = dsp.power_spectrum(iq, nfft=nfft, overlap=0.5, average=average)
        step = dsp.hop_size(nfft, 0.5) * average
        duration = rec.num_samples / rec.sample_rate
        needed = rec.sample_rate / step
        model.predict(spectra[: args.batch], rx_freq=rec.center_freq)  # warm-up
        t_model = time_model(model, spectra, rec.center_freq, args.batch, args.repeat)
        t_flow, result = time_flowgraph(rec, model, average, args.batch, args.repeat)
    assert result.num_spectra == len(spectra), (result.num_spectra, len(spectra))
    import torch

    print(f"specenc bench flowgraph: {os.path.basename(meta)}, {rec.sample_rate / 1e6:g} MS/s, {duration:.2f} s, "
          f"nfft {nfft}, overlap 0.5, K={average} -> {needed:.0f} spectra/s for real time")
    print(f"model: {getattr(model, 'path', None) or 'shipped default'}, trained={getattr(model, 'trained', '?')}, "
          f"torch threads {torch.get_num_threads()}, batch {args.batch}, best of {args.repeat}")
    print(f"{'':<28} {'spectra/s':>10} {'IQ MS/s':>12} {'RT factor':>9}")
    print(rows("model.predict alone", t_model, len(spectra), step, duration))
    print(rows("full flowgraph", t_flow, result.num_spectra, step, duration))
    print(f"flowgraph overhead over the model: {100 * (t_flow / t_model - 1):+.1f} % (target <= 10 %)")
    print(f"real time at {rec.sample_rate / 1e6:g} MS/s: {'yes' if t_flow <= duration else 'NO'} "
          f"(real-time factor {duration / t_flow:.2f}x)")
    print(f"alerts {len(result.alerts)}, emissions {len(result.detections)}")
    return 0

