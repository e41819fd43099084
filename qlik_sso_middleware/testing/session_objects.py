"""Session objects of the simulated engine: `CreateSessionObject` with a hypercube, as `@qlik/api`,
qlik-embed's charts on the fly and mashups create them.

A session object lives as long as its engine connection; `GetObject` finds it by id in that
connection only, `DestroySessionObject` ends it. Its hypercube is computed from the demo apps'
rows: each dimension names a field (`qFieldDefs[0]`, e.g. "Region") and each measure an expression
naming a measure of the same demo object (`Sum(Revenue)`, `=Sum([Revenue])`, or just `Revenue`);
the demo rows are already one per dimension value, so the value is the row's. A field or measure
the app does not have gets the engine's error shape (`qError` on its info) and no data. Only what
the clients of this project's tests read is modelled: no selections, sorting or aggregation.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .demo_apps import DemoApp, DemoObject

__all__ = ["SessionObject", "SessionObjects"]

#: The engine's "field not found" validation error (NxValidationError.qErrorCode) [inferred].
_FIELD_NOT_FOUND = 7
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
_ids = itertools.count(1)


def _field_name(dimension: Mapping[str, Any]) -> str:
    defs = dimension.get("qDef", {}).get("qFieldDefs") or [""]
    return str(defs[0]).lstrip("=").strip().strip("[]")


def _measure_names(measure: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(label, candidate measure names) of a `qMeasures` entry."""
    definition = measure.get("qDef", {})
    expression = str(definition.get("qDef", ""))
    label = str(definition.get("qLabel") or expression.lstrip("=").strip())
    words = [w.strip() for w in _WORD.findall(expression.replace("[", " ").replace("]", " "))]
    return label, words


@dataclass
class SessionObject:
    """One `CreateSessionObject` result: its properties and the demo rows they select."""

    id: str
    properties: dict[str, Any]
    app: DemoApp
    cube: DemoObject | None = field(init=False, default=None)
    errors: dict[int, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        definition = self.properties.get("qHyperCubeDef")
        if isinstance(definition, Mapping):
            self.cube = self._cube(definition)

    def _cube(self, definition: Mapping[str, Any]) -> DemoObject:
        dimensions = [_field_name(d) for d in definition.get("qDimensions", [])]
        measures = [_measure_names(m) for m in definition.get("qMeasures", [])]
        source = next(
            (o for o in self.app.objects if all(d in o.dimensions for d in dimensions)), None
        )
        columns: list[int] = []
        for index, name in enumerate(dimensions):
            if source is None:
                self.errors[index] = _FIELD_NOT_FOUND
            else:
                columns.append(source.dimensions.index(name))
        labels = []
        for offset, (label, words) in enumerate(measures):
            labels.append(label)
            found = next((w for w in words if source and w in source.measures), None)
            if source is None or found is None:
                self.errors[len(dimensions) + offset] = _FIELD_NOT_FOUND
            else:
                columns.append(len(source.dimensions) + source.measures.index(found))
        rows: tuple[tuple[str | float, ...], ...] = ()
        if source is not None and not self.errors:
            rows = tuple(tuple(row[c] for c in columns) for row in source.rows)
        return DemoObject(
            id=self.id,
            kind=str(self.properties.get("qInfo", {}).get("qType", "")),
            title=str(self.properties.get("title", "")),
            dimensions=tuple(dimensions),
            measures=tuple(labels),
            rows=rows,
        )

    def hypercube(self, pages: list[Mapping[str, Any]]) -> dict[str, Any]:
        assert self.cube is not None
        if self.errors:
            width = len(self.cube.dimensions) + len(self.cube.measures)
            infos: list[dict[str, Any]] = [
                {"qFallbackTitle": t} for t in (*self.cube.dimensions, *self.cube.measures)
            ]
            for index, code in self.errors.items():
                infos[index]["qError"] = {"qErrorCode": code}
            return {
                "qSize": {"qcx": width, "qcy": 0},
                "qDimensionInfo": infos[: len(self.cube.dimensions)],
                "qMeasureInfo": infos[len(self.cube.dimensions) :],
                "qDataPages": [],
                "qMode": "S",
            }
        cube = self.cube.hypercube()
        cube["qDataPages"] = self.data_pages(pages)
        return cube

    def data_pages(self, pages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if self.cube is None or self.errors:
            return []
        return [self.cube.data_page(int(p.get("qTop", 0)), int(p.get("qHeight", 0))) for p in pages]

    def layout(self) -> dict[str, Any]:
        layout = {k: v for k, v in self.properties.items() if k != "qHyperCubeDef"}
        layout["qInfo"] = {**self.properties.get("qInfo", {}), "qId": self.id}
        layout["qMeta"] = {"privileges": ["read", "update", "delete"]}
        layout["qSelectionInfo"] = {}
        if self.cube is not None:
            fetch = self.properties["qHyperCubeDef"].get("qInitialDataFetch", [])
            layout["qHyperCube"] = self.hypercube(list(fetch))
        return layout


class SessionObjects:
    """The session objects of one engine connection."""

    def __init__(self) -> None:
        self._objects: dict[str, SessionObject] = {}

    def create(self, app: DemoApp, properties: Any) -> SessionObject:
        if not isinstance(properties, Mapping):
            raise ValueError("qProp must be an object")
        props = dict(properties)
        info = props.get("qInfo")
        info = dict(info) if isinstance(info, Mapping) else {}
        object_id = str(info.get("qId") or f"session-object-{next(_ids)}")
        props["qInfo"] = {**info, "qId": object_id}
        obj = SessionObject(object_id, props, app)
        self._objects[object_id] = obj
        return obj

    def get(self, object_id: str) -> SessionObject | None:
        return self._objects.get(object_id)

    def destroy(self, object_id: str) -> bool:
        return self._objects.pop(object_id, None) is not None
