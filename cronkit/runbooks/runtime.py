"""The runbooks' runtime: parameters, the apply gate and confirmation, and every marimo-vs-Jupyter-vs-script case.

A runbook runs in one of three places, and this is the only module that knows which:

* **marimo** (``marimo edit/run``, ``python runbooks/x.py``, ``app.run()``): ``mo.stop`` works, so
  :func:`gate` stops a state-changing cell (and its descendants) until its button is pressed.
* **Jupyter** (nbval, ``jupyter execute`` of an exported rendition): there is no marimo runtime and
  ``mo.stop`` would raise into the cell, so the gate only answers and the effect helpers change
  nothing when it is falsy, saying why (:data:`JUPYTER_GATE`).
* **a script** (``python runbooks/setup.py``): as marimo, and :func:`say` also prints, so a headless
  run tells what it did.

Parameters (:func:`params`): defaults < ``.env`` (:func:`cronkit.config.dotenv_file_values`) < ``CRONKIT_<NAME>``
/ ``DATABASE_URL`` < marimo command-line arguments. Tests replace the whole config cell with
``app.run(defs={"p": {...}})``.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import marimo as mo
import polars as pl

from cronkit import config, db
from cronkit.errors import ConfigError

#: what a state-changing step says in Jupyter, where there is no button to press
JUPYTER_GATE = "apply is only available in marimo or with apply=true"

#: variables read for a parameter besides ``CRONKIT_<NAME>`` (libpq conventions first)
_EXTRA_VARIABLES = {"dsn": ("DATABASE_URL",)}
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


# -- parameters ----------------------------------------------------------------------------------


def variables_for(name: str) -> tuple[str, ...]:
    """The environment variables a parameter is read from, strongest first."""
    return (f"CRONKIT_{name.upper()}", *_EXTRA_VARIABLES.get(name, ()))


def params(
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = None,
    cli: Mapping[str, Any] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    """A runbook's parameters: ``defaults`` < ``.env`` < environment < marimo CLI arguments.

    Only the names given as ``defaults`` are parameters; each value is converted to the type of
    its default (``"true"`` → ``True`` for a bool, ``"30"`` → ``30.0`` for a float; a ``None``
    default takes text). Outside marimo (Jupyter, plain Python) there are no CLI arguments, and
    reading them never raises. An unconvertible value raises :class:`ConfigError` naming where it
    came from.
    """
    env = dict(os.environ if environ is None else environ)
    file_values = config.dotenv_file_values(env_file)
    args = {str(k).replace("-", "_"): v for k, v in (marimo_cli_args() if cli is None else cli).items()}
    result: dict[str, Any] = {}
    for name, default in defaults.items():
        value = default
        for source, label in ((file_values, ".env"), (env, "the environment")):
            for variable in reversed(variables_for(name)):  # the CRONKIT_ name wins over its alias
                if source.get(variable, "") != "":
                    value = _coerce(source[variable], default, f"{variable} in {label}")
        if name in args:
            raw = args[name]
            value = _coerce(raw[-1] if isinstance(raw, list) else raw, default, f"--{name.replace('_', '-')}")
        result[name] = value
    return result


def _coerce(raw: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}.", remedy="Use true/false (or 1/0).")
    if isinstance(default, int | float):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}.") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    if raw is None:
        return None
    return str(raw)


def param_rows(p: Mapping[str, Any]) -> pl.DataFrame:
    """The parameters for display: the DSN without its password, nothing else secret in ``p``."""
    rows = []
    for name, value in sorted(p.items()):
        shown = db.redact_dsn(value) if name == "dsn" and value else value
        rows.append({"parameter": name, "value": "" if shown is None else str(shown),
                     "variable": " / ".join(variables_for(name)), "cli": f"--{name.replace('_', '-')}"})
    return pl.DataFrame(rows, schema={"parameter": pl.String, "value": pl.String, "variable": pl.String, "cli": pl.String})


# -- which runtime -------------------------------------------------------------------------------


def marimo_cli_args() -> dict[str, Any]:
    """``mo.cli_args()`` as a dict; empty outside a marimo runtime (where it raises)."""
    try:
        return dict(mo.cli_args())
    except Exception:  # noqa: BLE001 - ContextNotInitializedError and friends: not in marimo
        return {}


def runtime_mode() -> str | None:
    """marimo's mode (``edit``, ``run``, ``script``), or None outside marimo (Jupyter, plain Python)."""
    try:
        return mo.app_meta().mode
    except Exception:  # noqa: BLE001 - no marimo context
        return None


def in_marimo() -> bool:
    """True inside a marimo runtime (editor, app, script or ``app.run()``), where ``mo.stop`` works.

    marimo reports mode ``test`` whenever ``PYTEST_CURRENT_TEST`` is set — also in a Jupyter kernel
    started under pytest (nbval) — without any runtime; that does not count.
    """
    return runtime_mode() in ("edit", "run", "script")


def offline_charts_in_jupyter() -> bool:
    """In a Jupyter kernel, draw altair charts as embedded SVG (rendered by vl-convert, in process)
    instead of HTML that loads vega from a CDN: an exported notebook opened offline, or printed,
    still shows its charts. True when it switched. marimo draws charts itself and is left alone."""
    if in_marimo() or "ipykernel" not in sys.modules:
        return False
    import altair as alt

    alt.renderers.enable("svg")
    return True


offline_charts_in_jupyter()

#: True while :func:`reporting` runs a runbook: the report shows the outputs, nothing is printed
_reporting = False


@contextlib.contextmanager
def reporting(argv: list[str]) -> Iterator[None]:
    """Run a runbook for a report: ``argv`` becomes what ``mo.cli_args()`` reads, and :func:`say`
    stays quiet (the report shows every output itself)."""
    global _reporting
    saved = sys.argv
    sys.argv = argv
    _reporting = True
    try:
        yield
    finally:
        sys.argv = saved
        _reporting = False


def _script_main() -> bool:
    """True for ``python runbooks/x.py``: marimo's script mode started from the runbook's own file
    (not ``app.run()`` from a test, a script or the report command, which use the outputs)."""
    if _reporting or runtime_mode() != "script" or not sys.argv or not sys.argv[0]:
        return False
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        same = main is not None and Path(main).resolve() == Path(sys.argv[0]).resolve()
    except OSError:
        return False
    return same and _is_notebook(str(Path(sys.argv[0]).resolve()))


@functools.lru_cache(maxsize=8)
def _is_notebook(path: str) -> bool:
    try:
        return "marimo.App(" in Path(path).read_text(encoding="utf-8")
    except OSError:
        return False


# -- what a step shows ---------------------------------------------------------------------------


def say(text: str) -> mo.Html:
    """``mo.md(text)``; run as a script, also print it, so a headless run tells what it did."""
    if _script_main():
        print(html.unescape(text).strip() + "\n", flush=True)
    return mo.md(text)


def esc(text: Any) -> str:
    """Free text for ``mo.md``: ``<secret len=...>`` and error messages must not become HTML tags,
    nor ``$...$`` in SQL become maths, nor the ``*`` of ``app.settings.*`` emphasis."""
    return html.escape(str(text), quote=False).replace("$", "&#36;").replace("*", "&#42;")


def prose(text: str) -> str:
    """Text with `code` spans as HTML, everything else escaped: SQL with ``$$`` or ``<...>`` in a
    message must not turn into markdown maths or tags."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


# -- the apply gate ------------------------------------------------------------------------------


def confirmed(button: Any, p: Mapping[str, Any]) -> bool:
    """True when ``apply`` is set or the run button was pressed (its value is True for that run)."""
    return bool(p.get("apply")) or bool(getattr(button, "value", False))


def not_confirmed_note(action: str) -> mo.Html:
    if in_marimo():
        return say(
            f"**Not applied.** Review the preview above, then press **{action}** "
            "(headless: `--apply true`). Nothing was changed."
        )
    return say(f"**Not applied:** {JUPYTER_GATE}. Nothing was changed.")


@dataclass(frozen=True)
class Gate:
    """The answer of :func:`gate`: truthy when the step may change the database."""

    ok: bool
    action: str
    needed: bool = True
    idle: str = "Nothing to do."
    #: how ``idle`` is marked: ✅ when nothing is needed because the state is verified, — when
    #: nothing can be done yet (nothing applied, no work): that verifies nothing
    idle_mark: str = "✅"

    def __bool__(self) -> bool:
        return self.ok


def gate(go: bool, action: str, *, needed: bool = True, idle: str = "Nothing to do.",
         missing: str | None = None, idle_mark: str = "✅") -> Gate:
    """The apply gate: inside marimo, ``mo.stop`` the cell (and its descendants) unless ``go``.

    ``needed=False`` (the preview found nothing to change) lets the cell go on without stopping;
    the effect helper then changes nothing and shows ``idle``. Outside marimo ``mo.stop`` would
    raise into the cell, so the gate only answers, and the effect helper called with it does
    nothing when it is falsy (and says why: :data:`JUPYTER_GATE`).

    ``missing`` names what the person must still do besides pressing the button (type a name):
    while it is set, a press changes nothing and the cell says what is missing.
    """
    if go and needed and missing:
        if in_marimo():
            mo.stop(True, say(f"**Not applied.** {missing} Nothing was changed."))
        go = False
    if not go and needed and in_marimo():
        mo.stop(True, not_confirmed_note(action))
    return Gate(bool(go), action, needed, idle, idle_mark)


@dataclass(frozen=True)
class NotApplied:
    """What an effect helper returns when its step was not confirmed (or had nothing to do)."""

    action: str
    needed: bool = True
    idle: str = "Nothing to do."
    idle_mark: str = "✅"

    @classmethod
    def of(cls, ok: bool | Gate, action: str) -> NotApplied:
        if isinstance(ok, Gate):
            return cls(ok.action, ok.needed, ok.idle, ok.idle_mark)
        return cls(action)

    def view(self) -> mo.Html:
        if not self.needed:
            return say(f"{self.idle_mark} {self.idle}")
        return not_confirmed_note(self.action)
