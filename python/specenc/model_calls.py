"""Model calls off a block's thread, for spectrum_encoder.

The encoder queues each window's predict here and, while it runs, writes out the window before it (tags,
emissions): the model no longer waits for the block's own Python or for the scheduler between calls. A
model whose CPU batch runs as row chunks (SpectrumModel.row_workers(): torch's thread count) gets that many
one-thread callers, each predicting its own part of a window; unlike one predict over the whole window,
which ends when its slowest chunk does, a caller that finishes early starts on the next window. Other models
(onnxruntime, which spreads each pass itself; GPU; ensembles; user objects) get one caller, so calls never
overlap. On 2 cores the flowgraph's wall overhead over the model alone fell from +17.4 to +11.3 % (medians
of 8 interleaved turns, docs/flowgraph_bench.md).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np


class ModelCalls:
    """predict() on background threads; results come back in the order windows were submitted."""

    def __init__(self, model, predict, torch_threads=0):
        """model: the loaded model; predict(spectra, rx_freq, sample_rate) runs it (with the runtime's context);
        torch_threads: torch's thread count for a one-caller torch model (0 = leave it)."""
        self._predict = predict
        self._workers = model.row_workers() if hasattr(model, "row_workers") else 1
        self._split = None
        initializer = None
        if self._workers > 1:
            from .model.spectrum_model import cpu_chunks, one_thread_worker

            self._split = lambda n: cpu_chunks(n, self._workers)[0]  # parts: no fewer rows than predict's chunks
            initializer = one_thread_worker
        elif torch_threads:
            import torch

            # torch's intra-op thread count is per calling thread: set it where the model runs.
            initializer = lambda: torch.set_num_threads(torch_threads)  # noqa: E731
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="specenc-model", initializer=initializer)

    def submit(self, spectra, rx_freq, sample_rate):
        """Queue predict on (n, nfft) spectra and (n,) rx_freq (or None) -> a handle for result()."""
        parts = self._split(len(spectra)) if self._split else 1
        bounds = np.linspace(0, len(spectra), parts + 1).astype(int)
        return [self._pool.submit(self._predict, spectra[a:b], None if rx_freq is None else rx_freq[a:b],
                                  sample_rate) for a, b in zip(bounds[:-1], bounds[1:])]

    @staticmethod
    def result(handle):
        """The Prediction of a submitted window, waiting for it; a failed call raises here."""
        parts = [f.result() for f in handle]
        return parts[0] if len(parts) == 1 else type(parts[0]).concat(parts)
