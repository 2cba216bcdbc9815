#!/usr/bin/env python3
"""Checks the module layering of src/: no module-level import cycle, no import upwards.

Reads every `crate::<module>` path in src/ (and `gs_livo::<module>` in the binary's files),
skipping comments, and maps each file to its top-level module. The allowed order is LAYERS
below, top first, the same as docs/architecture.md: a module may import only from modules in
a lower layer; modules in one layer may not import each other. Prints the module graph; exits
1 on an upward or sideways import or a cycle. `--graph` prints the graph and always exits 0.
Standard library only.
"""

import re
import sys
from pathlib import Path

# Top to bottom. Keep in step with docs/architecture.md.
LAYERS = [
    ["lib", "main", "cli"],
    ["ros"],
    ["pipeline"],
    ["report", "sim", "session"],
    ["config"],
    ["estimator"],
    ["gaussian"],
    ["render", "lidar_map"],
    ["bag", "sync", "eval"],
    ["sensors"],
    ["simd", "testdata", "voxel_key"],
]

PATH = re.compile(r"\b(?:crate|gs_livo)::(?:\{\s*)?([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\b(?:crate|gs_livo)::\{([^}]*)\}", re.S)


def module_of(src: Path, f: Path) -> str:
    rel = f.relative_to(src)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def imports(src: Path) -> dict:
    graph = {}
    for f in sorted(src.rglob("*.rs")):
        m = module_of(src, f)
        code = strip_comments(f.read_text())
        deps = set(PATH.findall(code))
        for group in GROUP.findall(code):
            deps.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        deps.discard(m)
        deps.discard("self")
        graph.setdefault(m, {})
        for d in deps:
            graph[m].setdefault(d, []).append(str(f.relative_to(src.parent)))
    return graph


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    graph = imports(root / "src")
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    problems = []
    for m in sorted(graph):
        if m not in rank:
            problems.append(f"module `{m}` is not in LAYERS (scripts/check_layers.py)")
    for m in sorted(graph):
        deps = sorted(graph[m])
        print(f"{m} -> {', '.join(deps) if deps else '(nothing)'}")
        for d in deps:
            if d not in rank or m not in rank:
                continue
            if rank[d] <= rank[m]:
                where = ", ".join(sorted(set(graph[m][d]))[:3])
                kind = "upward" if rank[d] < rank[m] else "sideways"
                problems.append(f"{kind} import {m} -> {d} ({where})")
    for c in cycles(graph):
        problems.append(f"import cycle among: {', '.join(c)}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if "--graph" in sys.argv[1:]:
        return 0
    if problems:
        print(f"{len(problems)} layering problem(s); the order is in docs/architecture.md",
              file=sys.stderr)
        return 1
    print("layers ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
