"""Per-item tags added and read for a whole work() window in one C++ call (spectrum_tags.add_*_tags, *_tag_values)."""

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio.specenc import spectrum_tags as T
from gnuradio.specenc.queue_block import queue_block

pytestmark = pytest.mark.usefixtures("specenc_cpp")
SCORE, LABEL, SPAN = pmt.intern("score"), pmt.intern("label"), pmt.intern("span")
SYMBOLS = [pmt.intern("am"), pmt.intern("fsk")]


class tagger(queue_block):
    """Tags every other item: score = item index / 10, label alternating, span (i, i + 1)."""

    def __init__(self):
        queue_block.__init__(self, name="tagger", in_sig=[np.float32], out_sig=[np.float32])

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        first = self.nitems_written(0)
        offsets = np.arange(first + first % 2, first + n, 2, dtype=np.uint64)
        T.add_double_tags(self, 0, offsets, offsets / 10.0, SCORE)
        T.add_symbol_tags(self, 0, offsets, (offsets // 2 % 2).astype(np.int64), SYMBOLS, LABEL)
        T.add_pair_tags(self, 0, offsets, offsets.astype(np.int64), offsets.astype(np.int64) + 1, SPAN)
        return n


class reader(queue_block):
    """Reads the tags back per item, with the C++ helpers and with get_tags_in_window."""

    def __init__(self):
        queue_block.__init__(self, name="reader", in_sig=[np.float32], out_sig=[])
        self.scores, self.labels, self.python_scores = [], [], {}

    def work(self, input_items, output_items):
        n = len(input_items[0])
        self.scores.append(T.double_tag_values(self, 0, n, SCORE, fill=-1.0))
        self.labels += T.symbol_tag_values(self, 0, n, LABEL)
        for tag in self.get_tags_in_window(0, 0, n, SCORE):
            self.python_scores[tag.offset] = pmt.to_double(tag.value)
        return n


def test_tags_added_in_one_call_read_back_per_item_as_gnu_radio_sees_them():
    n = 1000
    tb = gr.top_block()
    src, tag, read, sink = blocks.vector_source_f(np.zeros(n).tolist()), tagger(), reader(), blocks.vector_sink_f()
    src.set_max_noutput_items(37)  # many work() calls, windows that start on odd items too
    tb.connect(src, tag, read)
    tb.connect(tag, sink)
    tb.run()
    scores = np.concatenate(read.scores)
    even = np.arange(0, n, 2)
    np.testing.assert_allclose(scores[even], even / 10.0)
    assert (scores[1::2] == -1.0).all()
    assert read.labels[0:8] == ["am", "", "fsk", "", "am", "", "fsk", ""]
    assert read.python_scores == {int(i): pytest.approx(i / 10.0) for i in even}
    spans = {t.offset: pmt.to_python(t.value) for t in sink.tags() if pmt.eq(t.key, SPAN)}
    assert spans == {int(i): (int(i), int(i) + 1) for i in even}


class odd_tagger(tagger):
    """Tags items 0 and 1 with values of other types than the readers expect: a uint64 score, a symbol score, a number
    label."""

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        first = self.nitems_written(0)
        if first == 0:
            self.add_item_tag(0, 0, SCORE, pmt.from_uint64(7))
            self.add_item_tag(0, 1, SCORE, pmt.intern("high"))
            self.add_item_tag(0, 0, LABEL, pmt.from_long(3))
        return n


def test_tag_values_of_other_types_read_as_the_fill_and_the_reader_goes_on():
    """pmt's to_double and symbol_to_string threw on these and ended the reading block's thread (audit 26)."""
    tb = gr.top_block()
    src, tag, read = blocks.vector_source_f([0.0] * 4), odd_tagger(), reader()
    tb.connect(src, tag, read)
    tb.run()
    np.testing.assert_array_equal(np.concatenate(read.scores)[:3], [7.0, -1.0, -1.0])  # uint64 read, symbol: fill
    assert read.labels[:2] == ["", ""]


def test_a_port_the_block_lacks_is_refused_by_name():
    blk = tagger()
    tb = gr.top_block()
    tb.connect(blocks.vector_source_f([0.0]), blk, blocks.null_sink(gr.sizeof_float))
    tb.start()
    tb.wait()
    with pytest.raises(IndexError, match="tagger: no output port 1 \\(it has 1\\)"):  # a segfault before
        T.add_double_tags(blk, 1, np.zeros(1, np.uint64), np.zeros(1), SCORE)
    from gnuradio.specenc.specenc_python import double_tag_values

    with pytest.raises(IndexError, match="tagger: no input port 3"):
        double_tag_values(blk.gateway, 3, 0, 1, SCORE, 0.0)


def test_bad_columns_are_refused_by_name():
    blk = tagger()
    with pytest.raises(RuntimeError, match="no block_detail"):  # outside a running flowgraph
        T.add_double_tags(blk, 0, np.zeros(1, np.uint64), np.zeros(1), SCORE)
    tb = gr.top_block()
    tb.connect(blocks.vector_source_f([0.0]), blk, blocks.null_sink(gr.sizeof_float))
    tb.start()
    tb.wait()
    with pytest.raises(ValueError, match="differ in length"):
        T.add_double_tags(blk, 0, np.zeros(2, np.uint64), np.zeros(1), SCORE)
    with pytest.raises(ValueError, match="code 2 is not an index into the 2 symbols"):
        T.add_symbol_tags(blk, 0, np.zeros(1, np.uint64), np.array([2]), SYMBOLS, LABEL)
