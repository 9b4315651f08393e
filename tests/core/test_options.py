"""Declared options: typed class attributes bound per instance, in declaration order, checked."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.core.errors import UnknownOption
from benchmark.core.options import Configurable, Option

ROOT = Path(__file__).resolve().parents[2]


class Base(Configurable):
    family = "toy"
    steps = Option("steps", int, 16, "how many steps")


class Child(Base):
    share = Option("share", float, 0.1, "share of the pixels read", validate=None)
    mode = Option("mode", str, "log", "grid", choices=("log", "linear"))


def test_options_are_collected_in_declaration_order_base_first():
    assert [o.name for o in Child.options] == ["steps", "share", "mode"]
    assert [o.name for o in Base.options] == ["steps"]


def test_an_instance_reads_its_own_bound_values():
    a, b = Child(steps=4), Child(mode="linear")
    assert (a.steps, a.share, a.mode) == (4, 0.1, "log")
    assert (b.steps, b.mode) == (16, "linear")
    c = a.with_options(share=0.5)
    assert (c.steps, c.share, a.share) == (4, 0.5, 0.1)
    assert isinstance(Child.steps, Option)


def test_bad_values_and_names_are_one_line_errors():
    with pytest.raises(UnknownOption, match="must be one of log, linear, not 'cubic'"):
        Child(mode="cubic")
    with pytest.raises(UnknownOption, match="has no option 'step'; its options: steps, share"):
        Child(step=3)
    with pytest.raises(UnknownOption, match="expects int, not 'many'"):
        Child.steps.parse("many")


def test_an_attribute_named_unlike_its_option_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="name the attribute as the option"):
        type("Bad", (Configurable,), {"n": Option("steps", int, 1, "")})


def test_a_type_checker_sees_the_option_values_types(tmp_path):
    """mypy reads ``self.max_steps`` of the shipped IG method as ``int``, ``rel_tolerance`` as
    ``float`` and ``target`` as ``str`` (the rest of the code base is not type-checked here:
    imports outside the listed files are skipped)."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text("from methods.integrated_gradients import IntegratedGradientsMap\n"
                       "m = IntegratedGradientsMap()\n"
                       "reveal_type(m.max_steps)\nreveal_type(m.rel_tolerance)\n"
                       "reveal_type(m.target)\nreveal_type(IntegratedGradientsMap.max_steps)\n")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=skip", "--ignore-missing-imports",
         "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(snippet),
         "benchmark/core/options.py", "methods/base.py", "methods/integrated_gradients.py"],
        cwd=ROOT, capture_output=True, text=True).stdout
    revealed = [line.split('Revealed type is "')[1].rstrip('"') for line in out.splitlines()
                if "Revealed type" in line]
    assert revealed == ["int", "float", "str", "benchmark.core.options.Option[int]"], out
