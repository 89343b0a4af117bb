"""Add an Arrow table as a new layer of a GeoPackage with GDAL, without holding the GIL.

Why this exists: ``pyogrio.write_arrow`` (0.13) calls GDAL's ``OGR_L_WriteArrowBatch``
while holding Python's global interpreter lock, so the ``sites`` layer (~400 k points at
10 M records, ~0.75 s inside GDAL and SQLite) stops every other thread of the run for as
long. No library exposes that GDAL call without the lock (GDAL's own Python bindings are
not a dependency), so this module makes it through :mod:`ctypes`, which releases the lock
for every foreign call: the map, the CSV files and the web map are written meanwhile.

The calls are pyogrio's, in pyogrio's order, with its arguments, for the case used here
(``write_arrow(table, path, layer=..., driver="GPKG", geometry_name=..., geometry_type=
"Point", crs=..., layer_metadata=...)`` on an existing GeoPackage that lacks the layer;
pyogrio/_io.pyx ``ogr_open``, ``create_ogr_dataset_layer``, ``create_fields_from_arrow_schema``,
``ogr_write_arrow``), on the same GDAL library (the one pyogrio loaded, found in
``/proc/self/maps``): the file is the same, byte for byte (tests/test_outputs_gpkg.py
compares it with pyogrio's). One setting differs, for this thread only: SQLite does not
``fsync`` the file at commit (``OGR_SQLITE_SYNCHRONOUS=OFF``). That changes no byte; it
spares waiting for ~50 MB to reach the disk, a wait that no other output file pays either
(a killed run loses nothing: the file sits in a temporary folder until every output is
written, see :mod:`cluster._atomic`). Where that library cannot be found (a platform without
``/proc``), GDAL cannot open the file or the layer already exists, :func:`add_layer`
returns False and the caller writes with pyogrio.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

# GDAL's constants (gdal.h, ogr_core.h, cpl_error.h).
_GDAL_OF_UPDATE, _GDAL_OF_VECTOR, _GDAL_OF_VERBOSE_ERROR = 0x01, 0x04, 0x40
_OAMS_TRADITIONAL_GIS_ORDER = 0
_GEOMETRY_CODES = {"Point": 1}
_CE_NONE = 0
_SYNCHRONOUS = b"OGR_SQLITE_SYNCHRONOUS"


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_void_p),
                         ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64),
                         ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
                         ("dictionary", ctypes.c_void_p),
                         ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowSchema))),
                         ("private_data", ctypes.c_void_p)]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
                        ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64),
                        ("buffers", ctypes.c_void_p), ("children", ctypes.c_void_p), ("dictionary", ctypes.c_void_p),
                        ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArray))),
                        ("private_data", ctypes.c_void_p)]


class _ArrowArrayStream(ctypes.Structure):
    pass


_ArrowArrayStream._fields_ = [
    ("get_schema", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowSchema))),
    ("get_next", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowArray))),
    ("get_last_error", ctypes.c_void_p),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArrayStream))),
    ("private_data", ctypes.c_void_p)]

_lock = threading.Lock()
_gdal: list = []  # [library or None], found once


def _library():
    """pyogrio's GDAL as a ctypes library (functions typed), or None."""
    with _lock:
        if not _gdal:
            _gdal.append(_load())
        return _gdal[0]


def _loaded_gdal_path() -> str | None:
    """The file of the GDAL library pyogrio loaded into this process (Linux), or None."""
    import pyogrio  # loads GDAL

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = {line.split(None, 5)[5] for line in maps.splitlines()
             if len(line.split(None, 5)) == 6 and "/libgdal" in line.split(None, 5)[5]}
    # Wheels bundle their own GDAL: with rasterio imported too (the raster population),
    # two are loaded; pyogrio's is the one in its wheel's library folder.
    libs = str(Path(pyogrio.__file__).resolve().parent.parent / "pyogrio.libs") + "/"
    own = {p for p in paths if p.startswith(libs)}
    if len(own) == 1:
        return own.pop()
    return paths.pop() if len(paths) == 1 else None


def _load():
    import pyogrio

    path = _loaded_gdal_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    p, c, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sig = {"OGRSetNonLinearGeometriesEnabledFlag": (None, [i]),
           "GDALOpenEx": (p, [c, ctypes.c_uint, p, p, p]),
           "GDALDatasetGetLayerCount": (i, [p]), "GDALDatasetGetLayer": (p, [p, i]),
           "OGR_L_GetName": (c, [p]), "OSRNewSpatialReference": (p, [c]),
           "OSRSetFromUserInput": (i, [p, c]), "OSRSetAxisMappingStrategy": (None, [p, i]),
           "OSRRelease": (None, [p]), "GDALDatasetCreateLayer": (p, [p, c, p, i, p]),
           "GDALSetMetadata": (i, [p, ctypes.POINTER(c), c]), "OGR_L_GetFIDColumn": (c, [p]),
           "OGR_L_CreateFieldFromArrowSchema": (ctypes.c_bool, [p, ctypes.POINTER(_ArrowSchema),
                                                                 ctypes.POINTER(c)]),
           "OGR_L_WriteArrowBatch": (ctypes.c_bool, [p, ctypes.POINTER(_ArrowSchema), ctypes.POINTER(_ArrowArray),
                                                     ctypes.POINTER(c)]),
           "GDALClose": (i, [p]), "CPLErrorReset": (None, []), "CPLGetLastErrorMsg": (c, []),
           "CPLGetLastErrorType": (i, []), "CPLPushErrorHandler": (None, [p]), "CPLPopErrorHandler": (None, []),
           "GDALVersionInfo": (c, [c]), "CPLSetThreadLocalConfigOption": (None, [c, c]),
           "CPLGetThreadLocalConfigOption": (c, [c, c])}
    try:
        for name, (restype, argtypes) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        lib.quiet = ctypes.cast(lib.CPLQuietErrorHandler, p)
    except AttributeError:
        return None
    if lib.GDALVersionInfo(b"RELEASE_NAME").decode() != pyogrio.__gdal_version_string__:
        return None
    return lib


def _strings(values: list[str]):
    """A NULL-terminated ``char**`` (GDAL's string list) and the bytes it points to."""
    raw = [v.encode("utf-8") for v in values]
    arr = (ctypes.c_char_p * (len(raw) + 1))(*raw, None)
    return arr, raw


def _message(lib) -> str:
    msg = lib.CPLGetLastErrorMsg()
    return msg.decode("utf-8", "replace") if msg else ""


def add_layer(table, path: Path, *, layer: str, geometry_name: str, geometry_type: str, crs: str,
              layer_metadata: dict[str, str]) -> bool:
    """Add ``table`` as a new layer of the existing GeoPackage ``path``, as
    ``pyogrio.write_arrow`` would, with the GIL released during GDAL's work.

    Returns False (nothing written) when it cannot: pyogrio's GDAL not found, GDAL cannot
    open the file, or the layer already exists; the caller then writes with pyogrio, which
    does what it does in those cases. Raises pyogrio's
    exceptions, with pyogrio's messages, when GDAL fails.
    """
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError

    lib = _library()
    if lib is None or geometry_type not in _GEOMETRY_CODES or not Path(path).is_file():
        return False
    path_b = str(path).encode("utf-8")
    stream_capsule = table.__arrow_c_stream__()
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    stream = ctypes.cast(get_pointer(stream_capsule, b"arrow_array_stream"), ctypes.POINTER(_ArrowArrayStream))
    schema, array = _ArrowSchema(), _ArrowArray()
    ds = crs_h = None
    lib.CPLPushErrorHandler(lib.quiet)
    previous = lib.CPLGetThreadLocalConfigOption(_SYNCHRONOUS, None)
    lib.CPLSetThreadLocalConfigOption(_SYNCHRONOUS, b"OFF")
    try:
        lib.CPLErrorReset()
        lib.OGRSetNonLinearGeometriesEnabledFlag(0)
        ds = lib.GDALOpenEx(path_b, _GDAL_OF_VECTOR | _GDAL_OF_VERBOSE_ERROR | _GDAL_OF_UPDATE, None, None, None)
        if not ds:  # pyogrio then replaces the file by a new one: let it do so
            return False
        names = [lib.OGR_L_GetName(lib.GDALDatasetGetLayer(ds, k)) for k in range(lib.GDALDatasetGetLayerCount(ds))]
        if layer.encode("utf-8") in names:
            lib.GDALClose(ds)
            ds = None
            return False
        crs_h = lib.OSRNewSpatialReference(None)
        if not crs_h or lib.OSRSetFromUserInput(crs_h, crs.encode("utf-8")):
            raise DataLayerError(f"Could not set CRS: {crs}")
        lib.OSRSetAxisMappingStrategy(crs_h, _OAMS_TRADITIONAL_GIS_ORDER)
        layer_h = lib.GDALDatasetCreateLayer(ds, layer.encode("utf-8"), crs_h, _GEOMETRY_CODES[geometry_type], None)
        if not layer_h:
            raise DataLayerError(_message(lib) or "NULL pointer error")
        if layer_metadata:
            items, _keep = _strings([f"{k}={v}" for k, v in layer_metadata.items()])
            if lib.GDALSetMetadata(layer_h, items, None):
                raise DataLayerError("Could not set metadata")
        lib.OSRRelease(crs_h)
        crs_h = None
        options, _keep_options = _strings([f"GEOMETRY_NAME={geometry_name}"])
        if stream.contents.get_schema(stream, ctypes.byref(schema)) != 0:
            raise RuntimeError("Could not get Arrow schema from stream.")
        fid = lib.OGR_L_GetFIDColumn(layer_h) or b""
        for k in range(schema.n_children):
            child = schema.children[k]
            name = child.contents.name or b""
            if name == geometry_name.encode("utf-8") or (fid and name == fid):
                continue
            if not lib.OGR_L_CreateFieldFromArrowSchema(layer_h, child, options):
                msg = _message(lib)
                raise FieldError(f"Error while creating field from Arrow for field {k} with name "
                                 f"'{name.decode()}' and type {child.contents.format.decode()}"
                                 + (f" ({msg})." if msg else "."))
        while True:
            if stream.contents.get_next(stream, ctypes.byref(array)) != 0:
                raise RuntimeError("Error while accessing batch from stream.")
            if not array.release:
                break
            if not lib.OGR_L_WriteArrowBatch(layer_h, ctypes.byref(schema), ctypes.byref(array), options):
                msg = _message(lib)
                raise DataLayerError("Error while writing batch to OGR layer" + (f": {msg}" if msg else "."))
            if array.release:
                array.release(ctypes.byref(array))
        handle, ds = ds, None
        if lib.GDALClose(handle) != _CE_NONE:
            raise DataSourceError(f"Failed to write features to dataset {path}; {_message(lib)}")
        return True
    finally:
        if array.release:
            array.release(ctypes.byref(array))
        if schema.release:
            schema.release(ctypes.byref(schema))
        if crs_h:
            lib.OSRRelease(crs_h)
        if ds:
            lib.GDALClose(ds)
        lib.CPLSetThreadLocalConfigOption(_SYNCHRONOUS, previous)
        lib.CPLPopErrorHandler()
        del stream_capsule
