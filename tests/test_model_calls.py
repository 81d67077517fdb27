"""model_calls: the encoder's background model calls keep rows in order, split a row-chunked model's window
over one-thread callers and never overlap calls into a model that did not ask for it."""

import threading
import time

import numpy as np
import pytest
import torch

from gnuradio.specenc.model import ModelConfig, Prediction, SpectrumModel
from gnuradio.specenc.model_calls import ModelCalls

SMALL = ModelConfig(nfft=256, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2)


def spectra(n, seed=0):
    x = np.random.default_rng(seed).normal(-100, 3, (n, 256)).astype(np.float32)
    x[:, 100:120] += 35
    return x


def test_a_row_chunked_model_runs_each_window_as_parts_on_one_thread_callers_rows_in_order():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        m = SpectrumModel.from_config(SMALL, seed=1)
        want = m.predict(spectra(48), rx_freq=np.full(48, 100e6))
        seen = []  # (rows, torch threads, thread) per call
        lock = threading.Lock()
        # The first two parts wait for each other: they can only meet on two callers running side by side
        # (a pool thread that finished its part early could otherwise take every part, and did on a busy CI).
        meet = threading.Barrier(2, timeout=30)

        def predict(x, rx_freq, sample_rate):
            with lock:
                first_two = len(seen) < 2
                seen.append((len(x), torch.get_num_threads(), threading.get_ident()))
            if first_two:
                meet.wait()
            return m.predict(x, rx_freq=rx_freq, sample_rate=sample_rate)

        calls = ModelCalls(m, predict)
        handles = [calls.submit(spectra(48), np.full(48, 100e6), 1e6), calls.submit(spectra(4, seed=2), None, None)]
        got, small = (ModelCalls.result(h) for h in handles)
    finally:
        torch.set_num_threads(before)
    assert sorted(n for n, _, _ in seen) == [4, 16, 16, 16]  # 3 parts; 4 rows stay whole (fewer than 2 chunks)
    assert {t for _, t, _ in seen} == {1} and len({who for _, _, who in seen}) > 1
    assert isinstance(got, Prediction) and got.labels == want.labels
    np.testing.assert_allclose(got.anomaly_score, want.anomaly_score, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.embedding, want.embedding, rtol=1e-5, atol=1e-5)
    assert list(got.detections) == list(want.detections)
    assert len(small.labels) == 4


def test_a_model_without_row_workers_gets_one_caller_whole_windows_and_no_overlapping_calls():
    active, overlaps, sizes, threads = [0], [], [], []

    class Plain:  # e.g. an ensemble or a user's object: predict is not known to be thread-safe
        def predict(self, x, rx_freq=None, sample_rate=None):
            active[0] += 1
            overlaps.append(active[0] > 1)
            sizes.append(len(x))
            threads.append(torch.get_num_threads())
            time.sleep(0.01)
            active[0] -= 1
            return len(x)

    model = Plain()
    calls = ModelCalls(model, model.predict, torch_threads=1)
    handles = [calls.submit(np.zeros((n, 8)), None, None) for n in (64, 64, 3)]
    assert [ModelCalls.result(h) for h in handles] == [64, 64, 3]  # in submission order
    assert sizes == [64, 64, 3] and not any(overlaps) and set(threads) == {1}


def test_a_failed_model_call_raises_when_its_result_is_taken_and_later_calls_still_run():
    def predict(x, rx_freq, sample_rate):
        if len(x) == 2:
            raise RuntimeError("model failed on 2 rows")
        return len(x)

    calls = ModelCalls(object(), predict)
    bad, good = calls.submit(np.zeros((2, 8)), None, None), calls.submit(np.zeros((5, 8)), None, None)
    with pytest.raises(RuntimeError, match="model failed on 2 rows"):
        ModelCalls.result(bad)
    assert ModelCalls.result(good) == 5


def test_prediction_concat_and_rows_are_inverse():
    m = SpectrumModel.from_config(SMALL, seed=2)
    whole = m.predict(spectra(10, seed=3))
    joined = Prediction.concat([whole.rows(slice(0, 3)), whole.rows(slice(3, 10))])
    assert joined.labels == whole.labels and joined.anomaly_kind == whole.anomaly_kind
    np.testing.assert_array_equal(joined.anomaly_bins, whole.anomaly_bins)
    np.testing.assert_array_equal(joined.confidence, whole.confidence)
    assert list(joined.detections) == list(whole.detections)
