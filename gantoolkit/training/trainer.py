"""The alternating GAN training loop (Goodfellow et al., Algorithm 1, with k = n_critic critic steps)."""

from __future__ import annotations

import datetime
import functools
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from gantoolkit.components import ControllerContext, PenaltyContext
from gantoolkit.data import Dataset, batches_for
from gantoolkit.device import amp_dtype, autocast, channels_last, compile_models, configure, grad_scaler
from gantoolkit.errors import CheckpointError, ConfigError, GanToolkitError
from gantoolkit.files import runs
from gantoolkit.files.checkpoint import (
    TRAINING,
    Checkpoint,
    atomic_write,
    encode_metadata,
    optimizer_from_tensors,
    optimizer_to_tensors,
    prefixed,
    write_checkpoint,
)
from gantoolkit.files.images import png_bytes, preview
from gantoolkit.models import GanModels
from gantoolkit.training.distributed import SINGLE, Processes, check_config
from gantoolkit.training.optim import EMA, Update, decay_factor, plan_optimizers
from gantoolkit.training.progress import Monitor
from gantoolkit.training.recovery import LossGuard, NonFiniteError, Rollback

GRID_SAMPLES = 64
#: a sample grid shows one column per class for at most this many classes (the first ones: stacked digits have 1,000)
MAX_GRID_CLASSES = 32
#: RUN/samples/final.png: this many samples a row, one row per class (at most MAX_FINAL_ROWS) or this many rows
FINAL_COLUMNS = 10
MAX_FINAL_ROWS = 32
#: a process resumed without saved RNG states reseeds with step * this (see _load_rank_states)
RANK_STEP_STRIDE = 1_000_003


class TrainingInterrupted(GanToolkitError):
    exit_code = 130


class Trainer:
    """Owns the models, optimizers, data stream and RNG of one run, and writes the run directory."""

    def __init__(self, models: GanModels, dataset: Dataset, run_dir: Path, device: torch.device,
                 processes: Processes = SINGLE) -> None:
        cfg = self.cfg = models.config
        self.models, self.run_dir, self.device, self.info = models, Path(run_dir), device, dataset.info
        self.procs = processes
        check_config(processes, cfg)
        configure(device)
        layout = {"memory_format": torch.channels_last} if channels_last(device, self.info.is_image) else {}
        self.G = models.generator.to(device, **layout)  # type: ignore[call-overload]  # stubs lack to(device, memory_format=)
        self.D = models.critic.to(device, **layout)  # type: ignore[call-overload]  # stubs lack to(device, memory_format=)
        processes.broadcast_parameters(self.G, self.D)
        self.loss = models.loss
        self.n_critic = cfg.n_critic or self.loss.n_critic
        self.amp = amp_dtype(device, cfg.amp)
        self.plan = plan_optimizers(cfg, self.loss)
        self.opt_g = self.plan.build(self.G.parameters(), self.plan.lr_g)
        self.opt_d = self.plan.build(self.D.parameters(), self.plan.lr_d)
        average = processes.average_gradients if processes.active else None
        self.update_d = Update(self.opt_d, grad_scaler(device, self.amp), average)
        self.update_g = Update(self.opt_g, grad_scaler(device, self.amp), average)
        # what the step calls: G and D.score_and_features, compiled with --compile (the modules stay eager)
        self.forward_g, self.forward_d = compile_models(self.G, self.D) if cfg.compile else (
            self.G, self.D.score_and_features)
        self.ema = EMA(self.G, cfg.ema) if cfg.ema > 0 else None
        self.batches = batches_for(dataset, cfg.batch_size, device, cfg.seed, processes, bool(layout), cfg.workers)
        self.requested_batch_size = cfg.batch_size
        cfg.batch_size = self.batches.batch_size  # a batch larger than the data is the data: say and save that
        self._probe(self.batches.batch_size // processes.world_size)
        self.rng = torch.Generator(device=device).manual_seed(processes.rank_seed(cfg.seed + 1))
        self.step = 0
        self.fixed = self._fixed_inputs()
        self._sums: torch.Tensor | None = None
        self._count = 0
        self._penalty = torch.zeros((), device=device)
        self.monitor: Monitor | None = None  # during fit: where sample grids are announced to the loggers
        self._first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self._step_counter = torch.zeros((), dtype=torch.long, device=device)
        self._stop_signal: str | None = None
        self.last_checkpoint: Path | None = None
        self.tracker = self._make_tracker(dataset)
        self.rollback = Rollback() if cfg.on_nan == "rollback" else None
        self.guard = LossGuard()  # losses that explode while staying finite count as NaN

    def _probe(self, n: int) -> None:
        """The generator and the critic run once on a batch of the size training uses, before anything is written,
        so a batch too small for their layers (BatchNorm needs more than one value per channel) is refused in one
        line instead of failing at the first step. Their buffers and the random streams are left as they were."""
        buffers = [(b, b.clone()) for module in (self.G, self.D) for b in module.buffers()]
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                z, labels, codes = self.models.sample_inputs(n, torch.Generator(device=self.device).manual_seed(0),
                                                             self.device)
                with autocast(self.device, self.amp):
                    self.D.score_and_features(self.G(z, labels, codes), labels)
        except ValueError as e:  # what torch's normalisation layers raise for a batch too small
            data = f" (the data has {len(self.batches.data)} examples)" \
                if self.batches.batch_size < self.requested_batch_size else ""
            raise ConfigError(f"the models cannot train on batches of {n}{data}: {str(e).splitlines()[0]}",
                              "use a larger --batch-size (BatchNorm layers need at least 2 samples)") from None
        finally:
            for buffer, saved in buffers:
                buffer.copy_(saved)

    # -- one training step ------------------------------------------------------------------------------------

    def train_step(self) -> dict[str, torch.Tensor]:
        """n_critic critic updates on real and detached fake batches, then one generator update: on fresh noise
        (`--g-batch fresh`, the course's algorithm) or on the last critic step's fakes, generated once with their
        graph kept (`--g-batch reuse`, as pytorch/examples' DCGAN does: one generator pass fewer)."""
        reuse = self.cfg.g_batch == "reuse"
        self.D.requires_grad_(True)
        self._penalty.zero_()
        for k in range(self.n_critic):
            loss_d, fake = self.critic_step(k, keep_graph=reuse and k == self.n_critic - 1)
        self.D.requires_grad_(False)
        loss_g = self.generator_step(*(fake if reuse else self.fresh_fakes(len(fake[0]))))
        return {**self._losses(loss_d, loss_g), "penalty": self._penalty / self.n_critic, **self._augment_scalars()}

    def fresh_fakes(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """n new samples (classes drawn uniformly) with the generator's graph, for the generator step."""
        z, y, codes = self.models.sample_inputs(n, self.rng, self.device)
        with autocast(self.device, self.amp):
            return self.forward_g(z, y, codes), y, codes

    def critic_step(self, k: int, keep_graph: bool = False) -> tuple[torch.Tensor, tuple]:
        """One critic update; returns its loss and the fake batch with its labels and codes (the fakes keep the
        generator's graph when `keep_graph`)."""
        D, loss, models = self.D, self.loss, self.models
        real, y = self.batches.next()
        y_fake = y if models.conditioning.requires_labels else None
        z, y_fake, codes = models.sample_inputs(len(real), self.rng, self.device, labels=y_fake)
        with autocast(self.device, self.amp):
            with torch.set_grad_enabled(keep_graph):
                fake_g = self.forward_g(z, y_fake, codes)  # G(z, y, codes), compiled with --compile
            fake = fake_g.detach()
            real, fake = self._augment(real), self._augment(fake)  # what the critic sees (--augment), penalties too
            real_s, real_h = self.forward_d(real, y)  # D.score_and_features(x, y), compiled with --compile
            if loss.needs_real_scores:  # the generator step scores this batch again (relativistic losses)
                self._real_batch = real, y
            self._observe(real_s)
            fake_s, fake_h = self.forward_d(fake, y_fake)
            loss_d = loss.discriminator_loss(real_s.float(), fake_s.float())
            loss_d = loss_d + self._controller_terms("discriminator", (fake, fake_h, fake_s), codes, y_fake,
                                                     (real, real_h, real_s, y))
            critic = functools.partial(D, labels=y)  # eager: the penalty differentiates twice
            penalty = loss.penalty(PenaltyContext(critic, real, fake, self.rng, self.step * self.n_critic + k,
                                                  self.update_d.scaler))  # fp16: its loss scale
        if penalty is not None:
            loss_d = loss_d + penalty
        self.update_d(loss_d)  # backward, average over processes, step (loss-scaled under fp16)
        if penalty is not None:  # the log's mean penalty, on the device (no sync); 0 for an update fp16 skipped
            skipped = self.update_d.skipped
            value = penalty.detach().float()
            self._penalty += value if skipped is None else torch.where(skipped, 0.0, value)
        loss.after_discriminator_step(D)
        return loss_d, (fake_g, y_fake, codes)

    def generator_step(self, fake: torch.Tensor, labels: torch.Tensor | None,
                       codes: torch.Tensor | None) -> torch.Tensor:
        """One generator update through the (frozen) critic, then the EMA."""
        with autocast(self.device, self.amp):
            fake = self._augment(fake)  # differentiable: the generator learns through it
            fake_s, fake_h = self.forward_d(fake, labels)
            if self.loss.needs_real_scores:  # paired with the reals of the last critic step, as the critic sees them
                with torch.no_grad():
                    real_s, _ = self.forward_d(*self._real_batch)
                relativistic: Any = self.loss  # generator_loss(fake_scores, real_scores)
                loss_g = relativistic.generator_loss(fake_s.float(), real_s.float())
            else:
                loss_g = self.loss.generator_loss(fake_s.float())
            loss_g = loss_g + self._controller_terms("generator", (fake, fake_h, fake_s), codes, labels)
        self.update_g(loss_g)
        if self.ema is not None:
            self.ema.update(self.G)
        return loss_g

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the critic sees it while training: through the run's augmentation, with draws of its own from
        the run's RNG (so it resumes bit for bit); the batch itself without one."""
        augmentation = self.models.augment
        return x if augmentation is None else augmentation.augment(x, self.rng)

    def _observe(self, real_scores: torch.Tensor) -> None:
        """The critic's scores on the (augmented) reals, centred on the loss's midpoint, for an augmentation that
        adapts (ADA's p)."""
        if self.models.augment is not None:
            procs = self.procs
            total = (lambda t: procs.mean(t) * procs.world_size) if procs.active else None
            midpoint = self.loss.score_midpoint
            scores = real_scores.detach()
            self.models.augment.observe(scores - midpoint if midpoint else scores, total)

    def _augment_scalars(self) -> dict[str, torch.Tensor]:
        """What the augmentation logs with the losses (ADA's `ada_p`), as device tensors."""
        return self.models.augment.scalars() if self.models.augment is not None else {}

    def set_learning_rates(self, factor: float) -> None:
        """Both optimizers at `factor` times their base rates (a host-side float: no sync). The base rate is kept in
        each parameter group as `initial_lr`, as torch's schedulers do, so it is saved in checkpoints and a rollback
        (which halves it) and the schedule compose."""
        for optimizer in (self.opt_g, self.opt_d):
            for group in optimizer.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor

    def rates(self) -> dict[str, float]:
        """The learning rates now (host floats: no sync), for the log."""
        return {"lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"]}

    def set_base_rates(self, lr_g: float | None, lr_d: float | None) -> None:
        """New base learning rates (`--lr` on resume); None keeps a network's rate. Saved in later checkpoints, and
        `--lr-decay` scales them from the next step on."""
        for optimizer, lr in ((self.opt_g, lr_g), (self.opt_d, lr_d)):
            for group in optimizer.param_groups if lr is not None else ():
                group["lr"] = group["initial_lr"] = lr

    def _losses(self, loss_d: torch.Tensor, loss_g: torch.Tensor) -> dict[str, torch.Tensor]:
        """The step's losses for the log. Under fp16 an update the loss scaler skipped (its gradients overflowed, as
        they do while the scale is being found) logs 0 and counts in `amp_skipped`, instead of passing for a NaN."""
        losses = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
        if self.update_d.skipped is None or self.update_g.skipped is None:
            return losses
        skipped_d, skipped_g = self.update_d.skipped, self.update_g.skipped
        return {"loss_d": torch.where(skipped_d, 0.0, losses["loss_d"]),
                "loss_g": torch.where(skipped_g, 0.0, losses["loss_g"]),
                "amp_skipped": (skipped_d | skipped_g).float()}

    def _controller_terms(self, role: str, fakes: tuple, codes, y_fake, reals: tuple = (None,) * 4):
        """The sum of the conditioning's and every controller's `{role}_term`, each given its own critic module;
        `fakes` is (batch, critic features, critic scores), `reals` the same and labels (in a critic step only)."""
        (fake, fake_h, fake_s), (real, real_h, real_s, y_real) = fakes, reals
        parts: list[tuple[Any, Any]] = [(self.models.conditioning, self.D.cond_module)]
        for name, controller in self.models.controllers.items():
            module = self.D.controllers[name] if name in self.D.controllers else None  # noqa: SIM401 (ModuleDict)
            parts.append((controller, module))
        total: Any = 0.0
        for component, module in parts:
            ctx = ControllerContext(fake, fake_h, codes, y_fake, module, real, real_h, y_real, fake_s, real_s,
                                    self._score, self.rng)
            term = getattr(component, f"{role}_term")(ctx)
            if term is not None:
                total = total + term
        return total

    def _score(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The critic's raw scores of x under labels (`ControllerContext.critic`)."""
        return self.forward_d(x, labels)[0]

    # -- the loop ---------------------------------------------------------------------------------------------

    def fit(self, total_steps: int, monitor: Monitor) -> Path:
        """Train until `total_steps`, logging, sampling and checkpointing on schedule; returns the last checkpoint.
        A NaN stops the run, or with `--on-nan rollback` sends it back to its last good state (see `recovery`)."""
        self.monitor = monitor
        with monitor, self._stop_on_signals():
            if self.rollback is not None:
                self.rollback.remember(self.good_state(*self.state()))
            while True:
                try:
                    self._train_until(total_steps, monitor)
                    break
                except NonFiniteError as error:
                    if self.rollback is None:
                        raise
                    self.rollback.recover(self, error, monitor)  # through roll_back_to
        self.save_final_grid()
        return runs.checkpoint_path(self.run_dir, self.step)

    def _train_until(self, total_steps: int, monitor: Monitor) -> None:
        cfg = self.cfg
        while self.step < total_steps:
            if cfg.lr_decay:
                self.set_learning_rates(decay_factor(self.step, total_steps, cfg.lr_decay))
            self._track(self.train_step())
            self.step += 1
            monitor.advance(self.step)
            tracked = self.tracker is not None and self.step % cfg.track_every == 0
            if self.step % cfg.log_every == 0 or self.step == total_steps or tracked:
                monitor.log(self.step, {**self._flush_log(), **self.rates(), **(self.measure() if tracked else {})})
            if self.step % cfg.sample_every == 0:
                self.save_samples()
            if self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint()
            if self._stop_requested():
                self.save_checkpoint()
                raise TrainingInterrupted(
                    f"{self._stop_signal} at step {self.step}; saved {self.last_checkpoint}",
                    f"continue with: gantool train --resume {self.run_dir}",
                )
        if self.last_checkpoint is None or runs.checkpoint_path(self.run_dir, self.step) != self.last_checkpoint:
            self.save_samples()
            self.save_checkpoint()

    @contextmanager
    def _stop_on_signals(self):
        """Ctrl-C and SIGTERM finish the current step, save a checkpoint and stop cleanly."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self._stop_signal = "interrupted" if signum == signal.SIGINT else "terminated"

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _stop_requested(self) -> bool:
        """Ctrl-C or SIGTERM arrived (in a distributed run: on any process; they agree every step on the CPU)."""
        if not self.procs.any(self._stop_signal is not None):
            return False
        self._stop_signal = self._stop_signal or "stopped with another process"
        return True

    def _track(self, losses: dict[str, torch.Tensor]) -> None:
        """Accumulate losses on the device (no host sync) and remember the first non-finite step."""
        values = torch.stack(list(losses.values()))
        self._keys = list(losses)
        self._sums = values if self._sums is None else self._sums + values
        self._count += 1
        self._step_counter += 1
        bad = ~torch.isfinite(values).all()
        self._first_bad = torch.where(bad & (self._first_bad < 0), self._step_counter, self._first_bad)

    def _flush_log(self) -> dict[str, float]:
        assert self._sums is not None
        means = self.procs.mean(self._sums / self._count).tolist()  # over all processes of a distributed run
        self._sums, self._count = None, 0
        self._check_finite()
        values = dict(zip(self._keys, (round(m, 6) for m in means), strict=True))
        self._check_bounded(values, remember=True)
        return values

    def _check_finite(self) -> None:
        """Raise NonFiniteError naming the first step whose loss was NaN or infinite (reads the device flag), or, before
        a sample grid or a checkpoint, when the losses since the last log line exploded (see `LossGuard`)."""
        first_bad = int(self.procs.first_step(self._first_bad))
        if first_bad >= 0:
            raise self._non_finite(first_bad, "a loss")
        if self._sums is not None and self._count:
            partial = self.procs.mean(self._sums / self._count).tolist()
            self._check_bounded(dict(zip(self._keys, partial, strict=True)), remember=False)

    def _check_bounded(self, values: dict[str, float], remember: bool) -> None:
        found = self.guard.check(self.step, values, remember)
        if found is not None:
            raise self._non_finite(self.step, *found)

    def _non_finite(self, step: int, what: str, problem: str = "became NaN or infinite") -> NonFiniteError:
        """The error for a diverged run, its hint a command that works (resume with a tenth of the current rate)."""
        lr = max(group["lr"] for opt in (self.opt_g, self.opt_d) for group in opt.param_groups)
        return NonFiniteError(step, what, self.last_checkpoint, problem, self.run_dir, lr)

    def _check_weights_finite(self) -> None:
        """Before a checkpoint: the last update may have made weights, the EMA copy or the optimizers' state
        non-finite while the losses stayed finite (Adam's second moments overflow first). One host sync."""
        parts = {"a weight": [*self.G.parameters(), *self.D.parameters()],
                 "the EMA generator": [*self.ema.module.parameters()] if self.ema is not None else [],
                 "the optimizer state": [v for opt in (self.opt_g, self.opt_d) for state in opt.state.values()
                                         for v in state.values() if isinstance(v, torch.Tensor)]}
        flags = {what: torch.stack([torch.isfinite(t).all().to(self.device) for t in tensors]).all()
                 for what, tensors in parts.items() if tensors}
        finite = dict(zip(flags, torch.stack(list(flags.values())).tolist(), strict=True)) if flags else {}
        bad = next((what for what, ok in finite.items() if not ok), None)
        if bad is not None:
            raise self._non_finite(self.step, bad)

    def good_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Checkpoint:
        """This moment's state (just gathered by `state()`) as a checkpoint held in memory, for `--on-nan rollback`."""
        return Checkpoint(self.last_checkpoint or self.run_dir, TRAINING, self.step, self.cfg, self.info, {},
                          encode_metadata(meta), tensors)

    def roll_back_to(self, good: Checkpoint, lr_factor: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """Go back to a state `good_state` made: its weights and optimizer states, the learning rates (G, D) it had
        times `lr_factor`, its step. The one method the rollback policy (`recovery.Rollback`) calls; returns the
        rates before and after."""
        old = [[(g["lr"], g.get("initial_lr")) for g in opt.param_groups] for opt in (self.opt_g, self.opt_d)]
        self.load_weights(good)  # models, EMA, optimizer states (with the rates they had then)
        for opt, rates in zip((self.opt_g, self.opt_d), old, strict=True):
            for group, (lr, base) in zip(opt.param_groups, rates, strict=True):
                group["lr"] = lr * lr_factor
                if base is not None:  # the rate --lr-decay scales (see set_learning_rates)
                    group["initial_lr"] = base * lr_factor
        self.restart_from(good.step)
        new = tuple(opt.param_groups[0]["lr"] for opt in (self.opt_g, self.opt_d))
        return (old[0][0][0], old[1][0][0]), (new[0], new[1])

    def restart_from(self, step: int) -> None:
        """Continue counting from `step` with a clean loss log (after a resume or a rollback)."""
        self.step = step
        self._step_counter.fill_(step)
        self._first_bad.fill_(-1)
        self._sums, self._count = None, 0
        self.guard.forget_after(step)

    def _make_tracker(self, dataset: Dataset) -> Any:
        """Metrics named by `--track`, computed every `--track-every` steps outside the training step."""
        if not self.cfg.track:
            return None
        from gantoolkit.evaluation import Tracker

        conditional = self.models.conditioning.requires_labels and self.info.labelled
        return Tracker(list(self.cfg.track), dataset, conditional, self.cfg.track_n, self.cfg.seed, self.device)

    def measure(self) -> dict[str, Any]:
        """The tracked metrics of the current sampler, from fixed latents (the training's RNG is not touched)."""
        if not self.procs.is_main:  # only rank 0 logs them
            return {}
        cpu = torch.device("cpu")
        return self.tracker.measure(self.sampler, lambda n, rng: self.models.sample_inputs(n, rng, cpu))

    # -- outputs ------------------------------------------------------------------------------------------------

    def _fixed_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The same latents (seeded from the run's seed) for every sample grid; one column per class (of the first
        MAX_GRID_CLASSES)."""
        k = self._grid_classes() or 0
        n = GRID_SAMPLES if self.info.is_image else 2500
        if k and self.info.is_image:
            n = k * -(-GRID_SAMPLES // k)
        cpu = torch.Generator().manual_seed(self.cfg.seed)
        z = torch.randn(n, self.cfg.latent_dim, generator=cpu)
        labels = torch.arange(n) % k if k else None
        codes = self.models.sample_codes(n, cpu, torch.device("cpu"))
        return tuple(t.to(self.device) if t is not None else None for t in (z, labels, codes))  # type: ignore[return-value]

    def _grid_classes(self) -> int | None:
        """The columns of a conditional model's sample grids: its classes, at most MAX_GRID_CLASSES; None if none."""
        k = self.models.conditioning.num_classes if self.models.conditioning.requires_labels else 0
        return min(k, MAX_GRID_CLASSES) or None

    @property
    def sampler(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.G

    @torch.no_grad()
    def picture(self, z: torch.Tensor, labels: torch.Tensor | None, codes: torch.Tensor | None,
                cols: int | None) -> torch.Tensor | None:
        """What the sampler (the EMA generator when there is one) makes of these inputs, as a grid or scatter."""
        G = self.sampler
        was_training = G.training
        G.eval()
        samples = G(z, labels, codes).float()
        G.train(was_training)
        return preview(samples, self.info, cols=cols)

    def save_samples(self) -> None:
        self._check_finite()  # nothing is written after a NaN
        if not self.procs.is_main:
            return
        picture = self.picture(*self.fixed, cols=self._grid_classes())
        if picture is not None:
            path, payload = runs.sample_path(self.run_dir, self.step), png_bytes(picture)
            atomic_write(path, payload)
            if self.monitor is not None:
                self.monitor.image(self.step, path.name, payload)

    def save_final_grid(self) -> None:
        """RUN/samples/final.png at the end of a run: ten samples a row, one row per class for a conditional model
        (a 10×10 grid otherwise; the scatter of 2-D data), from latents seeded with the run's seed."""
        if not self.procs.is_main:
            return
        k = self.models.conditioning.num_classes if self.models.conditioning.requires_labels else 0
        rows = min(k, MAX_FINAL_ROWS) if k else FINAL_COLUMNS
        n = rows * FINAL_COLUMNS if self.info.is_image else len(self.fixed[0])
        cpu = torch.Generator().manual_seed(self.cfg.seed)
        z = torch.randn(n, self.cfg.latent_dim, generator=cpu)
        labels = None
        if k:
            labels = torch.arange(rows).repeat_interleave(FINAL_COLUMNS) if self.info.is_image else torch.arange(n) % k
        codes = self.models.sample_codes(n, cpu, torch.device("cpu"))
        picture = self.picture(z.to(self.device), labels.to(self.device) if labels is not None else None,
                               codes.to(self.device) if codes is not None else None, cols=FINAL_COLUMNS)
        if picture is not None:
            atomic_write(runs.final_sample_path(self.run_dir), png_bytes(picture))

    # -- state --------------------------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {**prefixed("generator", self.G.state_dict()), **prefixed("critic", self.D.state_dict())}
        if self.ema is not None:
            tensors.update(prefixed("ema", self.ema.state_dict()))
        if self.models.augment is not None:  # ADA's p and its running sums
            tensors.update(prefixed("augment", self.models.augment.state_dict()))
        og, og_meta = optimizer_to_tensors("optim.generator", self.opt_g.state_dict())
        od, od_meta = optimizer_to_tensors("optim.critic", self.opt_d.state_dict())
        tensors.update(og)
        tensors.update(od)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.train"] = self.rng.get_state()
        tensors.update(self._rank_states())
        if self.device.type == "cuda":
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        from gantoolkit import __version__
        meta = {
            "kind": TRAINING,
            "step": str(self.step),
            "config": self.cfg.dumps(),
            "data": self.info.to_json(),
            "components": self.models.provenance,
            "optim": {"generator": og_meta, "critic": od_meta},
            "data_state": self.batches.state_dict(),
            **self._precision_and_processes(),
            "gantoolkit_version": __version__,
            "torch_version": torch.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        return tensors, meta

    def save_checkpoint(self) -> Path:
        self._check_finite()
        self._check_weights_finite()
        path = runs.checkpoint_path(self.run_dir, self.step)
        tensors, meta = self.state()
        if self.procs.is_main:  # the one writer (every process took part in gathering the state)
            if self.cfg.keep_checkpoints > 1:  # room first: a run killed between writing and pruning would hold one
                runs.prune_checkpoints(self.run_dir, self.cfg.keep_checkpoints - 1)  # more, which a resume keeps
            write_checkpoint(path, tensors, meta)
            runs.prune_checkpoints(self.run_dir, self.cfg.keep_checkpoints)
        self.last_checkpoint = path
        if self.rollback is not None:
            self.rollback.remember(self.good_state(tensors, meta))
        return path

    def load_state(self, ckpt: Checkpoint) -> None:
        """Restore everything needed for the next step to be the one an uninterrupted run would take."""
        if ckpt.kind != TRAINING:
            raise CheckpointError(f"{ckpt.path} holds a generator only and cannot be resumed")
        self.load_weights(ckpt)
        try:
            torch.set_rng_state(ckpt.tensors["rng.torch"])
            self.rng.set_state(ckpt.tensors["rng.train"])
            self._load_rank_states(ckpt)
            self.batches.load_state_dict(ckpt.json("data_state"))
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt.path} has a damaged RNG or data state ({e})",
                                  "use an earlier checkpoint") from None
        if self.device.type == "cuda":
            states = [ckpt.tensors[k] for k in sorted(ckpt.tensors) if k.startswith("rng.cuda.")]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)
        self.restart_from(ckpt.step)
        self.last_checkpoint = ckpt.path

    def _rank_states(self) -> dict[str, torch.Tensor]:
        """The RNG states of the other processes of a distributed run (rank 0's are `rng.torch` / `rng.train`)."""
        if not self.procs.active:
            return {}
        out = {}
        for name, state in (("torch", torch.get_rng_state()), ("train", self.rng.get_state())):
            for rank, gathered in enumerate(self.procs.gather_states(state)):
                if rank:
                    out[f"rng.{name}.rank{rank}"] = gathered
        return out

    def _precision_and_processes(self) -> dict[str, Any]:
        """Checkpoint metadata of fp16 loss scalers and of distributed runs (absent otherwise)."""
        meta: dict[str, Any] = {}
        if self.update_d.scaler is not None:
            meta["scalers"] = {"critic": self.update_d.state_dict(), "generator": self.update_g.state_dict()}
        if self.procs.active:
            meta["world_size"] = self.procs.world_size
        return meta

    def _load_rank_states(self, ckpt: Checkpoint) -> None:
        """A process other than rank 0 takes its own saved RNG states (same number of processes: the run goes on
        bit for bit), or else a fresh stream of its own derived from the seed, its rank and the step."""
        scalers = ckpt.json("scalers", {})
        self.update_d.load_state_dict(scalers.get("critic", {}))
        self.update_g.load_state_dict(scalers.get("generator", {}))
        if self.procs.is_main:
            return
        mine = f".rank{self.procs.rank}"
        if "rng.train" + mine in ckpt.tensors and "rng.torch" + mine in ckpt.tensors:
            torch.set_rng_state(ckpt.tensors["rng.torch" + mine])
            self.rng.set_state(ckpt.tensors["rng.train" + mine])
            return
        seed = self.procs.rank_seed(self.cfg.seed + 1) + ckpt.step * RANK_STEP_STRIDE
        torch.manual_seed(seed)
        self.rng.manual_seed(seed)

    def load_weights(self, ckpt: Checkpoint) -> None:
        """Generator, critic, EMA and optimizer states (learning rates included) and the augmentation's state from a
        checkpoint."""
        try:
            self.G.load_state_dict(ckpt.section("generator"))
            self.D.load_state_dict(ckpt.section("critic"))
            if self.ema is not None:
                self.ema.load_state_dict(ckpt.section("ema"))
            optim = ckpt.json("optim")
            self.opt_g.load_state_dict(optimizer_from_tensors("optim.generator", ckpt.tensors, optim["generator"]))
            self.opt_d.load_state_dict(optimizer_from_tensors("optim.critic", ckpt.tensors, optim["critic"]))
            if self.models.augment is not None:  # ADA's p goes back with the weights (also on a rollback)
                self.models.augment.load_state_dict(ckpt.section("augment"))
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt.path} does not match the models it describes ({e})") from None


def describe(trainer: Trainer) -> dict[str, Any]:
    """The effective recipe, for the start-of-run summary."""
    plan = trainer.plan
    return {
        "device": str(trainer.device) + (f" x {trainer.procs.world_size} processes" if trainer.procs.active else "")
        + (f" ({_threads(torch.get_num_threads())})" if trainer.device.type == "cpu" else ""),
        "n_critic": trainer.n_critic,
        "optimizer": plan.name,
        "lr_g": trainer.opt_g.param_groups[0]["lr"],  # a rollback may have lowered the plan's rates
        "lr_d": trainer.opt_d.param_groups[0]["lr"],
        "betas": plan.betas,
        "amp": str(trainer.amp).replace("torch.", "") if trainer.amp else "off",
        "params_g": sum(p.numel() for p in trainer.G.parameters()),
        "params_d": sum(p.numel() for p in trainer.D.parameters()),
    }


def _threads(n: int) -> str:
    return "1 thread" if n == 1 else f"{n} threads"
