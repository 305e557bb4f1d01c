"""A standalone ALFWorld game server: one process that plays one game at a time for mulligan.

This file is never imported by mulligan: ``mulligan.tasks.alfworld`` starts it as
``python -P -u <this file>`` with ``ALFWORLD_DATA`` set, so textworld (heavy, synchronous, with
global state) runs outside mulligan's event loop, one process per live game. It uses only the
standard library, ``textworld`` and ``alfworld``.

Protocol: one JSON object per line. The parent sends ``{"op": "load", "game": path,
"step_limit": int}`` (answer ``{"observation": str}``, the game's first observation) or
``{"op": "step", "action": str}`` (answer ``{"observation": str, "won": bool, "done": bool,
"steps": int}``). Errors answer ``{"error": str}``. End of input ends the process.

The game is set up as ALFWorld's own ``AlfredTWEnv.init_env`` does for evaluation (MINT's
setting): the same wrappers (names demangled, no shuffling), ``won`` requested, and textworld's
step limit, after which the game is over (``done``) and further steps change nothing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _serve(protocol_out: Any) -> None:
    import textworld
    import textworld.gym
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

    env: Any = None
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        started = time.perf_counter()
        try:
            if request["op"] == "load":
                if env is not None:
                    env.close()
                infos = textworld.EnvInfos(won=True, extras=["gamefile"])
                env_id = textworld.gym.register_games(
                    [request["game"]],
                    infos,
                    batch_size=1,
                    asynchronous=False,
                    max_episode_steps=int(request["step_limit"]),
                    wrappers=[AlfredDemangler(shuffle=False), AlfredInfos],
                )
                env = textworld.gym.make(env_id)
                observations, _ = env.reset()
                reply: dict[str, Any] = {"observation": observations[0]}
            elif request["op"] == "step":
                if env is None:
                    raise RuntimeError("no game loaded")
                observations, _, dones, infos = env.step([str(request["action"])])
                reply = {
                    "observation": observations[0],
                    "won": bool(infos["won"][0]),
                    "done": bool(dones[0]),
                }
            else:
                raise ValueError(f"unknown op {request['op']!r}")
        except Exception as exc:  # reported to the parent, which decides what it means
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply["seconds"] = time.perf_counter() - started
        protocol_out.write(json.dumps(reply) + "\n")
        protocol_out.flush()


def main() -> None:
    # The protocol gets its own copy of stdout; the libraries' prints go to stderr.
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    protocol_out.write(json.dumps({"ready": True}) + "\n")
    protocol_out.flush()
    _serve(protocol_out)


if __name__ == "__main__":
    main()
