"""queue_block: a Python 1:1 block gets everything queued in one work() call, in order, nothing dropped."""

import numpy as np
from gnuradio import blocks, gr

from gnuradio.specenc.queue_block import MAX_ITEMS, queue_block


class recorder(queue_block):
    """Copies input to output (or only records, as a sink) and keeps each work() call's item count."""

    def __init__(self, sink=False):
        queue_block.__init__(self, name="recorder", in_sig=[np.float32, np.float32] if sink else [np.float32],
                             out_sig=[] if sink else [np.float32])
        self.calls, self.seen = [], []

    def work(self, input_items, output_items):
        self.calls.append(len(input_items[0]))
        self.seen.append(np.stack(input_items).copy())
        if output_items:
            output_items[0][:] = input_items[0]
        return len(input_items[0])


def _run(block, n, inputs=1):
    """Source k sends (k + 1) * [0, 1, ..., n - 1]; returns that ramp and what came out of the block."""
    tb = gr.top_block()
    data = np.arange(n, dtype=np.float32)
    out = blocks.vector_sink_f()
    for k in range(inputs):
        tb.connect(blocks.vector_source_f((data * (k + 1)).tolist()), (block, k))
    if inputs == 1:
        tb.connect(block, out)
    tb.run()
    return data, np.array(out.data(), np.float32)


def test_queued_items_arrive_max_items_per_call_not_in_power_of_two_pieces():
    # A vector source writes its items in one go; gr.sync_block would see 100 as 64 + 32 + 4.
    assert MAX_ITEMS == 64
    block = recorder()
    data, out = _run(block, 100)
    assert block.calls == [64, 36]
    np.testing.assert_array_equal(out, data)
    block = recorder()
    _run(block, 60)
    assert block.calls == [60]


def test_max_noutput_items_caps_each_call_and_order_is_kept():
    block = recorder()
    block.set_max_noutput_items(30)
    data, out = _run(block, 100)
    assert block.calls == [30, 30, 30, 10]
    np.testing.assert_array_equal(out, data)


def test_a_two_input_sink_gets_aligned_inputs_and_every_item():
    block = recorder(sink=True)
    data, _ = _run(block, 1000, inputs=2)
    seen = np.concatenate(block.seen, axis=1)  # (2, n)
    assert sum(block.calls) == 1000
    np.testing.assert_array_equal(seen[0], data)
    np.testing.assert_array_equal(seen[1], 2 * data)
