"""Declared options, the one way every plugin family takes a setting.

A method or metric declares each :class:`Option` as a class attribute of its own name
(``n_steps = Option("n_steps", int, 32, "...")``): on an instance the attribute is the bound
value, typed as the option's type (``self.n_steps`` is an ``int`` to a type checker), and the
class's ``options`` lists them in declaration order. Datasets and model loaders list theirs in
``options``. The command line sets them as
``--method-option METHOD.OPTION=VALUE``, ``--metric-option METRIC.OPTION=VALUE``,
``--model-option MODEL.OPTION=VALUE`` or ``--dataset-option OPTION=VALUE``, each value parsed
and checked by its declaration, and the run configuration (hence the manifest and the cache
digest) records them. A method or metric binds its values as attributes (:class:`Configurable`);
a dataset or model loader receives them as keyword arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import (Any, Callable, ClassVar, Dict, Generic, Optional, Sequence, Tuple, TypeVar,
                    overload)

from benchmark.core.errors import InputError, UnknownOption


T = TypeVar("T")


@dataclass(frozen=True)
class Option(Generic[T]):
    """One setting of a plugin: typed, defaulted, with one line of help.

    ``type`` parses a command-line string (``int``, ``float``, ``str``; ``None`` is written
    ``none`` when the default is ``None``); ``choices`` restricts the values. As a class
    attribute of a :class:`Configurable` it reads, on an instance, that instance's value.
    """

    name: str
    type: Callable[[str], T]
    default: Optional[T]
    help: str
    choices: Tuple[Any, ...] = ()
    validate: Optional[Callable[[Any], None]] = None  # raises a one-line error for a bad value

    @overload
    def __get__(self, obj: None, owner: Any = None) -> "Option[T]": ...

    @overload
    def __get__(self, obj: object, owner: Any = None) -> T: ...

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.config[self.name]

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


def at_least(low: int) -> Callable[[Any], None]:
    """A ``validate`` for counts: the value must be at least ``low``."""
    def check(value: Any) -> None:
        if value < low:
            raise InputError(f"must be at least {low}, not {value}")
    return check


def fraction(value: Any) -> None:
    """A ``validate`` for shares: the value must lie in (0, 1]."""
    if not 0 < value <= 1:
        raise InputError(f"must lie in (0, 1], not {value}")


def find_option(options: Sequence[Option], key: str, owner: str) -> Option:
    """The declared option ``key`` of ``owner`` (one-line error naming the valid ones)."""
    for o in options:
        if o.name == key:
            return o
    valid = ", ".join(o.name for o in options) or "none"
    raise UnknownOption(f"{owner} has no option {key!r}; its options: {valid}")


class Configurable:
    """A plugin instance whose declared options (class attributes) are bound at construction:
    each value, checked, is the instance's attribute (``self.n_steps``) and an entry of
    ``config``."""

    name: str = ""
    #: the family's word in messages ("method", "metric")
    family: ClassVar[str] = "plugin"
    #: the declared options, base classes' first (collected from the class attributes)
    options: ClassVar[Tuple[Option, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: Dict[str, Option] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Option):
                    if attr != value.name:
                        raise TypeError(f"{cls.__name__}.{attr} declares option "
                                        f"{value.name!r}: name the attribute as the option")
                    found[attr] = value
        cls.options = tuple(found.values())

    def __init__(self, **options: Any) -> None:
        for key, value in options.items():
            self.option(key).check(value)
        self.config: Dict[str, Any] = {o.name: options.get(o.name, o.default)
                                       for o in self.options}

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
        # the last dot: a model's name may hold a path with dots (hf-llava:/w/llava-1.5.answer)
        name, dot, option = key.strip().rpartition(".") if named else ("", ".", key.strip())
        if not (eq and dot and option and (name or not named)):
            raise UnknownOption(f"--{family}-option takes {shape}, e.g. {example}; got {spec!r}")
        owner = f"{family} {name!r}" if named else family
        out.setdefault(name, {})[option] = \
            find_option(owner_options(name), option, owner).parse(text.strip())
    return out
