"""The kinds of component, in one table: per kind, its hook, plural, aliases, CLI flag, base class and kit check.

Everything that treats kinds alike (the registry, `gantool list`, hints, the conformance kit) reads this table, so a
new kind is one row here plus its hook in `hookspecs.py`. Base classes are "module:Class" strings, imported only
when asked for, so this module (and `gantool --help`) never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from gantoolkit.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Kind:
    """One kind of component."""

    #: the singular name the registry files components under ("architecture")
    name: str
    #: the hook in `gantoolkit.hookspecs` that registers this kind
    hook: str
    plural: str
    #: how the user names the components: "--arch NAME" (None: not chosen by a flag, e.g. commands)
    flag: str | None
    #: "module:Class" that every factory of this kind builds (None: no factory, e.g. presets are dicts)
    base: str | None
    #: other words for the kind on the command line ("archs")
    aliases: tuple[str, ...] = ()
    #: the `RunConfig` field (and TOML key) that names components of this kind, if any
    setting: str | None = None
    #: the conformance kit's function for this kind, in `gantoolkit.testing`
    check: str | None = None

    @property
    def has_options(self) -> bool:
        """Whether components of this kind are built by factories whose parameters are options."""
        return self.base is not None

    def base_class(self) -> type:
        """The base class, imported now."""
        if self.base is None:
            raise TypeError(f"{self.plural} have no base class")
        module, _, attr = self.base.partition(":")
        cls: type = getattr(importlib.import_module(module), attr)
        return cls

    def words(self) -> tuple[str, ...]:
        """Every word that names this kind: name, plural and aliases."""
        return (self.name, self.plural, *self.aliases)


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("architecture", "register_architectures", "architectures", "--arch", "gantoolkit.components:Architecture",
         ("arch", "archs"), "arch", "check_architecture"),
    Kind("loss", "register_losses", "losses", "--loss", "gantoolkit.components:Loss", (), "loss", "check_loss"),
    Kind("conditioning", "register_conditionings", "conditionings", "--cond", "gantoolkit.components:Conditioning",
         ("cond", "conds"), "cond", "check_conditioning"),
    Kind("controller", "register_controllers", "controllers", "--controller",
         "gantoolkit.components:TrainingController", (), "controllers", "check_controller"),
    Kind("dataset", "register_datasets", "datasets", "--data", "gantoolkit.components:DataSource", ("data",), "data",
         "check_dataset"),
    Kind("metric", "register_metrics", "metrics", "--metrics", "gantoolkit.components:Metric", (), None,
         "check_metric"),
    Kind("finder", "register_direction_finders", "finders", "--method", "gantoolkit.components:DirectionFinder",
         ("direction-finder", "direction-finders", "directions"), None, "check_direction_finder"),
    Kind("sampler", "register_samplers", "samplers", "--sampler", "gantoolkit.components:Sampler", (), None,
         "check_sampler"),
    Kind("logger", "register_loggers", "loggers", "--logger", "gantoolkit.loggers:Logger", (), None,
         "check_logger"),
    Kind("augmentation", "register_augmentations", "augmentations", "--augment", "gantoolkit.components:Augmentation",
         ("augment", "augments"), "augment", "check_augmentation"),
    Kind("config", "register_configs", "configs", "--config", None, ("preset", "presets"), None, "check_config"),
    Kind("command", "register_commands", "commands", None, None, (), None, "check_command"),
)}

#: every word for a kind -> the kind's name
KIND_WORDS: dict[str, str] = {word: kind.name for kind in KINDS.values() for word in kind.words()}


def kind_named(word: str) -> Kind:
    """The kind a word names ("archs" -> architecture); a `ConfigError` naming the closest words otherwise."""
    try:
        return KINDS[KIND_WORDS[word.lower()]]
    except KeyError:
        raise ConfigError(f"unknown component kind {word!r}", did_you_mean(word, KIND_WORDS)) from None


def hook_names() -> list[str]:
    """The hooks of every kind, in table order."""
    return [kind.hook for kind in KINDS.values()]
