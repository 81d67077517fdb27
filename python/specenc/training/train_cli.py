"""`specenc train --config CONFIG`: train a SpectrumEncoder on generated scenes (resumable)."""

import logging
import os
import signal

from .. import json_out
from ..app.interrupts import Interrupted
from . import checkpoint
from . import train as train_lib
from .config import TrainConfig

log = logging.getLogger(__name__)
SHIPPED_NFFT = 1024  # the spectrum length every block and command defaults to


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="training config JSON (e.g. configs/default.json)")
    parser.add_argument("--out", default=None, help="output directory (default: out/train/<config name>)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="torch device")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--max-minutes", type=float, default=None, help="override the config's time budget")
    parser.add_argument("--ship", action="store_true",
                        help="also copy the trained model over the installed package's "
                             "weights/default.{safetensors,json} (in a source checkout, copy it to "
                             "python/specenc/weights/ too: make build reinstalls from there)")


def main(args):
    if not os.path.exists(args.config):
        raise FileNotFoundError(f"no such config: {args.config}")
    cfg = TrainConfig.load(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.ship and cfg.nfft != SHIPPED_NFFT:  # checked before training, not after
        raise ValueError(f"--ship: the blocks and the command line default to {SHIPPED_NFFT}-bin spectra; a model of "
                         f"nfft={cfg.nfft} can be used by path (--model) but not shipped as the default")
    out = args.out or os.path.join("out", "train", os.path.splitext(os.path.basename(args.config))[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = train_lib.train(cfg, out, device=args.device, resume=args.resume)
    except KeyboardInterrupt as exc:
        kept = ("(the last epoch's checkpoint is kept: run it again with --resume)" if checkpoint.exists(out)
                else "(before the first epoch ended: no checkpoint to resume)")
        raise Interrupted(kept, getattr(exc, "signum", signal.SIGINT)) from None
    print(json_out.dumps({k: v for k, v in summary.items() if k != "config"}, indent=1))
    model_path = os.path.join(out, "model.safetensors")
    if args.ship:
        from .modelio import ship_default

        shipped = ship_default(model_path)
        print(f"shipped: {shipped} (the installed package; in a source checkout also copy {model_path} and its "
              f".json to python/specenc/weights/default.*, or the next make build restores the old weights)")
    print(f"model: {model_path}")
    return 0
