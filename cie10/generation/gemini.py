"""The `gemini` backend: google-genai's `generateContent` with a pydantic response schema, or its batch jobs.

`GEMINI_API_KEY` holds the key. The endpoint is Google's unless `base_url` (or `GOOGLE_GEMINI_BASE_URL`, which
the client reads itself) points elsewhere, such as the test suite's local stand-in. Batch mode sends the
uncached prompts as inline batch jobs (half price, asynchronous); the job names are saved next to the cache at
once, so a run stopped while the jobs run picks them up again instead of paying twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from cie10.errors import ConfigError
from cie10.generation.cache import Completion, ResponseCache, Usage
from cie10.generation.config import GenerationConfig
from cie10.generation.llm import LLMBackend, LLMServiceError, RejectedError, RetryableError, RunReport
from cie10.generation.prompts import MentionsReply, Prompt

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BATCH_DONE_STATES = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"})
BATCH_FAILED_STATES = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})


def gemini_api_key(config: GenerationConfig) -> str:
    """The API key from the environment, or a ConfigError that says what to do."""
    variable = config.api_key_variable
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ConfigError(
            f"{variable} is not set: the gemini backend needs a Gemini API key (https://aistudio.google.com/apikey) "
            f"in {variable}; preview the prompts and the cost without one with --dry-run, or build offline with "
            "--backend terminology"
        )
    return key


class GeminiBackend(LLMBackend):
    """Gemini through `google.genai.Client` (structured JSON output, async requests)."""

    name = "gemini"

    def __init__(self, config: GenerationConfig) -> None:
        super().__init__(config)
        from google.genai import types

        self.types = types
        self._client: Any = None

    def check(self) -> None:
        """Refuse early, with a clear message, when the API key is missing."""
        gemini_api_key(self.config)

    @property
    def client(self) -> Any:
        """The `google.genai.Client` (made on first use, so prompts and keys exist without an API key)."""
        if self._client is None:
            from google import genai

            options = self.types.HttpOptions(
                timeout=int(self.config.request_timeout * 1000),
                # one attempt per call: our loop owns retries (counted, rate-limited), not the client's own
                retry_options=self.types.HttpRetryOptions(attempts=1),
            )
            if self.config.base_url:
                options.base_url = self.config.base_url
            self._client = genai.Client(api_key=gemini_api_key(self.config), http_options=options)
        return self._client

    def params(self) -> dict[str, Any]:
        return {**super().params(), "thinking_budget": self.config.thinking_budget}

    def generation_config(self, prompt: Prompt) -> Any:
        """The `GenerateContentConfig` of a prompt: system text, JSON schema, temperature, thinking budget."""
        types = self.types
        thinking = (
            types.ThinkingConfig(thinking_budget=self.config.thinking_budget)
            if self.config.thinking_budget is not None
            else None
        )
        return types.GenerateContentConfig(
            system_instruction=prompt.system,
            temperature=self.config.temperature,
            response_mime_type="application/json",
            response_schema=MentionsReply,
            thinking_config=thinking,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    async def complete(self, prompt: Prompt) -> Completion:
        from google.genai import errors

        try:
            response = await self.client.aio.models.generate_content(
                model=self.model, contents=prompt.user, config=self.generation_config(prompt)
            )
        except errors.APIError as error:
            raise _classify(error, self.model) from error
        except (TimeoutError, OSError) as error:
            raise RetryableError(f"network: {type(error).__name__}: {error}", unreachable=True) from error
        except Exception as error:
            if _is_transport_error(error):
                raise RetryableError(f"network: {type(error).__name__}: {error}", unreachable=True) from error
            raise
        return completion_from_response(response)

    async def aclose(self) -> None:
        if self._client is None:
            return
        try:
            await self._client.aio.aclose()
        except Exception as error:  # noqa: BLE001 - closing is best effort
            logger.debug("closing the Gemini client: %s", error)
        self._client = None


def _is_transport_error(error: Exception) -> bool:
    """httpx or aiohttp connection and timeout errors (whichever transport the client chose)."""
    names = {cls.__module__.split(".")[0] for cls in type(error).__mro__}
    return bool(names & {"httpx", "httpx2", "aiohttp"})


def _retry_delay(details: Any) -> float | None:
    """The `RetryInfo.retryDelay` ("30s") of a Google error body, in seconds."""
    try:
        for detail in details["error"].get("details", []):
            if "retryDelay" in detail:
                return float(str(detail["retryDelay"]).rstrip("s"))
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return None


def _classify(error: Any, model: str) -> Exception:
    """A google-genai APIError as RetryableError (429, 5xx), ConfigError (key, model) or RejectedError."""
    code = int(error.code or 0)
    reason = f"HTTP {code} {error.status or ''}".strip()
    if code in RETRYABLE_STATUS or code >= 500:
        return RetryableError(reason, _retry_delay(error.details))
    if code in (401, 403):
        return ConfigError(f"Gemini refused the API key ({reason}): {error.message}")
    if code == 404:
        return ConfigError(f"Gemini does not know the model {model!r} ({reason}): {error.message}")
    return RejectedError(f"{reason}: {error.message}")


def completion_from_response(response: Any) -> Completion:
    """Text, finish reason and token counts of a `GenerateContentResponse`."""
    meta = response.usage_metadata
    usage = Usage(
        prompt_tokens=(meta.prompt_token_count or 0) if meta else 0,
        output_tokens=(meta.candidates_token_count or 0) if meta else 0,
        thoughts_tokens=(meta.thoughts_token_count or 0) if meta else 0,
    )
    finish = ""
    text = ""
    if response.candidates:
        candidate = response.candidates[0]
        finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason) or "")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(part.text for part in parts if part.text and not part.thought)
    elif response.prompt_feedback and response.prompt_feedback.block_reason:
        block = response.prompt_feedback.block_reason
        finish = f"BLOCKED: {getattr(block, 'value', block)}"
    return Completion(text=text, finish_reason=finish, usage=usage, model_version=response.model_version or "")


# ------------------------------------------------------------------------------------------ batch mode


def _state_file(cache: ResponseCache, model: str, keys: list[str]) -> Path:
    """Where a run's batch job names are kept: one file per (model, set of requests)."""
    digest = hashlib.sha256(json.dumps([model, sorted(keys)]).encode()).hexdigest()[:16]
    return cache.root / "gemini-batches" / f"{digest}.json"


def _load_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"jobs": []}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(state, indent=2), encoding="utf-8")
    partial.replace(path)


def _job_state(job: Any) -> str:
    state = job.state
    return str(getattr(state, "value", state) or "")


def run_batch(backend: GeminiBackend, prompts: list[Prompt], cache: ResponseCache, report: RunReport) -> bool:
    """Gemini batch mode for the uncached prompts; returns True when every job is finished.

    Jobs already submitted for the same requests (listed in the state file, or named by `batch_job`) are
    collected rather than submitted again. With `batch_wait` false it submits and returns False at once.
    """
    config = backend.config
    by_key = {backend.key(prompt): prompt for prompt in prompts}
    report.cached += sum(1 for key in by_key if cache.get(backend.name, key) is not None)
    state_path = _state_file(cache, backend.model, list(by_key))
    state = _load_state(state_path)
    for name in config.batch_job or []:
        if all(job["name"] != name for job in state["jobs"]):
            state["jobs"].append({"name": name, "keys": []})
    live: list[dict[str, Any]] = []
    for job in state["jobs"]:
        pending = [key for key in job["keys"] if cache.get(backend.name, key) is None]
        if job["keys"] and not pending:
            continue
        live.append(job)

    covered = {key for job in live for key in job["keys"]}
    todo = [key for key in by_key if cache.get(backend.name, key) is None and key not in covered]
    for start in range(0, len(todo), config.batch_max_requests):
        chunk = todo[start : start + config.batch_max_requests]
        requests = [
            backend.types.InlinedRequest(
                model=backend.model,
                contents=by_key[key].user,
                metadata={"key": key},
                config=backend.generation_config(by_key[key]),
            )
            for key in chunk
        ]
        try:
            job = backend.client.batches.create(
                model=backend.model, src=requests, config={"display_name": f"cie10-synth-{chunk[0][:8]}"}
            )
        except Exception as error:
            raise LLMServiceError(f"Gemini batch job creation failed: {error}") from error
        report.requests += 1
        entry = {"name": job.name, "keys": chunk}
        live.append(entry)
        state["jobs"].append(entry)
        _save_state(state_path, state)  # saved before waiting: a stopped run finds its jobs again
        logger.info("submitted Gemini batch job %s (%d requests)", job.name, len(chunk))
    report.batch_jobs = [job["name"] for job in live]
    _save_state(state_path, state)
    if live and not config.batch_wait:
        logger.info(
            "batch jobs submitted: %s; run the same command again (or with --batch_job NAME) to collect them",
            ", ".join(report.batch_jobs),
        )
        return False

    remaining = list(live)
    while remaining:
        still = []
        for job in remaining:
            current = backend.client.batches.get(name=job["name"])
            status = _job_state(current)
            if status in BATCH_DONE_STATES:
                _harvest(backend, current, job, cache, report)
            elif status in BATCH_FAILED_STATES:
                logger.warning("Gemini batch job %s ended as %s; its prompts stay uncached", job["name"], status)
                report.failed[f"batch job {status.removeprefix('JOB_STATE_').lower()}"] += len(job["keys"])
                state["jobs"] = [j for j in state["jobs"] if j["name"] != job["name"]]
                _save_state(state_path, state)
            else:
                still.append(job)
        remaining = still
        if remaining:
            logger.info(
                "%d Gemini batch job(s) still running; next poll in %.0fs", len(remaining), config.batch_poll_seconds
            )
            time.sleep(config.batch_poll_seconds)
    return True


def _harvest(backend: GeminiBackend, job: Any, entry: dict[str, Any], cache: ResponseCache, report: RunReport) -> None:
    """Cache every inline response of a finished job (matched by its `key` metadata, else by position)."""
    responses = (job.dest.inlined_responses if job.dest else None) or []
    for position, item in enumerate(responses):
        key = (item.metadata or {}).get("key") or (entry["keys"][position] if position < len(entry["keys"]) else None)
        if not key or not re.fullmatch(r"[0-9a-f]{64}", key):
            continue
        if item.error is not None or item.response is None:
            report.failed[f"batch request error: {getattr(item.error, 'message', None) or 'no response'}"] += 1
            continue
        completion = completion_from_response(item.response)
        cache.put(backend.name, key, completion, {"model": backend.model, "batch_job": job.name})
        report.completed += 1
        report.usage = report.usage + completion.usage
