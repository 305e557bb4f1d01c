"""MINT's ``wikipedia_search`` tool, backed honestly: offline from MINT's logs, or live.

MINT's reasoning prompts list ``wikipedia_search(query: str) -> str`` (MINT's
``mint/tools/wikipedia_search.py``: the ``wikipedia`` package searches Wikipedia's MediaWiki API,
takes the first two titles, skips missing and disambiguation pages, and answers
``"Page: <title>\\nSummary: <intro>"`` joined by blank lines, cut at 1,000 characters). A prompt
may list the tool only where a call can be answered, so it has two backings:

- :class:`OfflineWikipedia`: the searches MINT's logs recorded. :func:`index_from_logs` reads
  every ``results.jsonl`` under a folder, finds each ``wikipedia_search(<literal>)`` call in an
  ``<execute>`` cell whose observation answered only that call, and maps the query to the text
  MINT got back. A query it does not hold is answered with a clear "no result" (never a guess).
- :class:`LiveWikipedia`: the MediaWiki API at a URL (Wikipedia's by default), behind an explicit
  opt-in; the same requests and output format as MINT's tool.

The tool runs outside the sandbox: the worker defines a stub, and each call crosses the sandbox
as a message (``sandbox/_worker.py``), answered by the episode with :meth:`WikipediaTool.call`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from mulligan.tasks.base import Task
from mulligan.tasks.environment import ToolCallError, ToolSpec
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint_log import (
    COUNTDOWN,
    EXPERT_FEEDBACK,
    OBSERVATION_PREFIX,
    RESULTS_FILE,
    MintMessage,
    read_results_as_mint,
    strip_assistant_prefix,
)

WikipediaMode = Literal["off", "offline", "live"]
TOOL_NAME = "wikipedia_search"
WIKIPEDIA_API = "https://en.wikipedia.org/w/api.php"
MAX_QUERY_LENGTH = 300  # MINT's WIKIPEDIA_MAX_QUERY_LENGTH
TOP_K = 2  # MINT's top_k_results
MAX_CHARS = 1000  # MINT's doc_content_chars_max
INDEX_SCHEMA = "mulligan.wikipedia-index/1"
WIKIPEDIA_INDEX_FILE = "wikipedia_search.json"
"""What ``mulligan import mint`` writes (and adds to) in its output folder."""

WIKIPEDIA_TOOL = ToolSpec(
    name=TOOL_NAME,
    params=("query",),
    description=(
        "The Wikipedia Search tool provides access to a vast collection of articles covering a "
        "wide range of topics.\nCan query specific keywords or topics to retrieve accurate and "
        "comprehensive information."
    ),
    example="",
)
"""The tool as MINT's prompts list it (signature and MINT's two-line description)."""


def no_result(query: str, mode: WikipediaMode) -> str:
    """The answer when nothing is found: clear about why, so a model is never misled."""
    if mode == "offline":
        return (
            f"No result for {query!r}: this offline Wikipedia search holds only the searches "
            "recorded in MINT's logs."
        )
    return f"No result for {query!r}: Wikipedia found no page."


def normalize_query(query: str) -> str:
    """The index key of a query: MINT's 300-character cut, case and spacing folded."""
    return " ".join(query[:MAX_QUERY_LENGTH].split()).casefold()


class WikipediaBacking(Protocol):
    """What answers ``wikipedia_search``: its mode (for the manifest) and one search."""

    @property
    def mode(self) -> WikipediaMode: ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the backing (mode, source, size)."""
        ...

    async def search(self, query: str) -> str: ...

    async def aclose(self) -> None: ...


# --- the offline index, from MINT's logs -----------------------------------------------------

_CALL = re.compile(r"wikipedia_search\s*\(")
_EXECUTE = re.compile(r"<execute>(.*?)</execute>", re.DOTALL)


def _literal_queries(code: str) -> list[str] | None:
    """The string literal of every ``wikipedia_search(...)`` call in ``code``; None when a call's
    argument is not a plain literal (its query cannot be known from the log)."""
    try:
        tree = ast.parse(textwrap.dedent(code).strip())
    except SyntaxError:
        return None
    queries: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == TOOL_NAME
        ):
            args = node.args
            if len(args) != 1 or not isinstance(args[0], ast.Constant):
                return None
            if not isinstance(args[0].value, str):
                return None
            queries.append(args[0].value)
    return queries


def _observation_text(user_turn: str) -> str:
    """What the cell printed: MINT's observation without its header, count-down or feedback."""
    body = user_turn.removeprefix(OBSERVATION_PREFIX)
    body = body.split(EXPERT_FEEDBACK, 1)[0]
    return COUNTDOWN.sub("", body).strip()


@dataclass(frozen=True, slots=True)
class LoggedSearch:
    """One search found in a log: the query, what came back, and where it was found."""

    query: str
    result: str
    source: str


def searches_in_history(history: Sequence[MintMessage], source: str) -> Iterator[LoggedSearch]:
    """Each answered search of one logged episode.

    Only a cell whose code is exactly ``print(wikipedia_search('<literal>'))`` (MINT's models
    almost always write it so) is taken: then the observation is that one call's result. Cells
    with other code or several calls are left out, since their output mixes more than one thing.
    """
    for index in range(len(history) - 1):
        reply, answer = history[index], history[index + 1]
        if reply.role != "assistant" or answer.role != "user":
            continue
        cells = _EXECUTE.findall(strip_assistant_prefix(reply.content))
        if len(cells) != 1 or not _CALL.search(cells[0]):
            continue
        code = textwrap.dedent(cells[0]).strip()
        queries = _literal_queries(code)
        if not queries or len(queries) != 1 or not _is_print_of_call(code):
            continue
        result = _observation_text(answer.content)
        if result and not result.startswith(("Traceback", "I don't understand")):
            yield LoggedSearch(queries[0], result, source)


def _is_print_of_call(code: str) -> bool:
    tree = ast.parse(code)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return False
    call = tree.body[0].value
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "print"
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Call)
        and isinstance(call.args[0].func, ast.Name)
        and call.args[0].func.id == TOOL_NAME
    )


def issued_queries(history: Sequence[MintMessage]) -> Iterator[str | None]:
    """Every ``wikipedia_search`` call of every ``<execute>`` cell a logged model wrote: its
    literal query, or None for a call whose argument is not a literal (a variable, an
    expression) or a cell that does not parse. What the stand-in is measured against."""
    for message in history:
        if message.role != "assistant":
            continue
        for cell in _EXECUTE.findall(strip_assistant_prefix(message.content)):
            calls = len(_CALL.findall(cell))
            if not calls:
                continue
            queries = _literal_queries(cell)
            if queries is None or len(queries) != calls:
                yield from [None] * calls
            else:
                yield from queries


def searches_in_logs(root: Path) -> Iterator[LoggedSearch]:
    """Every answered search in every ``results.jsonl`` under ``root`` (MINT's outputs tree)."""
    for path in sorted(Path(root).rglob(RESULTS_FILE)):
        source = path.relative_to(root).as_posix()
        for _, line in read_results_as_mint(path):
            if not isinstance(line, Exception):
                yield from searches_in_history(line.state.history, source)


def index_from_logs(searches: Iterable[LoggedSearch]) -> dict[str, str]:
    """``normalized query -> result``; the first recorded answer of a query wins."""
    index: dict[str, str] = {}
    for search in searches:
        index.setdefault(normalize_query(search.query), search.result)
    return index


def write_index(index: dict[str, str], path: Path, *, merge: bool = True) -> dict[str, str]:
    """Write an index file (adding to the one already there when ``merge``); returns it."""
    path = Path(path)
    if merge and path.is_file():
        index = {**load_index(path), **index}
    payload = {"schema": INDEX_SCHEMA, "searches": dict(sorted(index.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return index


def load_index(path: Path) -> dict[str, str]:
    """An index: a file ``write_index`` wrote, or a folder of MINT logs read on the spot.

    Raises:
        TaskDataError: the path is neither, naming it and the fix.
    """
    path = Path(path)
    if path.is_dir():
        return index_from_logs(searches_in_logs(path))
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TaskDataError(
            f"{path}: not a Wikipedia search index ({exc}); pass a folder of MINT logs or the "
            "wikipedia_search.json that `mulligan import mint` writes"
        ) from None
    if not isinstance(payload, dict) or payload.get("schema") != INDEX_SCHEMA:
        raise TaskDataError(
            f"{path}: not a Wikipedia search index (schema {INDEX_SCHEMA!r} expected); pass a "
            "folder of MINT logs or the wikipedia_search.json that `mulligan import mint` writes"
        )
    return {str(k): str(v) for k, v in payload["searches"].items()}


def index_digest(index: dict[str, str]) -> str:
    blob = json.dumps(index, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class OfflineWikipedia:
    """Answers the searches recorded in MINT's logs; anything else is a clear "no result"."""

    def __init__(self, index: dict[str, str], source: str = "") -> None:
        self.index = index
        self.source = source
        self.hits = 0
        self.misses = 0

    @property
    def mode(self) -> WikipediaMode:
        return "offline"

    def describe(self) -> dict[str, Any]:
        return {
            "mode": "offline",
            "source": self.source,
            "searches": len(self.index),
            "index_sha256_16": index_digest(self.index),
            "hits": self.hits,
            "misses": self.misses,
        }

    async def search(self, query: str) -> str:
        found = self.index.get(normalize_query(query))
        if found is None:
            self.misses += 1
            return no_result(query, "offline")
        self.hits += 1
        return found

    async def aclose(self) -> None:
        return None


# --- live: the MediaWiki API, as MINT's tool asks it --------------------------------------------


class LiveWikipedia:
    """MINT's tool against a MediaWiki API endpoint: search, then the intro of the first two
    pages that exist and are not disambiguation pages (one request per page: extracts and
    page properties, redirects followed), formatted and cut as MINT does."""

    def __init__(self, url: str = WIKIPEDIA_API, *, timeout_s: float = 20.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(
            timeout=timeout_s, headers={"User-Agent": "mulligan (MINT's wikipedia_search)"}
        )
        self.calls = 0

    @property
    def mode(self) -> WikipediaMode:
        return "live"

    def describe(self) -> dict[str, Any]:
        return {"mode": "live", "source": self.url, "calls": self.calls}

    async def _get(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.get(self.url, params={**params, "format": "json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The model's cell sees this (raised there as ToolError); the run goes on.
            raise ToolCallError(f"wikipedia_search failed: {self.url}: {exc}") from None
        return data if isinstance(data, dict) else {}

    async def _summary(self, title: str) -> str | None:
        data = await self._get(
            {
                "action": "query",
                "prop": "extracts|pageprops",
                "ppprop": "disambiguation",
                "explaintext": "1",
                "exintro": "1",
                "redirects": "1",
                "titles": title,
            }
        )
        for page in (data.get("query", {}).get("pages") or {}).values():
            if "missing" in page or "disambiguation" in (page.get("pageprops") or {}):
                return None
            extract = page.get("extract")
            return str(extract) if extract else None
        return None

    async def search(self, query: str) -> str:
        self.calls += 1
        found = await self._get(
            {
                "action": "query",
                "list": "search",
                "srsearch": query[:MAX_QUERY_LENGTH],
                "srlimit": "10",
                "srprop": "",
            }
        )
        titles = [str(hit["title"]) for hit in found.get("query", {}).get("search", [])]
        summaries = []
        for title in titles[:TOP_K]:
            summary = await self._summary(title)
            if summary:
                summaries.append(f"Page: {title}\nSummary: {summary}")
        if not summaries:
            return no_result(query, "live")
        return "\n\n".join(summaries)[:MAX_CHARS]

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(slots=True)
class WikipediaTool:
    """``wikipedia_search`` as an episode's cells call it: checks the call, asks the backing."""

    backing: WikipediaBacking
    spec: ToolSpec = WIKIPEDIA_TOOL

    async def call(self, args: Sequence[Any]) -> str:
        if len(args) != 1 or not isinstance(args[0], str):
            raise ToolCallError("wikipedia_search(query: str) takes one string")
        return await self.backing.search(args[0])


def open_backing(
    mode: WikipediaMode, *, index: Path | None = None, url: str = WIKIPEDIA_API
) -> WikipediaBacking | None:
    """The backing a run's options ask for; None for ``off``.

    Raises:
        TaskDataError: ``offline`` without an index, or an index that cannot be read.
    """
    if mode == "off":
        return None
    if mode == "live":
        return LiveWikipedia(url)
    if index is None:
        raise TaskDataError(
            "--wikipedia offline needs --wikipedia-index: a folder of MINT logs (e.g. "
            "../shared/data/mint/outputs) or the wikipedia_search.json `mulligan import mint` writes"
        )
    return OfflineWikipedia(load_index(index), source=str(index))


def offer_tool(tasks: Sequence[Task], tool: str = TOOL_NAME) -> list[Task]:
    """``tasks`` with ``tool`` listed for MINT's reasoning tasks (where MINT's prompts list
    it); call only when the tool has a backing, so a prompt never lists a tool that cannot
    answer."""
    return [
        task.model_copy(update={"tools": (*task.tools, tool)})
        if task.metadata.get("benchmark") == "mint"
        and task.metadata.get("mint_task_type") == "reasoning"
        and tool not in task.tools
        else task
        for task in tasks
    ]
