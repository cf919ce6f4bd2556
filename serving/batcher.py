"""Adaptive batching of the whole scoring step inside one API worker: concurrent requests wait
in a queue; one batch is scored at a time (feature lookup for all of its rows, one forward pass),
in a thread so that the event loop keeps taking requests, and the next batch is whatever queued
meanwhile. No timer: a lone request is scored at once, and batches grow only with the load."""

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

ScoreBatch = Callable[[Sequence[Any]], Sequence[Any]]


class AdaptiveBatcher:
    """`await submit(item)` is `score_batch([item, ...])`'s answer for that item;
    `queued(seconds)` is told how long each item waited for its batch."""

    def __init__(
        self,
        score_batch: ScoreBatch,
        max_batch: int = 64,
        queued: Callable[[float], None] = lambda seconds: None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.score_batch, self.max_batch, self.queued = score_batch, max_batch, queued
        self._queue: asyncio.Queue | None = None
        self._consumer: asyncio.Task | None = None

    async def submit(self, item: Any) -> Any:
        if self._consumer is None:  # started on the serving loop, at the first request
            self._queue = asyncio.Queue()
            self._consumer = asyncio.get_running_loop().create_task(self._consume())
        answer = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, answer, time.perf_counter()))
        return await answer

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            started = time.perf_counter()
            for _, _, queued_at in batch:
                self.queued(started - queued_at)
            batch = [(item, answer) for item, answer, _ in batch if not answer.done()]  # timed out
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self.score_batch, [item for item, _ in batch])
            except Exception as error:  # every request of the batch gets the error
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (_, answer), result in zip(batch, results, strict=True):
                if not answer.done():
                    answer.set_result(result)
