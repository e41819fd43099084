"""A custom user model (login by `handle`), to prove the resolver goes through `get_user_model()`."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class MemberManager(BaseUserManager["Member"]):
    def create_user(self, handle: str, password: str, **extra: Any) -> Member:
        user = self.model(handle=handle, **extra)
        user.set_password(password)
        user.save()
        return user


class Member(AbstractBaseUser):
    handle: models.CharField[str, str] = models.CharField(max_length=150, unique=True)
    is_active: models.BooleanField[bool, bool] = models.BooleanField(default=True)

    USERNAME_FIELD = "handle"
    objects: ClassVar[MemberManager] = MemberManager()

    class Meta:
        app_label = "djangoapp"
