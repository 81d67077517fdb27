"""`specenc bench flowgraph`: the whole IQ-to-alerts flowgraph vs model.predict alone on the same spectra.

Default case: a 2.4 MS/s stream, nfft 1024, 50 % overlap, K = 4 averaging -> 2.4e6 / 2048 = 1172
spectra/s needed for real time. The flowgraph is sigmf_source -> psd -> spectrum_encoder ->
anomaly_detector -> alert_sink, with the detections consumed too; the model-only figure is
model.predict in batches on dsp.power_spectrum of the same IQ, in a worker thread with the same torch
thread count (as the block's work() runs it). Overhead = flowgraph / model - 1, in wall time and in
process CPU time (all threads; other jobs on a shared machine disturb it less). "cores" = CPU-seconds
per second of IQ: real time on 2 cores needs <= 2. A third run replays the model's predictions
(ReplayModel) to cost everything the flowgraph adds around the model. The three are timed in turns,
best of --repeat each; the wall overhead is also printed round by round (flowgraph against the model
run just before it), since best-of figures taken minutes apart can see different loads. GNU Radio's
performance counters (thread CPU time, on in the replayed run only) split that run's CPU by block.
"""

import contextlib
import os
import tempfile
import threading
import time

import numpy as np

from .. import dsp, sigmf_io

DEFAULT_RATE = 2.4e6  # the generated scene's: the 2.4 MS/s stream


def add_arguments(parser):
    from ..app.run import add_model_arguments

    parser.add_argument("--rate", type=float, default=None,
                        help="stream sample rate in Hz (default 2.4e6 for the generated scene; with --input it "
                             "overrides the recording's)")
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="IQ length of the generated scene in seconds (default 6: a flowgraph run also pays its "
                             "start and drain, which the model-alone loop does not; 2 s runs read the overhead higher)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (default 3)")
    parser.add_argument("--input", default="", help="SigMF recording to use instead of a generated scene")
    add_model_arguments(parser, alerts=False)
    parser.set_defaults(average=4)
    parser._option_string_actions["--average"].help = "average K FFT frames per spectrum (default 4)"


def scene(rate, seconds, folder):
    """A generated demo scene at `rate` (emitters and ghost anomalies, so every code path runs)."""
    from ..synth import write_scenario

    return write_scenario(os.path.join(folder, "bench.sigmf-meta"), scenario="demo", seconds=seconds, seed=1,
                          sample_rate=rate)


def time_model(model, spectra, rx_freq, batch, repeat, threads):
    """Best (wall, CPU) seconds of model.predict over all spectra in batches of `batch`, in a worker thread."""
    import torch

    times = []

    def loop():
        if threads:
            torch.set_num_threads(threads)
        model.predict(spectra[:batch], rx_freq=rx_freq)  # warm-up
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(spectra), batch):
                model.predict(spectra[i:i + batch], rx_freq=rx_freq)
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return min(t for t, _ in times), min(c for _, c in times)


class ReplayModel:
    """Stands in for the model inside the flowgraph: returns the real model's predictions for the same
    spectra, in order, without computing anything. The flowgraph run with it costs exactly what the
    flowgraph adds around the model (source, psd, tags, emissions, alerts, scheduling)."""

    def __init__(self, model, spectra, rx_freq, batch):
        from ..model import Prediction

        self.nfft, self.threshold = model.nfft, model.threshold
        self._all = Prediction.concat([model.predict(spectra[i:i + batch], rx_freq=rx_freq)
                                       for i in range(0, len(spectra), batch)])
        self._next = 0

    def predict(self, spectra, rx_freq=None, sample_rate=None):
        n = len(np.atleast_2d(spectra))
        if rx_freq is None and sample_rate is None:  # the encoder's warm-up call, before the stream
            rows = slice(0, n)
        else:
            rows = slice(self._next, self._next + n)
            self._next += n
        return self._all.rows(rows)

    def rewind(self):
        self._next = 0


def time_flowgraph(rec, model, average, batch, repeat, threads):
    """Best (wall, CPU) seconds of the headless chain (app.flowgraph.run_chain) over the recording, and its result."""
    from ..app.flowgraph import run_chain
    from ..app.interrupts import no_timing

    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        result = run_chain(rec, model, average=average, batch=batch, threads=threads)
        if result.interrupted:  # a cut-short run's time is no figure
            raise no_timing(result.interrupted)
        wall, cpu = min(wall, result.wall_s), min(cpu, result.cpu_s)
    return wall, cpu, result


@contextlib.contextmanager
def perf_counters():
    """GNU Radio's performance counters on thread CPU time, for the flowgraphs built inside: each block's
    CPU in work(). GNU Radio reads these settings per flowgraph. They cost ~4 us per spectrum on the bench
    scene, so only the replayed run (whose split they give) has them."""
    settings = {"GR_CONF_PERFCOUNTERS_ON": "True", "GR_CONF_PERFCOUNTERS_CLOCK": "thread"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def row(label, wall, cpu, n_spectra, step, duration):
    rate = n_spectra / wall
    return (f"{label:<26} {rate:>10.0f} {rate * step / 1e6:>9.3f} {duration / wall:>8.2f}x "
            f"{n_spectra / cpu:>12.0f} {cpu / duration:>7.2f}")


def main(args):
    from ..app.run import load, model_note

    if args.repeat < 1:
        raise ValueError(f"--repeat={args.repeat} must be >= 1")
    model, average = load(args)
    nfft = model.nfft
    with tempfile.TemporaryDirectory() as folder:
        meta = args.input or scene(DEFAULT_RATE if args.rate is None else args.rate, args.seconds, folder)
        rec = sigmf_io.open_recording(meta, rate=args.rate if args.input else None)
        iq = sigmf_io.read_samples(rec)
        spectra = dsp.power_spectrum(iq, nfft=nfft, overlap=0.5, average=average)
        if not len(spectra):
            source = args.input or f"--seconds {args.seconds}"  # not the scene's temporary file, gone by the message
            raise ValueError(f"{source}: {rec.num_samples} samples give no spectrum of nfft={nfft}, average={average}")
        if not np.isfinite(spectra).all():  # the flowgraph would skip them and the model alone not: no comparison
            raise ValueError(f"{meta}: {(~np.isfinite(spectra).all(axis=1)).sum()} spectra hold NaN or inf samples; "
                             "benchmark on a recording without them")
        step = dsp.hop_size(nfft, 0.5) * average
        duration = rec.num_samples / rec.sample_rate
        needed = rec.sample_rate / step
        replay = ReplayModel(model, spectra, rec.center_freq, args.batch)
        # Round robin (model, flowgraph, replay, model, ...) so all see the same share of a shared machine's load.
        t_model = c_model = t_flow = c_flow = t_replay = c_replay = float("inf")
        blocks_replayed = {}  # block -> CPU seconds in its work(), in the replayed run of least CPU
        paired = []  # per round: flowgraph / model - 1 (wall), as a check on best-of figures taken at different times
        for _ in range(args.repeat):
            wall, cpu = time_model(model, spectra, rec.center_freq, args.batch, 1, args.threads)
            t_model, c_model = min(t_model, wall), min(c_model, cpu)
            model_wall = wall
            wall, cpu, result = time_flowgraph(rec, model, average, args.batch, 1, args.threads)
            t_flow, c_flow = min(t_flow, wall), min(c_flow, cpu)
            paired.append(100 * (wall / model_wall - 1))
            replay.rewind()
            with perf_counters():
                wall, cpu, replayed = time_flowgraph(rec, replay, average, args.batch, 1, 0)
            if cpu < c_replay:
                blocks_replayed = replayed.block_cpu_s
            t_replay, c_replay = min(t_replay, wall), min(c_replay, cpu)
    if not result.num_spectra == replayed.num_spectra == len(spectra):
        raise RuntimeError(f"spectra counts differ: flowgraph {result.num_spectra}, replayed "
                           f"{replayed.num_spectra}, dsp.power_spectrum {len(spectra)}")
    print(f"specenc bench flowgraph: {os.path.basename(meta)}, {rec.sample_rate / 1e6:g} MS/s, {duration:.2f} s, "
          f"nfft {nfft}, overlap 0.5, K={average} -> {needed:.0f} spectra/s for real time")
    print(f"{model_note(model, args.model)}, threads {args.threads or 'default'}, batch {args.batch}, "
          f"best of {args.repeat}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'':<26} {'spectra/s':>10} {'IQ MS/s':>9} {'RT factor':>9} {'spectra/CPU-s':>12} {'cores':>7}")
    print(row("model.predict alone", t_model, c_model, len(spectra), step, duration))
    print(row("full flowgraph", t_flow, c_flow, result.num_spectra, step, duration))
    print(row("flowgraph, model replayed", t_replay, c_replay, replayed.num_spectra, step, duration))
    print(f"flowgraph overhead over the model: {100 * (t_flow / t_model - 1):+.1f} % wall, "
          f"{100 * (c_flow / c_model - 1):+.1f} % CPU time; everything but the model (replayed run): "
          f"{100 * c_replay / c_model:.1f} % of the model's CPU time (target <= 10 %)")
    print(f"round by round (model, then flowgraph right after): {' '.join(f'{p:+.1f}' for p in paired)} % wall, "
          f"median {np.median(paired):+.1f} %")
    per = {name: 1e6 * s / len(spectra) for name, s in blocks_replayed.items()}
    if any(per.values()):
        rest = 1e6 * c_replay / len(spectra) - sum(per.values())
        print("replayed run, CPU us per spectrum: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items())
              + f", the rest (scheduling, message handlers) {rest:.1f}")
    print(f"real time at {rec.sample_rate / 1e6:g} MS/s here: {'yes' if t_flow <= duration else 'NO'} "
          f"(wall RT factor {duration / t_flow:.2f}x; {c_flow / duration:.2f} CPU-seconds per second of IQ)")
    print(f"alerts {len(result.alerts)}, emissions {len(result.detections)}")
    return 0

