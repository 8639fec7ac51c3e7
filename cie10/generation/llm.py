"""What every LLM backend shares: the request loop (cache, concurrency, rate limit, retries) and the run report.

A backend only turns a `Prompt` into a `Completion` and classifies its failures: `RetryableError` (429, 5xx,
network: retried with exponential backoff; a refused connection or an unknown host only once, after a second),
`RejectedError` (this request refused: counted, dropped, not cached, so a later run asks again) or a `Cie10Error`
(a bad key, an unknown model: the run stops).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cie10.errors import Cie10Error
from cie10.generation.cache import Completion, ResponseCache, Usage, request_key
from cie10.generation.config import GenerationConfig
from cie10.generation.prompts import MentionsReply, Prompt

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4.0
"""Rough size of a token, for the estimate before a run (the report has the real counts)."""
OUTPUT_TOKENS_PER_MENTION = 22
OUTPUT_TOKENS_PER_REPLY = 110
"""JSON overhead plus a handful of hard negatives with reasons."""


class LLMServiceError(Cie10Error):
    """The LLM service cannot be used: unreachable after every retry, or it keeps failing."""


class RetryableError(Exception):
    """A transient failure (429, 5xx, network); `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable


class RejectedError(Exception):
    """The service refused this one request (e.g. 400): counted and skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=1)
def schema_fingerprint() -> str:
    """A short hash of the reply schema: part of every cache key, so a schema change asks again."""

    blob = json.dumps(MentionsReply.model_json_schema(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class LLMBackend:
    """One LLM service; subclasses implement `complete` (and may override `params`)."""

    name: str = ""

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config
        self.model = config.model

    @property
    def source(self) -> str:
        """The `source` column of its rows: `<backend>:<model>`."""
        return f"{self.name}:{self.model}"

    def params(self) -> dict[str, Any]:
        """Settings that change the reply, part of the cache key."""
        return {"temperature": self.config.temperature, "schema": schema_fingerprint()}

    def key(self, prompt: Prompt) -> str:
        """The cache key of a prompt's request."""
        return request_key(self.name, self.model, prompt.system, prompt.user, self.params())

    def check(self) -> None:
        """Raise a ConfigError when the backend cannot be used (missing key, missing URL)."""

    async def complete(self, prompt: Prompt) -> Completion:
        """One request; raises RetryableError, RejectedError or a Cie10Error."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections."""


@dataclass
class RunReport:
    """Requests, cache hits, retries, failures, tokens and cost of one run."""

    backend: str = ""
    model: str = ""
    prompts: int = 0
    cached: int = 0
    requests: int = 0
    completed: int = 0
    retries: int = 0
    failed: Counter = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    estimated_usage: Usage = field(default_factory=Usage)
    estimated_cost_usd: float = 0.0
    cost_usd: float = 0.0
    seconds: float = 0.0
    batch_jobs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "prompts": self.prompts,
            "cached": self.cached,
            "requests": self.requests,
            "completed": self.completed,
            "retries": self.retries,
            "failed": dict(self.failed),
            "usage": vars(self.usage),
            "estimated_usage": vars(self.estimated_usage),
            "estimated_cost_usd": round(self.estimated_cost_usd, 4),
            "cost_usd": round(self.cost_usd, 4),
            "seconds": round(self.seconds, 1),
            "batch_jobs": list(self.batch_jobs),
        }


def cost_usd(usage: Usage, config: GenerationConfig) -> float:
    """Cost of `usage` at the config's prices (thinking tokens are billed as output)."""
    price_in, price_out = config.prices()
    return usage.prompt_tokens / 1e6 * price_in + (usage.output_tokens + usage.thoughts_tokens) / 1e6 * price_out


def estimate_usage(prompts: list[Prompt], config: GenerationConfig) -> Usage:
    """Tokens a run of `prompts` will likely use (characters / 4 in, mentions x 22 + 110 out)."""
    prompt_tokens = sum(math.ceil((len(p.system) + len(p.user)) / CHARS_PER_TOKEN) + 80 for p in prompts)
    output = sum(p.task.n * OUTPUT_TOKENS_PER_MENTION + OUTPUT_TOKENS_PER_REPLY for p in prompts)
    return Usage(prompt_tokens, output, 0)


class RateLimiter:
    """At most `per_minute` request starts per minute, evenly spaced (0: unlimited)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


CONNECT_RETRIES = 1
"""Retries of a request whose connection was refused (or whose host is unknown): one, in case the server was
restarting; after that nothing listens, and waiting longer (the 429 backoff) would only delay the error."""
CONNECT_RETRY_DELAY = 1.0


def cannot_connect(error: BaseException) -> bool:
    """Whether a network failure is a refused connection or an unknown host (not a slow or busy server)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "os_error", None)):  # aiohttp keeps the OSError aside
            if isinstance(candidate, ConnectionRefusedError | socket.gaierror):
                return True
        current = current.__cause__ or current.__context__
    return False


def backoff_delay(attempt: int, config: GenerationConfig, hint: float | None = None) -> float:
    """Exponential backoff with jitter for retry `attempt` (0-based), at least the server's hint."""
    delay = min(config.retry_max_delay, config.retry_initial_delay * (2**attempt))
    delay = delay * (0.5 + random.random() / 2)
    if hint is not None:
        delay = max(delay, min(hint, config.retry_max_delay))
    return delay


async def _request(
    backend: LLMBackend,
    prompt: Prompt,
    key: str,
    cache: ResponseCache,
    limiter: RateLimiter,
    semaphore: asyncio.Semaphore,
    report: RunReport,
    progress: Any,
) -> None:
    """One prompt: retries with backoff, then the reply goes to the cache at once."""
    config = backend.config
    async with semaphore:
        for attempt in range(config.max_retries + 1):
            await limiter.wait()
            report.requests += 1
            try:
                completion = await backend.complete(prompt)
            except RetryableError as error:
                refused = error.unreachable and cannot_connect(error)
                if attempt >= (min(config.max_retries, CONNECT_RETRIES) if refused else config.max_retries):
                    if error.unreachable:
                        raise LLMServiceError(
                            f"{backend.name} is unreachable after {attempt + 1} attempts: {error.reason}"
                        ) from error
                    report.failed[f"gave up after {attempt + 1} attempts: {error.reason}"] += 1
                    break
                report.retries += 1
                delay = CONNECT_RETRY_DELAY if refused else backoff_delay(attempt, config, error.retry_after)
                logger.debug("%s; retry %d in %.1fs", error.reason, attempt + 1, delay)
                await asyncio.sleep(delay)
                continue
            except RejectedError as error:
                report.failed[f"rejected: {error.reason}"] += 1
                break
            cache.put(
                backend.name,
                key,
                completion,
                {
                    "model": backend.model,
                    "code": prompt.task.code,
                    "language": prompt.task.language,
                    "template": prompt.template_version,
                },
            )
            report.completed += 1
            report.usage = report.usage + completion.usage
            break
    progress.update(1)


async def _run_all(backend: LLMBackend, todo: list[tuple[str, Prompt]], cache: ResponseCache, report: RunReport):
    from tqdm.auto import tqdm

    config = backend.config
    limiter = RateLimiter(config.requests_per_minute)
    semaphore = asyncio.Semaphore(config.concurrency)
    progress = tqdm(total=len(todo), desc=f"{backend.name} requests", unit="req", disable=not config.show_progress_bar)
    try:
        async with asyncio.TaskGroup() as group:
            for key, prompt in todo:
                group.create_task(_request(backend, prompt, key, cache, limiter, semaphore, report, progress))
    except* Cie10Error as errors:
        raise errors.exceptions[0] from None
    finally:
        progress.close()
        await backend.aclose()


def run_prompts(backend: LLMBackend, prompts: list[Prompt], cache: ResponseCache, report: RunReport) -> None:
    """Request every prompt not in the cache (concurrently, rate-limited, retried); replies land in the cache."""
    started = time.monotonic()
    todo: list[tuple[str, Prompt]] = []
    seen: set[str] = set()
    for prompt in prompts:
        key = backend.key(prompt)
        if key in seen:
            continue
        seen.add(key)
        if cache.get(backend.name, key) is not None:
            report.cached += 1
        else:
            todo.append((key, prompt))
    logger.info("%s: %d prompts, %d cached, %d to request", backend.name, len(seen), report.cached, len(todo))
    if todo:
        asyncio.run(_run_all(backend, todo, cache, report))
    report.seconds += time.monotonic() - started
