from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("login", views.login_view),
    path("embed", views.embed),
    path("mashup", views.mashup),
    path("logout", views.logout_view),
    path("static/<path:path>", views.static_file),
]
