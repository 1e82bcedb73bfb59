"""Direction finders for any trained generator: SeFa (closed form), PCA of early activations (GANSpace), and
classifier gradients.

The generator's layers are found by tracing one forward pass: the linear layers (Linear, Conv, ConvTranspose) in the
order they run. Nothing here knows which architecture built the generator.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gantoolkit.controllers.directions import DirectionFinder, Directions, generator_identity, unit_rows
from gantoolkit.errors import ConfigError
from gantoolkit.sampling.generator import LoadedGenerator

LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)


def sample_inputs(model: LoadedGenerator, n: int, seed: int):
    """n latents, labels (classes in turn, for conditional models) and codes, all named by `seed`."""
    return model.latents(n, seed), model.labels(n), model.codes(n, seed)


@torch.no_grad()
def trace_linear_layers(model: LoadedGenerator, n: int = 2, seed: int = 0) -> list[tuple[nn.Module, torch.Tensor]]:
    """(layer, its input) for each linear layer of the generator, in the order they run."""
    record: list[tuple[nn.Module, torch.Tensor]] = []
    layers = [m for m in model.generator.modules() if isinstance(m, LINEAR_LAYERS)]
    hooks = [m.register_forward_pre_hook(lambda mod, args: record.append((mod, args[0].detach()))) for m in layers]
    z, labels, codes = sample_inputs(model, n, seed)
    try:
        model.generate(z, labels, codes)
    finally:
        for h in hooks:
            h.remove()
    return record


def _check_count(num: int, limit: int, what: str) -> None:
    if num < 1:
        raise ConfigError(f"num must be at least 1, got {num}")
    if num > limit:
        raise ConfigError(f"{what} can give at most {limit} directions here, asked for {num}", f"use num={limit}")


class SeFa(DirectionFinder):
    """Closed-form factorization (Shen & Zhou 2021): the top eigenvectors of AᵀA, where A is the generator's first
    layer restricted to z (each output unit's weights normalised, as in the authors' code). Options: num."""

    def __init__(self, num: int = 5) -> None:
        self.num = num

    @torch.no_grad()
    def first_layer_matrix(self, model: LoadedGenerator) -> torch.Tensor:
        """A (outputs × latent_dim): how the first linear layer responds to each entry of z."""
        traced = trace_linear_layers(model)
        if not traced:
            raise ConfigError("sefa found no linear layer in this generator", "use --method pca")
        layer, seen = traced[0]
        z, labels, codes = sample_inputs(model, 2, 0)
        vector = model.generator.input_vector(z.to(model.device), labels, codes).float()
        width = vector.shape[1]
        if seen[0].numel() != width or not torch.allclose(seen.reshape(len(seen), -1).float(), vector, atol=1e-6):
            raise ConfigError("sefa needs a generator whose first layer acts on its input vector", "use --method pca")
        probe = torch.cat([torch.zeros(1, width), torch.eye(width)[: model.latent_dim]]).to(seen)
        out = layer(probe.reshape(len(probe), *seen.shape[1:])).reshape(len(probe), -1).float()
        return (out[1:] - out[:1]).T.cpu()

    def find(self, model: LoadedGenerator) -> Directions:
        _check_count(self.num, model.latent_dim, "sefa")
        a = self.first_layer_matrix(model)
        a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
        eigenvalues, eigenvectors = torch.linalg.eigh(a.T @ a)
        order = eigenvalues.argsort(descending=True)[: self.num]
        return Directions(unit_rows(eigenvectors[:, order].T.contiguous()), [f"sefa{i}" for i in range(self.num)],
                          "sefa", generator_identity(model), extra={"eigenvalues": eigenvalues[order].tolist()})


class PCA(DirectionFinder):
    """GANSpace (Härkönen et al. 2020) for any generator: PCA of the activations that enter linear layer `layer + 1`
    (after block `layer`), over `samples` latents; each component is carried back to z by least squares.
    Options: num, samples, layer, seed."""

    def __init__(self, num: int = 5, samples: int = 2000, layer: int = 1, seed: int = 0) -> None:
        if samples < 2 or layer < 1:
            raise ConfigError(f"pca needs samples >= 2 and layer >= 1, got samples={samples}, layer={layer}")
        self.num, self.samples, self.layer, self.seed = num, samples, layer, seed

    @torch.no_grad()
    def activations(self, model: LoadedGenerator, z, labels, codes) -> torch.Tensor:
        traced = [m for m, _ in trace_linear_layers(model)]
        if len(traced) <= self.layer:
            raise ConfigError(f"pca layer={self.layer} is too deep: this generator has {len(traced)} linear layers",
                              f"use layer=1..{max(1, len(traced) - 1)}")
        target = traced[self.layer]
        seen: list[torch.Tensor] = []
        hook = target.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().flatten(1).cpu()))
        try:
            model.generate(z, labels, codes)
        finally:
            hook.remove()
        return torch.cat(seen).float()

    def find(self, model: LoadedGenerator) -> Directions:
        _check_count(self.num, min(model.latent_dim, self.samples - 1), "pca")
        z, labels, codes = sample_inputs(model, self.samples, self.seed)
        y = self.activations(model, z, labels, codes)
        centred = y - y.mean(0)
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        components = vh[: self.num]
        x = centred @ components.T  # N × num coefficients
        back = torch.linalg.lstsq(x, z - z.mean(0)).solution  # num × latent_dim: z ≈ x · back
        variance = s**2 / (s**2).sum()
        return Directions(unit_rows(back), [f"pca{i}" for i in range(self.num)], "pca", generator_identity(model),
                          extra={"explained_variance": variance[: self.num].tolist(), "layer": self.layer,
                                 "samples": self.samples, "activation_dim": y.shape[1]})


class ClassifierDirections(DirectionFinder):
    """For each target class, the mean over `samples` latents of the unit gradient of the classifier's log-probability
    of that class with respect to z. Options: classifier (a file from `gantool classifier train`), targets (names
    or indices, comma-separated; empty: every class), samples, seed."""

    def __init__(self, classifier: str = "", targets: tuple[str, ...] = (), samples: int = 256, seed: int = 0) -> None:
        if not classifier:
            raise ConfigError("the classifier method needs a classifier", "pass --classifier clf.safetensors")
        if samples < 1:
            raise ConfigError(f"samples must be at least 1, got {samples}")
        self.classifier, self.targets, self.samples, self.seed = Path(classifier), tuple(targets), samples, seed

    def find(self, model: LoadedGenerator) -> Directions:
        from gantoolkit.classifiers import load_classifier
        from gantoolkit.controllers.editing import check_pair, frozen

        clf = load_classifier(self.classifier).to(model.device)
        check_pair(model, clf)
        indices = [clf.class_index(t) for t in self.targets] or list(range(clf.num_classes))
        z, labels, codes = sample_inputs(model, self.samples, self.seed)
        rows, agreement = [], []
        G = model.generator
        with frozen(G, clf):
            grads: dict[int, list[torch.Tensor]] = {i: [] for i in indices}
            for start in range(0, self.samples, 128):
                part = slice(start, start + 128)
                zp = z[part].to(model.device).requires_grad_(True)
                log_p = clf.logits(G(zp, _at(labels, part, model), _at(codes, part, model))).float().log_softmax(1)
                for i in indices:
                    (g,) = torch.autograd.grad(log_p[:, i].sum(), zp, retain_graph=True)
                    grads[i].append(unit_rows(g.cpu()))
        for i in indices:
            per_sample = torch.cat(grads[i])
            mean = per_sample.mean(0)
            rows.append(mean / mean.norm().clamp_min(1e-12))
            agreement.append(float((per_sample @ rows[-1]).mean()))
        names = [clf.class_names[i] for i in indices]
        return Directions(torch.stack(rows), names, "classifier", generator_identity(model),
                          extra={"classifier": str(self.classifier), "mean_cosine": agreement,
                                 "samples": self.samples})


def _at(t: torch.Tensor | None, part: slice, model: LoadedGenerator) -> torch.Tensor | None:
    return t[part].to(model.device) if t is not None else None
