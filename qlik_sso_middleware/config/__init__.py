"""One configuration schema for the CLI and the middleware: a TOML file + `QLIK_SSO_*` variables.

- `schema`: the sections (frozen dataclasses whose fields are the keys) and `load_config`, which
  validates everything at start-up and names the file line of every bad value;
- `loader`: reading TOML and the environment into those dataclasses (`Secret` hides secrets);
- `build`: turning a validated configuration into a strategy, target, store and `QlikSSO`.
"""

from __future__ import annotations

from .build import (
    build_auth,
    build_cloud_target,
    build_qps_settings,
    build_resolver,
    build_sso,
    build_store,
    build_target,
    build_targets,
)
from .schema import (
    AppSection,
    AuthSection,
    CheckSection,
    CloudSection,
    LoggingSection,
    MetricsSection,
    QlikSection,
    QlikSSOConfig,
    QPSSection,
    ResolverSection,
    Secret,
    ServeSection,
    StoreSection,
    load_config,
)

__all__ = [
    "AppSection",
    "AuthSection",
    "CheckSection",
    "CloudSection",
    "LoggingSection",
    "MetricsSection",
    "QPSSection",
    "QlikSSOConfig",
    "QlikSection",
    "ResolverSection",
    "Secret",
    "ServeSection",
    "StoreSection",
    "build_auth",
    "build_cloud_target",
    "build_qps_settings",
    "build_resolver",
    "build_sso",
    "build_store",
    "build_target",
    "build_targets",
    "load_config",
]
