r"""Integrated Gradients by adaptive Simpson quadrature along the path, on nested nodes.

Along a straight path :math:`x(\alpha) = x' + \alpha (x - x')` every node :math:`\alpha` costs one
forward and backward pass and gives the score :math:`f(\alpha)` and the per-patch parts of the
path derivative, :math:`c_p(\alpha) = \sum_{i \in p} (x_i - x'_i)\,\partial_i f(x(\alpha))` (the map
is pooled to the patch grid before integration, which is linear; their sum is the path
derivative). The integral is split into panels :math:`[a, b]` with their midpoint :math:`m`;
Simpson's rule gives a panel's map :math:`S = \tfrac{b-a}{6}(c_a + 4c_m + c_b)`. A panel is
judged by its two halves (the quarter points are the only new nodes: every node already
computed stays in the sum): the difference :math:`D = S_{left} + S_{right} - S` estimates the
halves' error as :math:`D/15` (Richardson), and the panel is accepted, with :math:`S_{left} +
S_{right} + D/15`, when that estimate is within its share of the tolerance on both the map
(:math:`\|D\|_1/15 \le \tau\,\|M\|_1\,(b-a)`) and its total (:math:`|\Sigma D|/15 \le \tau\,
|f(x) - f(x')|\,(b-a)`); otherwise its halves become panels. Refinement therefore goes where
the path needs it — the score changes abruptly in a few short stretches — with every new node of
every path in batched passes.

Two limits keep a path with kinks or near-jumps (a ReLU switching, a saturating unit) from
spending its whole budget on them, where a panel's error falls only in proportion to its width
and never meets its width's share. The whole path is accepted when the summed error estimates
of all its panels, taken as :math:`D` itself (near a jump Simpson's error only halves with the
width, so :math:`D/15` would understate it), are within the whole tolerance on the map and on
its total. And a panel is not split below the uniform rule's finest spacing: one whose quarter
points are :math:`1/\text{max\_nodes}` apart is accepted on its estimate, as that rule's
finest grid would be.

A path has converged when its completeness gap, :math:`|\Sigma_p M_p - (f(x) - f(x'))|`, known
exactly from the two end nodes, is at most :math:`\tau |f(x) - f(x')|` — the test the uniform
rule stops on — and every panel is accepted; while the gap is too large the accepted panel with
the largest total error is opened again. Nodes stop at ``max_nodes`` per path.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

#: nodes of the first, uniform grid: 4 panels
FIRST = 9


class Path:
    """One path's nodes (α → (f, c)) and panels: open (to be judged) and accepted."""

    def __init__(self) -> None:
        self.nodes: Dict[float, Tuple[float, torch.Tensor]] = {}
        self.open: List[Tuple[float, float]] = [(k / 4, (k + 1) / 4) for k in range(4)]
        #: (a, b) → (map, |ΣD| and ‖D‖₁: the differences of its total and of its map)
        self.accepted: Dict[Tuple[float, float], Tuple[torch.Tensor, float, float]] = {}
        self.capped = False  # at the node cap: open panels keep their Simpson estimate

    def simpson(self, a: float, b: float) -> torch.Tensor:
        c = self.nodes
        return (b - a) / 6 * (c[a][1] + 4 * c[(a + b) / 2][1] + c[b][1])

    @property
    def change(self) -> float:
        return self.nodes[1.0][0] - self.nodes[0.0][0]

    def estimate(self) -> torch.Tensor:
        parts = [v for v, _, _ in self.accepted.values()] + \
            [self.simpson(a, b) for a, b in self.open]
        return torch.stack(parts).sum(0)

    def needed(self) -> List[float]:
        """The quarter points of the open panels (the nodes this round needs)."""
        return [p for a, b in self.open for p in (a + (b - a) / 4, b - (b - a) / 4)]

    def judge(self, tolerance: float, finest: float) -> None:
        """Accept or split every open panel (one no wider than ``finest`` is accepted); reopen
        the worst accepted one while the completeness gap exceeds the tolerance."""
        scale, change = float(self.estimate().abs().sum()), abs(self.change)
        judged = {}
        for a, b in self.open:
            m = (a + b) / 2
            halves = self.simpson(a, m) + self.simpson(m, b)
            diff = halves - self.simpson(a, b)
            judged[(a, b)] = (halves + diff / 15, abs(float(diff.sum())),
                              float(diff.abs().sum()))
        errors = list(judged.values()) + list(self.accepted.values())
        whole = sum(e[1] for e in errors) <= tolerance * change and \
            sum(e[2] for e in errors) <= tolerance * scale
        still = []
        for (a, b), (value, err, map_err) in judged.items():
            share = map_err / 15 <= tolerance * scale * (b - a) and \
                err / 15 <= tolerance * change * (b - a)
            if whole or share or b - a <= finest:
                self.accepted[(a, b)] = (value, err, map_err)
            else:
                still += [(a, (a + b) / 2), ((a + b) / 2, b)]
        self.open = still
        wide = {k: v for k, v in self.accepted.items() if k[1] - k[0] > finest}
        if not self.open and self.gap() > tolerance * change and wide:
            (a, b), _ = max(wide.items(), key=lambda kv: kv[1][1])
            del self.accepted[(a, b)]
            self.open = [(a, (a + b) / 2), ((a + b) / 2, b)]

    def gap(self) -> float:
        return abs(float(self.estimate().sum()) - self.change)


def node_values(fn: Callable, x0: torch.Tensor, x1: torch.Tensor, args: tuple,
                paths: torch.Tensor, alphas: torch.Tensor, patch: int, limit: int):
    """(f, c) at ``alphas`` of the paths ``paths``: one forward and backward pass per node, at
    most ``limit`` images per pass; ``c`` is (nodes, patches), the per-pixel terms
    :math:`(x - x') \\odot \\nabla f` summed over colour channels and each patch."""
    fs, cs = [], []
    for lo in range(0, len(paths), limit):
        p, a = paths[lo:lo + limit], alphas[lo:lo + limit].to(x0)
        diff = x1[p] - x0[p]
        x = (x0[p] + a.view(-1, 1, 1, 1) * diff).detach().requires_grad_(True)
        score = fn(x, *(t[p] for t in args))
        (grad,) = torch.autograd.grad(score.sum(), x)
        terms = (grad * diff).detach()
        fs.append(score.detach().double().cpu())
        cs.append((F.avg_pool2d(terms.sum(1, keepdim=True), patch) * patch * patch)
                  .flatten(1).double().cpu())
    return torch.cat(fs), torch.cat(cs)


def integrate(fn: Callable, x0: torch.Tensor, x1: torch.Tensor, args: tuple, patch: int,
              limit: int, tolerance: float, max_nodes: int):
    """Adaptive IG of every path (row of ``x0``/``x1``): (maps (P, patches), totals (P,),
    Δf (P,), nodes (P,), converged (P,) bool)."""
    return integrate_values(lambda paths, alphas: node_values(
        fn, x0, x1, args, paths, alphas, patch, limit), len(x0), tolerance, max_nodes)


def integrate_values(values: Callable, n_paths: int, tolerance: float, max_nodes: int):
    """:func:`integrate` over any path: ``values(paths, alphas)`` gives the score and the parts
    of the path derivative, (f (K,), c (K, parts)), at node ``alphas[k]`` of path ``paths[k]``."""
    paths = [Path() for _ in range(n_paths)]
    todo = [(p, k / (FIRST - 1)) for p in range(n_paths) for k in range(FIRST)]
    while True:
        if todo:
            f, c = values(torch.tensor([p for p, _ in todo]), torch.tensor([a for _, a in todo]))
            for j, (p, a) in enumerate(todo):
                paths[p].nodes[a] = (float(f[j]), c[j])
        active = [path for path in paths if path.open and not path.capped]
        if not active:
            break
        todo = []
        for path in active:
            if all(a in path.nodes for a in path.needed()):
                path.judge(tolerance, 4 / max_nodes)
        for p, path in enumerate(paths):
            wanted = [a for a in path.needed() if a not in path.nodes] if not path.capped \
                else []
            if len(path.nodes) + len(wanted) > max_nodes:
                path.capped = True
                continue
            todo += [(p, a) for a in wanted]
    maps = torch.stack([path.estimate() for path in paths])
    change = torch.tensor([path.change for path in paths], dtype=torch.float64)
    gaps = torch.tensor([path.gap() for path in paths], dtype=torch.float64)
    converged = torch.tensor([not path.open for path in paths]) & \
        (gaps <= tolerance * change.abs())
    return maps, maps.sum(1), change, torch.tensor([len(p.nodes) for p in paths]), converged
