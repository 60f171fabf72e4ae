"""Reading an experiment config: YAML with line numbers (size-limited, safe types only), ``--set``
overrides, and pydantic's errors turned into one ``ConfigError`` naming the file, line and key
(``configs/x.yaml line 12: estimators[1].params.n_trees: unknown parameter for
causal_survival_forest``).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError

from hte.config.base import ConfigError, did_you_mean
from hte.config.schema import ExperimentConfig, KeyPath, KeySource

# YAML configs are small: refuse big or alias-expanding ones before building them.
MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_NODES = 100_000  # scalars, lists and mappings after aliases are expanded
MAX_YAML_DEPTH = 40

# --------------------------------------------------------------------------------------------------
# Loading: YAML with line numbers, overrides, readable errors


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment config; any problem raises one ``ConfigError``.

    ``overrides`` are ``key.sub=value`` strings (value parsed as YAML; list entries by index or
    by estimator name, e.g. ``estimators.0.params.n_estimators=500``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: the config is {size:,} bytes; a config is at most "
                f"{MAX_CONFIG_BYTES:,} bytes (is this the right file?)"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: the config is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"position {exc.start}); save it as UTF-8"
        ) from None
    raw, lines = _parse_yaml(text, str(path))
    source = KeySource(str(path), lines, [])
    for item in overrides:
        source.overrides.append((_apply_override(raw, item), item))
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw, source)) from None
    config._source = source
    return config


def safe_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    """YAML text as Python data (safe types only) and its node tree, refused with a ConfigError
    when it is invalid, nests deeper than ``MAX_YAML_DEPTH`` or expands (aliases counted every
    time they are used: a "billion laughs" config) beyond ``MAX_YAML_NODES`` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_yaml_size(node, name)
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "constructor for the tag" in problem:
            problem += " (tags such as !!python/... are never run; use plain values)"
        raise ConfigError(f"{name}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(
            f"{name}: nested too deeply (a config is at most {MAX_YAML_DEPTH} levels deep)"
        ) from None
    finally:
        loader.dispose()


def _check_yaml_size(root: yaml.Node, name: str) -> None:
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            line = node.start_mark.line + 1
            raise ConfigError(
                f"{name} line {line}: nested too deeply (a config is at most {MAX_YAML_DEPTH} "
                "levels deep; a self-referencing alias nests without end)"
            )
        if id(node) in sizes:
            return sizes[id(node)]
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(v, depth + 1) for v in node.value)
        if total > MAX_YAML_NODES:
            raise ConfigError(
                f"{name}: the YAML expands to more than {MAX_YAML_NODES:,} values (aliases "
                "repeating aliases, a 'billion laughs'); write the config out plainly"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _parse_yaml(text: str, name: str) -> tuple[dict, dict[KeyPath, int]]:
    raw, node = safe_yaml(text, name)
    if raw is None:
        raw, node = {}, None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{name}: a config must be a mapping of sections; got {type(raw).__name__}"
        )
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines, name)
    return raw, lines


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], name: str) -> None:
    """Line (1-based) of every key and list entry; a key given twice is an error, not last-wins."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = dotted_key((*path, key))
                raise ConfigError(
                    f"{name} line {line}: {where}: key given twice (also on line {seen[key]})"
                )
            seen[key] = line
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _record_lines(item, (*path, i), lines, name)


def _scalar_key(node: yaml.Node) -> str | int:
    """A mapping key as the loader builds it (ints stay ints so paths match the parsed dict)."""
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    return value if isinstance(value, int | str) and not isinstance(value, bool) else str(value)


def _apply_override(raw: dict, item: str) -> KeyPath:
    """Set ``key.sub=value`` in the raw YAML dict; returns the key path set."""
    key, sep, value_text = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"--set {item}: expected key.sub=value, e.g. data.n=500")
    try:
        value = safe_yaml(value_text, "value")[0] if value_text.strip() else None
    except ConfigError as exc:
        detail = str(exc).removeprefix("value")
        raise ConfigError(
            f"--set {item}: the value {value_text!r} is not valid YAML ({detail.strip(' :')})"
        ) from None
    node: Any = raw
    path: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part, item, path)
            path.append(index)
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(
                f"--set {item}: {dotted_key(path)} is a value ({node!r}), not a section with keys"
            )
        path.append(part)
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
    return tuple(path)


def _list_index(items: list, part: str, item: str, path: list) -> int:
    """A list entry by position (0-based) or, for estimators, by name."""
    if part.lstrip("-").isdigit():
        index = int(part)
        if not -len(items) <= index < len(items):
            raise ConfigError(
                f"--set {item}: {dotted_key(path)} has {len(items)} entries; no entry {index}"
            )
        return index % len(items)
    names = [e.get("name") or e.get("kind") if isinstance(e, dict) else None for e in items]
    if part in names:
        return names.index(part)
    raise ConfigError(
        f"--set {item}: {dotted_key(path)} has no entry named {part!r} "
        f"(use an index 0-{len(items) - 1} or one of: {', '.join(map(str, filter(None, names)))})"
    )


def dotted_key(path: Sequence[str | int]) -> str:
    """A key path as written in a config: ``estimators[1].params.n_trees``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(exc: ValidationError, raw: dict, source: KeySource) -> str:
    """Pydantic errors as one message, a line per problem: "<file> line N: <key>: <what>"."""
    seen: set[str] = set()
    lines = []
    for err in exc.errors():
        path = _clean_path(err["loc"], raw)
        ctx = err.get("ctx") or {}
        if err["type"] in ("unknown_parameter", "managed_parameter", "parameter_type"):
            path = (*path, ctx["param"])
        elif err["type"] == "outcome_disabled":
            path = (*path, ctx["index"])
        elif err["type"] == "unknown_sweep_item":
            path = (*path, ctx["field"], ctx["index"]) if "field" in ctx else (*path, ctx["index"])
        line = f"{source.where(path)}: {dotted_key(path)}: {_message(err, path, raw)}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)


def _clean_path(loc: tuple, raw: object) -> KeyPath:
    """The key path of an error location without pydantic's union tags and validator names."""
    path: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(part, str) and (
            "[" in part or (part in ("synthetic", "file") and not last)
        ):
            continue
        else:
            node = None
        path.append(part)
    return tuple(path)


def _message(err: dict, path: KeyPath, raw: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], raw)
        hint = did_you_mean(str(path[-1]), allowed) if allowed else ""
        return f"unknown key{hint}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return "missing key 'source': synthetic, file or omop"
    if kind == "string_pattern_mismatch":
        return f"{err.get('input')!r} cannot name a folder: use letters, digits, _ . - only"
    if kind == "union_tag_invalid":
        return f"source must be synthetic, file or omop; got {err['ctx']['tag']!r}"
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if kind not in _SELF_DESCRIBED and isinstance(value, str | int | float | bool | None):
        msg += f" (got {value!r})"
    return msg


# Error types whose message already says what was given.
_SELF_DESCRIBED = {
    "value_error",
    "unknown_scenario",
    "unknown_parameter",
    "managed_parameter",
    "parameter_type",
    "outcome_disabled",
    "column_map_file",
    "unknown_sweep_item",
}


def _allowed_keys(path: KeyPath, raw: dict) -> list[str]:
    """Keys the section at ``path`` accepts (by walking the model classes along the path)."""
    model: Any = ExperimentConfig
    node: Any = raw
    for part in path:
        node = node[part] if isinstance(node, dict | list) else None
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        model = _model_in(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _model_in(annotation: Any, node: Any) -> Any:
    """The BaseModel class inside list[...] / X | None / discriminated unions, chosen by source."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_in(args[0], node)
    if origin is list:
        return _model_in(args[0], node)
    if args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tag = node.get("source") if isinstance(node, dict) else None
        for m in models:
            field = m.model_fields.get("source")
            if field is not None and tag in typing.get_args(field.annotation):
                return m
        return models[0] if len(models) == 1 else None
    return annotation
