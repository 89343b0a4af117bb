#!/usr/bin/env python3
"""Rebuild ``cluster/outputs/vendor/`` (Leaflet and Natural Earth countries)
from pinned npm packages, reproducibly.

Why vendored: ``map.html`` must work offline (no CDN) and ``map.png`` needs country
borders and coastlines without a download at run time, so the few files both need are
committed to the package as data, unchanged from the npm tarballs, with their licences.

What it does, for every package pinned in ``PINS``:

1. ``npm pack <name>@<version>`` (the ordinary npm client, registry.npmjs.org) into a
   temporary directory, and checks the tarball against the registry's own
   ``dist.integrity`` (SHA-512, Subresource-Integrity form);
2. copies the listed files out of the tarball, byte for byte;
3. writes ``manifest.json``: package, version, licence, tarball URL and integrity, and
   every vendored file with its SHA-256 and size.

``--check`` rebuilds into a temporary directory and fails (exit 1) unless every file and
the manifest are byte-identical to the committed ones. The test suite checks the committed
files against the manifest's SHA-256 without the network (tests/test_maps.py).

Usage::

    python scripts/vendor_map_assets.py           # rebuild cluster/outputs/vendor/
    python scripts/vendor_map_assets.py --check   # verify the committed files
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "cluster" / "outputs" / "vendor"

# name, version, licence, {path in the tarball (under package/): path under vendor/<name>/}
PINS = [
    ("leaflet", "1.9.4", "BSD-2-Clause", {
        "dist/leaflet.js": "leaflet.js",
        "dist/leaflet.css": "leaflet.css",
        "dist/images/layers.png": "images/layers.png",
        "dist/images/layers-2x.png": "images/layers-2x.png",
        "dist/images/marker-icon.png": "images/marker-icon.png",
        "LICENSE": "LICENSE",
    }),
    # Natural Earth 4.1.0 Admin 0 countries at 1:50m (public domain), as TopoJSON with the
    # objects `countries` and `land`; the package's ISC licence covers its build scripts.
    ("world-atlas", "2.0.2", "ISC (Natural Earth data: public domain)", {
        "countries-50m.json": "countries-50m.json",
        "LICENSE": "LICENSE",
    }),
]

NATURAL_EARTH_NOTICE = """\
Natural Earth (https://www.naturalearthdata.com/), version 4.1.0, Admin 0 countries at
1:50m, redistributed as TopoJSON by the npm package world-atlas 2.0.2.

Natural Earth data are in the public domain: "All versions of Natural Earth raster + vector
map data found on this website are in the public domain. You may use the maps in any manner,
including modifying the content and design, electronic dissemination, and offset printing.
The primary authors, Tom Patterson and Nathaniel Vaughn Kelso, and all other contributors
renounce all financial claim to the maps and invites you to use them for personal,
educational, and commercial purposes." (https://www.naturalearthdata.com/about/terms-of-use/)

Made with Natural Earth. Free vector and raster map data @ naturalearthdata.com.
"""


def _npm(*args: str, cwd: Path) -> str:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not installed (Debian: apt-get install npm)")
    res = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"npm {' '.join(args)} failed:\n{res.stderr}")
    return res.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(dest: Path) -> None:
    """Write the vendored files and ``manifest.json`` into ``dest`` (emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    manifest = {"generated_by": "scripts/vendor_map_assets.py", "packages": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, version, licence, files in PINS:
            spec = f"{name}@{version}"
            info = json.loads(_npm("view", spec, "dist", "--json", cwd=tmp))
            packed = json.loads(_npm("pack", spec, "--json", cwd=tmp))[0]
            tarball = tmp / packed["filename"]
            algo, digest = info["integrity"].split("-", 1)
            got = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
            if got != digest:
                sys.exit(f"{spec}: tarball {algo} {got} does not match the registry's {digest}")
            entry = {"name": name, "version": version, "license": licence, "tarball": info["tarball"],
                     "integrity": info["integrity"], "files": {}}
            with tarfile.open(tarball) as tar:
                for src, rel in sorted(files.items(), key=lambda kv: kv[1]):
                    data = tar.extractfile(f"package/{src}").read()
                    out = dest / name / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(data)
                    entry["files"][f"{name}/{rel}"] = {"from": f"package/{src}", "sha256": _sha256(out),
                                                       "bytes": len(data)}
            manifest["packages"].append(entry)
    notice = dest / "world-atlas" / "NATURAL_EARTH.txt"
    notice.write_text(NATURAL_EARTH_NOTICE, "utf-8")
    manifest["packages"][-1]["files"]["world-atlas/NATURAL_EARTH.txt"] = {
        "from": "scripts/vendor_map_assets.py", "sha256": _sha256(notice), "bytes": notice.stat().st_size}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild in a temporary directory and compare")
    args = parser.parse_args(argv)
    if not args.check:
        build(VENDOR)
        print(f"rebuilt {VENDOR}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "vendor"
        build(fresh)
        cmp = filecmp.dircmp(fresh, VENDOR)
        bad = []

        def walk(c, prefix=""):
            bad.extend(prefix + f for f in c.left_only + c.right_only + c.diff_files + c.funny_files)
            for sub, sc in c.subdirs.items():
                walk(sc, prefix + sub + "/")

        # dircmp compares shallowly by stat; compare contents for every common file.
        for f in fresh.rglob("*"):
            if f.is_file():
                other = VENDOR / f.relative_to(fresh)
                if other.is_file() and f.read_bytes() != other.read_bytes():
                    bad.append(str(f.relative_to(fresh)))
        walk(cmp)
        bad = sorted(set(b for b in bad if b != "__pycache__"))
        if bad:
            print("differs from a fresh build: " + ", ".join(bad))
            return 1
    print("vendored files match a fresh build from npm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
