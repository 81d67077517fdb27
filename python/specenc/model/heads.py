"""Output heads on the encoded kept tokens x_enc (B, K, D)."""

import torch
from torch import nn


class Heads(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.d_model
        self.family = nn.Linear(d, cfg.n_families)  # spectrum class (dominant emission)
        # The class is the strongest emission's, which may cover a few of K tokens: an attention pool
        # lets the head weight those tokens instead of averaging them away.
        self.family_score = nn.Linear(d, 1) if cfg.family_pool == "attention" else None
        self.token_family = nn.Linear(d, cfg.n_families)  # per-token family, 0 = unoccupied
        # s = sigmoid(W3 ReLU(W2 ReLU(W1 mean(x_enc)))), hidden anomaly_hidden
        h = cfg.anomaly_hidden
        self.anomaly = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))
        self.kind = nn.Linear(d, cfg.n_kinds)  # which anomaly, read when s is high
        self.token_anomaly = nn.Linear(d, 1)  # where: per-token anomaly logit, gives alerts frequency edges
        self.recon = nn.Linear(d, cfg.pool_stride)  # the token's s normalised bins
        # Which of the token's s bins an emission covers: a narrow emitter's extent below one token's width.
        self.bin_occupancy = nn.Linear(d, cfg.pool_stride) if cfg.bin_edges else None

    def forward(self, x, recon=True):
        """x (B, K, D) -> family_logits (B, F), token_logits (B, K, F), anomaly_logit (B,),
        kind_logits (B, n_kinds), token_anomaly_logit (B, K), recon (B, K, s) (when asked), embedding (B, D) = mean(x_enc)."""
        pooled = x.mean(dim=1)  # (B, D)
        if self.family_score is None:
            family_in = pooled
        else:
            weights = torch.softmax(self.family_score(x), dim=1)  # (B, K, 1)
            family_in = (weights * x).sum(dim=1)
        out = {
            "family_logits": self.family(family_in),
            "token_logits": self.token_family(x),
            "anomaly_logit": self.anomaly(pooled).squeeze(-1),
            "kind_logits": self.kind(pooled),
            "token_anomaly_logit": self.token_anomaly(x).squeeze(-1),
            "embedding": pooled,
        }
        if self.bin_occupancy is not None:
            out["bin_logits"] = self.bin_occupancy(x)
        if recon:
            out["recon"] = self.recon(x)
        return out
