"""A researcher's own conv net, as sgdthermo samples it (docs/your_model.md).

``build(**model.args)`` returns the module; sgdthermo calls it once per chain under that
chain's seed, so every chain starts from the module's own initialisation.
"""

from torch import nn


def build(channels: int = 4, classes: int = 10) -> nn.Sequential:
    """Two 3×3 convolutions, GroupNorm, average pooling and a linear read-out for 8×8 images."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.GroupNorm(2, channels), nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 16, classes))
