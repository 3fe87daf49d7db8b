"""A seek to the committed offsets abandons the batch the consumer is reading.

After a rebalance's table recovery, Faust resumes the partitions and the flow of messages, then
seeks the partitions to their committed offsets (``Consumer.perform_seek``), which also resets
the last offset read to the committed one, and then resumes the flow once more, which empties
the streams' queues. Between the first resume and the seek, the consumer can already be handing
a batch to the streams, read from that same committed offset on.

Faust's seek did not stop that batch. It went on after the seek, from past the committed
offset, so:

- the messages it handed over before the seek were dropped from the queues by the resume, and
  the re-read from the committed offset skipped them as already read;
- the first message after the seek landed more than one offset past the reset "last read", and
  the consumer recorded the offsets in between as a *gap*: offsets it never read, such as
  records removed by compaction, which commits count as processed.

So a commit went past messages no stream ever processed. The saga e2e run with the stores down
(slow, frequent rebalances) lost customer_orders updates this way: the re-keyed events were on
their topic, the offsets were committed past them, and no table write was made for them.

:func:`install` makes the seek stop the flow first. Faust's read loop checks the flow before
each message of a batch and abandons the batch when it stops; the flow resumes right after the
seek (Faust resumes it in both places that seek after a rebalance), and reading starts again
from the committed offsets. What was handed over before is read again, and handlers are
idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


def install(consumer: Any) -> None:
    """Make ``consumer``'s seek to the committed offsets stop the flow first; before it starts."""
    perform_seek: Callable[[], Awaitable[None]] = consumer.perform_seek

    async def seek_with_the_flow_stopped() -> None:
        consumer.stop_flow()
        await perform_seek()

    consumer.perform_seek = seek_with_the_flow_stopped
