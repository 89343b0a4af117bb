"""Copy the pictures of the README's gallery into docs/gallery/, scaled to 1200 pixels wide.

    make gallery                     # runs the commands below, then this script
    python scripts/gallery.py        # only the copy, from the make targets' output folders

Each picture comes from the output folder of a make target (the README's gallery lists the
commands); a folder that is missing is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# gallery file -> the picture it is made from (relative to the repository)
PICTURES = {
    "map-demo.png": "out/map.png",
    "map-real.png": "out-real/map.png",
    "sweep-spearman.png": "out-sweep/heatmap_spearman.png",
    "compare.png": "out-compare/compare.png",
    "index-uncertainty.png": "out-index-gihi/uncertainty.png",
    "index-correlations.png": "out-index-gihi/correlations.png",
}
WIDTH_PX = 1200


def main(argv=None) -> int:
    from PIL import Image  # matplotlib's own dependency

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="where the output folders are")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    missing = 0
    for name, source in PICTURES.items():
        path = args.root / source
        if not path.is_file():
            print(f"missing {path} (run its make target first)", file=sys.stderr)
            missing += 1
            continue
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.width > WIDTH_PX:
                im = im.resize((WIDTH_PX, round(im.height * WIDTH_PX / im.width)), Image.LANCZOS)
            # a palette of 256 colours: maps and heat maps hold few, and the file is a third
            im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                args.out / name, optimize=True)
        print(f"{args.out / name}: from {source}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
