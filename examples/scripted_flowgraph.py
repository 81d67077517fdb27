#!/usr/bin/env python3
"""Scripted flowgraph: a SigMF recording through IQ to Alerts, built in Python without GRC.

    sigmf_source -> iq_to_alerts (psd -> spectrum_encoder -> anomaly_detector) -> null sinks
                                   `alerts` -> alert_sink (JSONL) and alert_printer (one line each, as it comes)

Run:  python3 examples/scripted_flowgraph.py RECORDING.sigmf-meta [--model M.safetensors] [--alerts a.jsonl]
Swap sigmf_source for any complex source (UHD, Soapy, ZMQ) to run live; give sample_rate and
center_freq to iq_to_alerts when that source sends no rx_rate/rx_freq tags.
"""

import argparse

import pmt
from gnuradio import blocks, gr

from gnuradio import specenc


class alert_printer(gr.basic_block):
    """Prints each alert as it arrives (a live source runs until Ctrl-C: nothing is kept) and counts them."""

    def __init__(self):
        gr.basic_block.__init__(self, name="alert_printer", in_sig=None, out_sig=None)
        self.count = 0
        self.message_port_register_in(pmt.intern("alerts"))
        self.set_msg_handler(pmt.intern("alerts"), self.handle)

    def handle(self, msg):
        alert = pmt.to_python(msg)
        self.count += 1
        print(f"t={alert['time']:.6f}s  {alert['kind']:<16} score {alert['score']:.3f}  "
              f"{alert['freq_lower_edge'] / 1e6:.4f}-{alert['freq_upper_edge'] / 1e6:.4f} MHz  band {alert['band']}",
              flush=True)


def build(recording, model="", alerts_path="", device="cpu", threshold=-1.0, average=1):
    """The top block and the alert_printer."""
    tb = gr.top_block("scripted_flowgraph")
    source = specenc.sigmf_source(recording)
    chain = specenc.iq_to_alerts(model_path=model, device=device, threshold=threshold, average=average)
    nfft = chain.encoder.nfft
    sink = specenc.alert_sink(jsonl_path=alerts_path, stdout=False)
    printer = alert_printer()
    tb.connect(source, chain)
    tb.connect((chain, 0), blocks.null_sink(gr.sizeof_float * nfft))
    tb.connect((chain, 1), blocks.null_sink(gr.sizeof_float))
    tb.msg_connect(chain, "alerts", sink, "alerts")
    tb.msg_connect(chain, "alerts", printer, "alerts")
    tb._keep = (source, chain, sink, printer)  # Python blocks must outlive the run
    return tb, printer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", help="SigMF recording (.sigmf-meta)")
    parser.add_argument("--model", default="", help="model file (default: the shipped model)")
    parser.add_argument("--alerts", default="", help="write alerts as JSON lines here")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--threshold", type=float, default=-1.0, help="alert threshold (default: calibrated)")
    parser.add_argument("--average", type=int, default=1, help="FFT frames averaged per spectrum")
    args = parser.parse_args()
    tb, printer = build(args.recording, args.model, args.alerts, args.device, args.threshold, args.average)
    tb.run()
    print(f"{printer.count} alerts")


if __name__ == "__main__":
    main()
