"""MINT's ``wikipedia_search`` (issue 16, item 3): offered only with a backing, offline from the
searches MINT's logs recorded or live from a MediaWiki API (here a local imitation on
127.0.0.1), called from ``<execute>`` cells across the sandbox, its mode in the manifest."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import shared_mint_dir
from mulligan.config import RunConfig
from mulligan.engine.components import build_components
from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import ToolCallEvent
from mulligan.models import GenerateParams
from mulligan.prompts.policy import render_mint_prompt
from mulligan.sandbox import SandboxPool
from mulligan.tasks import Task, get_checker
from mulligan.tasks.environment import ToolCallError
from mulligan.tasks.mint_log import MintMessage
from mulligan.tasks.wikipedia import (
    LiveWikipedia,
    OfflineWikipedia,
    WikipediaTool,
    index_from_logs,
    issued_queries,
    load_index,
    searches_in_history,
    searches_in_logs,
    write_index,
)
from test_environment import Scripted

SCOTT = "Page: Scott Derrickson\nSummary: Scott Derrickson (born July 16, 1966) is an American filmmaker."


def _history(*pairs: tuple[str, str]) -> list[MintMessage]:
    return [MintMessage(role=role, content=text) for role, text in pairs]  # type: ignore[arg-type]


LOGGED = _history(
    ("user", "Task:\nWere Scott Derrickson and Ed Wood of the same nationality?"),
    ("assistant", "Assistant:\n<execute> print(wikipedia_search('Scott Derrickson')) </execute>"),
    (
        "user",
        "Observation:\n"
        + SCOTT
        + "\nYou have 4 steps left and 2 chances to propose solution left.\n\nExpert feedback:\nGood.",
    ),
    # two calls in one cell: the output mixes both, so neither is indexed
    (
        "assistant",
        "<execute>\nprint(wikipedia_search('Ed Wood'))\nprint(wikipedia_search('Tim Burton'))\n"
        "</execute>",
    ),
    ("user", "Observation:\nPage: Ed Wood ... Page: Tim Burton ..."),
    ("assistant", "<execute>\nq = 'Ed' + ' Wood'\nprint(wikipedia_search(q))\n</execute>"),
    ("user", "Observation:\nPage: Ed Wood ..."),
)


def test_the_index_holds_single_searches_and_their_observation() -> None:
    (found,) = searches_in_history(LOGGED, "log")
    assert (found.query, found.result) == ("Scott Derrickson", SCOTT)
    assert list(issued_queries(LOGGED)) == ["Scott Derrickson", "Ed Wood", "Tim Burton", None]


async def test_offline_answers_recorded_searches_and_says_no_result_otherwise() -> None:
    backing = OfflineWikipedia(index_from_logs(searches_in_history(LOGGED, "log")))
    tool = WikipediaTool(backing)
    assert await tool.call(["  scott   DERRICKSON "]) == SCOTT  # case and spacing folded
    missing = await tool.call(["Ed Wood"])
    assert missing.startswith("No result for 'Ed Wood'") and "MINT's logs" in missing
    with pytest.raises(ToolCallError, match="one string"):
        await tool.call([3])
    assert backing.describe()["hits"] == 1 and backing.describe()["misses"] == 1


def test_an_index_file_merges_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "wikipedia_search.json"
    write_index({"a": "A"}, path)
    write_index({"b": "B"}, path)
    assert load_index(path) == {"a": "A", "b": "B"}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Exception, match="not a Wikipedia search index"):
        load_index(tmp_path / "bad.json")


def test_the_shared_logs_index_hundreds_of_searches() -> None:
    outputs = shared_mint_dir() / "outputs"
    if not outputs.is_dir():
        pytest.skip(f"MINT outputs not found at {outputs}")
    gsm = outputs / "gpt-3.5-turbo-0613/F=None/max5_p2+tool+cd/reasoning/hotpotqa"
    index = index_from_logs(searches_in_logs(gsm))
    assert len(index) > 50
    assert index["scott derrickson"].startswith("Page: Scott Derrickson\nSummary:")


# --- live, against a local MediaWiki imitation -------------------------------------------------

PAGES = {
    "Scott Derrickson": {"extract": "Scott Derrickson is an American filmmaker."},
    "Derrickson (disambiguation)": {"extract": "may refer to", "disambiguation": True},
    "Ed Wood": {"extract": "E" * 2000},
}


class _MediaWiki(BaseHTTPRequestHandler):
    """The two requests MINT's tool makes of ``/w/api.php``: a search and a page's intro."""

    requests: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        type(self).requests.append(query)
        if url.path != "/w/api.php" or query.get("format") != ["json"]:
            self.send_error(404)
            return
        if query.get("list") == ["search"]:
            term = query["srsearch"][0]
            titles = [t for t in (*PAGES, "Gone") if term.lower() in t.lower()]
            body: dict[str, Any] = {"query": {"search": [{"title": t} for t in titles]}}
        else:
            title = query["titles"][0]
            page = PAGES.get(title)
            if page is None:
                found: dict[str, Any] = {"-1": {"title": title, "missing": ""}}
            else:
                props = {"disambiguation": ""} if page.get("disambiguation") else {}
                found = {"1": {"title": title, "extract": page["extract"], "pageprops": props}}
            body = {"query": {"pages": found}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def mediawiki() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MediaWiki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/w/api.php"
    finally:
        server.shutdown()
        server.server_close()


async def test_live_asks_as_mint_does_and_formats_as_mint_does(mediawiki: str) -> None:
    _MediaWiki.requests.clear()
    backing = LiveWikipedia(mediawiki)
    try:
        # "Derrickson" finds the article and a disambiguation page: only the article is kept
        answer = await backing.search("Derrickson")
        assert (
            answer == "Page: Scott Derrickson\nSummary: Scott Derrickson is an American filmmaker."
        )
        search = _MediaWiki.requests[0]
        assert search["srsearch"] == ["Derrickson"] and search["srlimit"] == ["10"]
        assert _MediaWiki.requests[1]["exintro"] == ["1"]
        # MINT cuts the joined summaries at 1,000 characters
        assert len(await backing.search("Ed Wood")) == 1000
        assert (await backing.search("nothing")).startswith("No result for 'nothing'")
        assert (await backing.search("Gone")).startswith("No result")  # missing pages skipped
    finally:
        await backing.aclose()
    broken = LiveWikipedia(mediawiki.replace("/w/api.php", "/nowhere"))
    with pytest.raises(ToolCallError, match="wikipedia_search failed"):
        await broken.search("Derrickson")
    await broken.aclose()


# --- offered only with a backing, called across the sandbox -------------------------------------


def _reasoning_task() -> Task:
    return Task(
        id="q1",
        suite="hotpotqa",
        category="reasoning",
        prompt="Were Scott Derrickson and Ed Wood of the same nationality?",
        reference="yes",
        checker="hotpotqa",
        gold_solution="yes",
        metadata={"benchmark": "mint", "mint_task_type": "reasoning"},
    )


def _components(**options: Any) -> Any:
    config = RunConfig(model="scripted/reference", **options)
    return build_components(config, tasks=[_reasoning_task()])


def test_the_prompt_lists_the_tool_only_with_a_backing(tmp_path: Path) -> None:
    off = _components()
    assert off.tasks[0].tools == () and off.task_tools == {}
    path = tmp_path / "wikipedia_search.json"
    write_index({"scott derrickson": SCOTT}, path)
    offline = _components(wikipedia="offline", wikipedia_index=path)
    assert offline.tasks[0].tools == ("wikipedia_search",)
    prompt, _ = render_mint_prompt(offline.tasks[0], max_turns=5, max_proposals=2)
    assert "[1] wikipedia_search(query: str) -> str\nThe Wikipedia Search tool" in prompt
    assert offline.counters()["tool:wikipedia_search"]["searches"] == 1
    with pytest.raises(Exception, match="needs --wikipedia-index"):
        _components(wikipedia="offline")
    # the mode defines results: hashed, but runs without it keep their hashes
    assert RunConfig(wikipedia="off").config_hash() == RunConfig().config_hash()
    assert RunConfig(wikipedia="offline").config_hash() != RunConfig().config_hash()


async def test_a_cell_calls_the_tool_across_the_sandbox(
    tmp_path: Path, sandboxes: SandboxPool, mediawiki: str
) -> None:
    path = tmp_path / "wikipedia_search.json"
    write_index({"scott derrickson": SCOTT}, path)
    code = "r = wikipedia_search('Scott Derrickson')\nprint(r.splitlines()[0])"
    for options, expected in (
        ({"wikipedia": "offline", "wikipedia_index": path}, "Page: Scott Derrickson"),
        ({"wikipedia": "live", "wikipedia_url": mediawiki}, "Page: Scott Derrickson"),
    ):
        components = _components(**options)
        (task,) = components.tasks
        policy = Scripted(lambda m, c: f"<execute>\n{code}\n</execute>")
        episode = await run_episode(
            task=task,
            policy=policy,
            params=GenerateParams(temperature=0.0),
            checker=get_checker(task.checker),
            sandboxes=sandboxes,
            feedback=[],
            limits=EpisodeLimits(max_turns=1, max_proposals=1),
            run_id="r",
            config_hash="h",
            task_tools=components.task_tools,
        )
        await components.aclose()
        calls = [e for e in episode.events if isinstance(e, ToolCallEvent)]
        assert [(c.tool, c.args) for c in calls] == [("wikipedia_search", ("Scott Derrickson",))]
        assert episode.status == "finished", episode.error
        observation = next(e for e in episode.events if getattr(e, "source", "") == "sandbox")
        assert observation.content.strip() == expected, options["wikipedia"]  # type: ignore[attr-defined]
    # Without a backing the sandbox has no such function.
    components = _components()
    episode = await run_episode(
        task=components.tasks[0],
        policy=Scripted(lambda m, c: f"<execute>\n{code}\n</execute>"),
        params=GenerateParams(temperature=0.0),
        checker=get_checker("hotpotqa"),
        sandboxes=sandboxes,
        feedback=[],
        limits=EpisodeLimits(max_turns=1, max_proposals=1),
        run_id="r",
        config_hash="h",
        task_tools=components.task_tools,
    )
    observation = next(e for e in episode.events if getattr(e, "source", "") == "sandbox")
    assert "NameError" in observation.content  # type: ignore[attr-defined]
