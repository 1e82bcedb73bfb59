"""Built-in losses: BCE (non-saturating or minimax), WGAN with weight clipping, WGAN-GP."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_losses(register):
    register("bce", "gantoolkit.builtin.losses.bce:BCE",
             summary="binary cross-entropy on logits; non-saturating G loss, optional label smoothing")
    register("wgan", "gantoolkit.builtin.losses.wasserstein:WGAN",
             summary="Wasserstein loss, 1-Lipschitz by weight clipping (c=0.01, RMSprop 5e-5, 5 critic steps)")
    register("wgan-gp", "gantoolkit.builtin.losses.wasserstein:WGANGP",
             summary="Wasserstein loss with gradient penalty (lambda=10, Adam 1e-4 (0, 0.9), 5 critic steps)")
