// mulligan trajectory viewer: inlined into the report page; plain JavaScript, no framework.
// Model text is untrusted. It is only ever put into the page with textContent (via el()), never
// with innerHTML or as an attribute that could run code, so it shows as text whatever it holds.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("mulligan-data").textContent);
  const EPISODES = DATA.episodes;
  const RUNS = DATA.runs;
  const SHARED = DATA.shared;
  const PAGE = 200; // list rows rendered at a time: keeps thousands of episodes snappy
  const OUTCOME = { solved: ["solved", "ok"], unsolved: ["unsolved", "warn"], failed: ["failed", "bad"] };
  const byId = (id) => document.getElementById(id);
  const state = { filtered: [], shown: PAGE, current: -1 };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function add(parent, ...children) {
    for (const child of children) if (child) parent.appendChild(child);
    return parent;
  }
  function badge(text, cls) {
    return el("span", "badge" + (cls ? " " + cls : ""), text);
  }
  function option(value, text) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = text;
    return node;
  }
  function details(summary, body, open) {
    const node = el("details", "sub");
    if (open) node.open = true;
    return add(node, el("summary", null, summary), body);
  }
  function fmt(n, digits) {
    return Number(n || 0).toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  // ---- filters --------------------------------------------------------------------------------

  function setupFilters() {
    const runSelect = byId("f-run");
    RUNS.forEach((label, i) => runSelect.appendChild(option(String(i), "R" + (i + 1) + " " + label)));
    if (RUNS.length < 2) byId("f-run-label").hidden = true;
    const suites = Array.from(new Set(EPISODES.map((e) => e.suite))).sort();
    const suiteSelect = byId("f-suite");
    suites.forEach((s) => suiteSelect.appendChild(option(s, s)));
    const maxTurns = EPISODES.reduce((m, e) => Math.max(m, e.max_turns || 0), 0);
    const turnSelect = byId("f-turn");
    for (let k = 1; k <= maxTurns; k++) turnSelect.appendChild(option(String(k), "turn " + k));
    for (const id of ["f-run", "f-suite", "f-outcome", "f-turn"]) byId(id).addEventListener("change", applyFilters);
    byId("f-text").addEventListener("input", applyFilters);
    byId("filters").addEventListener("submit", (event) => event.preventDefault());
    byId("more").addEventListener("click", () => {
      state.shown += PAGE;
      renderList();
    });
    byId("episode-list").addEventListener("click", (event) => {
      const row = event.target.closest("li[data-index]");
      if (row) openEpisode(Number(row.dataset.index));
    });
    byId("episode-list").addEventListener("keydown", (event) => {
      const row = event.target.closest("li[data-index]");
      if (row && event.key === "Enter") openEpisode(Number(row.dataset.index));
    });
    document.addEventListener("keydown", onKey);
  }

  function matches(ep, f) {
    if (f.run !== "" && String(ep.run) !== f.run) return false;
    if (f.suite !== "" && ep.suite !== f.suite) return false;
    if (f.outcome !== "" && ep.outcome !== f.outcome) return false;
    if (f.turn === "never" && ep.success_turn != null) return false;
    if (f.turn !== "" && f.turn !== "never" && String(ep.success_turn) !== f.turn) return false;
    if (f.text && !(ep.task + " " + ep.id).toLowerCase().includes(f.text)) return false;
    return true;
  }

  function applyFilters() {
    const f = {
      run: byId("f-run").value,
      suite: byId("f-suite").value,
      outcome: byId("f-outcome").value,
      turn: byId("f-turn").value,
      text: byId("f-text").value.trim().toLowerCase(),
    };
    state.filtered = [];
    EPISODES.forEach((ep, i) => {
      if (matches(ep, f)) state.filtered.push(i);
    });
    state.shown = PAGE;
    renderList();
  }

  function renderList() {
    const list = byId("episode-list");
    const rows = state.filtered.slice(0, state.shown).map((index) => {
      const ep = EPISODES[index];
      const row = el("li", "episode-row" + (index === state.current ? " selected" : ""));
      row.dataset.index = String(index);
      row.dataset.outcome = ep.outcome;
      row.dataset.suite = ep.suite;
      row.title = ep.id;
      row.tabIndex = 0;
      const [label, cls] = OUTCOME[ep.outcome] || [ep.outcome, ""];
      add(
        row,
        badge(label, cls),
        RUNS.length > 1 ? el("span", "ep-run", "R" + (ep.run + 1)) : null,
        el("span", "ep-suite", ep.suite),
        el("span", "ep-task", ep.task + (ep.epoch ? " #" + ep.epoch : "")),
        el("span", "ep-turn", ep.success_turn != null ? "@" + ep.success_turn : ep.turns_used + "t"),
      );
      return row;
    });
    list.replaceChildren(...rows);
    byId("more").hidden = state.shown >= state.filtered.length;
    byId("f-count").textContent = state.filtered.length + " of " + EPISODES.length + " episodes";
  }

  function onKey(event) {
    const tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key !== "j" && event.key !== "k") return;
    if (!state.filtered.length) return;
    const at = state.filtered.indexOf(state.current);
    const next = event.key === "j" ? Math.min(at + 1, state.filtered.length - 1) : Math.max(at - 1, 0);
    if (next >= state.shown) {
      state.shown = next + 1;
      renderList();
    }
    openEpisode(state.filtered[next]);
  }

  // ---- one episode ----------------------------------------------------------------------------

  function promptText(parts) {
    return parts.map((p) => (typeof p === "number" ? SHARED[p] : p)).join("\n\n");
  }

  function openEpisode(index) {
    const ep = EPISODES[index];
    if (!ep) return;
    state.current = index;
    for (const row of byId("episode-list").querySelectorAll("li.selected")) row.classList.remove("selected");
    const row = byId("episode-list").querySelector('li[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    const view = byId("episode-view");
    view.replaceChildren(...renderEpisode(ep));
    try {
      history.replaceState(null, "", "#episode=" + index);
    } catch (err) {
      // file:// pages may refuse history updates; the deep link is a convenience only
    }
  }

  function renderEpisode(ep) {
    const [label, cls] = OUTCOME[ep.outcome] || [ep.outcome, ""];
    const head = add(el("div", "head"), badge(label, cls), ep.reason !== "solved" ? badge(ep.reason.replace(/_/g, " ")) : null, RUNS.length > 1 ? badge("R" + (ep.run + 1) + " " + RUNS[ep.run]) : null, badge(ep.model, "src"));
    const meta = el("div", "meta");
    const pairs = [
      ["solved at turn", ep.success_turn != null ? ep.success_turn : "–"],
      ["turns", ep.turns_used + " / " + ep.max_turns],
      ["proposals", ep.proposals_used + " / " + ep.max_proposals],
      ["tokens", fmt(ep.tokens, 0)],
      ["model seconds", fmt(ep.seconds, 2)],
      ["USD", fmt(ep.usd, 4)],
    ];
    if (ep.template) pairs.push(["template", ep.template]);
    for (const [k, v] of pairs) add(meta, add(el("span", null, k + " "), el("b", null, v)));
    const out = [el("h3", null, ep.suite + " / " + ep.task + (ep.epoch ? " #" + ep.epoch : "")), head, meta];
    if (ep.error) out.push(add(el("div", "item error"), el("div", "head", "episode error"), el("pre", "text", ep.error)));
    if (ep.prompt && ep.prompt.length) {
      const body = el("div", "prompt");
      for (const [role, parts] of ep.prompt) add(body, add(el("div", "msg"), badge(role), el("pre", null, promptText(parts))));
      out.push(details("Prompt (" + ep.prompt.length + " message" + (ep.prompt.length > 1 ? "s" : "") + ")", body, false));
    }
    for (const turn of ep.turns) {
      const box = add(el("section", "turn"), el("h4", null, turn.turn === 0 ? "Setup" : "Turn " + turn.turn));
      for (const item of turn.items) {
        const render = RENDER[item.t];
        if (render) box.appendChild(render(item));
      }
      out.push(box);
    }
    if (!ep.turns.length) out.push(el("p", "muted", "No turns recorded."));
    return out;
  }

  function diffBlock(diff, kind) {
    const what = kind === "solution" ? "answer" : "code cell";
    if (!diff.lines.length) {
      return add(el("div", "head"), badge("same " + what + " as turn " + diff.turn, "warn"));
    }
    const pre = el("pre", "diff");
    for (const [op, line] of diff.lines) {
      const cls = op === "+" ? "d-add" : op === "-" ? "d-del" : op === "@" ? "d-hunk" : "d-ctx";
      pre.appendChild(el("span", cls, op === "@" ? line : op + " " + line));
    }
    return details("diff vs the " + what + " of turn " + diff.turn, pre, true);
  }

  const RENDER = {
    call(item) {
      const tokens = fmt(item.prompt_tokens, 0) + " + " + fmt(item.completion_tokens, 0) + " tokens";
      let text = (item.role || "policy") + " call · " + item.model + " · " + tokens + " · " + fmt(item.latency_s, 2) + " s";
      if (item.cost_usd) text += " · $" + fmt(item.cost_usd, 5);
      if (item.cached) text += " · cached";
      if (item.finish && item.finish !== "stop") text += " · finish: " + item.finish;
      const box = add(el("div", "item call"), el("div", null, text));
      if (item.output) box.appendChild(details("reply", el("pre", "text", item.output), false));
      return box;
    },
    action(item) {
      const kindCls = item.kind === "invalid" ? "bad" : "kind";
      const head = add(el("div", "head"), badge(item.kind, kindCls), item.proposal ? badge("proposal " + item.proposal) : null);
      if (item.repeat_of) head.appendChild(badge("refused: repeats wrong proposal " + item.repeat_of, "warn"));
      const box = add(el("div", "item action"), head);
      if (item.thought) box.appendChild(el("div", "thought", item.thought));
      if (item.kind === "execute") box.appendChild(el("pre", "code", item.content || ""));
      else if (item.kind === "solution") box.appendChild(el("pre", "answer", item.content || ""));
      else box.appendChild(el("p", "muted", "No <execute> or <solution> in the reply."));
      if (item.diff) box.appendChild(diffBlock(item.diff, item.kind));
      if (item.raw) box.appendChild(details("raw reply", el("pre", "text", item.raw), item.kind === "invalid"));
      return box;
    },
    observation(item) {
      const head = add(el("div", "head"), badge("observation"), badge(item.source));
      if (item.error) head.appendChild(badge(item.error, "bad"));
      if (item.timed_out) head.appendChild(badge("timed out", "bad"));
      if (item.duration_s) head.appendChild(el("span", null, fmt(item.duration_s, 3) + " s"));
      return add(el("div", "item observation"), head, el("pre", "out", item.content || ""));
    },
    verdict(item) {
      const head = add(
        el("div", "head"),
        badge(item.correct ? "✓ correct" : "✗ wrong", item.correct ? "ok" : "bad"),
        badge("proposal " + item.proposal),
        badge("score " + fmt(item.score, 3)),
        badge(item.checker, "src"),
      );
      const box = add(el("div", "item verdict " + (item.correct ? "correct" : "wrong")), head);
      if (item.answer) box.appendChild(el("pre", "answer", item.answer));
      if (item.detail) box.appendChild(el("div", "small", item.detail));
      return box;
    },
    feedback(item) {
      const head = add(el("div", "head"), badge("feedback"), badge(item.kind, "kind"), badge(item.source, "src"));
      head.appendChild(item.saw_reference ? badge("saw reference", "warn") : badge("no reference"));
      if (item.expertise && item.expertise !== "none") head.appendChild(badge(item.expertise));
      const leak = item.leak || [];
      head.appendChild(leak.length ? badge("leak: " + leak.join(", "), "bad") : badge("no leak", "ok"));
      const raw = item.raw_leak || [];
      if (item.intervention && item.intervention !== "none") {
        const drafts = item.regenerations ? " after " + item.regenerations + " new drafts" : "";
        head.appendChild(badge(item.intervention.replace("_", " ") + drafts + " (provider leaked: " + raw.join(", ") + ")", "warn"));
      }
      if (item.replayed_from) head.appendChild(badge("replayed from " + item.replayed_from, "src"));
      if (item.template_hash) head.appendChild(el("span", "small", "template " + item.template_hash));
      return add(el("div", "item feedback"), head, el("div", "text", item.content || ""));
    },
    error(item) {
      const head = add(el("div", "head"), badge("error", "bad"), badge(item.where), item.fatal ? badge("fatal", "bad") : null);
      return add(el("div", "item error"), head, el("pre", "text", item.message || ""));
    },
  };

  setupFilters();
  applyFilters();
  const match = /^#episode=(\d+)$/.exec(location.hash);
  if (match) openEpisode(Number(match[1]));
})();
