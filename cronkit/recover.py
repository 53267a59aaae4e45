"""What a hand-made job means: the HTTP call, guard and secrets behind a ``cron.job`` command.

The guides' jobs call ``net.http_post`` either inline in the command or from a plpgsql wrapper
(``SELECT invoke_x()``). :func:`recover` reads both with PostgreSQL's own parser (pglast, which is
libpg_query: the server's grammar, PL/pgSQL included) and evaluates the call's arguments:

- literals, ``||`` concatenation, ``'{}'::jsonb``, ``jsonb_build_object(...)`` (nested);
- secret reads — ``vault.decrypted_secrets``, a secrets table (a scalar subquery, or a helper such
  as ``get_secret('x')`` whose body is such a read), ``current_setting('app.settings.x')`` —
  become ``{secret:NAME}`` references with the backend they come from;
- a wrapper's ``SELECT count(*) INTO n FROM q WHERE ...; IF n = 0 THEN RETURN`` becomes the guard
  ``exists (select 1 from q where ...)`` (tables schema-qualified), and ``q`` a queue;
- a key written literally becomes a secret reference to store first: the value is never kept.

Anything else (a wrapper that also writes rows, loops, a second call, a body built from a secret)
cannot be represented as an HTTP job: :attr:`Recovered.reason` says why, and the job stays ``sql``.
The reader needs the functions the command calls; the caller passes a ``lookup`` (the database's
``pg_proc``, or the ``CREATE FUNCTION`` statements of a script).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pglast import ast, parse_plpgsql, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from cronkit.redact import KEY_PATTERN
from cronkit.text import error_line

#: where a secret lives, as the doctor names backends: ("vault",), ("table", "schema.table", key, value), ("guc", prefix)
BackendKey = tuple[str, ...]
VAULT: BackendKey = ("vault",)
#: cronkit's reference grammar for secret names (cronkit.manifest)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_HTTP = {"http_post": "POST", "http_get": "GET", "http_delete": "DELETE"}
_HTTP_TEXT = re.compile(r"\bhttp_(?:post|get|delete)\s*\(", re.IGNORECASE)
_PARAMETERS = {"POST": ("url", "body", "params", "headers", "timeout_milliseconds"),
               "GET": ("url", "params", "headers", "timeout_milliseconds"),
               "DELETE": ("url", "params", "headers", "timeout_milliseconds", "body")}


class MissingSecret(StrEnum):
    """What a run does when a secret it reads is missing (NULL)."""

    #: the run fails and says so (cronkit's wrappers; a hand-made RAISE EXCEPTION)
    FAILS = "fails"
    #: the wrapper returns early: pg_cron records "succeeded", and nothing was called
    CALLS_NOTHING = "calls nothing"
    #: no check: NULL goes into the request (pg_net drops a NULL header → 401; a NULL URL fails)
    SENDS_NULL = "sends NULL"


@dataclass(frozen=True)
class Function:
    """A function a command calls, as ``pg_get_functiondef`` prints it."""

    schema: str
    name: str
    definition: str
    #: as ``regprocedure`` prints it (schema only when off the search path, argument types)
    signature: str = ""


#: (schema or None, name) -> the function, or None when there is none
Lookup = Callable[[str | None, str], Function | None]
#: an unqualified table name -> its schema (None: not found)
Resolver = Callable[[str], str | None]


@dataclass(frozen=True)
class SecretRead:
    backend: BackendKey
    name: str

    @property
    def reference(self) -> str:
        return "{secret:" + self.name + "}"


@dataclass(frozen=True)
class Queue:
    """A queue table a guard counts: its schema-qualified name and the status values the guard waits for."""

    table: str
    status_column: str
    states: tuple[str, ...]


@dataclass(frozen=True)
class Recovered:
    """What a command means. ``url`` None: it cannot be an HTTP job (``reason`` says why)."""

    method: str = "POST"
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None
    guard: str | None = None
    queue: Queue | None = None
    secrets: tuple[SecretRead, ...] = ()
    #: secret names made up for keys written literally (the values are never kept)
    literal_keys: tuple[str, ...] = ()
    #: the wrapper function followed, e.g. "public.invoke_bubble_sync_processor"
    via: str | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()
    #: whether the command, or a function it calls, mentions a pg_net call (recovered or not)
    calls_http: bool = False
    #: what a run does when one of its secrets is missing
    on_missing_secret: MissingSecret = MissingSecret.SENDS_NULL

    @property
    def backends(self) -> set[BackendKey]:
        return {s.backend for s in self.secrets if s.name not in self.literal_keys}


class Unsupported(Exception):  # noqa: N818 - a reason, not a failure: it ends up in Recovered.reason
    """The command does something an HTTP job cannot say."""


# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    """A string built from literals and secret reads."""

    parts: tuple[str | SecretRead, ...]

    def template(self) -> str:
        return "".join(p.reference if isinstance(p, SecretRead) else p for p in self.parts)


@dataclass(frozen=True)
class _Count:
    """``count(*)`` over a query (its FROM and WHERE), for a guard."""

    select: ast.SelectStmt


#: schemas whose functions are the platform's, never a job's own wrapper
_PLATFORM = frozenset({"pg_catalog", "information_schema", "net", "vault", "cron", "extensions", "pgsodium"})
#: how deep :func:`walk` follows calls (command → wrapper → helper → ...)
MAX_DEPTH = 4


@dataclass(frozen=True)
class Walk:
    """Everything a command reaches: the functions it calls (transitively) and the secrets any of them read."""

    functions: tuple[Function, ...]
    reads: tuple[SecretRead, ...]


def walk(command: str, lookup: Lookup, resolve: Resolver) -> Walk:
    """The functions ``command`` calls, followed through their bodies, and every secret read on the way.

    Unlike :func:`recover` this never gives up: text it cannot parse is simply not followed.
    """
    reader = _Reader("", lookup, resolve)
    functions: dict[tuple[str, str], Function] = {}
    pending: list[tuple[str, int]] = [(command, 0)]
    while pending:
        text, depth = pending.pop()
        for statement in _statements_of(text):
            try:
                calls = reader.reads_in(statement)
            except (KeyError, AttributeError, TypeError, ValueError, IndexError, RecursionError):
                continue  # a statement this reader has not met yet: not followed
            for call in calls:
                schema, name = (call[0], call[1]) if len(call) == 2 else (None, call[-1])
                if schema in _PLATFORM or depth >= MAX_DEPTH:
                    continue
                function = lookup(schema, name)
                if function is not None and (function.schema, function.name) not in functions:
                    functions[(function.schema, function.name)] = function
                    pending.append((function.definition, depth + 1))
    return Walk(tuple(functions.values()), tuple(reader.secrets.values()))


def _statements_of(text: str) -> list[Any]:
    """The parsed statements of SQL text; for a function definition, its body's statements too."""
    try:
        statements = [raw.stmt for raw in parse_sql(text)]
    except (ParseError, ValueError, RecursionError):
        return []
    found: list[Any] = []
    for statement in statements:
        found.append(statement)
        if isinstance(statement, ast.CreateFunctionStmt):
            options = {o.defname: o.arg for o in (statement.options or ())}
            language = getattr(options.get("language"), "sval", "sql")
            body = options.get("as")
            source = body[0].sval if isinstance(body, tuple | list) and body else None
            if language == "plpgsql":
                try:
                    tree = parse_plpgsql(text)
                except (ParseError, ValueError):
                    continue
                for literal in _dynamic_literals(tree):  # EXECUTE 'sql': how cronkit's own sql wrappers run a job's SQL
                    found += _statements_of(literal)
                for query in _plpgsql_queries(tree):
                    found += _statements_of(query if re.match(r"\s*(select|with|insert|update|delete|perform)\b", query, re.I)
                                            else "SELECT " + query.partition(":=")[2] if ":=" in query else "SELECT " + query)
            elif source:
                found += _statements_of(source)
    return found


def _dynamic_literals(node: Any) -> list[str]:
    """The SQL of every ``EXECUTE 'constant text'`` in a PL/pgSQL tree."""
    if isinstance(node, dict):
        if "PLpgSQL_stmt_dynexecute" in node:
            query = node["PLpgSQL_stmt_dynexecute"].get("query", {}).get("PLpgSQL_expr", {}).get("query", "")
            try:
                [raw] = parse_sql("SELECT " + query)
                value = raw.stmt.targetList[0].val
            except (ParseError, ValueError, AttributeError, TypeError):
                return []
            if isinstance(value, ast.A_Const) and isinstance(value.val, ast.String):
                return [value.val.sval]
            return []
        return [q for value in node.values() for q in _dynamic_literals(value)]
    if isinstance(node, list):
        return [q for value in node for q in _dynamic_literals(value)]
    return []


def _plpgsql_queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        if "PLpgSQL_expr" in node:
            return [node["PLpgSQL_expr"].get("query", "")]
        return [q for value in node.values() for q in _plpgsql_queries(value)]
    if isinstance(node, list):
        return [q for value in node for q in _plpgsql_queries(value)]
    return []


def recover(command: str, job: str, lookup: Lookup, resolve: Resolver) -> Recovered:
    """What ``command`` (a ``cron.job.command``) does, read without running it."""
    reader = _Reader(job, lookup, resolve)
    try:
        return reader.command(command)
    except Unsupported as why:
        reason = str(why)
    except (KeyError, AttributeError, TypeError, ValueError, IndexError, RecursionError) as exc:
        # SQL this reader has not met yet: the job stays as it is, never a traceback
        reason = f"cronkit cannot read it yet ({type(exc).__name__})"
    return Recovered(url=None, reason=reason, calls_http=reader.calls_http or bool(_HTTP_TEXT.search(command)))


class _Reader:
    def __init__(self, job: str, lookup: Lookup, resolve: Resolver) -> None:
        self.job = job
        self.lookup = lookup
        self.resolve = resolve
        self.secrets: dict[tuple[BackendKey, str], SecretRead] = {}
        self.literal_keys: dict[str, str] = {}  # key value -> made-up name (kept only while reading)
        self.notes: list[str] = []
        self.calls_http = False
        self.on_missing = MissingSecret.SENDS_NULL

    # -- entry points -------------------------------------------------------------------------------

    def command(self, command: str) -> Recovered:
        select = _single_select(command, "the command")
        call = _only_call(select, "the command")
        name = _func_name(call)
        if _is_http(name):
            return self._finish(self._http(call, {}), via=None, guard=None, queue=None)
        schema, fn = name if len(name) == 2 else (None, name[-1])
        function = self.lookup(schema, fn)
        if function is None:
            raise Unsupported(f"it calls {'.'.join(name)}(), which is not a function this role can read")
        return self._wrapper(function, call)

    def _wrapper(self, function: Function, call: ast.FuncCall) -> Recovered:
        where = f"{function.schema}.{function.name}"
        self.calls_http = bool(_HTTP_TEXT.search(function.definition))
        try:
            [tree] = parse_plpgsql(function.definition)
        except (ParseError, ValueError) as exc:
            raise Unsupported(f"{where}() is not a PL/pgSQL function cronkit can read ({error_line(exc)})") from None
        create = parse_sql(function.definition)[0].stmt
        names = [p.name for p in (create.parameters or ()) if p.mode is None or p.mode.name in ("FUNC_PARAM_IN", "FUNC_PARAM_DEFAULT")]
        args = list(call.args or ())
        if any(isinstance(a, ast.NamedArgExpr) for a in args) or len(args) > len(names):
            raise Unsupported(f"it passes arguments to {where}() that cronkit cannot match to its parameters")
        env: dict[str, Any] = {n: self._value(a, {}) for n, a in zip(names, args, strict=False)}
        env.update({f"${i + 1}": v for i, v in enumerate(env.values())})
        state = _Wrapper()
        self._statements(tree["PLpgSQL_function"]["action"]["PLpgSQL_stmt_block"]["body"], env, state, where)
        if state.call is None:
            raise Unsupported(f"{where}() makes no net.http_post/http_get call")
        return self._finish(state.call, via=where, guard=state.guard, queue=state.queue)

    # -- PL/pgSQL ------------------------------------------------------------------------------------

    def _statements(self, body: list[dict[str, Any]], env: dict[str, Any], state: _Wrapper, where: str) -> None:
        for item in body:
            [(kind, stmt)] = item.items()
            line = stmt.get("lineno", "?")
            if kind == "PLpgSQL_stmt_raise" and stmt.get("elog_level", 0) < 21:  # NOTICE, WARNING, ...: logging
                continue
            if kind == "PLpgSQL_stmt_return":
                if state.call is None and "lineno" in stmt:  # the implicit RETURN at the end has no line
                    raise Unsupported(f"{where}() returns before its call at line {line} in a way cronkit cannot read")
                continue
            if kind == "PLpgSQL_stmt_execsql" or kind == "PLpgSQL_stmt_perform":
                query = (stmt.get("sqlstmt") or stmt.get("expr"))["PLpgSQL_expr"]["query"]
                targets = [f["name"] for f in stmt.get("target", {}).get("PLpgSQL_row", {}).get("fields", [])]
                self._select(query, targets, env, state, where, line)
                continue
            if kind == "PLpgSQL_stmt_assign":
                query = stmt["expr"]["PLpgSQL_expr"]["query"]
                target, _, expression = query.partition(":=")
                if not expression:
                    target, _, expression = query.partition("=")
                self._select("SELECT " + expression, [target.strip()], env, state, where, line)
                continue
            if kind == "PLpgSQL_stmt_if":
                self._if(stmt, env, state, where, line)
                continue
            raise Unsupported(f"{where}() also does what an HTTP job cannot (line {line}: {_statement_name(kind)})")

    def _select(self, query: str, targets: list[str], env: dict[str, Any], state: _Wrapper, where: str, line: int) -> None:
        try:
            parsed = parse_sql(query)
        except ParseError:
            parsed = ()
        if len(parsed) == 1 and not isinstance(parsed[0].stmt, ast.SelectStmt):
            verb = type(parsed[0].stmt).__name__.removesuffix("Stmt").upper()
            raise Unsupported(f"{where}() also runs {verb} (line {line}), which an HTTP job cannot say")
        select = _single_select(query, f"{where}() line {line}")
        if len(select.targetList or ()) != 1 or len(targets) > 1:
            raise Unsupported(f"{where}() line {line} reads several values at once")
        expression = select.targetList[0].val
        if isinstance(expression, ast.FuncCall) and _is_http(_func_name(expression)):
            if state.call is not None:
                raise Unsupported(f"{where}() makes more than one HTTP call")
            if select.fromClause:
                raise Unsupported(f"{where}() line {line} makes its call once per row of a query")
            state.call = self._http(expression, env)
            return
        if _is_count(expression) and not select.groupClause:
            value: Any = _Count(select)
        elif select.fromClause:
            value = self._secret_query(select)
            if value is None:
                raise Unsupported(f"{where}() line {line} reads a table cronkit does not recognise as secrets or a queue")
        else:
            value = self._value(expression, env)
        if not targets:
            raise Unsupported(f"{where}() line {line} runs a statement whose effect cronkit cannot see")
        env[targets[0]] = value

    def _if(self, stmt: dict[str, Any], env: dict[str, Any], state: _Wrapper, where: str, line: int) -> None:
        then = stmt.get("then_body") or []
        kinds = [next(iter(s)) for s in then]
        last = then[-1][kinds[-1]] if then else {}
        raises = kinds[-1:] == ["PLpgSQL_stmt_raise"] and last.get("elog_level", 0) >= 21  # ERROR and up
        exits = (kinds[-1:] == ["PLpgSQL_stmt_return"] or raises) and all(
            k in ("PLpgSQL_stmt_raise", "PLpgSQL_stmt_return") for k in kinds)
        if not exits or stmt.get("elsif_list") or stmt.get("else_body"):
            raise Unsupported(f"{where}() line {line} branches in a way an HTTP job cannot say")
        cond = _single_select("SELECT " + stmt["cond"]["PLpgSQL_expr"]["query"], f"{where}() line {line}").targetList[0].val
        returns = kinds[-1] == "PLpgSQL_stmt_return"
        secret_check = _null_checks(cond)
        if secret_check and all(isinstance(env.get(v), SecretRead | _Text) for v in secret_check):
            self.on_missing = MissingSecret.CALLS_NOTHING if returns else MissingSecret.FAILS
            if returns:
                self.notes.append(f"{where}() returned early (the run 'succeeded', nothing was called) when a secret "
                                  "was missing; cronkit's wrapper fails the run and names the secret instead")
            return
        counted = _empty_count(cond, env)
        if counted is not None and returns:
            if state.guard is not None:
                raise Unsupported(f"{where}() has more than one early exit on a count")
            state.guard, state.queue = self._guard(counted.select)
            return
        raise Unsupported(f"{where}() line {line} exits early on a condition cronkit cannot turn into a guard")

    def _guard(self, select: ast.SelectStmt) -> tuple[str, Queue | None]:
        for node in _range_vars(select):
            if node.schemaname is None:
                node.schemaname = self.resolve(node.relname)
                if node.schemaname is None:
                    raise Unsupported(f"its guard reads {node.relname}, which this role cannot see")
        select.targetList = (ast.ResTarget(val=ast.A_Const(val=ast.Integer(1))),)
        guard = "exists (" + RawStream()(select) + ")"
        queue = None
        tables = list(_range_vars(select))
        if len(tables) == 1 and len(select.fromClause or ()) == 1:
            column, states = _status_filter(select.whereClause)
            if column:
                queue = Queue(f"{tables[0].schemaname}.{tables[0].relname}", column, states)
        return guard, queue

    # -- the call ------------------------------------------------------------------------------------

    def _http(self, call: ast.FuncCall, env: dict[str, Any]) -> _Call:
        method = _HTTP[_func_name(call)[-1]]
        names = _PARAMETERS[method]
        given: dict[str, Any] = {}
        for index, arg in enumerate(call.args or ()):
            if isinstance(arg, ast.NamedArgExpr):
                given[arg.name] = arg.arg
            elif index < len(names):
                given[names[index]] = arg
        values = {k: self._value(v, env) for k, v in given.items()}
        url = values.get("url")
        if not isinstance(url, _Text):
            raise Unsupported("its URL is not text cronkit can read")
        headers = values.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, _Text) for v in headers.values()):
            raise Unsupported("its headers are not an object of text values")
        params = values.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(v, _Text) for v in params.values()):
            raise Unsupported("its params are not an object of text values")
        body = values.get("body", {} if method == "POST" else None)
        if _holds_null(body) and body is not None:
            raise Unsupported("its body holds a JSON null, which a manifest (TOML) cannot write")
        if _holds_secret(body):
            raise Unsupported("its body carries a secret (cronkit sends secrets in headers or the URL only)")
        timeout = values.get("timeout_milliseconds")
        if timeout is not None and not isinstance(timeout, int):
            raise Unsupported("its timeout is not a number")
        return _Call(method, url, headers, _plain(body), params, timeout)

    def _value(self, node: Any, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.A_Const):
            if node.isnull:
                return None
            val = node.val
            if isinstance(val, ast.String):
                return self._literal(val.sval)
            if isinstance(val, ast.Integer):
                return val.ival
            if isinstance(val, ast.Float):
                return float(val.fval)
            if isinstance(val, ast.Boolean):
                return bool(val.boolval)
        if isinstance(node, ast.TypeCast):
            target = ".".join(n.sval for n in node.typeName.names)
            inner = self._value(node.arg, env)
            if target in ("jsonb", "json", "pg_catalog.jsonb", "pg_catalog.json") and isinstance(inner, _Text):
                try:
                    return json.loads(inner.template())
                except ValueError:
                    raise Unsupported("it casts text that is not JSON to jsonb") from None
            if target in ("text", "pg_catalog.text", "varchar", "pg_catalog.varchar", "int4", "pg_catalog.int4",
                          "integer", "int", "pg_catalog.int8", "bigint"):
                return inner
            raise Unsupported(f"it casts to {target}")
        if isinstance(node, ast.A_Expr) and [n.sval for n in node.name] == ["||"]:
            left, right = self._value(node.lexpr, env), self._value(node.rexpr, env)
            return _concat(left, right)
        if isinstance(node, ast.ColumnRef):
            name = ".".join(getattr(f, "sval", "*") for f in node.fields)
            if name not in env:
                raise Unsupported(f"it uses {name}, which cronkit cannot evaluate")
            value = env[name]
            return _Text((value,)) if isinstance(value, SecretRead) else value
        if isinstance(node, ast.ParamRef):
            return env.get(f"${node.number}")
        if isinstance(node, ast.SubLink) and isinstance(node.subselect, ast.SelectStmt):
            read = self._secret_query(node.subselect)
            if read is None:
                raise Unsupported("it reads a value with a subquery cronkit does not recognise as a secret")
            return _Text((read,))
        if isinstance(node, ast.FuncCall):
            return self._function_value(node, env)
        raise Unsupported(f"it computes a value cronkit cannot evaluate ({type(node).__name__})")

    def _function_value(self, node: ast.FuncCall, env: dict[str, Any]) -> Any:
        name = _func_name(node)
        args = [self._value(a, env) for a in (node.args or ())]
        if name[-1] in ("jsonb_build_object", "json_build_object"):
            if len(args) % 2:
                raise Unsupported(f"{name[-1]} has an odd number of arguments")
            keys = args[0::2]
            if not all(isinstance(k, _Text) and all(isinstance(p, str) for p in k.parts) for k in keys):
                raise Unsupported("a JSON key is not a literal")
            return {k.template(): v for k, v in zip(keys, args[1::2], strict=True)}
        if name[-1] in ("jsonb_build_array", "json_build_array"):
            return list(args)
        if name[-1] == "current_setting" and args and _literal_text(args[0]) is not None:
            setting = _literal_text(args[0]) or ""
            prefix, _, key = setting.rpartition(".")
            if not prefix.startswith("app") or not _NAME.fullmatch(key):
                raise Unsupported(f"it reads the setting {setting!r}, which is not an app.* secret")
            return _Text((self._secret(("guc", prefix + "."), key),))
        if len(args) == 1 and _literal_text(args[0]) is not None:
            helper = self.lookup(name[0] if len(name) == 2 else None, name[-1])
            read = self._helper_read(helper, _literal_text(args[0]) or "") if helper else None
            if read is not None:
                return _Text((read,))
        raise Unsupported(f"it calls {'.'.join(name)}(), whose value cronkit cannot evaluate")

    # -- secrets -------------------------------------------------------------------------------------

    def reads_in(self, statement: Any) -> list[tuple[str, ...]]:
        """Record every secret ``statement`` reads (anywhere in it); return the functions it calls."""
        calls: list[tuple[str, ...]] = []
        for node in _nodes(statement):
            try:
                if isinstance(node, ast.SelectStmt):
                    self._secret_query(node)
                elif isinstance(node, ast.FuncCall):
                    calls.append(_func_name(node))
                    self._function_value(node, {})
            except Unsupported:
                pass  # not a secret read: only its calls matter here
        return calls

    def _literal(self, text: str) -> _Text:
        if "{secret:" in text or "{env:" in text:
            raise Unsupported("a literal holds {secret:...}/{env:...}, which a manifest would read as a reference")
        parts: list[str | SecretRead] = []
        last = 0
        for match in KEY_PATTERN.finditer(text):
            parts.append(text[last:match.start()])
            name = self.literal_keys.setdefault(match.group(0), _key_name(self.job, len(self.literal_keys)))
            parts.append(SecretRead(("literal",), name))
            last = match.end()
        parts.append(text[last:])
        return _Text(tuple(p for p in parts if p != ""))

    def _secret(self, backend: BackendKey, name: str) -> SecretRead:
        if not _NAME.fullmatch(name):
            raise Unsupported(f"it reads the secret {name!r}, whose name a {{secret:...}} reference cannot hold")
        return self.secrets.setdefault((backend, name), SecretRead(backend, name))

    def _secret_query(self, select: ast.SelectStmt) -> SecretRead | None:
        """``SELECT col FROM vault.decrypted_secrets | a table WHERE keycol = 'name'`` as a secret read."""
        if len(select.targetList or ()) != 1 or len(select.fromClause or ()) != 1:
            return None
        table, column = select.fromClause[0], select.targetList[0].val
        if not isinstance(table, ast.RangeVar) or not isinstance(column, ast.ColumnRef):
            return None
        match = _equals_literal(select.whereClause)
        if match is None:
            return None
        key_column, name = match
        value_column = column.fields[-1].sval
        if (table.schemaname, table.relname) == ("vault", "decrypted_secrets") and key_column == "name":
            return self._secret(VAULT, name)
        if table.schemaname == "vault":
            return None
        schema = table.schemaname or self.resolve(table.relname)
        if schema is None:
            return None
        return self._secret(("table", f"{schema}.{table.relname}", key_column, value_column), name)

    def _helper_read(self, helper: Function, name: str) -> SecretRead | None:
        """``get_secret('x')`` when the helper is ``SELECT value FROM t WHERE key = <its parameter>``."""
        try:
            create = parse_sql(helper.definition)[0].stmt
        except ParseError:
            return None
        options = {o.defname: o.arg for o in (create.options or ())}
        language = getattr(options.get("language"), "sval", None)
        body = options.get("as")
        params = [p.name for p in (create.parameters or ())]
        if language != "sql" or not body or len(params) != 1:
            return None
        text = body[0].sval if isinstance(body, tuple | list) else getattr(body, "sval", None)
        try:
            statements = parse_sql(text or "")
        except ParseError:
            return None
        if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
            return None
        select = statements[0].stmt
        where = select.whereClause
        if not (isinstance(where, ast.A_Expr) and [n.sval for n in where.name] == ["="]):
            return None
        param = where.rexpr
        uses_param = (isinstance(param, ast.ColumnRef) and param.fields[-1].sval == params[0]) or (
            isinstance(param, ast.ParamRef) and param.number == 1)
        if not uses_param or not isinstance(where.lexpr, ast.ColumnRef):
            return None
        where.rexpr = ast.A_Const(val=ast.String(sval=name))
        return self._secret_query(select)

    # -- the result ----------------------------------------------------------------------------------

    def _finish(self, call: _Call, *, via: str | None, guard: str | None, queue: Queue | None) -> Recovered:
        def template(value: _Text) -> str:
            return value.template()

        headers = {k: template(v) for k, v in call.headers.items()
                   if not (k.lower() == "content-type" and template(v) == "application/json")}
        reads = [p for t in (call.url, *call.headers.values(), *call.params.values()) for p in t.parts
                 if isinstance(p, SecretRead)]
        return Recovered(
            calls_http=True, on_missing_secret=self.on_missing, method=call.method, url=template(call.url), headers=headers, body=call.body,
            params={k: template(v) for k, v in call.params.items()}, timeout_ms=call.timeout,
            guard=guard, queue=queue, secrets=tuple(dict.fromkeys(reads)),
            literal_keys=tuple(dict.fromkeys(self.literal_keys.values())), via=via, notes=tuple(self.notes),
        )


@dataclass
class _Wrapper:
    call: _Call | None = None
    guard: str | None = None
    queue: Queue | None = None


@dataclass(frozen=True)
class _Call:
    method: str
    url: _Text
    headers: dict[str, _Text]
    body: Any
    params: dict[str, _Text]
    timeout: int | None


# -- small readers ---------------------------------------------------------------------------------


def _single_select(text: str, where: str) -> ast.SelectStmt:
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        raise Unsupported(f"{where} is not SQL cronkit can parse ({error_line(exc)})") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise Unsupported(f"{where} is not a single SELECT")
    select = statements[0].stmt
    if select.op is not None and select.op.name != "SETOP_NONE":
        raise Unsupported(f"{where} combines queries")
    return select


def _only_call(select: ast.SelectStmt, where: str) -> ast.FuncCall:
    if select.fromClause or select.whereClause or len(select.targetList or ()) != 1:
        raise Unsupported(f"{where} does more than call one function")
    call = select.targetList[0].val
    if not isinstance(call, ast.FuncCall):
        raise Unsupported(f"{where} does not call a function")
    return call


def _func_name(call: ast.FuncCall) -> tuple[str, ...]:
    return tuple(n.sval for n in call.funcname)


def _is_http(name: tuple[str, ...]) -> bool:
    return name[-1] in _HTTP and (len(name) == 1 or name[0] == "net")


def _is_count(node: Any) -> bool:
    return isinstance(node, ast.FuncCall) and _func_name(node)[-1] == "count" and bool(node.agg_star or node.args)


def _literal_text(value: Any) -> str | None:
    if isinstance(value, _Text) and all(isinstance(p, str) for p in value.parts):
        return "".join(value.parts)  # type: ignore[arg-type]
    return None


def _concat(left: Any, right: Any) -> _Text:
    if left is None or right is None:
        raise Unsupported("it concatenates NULL")
    parts: list[str | SecretRead] = []
    for side in (left, right):
        if isinstance(side, _Text):
            parts.extend(side.parts)
        elif isinstance(side, int | float) and not isinstance(side, bool):
            parts.append(str(side))
        else:
            raise Unsupported("it concatenates something other than text")
    merged: list[str | SecretRead] = []
    for part in parts:
        if merged and isinstance(part, str) and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return _Text(tuple(merged))


def _holds_secret(value: Any) -> bool:
    if isinstance(value, _Text):
        return any(isinstance(p, SecretRead) for p in value.parts)
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, _Text):
        return value.template()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _equals_literal(where: Any) -> tuple[str, str] | None:
    if not (isinstance(where, ast.A_Expr) and [n.sval for n in where.name] == ["="]):
        return None
    column, literal = where.lexpr, where.rexpr
    if isinstance(literal, ast.ColumnRef):
        column, literal = literal, column
    if isinstance(column, ast.ColumnRef) and isinstance(literal, ast.A_Const) and isinstance(literal.val, ast.String):
        return column.fields[-1].sval, literal.val.sval
    return None


def _null_checks(cond: Any) -> list[str]:
    """The variables of ``a IS NULL OR b IS NULL ...`` (empty: not that shape)."""
    if isinstance(cond, ast.BoolExpr) and cond.boolop.name == "OR_EXPR":
        names = [_null_checks(arg) for arg in cond.args]
        return [n for group in names for n in group] if all(names) else []
    if isinstance(cond, ast.NullTest) and cond.nulltesttype.name == "IS_NULL" and isinstance(cond.arg, ast.ColumnRef):
        return [cond.arg.fields[-1].sval]
    return []


def _empty_count(cond: Any, env: dict[str, Any]) -> _Count | None:
    """The count of ``n = 0`` / ``n < 1`` / ``n <= 0`` / ``0 = n`` when ``n`` holds a count."""
    if not isinstance(cond, ast.A_Expr) or len(cond.name) != 1:
        return None
    op = cond.name[0].sval
    left, right = cond.lexpr, cond.rexpr
    if isinstance(left, ast.A_Const):
        left, right = right, left
        op = {"=": "=", ">": "<", ">=": "<="}.get(op, "")
    if not (isinstance(left, ast.ColumnRef) and isinstance(right, ast.A_Const) and isinstance(right.val, ast.Integer)):
        return None
    counted = env.get(left.fields[-1].sval)
    if not isinstance(counted, _Count):
        return None
    empty = (op == "=" and right.val.ival == 0) or (op == "<" and right.val.ival == 1) or (op == "<=" and right.val.ival == 0)
    return counted if empty else None


def _nodes(tree: Any) -> Iterator[Any]:
    """Every node of a parse tree, the root first."""
    if isinstance(tree, ast.Node):
        yield tree
        for attribute in tree:
            yield from _nodes(getattr(tree, attribute))
    elif isinstance(tree, tuple | list):
        for item in tree:
            yield from _nodes(item)


def _range_vars(node: Any) -> list[ast.RangeVar]:
    return [n for n in _nodes(node) if isinstance(n, ast.RangeVar)]


def _status_filter(where: Any) -> tuple[str | None, tuple[str, ...]]:
    """The status column and values a guard's WHERE selects (``status = 'x'`` or ``status IN (...)``)."""
    terms = list(where.args) if isinstance(where, ast.BoolExpr) and where.boolop.name == "AND_EXPR" else [where]
    for term in terms:
        match = _equals_literal(term)
        if match and match[0] in ("status", "state"):
            return match[0], (match[1],)
        if (isinstance(term, ast.A_Expr) and term.kind.name == "AEXPR_IN" and isinstance(term.lexpr, ast.ColumnRef)
                and term.lexpr.fields[-1].sval in ("status", "state")):
            values = tuple(v.val.sval for v in term.rexpr if isinstance(v, ast.A_Const) and isinstance(v.val, ast.String))
            return term.lexpr.fields[-1].sval, values
    return None, ()


def _key_name(job: str, index: int) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", job.lower()).strip("_") or "job"
    return f"{base}_key" if index == 0 else f"{base}_key_{index + 1}"


def _statement_name(kind: str) -> str:
    return kind.removeprefix("PLpgSQL_stmt_").replace("_", " ")
