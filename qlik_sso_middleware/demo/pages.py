"""HTML of the demo app. Every dynamic value goes through `html.escape`; scripts live in
`static/demo.js` (no inline script), configured through `data-*` attributes.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .settings import (
    DEMO_APP_ID,
    DEMO_DIRECTORY,
    DEMO_FRAME_OBJECT,
    DEMO_MASHUP_OBJECT,
    DEMO_PASSWORD,
    DEMO_PREFIX,
    DEMO_USERS,
)

__all__ = ["home_page", "login_page"]


def _page(title: str, body: str, state: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<link rel='stylesheet' href='/static/demo.css'></head>"
        f"<body data-page='{escape(state)}'>{body}</body></html>"
    )


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


def home_page(user: str, csrf: str) -> str:
    mount = f"/{DEMO_PREFIX}/"
    frame = f"{mount}single/?appid={quote(DEMO_APP_ID)}&obj={quote(DEMO_FRAME_OBJECT)}"
    identity = f"{DEMO_DIRECTORY}\\{user}"
    body = f"""
<header>
  <span>Demo app, logged in as <strong id="app-user">{escape(identity)}</strong></span>
  <form id="logout-form" method="post" action="/logout">
    <input type="hidden" name="csrf" value="{escape(csrf)}">
    <button id="logout-button" type="submit">Log out</button>
  </form>
</header>
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
  </section>
</main>
<script src="/static/demo.js"></script>"""
    return _page("qlik-sso demo", body, "home")
