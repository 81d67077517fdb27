/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 */

/***********************************************************************************/
/* Written by hand in the gr_modtool bindtool layout (castxml cannot parse GCC 12's */
/* headers here). After editing include/gnuradio/specenc/emission_tracker.h, update */
/* the hash below with `make bind-hash` (CMake refuses to configure when stale).    */
/***********************************************************************************/

/***********************************************************************************/
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(emission_tracker.h)                                        */
/* BINDTOOL_HEADER_FILE_HASH(38f26bb57e42710f2d71879a1938fed6)                                     */
/***********************************************************************************/

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/specenc/emission_tracker.h>
#include <limits>
#include <string>

template <typename T>
using column = py::array_t<T, py::array::c_style | py::array::forcecast>;

namespace {
// Bins, family codes and spectrum indices as integers: forcecast truncated floats (bin 10.7 read as 10).
column<int64_t> integers(const py::object& given, const char* what)
{
    const py::array values = py::array::ensure(given);
    if (!values) {
        throw std::invalid_argument(std::string("emission_tracker.update: ") + what + " must be an array of integers");
    }
    const char kind = values.dtype().kind();
    if (values.size() > 0 && kind != 'i' && kind != 'u') {
        throw std::invalid_argument(std::string("emission_tracker.update: ") + what + " must be integers, not " +
                                    py::str(values.dtype()).cast<std::string>());
    }
    return column<int64_t>::ensure(values);
}

// The tracker's bins and family codes are int: a value past int's range was truncated (2^32 + 1 read as 1).
int as_int(int64_t value, const char* what)
{
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
        throw std::invalid_argument(std::string("emission_tracker.update: ") + what + " " + std::to_string(value) +
                                    " is out of range");
    }
    return static_cast<int>(value);
}
} // namespace

void bind_emission_tracker(py::module& m)
{
    using gr::specenc::detection;
    using gr::specenc::emission;
    using tracker = gr::specenc::emission_tracker;

    py::class_<emission>(m, "emission", "An emission reported by emission_tracker (bins, spectrum indices).")
        .def_readonly("id", &emission::id)
        .def_readonly("family", &emission::family)
        .def_readonly("first", &emission::first)
        .def_readonly("last", &emission::last)
        .def_readonly("bin_start", &emission::bin_start)
        .def_readonly("bin_stop", &emission::bin_stop)
        .def_readonly("reach_start", &emission::reach_start)
        .def_readonly("reach_stop", &emission::reach_stop)
        .def_readonly("count", &emission::count)
        .def_readonly("confidence_sum", &emission::confidence_sum)
        .def_readonly("evidence_sum", &emission::evidence_sum)
        .def_readonly("level_sum", &emission::level_sum)
        .def_readonly("level_count", &emission::level_count)
        .def_readonly("nested", &emission::nested);

    py::class_<tracker>(m, "emission_tracker",
                        "Joins per-spectrum detections into emissions (see emission_tracker.h).")
        .def(py::init<int, int>(), py::arg("max_gap") = 8, py::arg("max_spectra") = 1024)
        .def(
            "update",
            [](tracker& self, int64_t first, int64_t n, const py::object& index_in, const py::object& family_in,
               const py::object& bin_start_in, const py::object& bin_stop_in, const column<double>& confidence,
               const column<double>& evidence, const column<double>& level) {
                const auto index = integers(index_in, "index");
                const auto family = integers(family_in, "family");
                const auto bin_start = integers(bin_start_in, "bin_start");
                const auto bin_stop = integers(bin_stop_in, "bin_stop");
                const py::ssize_t count = index.size();
                if (index.ndim() != 1 || family.size() != count || bin_start.size() != count || bin_stop.size() != count ||
                    confidence.size() != count || evidence.size() != count || level.size() != count) {
                    throw std::invalid_argument("emission_tracker.update: the detection columns must be 1-D and of one length");
                }
                auto idx = index.unchecked<1>();
                auto fam = family.unchecked<1>();
                auto lo = bin_start.unchecked<1>();
                auto hi = bin_stop.unchecked<1>();
                auto conf = confidence.unchecked<1>();
                auto ev = evidence.unchecked<1>();
                auto lv = level.unchecked<1>();
                std::vector<detection> dets(count);
                for (py::ssize_t i = 0; i < count; ++i) {
                    dets[i] = detection{ idx(i), as_int(fam(i), "family"), as_int(lo(i), "bin_start"),
                                         as_int(hi(i), "bin_stop"), conf(i), ev(i), lv(i) };
                }
                auto r = self.update(first, n, dets);
                return py::make_tuple(r.opened, r.ended);
            },
            py::arg("first"), py::arg("n"), py::arg("index"), py::arg("family"), py::arg("bin_start"),
            py::arg("bin_stop"), py::arg("confidence"), py::arg("evidence"), py::arg("level"),
            "Visit spectra first..first+n-1 with their detections (columns, sorted by spectrum index) "
            "-> (opened, ended) lists of emission.")
        .def("flush", &tracker::flush, "Every open emission, by (first, bin_start); the tracker empties.");
}
