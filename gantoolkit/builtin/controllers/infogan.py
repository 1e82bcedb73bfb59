"""InfoGAN (Chen et al. 2016) and its semi-supervised variant, as training controllers that are also direction finders.

Codes c (categorical one-hots and continuous values in [-1, 1]) are joined to z. A Q head on the critic's penultimate
features predicts c from G(z, c); the negative variational lower bound of the mutual information I(c; G(z, c)),

    L_I = Σ_categorical CE(Q_cat(x), c_cat) + ½ Σ_continuous (Q_cont(x) − c_cont)²   (a unit-variance Gaussian),

weighted by λ is added to both losses (L_new = L_original + λ·L_I). The Q head lives in the critic, so the critic's
optimizer trains it and checkpoints save and resume it with the critic.

`ss-infogan` ties the first categorical code to the dataset's labels: Q also learns to read the labels of real
images (λ_sup · CE), so category k comes to mean class k (Spurr et al. 2017, semi-supervised InfoGAN).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gantoolkit.components import ControllerContext, TrainingController
from gantoolkit.controllers.directions import DirectionFinder, Directions, generator_identity
from gantoolkit.data import DataInfo
from gantoolkit.errors import ConfigError
from gantoolkit.sampling.generator import LoadedGenerator


class QHead(nn.Module):
    """Critic features -> categorical logits and continuous means."""

    def __init__(self, feature_dim: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.float())


class InfoGAN(TrainingController, DirectionFinder):
    """Options: categorical (sizes of the categorical codes, e.g. 10 or 10,4; empty for none), continuous (how many
    uniform codes), lambda_cat and lambda_cont (weights of their terms), hidden (width of the Q head)."""

    def __init__(self, categorical: tuple[int, ...] = (10,), continuous: int = 2, lambda_cat: float = 1.0,
                 lambda_cont: float = 0.1, hidden: int = 128) -> None:
        if any(k < 2 for k in categorical):
            raise ConfigError(f"infogan categorical codes need at least 2 categories, got {list(categorical)}")
        if continuous < 0 or hidden < 1 or lambda_cat < 0 or lambda_cont < 0:
            raise ConfigError("infogan continuous, hidden, lambda_cat and lambda_cont cannot be negative")
        if not categorical and not continuous:
            raise ConfigError("infogan needs at least one code", "set categorical=10 or continuous=2")
        self.categorical, self.continuous = tuple(categorical), continuous
        self.lambda_cat, self.lambda_cont, self.hidden = lambda_cat, lambda_cont, hidden

    # -- training ---------------------------------------------------------------------------------------------------

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous

    def sample_codes(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        parts = [F.one_hot(torch.randint(k, (n,), generator=generator, device=device), k).float()
                 for k in self.categorical]
        if self.continuous:
            parts.append(torch.rand(n, self.continuous, generator=generator, device=device) * 2 - 1)
        return torch.cat(parts, dim=1)

    def critic_module(self, feature_dim: int) -> nn.Module:
        if feature_dim < 1:
            raise ConfigError("infogan needs an architecture whose critic exposes its features (feature_dim)")
        return QHead(feature_dim, self.hidden, self.code_dim)

    def information_loss(self, q: nn.Module, features: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """λ-weighted L_I for codes (this controller's columns) and the critic's features of G(z, codes)."""
        out = q(features)
        total = out.new_zeros(())
        start = 0
        for k in self.categorical:
            target = codes[:, start : start + k].argmax(1)
            total = total + self.lambda_cat * F.cross_entropy(out[:, start : start + k], target)
            start += k
        if self.continuous:
            total = total + self.lambda_cont * 0.5 * ((out[:, start:] - codes[:, start:].float()) ** 2).sum(1).mean()
        return total

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        codes = self.own_codes(ctx.codes)
        assert ctx.module is not None and codes is not None
        return self.information_loss(ctx.module, ctx.fake_features, codes)

    def generator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        return self.discriminator_term(ctx)

    # -- reading the codes back -------------------------------------------------------------------------------------

    def slots(self) -> list[dict[str, Any]]:
        """Each code's name, kind and columns in the generator's joined codes."""
        out, start = [], self.code_offset
        for i, k in enumerate(self.categorical):
            out.append({"name": f"cat{i}", "kind": "categorical", "offset": start, "size": k})
            start += k
        for j in range(self.continuous):
            out.append({"name": f"c{j}", "kind": "continuous", "offset": start, "size": 1})
            start += 1
        return out

    def codes_with(self, base: torch.Tensor, **values: float | int) -> torch.Tensor:
        """`base` codes with some set: `cat0=3` (a category) or `c1=0.5` (a continuous value)."""
        codes = base.clone()
        slots = {s["name"]: s for s in self.slots()}
        for name, value in values.items():
            slot = slots[name]
            a, b = slot["offset"], slot["offset"] + slot["size"]
            if slot["kind"] == "categorical":
                codes[:, a:b] = F.one_hot(torch.tensor(int(value)), slot["size"]).float()
            else:
                codes[:, a] = float(value)
        return codes

    @torch.no_grad()
    def predict_codes(self, critic_features: torch.Tensor, q: nn.Module) -> dict[str, torch.Tensor]:
        """Q's reading of each code: a category index or a continuous value per sample."""
        out, start, result = q(critic_features), 0, {}
        for i, k in enumerate(self.categorical):
            result[f"cat{i}"] = out[:, start : start + k].argmax(1)
            start += k
        for j in range(self.continuous):
            result[f"c{j}"] = out[:, start + j]
        return result

    # -- the editing role -------------------------------------------------------------------------------------------

    def find(self, model: LoadedGenerator) -> Directions:
        """The trained generator's own InfoGAN codes: continuous codes as directions, categorical ones by name."""
        trained = {k: c for k, c in model.models.controllers.items() if isinstance(c, InfoGAN)}
        if not trained:
            raise ConfigError(f"{model.checkpoint.path} was not trained with InfoGAN codes",
                              "train with --controller infogan, or use --method sefa, pca or classifier")
        width = model.generator.code_dim
        names, rows, categorical = [], [], []
        for key, controller in trained.items():
            for slot in controller.slots():
                if len(trained) > 1:  # several code controllers: name each code by its controller too
                    slot["name"] = f"{key}.{slot['name']}"
                if slot["kind"] == "categorical":
                    categorical.append(slot)
                else:
                    names.append(slot["name"])
                    rows.append(F.one_hot(torch.tensor(slot["offset"]), width).float())
        vectors = torch.stack(rows) if rows else torch.zeros(0, width)
        return Directions(vectors, names, "infogan", generator_identity(model), space="codes",
                          categorical=categorical, extra={"continuous_range": [-1.0, 1.0]})


class SupervisedInfoGAN(InfoGAN):
    """InfoGAN whose first categorical code has one category per class and is tied to the labels: Q also learns to
    read real images' labels (weight lambda_sup). Needs a labelled dataset."""

    def __init__(self, continuous: int = 2, lambda_cat: float = 1.0, lambda_cont: float = 0.1,
                 lambda_sup: float = 1.0, hidden: int = 128) -> None:
        super().__init__((2,), continuous, lambda_cat, lambda_cont, hidden)  # categories set from the data
        if lambda_sup < 0:
            raise ConfigError(f"ss-infogan lambda_sup cannot be negative, got {lambda_sup}")
        self.lambda_sup = lambda_sup

    def setup(self, data: DataInfo, latent_dim: int) -> None:
        if not data.labelled:
            raise ConfigError(f"ss-infogan ties a code to labels, but {data.source!r} has none",
                              "use --controller infogan, or a labelled dataset")
        self.categorical = (data.num_classes,)

    def discriminator_term(self, ctx: ControllerContext) -> torch.Tensor | None:
        term = super().discriminator_term(ctx)
        if ctx.real_features is None or ctx.real_labels is None or not self.lambda_sup:
            return term
        assert ctx.module is not None and term is not None
        k = self.categorical[0]
        supervised = F.cross_entropy(ctx.module(ctx.real_features)[:, :k], ctx.real_labels)
        return term + self.lambda_sup * supervised
