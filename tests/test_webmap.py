"""map.html in a real browser: headless Chromium driven through the DevTools protocol
(over ``--remote-debugging-pipe``, standard library only), with the network switched off.

Checks: nothing is requested but the page itself (and ``data:`` URIs), the page draws every
cluster, the land and the borders, the layer control switches views, a click opens a popup,
the search finds a cluster, a hostile name stays text, and a screenshot shows land, sea
and clusters."""

import base64
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Point, box

from cluster.outputs.webmap import map_data, render_html, write_map_html

METRICS = ["patents", "publications", "vc"]
EVIL = '</script><img src=x onerror="window.__pwned=1">&amp; "Q" <b>'


def _clusters(first_name="Munich"):
    """Four clusters by hand: Munich (patents), Basel (patents + publications), Tokyo
    (all), Fiji split at the antimeridian (vc only)."""
    rows = [
        ("gm", first_name, 11.575, 48.137, {"patents": 1000.0}, 3.0),
        ("gb", "Basel–Lörrach", 7.60, 47.57, {"patents": 12.0, "publications": 30.0}, 1.5),
        ("gt", "Tokyo–Yokohama", 139.69, 35.69, {"patents": 50.0, "publications": 20.0, "vc": 5.0}, 2.0),
        ("gf", "Suva", 179.99, -16.80, {"vc": 9.0}, 0.5),
    ]
    totals = {m: sum(r[4].get(m, 0) for r in rows) for m in METRICS}
    recs, geoms = [], []
    for i, (cid, name, lon, lat, counts, radius) in enumerate(rows):
        rec = {"cluster_id": cid, "name": name, "economies": "XX", "tier": "top", "anchor_lon": lon,
               "anchor_lat": lat, "population": 1_000_000 * (i + 1)}
        for m in METRICS:
            rec[m] = counts.get(m, 0.0)
            rec[f"share_{m}"] = 100 * counts.get(m, 0.0) / totals[m]
            rec[f"{m}_per_million"] = counts.get(m, 0.0) / (i + 1)
        rec["score"] = sum(rec[f"share_{m}"] for m in METRICS)
        recs.append(rec)
        if cid == "gf":
            geoms.append(MultiPolygon([box(179.9, -16.9, 180, -16.7), box(-180, -16.9, -179.9, -16.7)]))
        else:
            geoms.append(Point(lon, lat).buffer(radius / 10))
    df = gpd.GeoDataFrame(recs, geometry=geoms, crs="EPSG:4326")
    df = df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    df["intensity_score"] = df["score"] / (df["population"] / 1e6)
    df["intensity_rank"] = pd.array(df["intensity_score"].rank(ascending=False, method="first").astype(int),
                                    dtype="Int64")
    df["top_field_patents"] = ["H04W", None, "A61K", None]
    return df


class _Chromium:
    """Headless Chromium on a DevTools pipe (fd 3 in, fd 4 out, NUL-separated JSON),
    one page, the network emulated offline and every request logged."""

    def __init__(self, profile, width=1200, height=800):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            pytest.skip("chromium is not installed; .ci/run installs it")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds():  # the pipe ends become the child's fd 3 and 4 (dup'd high first: no clash)
            a, b = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._id, self._replies, self.events = 0, {}, []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for method in ("Network.enable", "Page.enable", "Runtime.enable"):
            self.send(method)
        self.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                return
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            with self._cv:
                for raw in msgs:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cv.notify_all()

    def call(self, method, session=None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        with self._cv:
            assert self._cv.wait_for(lambda: self._id in self._replies, timeout=60), method
            reply = self._replies.pop(self._id)
        assert "error" not in reply, (method, reply["error"])
        return reply["result"]

    def send(self, method, **params):  # in the page's session
        return self.call(method, session=self.session, **params)

    def wait_event(self, method, timeout=60):
        with self._cv:
            assert self._cv.wait_for(lambda: any(e["method"] == method for e in self.events), timeout=timeout), method

    def open(self, url):
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        return self

    def js(self, expression):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        return res["result"].get("value")

    def click(self, x, y):
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        time.sleep(0.2)

    def type(self, text, enter=False):
        self.send("Input.insertText", text=text)
        if enter:
            for kind in ("keyDown", "keyUp"):
                self.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)
        time.sleep(0.2)

    def requests(self):
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def errors(self):
        return [e for e in self.events if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")]

    def screenshot(self):
        from PIL import Image

        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)


@pytest.fixture
def browser(tmp_path):
    opened = []

    def start(**kw):
        b = _Chromium(tmp_path / f"profile{len(opened)}", **kw)
        opened.append(b)
        return b

    yield start
    for b in opened:
        b.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("webmap") / "map.html"
    write_map_html(path, _clusters(), METRICS, {"vc": "venture capital deals"}, notice="SYNTHETIC")
    return path


def test_map_data_has_what_the_popup_shows():
    data = map_data(_clusters(), METRICS, {})
    first = data["clusters"][0]
    assert first["name"] == "Munich" and first["rank"] == 1
    assert first["profiles"]["patents"] == [["Top field", "H04W"]] and first["profiles"]["vc"] == []
    assert first["shares"]["vc"] == 0 and first["counts"]["patents"] == 1000
    suva = next(c for c in data["clusters"] if c["id"] == "gf")
    assert len(suva["polygons"]) == 2  # both sides of the antimeridian
    assert suva["bounds"][2] - suva["bounds"][0] < 2  # zooms to the anchor, not the whole world


def test_page_is_one_file_with_leaflet_inlined(page):
    text = page.read_text()
    assert "L.map(" in text and "Leaflet 1.9.4" in text
    # Nothing to load from outside the file: no <script src>, no <link> (links to read,
    # like Leaflet's attribution, are fine), no url() but data:.
    assert not re.search(r"<script[^>]*\ssrc=|<link[\s>]", text)
    assert not [u for u in re.findall(r"url\(([^)]*)\)", text) if not u.startswith(("data:", "#"))]
    assert "url(images/" not in text and "sourceMappingURL" not in text


def test_hostile_text_cannot_leave_its_json(tmp_path):
    html = render_html(map_data(_clusters(EVIL), METRICS, {"vc": "<i>vc</i>"}), notice="<i>demo</i>")
    assert "<img" not in html and "<b>" not in html and "<i>" not in html


def test_outlines_taken_apart_at_once_are_those_of_each_cluster():
    import shapely

    from cluster.outputs.webmap import _all_polygons, _polygons

    ring = Point(8.5, 47.4).buffer(0.2, 64)
    geoms = np.array([ring.difference(Point(8.5, 47.4).buffer(0.05)),  # a hole
                      MultiPolygon([box(179.9, -16.9, 180, -16.7), box(-180, -16.9, -179.9, -16.7)]),
                      None, shapely.Polygon(), ring, shapely.GeometryCollection([ring, Point(0, 0)])], dtype=object)
    assert _all_polygons(geoms) == [_polygons(g) for g in geoms]
    assert len(_all_polygons(geoms)[0][0]) == 2  # exterior and hole


def test_basemap_json_cache_equals_the_layers_and_survives_a_damaged_file(tmp_path, monkeypatch):
    from cluster.outputs import basemap as bm
    from cluster.outputs import webmap

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    webmap._basemap_json.cache_clear()
    bm.web_layers.cache_clear()
    try:
        derived = webmap._script_json(bm.derive_web_layers())
        assert webmap._basemap_json() == derived  # derived and written
        (cached,) = (tmp_path / "innovation-clusters" / "basemap").glob("web-layers-*-script-*.txt")
        webmap._basemap_json.cache_clear()
        assert webmap._basemap_json() == derived  # read back
        cached.write_text(cached.read_text().replace("1", "2", 1))
        webmap._basemap_json.cache_clear()
        assert webmap._basemap_json() == derived  # damaged: derived again and rewritten
        assert cached.read_text().partition("\n")[2] == derived
    finally:
        webmap._basemap_json.cache_clear()
        bm.web_layers.cache_clear()


@pytest.mark.slow
def test_page_loads_nothing_from_the_network(page, browser):
    b = browser().open(page.as_uri() + "#cluster=gt")
    drawn = b.js("document.querySelectorAll('path.cluster[data-id]').length")
    assert drawn > 0
    urls = b.requests()
    assert page.as_uri() in [u.split("#")[0] for u in urls]  # the log works: the page itself is in it
    outside = [u for u in urls if not u.startswith("data:") and u.split("#")[0] != page.as_uri()]
    assert outside == []
    assert b.errors() == []


@pytest.mark.slow
def test_page_draws_clusters_borders_and_layers(page, browser):
    b = browser().open(page.as_uri())
    ids = b.js("Array.from(document.querySelectorAll('path.cluster[data-id]'), e => e.getAttribute('data-id'))")
    assert set(ids) == {"gm", "gb", "gt", "gf"}  # polygons and bubbles of every cluster
    assert b.js("document.querySelector('path.basemap-land').getAttribute('d').length") > 30_000
    assert b.js("document.querySelector('path.basemap-border').getAttribute('d').length") > 5_000
    layers = b.js("Array.from(document.querySelectorAll('.leaflet-control-layers-base input'),"
                  " e => [e.getAttribute('data-layer'), e.parentNode.textContent.trim(), e.checked])")
    assert [layer[0] for layer in layers] == ["score", "patents", "publications", "vc", "intensity"]
    assert layers[3][1] == "venture capital deals share" and layers[0][2]
    assert b.js("document.querySelector('.leaflet-control-scale-line').textContent").strip()
    # The vc layer holds only the clusters with venture capital.
    b.js("document.querySelector('input[data-layer=vc]').click()")
    ids = b.js("Array.from(document.querySelectorAll('path.cluster[data-id]'), e => e.getAttribute('data-id'))")
    assert set(ids) == {"gt", "gf"}
    assert b.js("document.querySelector('.map-legend').textContent").startswith("venture capital deals share")


@pytest.mark.slow
def test_click_opens_a_popup(page, browser):
    b = browser().open(page.as_uri())
    r = b.js("(() => { const e = document.querySelector('path.cluster-bubble[data-id=gb]');"
             " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    assert b.js("document.querySelector('.leaflet-popup') === null")
    b.click(*r)
    assert b.js("document.querySelector('.leaflet-popup-content h2').textContent") == "4. Basel–Lörrach"
    table = b.js("document.querySelector('.leaflet-popup-content table').textContent")
    assert "Population2,000,000" in table and "Intensity rank" in table and "publications" in table
    assert b.js("location.hash") == "#cluster=gb"


@pytest.mark.slow
def test_search_finds_a_cluster(page, browser):
    b = browser().open(page.as_uri())
    box = b.js("(() => { const r = document.getElementById('cluster-search').getBoundingClientRect();"
               " return [r.x + 10, r.y + r.height / 2]; })()")
    b.click(*box)
    b.type("toky")
    assert b.js("Array.from(document.querySelectorAll('#search-results li'), e => e.textContent)") == [
        "2. Tokyo–Yokohama"]
    b.type("o", enter=True)
    assert b.js("document.querySelector('.leaflet-popup-content h2').textContent") == "2. Tokyo–Yokohama"
    assert b.js("location.hash") == "#cluster=gt"


@pytest.mark.slow
def test_hostile_name_stays_inert(tmp_path, browser):
    path = tmp_path / "map.html"
    write_map_html(path, _clusters(EVIL), METRICS, {"vc": "<i>vc</i>"})
    b = browser().open(path.as_uri())
    b.click(*b.js("(() => { const r = document.getElementById('cluster-search').getBoundingClientRect();"
                  " return [r.x + 10, r.y + r.height / 2]; })()"))
    b.type("onerror", enter=True)
    assert b.js("document.querySelector('.leaflet-popup-content h2').textContent") == "1. " + EVIL
    assert b.js("window.__pwned === undefined && document.querySelectorAll('img, b, i').length === 0")
    assert b.js("document.querySelector('input[data-layer=vc]').parentNode.textContent.trim()") == "<i>vc</i> share"
    assert b.errors() == []


@pytest.mark.slow
def test_screenshot_shows_land_sea_and_clusters(page, browser):
    b = browser(width=1000, height=600).open(page.as_uri())
    img = b.screenshot()
    assert img.shape[:2] == (600, 1000) and img.std() > 10  # not blank
    colours = img.reshape(-1, 3)

    def share(rgb, tol=6):
        return (np.abs(colours - rgb).max(axis=1) <= tol).mean()

    assert share((247, 245, 240)) > 0.15  # land
    assert share((217, 230, 241)) > 0.25  # sea
    r, g, bl = colours.T
    assert ((r > 180) & (bl < 120)).sum() > 50  # cluster colours (the yellow-red ramp)
