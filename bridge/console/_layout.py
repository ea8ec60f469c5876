"""A layered graph layout and its SVG, in pure Python: no Graphviz, no browser script.

The Sugiyama method, small: break cycles (depth first from the start), rank nodes by
longest path, give every edge a label node on the rank between its ends (so labels
never sit on a line or on each other) and virtual nodes on the ranks it crosses, order
each rank by barycenters (sweeps down and up), place nodes left to right pulled toward
their neighbours, and draw each edge as a smooth curve through its nodes. State graphs
of a few dozen states come out readable; the SVG is styled by CSS classes (``node``,
``current``, ``visited``, ``edge``, ``taken``), never inline styles, so the console's
Content-Security-Policy needs no ``unsafe-inline``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = 12
CHAR = 7.0
"""Average width of a character at FONT px (system sans-serif)."""
NODE_H = 30
LABEL_FONT = 11
LABEL_CHAR = 6.2
GAP_X = 18
GAP_Y = 22
MARGIN = 12


@dataclass
class Node:
    """A box in the diagram."""

    id: str
    label: str
    classes: tuple[str, ...] = ()
    """CSS classes: ``current``, ``visited``, ``final``, ``start``, ``folded``…"""
    note: str = ""
    """A second, smaller line (folded self-loops)."""
    title: str = ""
    """A tooltip."""


@dataclass
class Edge:
    """An arrow between two nodes."""

    source: str
    target: str
    label: str = ""
    classes: tuple[str, ...] = ()
    """``taken`` for an edge on the path the instance took."""


@dataclass
class Diagram:
    """What to draw: nodes (in a stable order), edges, and the node to start from."""

    title: str
    nodes: list[Node]
    edges: list[Edge]
    start: str | None = None
    footnotes: list[str] = field(default_factory=list)


@dataclass
class _Item:
    """A node of the layered graph: real, a label node, or a virtual bend."""

    id: str
    width: float
    height: float
    rank: int = 0
    x: float = 0.0
    y: float = 0.0
    real: Node | None = None
    label: str = ""


def _width(node: Node) -> float:
    longest = max(len(node.label) * CHAR, len(node.note) * LABEL_CHAR)
    return longest + 24


def _break_cycles(order: Sequence[str], start: str | None,
                  edges: Sequence[tuple[str, str]]) -> set[int]:
    """The indexes of the edges that close a cycle (depth first from `start`, then from
    every node not reached yet): laid out reversed."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (a, b) in enumerate(edges):
        out[a].append((i, b))
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[int] = set()
    roots = ([start] if start else []) + list(order)
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(out[node]):
                stack[-1] = (node, i + 1)
                index, nxt = out[node][i]
                if state.get(nxt) == 1:
                    back.add(index)
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def layout(diagram: Diagram) -> tuple[dict[str, _Item], list[tuple[Edge, list[_Item]]],
                                      float, float]:
    """Positions: the items by id, each edge with the chain of items it passes, and
    the drawing's width and height."""
    order = [n.id for n in diagram.nodes]
    known = set(order)
    edges = [e for e in diagram.edges if e.source in known and e.target in known
             and e.source != e.target]
    pairs = [(e.source, e.target) for e in edges]
    back = _break_cycles(order, diagram.start, pairs)
    dag = [(b, a) if i in back else (a, b) for i, (a, b) in enumerate(pairs)]

    # Ranks by longest path; an edge spans two ranks so that its label has its own.
    rank = dict.fromkeys(order, 0)
    incoming: dict[str, list[str]] = defaultdict(list)
    for a, b in dag:
        incoming[b].append(a)
    indegree = {n: len(incoming[n]) for n in order}
    outgoing: dict[str, list[str]] = defaultdict(list)
    for a, b in dag:
        outgoing[a].append(b)
    ready = [n for n in order if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        for nxt in outgoing[node]:
            rank[nxt] = max(rank[nxt], rank[node] + 2)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)

    items: dict[str, _Item] = {n.id: _Item(n.id, _width(n), NODE_H + (12 if n.note else 0),
                                           rank[n.id], real=n) for n in diagram.nodes}
    chains: list[tuple[Edge, list[_Item]]] = []
    for i, (edge, (a, b)) in enumerate(zip(edges, dag, strict=True)):
        chain = [items[a]]
        for step, r in enumerate(range(rank[a] + 1, rank[b])):
            label = edge.label if step == 0 else ""
            width = len(label) * LABEL_CHAR + 8 if label else 2
            virtual = _Item(f"~{i}.{r}", width, 16 if label else 2, r, label=label)
            items[virtual.id] = virtual
            chain.append(virtual)
        chain.append(items[b])
        if i in back:
            chain.reverse()
        chains.append((edge, chain))

    ranks: dict[int, list[_Item]] = defaultdict(list)
    for item in items.values():
        ranks[item.rank].append(item)
    _order(ranks, chains)
    return (items, chains, *_place(ranks, chains))


def _neighbours(chains: Sequence[tuple[Edge, list[_Item]]]
                ) -> tuple[dict[str, list[_Item]], dict[str, list[_Item]]]:
    up: dict[str, list[_Item]] = defaultdict(list)
    down: dict[str, list[_Item]] = defaultdict(list)
    for _, chain in chains:
        for a, b in itertools.pairwise(chain):
            low, high = (a, b) if a.rank < b.rank else (b, a)
            down[low.id].append(high)
            up[high.id].append(low)
    return up, down


def _order(ranks: dict[int, list[_Item]], chains: Sequence[tuple[Edge, list[_Item]]]
           ) -> None:
    """Order each rank to cut crossings: barycenter sweeps, down then up."""
    up, down = _neighbours(chains)
    position: dict[str, float] = {}
    for r in sorted(ranks):
        for i, item in enumerate(ranks[r]):
            position[item.id] = i
    for sweep in range(8):
        rows = sorted(ranks) if sweep % 2 == 0 else sorted(ranks, reverse=True)
        for r in rows:
            links = up if sweep % 2 == 0 else down

            def key(item: _Item, links: dict[str, list[_Item]] = links) -> float:
                others = links.get(item.id)
                if not others:
                    return position[item.id]
                return sum(position[o.id] for o in others) / len(others)

            ranks[r].sort(key=key)
            for i, item in enumerate(ranks[r]):
                position[item.id] = i


def _place(ranks: dict[int, list[_Item]], chains: Sequence[tuple[Edge, list[_Item]]]
           ) -> tuple[float, float]:
    """x and y of every item; returns the drawing's size."""
    up, down = _neighbours(chains)
    y = float(MARGIN)
    for r in sorted(ranks):
        row = ranks[r]
        height = max(item.height for item in row)
        x = 0.0
        for item in row:
            item.x = x + item.width / 2
            item.y = y + height / 2
            x += item.width + GAP_X
        y += height + GAP_Y
    for sweep in range(8):
        for r in sorted(ranks) if sweep % 2 == 0 else sorted(ranks, reverse=True):
            row = ranks[r]
            for item in row:
                others = up.get(item.id, []) + down.get(item.id, [])
                if others:
                    item.x = sum(o.x for o in others) / len(others)
            _spread(row)
        # A long edge runs straight: its bends share one x.
        for _, chain in chains:
            inner = chain[1:-1]
            if len(inner) > 1:
                x = sum(item.x for item in inner) / len(inner)
                for item in inner:
                    item.x = x
        for r in ranks:
            _spread(ranks[r])
    left = min(item.x - item.width / 2 for row in ranks.values() for item in row)
    right = max(item.x + item.width / 2 for row in ranks.values() for item in row)
    for row in ranks.values():
        for item in row:
            item.x += MARGIN - left
    return right - left + 2 * MARGIN, y - GAP_Y + MARGIN


def _gap(a: _Item, b: _Item) -> float:
    """The least distance between the centres of two neighbours in a rank."""
    gap = GAP_X if a.real is not None and b.real is not None else GAP_X / 3
    return (a.width + b.width) / 2 + gap


def _spread(row: Sequence[_Item]) -> None:
    """Move the items of a rank apart where they overlap, keeping their order and
    (roughly) their centre."""
    if len(row) < 2:
        return
    before = sum(item.x for item in row) / len(row)
    for a, b in itertools.pairwise(row):
        b.x = max(b.x, a.x + _gap(a, b))
    shift = before - sum(item.x for item in row) / len(row)
    for item in row:
        item.x += shift
    for a, b in zip(reversed(row[:-1]), reversed(row[1:]), strict=False):
        a.x = min(a.x, b.x - _gap(a, b))
    for a, b in itertools.pairwise(row):
        b.x = max(b.x, a.x + _gap(a, b))


def _curve(points: Sequence[tuple[float, float]]) -> str:
    """A smooth SVG path through `points` (Catmull-Rom as cubic Béziers)."""
    if len(points) == 2:
        (x0, y0), (x1, y1) = points
        return f"M{x0:.1f},{y0:.1f} L{x1:.1f},{y1:.1f}"
    path = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for i in range(len(points) - 1):
        p0 = points[i - 1] if i > 0 else points[i]
        p1, p2 = points[i], points[i + 1]
        p3 = points[i + 2] if i + 2 < len(points) else p2
        c1 = (p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6)
        c2 = (p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6)
        path.append(f"C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} "
                    f"{p2[0]:.1f},{p2[1]:.1f}")
    return " ".join(path)


def _attach(item: _Item, toward: _Item) -> tuple[float, float]:
    """Where a line from `item` toward `toward` leaves the item's box (top or bottom
    middle of a real node, the centre of a virtual one)."""
    if item.real is None:
        return item.x, item.y
    below = toward.y > item.y
    return item.x, item.y + (item.height / 2 if below else -item.height / 2)


def render_svg(diagram: Diagram, *, element_id: str = "graph") -> str:
    """`diagram` laid out and drawn as an inline SVG element (escaped throughout)."""
    if not diagram.nodes:
        return ""
    items, chains, width, height = layout(diagram)
    out = [f'<svg id="{escape(element_id)}" class="diagram" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" role="img" aria-label="{escape(diagram.title)}">',
           f"<title>{escape(diagram.title)}</title>",
           '<defs><marker id="arrow-' + escape(element_id) + '" viewBox="0 0 10 10" refX="9" '
           'refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>']
    for edge, chain in chains:
        points = [_attach(chain[0], chain[1])]
        points += [(item.x, item.y) for item in chain[1:-1]]
        points.append(_attach(chain[-1], chain[-2]))
        classes = " ".join(("edge", *edge.classes))
        out.append(f'<g class="{escape(classes)}" data-source="{escape(edge.source)}" '
                   f'data-target="{escape(edge.target)}">'
                   f'<path d="{_curve(points)}" marker-end="url(#arrow-{escape(element_id)})"/>')
        for item in chain[1:-1]:
            if item.label:
                out.append(f'<rect class="label-bg" x="{item.x - item.width / 2:.1f}" '
                           f'y="{item.y - 8:.1f}" width="{item.width:.1f}" height="16" rx="3"/>'
                           f'<text class="edge-label" x="{item.x:.1f}" y="{item.y + 4:.1f}" '
                           f'text-anchor="middle">{escape(item.label)}</text>')
        out.append("</g>")
    for node in diagram.nodes:
        item = items[node.id]
        classes = " ".join(("node", *node.classes))
        x, y = item.x - item.width / 2, item.y - item.height / 2
        out.append(f'<g class="{escape(classes)}" data-state="{escape(node.id)}">')
        if node.title:
            out.append(f"<title>{escape(node.title)}</title>")
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{item.width:.1f}" '
                   f'height="{item.height:.1f}" rx="8"/>')
        text_y = item.y + 4 - (6 if node.note else 0)
        out.append(f'<text x="{item.x:.1f}" y="{text_y:.1f}" text-anchor="middle">'
                   f"{escape(node.label)}</text>")
        if node.note:
            out.append(f'<text class="note" x="{item.x:.1f}" y="{text_y + 13:.1f}" '
                       f'text-anchor="middle">{escape(node.note)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
