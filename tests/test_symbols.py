#!/usr/bin/env python3
"""The library can be linked into a user's program: every global symbol
that libtrainer.a defines starts with tr_ (nm), so that a program with its
own `image` or `evaluate` links beside it; and every type that the
installed headers (include/) name starts with tr_.  Skipped (77) without
nm (binutils)."""
import os
import re
import shutil
import subprocess
import sys

from testlib import check, finish

LIBRARY, HEADERS = sys.argv[1], sys.argv[2]

if not shutil.which("nm"):
    print("test_symbols: nm is not installed (apt-get install binutils): skipped")
    sys.exit(77)

r = subprocess.run(["nm", "-g", "--defined-only", LIBRARY], capture_output=True, text=True)
check(r.returncode == 0, f"nm {LIBRARY}: {r.stderr}")
symbols = sorted({f[2] for f in (line.split() for line in r.stdout.splitlines()) if len(f) == 3})
# Names with two underscores are the implementation's: a sanitizer adds
# __odr_asan.NAME beside each instrumented global.
bare = [s for s in symbols if not s.startswith(("tr_", "__"))]
check(len(symbols) > 200, f"only {len(symbols)} global symbols read from {LIBRARY}")
check(not bare, f"{len(bare)} global symbols without tr_: {' '.join(bare[:20])}")
print(f"{len(symbols)} global symbols, {len(bare)} without tr_")

types = set()
for name in sorted(os.listdir(HEADERS)):
    if name.endswith(".h"):
        with open(os.path.join(HEADERS, name)) as f:
            text = re.sub(r"/\*.*?\*/|//[^\n]*", "", f.read(), flags=re.S)
        # Each typedef to its ';' outside braces: the name is the (*name)
        # of a function pointer, or else the last word.
        for m in re.finditer(r"\btypedef\b", text):
            depth, k = 0, m.end()
            while k < len(text) and not (text[k] == ";" and depth == 0):
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                k += 1
            body = text[m.end():k]
            pointer = "{" not in body and re.search(r"\(\s*\*\s*(\w+)\s*\)", body)
            types.add(pointer.group(1) if pointer else re.findall(r"\w+", body)[-1])
        # struct and enum tags are the types' names too
        types |= set(re.findall(r"\b(?:struct|enum)\s+(\w+)", text))
bare_types = sorted(t for t in types if not t.startswith("tr_"))
check(len(types) > 20, f"only {len(types)} types found in {HEADERS}")
check(not bare_types, f"{len(bare_types)} public types without tr_: {' '.join(bare_types)}")
print(f"{len(types)} public types, {len(bare_types)} without tr_")
finish("test_symbols")
