"""The send buffer: many threads hand items over, one thread sends them in batches."""

from __future__ import annotations

import logging
import threading
import time

from core.send_buffer import SendBuffer


def test_items_from_many_threads_leave_in_few_batches_each_exactly_once():
    batches: list[list[int]] = []
    buffer = SendBuffer(batches.append, linger_s=0.02)
    barrier = threading.Barrier(8)

    def hand_over(start: int) -> None:
        barrier.wait()
        for i in range(start, start + 50):
            buffer.add([i])

    threads = [threading.Thread(target=hand_over, args=(k * 50,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert buffer.flush(5.0)
    sent = [item for batch in batches for item in batch]
    assert sorted(sent) == list(range(400)), "every item sent, none twice"
    assert len(batches) < 40, f"gathered into batches, not one message per item ({len(batches)} batches)"


def test_batches_are_cut_at_max_batch():
    batches: list[list[int]] = []
    buffer = SendBuffer(batches.append, linger_s=0.05, max_batch=7)
    buffer.add(range(20))
    assert buffer.flush(5.0)
    assert [len(b) for b in batches] == [7, 7, 6]


def test_a_lone_item_leaves_within_the_linger_time():
    sent_at: list[float] = []
    buffer = SendBuffer(lambda batch: sent_at.append(time.monotonic()), linger_s=0.01)
    began = time.monotonic()
    buffer.add(["one"])
    assert buffer.flush(5.0)
    assert sent_at and sent_at[0] - began < 0.5


def test_a_failing_send_is_logged_and_later_items_still_leave(caplog):
    batches: list[list[str]] = []

    def send(batch: list[str]) -> None:
        if "bad" in batch:
            raise ConnectionError("broker down")
        batches.append(batch)

    buffer = SendBuffer(send, linger_s=0.001, name="test-buffer")
    with caplog.at_level(logging.ERROR, logger="core.send_buffer"):
        buffer.add(["bad"])
        assert buffer.flush(5.0)
        buffer.add(["good"])
        assert buffer.flush(5.0)
    assert batches == [["good"]]
    assert "test-buffer: could not send 1 item(s)" in caplog.text


def test_flush_with_nothing_handed_over_returns_at_once():
    buffer = SendBuffer(lambda batch: None)
    began = time.monotonic()
    assert buffer.flush(5.0)
    assert time.monotonic() - began < 0.1


def test_while_the_broker_is_stuck_the_buffer_keeps_only_the_newest_items(caplog):
    sending, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def send(batch: list[int]) -> None:
        sending.set()
        release.wait(5.0)
        batches.append(batch)

    buffer = SendBuffer(send, linger_s=0.001, max_pending=10)
    buffer.add([0])
    assert sending.wait(5.0), "the first batch is being sent, and is stuck"
    with caplog.at_level(logging.ERROR, logger="core.send_buffer"):
        buffer.add(range(1, 26))
    release.set()
    assert buffer.flush(5.0)
    assert batches == [[0], list(range(16, 26))]
    assert "15 item(s) left to the workers' recovery loop" in caplog.text
