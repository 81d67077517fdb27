"""Token dropout: keep K = round((1 - r) * T) tokens, return them with their true indices.

fixed: keep the highest-energy tokens; on equal energy the token with lower spectral entropy (more
structured, less noise-like) is kept. gumbel: score = energy + a learned linear score; in training
top-K of Gumbel-perturbed scores with a straight-through Softmax(score / tau) weight, so the scorer
gets gradients (tau annealed by the trainer through `tau` / `set_temperature`); in eval a
deterministic top-K of the scores. Kept indices are returned in ascending order (frequency order).
"""

import torch
import torch.nn.functional as F
from torch import nn


def spectral_entropy(windows, scale_db):
    """(B, T, s) normalised dB -> (B, T) entropy (nats) of each window's linear power distribution."""
    logits = windows * (scale_db * 0.2302585093)  # ln(10)/10: dB -> natural log of power
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def gather_tokens(x, idx):
    """x (B, T, D), idx (B, K) -> (B, K, D)."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class TokenDropout(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.mode, self.n_keep, self.scale = cfg.dropout_mode, cfg.n_kept, cfg.norm_scale_db
        self.tau = 1.0
        if self.mode == "gumbel":
            self.scorer = nn.Linear(cfg.d_model, 1)
            nn.init.zeros_(self.scorer.weight)  # start as energy ranking, learn from there
            nn.init.zeros_(self.scorer.bias)
        if self.mode == "none":
            self.n_keep = cfg.n_tokens

    def forward(self, tokens, energy, windows):
        """tokens (B, T, D), energy (B, T), windows (B, T, s) -> kept tokens (B, K, D), kept (B, K) long."""
        b, t, _ = tokens.shape
        if self.mode == "none":
            return tokens, torch.arange(t, device=tokens.device).expand(b, t)
        if self.mode == "fixed":
            # Lexicographic (energy desc, entropy asc) through two stable sorts.
            by_entropy = torch.sort(spectral_entropy(windows, self.scale), dim=-1, stable=True).indices
            by_energy = torch.sort(energy.gather(1, by_entropy), dim=-1, descending=True, stable=True).indices
            kept = torch.sort(by_entropy.gather(1, by_energy[:, :self.n_keep]), dim=-1).values
            return gather_tokens(tokens, kept), kept
        score = energy + self.scorer(tokens).squeeze(-1)  # (B, T)
        if not self.training:
            kept = torch.sort(torch.topk(score, self.n_keep, dim=-1).indices, dim=-1).values
            return gather_tokens(tokens, kept), kept
        u = torch.rand_like(score).clamp_(1e-9, 1.0 - 1e-9)
        perturbed = (score - torch.log(-torch.log(u))) / self.tau
        kept = torch.sort(torch.topk(perturbed, self.n_keep, dim=-1).indices, dim=-1).values
        soft = torch.softmax(perturbed, dim=-1).gather(1, kept)  # (B, K)
        weight = 1.0 + soft - soft.detach()  # value 1, gradient of the soft selection (straight-through)
        return gather_tokens(tokens, kept) * weight.unsqueeze(-1), kept
