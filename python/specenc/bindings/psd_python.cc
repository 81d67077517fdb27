/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 */

/***********************************************************************************/
/* Written by hand in the gr_modtool bindtool layout (castxml cannot parse GCC 12's */
/* headers here). After editing include/gnuradio/specenc/psd.h, update the hash     */
/* below with `make bind-hash` (CMake refuses to configure when it is stale). A new */
/* method also needs its entry in docstrings/psd_pydoc_template.h, which the build  */
/* copies once: rm build/python/specenc/bindings/docstring_status to copy it again. */
/***********************************************************************************/

/***********************************************************************************/
/* BINDTOOL_GEN_AUTOMATIC(0)                                                       */
/* BINDTOOL_USE_PYGCCXML(0)                                                        */
/* BINDTOOL_HEADER_FILE(psd.h)                                                     */
/* BINDTOOL_HEADER_FILE_HASH(5fd83e719f7bd75208be7711ecbebcfe)                                     */
/***********************************************************************************/

#include <pybind11/complex.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

#include <gnuradio/specenc/psd.h>
// pydoc.h is automatically generated in the build directory
#include <psd_pydoc.h>

void bind_psd(py::module& m)
{
    using psd = ::gr::specenc::psd;

    py::class_<psd, gr::block, gr::basic_block, std::shared_ptr<psd>>(m, "psd", D(psd))

        .def(py::init(&psd::make),
             py::arg("nfft") = 1024,
             py::arg("overlap") = 0.5,
             py::arg("window") = "hann",
             py::arg("average") = 1,
             py::arg("db") = true,
             py::arg("sample_rate") = 0.0,
             D(psd, make))

        .def("hop", &psd::hop, D(psd, hop))

        .def("decimation", &psd::decimation, D(psd, decimation))

        .def("set_sample_rate", &psd::set_sample_rate, py::arg("sample_rate"), D(psd, set_sample_rate));
}
