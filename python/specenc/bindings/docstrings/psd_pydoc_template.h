/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 */
#include "pydoc_macros.h"
#define D(...) DOC(gr, specenc, __VA_ARGS__)
/*
  This file contains placeholders for docstrings for the Python bindings.
  Do not edit! These were automatically extracted during the binding process
  and will be overwritten during the build process
 */


static const char* __doc_gr_specenc_psd = R"doc()doc";


static const char* __doc_gr_specenc_psd_psd_0 = R"doc()doc";


static const char* __doc_gr_specenc_psd_psd_1 = R"doc()doc";


static const char* __doc_gr_specenc_psd_make = R"doc()doc";


static const char* __doc_gr_specenc_psd_hop = R"doc()doc";


static const char* __doc_gr_specenc_psd_decimation = R"doc()doc";


static const char* __doc_gr_specenc_psd_set_sample_rate = R"doc()doc";
