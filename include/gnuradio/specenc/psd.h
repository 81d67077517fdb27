/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SPECENC_PSD_H
#define INCLUDED_SPECENC_PSD_H

#include <gnuradio/block.h>
#include <gnuradio/specenc/api.h>
#include <string>

namespace gr {
namespace specenc {

/*!
 * \brief Averaged, windowed power spectra of a complex stream (Welch), fftshifted.
 * \ingroup specenc
 *
 * \details
 * Input: complex samples. Output: one float vector of length \p nfft per spectrum, bin 0 the
 * lowest frequency (centre frequency at bin nfft/2), bin width sample_rate/nfft.
 *
 * Frames of \p nfft samples start every hop = nfft - round(overlap * nfft) samples. Each frame is
 * multiplied by the periodic window w and transformed (FFTW). Power per bin is
 * |FFT(x w)|^2 / (sum w)^2, so a complex tone of amplitude 1 centred on a bin reads 1 (0 dBFS) in
 * that bin whatever the window ("dBFS/bin"). Spectrum m is the mean of frames mK .. mK+K-1
 * (K = \p average; non-overlapping groups). With \p db, the output is
 * 10 log10(max(power, 1e-20)); add -10 log10(sample_rate * ENBW / nfft) for dB/Hz, where
 * ENBW = nfft sum(w^2) / (sum w)^2 bins. This is exactly gnuradio.specenc.dsp.power_spectrum.
 *
 * Spectrum m covers input samples [m D, m D + (K-1) hop + nfft), D = hop K, and consumes D
 * samples, so N input samples give floor((floor((N - nfft) / hop) + 1) / K) spectra.
 *
 * Tags: every input tag at absolute sample n moves to spectrum floor(n / D) (the spectrum whose
 * D consumed samples include n; it starts at or before n and contains n). An rx_time tag
 * (uint64 seconds, double fraction; long or double numbers are read too) is rewritten to the time
 * of that spectrum's first sample, t - (n - m D) / rate, fraction in [0, 1), with the rate from the
 * latest rx_rate tag (any number > 0, or \p sample_rate until one arrives; with no rate known the
 * time is passed unchanged). An rx_time or rx_rate value that is not such a number is logged and
 * passed on unchanged. rx_freq, rx_rate and other tags keep their values. Tags on samples that no
 * spectrum consumes (the tail at end of stream) are dropped.
 *
 * NaN or inf samples do not stop the block: every spectrum whose frames include one is
 * non-finite in its bins (NaN, or +inf in some bins where NumPy gives NaN); spectra not touching
 * them are unaffected.
 */
class SPECENC_API psd : virtual public gr::block
{
public:
    typedef std::shared_ptr<psd> sptr;

    /*!
     * \brief Make a PSD block.
     *
     * \param nfft FFT size, a power of two in 64..65536.
     * \param overlap fraction of a frame shared with the next, 0..0.9.
     * \param window "hann", "rectangular", "hamming" or "blackmanharris" (periodic).
     * \param average number of frames averaged into one spectrum, >= 1; one spectrum reads
     *        (average-1) hop + nfft samples, at most 2^24.
     * \param db output 10 log10(power) if true, linear power if false.
     * \param sample_rate input rate in Hz used to advance rx_time until an rx_rate tag arrives
     *        (0 = unknown).
     * \throws std::invalid_argument naming the bad value and the allowed range.
     */
    static sptr make(int nfft = 1024,
                     double overlap = 0.5,
                     const std::string& window = "hann",
                     int average = 1,
                     bool db = true,
                     double sample_rate = 0.0);

    //! Frame advance in samples: nfft - round(overlap * nfft).
    virtual int hop() const = 0;
    //! Input samples consumed per output spectrum: hop * average.
    virtual int decimation() const = 0;
    /*!
     * \brief Input rate in Hz for advancing rx_time, until the next rx_rate tag.
     * \throws std::invalid_argument unless finite and > 0 (0, unknown, is for the constructor).
     */
    virtual void set_sample_rate(double sample_rate) = 0;
};

} // namespace specenc
} // namespace gr

#endif /* INCLUDED_SPECENC_PSD_H */
