"""MLflow's ``meta.yaml`` files, read and written with PyYAML as MLflow itself does.

PyYAML comes with the ``mlflow`` extra (``pip install "tracklite[mlflow]"``; every MLflow and
qlib installation has it) and is imported on first use, so importing tracklite never loads it.
The C loader and dumper are used when PyYAML was built with libyaml, as MLflow does.
"""

from __future__ import annotations

from typing import Any

from ..extras import require

__all__ = ["MetaYamlError", "dump", "load", "require_yaml"]

_FEATURE = "Reading or writing an MLflow file store"


class MetaYamlError(ValueError):
    """A meta.yaml file that is not a YAML mapping; the message says where it stops."""


def require_yaml() -> Any:
    """The ``yaml`` module, or :class:`~tracklite.errors.ExtraRequiredError` naming the extra."""
    return require("yaml", "mlflow", _FEATURE)


def load(text: str) -> dict[str, Any]:
    """The mapping in a meta.yaml document; :class:`MetaYamlError` if it is not one."""
    yaml = require_yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a safe loader: C when built with libyaml
    except yaml.YAMLError as exc:
        raise MetaYamlError(" ".join(str(exc).split())) from None
    if not isinstance(data, dict):
        raise MetaYamlError(f"the document is a {type(data).__name__}, not a mapping")
    return {str(key): value for key, value in data.items()}


def dump(fields: dict[str, Any]) -> bytes:
    """A flat mapping in the block style of MLflow's meta.yaml files, keys sorted, UTF-8."""
    yaml = require_yaml()
    dumper = getattr(yaml, "CSafeDumper", None)
    # PyYAML's pure-Python emitter writes NEL (U+0085) unescaped inside a quoted string, where
    # every reader folds it into a space; escaping all non-ASCII avoids that.
    unicode = dumper is not None or not any(
        isinstance(value, str) and "\x85" in value for value in fields.values()
    )
    text: str = yaml.dump(
        fields,
        Dumper=dumper or yaml.SafeDumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=unicode,
    )
    return text.encode("utf-8")
