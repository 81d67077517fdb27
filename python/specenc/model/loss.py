"""Joint training loss and the batch -> tensors helper.

spectrum_loss = MSE(recon) + alpha * BCE(anomaly) + CE(family) + CE(per-token family) + CE(kind on
anomalous rows) + BCE(per-token anomaly: does the token's window hold anomaly bins) [+ BCE(per-bin
occupancy of each token's window), for a network with the bin_edges head]. Batch fields
follow the synth contract (numpy or torch): spectra, family, bin_family, anomaly, anomaly_kind,
anomaly_bins, band (others ignored).
"""

import numpy as np
import torch
import torch.nn.functional as F

BATCH_FIELDS = ("spectra", "family", "bin_family", "anomaly", "anomaly_kind", "anomaly_bins", "band")


def batch_to_tensors(batch, device="cpu"):
    """A synth Batch (dataclass) or dict of numpy/torch arrays -> dict of torch tensors on `device`."""
    out = {}
    for name in BATCH_FIELDS:
        v = batch.get(name) if isinstance(batch, dict) else getattr(batch, name, None)
        if v is None:
            raise ValueError(f"batch has no field {name!r} (needs {', '.join(BATCH_FIELDS)})")
        t = torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v)
        if name in ("spectra", "anomaly", "anomaly_bins"):
            t = t.float()
        else:
            t = t.long()
        out[name] = t.to(device)
    return out


def token_targets(bin_family, kept, stride, n_families):
    """Per-bin family (B, N) -> per-kept-token family (B, K): the most common non-zero family in the
    token's window, 0 (unoccupied) when the window holds none."""
    b, n = bin_family.shape
    counts = F.one_hot(bin_family.clamp_min(0), n_families).view(b, n // stride, stride, n_families).sum(2)
    counts[..., 0] = 0  # any occupied bin makes the token occupied
    target = counts.argmax(-1)  # (B, T); all-zero counts -> 0
    return target.gather(1, kept)


def token_anomaly_targets(anomaly_bins, kept, stride):
    """Per-bin anomaly extent (B, N) float -> (B, K) 1.0 where the kept token's window holds any of it."""
    b, n = anomaly_bins.shape
    return anomaly_bins.view(b, n // stride, stride).amax(-1).gather(1, kept)


def bin_targets(bin_family, kept, stride):
    """Per-bin family (B, N) -> (B, K, s) 1.0 where a bin of a kept token's window is occupied."""
    b, n = bin_family.shape
    occupied = (bin_family > 0).float().view(b, n // stride, stride)
    return occupied.gather(1, kept.unsqueeze(-1).expand(-1, -1, stride))


def spectrum_loss(outputs, batch, alpha=0.3, w_family=1.0, w_token=1.0, w_kind=1.0, w_recon=1.0, w_where=1.0):
    """outputs: SpectrumEncoder.forward dict; batch: batch_to_tensors dict (same device).
    Returns (loss tensor, dict of float terms)."""
    recon = F.mse_loss(outputs["recon"], outputs["windows"])
    anomaly = F.binary_cross_entropy_with_logits(outputs["anomaly_logit"], batch["anomaly"].float())
    family = F.cross_entropy(outputs["family_logits"], batch["family"])
    n_fam = outputs["token_logits"].shape[-1]
    stride = outputs["windows"].shape[-1]  # bins per token
    tok_target = token_targets(batch["bin_family"], outputs["kept"], stride, n_fam)
    token = F.cross_entropy(outputs["token_logits"].reshape(-1, n_fam), tok_target.reshape(-1))
    rows = (batch["anomaly"] > 0.5) & (batch["anomaly_kind"] >= 0)
    kind = (F.cross_entropy(outputs["kind_logits"][rows], batch["anomaly_kind"][rows]) if bool(rows.any())
            else outputs["kind_logits"].sum() * 0.0)
    where = F.binary_cross_entropy_with_logits(
        outputs["token_anomaly_logit"], token_anomaly_targets(batch["anomaly_bins"], outputs["kept"], stride))
    loss = w_recon * recon + alpha * anomaly + w_family * family + w_token * token + w_kind * kind + w_where * where
    terms = {"recon": recon.item(), "anomaly": anomaly.item(), "family": family.item(),
             "token": token.item(), "kind": kind.item(), "where": where.item()}
    if "bin_logits" in outputs:  # a bin_edges network: which bins of each kept token are occupied
        bins = F.binary_cross_entropy_with_logits(outputs["bin_logits"],
                                                  bin_targets(batch["bin_family"], outputs["kept"], stride))
        loss = loss + bins
        terms["bins"] = bins.item()
    return loss, {"loss": loss.item(), **terms}
