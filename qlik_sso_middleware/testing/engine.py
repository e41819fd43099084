"""The simulated Qlik engine's JSON-RPC 2.0 methods over the built-in demo apps.

One `EngineRpc` per WebSocket. Handles follow the engine: -1 is Global, opening a document gives
handle 1, each `GetObject` a new handle. Unknown methods answer -32601 and malformed JSON -32700, so
a client never waits for an answer that will not come.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .demo_apps import DemoApp, DemoObject
from .session_objects import SessionObject, SessionObjects

__all__ = ["ENGINE_VERSION", "EngineRpc", "notification"]

ENGINE_VERSION = "12.2020.0"
PRODUCT_VERSION = "14.212.6"

_PARSE_ERROR = -32700
_INVALID_REQUEST = -32600
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602
_INVALID_HANDLE = -32602


def notification(method: str, params: Mapping[str, Any]) -> str:
    """A server notification frame (no id), e.g. `OnConnected`."""
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": dict(params)})


class _RpcError(Exception):
    def __init__(self, code: int, message: str, parameter: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parameter = parameter


def _param(params: Any, name: str, index: int, default: Any = None) -> Any:
    """enigma.js sends params positionally or by name: accept both."""
    if isinstance(params, Mapping):
        return params.get(name, default)
    if isinstance(params, list) and len(params) > index:
        return params[index]
    return default


class EngineRpc:
    """JSON-RPC state of one engine connection (the app it was opened for, its handles)."""

    def __init__(self, apps: Mapping[str, DemoApp], user: tuple[str, str], app_id: str) -> None:
        self._apps = apps
        self._user = user
        self._url_app = app_id
        self._doc: DemoApp | None = None
        # handle -> ("doc", app) | ("object", obj) | ("sheet", app) | ("session", SessionObject)
        self._handles: dict[int, tuple[str, Any]] = {}
        self._next_handle = 1
        self._session_objects = SessionObjects()

    def handle_text(self, text: str) -> str | None:
        """Answer one text frame; None for a notification-style request (no id) that needs none."""
        try:
            request = json.loads(text)
        except (ValueError, RecursionError):
            return self._error(None, _PARSE_ERROR, "Parse error")
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return self._error(None, _INVALID_REQUEST, "Invalid Request")
        request_id = request.get("id")
        try:
            result = self._dispatch(
                request["method"], request.get("handle", -1), request.get("params")
            )
        except _RpcError as exc:
            return self._error(request_id, exc.code, exc.message, exc.parameter)
        except Exception:  # any malformed params: answer, never kill the socket
            return self._error(request_id, _INVALID_PARAMS, "Invalid params")
        if request_id is None:
            return None
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    @staticmethod
    def _error(request_id: Any, code: int, message: str, parameter: str = "") -> str:
        error = {"code": code, "message": message, "parameter": parameter}
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})

    def _new_handle(self, kind: str, target: Any) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._handles[handle] = (kind, target)
        return handle

    def _dispatch(self, method: str, handle: Any, params: Any) -> dict[str, Any]:
        if handle == -1:
            return self._global(method, params)
        if not isinstance(handle, int) or handle not in self._handles:
            raise _RpcError(_INVALID_HANDLE, "Invalid handle", str(handle))
        kind, target = self._handles[handle]
        if kind == "doc":
            return self._document(method, target, params)
        return self._object(method, kind, target, params)

    def _global(self, method: str, params: Any) -> dict[str, Any]:
        if method == "EngineVersion":
            return {"qVersion": {"qComponentVersion": ENGINE_VERSION}}
        if method == "ProductVersion":
            return {"qReturn": PRODUCT_VERSION}
        if method == "GetAuthenticatedUser":
            return {"qReturn": f"UserDirectory={self._user[0]}; UserId={self._user[1]}"}
        if method == "GetDocList":
            return {
                "qDocList": [
                    {"qDocName": app.name, "qDocId": app.id, "qTitle": app.name, "qMeta": {}}
                    for app in self._apps.values()
                ]
            }
        if method == "OpenDoc":
            doc_name = _param(params, "qDocName", 0)
            app = self._apps.get(str(doc_name))
            if app is None:
                raise _RpcError(1002, "App not found", str(doc_name))
            return {"qReturn": self._open(app)}
        if method == "GetActiveDoc":
            if self._doc is None:
                raise _RpcError(1007, "App invalid", "")
            return {"qReturn": self._doc_ref()}
        if method == "IsDesktopMode":
            return {"qReturn": False}
        raise _RpcError(_METHOD_NOT_FOUND, "Method not found", method)

    def _open(self, app: DemoApp) -> dict[str, Any]:
        if self._doc is None:
            self._doc = app
            self._handles[1] = ("doc", app)
            self._next_handle = 2
        elif self._doc.id != app.id:
            raise _RpcError(1009, "App already open in different mode", app.id)
        return self._doc_ref()

    def _doc_ref(self) -> dict[str, Any]:
        assert self._doc is not None
        return {"qType": "Doc", "qHandle": 1, "qGenericId": self._doc.id}

    def _document(self, method: str, app: DemoApp, params: Any) -> dict[str, Any]:
        if method == "GetAppLayout":
            return {"qLayout": app.app_layout()}
        if method == "GetAllInfos":
            infos = [{"qId": app.sheet_id, "qType": "sheet"}]
            infos += [{"qId": obj.id, "qType": obj.kind} for obj in app.objects]
            return {"qInfos": infos}
        if method == "CreateSessionObject":
            created = self._session_objects.create(app, _param(params, "qProp", 0))
            return {"qReturn": self._object_ref("session", created, created.id)}
        if method == "DestroySessionObject":
            return {"qSuccess": self._session_objects.destroy(str(_param(params, "qId", 0)))}
        if method == "GetObject":
            object_id = str(_param(params, "qId", 0))
            session_object = self._session_objects.get(object_id)
            if session_object is not None:
                return {"qReturn": self._object_ref("session", session_object, object_id)}
            target: DemoApp | DemoObject
            if object_id == app.sheet_id:
                kind, target = "sheet", app
            else:
                obj = app.object(object_id)
                if obj is None:
                    # The engine answers an empty handle for an unknown object.
                    return {"qReturn": {"qType": None, "qHandle": None}}
                kind, target = "object", obj
            return {"qReturn": self._object_ref(kind, target, object_id)}
        raise _RpcError(_METHOD_NOT_FOUND, "Method not found", method)

    def _object_ref(self, kind: str, target: Any, object_id: str) -> dict[str, Any]:
        """A new handle on `target` and the `qReturn` reference the engine answers with."""
        if kind == "sheet":
            generic = "sheet"
        elif kind == "session":
            generic = str(target.properties["qInfo"].get("qType", ""))
        else:
            generic = target.kind
        return {
            "qType": "GenericObject",
            "qHandle": self._new_handle(kind, target),
            "qGenericType": generic,
            "qGenericId": object_id,
        }

    def _object(self, method: str, kind: str, target: Any, params: Any) -> dict[str, Any]:
        if kind == "sheet":
            app: DemoApp = target
            if method in ("GetLayout", "GetProperties"):
                return {"qLayout" if method == "GetLayout" else "qProp": app.sheet_layout()}
            raise _RpcError(_METHOD_NOT_FOUND, "Method not found", method)
        if kind == "session":
            return _session_object(method, target, params)
        obj: DemoObject = target
        return self._generic_object(method, obj, params)

    def _generic_object(self, method: str, obj: DemoObject, params: Any) -> dict[str, Any]:
        if method == "GetLayout":
            return {"qLayout": obj.layout()}
        if method == "GetHyperCubeData":
            pages = _param(params, "qPages", 1, [])
            data_pages = []
            for page in pages:
                top = int(page.get("qTop", 0))
                height = int(page.get("qHeight", len(obj.rows)))
                data_pages.append(obj.data_page(top, height))
            return {"qDataPages": data_pages}
        if method == "GetInfo":
            return {"qInfo": {"qId": obj.id, "qType": obj.kind}}
        raise _RpcError(_METHOD_NOT_FOUND, "Method not found", method)


def _session_object(method: str, obj: SessionObject, params: Any) -> dict[str, Any]:
    if method == "GetLayout":
        return {"qLayout": obj.layout()}
    if method in ("GetProperties", "GetEffectiveProperties"):
        return {"qProp": obj.properties}
    if method == "GetHyperCubeData":
        return {"qDataPages": obj.data_pages(list(_param(params, "qPages", 1, [])))}
    if method == "GetInfo":
        return {"qInfo": obj.properties["qInfo"]}
    raise _RpcError(_METHOD_NOT_FOUND, "Method not found", method)
