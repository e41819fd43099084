"""HTML of the demo app. Every dynamic value goes through `html.escape`; scripts live in
`static/demo.js` (no inline script), configured through `data-*` attributes.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .settings import (
    DEMO_APP_ID,
    DEMO_DIRECTORY,
    DEMO_EMBED_OBJECT,
    DEMO_FRAME_OBJECT,
    DEMO_MASHUP_OBJECT,
    DEMO_PASSWORD,
    DEMO_PREFIX,
    DEMO_USERS,
)

__all__ = ["EMBED_KIT_PATH", "app_header", "home_page", "login_page"]

#: Where the demo app serves a qlik-embed kit's page files (`qlik-sso demo --embed-kit DIR`).
EMBED_KIT_PATH = "/static/embed-kit"


def _page(title: str, body: str, state: str, head: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        f"<link rel='stylesheet' href='/static/demo.css'>{head}</head>"
        f"<body data-page='{escape(state)}'>{body}</body></html>"
    )


def _embed_element() -> str:
    return (
        f'<qlik-embed id="qlik-embed-chart" ui="analytics/chart" app-id="{escape(DEMO_APP_ID)}"'
        f' object-id="{escape(DEMO_EMBED_OBJECT)}"></qlik-embed>'
    )


def _embed_card(embed_host: str | None) -> tuple[str, str]:
    """The qlik-embed card and what it needs in <head>: the element itself when the demo has a
    qlik-embed kit, else what a real Qlik provides and the lines a page needs."""
    if embed_host is not None:
        head = (
            f"<script src='{EMBED_KIT_PATH}/embed-web-components.js'"
            f" data-host='{escape(embed_host)}' data-auth-type='windowscookie'></script>"
        )
        body = f"""
  <section class="card" id="qlik-embed-card" data-embed="on">
    <h2>qlik-embed (<code>ui="analytics/chart"</code>)</h2>
    {_embed_element()}
    <p class="hint">Drawn by the simulator's stand-in of Qlik's embed runtime; a real Qlik serves
       its own at <code>/{escape(DEMO_PREFIX)}/qlik-embed/main.js</code>.</p>
  </section>"""
        return body, head
    snippet = (
        '<script src="…/@qlik/embed-web-components/dist/index.js"\n'
        '        data-host="https://<this app>/sso" data-auth-type="windowscookie"></script>\n'
        + _embed_element()
    )
    body = f"""
  <section class="card" id="qlik-embed-card" data-embed="off">
    <h2>qlik-embed (Qlik's current toolkit)</h2>
    <p>A real Qlik Sense (client-managed, May 2024 or later) serves its embed runtime at
       <code>/{escape(DEMO_PREFIX)}/qlik-embed/main.js</code>; through the middleware a page then
       needs only:</p>
    <pre>{escape(snippet)}</pre>
    <p>The simulator cannot ship Qlik's runtime. <code>qlik-sso demo --embed-kit DIR</code> shows
       the element with a stand-in built from npm (see <code>docs/qlik-clients.md</code>).</p>
  </section>"""
    return body, ""


def login_page(csrf: str, *, error: str | None = None, next_path: str = "/") -> str:
    users = ", ".join(f"<code>{escape(u)}</code>" for u in DEMO_USERS)
    problem = f"<p id='login-error' role='alert'>{escape(error)}</p>" if error else ""
    body = f"""
<main class="card">
  <h1>Demo app: log in</h1>
  <p>Users {users}, password <code>{escape(DEMO_PASSWORD)}</code>, in the Qlik user directory
     <code>{escape(DEMO_DIRECTORY)}</code>.</p>
  {problem}
  <form id="login-form" method="post" action="/login">
    <input type="hidden" name="csrf" value="{escape(csrf)}">
    <input type="hidden" name="next" value="{escape(next_path)}">
    <label>User name <input id="username" name="username" autocomplete="username" required></label>
    <label>Password <input id="password" name="password" type="password"
      autocomplete="current-password" required></label>
    <button id="login-button" type="submit">Log in</button>
  </form>
</main>"""
    return _page("Log in - qlik-sso demo", body, "login")


def app_header(title: str, identity: str, csrf: str) -> str:
    """The demo's header: who is logged in, and the logout form (with the session's CSRF token)."""
    return f"""<header>
  <span>{escape(title)}, logged in as <strong id="app-user">{escape(identity)}</strong></span>
  <form id="logout-form" method="post" action="/logout">
    <input type="hidden" name="csrf" value="{escape(csrf)}">
    <button id="logout-button" type="submit">Log out</button>
  </form>
</header>"""


def home_page(user: str, csrf: str, *, embed_host: str | None = None) -> str:
    """The page embedding Qlik; `embed_host` (origin + mount, e.g. `http://127.0.0.1:8000/sso`)
    turns the qlik-embed card into a live `<qlik-embed>` (the demo has a kit)."""
    mount = f"/{DEMO_PREFIX}/"
    frame = f"{mount}single/?appid={quote(DEMO_APP_ID)}&obj={quote(DEMO_FRAME_OBJECT)}"
    identity = f"{DEMO_DIRECTORY}\\{user}"
    embed_card, head = _embed_card(embed_host)
    body = f"""
{app_header("Demo app", identity, csrf)}
<main class="grid">
  <section class="card">
    <h2>Qlik embedded (iframe, <code>single/</code>)</h2>
    <iframe id="qlik-frame" title="Qlik Sense" src="{escape(frame)}"></iframe>
  </section>
  <section class="card" id="mashup" data-state="connecting" data-mount="{escape(mount)}"
           data-app-id="{escape(DEMO_APP_ID)}" data-object-id="{escape(DEMO_MASHUP_OBJECT)}">
    <h2>Mashup (engine WebSocket)</h2>
    <p id="mashup-user"></p>
    <p id="mashup-status">connecting…</p>
    <h3 id="mashup-title"></h3>
    <table id="mashup-table"><thead></thead><tbody></tbody></table>
  </section>{embed_card}
</main>
<script src="/static/demo.js"></script>"""
    return _page("qlik-sso demo", body, "home", head)
