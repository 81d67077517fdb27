/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/block_detail.h>
#include <gnuradio/specenc/stream_tags.h>
#include <gnuradio/tags.h>
#include <stdexcept>
#include <string>

namespace gr {
namespace specenc {

namespace {
block_detail& detail_of(block& blk)
{
    auto detail = blk.detail();
    if (!detail) {
        throw std::runtime_error(blk.name() + ": stream tags need a running flowgraph (no block_detail yet)");
    }
    return *detail;
}

// An index past the block's ports made block_detail read past its buffers (a segfault), as add_item_tag does.
void check_port(block& blk, unsigned int port, int ports, const char* direction)
{
    if (port >= static_cast<unsigned int>(ports)) {
        throw std::out_of_range(blk.name() + ": no " + direction + " port " + std::to_string(port) + " (it has " +
                                std::to_string(ports) + ")");
    }
}
} // namespace

void add_item_tags(block& blk,
                   unsigned int output,
                   const uint64_t* offsets,
                   const std::vector<pmt::pmt_t>& values,
                   const pmt::pmt_t& key)
{
    block_detail& detail = detail_of(blk);
    check_port(blk, output, detail.noutputs(), "output");
    tag_t tag;
    tag.key = key;
    tag.srcid = pmt::PMT_F; // as gr::block::add_item_tag's default
    for (size_t i = 0; i < values.size(); ++i) {
        tag.offset = offsets[i];
        tag.value = values[i];
        detail.add_item_tag(output, tag);
    }
}

std::vector<pmt::pmt_t>
item_tag_values(block& blk, unsigned int input, uint64_t start, size_t n, const pmt::pmt_t& key)
{
    block_detail& detail = detail_of(blk);
    check_port(blk, input, detail.ninputs(), "input");
    std::vector<tag_t> tags;
    detail.get_tags_in_range(tags, input, start, start + n, key, blk.unique_id());
    std::vector<pmt::pmt_t> values(n, pmt::PMT_NIL);
    for (const auto& tag : tags) { // in offset order
        values[tag.offset - start] = tag.value;
    }
    return values;
}

} // namespace specenc
} // namespace gr
