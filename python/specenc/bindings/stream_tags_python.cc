/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 */

/***********************************************************************************/
/* Written by hand in the gr_modtool bindtool layout (castxml cannot parse GCC 12's */
/* headers here). After editing include/gnuradio/specenc/stream_tags.h, update the  */
/* hash below with `make bind-hash` (CMake refuses to configure when it is stale).  */
/***********************************************************************************/

/***********************************************************************************/
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(stream_tags.h)                                             */
/* BINDTOOL_HEADER_FILE_HASH(ff9f31d8f59c7301ad9c114dc49f092a)                                     */
/***********************************************************************************/

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/specenc/stream_tags.h>

namespace {
template <typename T>
using column = py::array_t<T, py::array::c_style | py::array::forcecast>;

void check_lengths(py::ssize_t a, py::ssize_t b, const char* what)
{
    if (a != b) {
        throw std::invalid_argument(std::string(what) + ": offsets and values differ in length (" +
                                    std::to_string(a) + " and " + std::to_string(b) + ")");
    }
}

// A tag value of another type than ours (another block's tag under our key) reads as `fill`: pmt's to_double
// throws on it (and on uint64), which ended the reading block's thread.
double number_or(const pmt::pmt_t& v, double fill)
{
    if (pmt::is_uint64(v))
        return static_cast<double>(pmt::to_uint64(v));
    return pmt::is_real(v) || pmt::is_integer(v) ? pmt::to_double(v) : fill;
}
} // namespace

void bind_stream_tags(py::module& m)
{
    using gr::block;

    m.def(
        "add_double_tags",
        [](block& blk, unsigned int output, const column<uint64_t>& offsets, const column<double>& values,
           const pmt::pmt_t& key) {
            check_lengths(offsets.size(), values.size(), "add_double_tags");
            auto v = values.unchecked<1>();
            std::vector<pmt::pmt_t> pmts(v.shape(0));
            for (py::ssize_t i = 0; i < v.shape(0); ++i) {
                pmts[i] = pmt::from_double(v(i));
            }
            gr::specenc::add_item_tags(blk, output, offsets.data(), pmts, key);
        },
        py::arg("block"), py::arg("output"), py::arg("offsets"), py::arg("values"), py::arg("key"),
        "Tag item offsets[i] of `output` with (key, double values[i]); block: a Python block's gateway, "
        "from its work().");

    m.def(
        "add_symbol_tags",
        [](block& blk, unsigned int output, const column<uint64_t>& offsets, const column<int64_t>& codes,
           const std::vector<pmt::pmt_t>& symbols, const pmt::pmt_t& key) {
            check_lengths(offsets.size(), codes.size(), "add_symbol_tags");
            auto c = codes.unchecked<1>();
            std::vector<pmt::pmt_t> pmts(c.shape(0));
            for (py::ssize_t i = 0; i < c.shape(0); ++i) {
                if (c(i) < 0 || c(i) >= static_cast<int64_t>(symbols.size())) {
                    throw std::invalid_argument("add_symbol_tags: code " + std::to_string(c(i)) +
                                                " is not an index into the " +
                                                std::to_string(symbols.size()) + " symbols");
                }
                pmts[i] = symbols[c(i)];
            }
            gr::specenc::add_item_tags(blk, output, offsets.data(), pmts, key);
        },
        py::arg("block"), py::arg("output"), py::arg("offsets"), py::arg("codes"), py::arg("symbols"),
        py::arg("key"), "Tag item offsets[i] of `output` with (key, symbols[codes[i]]).");

    m.def(
        "add_pair_tags",
        [](block& blk, unsigned int output, const column<uint64_t>& offsets, const column<int64_t>& firsts,
           const column<int64_t>& seconds, const pmt::pmt_t& key) {
            check_lengths(offsets.size(), firsts.size(), "add_pair_tags");
            check_lengths(offsets.size(), seconds.size(), "add_pair_tags");
            auto a = firsts.unchecked<1>();
            auto b = seconds.unchecked<1>();
            std::vector<pmt::pmt_t> pmts(a.shape(0));
            for (py::ssize_t i = 0; i < a.shape(0); ++i) {
                pmts[i] = pmt::cons(pmt::from_long(a(i)), pmt::from_long(b(i)));
            }
            gr::specenc::add_item_tags(blk, output, offsets.data(), pmts, key);
        },
        py::arg("block"), py::arg("output"), py::arg("offsets"), py::arg("firsts"), py::arg("seconds"),
        py::arg("key"), "Tag item offsets[i] of `output` with (key, pair (firsts[i] . seconds[i]) of longs).");

    m.def(
        "double_tag_values",
        [](block& blk, unsigned int input, uint64_t start, size_t n, const pmt::pmt_t& key, double fill) {
            auto values = gr::specenc::item_tag_values(blk, input, start, n, key);
            py::array_t<double> out(n);
            auto o = out.mutable_unchecked<1>();
            for (size_t i = 0; i < n; ++i) {
                o(i) = number_or(values[i], fill);
            }
            return out;
        },
        py::arg("block"), py::arg("input"), py::arg("start"), py::arg("n"), py::arg("key"), py::arg("fill"),
        "Per item start .. start + n - 1 of `input`, its `key` tag's value as a double (`fill` where none or "
        "where it is no number).");

    m.def(
        "symbol_tag_values",
        [](block& blk, unsigned int input, uint64_t start, size_t n, const pmt::pmt_t& key) {
            auto values = gr::specenc::item_tag_values(blk, input, start, n, key);
            py::list out(n);
            for (size_t i = 0; i < n; ++i) {
                out[i] = pmt::is_symbol(values[i]) ? pmt::symbol_to_string(values[i]) : std::string();
            }
            return out;
        },
        py::arg("block"), py::arg("input"), py::arg("start"), py::arg("n"), py::arg("key"),
        "Per item start .. start + n - 1 of `input`, its `key` tag's symbol as str ('' where none or where it is "
        "no symbol).");
}
