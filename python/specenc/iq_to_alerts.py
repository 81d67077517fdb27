"""specenc.iq_to_alerts: IQ in, tagged spectra, anomaly scores and alerts out, in one block."""

import pmt
from gnuradio import blocks, gr

from . import spectrum_tags as tags
from .anomaly_detector import anomaly_detector
from .spectrum_encoder import spectrum_encoder


class iq_to_alerts(gr.hier_block2):
    """psd -> spectrum_encoder -> anomaly_detector, for "IQ in, alerts out" in one drag.

    Inputs:
        0: complex IQ (rx_time/rx_freq/rx_rate tags are used when present).
    Outputs:
        0: float[nfft] spectra in dB with the encoder's tags (for waterfalls).
        1: float anomaly score per spectrum.
        alerts (message): anomaly_detector alerts.
        detections (message): spectrum_encoder per-emission detections.

    Args:
        model_path: model file ('' = the shipped default), or a loaded SpectrumModel (built in a loop: load it once).
        device: 'cpu', 'cuda' or 'auto'.
        threshold: alert threshold (negative = the model's calibrated one).
        sample_rate, center_freq: used until rx_rate/rx_freq tags arrive (Hz).
        nfft, overlap, average, window: the psd settings (nfft must match the model).
        backend, runtime, threads, batch, holdoff, integrate: see spectrum_encoder and anomaly_detector.
    """

    def __init__(self, model_path="", device="cpu", threshold=-1.0, sample_rate=0.0, center_freq=0.0, nfft=1024,
                 overlap=0.5, average=1, window="hann", backend="", runtime="torch", threads=0, batch=64,
                 holdoff=16, integrate=0):
        # The encoder validates the model first: a bad path/backend/device fails before anything is wired.
        self.encoder = spectrum_encoder(model_path=model_path, backend=backend, runtime=runtime, device=device,
                                        threads=threads, batch=batch, nfft=nfft, overlap=overlap, average=average,
                                        sample_rate=sample_rate, center_freq=center_freq)
        from .specenc_python import psd

        self.psd = psd(nfft=nfft, overlap=overlap, window=window, average=average, db=True,
                       sample_rate=sample_rate)
        self.psd.set_min_output_buffer(2 * batch)  # lets the encoder batch up to `batch` spectra per call
        self.detector = anomaly_detector(nfft=nfft, threshold=threshold, holdoff=holdoff, integrate=integrate)
        gr.hier_block2.__init__(self, "iq_to_alerts", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signaturev(2, 2, [nfft * gr.sizeof_float, gr.sizeof_float]))
        alerts, detections = (pmt.symbol_to_string(p) for p in (tags.ALERTS_PORT, tags.DETECTIONS_PORT))
        self.message_port_register_hier_out(alerts)
        self.message_port_register_hier_out(detections)
        self.connect(self, self.psd, self.encoder, self.detector, (self, 1))
        # A Python block fails at start with an output unconnected; this keeps the score output optional (alerts only).
        self.connect(self.detector, blocks.null_sink(gr.sizeof_float))
        self.connect(self.encoder, (self, 0))
        self.msg_connect(self.detector, alerts, self, alerts)
        self.msg_connect(self.encoder, detections, self, detections)

    # GRC callbacks
    def set_threshold(self, threshold):
        self.detector.set_threshold(threshold)

    def set_holdoff(self, holdoff):
        self.detector.set_holdoff(holdoff)

    def set_batch(self, batch):
        self.encoder.set_batch(batch)

    def set_center_freq(self, center_freq):
        self.encoder.set_center_freq(center_freq)

    def set_sample_rate(self, sample_rate):
        self.encoder.set_sample_rate(sample_rate)  # first: it refuses what the psd would take (0)
        self.psd.set_sample_rate(sample_rate)

