"""Training, evaluation, calibration and baselines for the SpectrumEncoder (imports no GNU Radio)."""
