"""Real virtual proxy setups that go wrong, one `Case` each, drawn from Qlik Community threads,
Qlik support articles and Qlik's help (each cites its source); the classic header-SSO failure
first. `test_corpus.py` runs `qlik-sso check` on each as a user would, asserts every failing step
and its cause in order, applies the fix `--json` printed, and finally wants a clean pass.

A case is a simulated site (`site`: which shared simulator, and the `vps` this case adds to it),
the middleware's configuration (TOML sections; `{placeholders}` are the site's URLs and files),
the test user, and `expect`: `(step id, text the detail or fix must contain)` per round. Prefixes
and users are unique per case, so cases share simulators and never see each other's sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qlik_sso_middleware.testing import AccessPasses, VirtualProxy


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    vps: tuple[VirtualProxy, ...]
    config: dict[str, dict[str, Any]]
    expect: tuple[tuple[str, str], ...]
    user: str
    site: str = "main"  # main (http + QPS API + 4244), https, fallback, shortname
    qps: bool = False  # give the middleware the site's QPS API and certificates
    access: AccessPasses = field(default_factory=AccessPasses)
    setup: str | None = None  # a named preparation in test_corpus.py (sessions, faults)

    def __str__(self) -> str:
        return self.id


def header(prefix: str, name: str, **more: Any) -> dict[str, dict[str, Any]]:
    """The middleware's configuration for a header VP."""
    config: dict[str, dict[str, Any]] = {"qlik": {"prefix": prefix}, "auth": {"header_name": name}}
    for key, value in more.items():
        section, _, option = key.partition("__")
        config.setdefault(section, {})[option] = value
    return config


CASES: tuple[Case, ...] = (
    # The classic: a header VP set up in the QMC as the seed thread describes (prefix typed with a
    # capital, header CMI_Header, pattern pasted as the QMC shows it, value CMI\Me), the
    # middleware's cookie name left at its default while the VP has its own, and a user without
    # an access pass. Seed: community.qlik.com/t5/Qlik-Sense-Deployment-Management/
    # Implementing-SSO-authentication-with-Http-Headers/td-p/814478 ; access pass: support
    # article community.qlik.com/t5/Official-Support-Articles/
    # You-cannot-access-Qlik-Sense-because-you-have-no-access-pass/ta-p/1715138
    Case(
        "classic-header-sso",
        "community.qlik.com/t5/Qlik-Sense-Deployment-Management/Implementing-SSO-authentication-with-Http-Headers/td-p/814478",
        (
            VirtualProxy(
                prefix="A_",
                header_name="CMI_Header",
                dynamic_pattern="$ud\\\\$id",
                cookie_name="X-Qlik-Session-CMI",
            ),
        ),
        header("A_", "CMI_Header", auth__pattern="$ud\\\\$id"),
        (
            ("login", "set qlik.cookie_name = 'X-Qlik-Session-CMI'"),
            ("websocket", "CMI\\Me has no access pass"),
        ),
        user="CMI\\Me",
        access=AccessPasses(users={"CMI\\Me": "none"}),
    ),
    # Header name with '-' where the VP has '_' (the seed thread's CMI_Header; Qlik's own Python
    # example uses 'header_user'): support article community.qlik.com/t5/Official-Support-Articles/
    # Qlik-Sense-call-Qlik-Sense-Engine-API-with-Python/tac-p/1770065
    Case(
        "header-name-dash-for-underscore",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-call-Qlik-Sense-Engine-API-with-Python/tac-p/1770065",
        (VirtualProxy(prefix="und", header_name="header_user"),),
        header("und", "header-user"),
        (("login", "accepts the header 'header_user', not 'header-user'"),),
        user="ACME\\und1",
    ),
    # Another name than the VP's: qliksite.io's header-authentication guide and Qlik's own example
    # name the header 'hdr-usr' while reverse proxies send e.g. X-Remote-User (help.qlik.com
    # sense-developer/August2022/.../Examples/config-header-authentication.htm)
    Case(
        "header-name-other",
        "help.qlik.com/en-US/sense-developer/August2022/Subsystems/Platform/Content/Sense_PlatformOverview/Examples/config-header-authentication.htm",
        (VirtualProxy(prefix="oth", header_name="X-Remote-User"),),
        header("oth", "hdr-usr"),
        (("login", "reads the header 'X-Remote-User', not 'hdr-usr'"),),
        user="ACME\\oth1",
    ),
    # A header name nothing guesses: the fix is the QMC's (the seed thread: the VP ignored the
    # header and the browser asked for Windows credentials)
    Case(
        "header-name-unguessable",
        "community.qlik.com/t5/Qlik-Sense-Deployment-Management/Implementing-SSO-authentication-with-Http-Headers/td-p/814478",
        (VirtualProxy(prefix="ung", header_name="X-Acme-Login"),),
        header("ung", "hdr-usr"),
        (("login", "'Header authentication header name' to exactly 'hdr-usr'"),),
        user="ACME\\ung1",
    ),
    # Static user directory VP, middleware sending DIR\user (help.qlik.com virtual proxy
    # properties: static vs dynamic user directory; qliksite.io header authentication guide)
    Case(
        "static-directory-vp",
        "help.qlik.com/sense/2.1/en-US/online/Subsystems/ManagementConsole/Content/virtual-proxies-properties.htm",
        (VirtualProxy(prefix="sta", auth="header_static", static_user_directory="CORP"),),
        header("sta", "hdr-usr"),
        (("login", "uses the static user directory 'CORP'"),),
        user="ACME\\sta1",
    ),
    # Dynamic VP, middleware configured for a static directory (same help page)
    Case(
        "dynamic-directory-vp",
        "help.qlik.com/sense/2.1/en-US/online/Subsystems/ManagementConsole/Content/virtual-proxies-properties.htm",
        (VirtualProxy(prefix="dyn"),),
        header("dyn", "hdr-usr", auth__static_user_directory="ACME"),
        (("login", "uses a dynamic user directory: remove auth.static_user_directory"),),
        user="ACME\\dyn1",
    ),
    # The QMC pattern written the other way round ($id\\$ud): Qlik logs in the parts swapped
    # (help.qlik.com virtual-proxies-properties: "pattern used for identification of the user
    # directory"; Informatiqal runbook's '$ud\\$id')
    Case(
        "pattern-parts-swapped",
        "help.qlik.com/en-US/sense-admin/May2023/Subsystems/DeployAdministerQSE/Content/Sense_DeployAdminister/QSEoW/Administer_QSEoW/Managing_QSEoW/create-virtual-proxy.htm",
        (VirtualProxy(prefix="swp", dynamic_pattern="$id\\\\$ud"),),
        header("swp", "hdr-usr"),
        (("login", "takes the parts the other way round"),),
        user="ACME\\swp1",
    ),
    # A prefix typed with '-' where the QMC has '_' (help.qlik.com create-virtual-proxy: only
    # a-z 0-9 - . _ ~; braathen/qlik-auth-net FAQ: a prefix that differs answers 400)
    Case(
        "prefix-typo-twin",
        "github.com/braathen/qlik-auth-net (README, FAQ: virtual proxy prefix spelling and case)",
        (VirtualProxy(prefix="sales_eu"),),
        header("sales-eu", "hdr-usr"),
        (("vp.exists", "the virtual proxy 'sales_eu' exists"),),
        user="ACME\\typo1",
    ),
    # No VP with this prefix at all; the site's default VP exists (help.qlik.com Proxy settings:
    # the prefix is the text before a reserved word; bintocher/qlik-sense-mcp AUTH_JWT.md: an
    # unlinked prefix answers 400 "The http request header is incorrect")
    Case(
        "vp-missing",
        "help.qlik.com/en-US/sense-developer/May2022/Subsystems/ProxyServiceAPI/Content/Sense_ProxyServiceAPI/ProxyServiceAPI-Proxy-Settings.htm",
        (),
        header("hdrmiss", "hdr-usr"),
        (("vp.exists", "no virtual proxy with the prefix 'hdrmiss' is linked"),),
        user="ACME\\miss1",
    ),
    # The VP exists but is not linked to this proxy service (github.com/bintocher/qlik-sense-mcp
    # docs/AUTH_JWT.md: "any prefixed VP that is not linked ... is rejected ... with HTTP 400")
    Case(
        "vp-not-linked",
        "github.com/bintocher/qlik-sense-mcp/blob/main/docs/AUTH_JWT.md",
        (VirtualProxy(prefix="unl", linked=False),),
        header("unl", "hdr-usr"),
        (("vp.exists", "link it to this proxy service"),),
        user="ACME\\unl1",
    ),
    # A QPS that answers unknown prefixes from the default VP: the login redirect is the default
    # VP's (Windows authentication asks for credentials, as in the seed thread), not a VP 'typo'
    Case(
        "vp-missing-default-vp-answers",
        "community.qlik.com/t5/Official-Support-Articles/How-the-Windows-Authentication-Pattern-in-Virtual-Proxy-enables/ta-p/1715008",
        (),
        header("typo", "hdr-usr"),
        (("vp.exists", "answered by the default virtual proxy"),),
        user="ACME\\fall1",
        site="fallback",
    ),
    # Cookie name left at the middleware's default while the VP has its own (help.qlik.com
    # create-virtual-proxy: "Session cookie header name ... you must enter a value")
    Case(
        "cookie-name-default",
        "help.qlik.com/en-US/sense-admin/May2023/Subsystems/DeployAdministerQSE/Content/Sense_DeployAdminister/QSEoW/Administer_QSEoW/Managing_QSEoW/create-virtual-proxy.htm",
        (VirtualProxy(prefix="ckd", cookie_name="X-Qlik-Session-Portal"),),
        header("ckd", "hdr-usr"),
        (("login", "set qlik.cookie_name = 'X-Qlik-Session-Portal'"),),
        user="ACME\\ckd1",
    ),
    # Cookie name set, but to another VP's (two VPs per browser need distinct cookies: support
    # article community.qlik.com/t5/Official-Support-Articles/How-to-count-sessions-in-Qlik-Sense/ta-p/1714209)
    Case(
        "cookie-name-mismatch",
        "community.qlik.com/t5/Official-Support-Articles/How-to-count-sessions-in-Qlik-Sense/ta-p/1714209",
        (VirtualProxy(prefix="ckm", cookie_name="X-Qlik-Session-bar"),),
        header("ckm", "hdr-usr", qlik__cookie_name="X-Qlik-Session-foo"),
        (("login", "set qlik.cookie_name = 'X-Qlik-Session-bar'"),),
        user="ACME\\ckm1",
    ),
    # '-HTTP' copied from the browser into the configuration (help.qlik.com virtual proxies:
    # "From the February 2019 release, a suffix (-HTTP) is added ... over http")
    Case(
        "cookie-name-http-suffix",
        "help.qlik.com/en-US/sense-admin/February2023/Subsystems/DeployAdministerQSE/Content/Sense_DeployAdminister/QSEoW/Administer_QSEoW/Managing_QSEoW/virtual-proxies-overview.htm",
        (VirtualProxy(prefix="ckh"),),
        header("ckh", "hdr-usr", qlik__cookie_name="X-Qlik-Session-ckh-HTTP"),
        (("login", "without '-HTTP'"),),
        user="ACME\\ckh1",
    ),
    # http:// to a proxy that serves https only (support article "All you need to know to start
    # using mashups": use https with a trusted certificate)
    Case(
        "http-url-https-proxy",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-for-Windows-All-you-need-to-know-to-start-using/ta-p/1758478",
        (VirtualProxy(prefix="sch"),),
        header("sch", "hdr-usr", qlik__url="{proxy_url_other_scheme}", qlik__verify="{root}"),
        (("vp.exists", "speaks https"),),
        user="ACME\\sch1",
        site="https",
    ),
    # https:// to a proxy that also listens on plain http (QMC > Proxies > Allow HTTP)
    Case(
        "https-url-http-proxy",
        "help.qlik.com/en-US/sense-admin/February2023/Subsystems/DeployAdministerQSE/Content/Sense_DeployAdminister/QSEoW/Administer_QSEoW/Managing_QSEoW/virtual-proxies-overview.htm",
        (VirtualProxy(prefix="scs"),),
        header("scs", "hdr-usr", qlik__url="{proxy_url_other_scheme}"),
        (("proxy.tls", "answers plain http"),),
        user="ACME\\scs1",
    ),
    # The app's host is not in the VP's host allow list (qsocks#1 "Unauthorized (403)": whitelist
    # the origin; community.qlik.com/t5/Integration-Extension-APIs/
    # Qlik-Sense-Nov-2025-WebSocket-connections-via-JWT-fail-with-403/td-p/2539417)
    Case(
        "host-allow-list",
        "community.qlik.com/t5/Integration-Extension-APIs/Qlik-Sense-Nov-2025-WebSocket-connections-via-JWT-fail-with-403/td-p/2539417",
        (VirtualProxy(prefix="hal"),),
        header(
            "hal",
            "hdr-usr",
            app__origin="https://portal.acme.test",
            qlik__host_header="qlik.acme.test",
        ),
        (("websocket", "add 'portal.acme.test' to the virtual proxy's Host allow list"),),
        user="ACME\\hal1",
    ),
    # The client IP in the allow list instead of the host name: the thread's first "common
    # misconception" (same thread)
    Case(
        "host-allow-list-ip",
        "community.qlik.com/t5/Integration-Extension-APIs/Qlik-Sense-Nov-2025-WebSocket-connections-via-JWT-fail-with-403/td-p/2539417",
        (VirtualProxy(prefix="hip", host_allow_list=("10.20.30.40",)),),
        header(
            "hip",
            "hdr-usr",
            app__origin="https://portal.acme.test",
            qlik__host_header="qlik.acme.test",
        ),
        (("websocket", "host names only, no scheme, port or IP"),),
        user="ACME\\hip1",
    ),
    # November 2024's WebSocket CSRF protection behind a front end that forwards only the paths
    # it knew (support article community.qlik.com/t5/Official-Support-Articles/
    # Qlik-Sense-Enterprise-on-Windows-Extended-WebSocket-CSRF/ta-p/2509211)
    Case(
        "websocket-csrf-token-blocked",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-Enterprise-on-Windows-Extended-WebSocket-CSRF/ta-p/2509211",
        (VirtualProxy(prefix="csr"),),
        header("csr", "hdr-usr"),
        (("websocket", "does not forward /csr/qps/csrftoken"),),
        user="ACME\\csr1",
        setup="block_csrftoken",
    ),
    # A ticket VP used with header authentication (the "When to Use Header Authentication" thread:
    # prefer tickets/sessions for end users; community.qlik.com/t5/Integration-Extension-APIs/
    # When-to-Use-Header-Authentication-for-Qlik-Sense/m-p/1281267)
    Case(
        "ticket-vp-with-header-auth",
        "community.qlik.com/t5/Integration-Extension-APIs/When-to-Use-Header-Authentication-for-Qlik-Sense/m-p/1281267",
        (VirtualProxy(prefix="tkt", auth="ticket"),),
        header("tkt", "hdr-usr"),
        (("login", "this is a ticket virtual proxy"),),
        user="ACME\\tkt1",
        qps=True,
    ),
    # Anonymous-only VP (support article "How to allow Anonymous Hub access": users are
    # NONE\anonymous<GUID>)
    Case(
        "anonymous-only-vp",
        "community.qlik.com/t5/Official-Support-Articles/How-to-allow-Anonymous-Hub-access-in-Qlik-Sense-Enterprise-on/tac-p/1835573",
        (VirtualProxy(prefix="ano", anonymous="always"),),
        header("ano", "hdr-usr"),
        (("login", "logs everyone in as an anonymous user"),),
        user="ACME\\ano1",
    ),
    # A gateway in front of QPS that drops X-Qlik-Xrfkey: only the query parameter arrives
    # (community.qlik.com/t5/Integration-Extension-APIs/how-to-generate-Xrfkey-in-qlik-sense/
    # td-p/1080238: "put exactly the same string in both")
    Case(
        "xrfkey-header-dropped",
        "community.qlik.com/t5/Integration-Extension-APIs/how-to-generate-Xrfkey-in-qlik-sense/td-p/1080238",
        (VirtualProxy(prefix="xrh", auth="ticket"),),
        {"qlik": {"prefix": "xrh"}, "auth": {"strategy": "session_api"}},
        (("qps.xrfkey", "drops or rewrites the X-Qlik-Xrfkey header"),),
        user="ACME\\xrh1",
        qps=True,
        setup="drop_xrfkey_header",
    ),
    # ... or the query string, so the key is missing (help.qlik.com "Using Xrfkey headers": both
    # are required; github.com/ptarmiganlabs/butler/issues/1505)
    Case(
        "xrfkey-query-dropped",
        "help.qlik.com/en-US/sense-developer/August2022/Subsystems/ProxyServiceAPI/Content/Sense_ProxyServiceAPI/ProxyServiceAPI-Connect-API-Use-Xrfkey-Headers.htm",
        (VirtualProxy(prefix="xrq", auth="ticket"),),
        {"qlik": {"prefix": "xrq"}, "auth": {"strategy": "session_api"}},
        (("qps.xrfkey", "XSRF prevention check failed"),),
        user="ACME\\xrq1",
        qps=True,
        setup="drop_xrfkey_query",
    ),
    # qps.api_url on the proxy port 443 (help.qlik.com "QPS API URL": 443 offers the personal API
    # only; 4243 is the trusted zone listener)
    Case(
        "qps-api-on-443",
        "help.qlik.com/en-US/sense-developer/May2022/Subsystems/ProxyServiceAPI/Content/Sense_ProxyServiceAPI/ProxyServiceAPI-Connect-API-QPS-API-URL.htm",
        (VirtualProxy(prefix="p443", auth="ticket"),),
        {
            "qlik": {"prefix": "p443", "verify": "{root}"},
            "auth": {"strategy": "session_api"},
            "qps": {"api_url": "{proxy_url}"},
        },
        (("qps.tls", "like the Qlik proxy port (443)"),),
        user="ACME\\p4431",
        site="https",
        qps=True,
    ),
    # ... and on 4244, the Windows authentication port (help.qlik.com Ports: 4244 "Authentication
    # port"; the Windows pattern support article above)
    Case(
        "qps-api-on-4244",
        "help.qlik.com/en-us/sense/1.0/Subsystems/PlanningQlikSenseDeployments/Content/Deployment/SRM_Deployment_Ports.htm",
        (VirtualProxy(prefix="p4244", auth="ticket"),),
        {
            "qlik": {"prefix": "p4244"},
            "auth": {"strategy": "session_api"},
            "qps": {"api_url": "{windows_auth_url}"},
        },
        (("qps.tls", "Windows authentication port (4244)"),),
        user="ACME\\p42441",
        qps=True,
    ),
    # Certificates exported from another site (qalyptus.com "The complete guide to understanding
    # Qlik Sense certificates"; help.qlik.com QRS "Client certificate": a re-created certificate
    # invalidates old exports)
    Case(
        "client-certificate-other-site",
        "help.qlik.com/en-us/sense/2.1/Subsystems/PlanningQlikSenseDeployments/Content/Server/Server-Deployment-Services-QRS-Cert-Client.htm",
        (VirtualProxy(prefix="oc", auth="ticket"),),
        {
            "qlik": {"prefix": "oc"},
            "auth": {"strategy": "session_api"},
            "qps": {"client_cert": "{other_client_cert}", "client_key": "{other_client_key}"},
        },
        (("qps.credentials", "export the certificates again from the QMC"),),
        user="ACME\\oc1",
        qps=True,
    ),
    # QPS's certificate names the short host name only (third-party reports of verification
    # failing on the FQDN: research S23; Qlik's Python example connects to qlikserver1)
    Case(
        "certificate-name-mismatch",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-call-Qlik-Sense-Engine-API-with-Python/tac-p/1770065",
        (VirtualProxy(prefix="cn", auth="ticket"),),
        {"qlik": {"prefix": "cn"}, "auth": {"strategy": "session_api"}},
        (("qps.tls", "set qps.server_name = 'qlikserver1'"),),
        user="ACME\\cn1",
        site="shortname",
        qps=True,
    ),
    # No access pass (support article 1715138: "Does the user have a license?")
    Case(
        "no-access-pass",
        "community.qlik.com/t5/Official-Support-Articles/You-cannot-access-Qlik-Sense-because-you-have-no-access-pass/ta-p/1715138",
        (VirtualProxy(prefix="nap"),),
        header("nap", "hdr-usr"),
        (("websocket", "has no access pass"),),
        user="ACME\\nap1",
        access=AccessPasses(users={"ACME\\nap1": "none"}),
    ),
    # Access from a group rule of a user directory not synchronised yet (same article: "assigned a
    # license ... based on an active directory group, and has not yet been synchronized")
    Case(
        "user-directory-not-synced",
        "community.qlik.com/t5/Official-Support-Articles/You-cannot-access-Qlik-Sense-because-you-have-no-access-pass/ta-p/1715138",
        (VirtualProxy(prefix="uds"),),
        header("uds", "hdr-usr"),
        (("websocket", "synchronise that user directory"),),
        user="NEWCO\\uds1",
        access=AccessPasses(directories={"NEWCO": "not_synced"}),
    ),
    # The 5-session cap (support articles community.qlik.com/t5/Official-Support-Articles/
    # How-do-Qlik-Sense-client-managed-sessions-work-and-how-to-handle/ta-p/2487927 and
    # Troubleshoot-no-access-pass-or-too-many-sessions-active-in/tac-p/2103625). The simulated VP
    # has no cool-down so the rerun need not wait 5 minutes.
    Case(
        "five-session-cap",
        "community.qlik.com/t5/Official-Support-Articles/How-do-Qlik-Sense-client-managed-sessions-work-and-how-to-handle/ta-p/2487927",
        (VirtualProxy(prefix="cap", cooldown=0),),
        header("cap", "hdr-usr"),
        (("login", "Qlik allows 5 parallel sessions per user"),),
        user="ACME\\cap1",
        qps=True,
        setup="five_sessions",
    ),
    # The app's name where its ID belongs (support article "call Qlik Sense Engine API with
    # Python": GetDocList gives qDocName and qDocId; help.qlik.com "Open app" errors)
    Case(
        "app-name-instead-of-id",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-call-Qlik-Sense-Engine-API-with-Python/tac-p/1770065",
        (VirtualProxy(prefix="app"),),
        header("app", "hdr-usr", check__app_id="Sales"),
        (("websocket", "it is the NAME of the app"),),
        user="ACME\\app1",
    ),
    # A new VP without load balancing nodes: no engine (support article community.qlik.com/t5/
    # Official-Support-Articles/Load-Balancing-in-Qlik-Sense-Enterprise-on-Windows/ta-p/1715174:
    # "If user create a new virtual proxy, user must configure it by adding load balancing")
    Case(
        "no-load-balancing-nodes",
        "community.qlik.com/t5/Official-Support-Articles/Load-Balancing-in-Qlik-Sense-Enterprise-on-Windows/ta-p/1715174",
        (VirtualProxy(prefix="nolb", load_balancing_nodes=()),),
        header("nolb", "hdr-usr"),
        (("websocket", "Load balancing nodes"),),
        user="ACME\\nolb1",
    ),
    # Cross-site embedding without SameSite=None; Secure (help.qlik.com SameSite-attribute;
    # support article "All you need to know to start using mashups")
    Case(
        "cross-site-cookie-samesite",
        "community.qlik.com/t5/Official-Support-Articles/Qlik-Sense-for-Windows-All-you-need-to-know-to-start-using/ta-p/1758478",
        (VirtualProxy(prefix="xs"),),
        header("xs", "hdr-usr", app__embedding="cross-site", qlik__verify="{root}"),
        (("cookie", "SameSite attribute (HTTPS) = None"),),
        user="ACME\\xs1",
        site="https",
    ),
    # The VP's session inactivity timeout is shorter than the middleware's session_ttl
    # (support article ta-p/2487927: "the duration of a session is 30 minutes, but this can be
    # adjusted ... Session inactivity timeout"; help.qlik.com create-virtual-proxy)
    Case(
        "vp-timeout-below-session-ttl",
        "community.qlik.com/t5/Official-Support-Articles/How-do-Qlik-Sense-client-managed-sessions-work-and-how-to-handle/ta-p/2487927",
        (VirtualProxy(prefix="tmo", session_timeout=600),),
        header("tmo", "hdr-usr", qps__qrs_url="{qrs_url}"),
        (("vp.settings", "Session inactivity timeout of 10 min"),),
        user="ACME\\tmo1",
        qps=True,
    ),
)
