"""Training configuration: a dataclass read from / written to JSON (configs/*.json)."""

import dataclasses
import json
from dataclasses import dataclass, field

from .. import dsp
from ..model.config import ModelConfig, is_finite
from ..synth.batch import check_bands


# JSON types of the config's field types (a float field takes an integer too), and how errors name them.
_JSON_TYPES = {int: (int, "an integer"), float: ((int, float), "a number"), dict: (dict, "an object"),
               list: (list, "a list")}


@dataclass
class TrainConfig:
    # Overrides of the model library's default config ({} = the model engineer's default size).
    model: dict = field(default_factory=dict)
    seed: int = 0
    nfft: int = 1024
    batch_size: int = 64
    lr: float = 2e-4  # paper's AdamW learning rate
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine decay floor, as a fraction of lr
    grad_clip: float = 1.0
    alpha: float = 0.3  # weight of the anomaly BCE in the joint loss
    tau_start: float = 1.0  # Gumbel temperature, annealed exponentially over the planned steps
    tau_end: float = 0.1
    anomaly_fraction: float = 0.5
    bands: list = None  # None = every band the generator knows
    # {band: relative weight} of TRAINING rows (None = even); validation and calibration stay even
    band_weights: dict = None
    steps_per_epoch: int = 200
    max_epochs: int = 20
    patience: int = 4  # epochs without validation improvement before stopping
    max_minutes: float = 0.0  # wall-clock budget (0 = none); the run stops cleanly when it is spent
    pool_batches: int = 0  # >0: keep this many generated batches, add `pool_refresh` fresh ones per step
    pool_refresh: float = 1.0
    val_spectra: int = 1024
    calib_spectra: int = 4096  # clean spectra for the alert threshold
    far: float = 1e-3
    threads: int = 2
    workers: int = 0  # processes generating batches ahead of the training step (0 = in the training process)
    unknown_band: float = 0.0  # share of training rows given band "other" (tuning unknown, as predict() then sees)

    def validate(self):
        for f in dataclasses.fields(self):  # JSON gives strings and floats where ints belong without complaint
            value, (kind, name) = getattr(self, f.name), _JSON_TYPES[f.type]
            if value is None and f.default is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"training config: {f.name}={value!r} must be {name}")
            if f.type is float and not is_finite(value):  # JSON's 1e999 is inf, and inf > 0 passed
                raise ValueError(f"training config: {f.name}={value!r} must be a finite number")
        if "nfft" in self.model:
            raise ValueError("training config: set nfft at the top level, not in model (data and model share it)")
        if self.bands is not None and not all(isinstance(b, str) for b in self.bands):
            raise ValueError(f"training config: bands={self.bands!r} must be a list of band names")
        checks = [
            ("seed", 0 <= self.seed < 2**63, "in 0..2^63-1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("alpha", self.alpha >= 0, ">= 0"),
            ("tau_start", self.tau_start > 0, "> 0"),
            ("tau_end", 0 < self.tau_end <= self.tau_start, "in (0, tau_start]"),
            ("anomaly_fraction", 0 <= self.anomaly_fraction <= 1, "in 0..1"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in 0..1"),
            ("grad_clip", self.grad_clip >= 0, ">= 0 (0 = no clipping)"),
            ("steps_per_epoch", self.steps_per_epoch >= 1, ">= 1"),
            ("max_epochs", self.max_epochs >= 1, ">= 1"),
            ("patience", self.patience >= 1, ">= 1"),
            ("max_minutes", self.max_minutes >= 0, ">= 0 (0 = no time budget)"),
            ("pool_batches", self.pool_batches >= 0, ">= 0"),
            ("val_spectra", self.val_spectra >= 1, ">= 1"),
            ("calib_spectra", self.calib_spectra >= 1, ">= 1"),
            ("far", 0 < self.far < 1, "in (0, 1)"),
            ("threads", 1 <= self.threads <= 1024, "in 1..1024"),
            ("workers", 0 <= self.workers <= 1024, "in 0..1024"),
            ("unknown_band", 0 <= self.unknown_band <= 1, "in 0..1"),
            ("pool_refresh", self.pool_batches == 0 or 0 < self.pool_refresh <= self.pool_batches,
             "in (0, pool_batches]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"training config: {name}={getattr(self, name)!r} must be {allowed}")
        try:
            check_bands(self.bands, self.band_weights)
            dsp.check_params(self.nfft, 0.5, 1)  # the generator's spectra (it failed at the first batch)
            ModelConfig.from_dict({**self.model, "nfft": self.nfft})
        except ValueError as exc:
            raise ValueError(f"training config: {exc}") from None
        return self

    @property
    def total_steps(self):
        return self.steps_per_epoch * self.max_epochs

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise ValueError(f"training config: a JSON object of settings, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known - {"comment"})
        if unknown:
            raise ValueError(f"training config: unknown keys {unknown}; allowed: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known}).validate()

    @classmethod
    def load(cls, path):
        with open(path) as f:
            try:
                d = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # the decoder named no file
                raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(d)
