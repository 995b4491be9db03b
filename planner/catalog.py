"""Find and load YAML specs by name, alias or path; parse and validate them.

Search order for a name: directories in ``$PLANNER_PATH`` (colon-separated; each may
hold ``hardware/``, ``models/``, ``tasks/`` sub-directories), then the built-in catalog
(the folders: planner.locations), by file name, then by the files' ``aliases:``
(:func:`find_alias`; a checkpoint's repository name: :func:`checkpoint_base`). A
command-line argument that names an existing file (or ends in .yaml/.yml) is loaded as a
path (:func:`load_hardware`, :func:`load_model`); a device named inside a file is a
catalog name only (:func:`hardware_by_name`). :func:`read_yaml` keeps parsed YAML in the
byte cache (planner.disk_cache); :func:`parse_spec` validates a mapping against its spec.
Every failure is an :class:`InputError` naming the file, the field and the value.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Type, TypeVar

from planner.disk_cache import CACHE_MAX_ENTRIES, SHIPPED_CACHE, cache_dir, cache_read, cache_write, shipped_cache_dir
from planner.errors import InputError
from planner.locations import SHIPPED_KINDS, builtin_dir, refuse_input, refuse_shipped, search_dirs

# the shipped folders and write guards (planner.locations) and the byte cache
# (planner.disk_cache) live there; callers written before the split import them from here
__all__ = ["ALIAS_KINDS", "CACHE_MAX_ENTRIES", "KINDS", "SHIPPED_CACHE", "SHIPPED_KINDS", "all_hardware", "all_models",
           "builtin_dir", "cache_dir", "cache_read", "cache_write", "checkpoint_base", "checkpoint_reading", "find_alias",
           "find_file", "list_names", "load_hardware", "load_model", "looks_like_path", "parse_spec", "read_yaml",
           "refuse_input", "refuse_shipped", "search_dirs", "shipped_cache_dir", "validation_error"]

T = TypeVar("T")

KINDS = ("hardware", "models", "tasks", "calibration", "examples")
ALIAS_KINDS = ("hardware", "models", "engines")  # kinds whose files' ``aliases:`` resolve a name


# Bump when the parsed-YAML cache's layout or safeload's rules change meaning.
_YAML_CACHE_VERSION = 3  # 2: YAML 1.2 exponent floats (safeload.YAML12_EXP_FLOAT); 3: a key twice refused


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file under the input limits (planner.safeload): malformed, missing,
    unreadable or oversized files, aliases and non-finite numbers become one-line InputErrors.

    Parsed files are cached as JSON in ``cache_dir()/yaml`` (start-up: parsing the
    catalog's YAML is ~0.1 s of a `planner recommend`), keyed by a SHA-256 of the file's
    text (read under safeload's limits every time), so an edited file is parsed again
    whatever its time stamps say. Only content that survives the JSON round trip exactly
    (string keys, no dates) is cached, and only after the limits have been checked on a
    full parse: a file the checks refuse is never cached."""
    import hashlib
    import json

    from planner.safeload import loads_yaml, read_text

    text = read_text(path)
    key = hashlib.sha256(f"{_YAML_CACHE_VERSION}\n{text}".encode("utf-8", "surrogatepass")).hexdigest() + ".json"
    raw = cache_read("yaml", key)
    if raw is not None:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    data = loads_yaml(text, str(path))
    try:
        dumped = json.dumps(data, allow_nan=False)
        if json.loads(dumped) == data:
            cache_write("yaml", key, dumped.encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        pass  # not JSON-representable: parsed again next time
    return data


def validation_error(exc: Exception, file: str) -> InputError:
    """Turn a pydantic ValidationError into a one-line InputError (first problem)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return InputError(str(exc), file=file)
    first = errors()[0]
    field = ".".join(str(x) for x in first.get("loc", ())) or None
    msg = first.get("msg", "invalid")
    msg = msg.replace("Value error, ", "")
    value = first.get("input")
    has_value = field is not None and not isinstance(value, dict)
    if first.get("type") == "missing":
        return InputError("required field is missing", file=file, field=field)
    return InputError(msg, file=file, field=field, value=value if has_value else None, has_value=has_value)


def _numeric(ann: Any) -> tuple[bool, bool]:
    """(admits a number, admits a bool) of a field's type annotation."""
    import typing

    if ann is Any:
        return True, True
    if ann is bool:
        return False, True
    if ann in (int, float):
        return True, False
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _numeric(typing.get_args(ann)[0])
    if origin is typing.Union or type(ann).__name__ == "UnionType":
        parts = [_numeric(a) for a in typing.get_args(ann)]
        return any(p[0] for p in parts), any(p[1] for p in parts)
    return False, False


def _inner(ann: Any, value: Any) -> list[tuple[Any, Any, str]]:
    """(annotation, value, key) of the values inside ``value`` that ``ann`` types: a spec's
    fields, a dict's values, a list's items (Optional and Annotated unwrapped)."""
    import typing

    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _inner(typing.get_args(ann)[0], value)
    if origin is typing.Union or type(ann).__name__ == "UnionType":
        typed = [a for a in typing.get_args(ann) if a is not type(None)]
        return _inner(typed[0], value) if len(typed) == 1 else []
    if isinstance(value, dict) and hasattr(ann, "model_fields"):
        fields = {(f.alias or k): f.annotation for k, f in ann.model_fields.items()}
        fields.update({k: f.annotation for k, f in ann.model_fields.items()})
        return [(fields[k], v, str(k)) for k, v in value.items() if k in fields]
    args = typing.get_args(ann)
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        return [(args[1], v, str(k)) for k, v in value.items()]
    if isinstance(value, list) and origin in (list, tuple) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return [(a, v, str(i)) for i, (a, v) in enumerate(zip(args, value))]
        return [(args[0], v, str(i)) for i, v in enumerate(value)]
    return []


def refuse_bool_numbers(cls: Any, data: Any, file: str) -> None:
    """A number field given ``true`` / ``false`` is an InputError naming the field: pydantic's
    lax mode reads a bool as 1 / 0 in an int or float field, so ``memory_gb: true`` was a
    device of 1 GB and ``max_devices: true`` one of 1 device (the YAML 1.2 core schema
    resolves true/false to booleans, section 10.3.2; a bool is not a count). Walks the data
    along the spec's field annotations (nested specs, dicts and lists)."""
    stack = [(cls, data, "")]
    while stack:
        ann, value, path = stack.pop()
        for a, v, key in _inner(ann, value):
            where = f"{path}.{key}" if path else key
            if isinstance(v, bool) and _numeric(a) == (True, False):
                raise InputError("must be a number, not true/false", file=file, field=where, value=v)
            if isinstance(v, (dict, list)):
                stack.append((a, v, where))


def parse_spec(cls: Type[T], data: Any, file: str) -> T:
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", file=file)
    from planner.safeload import check_tree

    check_tree(data, file)  # flags and merged values get the file readers' limits too
    try:
        spec = cls.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise validation_error(exc, file) from None
    refuse_bool_numbers(cls, data, file)  # after: a field's own rule (planner.bounds) names its bool first
    return spec


def looks_like_path(ref: str) -> bool:
    if ref.endswith((".yaml", ".yml", ".json")) or os.sep in ref:
        return True
    try:
        return Path(ref).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _is_file(p: Path) -> bool:
    from planner.safeload import is_file

    return is_file(p)


def _alias_key(name: str) -> str:
    """Aliases match case-insensitively, with '_' and '-' alike (``h100_sxm`` = ``H100-SXM``)."""
    return name.strip().lower().replace("_", "-")


@lru_cache(maxsize=None)
def _alias_index(kind: str, dirs: tuple[str, ...]) -> dict[str, Path]:
    """Alias -> file for every spec in ``dirs`` (earlier directories win), read from each
    file's ``aliases:`` list. Built only when a name is not a file name."""
    index: dict[str, Path] = {}
    for d in reversed(dirs):
        for p in sorted(Path(d).glob("*.y*ml")) if Path(d).is_dir() else ():
            try:
                data = read_yaml(p)
            except InputError:
                continue
            if not isinstance(data, dict):
                continue
            names = [p.stem] + [a for a in (data.get("aliases") or []) if isinstance(a, str)]
            for a in names:
                index[_alias_key(a)] = p
    return index


def find_alias(kind: str, name: str) -> Path | None:
    """The spec file whose ``aliases:`` list (or file name) matches ``name``, else None;
    for a model, else the catalog model ``name`` is a checkpoint of (:func:`checkpoint_base`)."""
    dirs = tuple(str(d) for d in search_dirs(kind))
    found = _alias_index(kind, dirs).get(_alias_key(name))
    if found is None and kind == "models":
        found = _checkpoint_model(dirs, name)
    return found


# A checkpoint of a catalog model published under another organisation or with its
# quantization in the name: NVIDIA's ModelOpt checkpoints (nvidia/DeepSeek-R1-0528-FP4-v2,
# nvidia/Llama-3.3-70B-Instruct-FP8, nvidia/Kimi-K2.5-NVFP4, nvidia/GLM-5-NVFP4), AMD
# Quark's (amd/DeepSeek-R1-0528-MXFP4-Preview, amd/Llama-3.3-70B-Instruct-FP8-KV,
# amd/gpt-oss-120b-w-mxfp4-a-fp8, amd/Kimi-K2.5-MXFP4), the publishers' own
# (Qwen/Qwen3-235B-A22B-Instruct-2507-FP8, zai-org/GLM-5-FP8) and llm-compressor's
# (RedHatAI/...-FP8-dynamic, ...-GPTQ-Int4): the model ids of InferenceX's
# .github/configs/{nvidia,amd}-master.yaml and of NVIDIA aiconfigurator's InferenceX
# adapter (sdk/config_adapter/inferencex.py MODEL_PATHS). Quantization keeps the
# architecture (the same config.json plus a quantization_config), and the row's
# precision column, not the name, gives the weight dtype; so such a name is the model whose
# alias has the same repository name once the quantization tags are cut from its end.
QUANT_TAGS = frozenset({"fp8", "fp4", "nvfp4", "mxfp4", "mxfp6", "mxfp8", "int4", "int8", "w4a16", "w8a8",
                        "w4a8", "w8a16", "w4afp8", "awq", "gptq", "bnb", "fp8kv"})
# tags that qualify a quantization tag (version, KV cache, scheme, preview) and are cut only
# after one ("...-MXFP4-Preview", "...-FP4-v2", "...-FP8-KV", "...-FP8-dynamic",
# "Qwen/Qwen3-32B-FP8-Static-PerTensor" of aiconfigurator's sdk/common.py DefaultHFModels);
# "w" also just before the first one ("...-w-mxfp4-a-fp8": weights MXFP4, activations FP8)
QUANT_QUALIFIERS = frozenset({"kv", "v1", "v2", "v3", "preview", "dynamic", "static", "block", "pertensor", "w",
                              "a", "4bit", "8bit", "quantized"})


def checkpoint_base(name: str) -> str | None:
    """The repository name of the model a quantized or re-published checkpoint ``name``
    holds (module comment above): the part after the organisation, without the trailing
    quantization tags; None when ``name`` is a bare name with nothing to cut."""
    repo = name.strip().rsplit("/", 1)[-1]
    parts = repo.replace("_", "-").split("-")
    lower = [t.lower() for t in parts]
    run = len(parts)  # the trailing run of tags and qualifiers starts at parts[run]
    while run > 1 and lower[run - 1] in QUANT_TAGS | QUANT_QUALIFIERS:
        run -= 1
    first_tag = next((j for j in range(run, len(parts)) if lower[j] in QUANT_TAGS), None)
    cut = len(parts) if first_tag is None else first_tag
    if first_tag is not None and cut > run and lower[cut - 1] == "w":
        cut -= 1
    base = "-".join(parts[:max(cut, 1)])
    return base if ("/" in name or cut < len(parts)) else None


def checkpoint_reading(name: str) -> str | None:
    """The catalog model ``name`` resolves to through :func:`checkpoint_base` alone (it is
    neither a model's file name nor one of its aliases), else None: what a prediction made
    for such a name says it assumed."""
    dirs = tuple(str(d) for d in search_dirs("models"))
    if _alias_index("models", dirs).get(_alias_key(name)) is not None:
        return None
    found = _checkpoint_model(dirs, name)
    return found.stem if found is not None else None


def _checkpoint_model(dirs: tuple[str, ...], name: str) -> Path | None:
    """The model file whose repository name is ``name``'s :func:`checkpoint_base`, else None."""
    base = checkpoint_base(name)
    return _repo_name_index(dirs).get(_alias_key(base)) if base else None


@lru_cache(maxsize=None)
def _repo_name_index(dirs: tuple[str, ...]) -> dict[str, Path]:
    """Repository name (the part of a Hugging Face alias after its organisation) -> model
    file, for :func:`checkpoint_base`; a name two models share maps to neither."""
    index: dict[str, Path] = {}
    shared: set[str] = set()
    for alias, path in _alias_index("models", dirs).items():
        if "/" not in alias:
            continue
        key = _alias_key(alias.rsplit("/", 1)[-1])
        if index.setdefault(key, path) != path:
            shared.add(key)
    return {k: v for k, v in index.items() if k not in shared}


def find_file(kind: str, name: str) -> Path:
    for d in search_dirs(kind):
        for ext in (".yaml", ".yml"):
            p = d / f"{name}{ext}"
            if _is_file(p):
                return p
    if kind in ALIAS_KINDS:
        found = find_alias(kind, name)
        if found is not None:
            return found
    known = ", ".join(list_names(kind)[:40])
    label = {"hardware": "device", "models": "model", "tasks": "task profile"}.get(kind, kind)
    field = {"models": "model", "tasks": "task"}.get(kind, kind)
    raise InputError(f"unknown {label} (known: {known})", field=field, value=name)


def list_names(kind: str) -> list[str]:
    names: set[str] = set()
    for d in search_dirs(kind):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.y*ml"))
    return sorted(names)


@lru_cache(maxsize=None)
def _load_cached(kind: str, path: str, mtime: float):
    from planner.specs import Hardware, Model

    cls = {"hardware": Hardware, "models": Model}[kind]
    spec = parse_spec(cls, read_yaml(path), path)
    stem = Path(path).stem
    return spec, stem


def _load(kind: str, ref: str):
    path = Path(ref) if looks_like_path(ref) else find_file(kind, ref)
    from planner.safeload import is_file

    if not is_file(path) and not ref.endswith((".yaml", ".yml", ".json")):
        path = find_file(kind, ref)  # a Hugging Face id such as 'meta-llama/Llama-3.1-8B' (an alias), else unknown
    if not is_file(path):
        raise InputError("file not found", file=str(path))
    spec, _ = _load_cached(kind, str(path), path.stat().st_mtime)
    return spec


def load_hardware(ref: str):
    """A :class:`~planner.specs.Hardware` by catalog name or YAML path."""
    return _load("hardware", ref)


def hardware_by_name(name: str):
    """A :class:`~planner.specs.Hardware` by catalog name or alias only, never a file: for a
    device named inside a file (a serving profile's ``hardware:``), whose meaning must not
    depend on the folder a command runs in (``load_hardware`` tries a file of that name in
    the working folder first, as a command-line ``-H`` does)."""
    if name.endswith((".yaml", ".yml", ".json")) or "/" in name or os.sep in name:
        raise InputError("must name a catalog device (a name or alias), not a file", field="hardware", value=name)
    return _load("hardware", str(find_file("hardware", name)))


def load_model(ref: str):
    """A :class:`~planner.specs.Model` by catalog name or YAML path."""
    return _load("models", ref)


def all_hardware() -> list:
    return [load_hardware(n) for n in list_names("hardware")]


def all_models() -> list:
    return [load_model(n) for n in list_names("models")]
