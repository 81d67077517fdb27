"""Power spectra in NumPy with the same maths as the C++ `specenc.psd` block.

Used by notebooks, the scenario generator and training, so the model sees exactly what the
flowgraph feeds it.

Normalisation: frames of `nfft` samples advance by `hop = nfft - round(overlap * nfft)`; each frame
is multiplied by the window w and transformed; power is |FFT(x w)|^2 / (sum w)^2, so a complex tone
of amplitude 1 centred on a bin reads 1 (0 dBFS) in that bin whatever the window ("dBFS/bin").
`average=K` averages K consecutive frames (non-overlapping groups) into one output spectrum.
Spectra are fftshifted: bin 0 is the lowest frequency, bin nfft/2 is the centre frequency.
For a density in dB/Hz subtract 10 log10(sample_rate * ENBW / nfft), ENBW = nfft sum(w^2) / (sum w)^2.
Windowing and the FFT run in float64 (single precision is off by up to 1e-3 dB in low bins).
A spectrum whose frames contain NaN or inf samples is non-finite (NaN) in every bin; others are unaffected.
"""

import operator

import numpy as np

WINDOWS = ("hann", "rectangular", "hamming", "blackmanharris")
MIN_NFFT, MAX_NFFT = 64, 65536
MAX_SPAN = 1 << 24  # most samples one spectrum may read, (average-1) hop + nfft (as the C++ block)
# Floor for dB conversion so an all-zero frame gives a finite value (-200 dB) instead of -inf.
POWER_FLOOR = 1e-20
CHUNK_FRAMES = 1 << 20  # frame samples windowed and transformed at once (16 MB of complex128 each step)


def window(name, nfft):
    """Periodic (DFT-even) window of length nfft, as float64."""
    n = np.arange(nfft)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * n / nfft)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * n / nfft)
    if name == "blackmanharris":
        a = (0.35875, 0.48829, 0.14128, 0.01168)
        x = 2 * np.pi * n / nfft
        return a[0] - a[1] * np.cos(x) + a[2] * np.cos(2 * x) - a[3] * np.cos(3 * x)
    if name == "rectangular":
        return np.ones(nfft)
    raise ValueError(f"unknown window {name!r}; choose one of {', '.join(WINDOWS)}")


def whole_number(name, value, least=None, most=None, note=""):
    """`value` as an int (in least..most when given); ValueError naming it otherwise (a float or a bool, which numpy,
    pybind11 or a bit operation refused later with an error of their own, or took truncated)."""
    try:
        whole = None if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        whole = None
    bounded = least is not None
    if whole is None or bounded and not least <= whole <= most:
        raise ValueError(f"{name}={value!r} must be a whole number{f' in {least}..{most}' if bounded else ''}{note}")
    return whole


def check_params(nfft, overlap, average):
    """Raise ValueError naming the bad value and the allowed range."""
    whole = whole_number("nfft", nfft)
    if not MIN_NFFT <= whole <= MAX_NFFT or whole & (whole - 1):
        raise ValueError(f"nfft={nfft} must be a power of two in {MIN_NFFT}..{MAX_NFFT}")
    if not 0.0 <= overlap <= 0.9:
        raise ValueError(f"overlap={overlap} must be in 0..0.9")
    whole_number("average", average, 1, MAX_SPAN)
    span = samples_read(1, nfft, overlap, average)
    if span > MAX_SPAN:
        raise ValueError(f"average={average} with nfft={nfft} and overlap={overlap} reads {span} samples per spectrum; "
                         f"at most {MAX_SPAN} ((average-1) hop + nfft)")


def hop_size(nfft, overlap):
    """Samples between the starts of consecutive frames."""
    return nfft - int(round(overlap * nfft))


def samples_read(count, nfft=1024, overlap=0.5, average=1):
    """Input samples that `count` >= 1 consecutive spectra read, from the first's first to the last's last."""
    return (count * average - 1) * hop_size(nfft, overlap) + nfft


def num_spectra(num_samples, nfft=1024, overlap=0.5, average=1):
    """How many output spectra `num_samples` input samples give."""
    hop = hop_size(nfft, overlap)
    frames = 0 if num_samples < nfft else (num_samples - nfft) // hop + 1
    return frames // average


def power_spectrum(iq, nfft=1024, overlap=0.5, window="hann", average=1, db=True):
    """Power spectra of complex samples -> float32 [spectra, nfft], fftshifted, dBFS/bin or linear."""
    check_params(nfft, overlap, average)
    iq = np.asarray(iq)
    if iq.ndim != 1:
        raise ValueError(f"iq must be one-dimensional, got shape {iq.shape}")
    w = globals()["window"](window, nfft)
    hop = hop_size(nfft, overlap)
    count = num_spectra(len(iq), nfft, overlap, average)
    if count == 0:
        return np.zeros((0, nfft), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(iq.astype(np.complex64, copy=False), nfft)[::hop]
    frames = frames[: count * average]
    out = np.empty((count, nfft), np.float32)
    # Spectra per step: a whole file's float64 FFTs at once took ~86 bytes per sample (9 GB for 43 s at 2.4 MS/s).
    step = max(1, CHUNK_FRAMES // (nfft * average))
    for first in range(0, count, step):
        block = frames[first * average:(first + step) * average]
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf input -> non-finite spectra, as the block
            spec = np.fft.fft(block * w, axis=-1)  # window and FFT in float64, as the C++ block
        power = ((spec.real**2 + spec.imag**2) / np.sum(w) ** 2).reshape(-1, average, nfft).mean(axis=1)
        power = np.fft.fftshift(power, axes=-1)
        out[first:first + step] = 10.0 * np.log10(np.maximum(power, POWER_FLOOR)) if db else power
    return out


def noise_scatter_db(average=1):
    """Standard deviation (dB) of one bin of a noise-only spectrum averaging `average` frames: the bin's power
    is Gamma(K)-distributed, so its dB value scatters by 10/ln(10) sqrt(trigamma(K)); 5.57 dB for one frame,
    2.31 dB for four."""
    if average < 1:
        raise ValueError(f"average={average} must be >= 1")
    trigamma = np.pi**2 / 6 - sum(1.0 / j**2 for j in range(1, int(average)))
    return float(10 / np.log(10) * np.sqrt(trigamma))


def bin_edges_hz(bin_start, bin_stop, nfft, sample_rate, center_freq):
    """Frequency edges (Hz) of the half-open bin range [bin_start, bin_stop) of an fftshifted spectrum.

    Bin k is centred on center_freq + (k - nfft/2) * rate/nfft and spans half a bin either side, but no edge lies
    below the captured band (bin 0 sits on its lower end: an alert's edges were outside the band it was raised in).
    """
    step = sample_rate / nfft
    return (center_freq + max(bin_start - nfft / 2 - 0.5, -nfft / 2) * step,
            center_freq + (bin_stop - nfft / 2 - 0.5) * step)
