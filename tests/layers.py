#!/usr/bin/env python3
"""The host's layers, checked from its includes.

    tests/layers.py          check: exit 1, saying where, if a module
                             includes a header from a layer above its own,
                             or if modules include each other in a circle
    tests/layers.py --show   also print each layer's modules and what each
                             module uses, lowest layer first

A module is a .c file and its .h (host/script/vm.c and vm.h); it uses the
modules whose headers either file includes. A layer is a folder of host/,
in the order host/CMakeLists.txt builds them (each a static library that
links the ones below it). This check is what holds the line: the order of
modules inside a layer is shown, not checked, apart from circles.
"""
import os
import re
import sys

LAYERS = ["core", "event", "cliq", "script", "serve", "tools"]
HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules():
    """{module: set of modules it uses}, modules named "layer/name"."""
    uses = {}
    for layer in os.listdir(HOST):
        folder = os.path.join(HOST, layer)
        if not os.path.isdir(folder):
            continue
        for f in sorted(os.listdir(folder)):
            name, ext = os.path.splitext(f)
            if ext not in (".c", ".h"):
                continue
            mod = layer + "/" + name
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                text = fh.read()
            deps = uses.setdefault(mod, set())
            for inc in INCLUDE.findall(text):
                other = os.path.splitext(inc)[0]
                if other != mod:
                    deps.add(other)
    return uses


def circles(uses):
    """The strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(uses.get(v, ())):
            if w not in uses:
                continue
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

    sys.setrecursionlimit(10000)
    for v in sorted(uses):
        if v not in index:
            visit(v)
    return out


def main():
    uses = modules()
    problems = []
    for mod in sorted(uses):
        layer = mod.split("/")[0]
        if layer not in LAYERS:
            problems.append(f"host/{layer}/ is not a layer; add it to LAYERS and host/CMakeLists.txt")
            continue
        for dep in sorted(uses[mod]):
            if dep not in uses:
                problems.append(f"{mod} includes {dep}.h, which is not a module of host/")
                continue
            if LAYERS.index(dep.split("/")[0]) > LAYERS.index(layer):
                problems.append(f"{mod} ({layer}) includes {dep}.h from a layer above it")
    for comp in circles(uses):
        problems.append("modules in a circle: " + " <-> ".join(comp))

    if "--show" in sys.argv[1:]:
        for layer in LAYERS:
            mods = [m for m in sorted(uses) if m.startswith(layer + "/")]
            print(f"{layer}/")
            for m in mods:
                deps = ", ".join(sorted(uses[m])) or "-"
                print(f"  {m.split('/')[1]:<12} uses {deps}")
    for p in problems:
        print("layers:", p)
    if problems:
        return 1
    print(f"layers: ok ({len(uses)} modules in {len(LAYERS)} layers, no circle, nothing upward)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
