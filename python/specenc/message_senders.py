"""How many of our blocks send messages to a block, for a message-only block's end of run.

GNU Radio ends a block without stream ports at the first "done" that any sender posts to its `system` port. A
sink taking the encoder's `detections` and the detector's `alerts` then ended when the encoder did, before the
detector, further down the stream, had sent its last alerts, and those were lost. The blocks of this module that
publish messages register here, so a sink can wait for a "done" from each of their connections to it. A
third-party sender is not known, and its "done" counts as one of theirs: a sink fed by one too may still end
before the last of ours.

Subscriptions name the sink by its alias, which GNU Radio gives again once a block is gone: a sender of an earlier
flowgraph, not yet garbage-collected, still subscribes to that name. Senders tell when they start and stop, and a
sink counts only those not stopped before it started (it waited for a "done" that never came, and the flowgraph
hung, in a script running one top block per recording).
"""

import itertools
import weakref

import pmt

_SENDERS = weakref.WeakSet()
_STOPPED = weakref.WeakKeyDictionary()  # sender -> the event number of its last stop()
_EVENTS = itertools.count()  # orders senders' stops against sinks' starts
DONE = pmt.intern("done")
DONE_MSG = pmt.cons(DONE, pmt.from_long(1))  # as GNU Radio 3.10 posts it (its handler reads a number)


def register(block):
    """A block of ours with message outputs (called in its constructor)."""
    _SENDERS.add(block)


def started(sender):
    """A sender's start()."""
    _STOPPED.pop(sender, None)


def stopped(sender):
    """A sender's stop()."""
    _STOPPED[sender] = next(_EVENTS)


def sink_started():
    """A sink's start(): the mark to give connections_to."""
    return next(_EVENTS)


def connections_to(block, since=-1):
    """Message connections from registered senders that end at `block` (at least 1), leaving out senders stopped
    before the mark `since` (the sink's start)."""
    alias = pmt.intern(block.alias())
    count = 0
    # A snapshot of the weak references, taken at once: another thread may make a sender meanwhile, and the WeakSet's
    # own iterator raised "set changed size during iteration" in the sink's thread, which ended it (audit 77).
    for ref in list(_SENDERS.data):
        sender = ref()
        if sender is None:
            continue
        if _STOPPED.get(sender, since) < since:
            continue
        for port in pmt.to_python(sender.message_ports_out()) or ():
            subscribers = sender.message_subscribers(pmt.intern(port))
            while pmt.is_pair(subscribers):
                count += pmt.eqv(pmt.car(pmt.car(subscribers)), alias)
                subscribers = pmt.cdr(subscribers)
    return max(count, 1)


def is_done(msg):
    """A "done" message on a system port (not the (done . #f) that only wakes a block)."""
    if not (pmt.is_pair(msg) and pmt.eqv(pmt.car(msg), DONE)):
        return False
    flag = pmt.cdr(msg)
    return not (pmt.eqv(flag, pmt.PMT_F) or (pmt.is_integer(flag) and pmt.to_long(flag) == 0))
