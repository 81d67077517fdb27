"""`specenc bench psd` runs end to end and prints one row per variant (figures are not asserted)."""

import subprocess
import sys


def test_bench_psd_prints_table(specenc_cpp):
    out = subprocess.run(
        [sys.executable, "-m", "gnuradio.specenc.cli", "bench", "psd", "--samples", "200000",
         "--numpy-samples", "20000", "--repeats", "1"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("PSD throughput, nfft 1024, overlap 0.5 (hop 512)")
    names = [line[:28].strip() for line in lines[2:]]
    assert names == ["specenc.psd (C++)", "numpy dsp.power_spectrum", "stock GR fft_vcc chain",
                     "source/head/sink only"]
    assert all(float(line.split()[-4]) > 0 for line in lines[2:])  # MS/CPU-s column


def test_bench_rejects_bad_sizes():
    result = subprocess.run([sys.executable, "-m", "gnuradio.specenc.cli", "bench", "psd", "--nfft", "1000"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "nfft=1000 must be a power of two" in result.stderr
