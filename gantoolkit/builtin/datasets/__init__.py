"""Built-in datasets: the embedded default (`digits`) and its stacked version, image folders (and `gantool cache`),
Quick, Draw! bitmaps, torchvision sets, 2-D mixtures, random."""

from __future__ import annotations

from gantoolkit import hookimpl


@hookimpl
def register_datasets(register):
    register("digits", "gantoolkit.builtin.datasets.digits:Digits",
             summary="scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes); the default")
    register("stacked-digits", "gantoolkit.builtin.datasets.stacked:StackedDigits",
             summary="StackedMNIST on the digits: 3 channels, each an independently drawn digit (1,000 modes)")
    register("folder", "gantoolkit.builtin.datasets.folder:ImageFolder", argument="PATH",
             summary="images in a folder; class subfolders become labels")
    register("quickdraw", "gantoolkit.builtin.datasets.quickdraw:QuickDraw", argument="PATH",
             summary="Quick, Draw! doodles: a folder of CATEGORY.npy bitmaps (labelled) or one .npy; --download "
                     "with categories=cat,dog fetches them")
    register("mnist", "gantoolkit.builtin.datasets.torchvision_sets:MNIST",
             summary="MNIST handwritten digits (torchvision; --data-root, --download)")
    register("fashion-mnist", "gantoolkit.builtin.datasets.torchvision_sets:FashionMNIST",
             summary="Fashion-MNIST clothing images (torchvision; --data-root, --download)")
    register("cifar10", "gantoolkit.builtin.datasets.cifar:CIFAR10",
             summary="CIFAR-10 32x32 colour images, read from the binary release (no pickle)")
    register("toy", "gantoolkit.builtin.datasets.toy:Mixture", argument="ring|grid",
             summary="2-D Gaussian mixtures: ring (8 modes, std 0.01) and grid (25 modes, std 0.05)")
    register("fake", "gantoolkit.builtin.datasets.fake:RandomImages", argument="CxHxW",
             summary="random images of a given shape, for benchmarks and smoke tests")


@hookimpl
def register_commands(register):
    register("cache", "gantoolkit.builtin.datasets.cache_command:app", panel="Training",
             summary="The image cache of folder datasets (decoded once, reused by later runs): ls, clear.")
