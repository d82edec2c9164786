"""The template sandbox with a cost budget (PRODUCT.md §4: staff edit the templates).

Jinja's sandbox stops a template from reaching Python internals, not from
spending without limit: ``{{ 'a' * 10**9 }}`` allocates a gigabyte, two nested
``range(100000)`` loops run for hours, a recursive macro doubles a string forty
times. Here every render runs under a ``RenderBudget``: a wall-clock limit
(``RENDER_SECONDS``), a limit on what reaches the output (``OUTPUT_MAX``
characters) and on the total the template builds on the way (``WORK_MAX``).

How it is enforced, since one C-level operation can allocate without returning
to Python until it is done:

- before it runs, every operation that can build something larger than its
  inputs is checked against ``VALUE_MAX``: the operators ``*``, ``**``, ``%``
  and ``~``; list, tuple and dict displays; the string methods and filters that
  pad, repeat, replace, wrap, join or format (``center``, ``ljust``, ``zfill``,
  ``expandtabs``, ``replace``, ``translate``, ``join``, ``format``, ``indent``,
  ``wordwrap``, ``batch``, ``slice``, ``tojson``, ``sum``); ``lipsum`` is gone;
- after it, every value a template builds (operator, call and filter results,
  ``{% set %}`` blocks, macro output, ``{{ }}`` output) is measured: containers
  deeply, so a list that holds itself twice forty times over is too large; it is
  charged to the run's work total;
- every loop iteration, call and value built is a step, and the clock is read
  every ``TICKS_PER_CLOCK`` steps (each bounded by the checks above).

The checks live in the environment (``BudgetedSandbox``), so they hold whether or
not a budget is running (a template's constant parts are folded at compile time);
the clock and the totals need a running ``RenderBudget``.
"""

from __future__ import annotations

import contextvars
import copy
import inspect
import re
import string
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, ValuesView
from contextlib import contextmanager
from functools import cache, wraps
from itertools import islice
from typing import Any, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import TemplateRuntimeError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

#: Wall-clock time for rendering one email (all its parts).
RENDER_SECONDS = 0.1
#: Characters one email's parts may render to, together (256 KiB of text).
OUTPUT_MAX = 256 * 1024
#: The largest value (characters, or items counted deeply) a template may build.
VALUE_MAX = OUTPUT_MAX
#: What a template may build in total while rendering one email.
WORK_MAX = 16 * OUTPUT_MAX
#: Items in a sequence a filter pads or splits into (``batch``, ``slice``).
ITEMS_MAX = 100_000
#: Bits of an integer an operator may produce (far past any amount or count).
INT_BITS_MAX = 65_536
#: Characters of a text argument to a filter (a separator, a replacement, a target).
ARG_MAX = 1024
#: Steps between two readings of the clock.
TICKS_PER_CLOCK = 16
#: Output pieces counted at a time (each is a literal of the template or a measured value).
CHUNKS_PER_COUNT = 64


class BudgetExceeded(TemplateRuntimeError):
    """A template went over its time, size or work budget; the message says which."""


class RenderBudget:
    """One email's budget: a deadline, and the characters output and built so far."""

    __slots__ = ("seconds", "deadline", "output", "work", "ticks")

    def __init__(self, seconds: float = RENDER_SECONDS) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.output = 0
        self.work = 0
        self.ticks = TICKS_PER_CLOCK

    def tick(self) -> None:
        """One step (a loop iteration, a call, a value built); the clock is read every
        ``TICKS_PER_CLOCK`` steps, each of which is bounded by ``VALUE_MAX``."""
        self.ticks -= 1
        if self.ticks <= 0:
            self.ticks = TICKS_PER_CLOCK
            if time.monotonic() > self.deadline:
                raise BudgetExceeded(f"took longer than {self.seconds * 1000:.0f} ms to render")

    def charge(self, size: int) -> None:
        self.work += size
        if self.work > WORK_MAX:
            raise BudgetExceeded(f"built more than {WORK_MAX:,} characters while rendering")
        self.tick()


_budget: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "gobiller_render_budget", default=None
)


@contextmanager
def render_budget(seconds: float = RENDER_SECONDS) -> Iterator[RenderBudget]:
    """Run the renders inside under one ``RenderBudget`` (one per email)."""
    budget = RenderBudget(seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def render_within(template: Any, context: dict[str, Any]) -> str:
    """``template.render(context)`` under the running budget (or a fresh one): the output
    is counted as it is produced, so a runaway loop stops at the limit, not at the end."""
    budget = _budget.get()
    if budget is None:
        with render_budget():
            return render_within(template, context)
    parts: list[str] = []
    chunks = template.generate(context)
    while batch := list(islice(chunks, CHUNKS_PER_COUNT)):
        budget.output += sum(map(len, batch))
        if budget.output > OUTPUT_MAX:
            raise BudgetExceeded(f"renders to more than {OUTPUT_MAX:,} characters")
        budget.tick()
        parts += batch
    return "".join(parts)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def _too_large(what: str) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would exceed {VALUE_MAX:,} characters")


def size_of(value: Any, limit: int = VALUE_MAX) -> int:
    """The size of a value a template built: characters of text, items of containers
    counted deeply (a shared list counts each time it appears, as printing it would).
    Stops counting once past ``limit``."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif kind is list or kind is tuple or isinstance(item, list | tuple | set | frozenset):
            total += 1
            for element in item:  # the common flat case without the stack
                inner = type(element)
                if inner is str:
                    total += len(element)
                elif inner is int or inner is float or inner is bool or element is None:
                    total += 1
                else:
                    stack.append(element)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, KeysView | ValuesView | ItemsView):
            total += 1
            stack.extend(item)
        elif isinstance(item, Namespace):
            attrs = object.__getattribute__(item, "_Namespace__attrs")
            total += 1
            stack.extend(attrs.values())
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 64
        else:
            total += 1
        if total > limit:
            return total
    return total


def produced(value: Any) -> Any:
    """Measure and charge a value a template built; refuse one over ``VALUE_MAX``."""
    size = len(value) if type(value) is str else size_of(value)
    if size > VALUE_MAX:
        raise _too_large("a value")
    budget = _budget.get()
    if budget is not None:
        budget.charge(size)
    return value


def _limit(predicted: int, what: str) -> None:
    if predicted > VALUE_MAX:
        raise _too_large(what)


def _int_arg(value: Any, high: int, what: str) -> None:
    if isinstance(value, int) and value > high:
        raise BudgetExceeded(f"{what} {value} is over the limit of {high:,}")


# --------------------------------------------------------------------------- formats

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _check_percent(fmt: str | bytes, args: Any) -> None:
    """``fmt % args``: widths and precisions count; ``*`` widths are refused."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    conversions = 0
    widths = 0
    for width, precision, kind in _PERCENT_SPEC.findall(text):
        if "*" in (width, precision):
            raise BudgetExceeded("a * width in a % format is not allowed")
        widths += int(width or 0) + int(precision or 0)
        conversions += kind != "%"
    largest = max((size_of(a) for a in _arguments(args)), default=0)
    _limit(len(text) + widths + conversions * largest, "a % format")


def _arguments(args: Any) -> list[Any]:
    if isinstance(args, tuple):
        return list(args)
    if isinstance(args, dict):
        return list(args.values())
    return [args]


def _check_format(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """``fmt.format(...)``: widths count, a nested ``{}`` in a format spec is refused."""
    fields = 0
    widths = 0
    for _literal, field, spec, _conversion in string.Formatter().parse(fmt):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise BudgetExceeded("a {} inside a format spec is not allowed")
        widths += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    largest = max((size_of(a) for a in (*args, *kwargs.values())), default=0)
    _limit(len(fmt) + widths + fields * largest, "a format")


# --------------------------------------------------------------------------- calls


def _replaced_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    hits = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _joined(separator: Any, items: list[Any]) -> int:
    sep = len(separator) if isinstance(separator, str | bytes) else 0
    return sum(size_of(i) for i in items) + sep * max(0, len(items) - 1)


def _guard_method(owner: str | bytes, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a string method call whose result would be too large; return its args
    (``join``'s iterable is read once here, so it is passed on as a list)."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _int_arg(args[0], VALUE_MAX, f"a {name} width")
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        _limit(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * tab, name)  # type: ignore[arg-type]
    elif name == "replace" and len(args) >= 2:
        _limit(_replaced_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1), name)
    elif name == "join" and args:
        items = list(_metered(args[0]))
        _limit(_joined(owner, items), name)
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((size_of(v) for v in args[0].values()), default=1)
        _limit(len(owner) * max(1, longest), name)
    return args


def _metered(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


# --------------------------------------------------------------------------- filters

#: Filters whose arguments can make the result much larger than the value.
_FILTER_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {}


def _filter_check(*names: str) -> Callable[[Callable[[dict[str, Any]], None]], Any]:
    def register(check: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        for name in names:
            _FILTER_CHECKS[name] = check
        return check

    return register


@_filter_check("center")
def _center(a: dict[str, Any]) -> None:
    _int_arg(a.get("width"), VALUE_MAX, "a center width")


@_filter_check("indent")
def _indent(a: dict[str, Any]) -> None:
    text, width = str(a.get("s", "")), a.get("width", 4)
    pad = width if isinstance(width, int) else len(str(width))
    _limit(len(text) + (text.count("\n") + 1) * max(0, pad), "indent")


@_filter_check("wordwrap")
def _wordwrap(a: dict[str, Any]) -> None:
    text, width = str(a.get("s", "")), a.get("width", 79)
    wrap = a.get("wrapstring") or "\n"
    lines = len(text) // max(1, width if isinstance(width, int) else 1) + text.count("\n") + 1
    _limit(len(text) + lines * len(str(wrap)), "wordwrap")


@_filter_check("replace")
def _replace(a: dict[str, Any]) -> None:
    text = a.get("s", "")
    if isinstance(text, str):
        _limit(_replaced_size(text, a.get("old"), a.get("new"), a.get("count")), "replace")


@_filter_check("join")
def _join(a: dict[str, Any]) -> None:
    items = list(_metered(a.get("value", ())))
    a["value"] = items
    _limit(_joined(a.get("d", ""), items), "join")


@_filter_check("batch")
def _batch(a: dict[str, Any]) -> None:
    _int_arg(a.get("linecount"), ITEMS_MAX, "a batch size")


@_filter_check("slice")
def _slice(a: dict[str, Any]) -> None:
    _int_arg(a.get("slices"), ITEMS_MAX, "a slice count")


@_filter_check("tojson")
def _tojson(a: dict[str, Any]) -> None:
    indent = a.get("indent")
    if (indent if isinstance(indent, int) else len(str(indent or ""))) > 16:
        raise BudgetExceeded("a tojson indent is over the limit of 16")


@_filter_check("sum")
def _sum(a: dict[str, Any]) -> None:
    if not isinstance(a.get("start", 0), int | float):
        raise BudgetExceeded("sum adds numbers only")


@_filter_check("format")
def _format(a: dict[str, Any]) -> None:
    value = a.get("value", "")
    if isinstance(value, str):
        _check_percent(value, a.get("kwargs") or tuple(a.get("args", ())))


#: Filters whose text arguments are the value itself, not a separator or replacement.
_FREE_TEXT_ARGS = frozenset({"default", "d", "format"})


#: The names Jinja gives the context, evaluation context or environment it passes first.
_PASSED = frozenset({"context", "eval_ctx", "environment"})


@cache
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    """The filter's own parameters (value first), without the one Jinja passes."""
    signature = inspect.signature(func)  # the sync function's, through ``__wrapped__``
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].name in _PASSED:
        parameters = parameters[1:]
    return signature.replace(parameters=parameters)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    check = _FILTER_CHECKS.get(name)

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name not in _FREE_TEXT_ARGS:
            for arg in (*args[skip + 1 :], *kwargs.values()):
                if isinstance(arg, str) and len(arg) > ARG_MAX:
                    raise BudgetExceeded(f"a text argument to {name} is over {ARG_MAX} characters")
        if check is not None:
            bound = _signature(func).bind(*args[skip:], **kwargs)
            arguments = dict(bound.arguments)
            check(arguments)
            for key, value in arguments.items():  # e.g. join's iterable, read once
                bound.arguments[key] = value
            return produced(func(*args[:skip], *bound.args, **bound.kwargs))
        return produced(func(*args, **kwargs))

    return guarded


# --------------------------------------------------------------------------- environment


class BudgetedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with loops metered and displays and ``~`` measured."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """The loop reads its iterable through ``environment.metered`` (Jinja allows no
        node types of our own, so the wrapper is a call of an environment attribute)."""
        metered = copy.copy(node)
        hook = nodes.EnvironmentAttribute("metered", lineno=node.lineno)
        metered.iter = nodes.Call(hook, [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(metered, frame)

    def _measured(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.produced(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._measured(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._measured(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._measured(super().visit_Tuple, node, frame)
        else:  # an assignment target
            super().visit_Tuple(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.produced({func_name}(environment.concat_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))))")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the checks of this module's doc."""

    code_generator_class = BudgetedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.globals.pop("lipsum", None)
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}

    # the hooks the generated code calls
    metered = staticmethod(_metered)
    produced = staticmethod(produced)

    @staticmethod
    def concat_parts(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        _limit(sum(size_of(p) for p in parts), "joining text with ~")
        return parts

    def concat(self, parts: Iterable[str]) -> str:
        """Joins a block's output (``{% set %}`` blocks, macros, ``{% filter %}``)."""
        parts = list(parts)
        _limit(sum(len(p) for p in parts), "a block's output")
        return produced("".join(parts))

    @staticmethod
    def _finalize(value: Any) -> Any:
        """Every ``{{ }}`` output, measured before it is turned into text."""
        return produced(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            _check_percent(left, right)
        return produced(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes):
            args = _guard_method(owner, getattr(__obj, "__name__", ""), args)
        return produced(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__
        mapping = value.__name__ == "format_map"

        @wraps(wrapper)
        def checked(*args: Any, **kwargs: Any) -> str:
            if mapping and len(args) == 1 and isinstance(args[0], dict):
                _check_format(fmt, (), args[0])
            else:
                _check_format(fmt, args, kwargs)
            return cast(str, produced(wrapper(*args, **kwargs)))

        return checked


def _check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > INT_BITS_MAX:
            raise BudgetExceeded(f"a product would exceed {INT_BITS_MAX:,} bits")
        return
    count, sequence = (left, right) if isinstance(left, int) else (right, left)
    if isinstance(count, int) and isinstance(sequence, str | bytes | list | tuple):
        _limit(max(0, count) * size_of(sequence), "a repetition with *")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        if exponent * base.bit_length() > INT_BITS_MAX:
            raise BudgetExceeded(f"a power would exceed {INT_BITS_MAX:,} bits")
