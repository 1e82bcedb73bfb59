"""The `none` augmentation: the critic sees the batches as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gantoolkit.components import Augmentation

if TYPE_CHECKING:
    import torch

    from gantoolkit.data import DataInfo


class NoAugmentation(Augmentation):
    """The identity, for any data; it draws nothing from the run's RNG."""

    def setup(self, data: DataInfo) -> None:
        """Any data."""

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x
