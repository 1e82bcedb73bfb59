"""BENCHMARKS §5: classifier-gradient editing on an unconditional digits generator, and SeFa / PCA directions.

1. Train an unconditional DCGAN (ngf = ndf = 32, BCE, EMA 0.999) on the 16×16 digits, or reuse it from --work.
2. Train the editing classifier (timm `test_resnet`, `gantool classifier train`'s defaults) and, apart from it, the
   independent judge: an SVC on the real digits (benchmarks/digit_judge.py). Edits are steered by the first and
   scored by the second, so a classifier fooled by adversarial pixels does not count as a success.
3. For each target digit, edit --per-target random latents (z only; G and the classifier frozen) for K steps with
   penalties 0 and P. Report the share the judge reads as the target before and after (and at any step ≤ K), and
   the mean |change| of the other nine logits.
4. SeFa and PCA: 5 directions each; the mean |Δpixel| between α = −3 and +3 beside random unit directions, the share
   of samples whose judged digit changes, and the largest |cosine| between two directions' mean pixel changes.

Runs in a few CPU minutes (most of it the GAN); writes benchmarks/results/controllable.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.digit_judge import train_judge

IMAGE_SIZE = 16


def train_gan(work: Path, steps: int, seed: int) -> Path:
    from gantoolkit.config import Choice, RunConfig
    from gantoolkit.training.run import train

    run = work / "digits-unconditional"
    if (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()):
        return run
    config = RunConfig(arch=Choice("dcgan", {"ngf": 32, "ndf": 32}), loss=Choice("bce"), cond=Choice("none"),
                       steps=steps, ema=0.999, seed=seed, device="cpu", image_size=IMAGE_SIZE,
                       sample_every=steps, checkpoint_every=steps, log_every=500)
    return train(config, run)


def editing_classifier(work: Path, seed: int):
    from gantoolkit.builtin.datasets.digits import Digits
    from gantoolkit.classifiers import load_classifier, save_classifier, train_classifier
    from gantoolkit.data import DataRequest

    path = work / "classifier.safetensors"
    if not path.exists():
        clf, _ = train_classifier(Digits().load(DataRequest(image_size=IMAGE_SIZE)), seed=seed)
        save_classifier(path, clf)
    return load_classifier(path)


def run_edits(model, clf, judge, per_target: int, steps: int, step_size: float, penalty: float) -> dict:
    from gantoolkit.controllers.editing import edit_latents

    before = after = anytime = clf_after = 0
    other = []
    per_digit = {}
    for target in range(10):
        z = model.latents(per_target, seed=1000 + target)
        result = edit_latents(model, clf, z, target, steps, step_size, penalty, keep_path=True)
        assert result.z_path is not None
        path = result.z_path.reshape(-1, z.shape[1])
        reads = torch.from_numpy(judge.predict(model.generate(path))).view(steps + 1, per_target)
        hits = reads == target
        before += int(hits[0].sum())
        after += int(hits[-1].sum())
        anytime += int(hits.any(0).sum())
        clf_after += int((result.logits_after.argmax(1) == target).sum())
        other.append(result.other_logit_change())
        per_digit[target] = round(float(hits[-1].float().mean()), 3)
    n = 10 * per_target
    return {"penalty": penalty, "before": before / n, "after": after / n, "within_k": anytime / n,
            "classifier_after": clf_after / n, "other_logit_change": float(torch.cat(other).mean()),
            "after_per_digit": per_digit}


def direction_effects(model, judge, directions, n: int = 64, alpha: float = 3.0) -> dict:
    z = model.latents(n, seed=77)
    changes, flips, sizes = [], [], []
    for d in directions:
        lo, hi = model.generate(z - alpha * d), model.generate(z + alpha * d)
        diff = (hi - lo) * 127.5  # in 0..255 pixel units
        sizes.append(float(diff.abs().mean()))
        changes.append(diff.mean(0).flatten())
        flips.append(float((torch.from_numpy(judge.predict(lo)) != torch.from_numpy(judge.predict(hi))).float().mean()))
    unit = torch.stack(changes)
    unit = unit / unit.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (unit @ unit.T - torch.eye(len(unit))).abs().max()
    return {"mean_abs_pixel_change": sizes, "judged_digit_changes": flips, "max_abs_cosine_between": float(cos)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="Keep the GAN and the classifier here (reused when present).")
    parser.add_argument("--gan-steps", type=int, default=4000)
    parser.add_argument("--per-target", type=int, default=30)
    parser.add_argument("--steps", type=int, default=30, help="K: gradient steps per edit")
    parser.add_argument("--step-size", type=float, default=0.5)
    parser.add_argument("--penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny models: 1 is fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="gantool-controllable-"))
    work.mkdir(parents=True, exist_ok=True)

    from gantoolkit.registry import get_registry
    from gantoolkit.sampling.generator import load_generator

    t0 = time.perf_counter()
    run = train_gan(work, args.gan_steps, args.seed)
    t_gan = time.perf_counter() - t0
    clf = editing_classifier(work, args.seed)
    judge = train_judge(IMAGE_SIZE, args.seed)
    model = load_generator(run)
    samples = model.generate(model.latents(1000, seed=5))
    agreement = float((torch.from_numpy(judge.predict(samples)) == clf.predict(samples)).float().mean())
    print(f"generator: {model.checkpoint.path} ({t_gan:.0f} s); editing classifier {clf.info.backbone} held-out "
          f"{clf.info.held_out_accuracy:.1%}; judge (SVC) held-out {judge.held_out_accuracy:.1%}, after the "
          f"{IMAGE_SIZE}px round trip {judge.round_trip_accuracy:.1%}; judge and classifier agree on "
          f"{agreement:.1%} of raw samples")

    t1 = time.perf_counter()
    edits = [run_edits(model, clf, judge, args.per_target, args.steps, args.step_size, p)
             for p in (0.0, args.penalty)]
    t_edit = time.perf_counter() - t1
    n = 10 * args.per_target
    print(f"\nclassifier-gradient editing: {n} random latents ({args.per_target} per target digit), "
          f"K = {args.steps} steps of {args.step_size}, judged by the SVC")
    print(f"{'penalty':>8} {'before':>8} {'after':>8} {'within K':>9} {'clf after':>10} {'|Δ other logits|':>17}")
    for e in edits:
        print(f"{e['penalty']:8.1f} {e['before']:8.1%} {e['after']:8.1%} {e['within_k']:9.1%} "
              f"{e['classifier_after']:10.1%} {e['other_logit_change']:17.3f}")
    print("target (course / issue): before about 10%, after at least 80%; the penalty lowers |Δ other logits|")

    registry = get_registry()
    directions = {}
    g = torch.Generator().manual_seed(3)
    random_dirs = torch.randn(5, model.latent_dim, generator=g)
    random_dirs = random_dirs / random_dirs.norm(dim=1, keepdim=True)
    rows = {"random": direction_effects(model, judge, random_dirs)}
    for method in ("sefa", "pca"):
        found = registry.create("controller", method, {"num": 5}).find(model)
        directions[method] = found.extra
        rows[method] = direction_effects(model, judge, found.vectors)
    print("\ndirections (α from −3 to +3, 64 samples): mean |Δpixel| (0-255) per direction; share of samples whose "
          "judged digit changes; largest |cos| between two directions' mean changes")
    for name, r in rows.items():
        sizes = " ".join(f"{s:5.1f}" for s in r["mean_abs_pixel_change"])
        flips = " ".join(f"{f:4.0%}" for f in r["judged_digit_changes"])
        print(f"{name:>7}  |Δpixel| {sizes}   digit changes {flips}   max|cos| {r['max_abs_cosine_between']:.2f}")

    out = Path(__file__).parent / "results" / "controllable.json"
    out.parent.mkdir(exist_ok=True)
    result = {
        "generator": {"checkpoint": str(model.checkpoint.path), "arch": "dcgan ngf=ndf=32", "loss": "bce",
                      "ema": 0.999, "steps": model.checkpoint.step, "image_size": IMAGE_SIZE, "train_s": t_gan},
        "editing_classifier": {"backbone": clf.info.backbone, "held_out_accuracy": clf.info.held_out_accuracy},
        "judge": {"held_out_accuracy": judge.held_out_accuracy, "round_trip_accuracy": judge.round_trip_accuracy,
                  "agreement_with_classifier_on_samples": agreement},
        "edit_settings": {"per_target": args.per_target, "steps": args.steps, "step_size": args.step_size},
        "edits": edits, "edit_s": t_edit,
        "directions": rows, "direction_details": directions,
        "targets": {"before": "about 10%", "after": ">= 80%"},
        "torch": torch.__version__, "threads": args.threads,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
