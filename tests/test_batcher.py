"""The API's adaptive batcher: concurrent requests share a call, each gets its own answer, a lone
request is not held back, a failed batch fails only its own requests."""

import asyncio
import threading

import pytest

from serving.batcher import AdaptiveBatcher

pytestmark = pytest.mark.unit


class Recorder:
    """A score function that records its batches and can be held until released."""

    def __init__(self):
        self.batches: list[list] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items):
        self.release.wait(5)
        self.batches.append(list(items))
        if "boom" in items:
            raise RuntimeError("model failed")
        return [item * 10 for item in items]


def test_requests_queued_while_a_batch_is_scored_go_together_in_the_next():
    scorer = Recorder()

    async def scenario():
        batcher = AdaptiveBatcher(scorer, max_batch=64)
        scorer.release.clear()
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.05)  # the first batch, [1], is being scored
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 12)]
        await asyncio.sleep(0.05)
        scorer.release.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(scenario())
    assert first == 10 and rest == [i * 10 for i in range(2, 12)]
    assert scorer.batches == [[1], list(range(2, 12))]


def test_batches_never_exceed_the_maximum():
    scorer = Recorder()

    async def scenario():
        batcher = AdaptiveBatcher(scorer, max_batch=4)
        return await asyncio.gather(*(batcher.submit(i) for i in range(10)))

    assert asyncio.run(scenario()) == [i * 10 for i in range(10)]
    assert max(len(b) for b in scorer.batches) <= 4
    assert sorted(i for b in scorer.batches for i in b) == list(range(10))


def test_a_failed_batch_fails_its_requests_and_the_next_batch_is_scored():
    scorer = Recorder()

    async def scenario():
        batcher = AdaptiveBatcher(scorer, max_batch=2)
        failed = await asyncio.gather(batcher.submit("boom"), return_exceptions=True)
        return failed, await batcher.submit(3)

    failed, later = asyncio.run(scenario())
    assert isinstance(failed[0], RuntimeError) and later == 30


def test_a_request_that_gave_up_is_not_scored():
    scorer = Recorder()

    async def scenario():
        batcher = AdaptiveBatcher(scorer, max_batch=64)
        scorer.release.clear()
        busy = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit(2), 0.05)  # the API's timeout (504)
        kept = asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0.01)
        scorer.release.set()
        return await busy, await kept

    assert asyncio.run(scenario()) == (10, 30)
    assert scorer.batches == [[1], [3]]


def test_max_batch_below_one_is_refused():
    with pytest.raises(ValueError, match="max_batch"):
        AdaptiveBatcher(lambda items: items, max_batch=0)
