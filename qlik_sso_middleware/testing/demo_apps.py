"""The built-in data model of the simulated engine: a few apps, each with a sheet and two objects.

Objects hold real rows so that a client reading a layout gets a `qHyperCube` with dimension and
measure info and a data page, the shape enigma.js / nebula.js code expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEMO_APPS", "DemoApp", "DemoObject"]


@dataclass(frozen=True)
class DemoObject:
    """A visualisation: `kind` is "table" or "barchart"; rows are (dimension..., measure...)."""

    id: str
    kind: str
    title: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    rows: tuple[tuple[str | float, ...], ...]

    def hypercube(self, top: int = 0, height: int | None = None) -> dict[str, Any]:
        """The object's `qHyperCube` with one data page of `height` rows starting at `top`."""
        return {
            "qSize": {"qcx": len(self.dimensions) + len(self.measures), "qcy": len(self.rows)},
            "qDimensionInfo": [
                {"qFallbackTitle": name, "qCardinal": len({row[i] for row in self.rows})}
                for i, name in enumerate(self.dimensions)
            ],
            "qMeasureInfo": [
                {
                    "qFallbackTitle": name,
                    "qMin": min(float(row[len(self.dimensions) + i]) for row in self.rows),
                    "qMax": max(float(row[len(self.dimensions) + i]) for row in self.rows),
                }
                for i, name in enumerate(self.measures)
            ],
            "qDataPages": [self.data_page(top, height)],
            "qMode": "S",
        }

    def data_page(self, top: int = 0, height: int | None = None) -> dict[str, Any]:
        """One `NxDataPage` of the rows [top, top + height)."""
        width = len(self.dimensions) + len(self.measures)
        height = len(self.rows) if height is None else height
        rows = self.rows[top : top + height]
        matrix = []
        for row_index, row in enumerate(rows):
            cells: list[dict[str, Any]] = []
            for col, value in enumerate(row):
                if col < len(self.dimensions):
                    cells.append(
                        {"qText": str(value), "qElemNumber": top + row_index, "qState": "O"}
                    )
                else:
                    number = float(value)
                    text = f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"
                    cells.append({"qText": text, "qNum": number, "qElemNumber": 0, "qState": "L"})
            matrix.append(cells)
        return {
            "qMatrix": matrix,
            "qArea": {"qLeft": 0, "qTop": top, "qWidth": width, "qHeight": len(rows)},
            "qTails": [],
        }

    def layout(self) -> dict[str, Any]:
        """The object's `GetLayout` answer."""
        return {
            "qInfo": {"qId": self.id, "qType": self.kind},
            "qMeta": {"privileges": ["read"]},
            "qSelectionInfo": {},
            "visualization": self.kind,
            "title": self.title,
            "qHyperCube": self.hypercube(),
        }


@dataclass(frozen=True)
class DemoApp:
    """An app (document) of the simulated engine."""

    id: str
    name: str
    sheet_id: str
    sheet_title: str
    objects: tuple[DemoObject, ...]

    def object(self, object_id: str) -> DemoObject | None:
        return next((obj for obj in self.objects if obj.id == object_id), None)

    def sheet_layout(self) -> dict[str, Any]:
        return {
            "qInfo": {"qId": self.sheet_id, "qType": "sheet"},
            "qMeta": {"title": self.sheet_title, "privileges": ["read"]},
            "title": self.sheet_title,
            "cells": [
                {"name": obj.id, "type": obj.kind, "col": 0, "row": 12 * i, "colspan": 24}
                for i, obj in enumerate(self.objects)
            ],
        }

    def app_layout(self) -> dict[str, Any]:
        return {
            "qTitle": self.name,
            "qFileName": self.id,
            "qLastReloadTime": "2026-11-01T08:00:00.000Z",
            "qHasScript": True,
            "qHasData": True,
            "qIsOpenedWithoutData": False,
            "qStateNames": [],
            "qMeta": {"privileges": ["read"]},
            "qLocaleInfo": {"qDecimalSep": ".", "qThousandSep": ","},
        }


_REGIONS = ("North", "South", "East", "West")

DEMO_APPS: tuple[DemoApp, ...] = (
    DemoApp(
        id="4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        name="Sales",
        sheet_id="sales-sheet-1",
        sheet_title="Sales overview",
        objects=(
            DemoObject(
                id="sales-table",
                kind="table",
                title="Sales by region",
                dimensions=("Region",),
                measures=("Revenue", "Orders"),
                rows=tuple(
                    zip(
                        _REGIONS,
                        (125000.0, 98000.0, 143500.0, 87250.0),
                        (410, 322, 501, 289),
                        strict=True,
                    )
                ),
            ),
            DemoObject(
                id="sales-bar",
                kind="barchart",
                title="Revenue by quarter",
                dimensions=("Quarter",),
                measures=("Revenue",),
                rows=(("Q1", 101000.0), ("Q2", 117500.0), ("Q3", 109250.0), ("Q4", 126000.0)),
            ),
        ),
    ),
    DemoApp(
        id="8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d",
        name="Operations",
        sheet_id="ops-sheet-1",
        sheet_title="Operations",
        objects=(
            DemoObject(
                id="ops-table",
                kind="table",
                title="Tickets by team",
                dimensions=("Team",),
                measures=("Open", "Closed"),
                rows=(("Platform", 12, 140), ("Support", 31, 402), ("Field", 7, 66)),
            ),
            DemoObject(
                id="ops-bar",
                kind="barchart",
                title="Uptime by site (%)",
                dimensions=("Site",),
                measures=("Uptime",),
                rows=(("Lyon", 99.95), ("Oslo", 99.5), ("Lund", 98.75)),
            ),
        ),
    ),
)
