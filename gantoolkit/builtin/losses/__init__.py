"""Built-in losses: BCE (non-saturating or minimax), WGAN with weight clipping, WGAN-GP, relativistic pairing, least
squares."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_losses(register):
    register("bce", "gantoolkit.builtin.losses.bce:BCE",
             summary="binary cross-entropy on logits; non-saturating G loss, optional label smoothing, R1 and R2")
    register("wgan", "gantoolkit.builtin.losses.wasserstein:WGAN",
             summary="Wasserstein loss, 1-Lipschitz by weight clipping (c=0.01, RMSprop 5e-5, 5 critic steps)")
    register("wgan-gp", "gantoolkit.builtin.losses.wasserstein:WGANGP",
             summary="Wasserstein loss with gradient penalty (lambda=10, Adam 1e-4 (0, 0.9), 5 critic steps)")
    register("rpgan", "gantoolkit.builtin.losses.relativistic:RPGAN",
             summary="relativistic pairing loss with R1 and R2 penalties (R3GAN; r1=1, r2=1, Adam 2e-4 (0, 0.99))")
    register("lsgan", "gantoolkit.builtin.losses.least_squares:LSGAN",
             summary="least-squares loss (Mao et al. 2017): real scores to 1, fake to 0")
