"""Typed configuration: dataclasses filled from YAML files and ``key=value`` overrides.

    cfg = load_config(TrainConfig, ["configs/unet_nano_prior.yaml", "configs/data/gopro.yaml"],
                      ["optim.lr=2e-4", "data.crop=192"])

Every key is checked against the dataclass: an unknown key is an error that names the closest valid keys,
a value of the wrong type is an error that says what was expected. Values in overrides are parsed as YAML
scalars or flow collections (``steps=1000``, ``severity=[8, 20]``, ``teacher=null``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from deblurrt.errors import DeblurrtError

T = TypeVar("T")


class ConfigError(DeblurrtError):
    """A configuration file or override is invalid."""


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"valid keys: {', '.join(sorted(valid))}"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML value to ``annotation``, or raise ConfigError naming ``where``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: {value!r} matches none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, received {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, received {value!r}")
        return from_dict(annotation, value, prefix=f"{where}.")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, received {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, received {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, received {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, received {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, received {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads '1e-4' as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, received {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, received {value!r}")
    if annotation is Path:
        return Path(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"unknown config key '{prefix}{key}': {_suggest(key, list(fields))}")
    values = {name: _coerce(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {error}") from error


def to_dict(instance: Any) -> dict[str, Any]:
    """A dataclass as plain YAML/JSON-able data (tuples become lists, paths strings)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(instance)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'optim.lr=2e-4'`` -> (['optim', 'lr'], 0.0002)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key=value (e.g. optim.lr=2e-4)")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({error})") from error
    return key.strip().split("."), value


def apply_overrides(cls: type, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to raw config data, checking each dotted key against ``cls``."""
    data = dict(data)
    for text in overrides:
        path, value = parse_override(text)
        node, node_cls = data, cls
        for depth, part in enumerate(path):
            fields = {f.name: f for f in dataclasses.fields(node_cls)}
            if part not in fields:
                where = ".".join(path[:depth + 1])
                raise ConfigError(f"unknown config key '{where}' in override {text!r}: {_suggest(part, list(fields))}")
            if depth == len(path) - 1:
                node[part] = value
                break
            hint = typing.get_type_hints(node_cls)[part]
            if not dataclasses.is_dataclass(hint):
                raise ConfigError(f"override {text!r}: '{'.'.join(path[:depth + 1])}' is not a section")
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else to_dict(fields[part].default_factory()) \
                if child is None and fields[part].default_factory is not dataclasses.MISSING else dict(child or {})
            node, node_cls = node[part], hint
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base`` (mappings merge, anything else replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping (or nothing)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, received {type(loaded).__name__}")
    return loaded or {}


def load_config(cls: type[T], paths: str | Path | list[str | Path] | None = None,
                overrides: list[str] | None = None) -> T:
    """Read ``cls`` from YAML files (later files override earlier ones, section by section) and apply
    ``key=value`` overrides last."""
    if paths is None:
        paths = []
    elif isinstance(paths, str | Path):
        paths = [paths]
    data: dict[str, Any] = {}
    for path in paths:
        layer = read_yaml_mapping(path)
        try:
            from_dict(cls, merge(data, layer))
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from error
        data = merge(data, layer)
    data = apply_overrides(cls, data, overrides or [])
    return from_dict(cls, data)
