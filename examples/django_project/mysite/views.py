"""Plain Django views: the Qlik part is only an iframe URL and a mashup script."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.static import serve

#: The examples' shared static files (qlik-mashup.js, the qlik-embed / @qlik/api page).
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def qlik_context() -> dict[str, str]:
    return {
        "prefix": settings.QLIK_SSO["PREFIX"],
        "app_id": settings.QLIK_APP_ID,
        "object_id": settings.QLIK_OBJECT_ID,
    }


def home(request: HttpRequest) -> HttpResponse:
    return redirect("/embed" if request.user.is_authenticated else "/login")


def login_view(request: HttpRequest) -> HttpResponse:
    error = False
    if request.method == "POST":
        user = authenticate(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if user is not None:
            login(request, user)
            return redirect("/embed")
        error = True
    return render(request, "login.html", {"error": error})


@login_required
def embed(request: HttpRequest) -> HttpResponse:
    return render(request, "embed.html", qlik_context())


@login_required
def mashup(request: HttpRequest) -> HttpResponse:
    return render(request, "mashup.html", qlik_context())


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # sends user_logged_out: the Qlik session ends with it
    return redirect("/login")


def static_file(request: HttpRequest, path: str) -> HttpResponse:
    # Django's own file view: it refuses paths leaving STATIC_DIR.
    return serve(request, path, document_root=STATIC_DIR)
