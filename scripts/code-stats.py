#!/usr/bin/env python3
"""Size figures of the C sources: functions, the longest ones, the largest
files. A function runs from its definition line (column 0, with a '(', its
header ending in '{' rather than ';') to the next line that starts with '}'.

    scripts/code-stats.py [dir ...]        default: src
"""
import os
import re
import sys

LONG = 60
DEF = re.compile(r"^[A-Za-z_][^;=]*\(")


def functions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    out, start, name, body = [], None, None, False
    for i, line in enumerate(lines):
        if start is None:
            if DEF.match(line) and not line.startswith(("typedef", "struct", "enum", "union", "#")):
                start, name, body = i, line.split("(")[0].split()[-1].lstrip("*"), False
            else:
                continue
        if not body:
            # The header ends in '{' (a definition) or ';' (a prototype).
            if line.rstrip().endswith(";"):
                start = None
            elif line.rstrip().endswith("{") or line.strip() == "{":
                body = True
            continue
        if line.startswith("}"):
            out.append((i - start + 1, name))
            start = None
    return out, len(lines)


def main(dirs):
    fns, files = [], []
    for d in dirs:
        for root, _, names in os.walk(d):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    p = os.path.join(root, n)
                    f, nlines = functions(p)
                    fns += [(length, name, p) for length, name in f]
                    files.append((nlines, p))
    fns.sort(reverse=True)
    files.sort(reverse=True)
    print(f"functions: {len(fns)}, over {LONG} lines: {sum(1 for f in fns if f[0] > LONG)}")
    for length, name, p in fns[:5]:
        print(f"  {length:5d} {name} ({p})")
    print("largest files:")
    for nlines, p in files[:5]:
        print(f"  {nlines:5d} {p}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["src"])
