"""A minimal GPT in plain PyTorch, in the spirit of nanoGPT.

Pre-norm blocks, causal scaled-dot-product attention with qk-norm (as the seed's proxy),
learned positions and tied input/output embeddings. Parameter counts are *non-embedding*
(token and position embeddings excluded, Kaplan et al.'s convention): the token-budget rule
(20 tokens per parameter) and the preset names ("25m", "125m") use that count, so that the
size of the tokenizer's vocabulary does not change the budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, dict[str, int]] = {
    # Trains in seconds on a laptop CPU: the embedded demo.
    "demo": dict(n_layer=2, n_head=4, n_embd=64, seq_len=128, vocab_size=1024),
    # Four CPU sizes for scale-aware studies offline, widths 32-128 at 2 blocks (24.8k, 55.6k,
    # 98.7k and 394.0k non-embedding parameters): a Chinchilla-like budget scaled down (a fixed
    # tokens_per_param) trains the smallest in seconds and the largest in minutes on one thread.
    "xs": dict(n_layer=2, n_head=4, n_embd=32, seq_len=128, vocab_size=512),
    "s": dict(n_layer=2, n_head=4, n_embd=48, seq_len=128, vocab_size=512),
    "m": dict(n_layer=2, n_head=4, n_embd=64, seq_len=128, vocab_size=512),
    "l": dict(n_layer=2, n_head=4, n_embd=128, seq_len=128, vocab_size=512),
    # The seed's proxy: 25.2M non-embedding parameters, 2048-token context.
    "25m": dict(n_layer=8, n_head=8, n_embd=512, seq_len=2048, vocab_size=32768),
    # The seed's scale-transfer check: 125.9M non-embedding parameters.
    "125m": dict(n_layer=10, n_head=16, n_embd=1024, seq_len=2048, vocab_size=32768),
}


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the model. ``vocab_size`` is usually overwritten by the tokenizer's."""

    vocab_size: int = 1024
    seq_len: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    mlp_ratio: int = 4
    qk_norm: bool = True
    bias: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")
        for field in ("vocab_size", "seq_len", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> GPTConfig:
        """One of :data:`PRESETS` ("demo", "xs" .. "l", "25m", "125m"), with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def replace(self, **changes: object) -> GPTConfig:
        return dataclasses.replace(self, **changes)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def n_params(self, non_embedding: bool = True) -> int:
        """Parameter count from the shape alone (equals :meth:`GPT.n_params`)."""
        d, h, b = self.n_embd, self.mlp_ratio * self.n_embd, int(self.bias)
        attn = 3 * d * d + 3 * d * b + d * d + d * b + (2 * self.head_dim if self.qk_norm else 0)
        mlp = d * h + h * b + h * d + d * b
        norms = 2 * (d + d * b)
        total = self.n_layer * (attn + mlp + norms) + (d + d * b)  # + final norm
        if not non_embedding:
            total += self.vocab_size * d + self.seq_len * d
        return total


class QKNorm(nn.Module):
    """RMSNorm per head with a learned scale, applied in the activations' dtype.

    Casting the fp32 scale to bf16/fp16 under autocast keeps torch's fused kernel.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.size(-1),), self.weight.to(x.dtype))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim, self.dropout = cfg.n_head, cfg.head_dim, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        # qk-norm: RMS-normalising queries and keys per head keeps attention logits bounded,
        # which is what lets the seed train small proxies at a fixed lr without spikes.
        self.q_norm = QKNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.k_norm = QKNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).unbind(dim=2)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hd)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, cfg.mlp_ratio * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """Decoder-only transformer; ``forward(idx)`` gives logits, with ``targets`` the loss."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied embeddings
        self.apply(self._init_weights)
        # GPT-2: scale residual projections by 1/sqrt(2 * n_layer) so depth does not grow
        # the residual stream's variance.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def n_params(self, non_embedding: bool = True) -> int:
        """Distinct parameters; non-embedding leaves out token and position embeddings."""
        n = sum(p.numel() for p in self.parameters())  # the tied head is counted once
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, vocab); with ``targets``, (logits, mean cross-entropy in nats)."""
        T = idx.size(1)
        if T > self.config.seq_len:
            raise ValueError(f"sequence of {T} tokens exceeds seq_len={self.config.seq_len}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return logits, loss

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay matrices (incl. the tied embedding), not norms or biases."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
