"""Data for training and evaluation: seeded synthetic streams and spectra from SigMF recordings.

Every consumer draws from its own NumPy stream `default_rng([seed, STREAM, part])`, so training,
validation, calibration and test scenes never share a seed.
"""

import logging

import numpy as np
from tqdm import tqdm

from .. import dsp, labels, sigmf_io, synth, truth

log = logging.getLogger(__name__)

READ_SAMPLES = 1 << 22  # samples read and transformed at a time (32 MB of complex64)
VISIBLE_SNR_DB = -3.0  # as synth.batch labels emitters
TRAIN_STREAM, VAL_STREAM, CALIB_STREAM, TEST_STREAM = 0, 1, 2, 3
BATCH_FIELDS = ("spectra", "family", "bin_family", "bin_snr", "anomaly", "anomaly_kind", "anomaly_bins", "band",
                "center_freq", "sample_rate", "snr_db", "dominant_bins")


def stream(seed, kind, part=0):
    return np.random.default_rng([int(seed), kind, part])


def as_dict(batch):
    return {k: np.asarray(getattr(batch, k)) for k in BATCH_FIELDS}


def concat(batches):
    batches = list(batches)
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def make_set(rng, count, nfft, anomaly_fraction, batch_size=64, bands=None, desc=None):
    """`count` spectra as one dict of arrays (generated in whole batches, the last one trimmed).

    desc: show a progress bar with this label (generation runs ~500 spectra/s on one core)."""
    n = -(-count // batch_size)
    out = concat(as_dict(synth.make_batch(rng, batch_size=batch_size, nfft=nfft,
                                          anomaly_fraction=anomaly_fraction, bands=bands))
                 for _ in tqdm(range(n), desc=desc, unit="batch", disable=desc is None, leave=False))
    return {k: v[:count] for k, v in out.items()}


class TestSets:
    """Held-out synthetic sets for `specenc eval` (test stream, disjoint from training seeds)."""

    def __init__(self, seed, nfft, batch_size=64):
        self.seed, self.nfft, self.batch_size = seed, nfft, batch_size

    def scenes(self, count, anomaly_fraction=0.5, desc=None):
        return make_set(stream(self.seed, TEST_STREAM, 0), count, self.nfft, anomaly_fraction, self.batch_size,
                        desc=desc)

    def clean(self, count, part="test", desc=None):
        rng = stream(self.seed, TEST_STREAM, {"calibration": 1, "test": 2}[part])
        return make_set(rng, count, self.nfft, 0.0, self.batch_size, desc=desc)

    def clean_batches(self):
        """Endless clean spectra for training the autoencoder baseline."""
        rng = stream(self.seed, TEST_STREAM, 3)
        while True:
            yield synth.make_batch(rng, batch_size=self.batch_size, nfft=self.nfft, anomaly_fraction=0.0).spectra


def _annotation_truth(annotations, starts, span, sample_rate):
    """Per spectrum (samples [start, start+span)): dominant family index (None without any family annotation: the
    recording then says nothing of its families; -1 where an emission of a family unknown here lies, an annotation
    with frequency edges whose strength is not given: such a spectrum's dominant family is unknown) and anomaly flag
    from annotations."""
    family = np.zeros(len(starts), dtype=np.int64)
    strength = np.full(len(starts), -np.inf)
    anomaly = np.zeros(len(starts), dtype=bool)
    unknown = np.zeros(len(starts), dtype=bool)
    has_families = False
    for a in annotations:
        s0 = a["core:sample_start"]
        hit = (starts < s0 + a["core:sample_count"]) & (starts + span > s0)
        name = truth.family(a)
        if truth.anomaly_kind(a) is not None:
            anomaly |= hit
        elif truth.is_foreign_emission(a):
            unknown |= hit
        elif name is not None:
            has_families = True
            # The dominant emission as the generator defines it: highest total power, SNR x bandwidth
            # (the widest when no SNR is annotated). Emissions below -3 dB SNR are not visible. A frequency
            # hopper's box spans all its hops but its SNR is that of one hop (specenc synth: params.hop_bw, a
            # fraction of the sample rate): its span instead outweighed stronger emitters by ~29 dB.
            hop_bw = (a.get("specenc:params") or {}).get("hop_bw")
            width = (hop_bw * sample_rate if hop_bw else
                     a.get("core:freq_upper_edge", 0.0) - a.get("core:freq_lower_edge", 0.0))
            width = max(width, 1.0)
            snr = float(a.get("specenc:snr_db", 0.0))
            if snr < VISIBLE_SNR_DB:
                continue
            level = snr + 10.0 * np.log10(width)
            better = hit & (level > strength)
            family[better] = labels.FAMILY_INDEX[name]
            strength[better] = level
    family[unknown] = -1
    return {"family": family if has_families else None, "anomaly": anomaly}


def recording_spectra(recording, nfft, average=1, max_spectra=20000, overlap=0.5):
    """(Recording, spectra (S, nfft) dB, centre frequency of each (S,) Hz, truth dict or None) for a SigMF meta path
    or an opened sigmf_io.Recording (a raw file: sigmf_io.open_recording), `average` frames per spectrum. The
    frequencies follow captures that retune (the band, which dynamic RoPE reads, may change with them). Spectra of
    NaN or inf samples are left out with a warning, as the flowgraph skips them."""
    dsp.check_params(nfft, overlap, average)  # before the sample count is divided by `average`
    rec = recording if isinstance(recording, sigmf_io.Recording) else sigmf_io.open_recording(recording)
    hop = dsp.hop_size(nfft, overlap)
    name = rec.meta_path or rec.data_path
    total = dsp.num_spectra(rec.num_samples, nfft, overlap, average)
    if total < 1:
        raise ValueError(f"{name}: {rec.num_samples} samples give no spectrum of nfft={nfft}, average={average}")
    count = min(total, max_spectra)
    if count < total:
        log.warning("%s: scoring its first %d of %d spectra (max_spectra)", name, count, total)
    spectra = np.empty((count, nfft), np.float32)
    step = hop * average  # samples between spectra
    block = max(1, READ_SAMPLES // step)  # spectra per read: the whole span at once held the file in memory
    for first in range(0, count, block):
        n = min(block, count - first)
        iq = sigmf_io.read_samples(rec, first * step, dsp.samples_read(n, nfft, overlap, average))
        spectra[first:first + n] = dsp.power_spectrum(iq, nfft, overlap, average=average)
    starts = np.arange(count) * step
    freqs = sigmf_io.spectrum_freqs(rec, count, step)
    finite = np.isfinite(spectra).all(axis=1)
    if not finite.all():
        log.warning("%s: %d of %d spectra hold NaN or inf samples (the first from sample %d); left out",
                    name, (~finite).sum(), len(spectra), starts[~finite][0])
        spectra, starts, freqs = spectra[finite], starts[finite], freqs[finite]
    found = None
    # Truth only where some annotation is in our vocabulary (as `specenc synth` writes them); free-text labels alone,
    # such as the real captures' whole-file descriptions, say nothing per spectrum.
    if any(map(truth.is_truth, rec.annotations)):
        found = _annotation_truth(rec.annotations, starts, dsp.samples_read(1, nfft, overlap, average),
                                  rec.sample_rate)
    return rec, spectra, freqs, found
