"""Each page's scenario in the URL: parse link parameters, seed widgets, write the URL back."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from ui import untrusted
from ui.link_limits import DROPPED_LINK_PARAM, dropped_link_notice

# A notice names at most this many unused parameters or invalid list items; the rest are counted.
NAMED_ITEMS = 8
# Streamlit clears the URL's query when the user moves to another page: the scenario travels in
# session state instead, under these names, and the next page writes it back into its URL.
# Page-only parameters (a benchmark, throughput efficiencies, the start page's use case) stay.
SHARED_PARAMS = frozenset(
    {
        "model", "models", "engine", "weights", "kv", "ctx", "seqs", "images", "image_tokens", "audio",
        "thinking", "ple_host", "text_only", "ubatch", "swa_full", "kv_unified", "gpu_util", "kv_pool_gib",
        "batched_tokens", "block", "async", "gpu", "gpus", "count", "dev_mem", "dev_kind", "dev_bw",
        "host_gib", "custom", "paged_attn", "pa_fraction", "pa_ctx", "browser_backend", "dev_webgpu", "dev_max_buffer",
        "dev_max_binding",
    }
)
# One item and its list: a page showing one model (or device) and a page comparing several.
SHARED_PAIRS = {"model": "models", "gpu": "gpus"}
SHARED_KEY = "_shared_scenario"
SHARED_VERSION_KEY = "_shared_version"


class ParamError(ValueError):
    """A link parameter's value is not acceptable; the message says what would be."""


@dataclass(frozen=True)
class Param:
    """One URL parameter bound to one widget (the widget key is '<page>_<name>')."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    dump: Callable[[Any], str] = str
    many: bool = False  # a list: comma-separated and/or repeated in the URL
    # List items that may go into a link (the others stay in the session only).
    in_link: Callable[[Any], bool] | None = None
    # A list takes at most this many items from a link; the rest are never parsed.
    max_items: int = 64
    # Kept in the link when the user chose it, even at the default: a value whose meaning follows
    # the runtime (vllm-metal reads an unset gpu_memory_utilization as its own 0.92, a set 0.9 as 0.9).
    link_when_chosen: bool = False


def integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace(",", "").replace("_", ""))
        except ValueError:
            raise ParamError(f"expected a whole number from {low:,} to {high:,}") from None
        if not low <= value <= high:
            raise ParamError(f"expected a whole number from {low:,} to {high:,}")
        return value

    return parse


def number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ParamError(f"expected a number from {low:g} to {high:g}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ParamError(f"expected a number from {low:g} to {high:g}")
        return value

    return parse


def boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ParamError("expected true or false")


def dump_boolean(value: bool) -> str:
    return "true" if value else "false"


def choice(options: Sequence[str], resolve: Callable[[str], str] | None = None) -> Callable[[str], str]:
    """One of `options`; `resolve` maps aliases to an option and raises ValueError otherwise."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if resolve is not None:
            try:
                value = resolve(value)
            except ValueError:
                value = ""
        if value not in options:
            listed = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
            raise ParamError(f"expected one of {listed}")
        return value

    return parse


@dataclass
class PageState:
    """Binds a page's widgets to its URL. Call `load()` before the widgets and `sync()` after."""

    page: str
    params: Sequence[Param]
    notices: list[str] = field(default_factory=list)
    # True on the run that applied a new URL: only then is a value the link's, not the user's.
    fresh: bool = False
    # Scenario values this page decides without a widget of that name (the start page's use
    # case sets the context): left in the session for the other pages, as the user's choice.
    also_share: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return f"{self.page}_{name}"

    def value(self, name: str) -> Any:
        return st.session_state[self.key(name)]

    def _param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def _signature(self, items: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(sorted((k, tuple(v)) for k, v in items.items()))

    def load(self) -> None:
        """Apply the URL when it changed since this page last wrote it; flag what is wrong. A
        page reached without a query (the user moved here) takes the scenario another page
        left in the session."""
        query = st.query_params
        given = {name: query.get_all(name) for name in query.keys()}
        applied = f"_{self.page}_applied"
        shared_moved = not given and st.session_state.get(f"_{self.page}_shared_seen", 0) != _shared_version()
        self.fresh = st.session_state.get(applied) != self._signature(given) or shared_moved
        if self.fresh:
            shared = self._shared_values() if not given else {}
            # A value the link sets is the user's choice, as is one they pick in its widget.
            for param in self.params:
                chosen = param.name in given or shared.get(param.name, ([], False))[1]
                st.session_state[self.chosen_key(param.name)] = chosen
            self.notices = self._apply(given, {name: raws for name, (raws, _) in shared.items()})
            st.session_state[f"_{self.page}_notices"] = self.notices
            st.session_state[applied] = self._signature(given)
        else:
            self.notices = st.session_state.get(f"_{self.page}_notices", [])
        for param in self.params:
            st.session_state.setdefault(self.key(param.name), param.default)

    def _shared_values(self) -> dict[str, tuple[list[str], bool]]:
        """The session's scenario for this page's parameters: name -> (raw values, chosen)."""
        shared: dict[str, tuple[list[str], bool]] = st.session_state.get(SHARED_KEY, {})
        names = {p.name for p in self.params}
        values = {name: shared[name] for name in names & SHARED_PARAMS if name in shared}
        for one, many in SHARED_PAIRS.items():
            # A list page reached from a one-item page: that item alone (the list it had
            # before is gone: the scenario is what the user looked at last).
            if many in names and many not in values and one in shared:
                values[many] = shared[one]
        return values

    def _share(self) -> None:
        """Leave this page's scenario in the session for the page the user goes to next."""
        shared: dict[str, tuple[list[str], bool]] = dict(st.session_state.get(SHARED_KEY, {}))
        before = dict(shared)
        for param in self.params:
            if param.name not in SHARED_PARAMS:
                continue
            value = st.session_state.get(self.key(param.name), param.default)
            if param.many and param.in_link is not None:
                value = [item for item in value if param.in_link(item)]
            raws = [",".join(map(param.dump, value))] if param.many else [param.dump(value)]
            shared[param.name] = (raws, self.chosen(param.name))
            if param.many and value and param.name in SHARED_PAIRS.values():
                one = next(k for k, v in SHARED_PAIRS.items() if v == param.name)
                shared[one] = ([param.dump(value[0])], self.chosen(param.name))
            if param.name in SHARED_PAIRS and SHARED_PAIRS[param.name] in shared:
                # Keep the list led by the item this page shows.
                many = SHARED_PAIRS[param.name]
                items = [i for i in shared[many][0][0].split(",") if i and i != raws[0]]
                shared[many] = ([",".join([raws[0], *items])], shared[many][1])
        for name, raw in self.also_share.items():
            shared[name] = ([raw], True)
        if shared != before:
            st.session_state[SHARED_KEY] = shared
            st.session_state[SHARED_VERSION_KEY] = _shared_version() + 1
        st.session_state[f"_{self.page}_shared_seen"] = _shared_version()

    def _apply(self, given: dict[str, list[str]], shared: dict[str, list[str]] | None = None) -> list[str]:
        notices = []
        known = {p.name: p for p in self.params}
        saved = {**st.session_state.get(f"_{self.page}_saved", {}), **(shared or {})} if not given else {}
        if DROPPED_LINK_PARAM in given:
            notices.append(dropped_link_notice(given[DROPPED_LINK_PARAM][-1]))
        unknown = [name for name in given if name not in known and name != DROPPED_LINK_PARAM]
        if unknown:
            notices.append(_unused_notice(unknown))
        for param in self.params:
            raws = given.get(param.name) or saved.get(param.name)
            if not raws:
                st.session_state[self.key(param.name)] = param.default
                continue
            if not param.many and len(set(raws)) > 1:
                notices.append(
                    f"Link parameter '{param.name}' was given {len(raws)} times; the last value is used."
                )
            if param.many:
                value = self._parse_many(param, raws, notices)
            else:
                try:
                    value = param.parse(raws[-1])
                except ParamError as error:
                    notices.append(
                        f"Link parameter '{param.name}={_clip(raws[-1])}' is not valid ({_reason(error)}); "
                        f"using the default, {_describe(param, param.default)}."
                    )
                    value = param.default
            st.session_state[self.key(param.name)] = value
        return notices

    @staticmethod
    def _parse_many(param: Param, raws: list[str], notices: list[str]) -> list[Any]:
        """Keep the valid items of a list; drop the others with a notice."""
        values: list[Any] = []
        parts = [part for raw in raws for part in raw.split(",") if part.strip()]
        if len(parts) > param.max_items:
            # Only what will be used is parsed: decoding an item can cost real work (custom).
            notices.append(
                f"Link parameter '{param.name}' lists {len(parts):,} items; the first {param.max_items} are used."
            )
            parts = parts[: param.max_items]
        dropped = 0
        for part in parts:
            try:
                values.append(param.parse(part))
            except ParamError as error:
                dropped += 1
                if dropped <= NAMED_ITEMS:
                    notices.append(
                        f"Link parameter '{param.name}' item '{_clip(part)}' is not valid ({_reason(error)}) and was dropped."
                    )
        if dropped > NAMED_ITEMS:
            notices.append(f"Link parameter '{param.name}': {dropped - NAMED_ITEMS:,} more items are not valid and were dropped.")
        values = list(dict.fromkeys(values))
        if not values:
            notices.append(f"Link parameter '{param.name}' has no valid item; using the default, {_describe(param, param.default)}.")
            return list(param.default)
        return values

    def chosen_key(self, name: str) -> str:
        return f"_{self.page}_{name}_chosen"

    def chosen(self, name: str) -> bool:
        """Whether the user set this value (in the link or its widget), not the page's default."""
        return bool(st.session_state.get(self.chosen_key(name)))

    def mark_chosen(self, name: str) -> None:
        """Widget callback: the user picked this value."""
        st.session_state[self.chosen_key(name)] = True

    def forget_choice(self, name: str) -> None:
        """Widget callback: another choice makes this value follow its default again (a new
        use case brings its own context)."""
        st.session_state[self.chosen_key(name)] = False

    def reject(self, name: str, reason: str, fallback: Any) -> None:
        """A page-level check (e.g. a format the chosen runtime cannot load) falls back too. Only
        a value that came from the link gets a notice: one the user's own change made stale (a
        format after switching runtime) simply follows, and nothing piles up across reruns."""
        param = self._param(name)
        if self.fresh and self.chosen(name):
            self.notices.append(
                f"'{name}={_clip(_describe(param, self.value(name)))}' {reason}; using {_describe(param, fallback)}."
            )
        st.session_state[self.key(name)] = fallback

    def show_notices(self) -> None:
        # Notices quote link values: shown as plain text, never as Markdown.
        for notice in self.notices:
            untrusted.warning(notice, icon=":material/link_off:")

    def current(self) -> dict[str, str]:
        """The scenario as URL parameters, defaults left out to keep links short."""
        values = {}
        for param in self.params:
            value = st.session_state.get(self.key(param.name), param.default)
            if param.many and param.in_link is not None:
                value = [item for item in value if param.in_link(item)]
            if value != param.default or (param.link_when_chosen and self.chosen(param.name)):
                values[param.name] = ",".join(map(param.dump, value)) if param.many else param.dump(value)
        return values

    def sync(self) -> None:
        """Write the widgets' values to the URL (and remember them for this session)."""
        values = self.current()
        st.session_state[f"_{self.page}_saved"] = {k: [v] for k, v in values.items()}
        query = st.query_params
        present = {name: query.get_all(name) for name in query.keys()}
        wanted = {k: [v] for k, v in values.items()}
        if present != wanted:
            query.from_dict(values)
        st.session_state[f"_{self.page}_applied"] = self._signature(wanted)
        self._share()

    def link(self) -> str:
        """An absolute link to this page with this scenario, where the server knows its URL."""
        base = (st.context.url or "").split("?")[0]
        encoded = urlencode(self.current())
        return f"{base}?{encoded}" if encoded else base


def _shared_version() -> int:
    return int(st.session_state.get(SHARED_VERSION_KEY, 0))


def _clip(text: str) -> str:
    """A link value as a notice quotes it (the notice is shown as plain text, ui.untrusted)."""
    return untrusted.quote(text)


def _unused_notice(names: list[str]) -> str:
    """One notice for every parameter the page does not use (a link may carry 999 of them)."""
    if len(names) == 1:
        return f"Link parameter '{_clip(names[0])}' is not used on this page and was ignored."
    named = ", ".join(f"'{_clip(name)}'" for name in names[:NAMED_ITEMS])
    more = f" and {len(names) - NAMED_ITEMS:,} more" if len(names) > NAMED_ITEMS else ""
    return f"Link parameters {named}{more} are not used on this page and were ignored."


def _reason(error: Exception) -> str:
    """A parser's message, which may quote a decoded config: bounded like any quote."""
    return untrusted.quote(error, 200)


def _describe(param: Param, value: Any) -> str:
    if param.many:
        return ", ".join(map(param.dump, value)) or "none"
    return param.dump(value)
