"""The registry and plugin host: listing, lookup, options, did-you-mean, clashes and broken plugins."""

from __future__ import annotations

import types

import pytest

import gantoolkit
from gantoolkit.errors import ConfigError, PluginError, UnknownComponentError
from gantoolkit.plugins import PluginHost, PluginRecord
from gantoolkit.registry import Registry

BUILTINS = {
    "architecture": {"mlp", "dcgan"},
    "loss": {"bce", "wgan", "wgan-gp"},
    "conditioning": {"none", "onehot"},
    "dataset": {"digits", "folder", "mnist", "fashion-mnist", "cifar10", "toy", "fake"},
}


def registry_with(*modules: types.ModuleType) -> Registry:
    """The built-ins plus extra in-memory plugin modules, each recorded like an entry point."""
    host = PluginHost()
    host.load_builtins()
    for module in modules:
        host.register_module(module, PluginRecord(module.__name__, f"dist-{module.__name__}", "1.0", module.__name__))
    return Registry(host)


def plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, gantoolkit.hookimpl(fn))
    return module


def test_builtins_register_through_hooks():
    registry = Registry.load()
    for kind, names in BUILTINS.items():
        assert names <= set(registry.names(kind)), kind
    spec, _ = registry.get("loss", "wgan-gp")
    assert spec.distribution == "gantoolkit"
    assert spec.plugin == "gantoolkit.builtin.losses"
    assert spec.summary


def test_list_with_fnmatch_pattern_and_kind_aliases():
    registry = Registry.load()
    assert registry.names("losses", "wgan*") == ["wgan", "wgan-gp"]
    assert registry.names("archs") == registry.names("architecture")
    with pytest.raises(ConfigError, match="unknown component kind"):
        registry.names("lossez")


def test_unknown_name_suggests_closest():
    registry = Registry.load()
    with pytest.raises(UnknownComponentError) as err:
        registry.get("loss", "wgan-gpp")
    assert "wgan-gp" in str(err.value)


def test_dataset_argument_is_split_off():
    registry = Registry.load()
    spec, argument = registry.get("dataset", "folder:/some/where")
    assert spec.name == "folder" and argument == "/some/where"
    with pytest.raises(UnknownComponentError, match="needs an argument"):
        registry.get("dataset", "folder")
    with pytest.raises(UnknownComponentError, match="takes no argument"):
        registry.get("dataset", "digits:x")


def test_create_binds_and_types_options():
    registry = Registry.load()
    loss = registry.create("loss", "bce", {"label_smoothing": "0.1", "generator_loss": "minimax"})
    assert loss.real_target == pytest.approx(0.9) and loss.minimax
    with pytest.raises(ConfigError, match="did you mean 'label_smoothing'"):
        registry.create("loss", "bce", {"label_smoothin": "0.1"})
    with pytest.raises(ConfigError, match="expects float"):
        registry.create("loss", "bce", {"label_smoothing": "lots"})
    with pytest.raises(ConfigError, match="must be one of"):
        registry.create("loss", "bce", {"generator_loss": "maximin"})


def test_third_party_plugin_registers_and_records_provenance():
    def register_losses(register):
        register("hinge-test", "gantoolkit.builtin.losses.bce:BCE", summary="a test loss")

    registry = registry_with(plugin("thirdparty", register_losses=register_losses))
    spec, _ = registry.get("loss", "hinge-test")
    assert (spec.plugin, spec.distribution, spec.version) == ("thirdparty", "dist-thirdparty", "1.0")
    assert ("loss", "hinge-test") in registry.host.records["thirdparty"].registered


def test_a_hook_that_names_no_parameter_loads_without_error():
    calls = []

    def register_losses():
        calls.append("called")

    registry = registry_with(plugin("quiet", register_losses=register_losses))
    assert calls == ["called"]  # called the way pluggy calls it: with only the arguments it names
    assert registry.host.records["quiet"].errors == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), PluginError("boom", "a hint")])
def test_a_hook_that_raises_anything_is_isolated_and_recorded(error):
    def register_losses(register):
        raise error

    def register_architectures(register):
        register("tiny-arch", "gantoolkit.builtin.archs.mlp:MLP")

    registry = registry_with(plugin("broken", register_losses=register_losses,
                                    register_architectures=register_architectures))
    assert "tiny-arch" in registry.names("architecture")
    assert "bce" in registry.names("loss")  # the built-ins are untouched
    assert registry.host.records["broken"].errors == [f"register_losses raised {type(error).__name__}: {error}"]


def test_a_built_in_name_is_kept_and_the_plugins_registration_recorded():
    def register_losses(register):
        register("bce", "gantoolkit.builtin.losses.wasserstein:WGAN")
        register("copycat-loss", "gantoolkit.builtin.losses.bce:BCE")

    registry = registry_with(plugin("copycat", register_losses=register_losses))
    spec, _ = registry.get("loss", "bce")
    assert spec.plugin == "gantoolkit.builtin.losses" and type(registry.create("loss", "bce")).__name__ == "BCE"
    (error,) = registry.host.records["copycat"].errors
    assert "loss name 'bce' is built in" in error
    assert registry.host.records["copycat"].registered == [("loss", "copycat-loss")]
    assert registry.host.records["gantoolkit.builtin.losses"].errors == []
    (warning,) = registry.warnings
    assert "dist-copycat" in warning and "'bce'" in warning


def test_a_clash_between_plugins_is_an_error_naming_both_and_how_to_choose():
    def register_losses(register):
        register("lsq", "gantoolkit.builtin.losses.bce:BCE")

    registry = registry_with(plugin("one", register_losses=register_losses),
                             plugin("two", register_losses=register_losses))
    with pytest.raises(PluginError) as err:
        registry.get("loss", "lsq")
    text = str(err.value)
    assert "dist-one" in text and "dist-two" in text and "GANTOOL_DISABLE_PLUGINS=two" in text
    assert registry.host.records["one"].errors and registry.host.records["two"].errors
    assert "wgan" in registry.names("loss")  # other names keep working


@pytest.mark.parametrize("error", [RuntimeError("boom"), PluginError("boom")])
def test_strict_mode_turns_plugin_failures_into_errors(monkeypatch, error):
    def register_losses(register):
        raise error

    monkeypatch.setenv("GANTOOL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"^plugin 'broken' .*register_losses raised .*boom"):
        registry_with(plugin("broken", register_losses=register_losses))


def test_strict_mode_names_the_plugin_once_for_a_failure_inside_register(monkeypatch):
    def register_losses(register):
        register("bad name!", "x:y")

    monkeypatch.setenv("GANTOOL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as err:
        registry_with(plugin("sloppy", register_losses=register_losses))
    assert str(err.value).count("plugin 'sloppy'") == 1 and "invalid loss name 'bad name!'" in str(err.value)


def test_invalid_names_are_rejected():
    def register_losses(register):
        register("bad name!", "x:y")
        register("", "x:y")

    registry = registry_with(plugin("sloppy", register_losses=register_losses))
    assert len(registry.host.records["sloppy"].errors) == 2
    assert "bad name!" not in registry.names("loss")


def test_lazy_factory_that_cannot_import_is_a_plugin_error():
    def register_losses(register):
        register("ghost", "gantoolkit_no_such_module:Loss")

    registry = registry_with(plugin("ghostly", register_losses=register_losses))
    with pytest.raises(PluginError, match="cannot be imported"):
        registry.create("loss", "ghost")


def test_options_schema_lists_types_and_defaults():
    registry = Registry.load()
    options = registry.get("architecture", "dcgan")[0].options()
    assert options["ngf"].default == 64 and options["ngf"].annotation is int
    assert "critic_norm" in options


def test_resolved_options_hold_every_default_a_checkpoint_can_record_and_read_back():
    from gantoolkit.options import resolve_options

    marker = object()

    def factory(width: int = 8, act: object = marker, depth: int = None,  # noqa: RUF013 - a default its type refuses
                betas: tuple[float, float] = (0.5, 0.9), name: str = "x", **extra):
        return None

    resolved = resolve_options(factory, {"width": "16", "gain": 2}, "architecture 't'")
    assert resolved == {"width": 16, "betas": (0.5, 0.9), "name": "x", "gain": 2}  # signature order, then extras
    assert list(resolved) == ["width", "betas", "name", "gain"]
    assert resolve_options(factory, {"width": 16, "betas": [0.5, 0.9], "name": "x"}, "t") == {
        "width": 16, "betas": (0.5, 0.9), "name": "x"}  # what a checkpoint's JSON gives back binds again


def test_the_table_of_kinds_matches_the_hooks_the_kit_and_the_registry():
    from gantoolkit import hookspecs, testing
    from gantoolkit.kinds import KINDS, kind_named

    specs = {name for name in dir(hookspecs) if getattr(getattr(hookspecs, name), "gantoolkit_spec", None)}
    assert specs == {kind.hook for kind in KINDS.values()}
    registry = Registry.load()
    assert set(registry.specs) == set(KINDS)
    for kind in KINDS.values():
        assert all(kind_named(word) is kind for word in kind.words())
        assert kind.check is not None and callable(getattr(testing, kind.check))
        if kind.has_options:  # every registered factory builds the base class the table names
            base = kind.base_class()
            assert isinstance(base, type)
            for spec in registry.list(kind.name):
                factory = spec.load()
                assert not isinstance(factory, type) or issubclass(factory, base), spec
    with pytest.raises(ConfigError, match="did you mean 'archs'"):
        kind_named("arcs")


def test_hints_use_each_kinds_flag():
    registry = Registry.load()
    with pytest.raises(UnknownComponentError, match=r"use --data folder:PATH"):
        registry.get("dataset", "folder")
    with pytest.raises(UnknownComponentError, match=r"use --data digits\)"):
        registry.get("datasets", "digits:x")

