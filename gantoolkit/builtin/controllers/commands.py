"""Commands of the built-in controller plugin: interpolate, arithmetic, classifier train, edit, directions.

No torch at module level: `gantool --help` imports this module to list the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gantoolkit.cli.options import CheckpointArg, DeviceOption, EmaOption, ForceOption

ClassOpt = Annotated[Optional[str], typer.Option("--class", help="Class for every image (conditional models; "
                                                                 "default the first).")]


def _fixed_inputs(model, n: int, seed: int, class_: Optional[str]):
    """Labels (one class for every sample, for conditional models) and codes (those of `seed`) for n samples."""
    labels = None
    if class_ is not None or model.conditional:
        index = model.class_index(class_ if class_ is not None else 0)
        labels = model.labels(n, index)
    codes = model.codes(1, seed)
    return labels, codes.expand(n, -1) if codes is not None else None


def interpolate(
    checkpoint: CheckpointArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.png (a strip), FILE.gif (an animation) or FILE.npz.")],
    from_seed: Annotated[int, typer.Option("--from-seed", help="Seed of the first latent.")] = 0,
    to_seed: Annotated[int, typer.Option("--to-seed", help="Seed of the last latent.")] = 1,
    frames: Annotated[int, typer.Option(help="Latents from first to last, inclusive.")] = 8,
    slerp: Annotated[bool, typer.Option("--slerp/--lerp", help="Along the sphere where Gaussian latents live, or a "
                                                               "straight line.")] = False,
    class_: ClassOpt = None,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
) -> None:
    """Walk from one seed's latent to another's."""
    from gantoolkit.controllers.latent import check_frames, seed_latent
    from gantoolkit.controllers.latent import interpolate as between
    from gantoolkit.files.images import check_output, write_images
    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.sampling.generator import load_generator

    check_frames(frames)
    output = check_output(out, (".png", ".gif", ".npz"), force, inputs=(resolve_checkpoint(checkpoint),))
    model = load_generator(checkpoint, device, prefer_ema=ema)
    z = between(seed_latent(model, from_seed), seed_latent(model, to_seed), frames, spherical=slerp)
    labels, codes = _fixed_inputs(model, frames, from_seed, class_)
    images = model.generate(z, labels, codes)
    import torch

    arrays = {"z": z, "t": torch.linspace(0, 1, frames), "seeds": torch.tensor([from_seed, to_seed])}
    typer.echo("wrote " + write_images(output, images, model.data, frames, arrays))


def arithmetic(
    checkpoint: CheckpointArg,
    expression: Annotated[str, typer.Argument(metavar="EXPR", help='Seeds joined by + and -; [a,b,c] averages, '
                                                                   'e.g. "[1,2,3] - [4,5,6] + 7".')],
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.png (terms, then the result) or FILE.npz.")],
    class_: ClassOpt = None,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
) -> None:
    """Vector arithmetic on latents: render each term and the result."""
    import torch

    from gantoolkit.controllers.latent import evaluate_expression, format_expression, parse_expression
    from gantoolkit.files.images import check_output, write_images
    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.sampling.generator import load_generator

    terms = parse_expression(expression)
    output = check_output(out, (".png", ".npz"), force, inputs=(resolve_checkpoint(checkpoint),))
    model = load_generator(checkpoint, device, prefer_ema=ema)
    parts, result = evaluate_expression(model, terms)
    z = torch.cat([parts, result[None]])
    labels, codes = _fixed_inputs(model, len(z), terms[0].seeds[0], class_)
    images = model.generate(z, labels, codes)
    arrays = {"z": z, "signs": torch.tensor([t.sign for t in terms])}
    typer.echo(f"{format_expression(terms)} = the last image")
    typer.echo("wrote " + write_images(output, images, model.data, len(z), arrays))


def edit(
    checkpoint: CheckpointArg,
    classifier: Annotated[Path, typer.Option("--classifier", help="A classifier from `gantool classifier train`.")],
    target: Annotated[str, typer.Option("--target", help="Class to move towards: a name or an index.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.png (before and after rows) or FILE.npz.")],
    n: Annotated[int, typer.Option("--n", help="How many latents to edit.")] = 8,
    steps: Annotated[int, typer.Option(help="Gradient steps on z.")] = 30,
    step_size: Annotated[float, typer.Option(help="Step size: z += S * gradient.")] = 0.5,
    penalty: Annotated[float, typer.Option(help="Weight of the change in the other logits (0: none).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the starting latents.")] = 0,
    class_: ClassOpt = None,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
) -> None:
    """Change only z so that a frozen classifier sees more of a target class."""
    import torch

    from gantoolkit.classifiers import load_classifier
    from gantoolkit.controllers.editing import check_pair, edit_latents
    from gantoolkit.errors import ConfigError
    from gantoolkit.files.images import check_output, write_images
    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.sampling.generator import load_generator

    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    output = check_output(out, (".png", ".npz"), force, inputs=(resolve_checkpoint(checkpoint), classifier))
    clf = load_classifier(classifier)
    index = clf.class_index(target)
    model = load_generator(checkpoint, device, prefer_ema=ema)
    check_pair(model, clf)
    labels = model.labels(n, model.class_index(class_) if class_ is not None else None)
    codes = model.codes(n, seed)
    result = edit_latents(model, clf, model.latents(n, seed), index, steps, step_size, penalty, labels, codes)
    images = model.generate(torch.cat([result.z_before, result.z_after]),
                            torch.cat([labels, labels]) if labels is not None else None,
                            torch.cat([codes, codes]) if codes is not None else None)
    hit_before = (result.logits_before.argmax(1) == index).float().mean()
    hit_after = (result.logits_after.argmax(1) == index).float().mean()
    prob = result.target_prob
    typer.echo(f"target {clf.class_names[index]!r}: the classifier reads it in {hit_before:.0%} before, "
               f"{hit_after:.0%} after; mean probability {prob[0].mean():.3f} -> {prob[-1].mean():.3f}; "
               f"mean |change| of the other logits {result.other_logit_change().mean():.3f}")
    from gantoolkit.data import to_uint8

    arrays = {"before": to_uint8(images[:n]), "after": to_uint8(images[n:]), "z_before": result.z_before,
              "z_after": result.z_after, "target_prob": result.target_prob, "target": torch.tensor(index),
              "logits_before": result.logits_before, "logits_after": result.logits_after}
    if out.suffix.lower() == ".npz":
        from gantoolkit.files.images import write_arrays

        typer.echo("wrote " + write_arrays(output, arrays))
    else:
        typer.echo("wrote " + write_images(output, images, model.data, n))


classifier_app = typer.Typer(
    help="Image classifiers on a dataset's labels (timm backbones): targets for editing, features for metrics.",
)


def _json_values(items: list[str]) -> dict:
    """KEY=VALUE pairs whose values are read as JSON when they can be (numbers, lists, true/false)."""
    import json

    from gantoolkit.options import parse_assignments

    out = {}
    for key, value in parse_assignments(items, "--backbone-opt").items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@classifier_app.command("train", epilog="Example:\n\n  gantool classifier train --data digits --out clf.safetensors")
def classifier_train(
    out: Annotated[Path, typer.Option("--out", "-o", help="The .safetensors file to write.")],
    data: Annotated[str, typer.Option(help="Labelled image dataset: digits, folder:PATH, mnist, ...")] = "digits",
    image_size: Annotated[Optional[str], typer.Option(metavar="SIDE|HxW",
                                                      help="Resize images to this side, or HxW (default: as stored).")
                          ] = None,
    backbone: Annotated[Optional[str], typer.Option(help="timm model (default test_resnet, for tiny images).")] = None,
    backbone_opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="timm argument.")] = None,
    pretrained_file: Annotated[Optional[Path], typer.Option(help="Local .safetensors backbone weights.")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, one-cycle schedule).")] = 3e-3,
    held_out: Annotated[float, typer.Option(help="Share of the data held out to measure accuracy.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split, the initialisation and the batches.")] = 0,
    data_root: Annotated[str, typer.Option(help="Where downloadable datasets live.")] = "data",
    download: Annotated[bool, typer.Option("--download/--no-download", help="Allow downloading the dataset.")] = False,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
) -> None:
    """Train a classifier on a dataset's labels and report its held-out accuracy."""
    from gantoolkit.classifiers import DEFAULT_BACKBONE, save_classifier, train_classifier
    from gantoolkit.config import Choice, RunConfig, parse_image_size
    from gantoolkit.data.loading import load_dataset
    from gantoolkit.errors import ConfigError
    from gantoolkit.files.outputs import CLASSIFIER, Output
    from gantoolkit.registry import get_registry

    if out.suffix != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got {str(out)!r}")
    output = Output.of(out, CLASSIFIER, force, inputs=(pretrained_file,)).check()  # before the training
    config = RunConfig(data=Choice(data), image_size=parse_image_size(image_size), data_root=data_root,
                       download=download)
    dataset = load_dataset(config.validate(), get_registry())

    def log(epoch: int, loss: float, acc: float) -> None:
        typer.echo(f"epoch {epoch}/{epochs}  loss {loss:.4f}  held-out accuracy {acc:.2%}", err=True)

    clf, acc = train_classifier(dataset, backbone or DEFAULT_BACKBONE, epochs, batch_size, lr, held_out, seed,
                                _json_values(backbone_opt or []), pretrained_file, device, log)
    save_classifier(output, clf)
    typer.echo(f"held-out accuracy {acc:.2%} on {clf.info.held_out_size} images "
               f"({clf.info.backbone}, {len(clf.class_names)} classes); wrote {out}")


@classifier_app.command("info")
def classifier_info(
    path: Annotated[Path, typer.Argument(metavar="CLASSIFIER", help="A classifier .safetensors file.")],
) -> None:
    """What a classifier file holds: backbone, classes, input, normalisation, accuracy, data."""
    import json
    from dataclasses import asdict

    from gantoolkit.classifiers import load_classifier

    info = asdict(load_classifier(path).info)
    typer.echo(json.dumps(info, indent=2, sort_keys=True))


def directions(
    checkpoint: CheckpointArg,
    method: Annotated[str, typer.Option(help="classifier, sefa, pca, infogan (gantool list finders).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The directions .safetensors file to write.")],
    num: Annotated[Optional[int], typer.Option(help="How many directions (sefa, pca).")] = None,
    classifier: Annotated[Optional[Path], typer.Option(help="Classifier file (method classifier).")] = None,
    target: Annotated[Optional[list[str]], typer.Option(help="Class (classifier; repeatable; default all).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Latents sampled (pca, classifier).")] = None,
    layer: Annotated[Optional[int], typer.Option(help="Block whose output PCA reads (pca; 1 = the first).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the sampled latents (pca, classifier).")] = None,
    opt: Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Other method option.")] = None,
    preview: Annotated[Optional[Path], typer.Option(help="Also draw FILE.png: a row per direction.")] = None,
    ema: EmaOption = True,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
) -> None:
    """Find named directions in a generator's z-space and save them with the checkpoint's identity."""
    from gantoolkit.controllers.directions import create_finder, find_directions, save_directions
    from gantoolkit.errors import ConfigError
    from gantoolkit.files.images import check_output
    from gantoolkit.files.outputs import DIRECTIONS, Output
    from gantoolkit.files.runs import resolve_checkpoint
    from gantoolkit.options import parse_assignments
    from gantoolkit.sampling.generator import load_generator

    if out.suffix != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors, got {str(out)!r}")
    flags = {"num": num, "classifier": str(classifier) if classifier else None,
             "targets": ",".join(target) if target else None, "samples": samples, "layer": layer, "seed": seed}
    options = {**{k: v for k, v in flags.items() if v is not None}, **parse_assignments(opt or [], "--opt")}
    inputs = (resolve_checkpoint(checkpoint), str(options["classifier"]) if "classifier" in options else None)
    found_out = Output.of(out, DIRECTIONS, force, inputs).check()  # before the work, not after it
    preview_out = check_output(preview, (".png",), force, inputs, "--preview") if preview is not None else None
    finder = create_finder(method, options)
    model = load_generator(checkpoint, device, prefer_ema=ema)
    found = find_directions(finder, model, method)
    save_directions(found_out, found)
    typer.echo(f"{len(found.all_names)} {found.method} directions ({', '.join(found.all_names)}) for "
               f"{model.checkpoint.path} (step {model.checkpoint.step}); wrote {out}")
    if preview_out is not None:
        from gantoolkit.controllers.directions import preview_grid
        from gantoolkit.files.images import write_images

        images, cols = preview_grid(model, found)
        typer.echo("wrote " + write_images(preview_out, images, model.data, cols))
