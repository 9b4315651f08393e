"""Declared options, the one way every plugin family takes a setting.

A plugin lists its :class:`Option`\\ s in ``options``; the command line sets them as
``--method-option METHOD.OPTION=VALUE``, ``--metric-option METRIC.OPTION=VALUE``,
``--model-option MODEL.OPTION=VALUE`` or ``--dataset-option OPTION=VALUE``, each value parsed
and checked by its declaration, and the run configuration (hence the manifest and the cache
digest) records them. A method or metric binds its values as attributes (:class:`Configurable`);
a dataset or model loader receives them as keyword arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Optional, Sequence, Tuple

from benchmark.core.errors import InputError, UnknownOption


@dataclass(frozen=True)
class Option:
    """One setting of a plugin: typed, defaulted, with one line of help.

    ``type`` parses a command-line string (``int``, ``float``, ``str``; ``None`` is written
    ``none`` when the default is ``None``); ``choices`` restricts the values.
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: Tuple[Any, ...] = ()
    validate: Optional[Callable[[Any], None]] = None  # raises a one-line error for a bad value

    def parse(self, text: str) -> Any:
        """The value of ``text`` (a command-line string), checked."""
        if self.default is None and text.lower() == "none":
            return None
        try:
            value = self.type(text)
        except ValueError:
            raise UnknownOption(f"option {self.name!r} expects {self.type.__name__}, "
                                f"not {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        if self.choices and value not in self.choices:
            raise UnknownOption(f"option {self.name!r} must be one of "
                                f"{', '.join(map(str, self.choices))}, not {value!r}")
        if self.validate is not None and value is not None:
            try:
                self.validate(value)
            except (InputError, KeyError) as e:
                raise UnknownOption(f"option {self.name!r}: {e}") from None
        return value


def find_option(options: Sequence[Option], key: str, owner: str) -> Option:
    """The declared option ``key`` of ``owner`` (one-line error naming the valid ones)."""
    for o in options:
        if o.name == key:
            return o
    valid = ", ".join(o.name for o in options) or "none"
    raise UnknownOption(f"{owner} has no option {key!r}; its options: {valid}")


class Configurable:
    """A plugin instance whose declared ``options`` are bound at construction: each value,
    checked, becomes an attribute (``self.n_steps``) and an entry of ``config``."""

    name: str = ""
    #: the family's word in messages ("method", "metric")
    family: ClassVar[str] = "plugin"
    options: ClassVar[Tuple[Option, ...]] = ()

    def __init__(self, **options: Any) -> None:
        for key, value in options.items():
            self.option(key).check(value)
        self.config: Dict[str, Any] = {o.name: options.get(o.name, o.default)
                                       for o in self.options}
        for key, value in self.config.items():
            setattr(self, key, value)

    def option(self, key: str) -> Option:
        """The declared option ``key`` (one-line error naming the valid ones otherwise)."""
        return find_option(self.options, key, f"{self.family} "
                                              f"{self.name or type(self).__name__!r}")

    def with_options(self, **options: Any):
        """A copy with ``options`` changed (validated); ``self`` is unchanged."""
        other = type(self)(**{**self.config, **options})
        other.name = self.name
        return other


def parse_specs(specs: Sequence[str], family: str,
                owner_options: Callable[[str], Sequence[Option]], example: str,
                named: bool = True) -> Dict[str, Dict[str, Any]]:
    """``--{family}-option`` specs → ``{plugin: {option: value}}``.

    ``specs`` are ``NAME.OPTION=VALUE`` (``OPTION=VALUE`` with ``named=False``: the key is then
    ``""``); ``owner_options(name)`` gives the plugin's declared options (and raises the
    registry's unknown-name error); every value is parsed by its declaration.
    """
    shape = f"{family.upper()}.OPTION=VALUE" if named else "OPTION=VALUE"
    out: Dict[str, Dict[str, Any]] = {}
    for spec in specs:
        key, eq, text = spec.partition("=")
        name, dot, option = key.strip().partition(".") if named else ("", ".", key.strip())
        if not (eq and dot and option and (name or not named)):
            raise UnknownOption(f"--{family}-option takes {shape}, e.g. {example}; got {spec!r}")
        owner = f"{family} {name!r}" if named else family
        out.setdefault(name, {})[option] = \
            find_option(owner_options(name), option, owner).parse(text.strip())
    return out
