#!/usr/bin/env python3
"""No folder of src/ includes a folder above it: model/ uses nothing of
files/ or training/, files/ nothing of training/, and the modules at the
root of src/ (and src/group/, the processes) nothing of any folder.  An
include counts through a folder's own headers ("model/dense.h") and through
the public headers of include/, each of which belongs to the folder of its
source (include/train.h to src/training/train.c); a public header without a
source of its name (epoch.h) holds shared types and belongs to none."""
import os
import re
import sys

from testlib import check, finish

ROOT = sys.argv[1]
SRC, INCLUDE = os.path.join(ROOT, "src"), os.path.join(ROOT, "include")
BASE = ""  # the root of src/: error, rng, fileio, optimizer
# What each folder may not use.
FORBIDDEN = {
    BASE: {"data", "pictures", "model", "files", "training"},
    "group": {"data", "pictures", "model", "files", "training"},
    "model": {"files", "training"},
    "files": {"training"},
}

sources = {}  # path relative to src/ -> its folder ("" at the root)
for d, _, names in os.walk(SRC):
    for n in names:
        if n.endswith((".c", ".h")):
            rel = os.path.relpath(os.path.join(d, n), SRC)
            sources[rel] = os.path.dirname(rel)

home = {}  # public header -> the folder of its source
for h in os.listdir(INCLUDE):
    stem = h[:-2]
    for rel, folder in sources.items():
        if os.path.basename(rel) == stem + ".c":
            home[h] = folder
check(home.get("train.h") == "training" and home.get("model.h") == "model",
      f"the headers' folders were not found: {home}")

uses = 0
for rel, folder in sorted(sources.items()):
    here = os.path.dirname(rel)
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            name = m.group(1)
            if os.path.exists(os.path.join(SRC, here, name)):
                target = os.path.dirname(os.path.normpath(os.path.join(here, name)))
            elif os.path.exists(os.path.join(SRC, name)):
                target = os.path.dirname(name)
            elif name in home:
                target = home[name]
            else:
                continue
            uses += 1
            check(target not in FORBIDDEN.get(folder, set()),
                  f"src/{rel}:{number}: {folder or 'src/'} includes {name}, of {target}/")
check(uses > 100, f"only {uses} includes read under {SRC}")
print(f"{uses} includes between the library's modules read")
finish("test_layering")
