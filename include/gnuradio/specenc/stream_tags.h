/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SPECENC_STREAM_TAGS_H
#define INCLUDED_SPECENC_STREAM_TAGS_H

#include <gnuradio/block.h>
#include <gnuradio/specenc/api.h>
#include <pmt/pmt.h>
#include <cstdint>
#include <vector>

namespace gr {
namespace specenc {

/*!
 * \brief Stream tags added or read for many items in one call, from a block's work().
 * \ingroup specenc
 *
 * \details
 * The Python blocks tag every spectrum. Through the Python gateway each tag costs a call into
 * C++ and a PMT made in Python (~1 us); these take a work() call's tags at once. They do what
 * gr::block::add_item_tag and get_tags_in_window do, through the block's block_detail, so
 * call them only from the block's own work(), on items of the current window.
 */

//! Tag item offsets[i] of \p output with (key, values[i]), i < n.
SPECENC_API void add_item_tags(block& blk,
                               unsigned int output,
                               const uint64_t* offsets,
                               const std::vector<pmt::pmt_t>& values,
                               const pmt::pmt_t& key);

//! Per item start .. start + n - 1 of \p input, the value of its tag with \p key (PMT_NIL where none;
//! the latest where several).
SPECENC_API std::vector<pmt::pmt_t>
item_tag_values(block& blk, unsigned int input, uint64_t start, size_t n, const pmt::pmt_t& key);

} // namespace specenc
} // namespace gr

#endif /* INCLUDED_SPECENC_STREAM_TAGS_H */
