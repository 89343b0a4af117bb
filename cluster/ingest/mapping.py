"""Inputs as they come: per-file column mapping and constants, applied before validation.

Public files rarely have the record schema (``metric, lat, lon, weight|doc_id, ...``):
PatentsView's inventor locations are ``lat,lon,n_inventors`` and have no ``metric`` at
all. Instead of reshaping them by hand, a file is given with

* a **column mapping** ``target=source`` (``weight=n_inventors``, ``lat=latitude``): the
  file's column ``source`` is read as the record column ``target``;
* **constants** ``target=value`` (``metric=patents``, ``country=US``): the column
  ``target`` is set to ``value`` on every row.

On the command line: ``--input FILE --map weight=n_inventors --metric patents`` (the
options after an ``--input`` apply to that file). In a configuration file, per input::

    [input.files."patentsview_inventor_locations_2013.csv"]
    map = { weight = "n_inventors" }
    set = { metric = "patents" }

Rules (checked here, every problem reported at once with the file and the fix):

* targets are record columns (:data:`cluster.ingest.read.COLUMNS`);
* a source is a column of the file, matched exactly, else ignoring case and blanks;
* a mapped or constant target replaces a column of that name already in the file
  (logged), so ``--map lat=latitude`` works on a file that also has an unrelated ``lat``;
* a target is either mapped or constant, not both.

The mapped table then goes through the same validation as any file, so row and column
messages still name the file's row; they name the record column (``weight``), and the
mapping is stated in the first line of the message.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cluster.errors import InputDataError, UserInputError

log = logging.getLogger(__name__)

#: Record columns a mapping or a constant may set (kept in step with read.COLUMNS).
TARGETS = ("metric", "lat", "lon", "doc_id", "weight", "year", "country", "field", "institution")


@dataclass(frozen=True)
class InputMapping:
    """Column mapping and constants of one input file.

    Attributes
    ----------
    columns : dict
        Record column -> the file's column read as it (``{"weight": "n_inventors"}``).
    constants : dict
        Record column -> value set on every row (``{"metric": "patents"}``), as text.
    """

    columns: dict = field(default_factory=dict)
    constants: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.columns or self.constants)

    def describe(self) -> str:
        """``weight=n_inventors, metric:=patents`` (for logs and messages)."""
        return ", ".join([f"{t}={s}" for t, s in self.columns.items()]
                         + [f"{t}:={v}" for t, v in self.constants.items()])


def parse_pairs(text: str, what: str = "--map") -> dict[str, str]:
    """``"lat=latitude, lon=longitude"`` -> ``{"lat": "latitude", "lon": "longitude"}``.

    Parameters
    ----------
    text : str
        Comma-separated ``TARGET=SOURCE`` pairs.
    what : str, default "--map"
        The option or key the text comes from, for messages.

    Returns
    -------
    dict
        Target (lower case) -> source.

    Raises
    ------
    UserInputError
        For an item without ``=``, an empty side or a target given twice.
    """
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        target, sep, source = item.partition("=")
        target, source = target.strip().lower(), source.strip()
        if not sep or not target or not source:
            message = (f"{what} {text!r}: expected TARGET=SOURCE pairs separated by commas "
                       "(e.g. lat=latitude,lon=longitude,weight=n_inventors).")
            raise UserInputError(message)
        if target in out:
            message = f"{what} {text!r}: '{target}' is given twice."
            raise UserInputError(message)
        out[target] = source
    if not out:
        message = f"{what} {text!r}: no TARGET=SOURCE pair given."
        raise UserInputError(message)
    return out


def mapping_problems(mapping: InputMapping, where: str) -> list[str]:
    """Problems of a mapping that do not depend on the file (unknown targets, overlaps).

    Parameters
    ----------
    mapping : InputMapping
        The mapping.
    where : str
        The input or config key, for messages.

    Returns
    -------
    list of str
        One message per problem (empty when the mapping is sound).
    """
    problems = []
    for kind, targets in (("mapped", mapping.columns), ("constant", mapping.constants)):
        for t in targets:
            if t not in TARGETS:
                close = difflib.get_close_matches(t, TARGETS, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problems.append(f"{where}: {kind} column '{t}' is not a record column.{hint} "
                                f"Record columns: {', '.join(TARGETS)}.")
    both = sorted(set(mapping.columns) & set(mapping.constants))
    if both:
        problems.append(f"{where}: column(s) {', '.join(both)} are both mapped and set to a constant; "
                        "give one of the two.")
    for t, s in mapping.columns.items():
        if not str(s).strip():
            problems.append(f"{where}: mapped column '{t}' has an empty source column name.")
    return problems


def _find(columns, name: str):
    if name in columns:
        return name
    key = name.strip().lower()
    hits = [c for c in columns if str(c).strip().lower() == key]
    return hits[0] if len(hits) == 1 else None


def mapping_plan(columns, mapping: InputMapping | None, path) -> list[tuple[str, str, str]]:
    """The columns of the mapped table, as ``(name, "column", source)`` or ``(name, "constant", value)``.

    The one statement of the mapping rules: :func:`apply_mapping` builds a DataFrame from
    it and the out-of-core scan (:mod:`cluster.ingest.engine`) builds an SQL projection.

    Parameters
    ----------
    columns : sequence of str
        The file's columns, as read.
    mapping : InputMapping or None
        Nothing to do when empty: every column as it is.
    path : path-like
        The file, for messages.

    Returns
    -------
    list of tuple
        In order: the file's columns kept, then mapped targets, then constants.

    Raises
    ------
    InputDataError
        Naming the file, every unknown target and every source column it lacks, with the
        closest column of the file.
    """
    columns = list(columns)
    if not mapping:
        return [(c, "column", c) for c in columns]
    problems = mapping_problems(mapping, str(path))
    sources = {}
    for target, source in mapping.columns.items():
        found = _find(columns, source)
        if found is None:
            close = difflib.get_close_matches(str(source), [str(c) for c in columns], n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"{path}: the mapping {target}={source} names a column '{source}' the file "
                            f"does not have.{hint} The file's columns: {', '.join(map(str, columns))}.")
        else:
            sources[target] = found
    if problems:
        raise InputDataError(problems)
    replaced = set(sources) | set(mapping.constants)
    lowered = {str(c).strip().lower(): c for c in columns}
    keep = [c for c in columns
            if (str(c).strip().lower() not in replaced or c in sources.values()) and c not in sources.values()]
    dropped = [lowered[t] for t in replaced if t in lowered and lowered[t] not in sources.values()]
    if dropped:
        log.info("%s: column(s) %s replaced by the mapping (%s)", path, ", ".join(map(str, dropped)),
                 mapping.describe())
    log.info("%s: read with %s", path, mapping.describe())
    return ([(c, "column", c) for c in keep] + [(t, "column", s) for t, s in sources.items()]
            + [(t, "constant", str(v)) for t, v in mapping.constants.items()])


def apply_mapping(raw: pd.DataFrame, mapping: InputMapping | None, path: Path) -> pd.DataFrame:
    """The raw table of ``path`` with ``mapping`` applied (a new frame; ``raw`` untouched).

    Parameters
    ----------
    raw : DataFrame
        The file as read (text cells for CSV).
    mapping : InputMapping or None
        Nothing to do when empty.
    path : Path
        The file, for messages.

    Returns
    -------
    DataFrame
        Mapped columns renamed to their targets (a source mapped to two targets is
        copied), constants added, same rows in the same order.

    Raises
    ------
    InputDataError
        As :func:`mapping_plan`.
    """
    if not mapping:
        return raw
    plan = mapping_plan(raw.columns, mapping, path)
    out = pd.DataFrame({name: raw[src] for name, kind, src in plan if kind == "column"}, index=raw.index)
    for name, kind, value in plan:
        if kind == "constant":
            out[name] = value
    return out


def mapping_for(path: str | Path, files: Mapping[str, InputMapping], config_dir: Path | None = None
                ) -> InputMapping | None:
    """The mapping configured for ``path``: the key equal to the path as given, or naming
    the same file (relative to the working directory or to ``config_dir``), or equal to
    its file name. The most specific wins (as given, then same file, then file name).

    Parameters
    ----------
    path : str or path-like
        An input as given.
    files : mapping
        ``[input.files]`` key -> InputMapping.
    config_dir : pathlib.Path, optional
        The configuration file's folder (keys may be relative to it).

    Returns
    -------
    InputMapping or None
    """
    if not files:
        return None
    p = Path(path)
    if str(path) in files:
        return files[str(path)]
    try:
        resolved = p.resolve()
    except OSError:  # pragma: no cover - unresolvable path: compare as given
        resolved = p
    for key, spec in files.items():
        candidates = [Path(key)] + ([config_dir / key] if config_dir is not None else [])
        if any(c.resolve() == resolved for c in candidates):
            return spec
    for key, spec in files.items():
        if key == p.name:
            return spec
    return None
