"""ad-hoc: detections of pilot models, as decoded now and with the first/last token of each detection cut to
the bins the per-bin occupancy head calls occupied; recall of SNR>=10 emissions by width, P/R of all."""
import sys
import numpy as np, torch
from gnuradio.specenc.synth import batch as sb
from gnuradio.specenc.model import load_model
from gnuradio.specenc.model.spectrum_model import bands_for
from gnuradio.specenc.training.evaluate import predict_all, truth_tokens, detection_block
from gnuradio.specenc.training import metrics
rng = np.random.default_rng([79])
bs = [sb.make_batch(rng, 64, 1024, 0.5) for _ in range(64)]
cat = lambda f: np.concatenate([getattr(b, f) for b in bs])
sp, bf, bsnr, cf, sr, snr, fam = (cat(k) for k in ("spectra", "bin_family", "bin_snr", "center_freq", "sample_rate", "snr_db", "family"))
truth = truth_tokens(bf, bsnr)
strong = [[t for t in row if t[3] >= 10] for row in truth]
def report(name, d, acc):
    r = detection_block(truth, d, snr, need_family_too=False)
    w = " ".join(f"{lo}-{hi} {metrics.detection_scores([[t for t in row if lo <= t[1] - t[0] < hi] for row in strong], d)['recall']:.2f}"
                 for lo, hi in [(0, 4), (4, 8), (8, 16), (16, 64), (64, 2000)])
    print(f"{name:34s} acc {acc:.3f} recall>=10 {r['emissions_snr_ge_10']['recall']:.3f} all P {r['all']['precision']:.3f} R {r['all']['recall']:.3f} | {w}", flush=True)
for path in sys.argv[1:]:
    model = load_model(path, threads=2)
    p = predict_all(model, sp, cf, sr); dets = p["detections"]; acc = (p["label_index"] == fam).mean()
    report(path.split("/")[-2], dets, acc)
    if not model.config.bin_edges:
        continue
    s = model.config.pool_stride
    occ = []
    with torch.inference_mode():
        for i in range(0, len(sp), 512):
            out = model.net(torch.from_numpy(sp[i:i + 512]), torch.from_numpy(bands_for(cf[i:i + 512], len(sp[i:i + 512]))), training_outputs=False)
            occ.append(torch.sigmoid(out["bin_logits"]).flatten(1).numpy())  # no dropout: kept = all tokens
    occ = np.concatenate(occ) >= 0.5
    trimmed = []
    for o, row in zip(occ, dets):
        new = []
        for a, b, f in row:
            inside = np.flatnonzero(o[a:b])
            lo = a + inside[0] if len(inside) and inside[0] < s else a
            hi = a + inside[-1] + 1 if len(inside) and inside[-1] >= b - a - s else b
            new.append((lo, hi, f))
        trimmed.append(new)
    report(path.split("/")[-2] + " + bin edges", trimmed, acc)
