/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SPECENC_PSD_IMPL_H
#define INCLUDED_SPECENC_PSD_IMPL_H

#include <fftw3.h>
#include <gnuradio/specenc/psd.h>
#include <volk/volk_alloc.hh>

namespace gr {
namespace specenc {

class psd_impl : public psd
{
private:
    const int d_nfft;
    const int d_hop;
    const int d_average;
    const bool d_db;
    double d_rate; // Hz, from the constructor or the latest rx_rate tag; 0 = unknown
    volk::vector<double> d_window; // (2 nfft,) each window value twice, for interleaved re/im
    double d_scale;                // 1 / (average * (sum w)^2)
    volk::vector<double> d_power;  // (nfft,) accumulated |X|^2 of one spectrum's frames
    // Windowing and FFT in double precision: in single precision the error reaches 1e-3 dB in
    // the low bins of a 1024-point noise spectrum; the block must match a Welch reference to 1e-4 dB.
    fftw_complex* d_fft_in;
    fftw_complex* d_fft_out;
    fftw_plan d_plan;

    void compute_spectrum(const gr_complex* in, float* out);
    void move_tags(int nspectra);
    pmt::pmt_t spectrum_time(const gr::tag_t& tag, uint64_t secs, double frac, double back);

public:
    psd_impl(int nfft,
             double overlap,
             const std::string& window,
             int average,
             bool db,
             double sample_rate);
    ~psd_impl() override;

    int hop() const override { return d_hop; }
    int decimation() const override { return d_hop * d_average; }
    void set_sample_rate(double sample_rate) override;

    void forecast(int noutput_items, gr_vector_int& ninput_items_required) override;

    int general_work(int noutput_items,
                     gr_vector_int& ninput_items,
                     gr_vector_const_void_star& input_items,
                     gr_vector_void_star& output_items) override;
};

} // namespace specenc
} // namespace gr

#endif /* INCLUDED_SPECENC_PSD_IMPL_H */
