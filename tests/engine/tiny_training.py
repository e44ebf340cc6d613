"""A tiny model and data set for the engine tests; run under torchrun it trains and saves weights.

``torchrun --standalone --nproc_per_node 2 tiny_training.py OUT_DIR`` writes
``OUT_DIR/rank{r}.safetensors`` for every rank.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn as nn


class KeyedData(torch.utils.data.Dataset):
    """16 fixed points with a per-sample jitter drawn from the sample's own seed."""

    def __init__(self, n: int = 16) -> None:
        gen = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 6, generator=gen)
        self.y = (self.x[:, :1] * 2 - self.x[:, 1:2]).squeeze(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key):
        index, seed = key
        jitter = torch.from_numpy(np.random.default_rng(seed).normal(0, 0.1, 6).astype(np.float32))
        return {"x": self.x[index] + jitter, "y": self.y[index]}


class TinyNet(nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.body(x)).squeeze(1)

    def param_groups(self, lr, weight_decay):
        return [
            {"params": list(self.body.parameters()), "lr": lr, "weight_decay": weight_decay},
            {"params": list(self.head.parameters()), "lr": 10 * lr, "weight_decay": weight_decay},
        ]


def mse(model, batch):
    return nn.functional.mse_loss(model(batch["x"]), batch["y"])


def make(dropout: float = 0.0, seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(dropout)


def main(out_dir: str) -> None:
    from seenet._io import save_state_dict_file
    from seenet.engine import TrainSettings, cleanup, fit

    torch.set_num_threads(1)
    model = make()
    settings = TrainSettings(iterations=6, batch_size=4, lr=0.01, checkpoint_every=3, log_every=2)
    summary = fit(model, KeyedData(), mse, settings, out_dir, device="cpu", progress=False)
    save_state_dict_file(model.state_dict(), f"{out_dir}/rank{summary['rank']}.safetensors")
    assert summary["world_size"] == 2, summary
    cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
