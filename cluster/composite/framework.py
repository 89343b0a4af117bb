"""The framework of a composite index: a TOML file read into a validated tree.

A composite indicator (JRC/OECD *Handbook on Constructing Composite Indicators*, 2008;
COINr's "iMeta") is a tree: **indicators** at the leaves, **groups** (dimensions,
sub-dimensions, ...) above them, one root group (the index). The file lists nodes flat,
each naming its ``parent``, exactly as COINr's metadata table does, so a tree of any depth
is a list of ``[[group]]`` and ``[[indicator]]`` entries::

    [index]
    name = "My index"
    normalisation = "minmax"          # default for every indicator
    aggregation = "arithmetic"        # default for every group

    [[group]]
    code = "index"                    # the root: no parent

    [[group]]
    code = "science"
    parent = "index"
    weight = 1

    [[indicator]]
    code = "pubs_pm"
    parent = "science"
    column = "publications"           # a column of the unit table (see cluster.composite.indicators)
    denominator = "population"        # optional: per inhabitant ...
    scale = 1e6                       # ... per million inhabitants
    direction = "+"                   # "+" more is better, "-" less is better
    weight = 1

Validation collects every problem (unknown keys with the closest valid name, duplicate
codes, unknown parents, cycles, several roots, childless groups, weights that are not
positive numbers, unknown method names) and raises one :class:`~cluster.errors.ConfigError`
naming the file, the entry and the fix. Columns are checked later against the data
(:func:`cluster.composite.indicators.check_columns`), where they are known.

Limits: at most :data:`MAX_INDICATORS` (5,000) indicators, :data:`MAX_GROUPS` (5,000)
groups and :data:`MAX_DEPTH` (32) levels of groups below the index. The GII has 80
indicators in 3 levels, the JRC/OECD Handbook's examples fewer; the limits leave two orders
of magnitude of room and keep a hostile file from running for hours. Every check of the tree
runs in time linear in its size, without recursion (a chain of any length cannot reach
Python's recursion limit): a file beyond a limit is refused at once, naming it.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

NORMALISATIONS = ("minmax", "zscore", "rank", "distance")
AGGREGATIONS = ("arithmetic", "geometric", "harmonic")
MISSING_RULES = ("reweight", "mean", "median", "zero", "min")
TABLE_KINDS = ("csv", "points", "polygons")
TABLE_HOW = ("sum", "count", "max", "min", "mean", "nunique", "hhi")
SHIPPED = {"gihi": "gihi_like.toml", "ecnu": "ecnu_like.toml"}
MAX_INDICATORS = 5_000  # see the module docstring
MAX_GROUPS = 5_000
MAX_DEPTH = 32  # levels of groups below the root (the root's children are at depth 1)
# Monte Carlo samples N (2N replicates): the Saltelli/Jansen estimators settle within a few
# thousand; 100,000 already take hours on 1,000 clusters, 1e12 never end.
MAX_SAMPLES = 100_000
MAX_SEED = 2**63 - 1  # numpy takes any seed >= 0; index.json holds an int64

_INDEX_KEYS = {"name", "description", "normalisation", "aggregation", "unit_label"}
_UNITS_KEYS = {"top_n"}
_TREATMENT_KEYS = {"missing", "missing_group", "winsorise", "skew", "kurtosis", "max_winsorised", "fallback"}
_NORM_KEYS = {"minmax", "zscore"}
_UNC_KEYS = {"samples", "seed", "weights", "normalisation", "aggregation", "leave_one_out", "tolerance",
             "max_samples"}
#: Default convergence tolerance of the sensitivity indices: the samples are doubled until
#: every 95 % bootstrap interval of S1 and ST is at most this wide (or max_samples is reached).
MC_TOLERANCE = 0.1
#: Default largest number of samples N the convergence check may reach.
MC_MAX_SAMPLES = 12_800
_CORR_KEYS = {"low", "high"}
_GROUP_KEYS = {"code", "parent", "label", "weight", "aggregation", "normalisation"}
_IND_KEYS = {
    "code",
    "parent",
    "label",
    "column",
    "direction",
    "weight",
    "denominator",
    "scale",
    "normalisation",
    "missing",
    "optional",
    "note",
}
_TABLE_KEYS = {"name", "kind", "path", "key", "lat", "lon", "aggregate", "note"}
_TOP_KEYS = {
    "index": _INDEX_KEYS,
    "units": _UNITS_KEYS,
    "treatment": _TREATMENT_KEYS,
    "normalisation": _NORM_KEYS,
    "uncertainty": _UNC_KEYS,
    "correlation": _CORR_KEYS,
    "group": _GROUP_KEYS,
    "indicator": _IND_KEYS,
    "table": _TABLE_KEYS,
}


@dataclass(frozen=True)
class Indicator:
    """A leaf of the framework: one column of the unit table, optionally divided by another."""

    code: str
    parent: str
    column: str
    label: str = ""
    direction: int = 1
    weight: float = 1.0
    denominator: str = ""
    scale: float = 1.0
    normalisation: str = ""  # "" = inherit from the parent chain / [index]
    missing: str = ""  # "" = [treatment] missing
    optional: bool = False
    note: str = ""


@dataclass(frozen=True)
class Group:
    """An inner node (dimension, sub-dimension or the index itself)."""

    code: str
    parent: str = ""
    label: str = ""
    weight: float = 1.0
    aggregation: str = ""  # "" = [index] aggregation
    normalisation: str = ""  # default for the indicators below it


@dataclass(frozen=True)
class Table:
    """A user table joined to the units: ``csv`` keyed by unit id, or points/polygons in space.

    ``aggregate`` maps a new column name to ``"how"`` or ``"how:column"``, ``how`` one of
    sum, count, max, min, mean, nunique (distinct values of ``column``), hhi (Herfindahl
    concentration of the points over the categories of ``column``, 0-1).
    """

    name: str
    kind: str
    path: str = ""
    key: str = "cluster_id"
    lat: str = "lat"
    lon: str = "lon"
    aggregate: tuple = ()
    note: str = ""


@dataclass(frozen=True)
class Framework:
    """A validated composite-index framework (see the module docstring for the file format)."""

    name: str
    source: str
    groups: tuple[Group, ...]
    indicators: tuple[Indicator, ...]
    tables: tuple[Table, ...] = ()
    description: str = ""
    normalisation: str = "minmax"
    aggregation: str = "arithmetic"
    top_n: int = 100
    missing: str = "reweight"
    missing_group: str = ""
    winsorise: bool = True
    skew: float = 2.0
    kurtosis: float = 3.5
    max_winsorised: int = 5
    fallback: str = "log"
    minmax: tuple[float, float] = (0.0, 100.0)
    zscore: tuple[float, float] = (0.0, 1.0)
    mc_samples: int = 500
    mc_seed: int = 0
    mc_weights: float = 0.25
    mc_normalisation: tuple[str, ...] = ()
    mc_aggregation: tuple[str, ...] = ()
    mc_leave_one_out: bool = True
    mc_tolerance: float = MC_TOLERANCE
    mc_max_samples: int = MC_MAX_SAMPLES
    corr_low: float = 0.3
    corr_high: float = 0.9
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Group:
        return next(g for g in self.groups if not g.parent)

    @cached_property
    def _tree(self) -> tuple[dict, dict]:
        """(code -> group, code -> children in file order), built once: lookups in O(1)."""
        by_code = {g.code: g for g in self.groups}
        kids: dict[str, list] = {}
        for n in (*self.groups, *self.indicators):
            kids.setdefault(n.parent, []).append(n)
        return by_code, kids

    def children(self, code: str) -> list:
        """Children of group ``code`` (groups and indicators) in file order."""
        return list(self._tree[1].get(code, ()))

    def group(self, code: str) -> Group:
        return self._tree[0][code]

    def indicator_normalisation(self, ind: Indicator) -> str:
        """The normalisation of ``ind``: its own, else the nearest ancestor's, else [index]."""
        if ind.normalisation:
            return ind.normalisation
        code = ind.parent
        while code:
            g = self.group(code)
            if g.normalisation:
                return g.normalisation
            code = g.parent
        return self.normalisation

    def group_aggregation(self, g: Group) -> str:
        return g.aggregation or self.aggregation

    def postorder(self) -> list[Group]:
        """Groups children-first (the order in which aggregation runs)."""
        out: list[Group] = []
        stack = [(self.root, False)]  # iterative: no recursion limit, whatever the depth
        while stack:
            g, expanded = stack.pop()
            if expanded:
                out.append(g)
                continue
            stack.append((g, True))
            stack.extend((c, False) for c in reversed(self.children(g.code)) if isinstance(c, Group))
        return out

    def depth(self, code: str) -> int:
        by_code = self._tree[0]
        d, node = 0, code
        while node:
            g = by_code.get(node)
            node = g.parent if g is not None else ""
            d += 1
        return d - 1

    def without(self, codes) -> Framework:
        """A copy without the indicators in ``codes`` (for leave-one-out and absent columns)."""
        from dataclasses import replace

        drop = set(codes)
        inds = tuple(i for i in self.indicators if i.code not in drop)
        groups = self.groups
        while True:  # a group left without children goes too (its weight moves to its siblings)
            used = {n.parent for n in (*groups, *inds)}
            keep = tuple(g for g in groups if g.code in used or not g.parent)
            if len(keep) == len(groups):
                break
            groups = keep
        if not inds:
            raise ConfigError(
                f"Framework {self.source}: no indicator left once those without data are left out. "
                "Give the tables the framework needs (--table NAME=FILE)."
            )
        return replace(self, indicators=inds, groups=groups)

    def empty_groups(self, codes) -> list[str]:
        """Groups that :meth:`without` removes along with the indicators ``codes``."""
        kept = {g.code for g in self.without(codes).groups}
        return [g.code for g in self.groups if g.code not in kept]


def _closest(key: str, allowed) -> str:
    near = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" Did you mean '{near[0]}'?" if near else f" Valid keys: {', '.join(sorted(allowed))}."


def _weight(value, where: str, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        problems.append(
            f"{where}: weight must be a positive number, got {value!r}. "
            "Give a weight > 0, or remove the entry to leave it out."
        )
        return 1.0
    return float(value)


def _choice(value, allowed, where: str, key: str, problems: list[str]) -> str:
    if value == "" or value in allowed:
        return value
    near = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    problems.append(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}.{hint}")
    return ""


def resolve_framework_path(name_or_path: str | Path) -> Path:
    """A shipped framework name (``gihi``, ``ecnu``) or a TOML file path -> the file's path.

    Parameters
    ----------
    name_or_path : str or path-like
        A shipped framework's name (``gihi``, ``ecnu``) or a TOML file.

    Returns
    -------
    pathlib.Path
        The framework file.
    """
    text = str(name_or_path)
    if text in SHIPPED:
        return Path(str(resources.files("cluster.composite") / "frameworks" / SHIPPED[text]))
    path = Path(text)
    if not path.is_file():
        msg = (
            f"Framework file {path} not found. Give a TOML file or one of the shipped frameworks: {', '.join(SHIPPED)}."
        )
        raise ConfigError(msg)
    return path


def load_framework(name_or_path: str | Path) -> Framework:
    """Read and validate a framework TOML file.

    Parameters
    ----------
    name_or_path : str or Path
        A TOML file, or the name of a shipped framework (``"gihi"``, ``"ecnu"``).

    Returns
    -------
    Framework

    Raises
    ------
    ConfigError
        Every problem in the file at once, each naming the entry, the key and the fix.
    """
    path = resolve_framework_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Framework {path} is not valid TOML: {exc}. Fix the syntax at that line.") from None
    return parse_framework(data, source=str(path))


def parse_framework(data: dict, *, source: str = "<framework>") -> Framework:
    """Validate a framework given as a dict (the parsed TOML); see :func:`load_framework`.

    Parameters
    ----------
    data : dict
        The framework document as parsed from TOML.
    source : str
        What messages call the document (its path).

    Returns
    -------
    Framework
        The validated framework.
    """
    problems: list[str] = []
    for key, value in data.items():
        if key not in _TOP_KEYS:
            problems.append(f"unknown section [{key}].{_closest(key, _TOP_KEYS)}")
            continue
        entries = value if isinstance(value, list) else [value]
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                problems.append(f"[{key}] must be a table, got {entry!r}.")
                continue
            where = (
                f"[[{key}]] #{n}" + (f" (code '{entry['code']}')" if "code" in entry else "")
                if isinstance(value, list)
                else f"[{key}]"
            )
            for k in entry:
                if k not in _TOP_KEYS[key]:
                    problems.append(f"{where}: unknown key '{k}'.{_closest(k, _TOP_KEYS[key])}")
    for key in ("group", "indicator", "table"):
        if key in data and not isinstance(data[key], list):
            problems.append(f"[{key}] must be an array of tables: write [[{key}]] for each entry.")
    for key, limit, fix in (("indicator", MAX_INDICATORS, "keep the indicators that matter, or split the index"),
                            ("group", MAX_GROUPS, "merge groups, or split the index")):
        n = len(data[key]) if isinstance(data.get(key), list) else 0
        if n > limit:
            problems.append(f"{n:,} [[{key}]] entries: a framework holds at most {limit:,} {key}s "
                            f"(MAX_{key.upper()}S). Fix: {fix}.")
    if problems:
        _report(problems, source)

    idx = data.get("index", {})
    norm_default = _choice(idx.get("normalisation", "minmax"), NORMALISATIONS, "[index]", "normalisation", problems)
    aggr_default = _choice(idx.get("aggregation", "arithmetic"), AGGREGATIONS, "[index]", "aggregation", problems)

    groups: list[Group] = []
    for n, g in enumerate(data.get("group", []), 1):
        where = f"[[group]] #{n}"
        code = g.get("code")
        if not isinstance(code, str) or not code:
            problems.append(f"{where}: code is required (a short name such as 'science').")
            continue
        where += f" (code '{code}')"
        groups.append(
            Group(
                code=code,
                parent=str(g.get("parent", "")),
                label=str(g.get("label", code)),
                weight=_weight(g.get("weight", 1.0), where, problems),
                aggregation=_choice(g.get("aggregation", ""), AGGREGATIONS, where, "aggregation", problems),
                normalisation=_choice(g.get("normalisation", ""), NORMALISATIONS, where, "normalisation", problems),
            )
        )

    indicators: list[Indicator] = []
    for n, i in enumerate(data.get("indicator", []), 1):
        where = f"[[indicator]] #{n}"
        code = i.get("code")
        if not isinstance(code, str) or not code:
            problems.append(f"{where}: code is required (a short name such as 'pubs_pm').")
            continue
        where += f" (code '{code}')"
        column = i.get("column")
        if not isinstance(column, str) or not column:
            problems.append(f"{where}: column is required: the unit-table column it measures.")
            column = ""
        direction = i.get("direction", "+")
        if direction in ("+", 1, "1"):
            sign = 1
        elif direction in ("-", -1, "-1"):
            sign = -1
        else:
            problems.append(
                f'{where}: direction must be "+" (more is better) or "-" (less is better), got {direction!r}.'
            )
            sign = 1
        scale = i.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            problems.append(f"{where}: scale must be a positive number (e.g. 1e6 for per million), got {scale!r}.")
            scale = 1.0
        if "parent" not in i:
            problems.append(f"{where}: parent is required: the code of its group.")
        indicators.append(
            Indicator(
                code=code,
                parent=str(i.get("parent", "")),
                column=column,
                label=str(i.get("label", code)),
                direction=sign,
                weight=_weight(i.get("weight", 1.0), where, problems),
                denominator=str(i.get("denominator", "")),
                scale=float(scale),
                normalisation=_choice(i.get("normalisation", ""), NORMALISATIONS, where, "normalisation", problems),
                missing=_choice(i.get("missing", ""), MISSING_RULES, where, "missing", problems),
                optional=bool(i.get("optional", False)),
                note=str(i.get("note", "")),
            )
        )

    _check_tree(groups, indicators, problems)
    tables = _tables(data.get("table", []), problems)
    kw = _settings(data, problems)
    if problems:
        _report(problems, source)
    return Framework(
        name=str(idx.get("name", Path(source).stem)),
        source=source,
        groups=tuple(groups),
        indicators=tuple(indicators),
        tables=tuple(tables),
        description=str(idx.get("description", "")),
        normalisation=norm_default,
        aggregation=aggr_default,
        raw=data,
        **kw,
    )


def _check_tree(groups, indicators, problems) -> None:
    codes: dict[str, str] = {}
    for node in (*groups, *indicators):
        kind = "group" if isinstance(node, Group) else "indicator"
        if node.code in codes:
            problems.append(
                f"code '{node.code}' is used twice (a {codes[node.code]} and a {kind}). "
                "Give every group and indicator its own code."
            )
        codes.setdefault(node.code, kind)
    group_codes = {g.code for g in groups}
    roots = [g.code for g in groups if not g.parent]
    if not groups:
        problems.append('no [[group]]: add a root group (one without parent), e.g. [[group]] code = "index".')
    elif len(roots) != 1:
        problems.append(
            f"exactly one group must have no parent (the index); found {len(roots)}"
            + (f": {', '.join(roots)}" if roots else "")
            + ". Give the others a parent."
        )
    orphans = [n for n in (*groups, *indicators) if n.parent and n.parent not in group_codes]
    for k, node in enumerate(orphans):
        kind = "indicator" if isinstance(node, Indicator) else "group"
        if k < _HINTS:  # a close match costs a pass over the groups: only for the first few
            near = difflib.get_close_matches(node.parent, sorted(group_codes), n=1)
            listed = sorted(group_codes)[:20]
            more = ", ..." if len(group_codes) > 20 else ""
            hint = f" Did you mean '{near[0]}'?" if near else f" Groups: {', '.join(listed)}{more}."
        else:
            hint = ""
        problems.append(f"{kind} '{node.code}': parent '{node.parent}' is not a group.{hint}")
    problems += _cycles_and_depth(groups)
    has_child = {n.parent for n in (*groups, *indicators)}
    for g in groups:
        if g.code not in has_child:
            problems.append(f"group '{g.code}' has no indicator or group below it. Add one, or remove the group.")
    if not indicators:
        problems.append("no [[indicator]]: add at least one indicator.")


_HINTS = 10  # "did you mean" hints computed for the first few unknown parents only


def _cycles_and_depth(groups) -> list[str]:
    """Cycles among the groups, and groups deeper than :data:`MAX_DEPTH`, in linear time.

    Each group's depth (levels below the root) is found by walking up its parents until a
    group of known depth, the root or an unknown parent; every group on the walk then gets
    its depth, so every group is walked once. A walk that meets itself is a cycle.
    """
    parent = {g.code: g.parent for g in groups}
    depth: dict[str, int] = {}
    problems: list[str] = []
    deepest = ("", 0)
    for g in groups:
        if g.code in depth:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        node = g.code
        while node and node in parent and node not in depth and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = parent[node]
        if node in on_path:  # a cycle: the path from `node` on
            cycle = path[on_path[node]:] + [node]
            problems.append(
                f"cycle in the tree: {' -> '.join(cycle[:12])}{' -> ...' if len(cycle) > 12 else ''} (each is "
                "the parent of the previous). Break it by giving one of them a parent outside the cycle."
            )
            base, path = 0, path[: on_path[node]]
            for code in cycle[:-1]:
                depth[code] = 0  # reported once; the groups hanging below are not counted twice
        else:
            base = depth.get(node, 0) + 1 if node in parent else 0  # a known group, the root or unknown
        for i, code in enumerate(reversed(path)):
            depth[code] = base + i
        if path and depth[path[0]] > deepest[1]:
            deepest = (path[0], depth[path[0]])
    if deepest[1] > MAX_DEPTH:
        problems.append(
            f"group '{deepest[0]}' lies {deepest[1]:,} levels below the index: a framework holds at most "
            f"{MAX_DEPTH} levels of groups (MAX_DEPTH). Flatten the tree (give deep groups a parent nearer "
            "the index)."
        )
    return problems


def _tables(entries, problems) -> list[Table]:
    tables = []
    names: set[str] = set()
    for n, t in enumerate(entries, 1):
        where = f"[[table]] #{n}"
        name = t.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: name is required (used by --table NAME=FILE).")
            continue
        where += f" (name '{name}')"
        if name in names:
            problems.append(f"{where}: table name used twice.")
        names.add(name)
        kind = _choice(t.get("kind", "csv"), TABLE_KINDS, where, "kind", problems) or "csv"
        agg = t.get("aggregate", {})
        pairs = []
        if not isinstance(agg, dict):
            problems.append(f'{where}: aggregate must be a table of NEW_COLUMN = "how:column".')
            agg = {}
        for col, spec in agg.items():
            how, _, src = str(spec).partition(":")
            if how not in TABLE_HOW:
                problems.append(
                    f"{where}: aggregate.{col} = {spec!r}: how must be one of "
                    f'{", ".join(TABLE_HOW)} (e.g. "sum:score" or "count").'
                )
            elif how not in ("count",) and not src:
                problems.append(f'{where}: aggregate.{col} = {spec!r}: {how} needs a column, e.g. "{how}:score".')
            pairs.append((col, how, src))
        if kind == "csv" and pairs:
            problems.append(
                f"{where}: aggregate applies to points and polygons; a csv table's columns are "
                "joined as they are (keyed by 'key')."
            )
        if kind != "csv" and not pairs:
            problems.append(f'{where}: a {kind} table needs aggregate = {{ NEW_COLUMN = "how:column" }}.')
        tables.append(
            Table(
                name=name,
                kind=kind,
                path=str(t.get("path", "")),
                key=str(t.get("key", "cluster_id")),
                lat=str(t.get("lat", "lat")),
                lon=str(t.get("lon", "lon")),
                aggregate=tuple(pairs),
                note=str(t.get("note", "")),
            )
        )
    return tables


def _num(sec: dict, key: str, default, where: str, problems, *, low=None, high=None, integer=False,
         allow_zero=True):
    value = sec.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and low is not None:
        ok = value >= low if allow_zero else value > low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = "" if low is None else (f" >= {low}" if allow_zero else f" > {low}")
        bound += "" if high is None else f"{' and' if bound else ''} <= {high}"
        problems.append(f"{where}: {key} must be {kind}{bound}, got {value!r}.")
        return default
    return int(value) if integer else float(value)


def with_overrides(fw: Framework, *, samples=None, seed=None, top_n=None) -> Framework:
    """The framework with ``[uncertainty] samples``/``seed`` and ``[units] top_n`` replaced,
    checked by the same rules as in the file (``None`` keeps the file's value).

    Parameters
    ----------
    fw : Framework
        A loaded framework.
    samples, seed, top_n : int, optional
        Monte Carlo samples (0 to MAX_SAMPLES), seed (>= 0), top N clusters (0 = all).

    Returns
    -------
    Framework
        The framework with the overrides.

    Raises
    ------
    ConfigError
        A value out of its range, naming it, the range and the value.
    """
    from dataclasses import replace

    problems: list[str] = []
    kw = {}
    for name, value, key, section, high in (("mc_samples", samples, "samples", "[uncertainty]", MAX_SAMPLES),
                                            ("mc_seed", seed, "seed", "[uncertainty]", MAX_SEED),
                                            ("top_n", top_n, "top_n", "[units]", None)):
        if value is not None:
            kw[name] = _num({key: value}, key, 0, f"{section} (--{'top' if key == 'top_n' else key})", problems,
                            low=0, high=high, integer=True)
    if problems:
        _report(problems, fw.source)
    return replace(fw, **kw)


def _pair(sec: dict, key: str, default, where: str, problems) -> tuple[float, float]:
    value = sec.get(key, list(default))
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        problems.append(f"{where}: {key} must be a pair of numbers, e.g. {list(default)}, got {value!r}.")
        return default
    if key == "minmax" and not value[0] < value[1]:
        problems.append(f"{where}: minmax must be [low, high] with low < high, got {value!r}.")
        return default
    if key == "zscore" and not value[1] > 0:
        problems.append(f"{where}: zscore must be [mean, sd] with sd > 0, got {value!r}.")
        return default
    return float(value[0]), float(value[1])


def _settings(data: dict, problems) -> dict:
    units = data.get("units", {})
    tr = data.get("treatment", {})
    nm = data.get("normalisation", {})
    unc = data.get("uncertainty", {})
    corr = data.get("correlation", {})
    kw: dict = {}
    kw["top_n"] = _num(units, "top_n", 100, "[units]", problems, low=0, integer=True)
    kw["missing"] = (
        _choice(tr.get("missing", "reweight"), MISSING_RULES, "[treatment]", "missing", problems) or "reweight"
    )
    kw["missing_group"] = tr.get("missing_group", "")
    if kw["missing_group"] not in ("", "economy"):
        problems.append(f'[treatment]: missing_group must be "" (all units) or "economy", got {kw["missing_group"]!r}.')
        kw["missing_group"] = ""
    kw["winsorise"] = bool(tr.get("winsorise", True))
    kw["skew"] = _num(tr, "skew", 2.0, "[treatment]", problems, low=0)
    kw["kurtosis"] = _num(tr, "kurtosis", 3.5, "[treatment]", problems)
    kw["max_winsorised"] = _num(tr, "max_winsorised", 5, "[treatment]", problems, low=0, integer=True)
    kw["fallback"] = tr.get("fallback", "log")
    if kw["fallback"] not in ("log", "none"):
        problems.append(f'[treatment]: fallback must be "log" or "none", got {kw["fallback"]!r}.')
        kw["fallback"] = "log"
    kw["minmax"] = _pair(nm, "minmax", (0.0, 100.0), "[normalisation]", problems)
    kw["zscore"] = _pair(nm, "zscore", (0.0, 1.0), "[normalisation]", problems)
    kw["mc_samples"] = _num(unc, "samples", 500, "[uncertainty]", problems, low=0, high=MAX_SAMPLES, integer=True)
    kw["mc_seed"] = _num(unc, "seed", 0, "[uncertainty]", problems, low=0, high=MAX_SEED, integer=True)
    kw["mc_weights"] = _num(unc, "weights", 0.25, "[uncertainty]", problems, low=0)
    if kw["mc_weights"] >= 1:
        problems.append(
            f"[uncertainty]: weights is the ± fraction by which weights vary and must be < 1 "
            f"(e.g. 0.25), got {kw['mc_weights']!r}."
        )
    for key, allowed in (("normalisation", NORMALISATIONS), ("aggregation", AGGREGATIONS)):
        values = unc.get(key, [])
        if not isinstance(values, list):
            problems.append(f'[uncertainty]: {key} must be a list of alternatives, e.g. ["{allowed[0]}"].')
            values = []
        kw[f"mc_{key}"] = tuple(v for v in (_choice(v, allowed, "[uncertainty]", key, problems) for v in values) if v)
    kw["mc_leave_one_out"] = bool(unc.get("leave_one_out", True))
    kw["mc_tolerance"] = _num(unc, "tolerance", MC_TOLERANCE, "[uncertainty]", problems, low=0)
    kw["mc_max_samples"] = _num(unc, "max_samples", MC_MAX_SAMPLES, "[uncertainty]", problems, low=0, integer=True)
    kw["corr_low"] = _num(corr, "low", 0.3, "[correlation]", problems)
    kw["corr_high"] = _num(corr, "high", 0.9, "[correlation]", problems)
    return kw


def _report(problems: list[str], source: str) -> None:
    lines = [f"{len(problems)} problem(s) in framework {source}:"] + [f"  - {p}" for p in problems]
    raise ConfigError("\n".join(lines))
