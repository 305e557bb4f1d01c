"""RunConfig, its hash, and loading it from a YAML/TOML file plus command-line overrides."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mulligan.episode import EpisodeLimits
from mulligan.errors import MulliganError
from mulligan.feedback.spec import FeedbackSpec
from mulligan.models.base import GenerateParams
from mulligan.tasks.suites import get_suite

# Fields that do not change results: excluded from the config hash so resume can vary them.
_OPERATIONAL = {
    "out",
    "concurrency",
    "sandbox_pool",
    "cache",
    "base_url",
    "feedback_concurrency",
    "judge_concurrency",
}


class ConfigError(MulliganError):
    """A config file or option is invalid; the message names the file, field and fix."""


class RunConfig(BaseModel):
    """Everything that defines a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = Field(default="humaneval", description="a registered suite, see `mulligan suites`")
    tasks: tuple[str, ...] | None = Field(
        default=None, description="subset of the suite's task groups, e.g. ('gsm8k', 'math')"
    )
    data_dir: Path | None = None
    limit: int | None = Field(default=None, ge=1, description="N tasks of each group")
    sample: Literal["first", "random"] = Field(
        default="first", description="which N tasks: the first in data order, or a seeded draw"
    )
    checkers: Literal["mint", "strict"] = Field(
        default="mint", description="MINT's answer checkers, or stricter ones (see docs)"
    )
    model: str = "local/qwen2.5-coder-0.5b"
    turns: int = Field(default=5, ge=1, le=100)
    proposals: int = Field(default=2, ge=1, le=100)
    epochs: int = Field(default=1, ge=1, le=100)
    feedback: FeedbackSpec = Field(
        default=FeedbackSpec.parse("none"),
        description="feedback spec, see `mulligan feedback list`; parsed once, stored as written",
    )
    feedback_model: str | None = Field(
        default=None, description="model for llm/critic/checklist feedback, provider/model"
    )
    feedback_temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="feedback role's temperature (provider default 0)"
    )
    feedback_max_tokens: int | None = Field(default=None, ge=1)
    feedback_concurrency: int | None = Field(
        default=None, ge=1, description="feedback-model calls in flight (default: unlimited)"
    )
    judge_model: str | None = Field(
        default=None,
        description="LLM judge asked about reasoning answers the checker rejected, provider/model",
    )
    judge_temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    judge_max_tokens: int | None = Field(default=None, ge=1)
    judge_concurrency: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    cell_timeout_s: float = Field(default=10.0, gt=0)
    memory_mb: int = Field(default=1024, ge=64)
    in_context_example: bool = True
    temperature_step: float = Field(
        default=0.0, ge=0.0, le=2.0, description="progressive temperature: added per turn"
    )
    temperature_max: float = Field(default=1.0, ge=0.0, le=2.0)
    reject_repeats: bool = Field(
        default=False, description="refuse proposals that repeat an earlier wrong answer"
    )
    cache: Literal["auto", "on", "read", "write", "off"] = Field(
        default="auto",
        description="response cache: auto = on for temperature 0, off otherwise",
    )
    base_url: str | None = Field(
        default=None, description="server URL(s) for openai-compatible/ models, comma-separated"
    )
    out: Path = Path("runs/latest")
    concurrency: int = Field(default=4, ge=1, le=4096)
    sandbox_pool: int = Field(default=2, ge=0, le=256)

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip()) or None
        return value

    @field_validator("suite")
    @classmethod
    def _suite_is_registered(cls, value: str) -> str:
        get_suite(value)  # raises ValueError naming the registered suites
        return value

    @field_validator("model", "feedback_model", "judge_model")
    @classmethod
    def _model_has_provider(cls, value: str | None) -> str | None:
        if value is not None and "/" not in value:
            raise ValueError(
                f"model {value!r} has no provider; write it as provider/model, "
                "e.g. local/qwen2.5-coder-0.5b or scripted/reference"
            )
        return value

    def generate_params(self) -> GenerateParams:
        return GenerateParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    def limits(self) -> EpisodeLimits:
        return EpisodeLimits(
            max_turns=self.turns,
            max_proposals=self.proposals,
            cell_timeout_s=self.cell_timeout_s,
            in_context_example=self.in_context_example,
            temperature_step=self.temperature_step,
            temperature_max=self.temperature_max,
            reject_repeats=self.reject_repeats,
        )

    def result_fields(self) -> dict[str, Any]:
        """The fields that define results (hashed)."""
        data = self.model_dump(mode="json", exclude=_OPERATIONAL)
        data.pop("data_dir", None)  # where the data lives does not change it (checksums do)
        return data

    def config_hash(self) -> str:
        blob = json.dumps(self.result_fields(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or TOML config file into a dict (unvalidated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value at the top level")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Merge a config file with CLI overrides (None means 'not given') and validate."""
    data: dict[str, Any] = load_config_file(file) if file else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(file) if file else "options")) from exc


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line per problem: where, which field, what is wrong, what was given."""
    lines = [f"invalid configuration in {where}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = err.get("input")
        hint = "" if err["type"] == "missing" else f" (got {given!r})"
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(RunConfig.model_fields))
            lines.append(f"  {field}: unknown option; known options: {known}")
        else:
            lines.append(f"  {field}: {err['msg']}{hint}")
    return "\n".join(lines)
