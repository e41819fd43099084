"""Login and logout as a Django project would write them (sync views, `django.contrib.auth`)."""

from __future__ import annotations

from django.contrib.auth import alogout, authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return HttpResponse("ok")


@csrf_exempt
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # sends user_logged_out: the Qlik session ends with it
    return JsonResponse({"logged_out": True})


@csrf_exempt
async def async_logout_view(request: HttpRequest) -> HttpResponse:
    await alogout(request)  # asend(): the sync receiver runs in a worker thread
    return JsonResponse({"logged_out": True})


urlpatterns = [
    path("login/", login_view),
    path("logout/", logout_view),
    path("alogout/", async_logout_view),
]
