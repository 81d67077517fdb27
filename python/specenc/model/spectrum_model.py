"""SpectrumModel: the network plus its threshold, behind a NumPy-in/NumPy-out `predict`.

`load_model(path=None, ...)` reads a safetensors + JSON checkpoint (None = the weights shipped in
`gnuradio/specenc/weights/default.*`).
"""

import contextlib
import logging
import math
import pathlib
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch

from .. import bands, labels
from .attention import check_backend
from .checkpoint import load_weights, read_info, save_checkpoint
from .config import ModelConfig
from .detections import Detections, drop_faint, grid_to_detections, split_at_valleys, trim_to_bins
from .encoder import InferenceGraph, SpectrumEncoder, outputs_for

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = pathlib.Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"
RUNTIMES = ("torch", "onnxruntime", "auto")  # onnxruntime/auto: runtime_onnx, runtime_select
MAX_BATCH = 1024  # rows predicted at a time (bounds memory, never changes results)
# A CPU pass holds at most 32 rows: 32 x 128 tokens x 64 floats = 1 MB per activation, inside a core's L2 (2 MB on
# the EPYC VM). Shipped model, batch 256, 2 workers, spectra/s in interleaved turns (ad-hoc): 2495-3048 with
# 128-row passes (chunks of 64), 3200-3359 with 32. Rows are independent: only float rounding (< 1e-6) can differ.
CPU_PASS_ROWS = 32
# On CPU, torch's `threads` run a batch as that many workers taking row chunks, each on ONE intra-op thread, rather
# than splitting every op across OpenMP threads: the shipped model's ops take tens of microseconds, too short for a
# fork/join each, and in a flowgraph a core taken by another block holds up one worker, not every op's barrier.
# CHUNKS_PER_WORKER chunks each let the other worker take over the chunks of one that lost its core. Shipped model,
# 2 cores, spectra/s at batch 64 (ad-hoc, one process, turns interleaved): 1464-1737 split per op, 2432-2728 in
# two halves; on the bench scene 2147-2620 in halves, 2619-2721 in quarters. A batch of fewer than 2 x
# MIN_CHUNK_ROWS runs whole on one thread (batch 1: 748 spectra/s on one thread vs 373 on two).
MIN_CHUNK_ROWS = 8
CHUNKS_PER_WORKER = 2
# A spectrum with more than SILENT_SHARE of its bins within SILENT_DB of its lowest level has no noise floor: digital
# silence (all-zero IQ: a stalled source, padding, dropped samples; dsp and the psd block floor it at -200 dB), a
# source repeating one IQ value (only its DC bins above that floor), a constant row. It carries nothing to
# classify, and the network, which never saw one, called them jamming, or one chirp across the band with a score
# just under the threshold (audit 46): predict reports them as noise, score 0, no detections. Relative to the
# row's own lowest level, so a floor other than -200 dB (10*log10(p + 1e-12), an offset) is silence too. Only an
# exact floor: 0.1 dB took noise averaged over 16384 frames, with a 53 dB carrier on it, for silence (audit 48).
SILENT_SHARE = 0.5
SILENT_DB = 0.01  # exact floors and constants; the noise of the longest average the psd block takes spreads wider


def silent_rows(spectra):
    """(B,) bool: the rows of (B, nfft) dB spectra that are digital silence (see SILENT_SHARE)."""
    x = np.asarray(spectra)
    return np.mean(x <= x.min(axis=1, keepdims=True) + SILENT_DB, axis=1) > SILENT_SHARE


@dataclass
class Prediction:
    labels: list  # (B,) family names
    label_index: np.ndarray  # (B,) int64
    confidence: np.ndarray  # (B,) float32, probability of the label
    anomaly_score: np.ndarray  # (B,) float32 in [0, 1]
    anomaly_kind: list  # (B,) kind name, "" when not anomalous (score <= threshold; alerts need score > threshold)
    # row i: list of {"bin_start", "bin_stop" (exclusive), "family", "confidence", "contrast_db"}
    detections: Detections
    embedding: np.ndarray  # (B, D) float32
    # (B, nfft) bool: per-token anomaly probability >= 0.5; it places an anomaly on rows whose anomaly_kind is set
    anomaly_bins: np.ndarray

    @classmethod
    def concat(cls, parts):
        """The Predictions of consecutive row blocks -> one, rows in order."""
        if len(parts) == 1:
            return parts[0]
        joined = {}
        for f in fields(cls):
            cols = [getattr(p, f.name) for p in parts]
            if isinstance(cols[0], np.ndarray):
                joined[f.name] = np.concatenate(cols)
            elif isinstance(cols[0], Detections):
                joined[f.name] = Detections.concat(cols)
            else:
                joined[f.name] = [x for c in cols for x in c]
        return cls(**joined)

    def rows(self, where):
        """The Prediction of rows `where` (a slice)."""
        return type(self)(**{f.name: getattr(self, f.name)[where] for f in fields(self)})


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for but torch sees no CUDA device; use device 'cpu' or 'auto'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} must be 'cpu', 'cuda' or 'auto'")
    return device


@contextlib.contextmanager
def _one_thread():
    """One torch intra-op thread in the calling thread, its setting restored after."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_pools = {}  # workers -> ThreadPoolExecutor whose threads run one intra-op thread each
_pools_lock = threading.Lock()


def one_thread_worker():
    # torch sets a thread's intra-op count on its first parallel call to the count some thread set last,
    # overriding an earlier set_num_threads in this thread: a worker then ran 2 threads now and then (the
    # row-chunk test failed once in 13 runs). Reading the count first makes torch do that now, so the 1 stays.
    torch.get_num_threads()
    torch.set_num_threads(1)


def _row_pool(workers):
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="specenc-rows",
                                                        initializer=one_thread_worker)
        return pool


def map_row_chunks(fn, chunks, workers):
    """[fn(c) for c in chunks] on `workers` threads (the caller is one) that each run one torch intra-op thread
    and take the next chunk when done: a worker that loses its core to another thread leaves its share to the rest."""
    chunks = list(chunks)
    results = [None] * len(chunks)
    order = iter(range(len(chunks)))
    lock = threading.Lock()

    def drain():
        while True:
            with lock:
                i = next(order, None)
            if i is None:
                return
            results[i] = fn(chunks[i])

    futures = [_row_pool(workers - 1).submit(drain) for _ in range(workers - 1)]
    with _one_thread():
        drain()
    for f in futures:
        f.result()
    return results


def cpu_chunks(n, workers):
    """(workers used, rows per chunk) for a CPU batch of n rows on up to `workers` row workers."""
    workers = max(1, min(workers, n // MIN_CHUNK_ROWS))
    return workers, min(CPU_PASS_ROWS, max(MIN_CHUNK_ROWS, -(-n // (CHUNKS_PER_WORKER * workers))))


def trace_frozen(module, example):
    """`module` traced on `example` inputs and frozen by TorchScript, for inference. torch 2.13 marks
    TorchScript deprecated; its warnings are filtered here."""
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # head counts become constants
        return torch.jit.freeze(torch.jit.trace(module.eval(), example, check_trace=False))


def bands_for(rx_freq, n):
    """rx_freq None | float | (n,) Hz -> (n,) int64 band indices (unknown/NaN -> 'other')."""
    if rx_freq is None:
        return np.full(n, bands.BAND_INDEX["other"], np.int64)
    f = np.asarray(rx_freq, dtype=np.float64)
    if f.ndim == 0:
        f = np.full(n, float(f))
    if f.shape != (n,):
        raise ValueError(f"rx_freq has shape {f.shape}; expected a scalar or ({n},) for {n} spectra")
    uniq, inverse = np.unique(f, return_inverse=True)
    idx = np.array([bands.BAND_INDEX[bands.band_for_frequency(x if math.isfinite(x) else None)] for x in uniq],
                   np.int64)
    return idx[inverse]


def _names(table, n, prefix):
    return list(table) if len(table) == n else [f"{prefix}{i}" for i in range(n)]


def decode_outputs(out):
    """Network outputs (tensors) -> per-row label, confidence, score, kind and per-kept-token family
    probabilities (tensors); shared with the onnxruntime runtime (runtime_onnx)."""
    fam = torch.softmax(out["family_logits"], -1)
    conf, idx = fam.max(-1)
    decoded = {"label_index": idx, "confidence": conf, "anomaly_score": torch.sigmoid(out["anomaly_logit"]),
               "kind_index": out["kind_logits"].argmax(-1), "token_prob": torch.softmax(out["token_logits"], -1),
               "token_anomaly": torch.sigmoid(out["token_anomaly_logit"]), "kept": out["kept"],
               "embedding": out["embedding"]}
    if "bin_logits" in out:
        decoded["bin_occupied"] = out["bin_logits"] > 0  # P(occupied) > 0.5, per bin of each kept token
    return decoded


def _looks_linear(x):
    """Linear power rather than dB: never negative, and all in [0, 1] (IQ scaled to +-1) or a row whose peak is over
    1000 times its median (30 dB as a ratio). A dB row with no negative value has a floor of tens of dB (a
    periodogram dips ~30 dB under its mean), so its peak is a few times its median. One row is read: the
    median costs ~10 us, paid per call until a warning."""
    if x.min() < 0.0:
        return False
    peaks = x.max(axis=1)
    row = int(np.argmax(peaks))
    return bool(peaks[row] <= 1.0 or peaks[row] > 1000.0 * np.median(x[row]))


class SpectrumModel:
    """A loaded SpectrumEncoder: `.nfft`, `.threshold`, `.config`, `.trained`, `predict(...)`."""

    def __init__(self, net, threshold=0.5, trained=False, metadata=None, device="cpu"):
        self.device = resolve_device(device)
        check_backend(net.config.backend, self.device, torch.float32)
        self.net = net.to(self.device).eval()
        self.threshold = float(threshold)
        self.trained = bool(trained)
        self.metadata = dict(metadata or {})
        cfg = net.config
        self.family_names = _names(labels.FAMILIES, cfg.n_families, "family")
        self.kind_names = _names(labels.ANOMALY_KINDS, cfg.n_kinds, "kind")
        self._graph = None  # the CPU trace (_cpu_graph); False once tracing failed
        self._graph_lock = threading.Lock()

    @property
    def config(self):
        return self.net.config

    @property
    def nfft(self):
        return self.net.config.nfft

    @classmethod
    def from_config(cls, cfg=None, seed=0, threshold=0.5, device="cpu"):
        """Randomly initialised (seeded) model for `cfg` (default ModelConfig())."""
        cfg = (cfg or ModelConfig()).validate()
        with torch.random.fork_rng(devices=[]):  # do not disturb the caller's random stream
            torch.manual_seed(seed)
            net = SpectrumEncoder(cfg)
        return cls(net, threshold=threshold, trained=False, device=device)

    def save(self, path, threshold=None, trained=None, metadata=None):
        """Write `path` (.safetensors) + JSON; returns (weights path, json path)."""
        if threshold is not None:
            self.threshold = float(threshold)
        if trained is not None:
            self.trained = bool(trained)
        if metadata is not None:
            self.metadata = dict(metadata)
        return save_checkpoint(self.net, path, self.threshold, self.trained, self.metadata)

    def set_backend(self, name):
        check_backend(name, self.device, torch.float32)
        self.net.set_backend(name)
        self._graph = None

    def set_tokens_kept(self, fraction):
        """Run on this fraction of the tokens (0 < fraction <= 1): fewer tokens, cheaper passes.

        A network trained with token dropout keeps its own ranking (fixed or learned); one trained
        without (the shipped model) keeps its highest-energy tokens, as `fixed` does. Dropped tokens
        hold no detections. Accuracy falls as tokens go: check it on your data with `specenc eval`."""
        self.net.set_tokens_kept(fraction)
        self._graph = None

    _warned_linear = False  # set on the instance once it has warned

    def _check_spectra(self, spectra):
        dtype = np.asarray(spectra).dtype
        if dtype.kind not in "iuf":  # complex IQ lost its imaginary part and scored 'jamming' everywhere (audit 71)
            raise ValueError(f"spectra of dtype {dtype} are no power spectra: the model takes dB spectra (B, nfft); IQ "
                             "samples go through dsp.power_spectrum(iq, nfft) first")
        x = np.asarray(spectra)  # float32 block by block in predict: a float64 batch was converted whole
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.nfft:
            raise ValueError(f"spectra have shape {np.shape(spectra)}; expected ({self.nfft},) or (B, {self.nfft})")
        if not len(x):
            raise ValueError("no spectra to predict (an empty batch)")
        finite = np.isfinite(x).all(axis=1)
        if x.dtype.itemsize > 4:  # past float32's range a value is inf to the model
            top = np.finfo(np.float32).max
            finite &= (x.max(axis=1) <= top) & (x.min(axis=1) >= -top)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(f"spectra row(s) {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''} contain NaN or inf; "
                             "filter them before predict")
        if not self._warned_linear and _looks_linear(x):
            log.warning("spectra look like linear power (no negative value, and all in [0, 1] or peaks over 1000 times "
                        "the median); the model takes dB (dsp.power_spectrum's default, the psd block's output): its "
                        "labels and scores for linear spectra mean nothing")
            self._warned_linear = True
        return x

    def _cpu_graph(self):
        """On CPU, the network traced and frozen by TorchScript (None elsewhere or if tracing failed).

        The same ops with no Python between them: the shipped model's predict ran 3282-3704 spectra/s against
        2681-2970 eagerly (batch 64, 2 workers, interleaved turns), and the GIL is free while a trace runs,
        for a flowgraph's other Python blocks. Traced on first use (~0.1 s) and again after set_backend or
        set_tokens_kept; tests hold it to the eager network's outputs. Freezing copies the weights into the
        trace: after changing `.net`'s weights in place, load the model anew. If a torch without TorchScript
        fails to trace, predict logs it and runs eagerly."""
        if self.device != "cpu":
            return None
        if self._graph is not None:  # every pass after the first: no lock
            return self._graph or None
        with self._graph_lock:
            if self._graph is None:
                rows = torch.full((MIN_CHUNK_ROWS, self.nfft), -100.0), torch.zeros(MIN_CHUNK_ROWS, dtype=torch.long)
                try:
                    self._graph = trace_frozen(InferenceGraph(self.net), rows)
                except Exception as exc:  # noqa: BLE001 - any tracer failure leaves the eager network working
                    log.warning("TorchScript could not trace the network (%s); predict runs it eagerly", exc)
                    self._graph = False
            return self._graph or None

    def forward_numpy(self, x, band):
        """One batched pass in the calling thread: (B, N) float32, (B,) int64 -> dict of numpy arrays."""
        graph = self._cpu_graph()
        with torch.inference_mode():
            x, band = torch.from_numpy(x).to(self.device), torch.from_numpy(band).to(self.device)
            out = (dict(zip(outputs_for(self.config), graph(x, band))) if graph
                   else self.net(x, band, training_outputs=False))
            return {k: v.cpu().numpy() for k, v in decode_outputs(out).items()}

    def forward_rows(self, x, band):
        """All rows through the network -> dict of numpy arrays, rows in order. On CPU: chunks of at most
        CPU_PASS_ROWS rows, dealt out to row_workers() one-thread workers (the caller is one of them)."""
        n = len(x)
        workers, step = cpu_chunks(n, self.row_workers()) if self.device == "cpu" else (1, MAX_BATCH)
        parts = map_row_chunks(lambda i: self.forward_numpy(x[i:i + step], band[i:i + step]), range(0, n, step),
                               workers)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def row_workers(self):
        """How many row chunks run side by side: on CPU, torch's intra-op thread count in the calling thread."""
        return torch.get_num_threads() if self.device == "cpu" else 1

    def predict(self, spectra, rx_freq=None, sample_rate=None):
        """spectra (B, nfft) or (nfft,) dB -> Prediction with B rows in input order. A spectrum with no
        noise floor (digital silence, see SILENT_SHARE) comes out as noise with score 0, no detections.

        rx_freq (None, float or (B,) Hz) picks each row's band. sample_rate is accepted for API symmetry
        (detections are in bins; convert with dsp.bin_edges_hz)."""
        x = self._check_spectra(spectra)
        band = bands_for(rx_freq, len(x))
        # MAX_BATCH rows at a time, decoding too: the decoding's arrays of a whole batch took ~70 kB per row.
        # A float32 copy of each block: rows stay the caller's, and a read-only input made torch warn.
        return Prediction.concat([self._predict_rows(np.array(x[i:i + MAX_BATCH], np.float32), band[i:i + MAX_BATCH])
                                  for i in range(0, len(x), MAX_BATCH)])

    def _predict_rows(self, x, band):
        n = x.shape[0]
        r = self.forward_rows(x, band)
        silent = silent_rows(x)
        if silent.any():
            r["label_index"][silent] = labels.FAMILY_INDEX["noise"]
            r["confidence"][silent] = 1.0
            r["anomaly_score"][silent] = 0.0
            r["token_prob"][silent] = np.eye(r["token_prob"].shape[-1], dtype=np.float32)[0]  # no emission
            r["token_anomaly"][silent] = 0.0
        cfg = self.config
        # Dropped tokens count as unoccupied: scatter kept-token results onto the full token grid.
        rows = np.arange(n)[:, None]
        full_prob = r["token_prob"]
        if r["kept"].shape[1] != cfg.n_tokens:
            full_prob = np.zeros((n, cfg.n_tokens, r["token_prob"].shape[-1]), np.float32)
            full_prob[..., 0] = 1.0
            full_prob[rows, r["kept"]] = r["token_prob"]
        where = np.zeros((n, cfg.n_tokens), bool)
        where[rows, r["kept"]] = r["token_anomaly"] >= 0.5
        score = r["anomaly_score"].astype(np.float32)
        detections = grid_to_detections(full_prob, x.reshape(n, cfg.n_tokens, cfg.pool_stride).max(-1),
                                        cfg.pool_stride, self.family_names)
        if "bin_occupied" in r:  # detections cut to the bins the per-bin head calls occupied: outer tokens, valleys
            bins = np.zeros((n, cfg.n_tokens, cfg.pool_stride), bool)
            bins[rows, r["kept"]] = r["bin_occupied"]
            bins = bins.reshape(n, -1)
            detections = split_at_valleys(trim_to_bins(detections, bins, cfg.pool_stride), bins, x)
        detections = drop_faint(detections, x)
        return Prediction(
            labels=[self.family_names[i] for i in r["label_index"].tolist()],
            label_index=r["label_index"].astype(np.int64),
            confidence=r["confidence"].astype(np.float32),
            anomaly_score=score,
            anomaly_kind=[self.kind_names[k] if s else "" for k, s in
                          zip(r["kind_index"].tolist(), (score.astype(np.float64) > self.threshold).tolist())],
            detections=detections,
            embedding=r["embedding"].astype(np.float32),
            anomaly_bins=np.repeat(where, cfg.pool_stride, axis=1),
        )


def load_model(path=None, backend=None, device="cpu", runtime="torch", threads=None):
    """Load a checkpoint (None or "" = shipped default weights) -> SpectrumModel.

    backend overrides the attention backend saved in the config (same weights; 'latent' only for
    networks built with it). threads, when given (0 = leave the default), sets torch's CPU threads once here
    (onnxruntime: the session's intra-op threads). runtime 'onnxruntime' exports the checkpoint in memory
    (runtime_onnx); an exported .onnx path always runs on onnxruntime; 'auto' lets runtime_select pick
    runtime and device."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r} is not available; available: {', '.join(RUNTIMES)}")
    if threads is not None and not threads >= 0:
        raise ValueError(f"threads={threads} must be >= 0 (0 = the runtime's default)")
    # "" and 0 mean the shipped model, its own backend and the default threads, as in the blocks
    path, backend, threads = path or None, backend or None, threads or None
    if str(path).endswith(".pt2"):
        raise ValueError(f"{path} is a torch.export program (specenc export --format torch-export), to deploy with "
                         "torch.export.load; give its .safetensors checkpoint or an .onnx export")
    if runtime == "auto":
        from .runtime_select import select

        choice = select("auto", device)
        runtime, device = choice.runtime, choice.device
    if runtime == "onnxruntime" or str(path).endswith(".onnx"):  # an exported graph runs only on onnxruntime
        from .runtime_onnx import load_onnx_model

        return load_onnx_model(path, backend=backend, device=device, threads=threads)
    if threads is not None:
        torch.set_num_threads(int(threads))
    if path is None:
        path = DEFAULT_WEIGHTS
        if not path.exists():
            raise FileNotFoundError(f"no shipped weights yet: {path} is missing; pass a model path "
                                    "(train one with `specenc train`)")
    info = read_info(path)
    cfg = info["config"]
    if backend is not None:
        from .attention import get_backend
        b = get_backend(backend)  # ValueError lists the available ones
        built = get_backend(cfg.backend).needs_latents
        if b.needs_latents != built:
            raise ValueError(f"backend {backend!r} cannot run {path}: it was built for backend {cfg.backend!r} "
                             "('latent' has its own weights)")
        cfg = cfg.replace(backend=backend)
    resolve_device(device)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the random initial weights, replaced, must not move the caller's stream
        net = load_weights(cfg, path, info["version"])
    if not info["trained"]:
        log.warning("model %s is NOT trained (random weights, placeholder): its predictions are meaningless", path)
    model = SpectrumModel(net, threshold=info["threshold"], trained=info["trained"], metadata=info["metadata"],
                          device=device)
    log.info("loaded %s (%s, d_model %d, %d layers) in %.0f ms", path, cfg.backend, cfg.d_model, cfg.n_layers,
             1e3 * (time.perf_counter() - t0))
    return model
