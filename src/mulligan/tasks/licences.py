"""The licence of each task source, by the suite name episodes are stored under.

MINT's suites are subsets of public datasets (MINT's own code and data are Apache-2.0); each keeps
the licence of the dataset it samples. Exports name these in their dataset card, so whoever
trains on the trajectories knows the terms of the tasks inside them.
"""

from __future__ import annotations

LICENCES: dict[str, str] = {
    "gsm8k": "MIT (openai/grade-school-math), via MINT (Apache-2.0)",
    "math": "MIT (hendrycks/math), via MINT (Apache-2.0)",
    "theoremqa": "MIT (TIGER-AI-Lab/TheoremQA), via MINT (Apache-2.0)",
    "mmlu": "MIT (hendrycks/test), via MINT (Apache-2.0)",
    "hotpotqa": "CC BY-SA 4.0 (HotpotQA), via MINT (Apache-2.0)",
    "humaneval": "MIT (openai/human-eval)",
    "mbpp": "CC BY 4.0 (google-research/mbpp), via MINT (Apache-2.0)",
    "alfworld": "MIT (alfworld/alfworld), via MINT (Apache-2.0)",
}


def licence_of(suite: str) -> str:
    """The licence of a suite's tasks, or a note that it is not known here."""
    return LICENCES.get(suite, "unknown: check the licence of the task source")
