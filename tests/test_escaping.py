"""Text from the data is escaped wherever it is rendered."""

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from cluster.outputs.files import draw_map, md_escape, ranking_markdown


def test_md_escape_neutralises_table_and_markup_characters():
    assert md_escape("A|B") == "A\\|B"
    assert md_escape("<script>x</script>") == "\\<script\\>x\\</script\\>"
    assert md_escape("two\nlines") == "two lines"
    assert md_escape("*bold* [link](u)") == "\\*bold\\* \\[link\\]\\(u\\)"


def _clusters(name):
    return gpd.GeoDataFrame({
        "rank": [1], "cluster_id": ["gx"], "name": [name], "economies": ["XX"], "patents": [1.0],
        "score": [1.0], "intensity_rank": pd.array([1], dtype="Int64"), "tier": ["top"],
        "anchor_lat": [0.0], "anchor_lon": [0.0],
    }, geometry=[box(-0.1, -0.1, 0.1, 0.1)], crs="EPSG:4326")


def test_markdown_table_keeps_its_shape_with_hostile_names():
    table = _clusters("Evil|Town <b>")
    info = {"counts": {"clusters": 1, "top": 1, "emerging": 0, "records_used": 1, "sites": 1},
            "config": {"clustering": {"eps_km": 10}}}
    md = ranking_markdown(table, info, ["patents"], None)
    row = [line for line in md.splitlines() if line.startswith("| 1 ")][0]
    assert row.count("|") - row.count("\\|") == 7  # 6 cells, no extra column from the name
    assert "<b>" not in md


def test_map_label_with_dollar_signs_renders(tmp_path):
    # Unescaped, '$x$' would be typeset as math (or fail on an odd number of '$').
    draw_map(_clusters("Cash $ Town $x$"), tmp_path / "m.png", notice=None)
    assert (tmp_path / "m.png").stat().st_size > 0
