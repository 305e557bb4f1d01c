"""Gold solutions whose values are subclasses of built-in types, or only true or false, pass.

Regressions of judging code by values (``tasks/checkers/calls.py``): ``collections.Counter``
(MBPP 40 and 88, MBPP+ Mbpp/88), ``defaultdict`` (MBPP train 653) and a ``re.Match`` in a
truthiness test (sanitized MBPP 737, ``assert check_str(...)``) were reported as not plain data,
so the gold solutions failed. A hostile subclass is still judged by its plain value. Uses the
shared data (skipped, naming the file, without ``../shared/data``).
"""

from __future__ import annotations

from pathlib import Path

from conftest import require_shared
from mulligan.tasks import SUITES, Task, get_checker, load_tasks
from mulligan.tasks.data import DATASETS
from mulligan.tasks.evalplus import HUMANEVALPLUS_FILE, MBPPPLUS_FILE
from test_checkers_gold import checker_for
from test_checkers_runner import code_runner

GOLD = [
    ("mbpp-full", "test", "40"),
    ("mbpp-full", "test", "88"),
    ("mbpp-sanitized", "test", "88"),
    ("mbpp-full", "train", "653"),
    ("mbpp-sanitized", "train", "737"),
]


def _mbpp(suite: str, group: str, task_id: str) -> Task:
    data: Path = require_shared(*(f.path for f in DATASETS[str(SUITES[suite].data_pull)].files))
    return next(t for t in load_tasks(suite, [group], data_dir=data) if t.id == task_id)


async def test_gold_solutions_returning_subclasses_or_truth_pass() -> None:
    tasks = [_mbpp(*where) for where in GOLD]
    async with code_runner() as runner:
        for task in tasks:
            result = await checker_for(task).check(task.gold_solution, task, runner)
            assert result.correct, (task.suite, task.id, result.detail)
            # The truthiness site also fails a wrong answer: a Match or None decides it.
            if task.id == "737":
                wrong = "import re\ndef check_str(s):\n    return re.match('x', s)"
                assert not (await checker_for(task).check(wrong, task, runner)).correct


HOSTILE_DICT = """
from collections import Counter
class Lying(dict):
    def __eq__(self, other):
        return True
    __hash__ = None
    def items(self):
        return Counter({10: 4, 20: 4, 40: 2, 50: 2, 30: 1}).items()
    def __iter__(self):
        return iter([10, 20, 40, 50, 30])
def freq_count(xs):
    return Lying({0: 0})
"""

HOSTILE_INT = """
class Yes(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
    def __index__(self):
        return 4
def freq_count(xs):
    return {k: Yes(0) for k in set(xs)}
"""

HONEST_SUBCLASS = """
class Mine(dict):
    def __eq__(self, other):
        return False
    __hash__ = None
def freq_count(xs):
    out = Mine()
    for x in xs:
        dict.__setitem__(out, x, dict.get(out, x, 0) + 1)
    return out
"""


async def test_a_hostile_subclass_is_judged_by_its_plain_value() -> None:
    """A dict whose ``items()`` lies and whose ``__eq__`` is always true, an int whose
    ``__eq__`` is always true: reported as the plain values they hold, which are wrong. A
    subclass holding the right values passes, whatever its own ``__eq__`` says."""
    task = _mbpp("mbpp-full", "test", "88")
    checker = checker_for(task)
    async with code_runner() as runner:
        lying = await checker.check(HOSTILE_DICT, task, runner)
        always = await checker.check(HOSTILE_INT, task, runner)
        honest = await checker.check(HONEST_SUBCLASS, task, runner)
    assert not lying.correct and "returned {0: 0}" in lying.detail, lying.detail
    assert not always.correct and "returned {" in always.detail, always.detail
    assert honest.correct, honest.detail


async def test_mbpp_plus_counter_gold_is_compared() -> None:
    data = require_shared(HUMANEVALPLUS_FILE.path, MBPPPLUS_FILE.path)
    task = next(t for t in load_tasks("mbpp+", ["base"], data_dir=data) if t.id == "Mbpp/88")
    async with code_runner() as runner:
        result = await get_checker("evalplus").check(task.gold_solution, task, runner)
    assert result.correct and "skipped" not in result.detail, result.detail
