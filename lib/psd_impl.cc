/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "psd_impl.h"
#include <gnuradio/fft/fft.h>
#include <gnuradio/io_signature.h>
#include <volk/volk.h>
#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>

namespace gr {
namespace specenc {

namespace {

const pmt::pmt_t RX_TIME = pmt::intern("rx_time");
const pmt::pmt_t RX_RATE = pmt::intern("rx_rate");
// On the first spectrum: how spectra are spaced in IQ samples, which the encoder's own overlap/average settings
// must match (it placed every alert 4x early behind a psd of average 4 left at its default 1; audit 88).
const pmt::pmt_t PSD_SETTINGS = pmt::intern("specenc_psd");
// Floor for dB conversion so an all-zero frame gives -200 dB instead of -inf (as dsp.POWER_FLOOR).
constexpr double POWER_FLOOR = 1e-20;
// Most input samples one spectrum may read (as dsp.MAX_SPAN): 2^24, 128 MiB of complex buffer.
constexpr int64_t MAX_SPAN = int64_t(1) << 24;

// 10 log10(max(v, POWER_FLOOR)) for n values, branch-free so the compiler vectorises it
// (std::log10 per bin cost half the block's time). v = 2^e m with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172: the series to s^9 is exact to 1e-9.
// NaN and +inf pass through unchanged, as NumPy gives. Cloned for AVX2 on x86 (picked at load time);
// target("avx2") does not exist on aarch64 (Jetson, Raspberry Pi), where the compiler's own SIMD is used.
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target_clones("avx2", "default")))
#endif
void power_to_db(const double* p, float* out, int n, double scale)
{
    constexpr double DB_PER_LN = 4.3429448190325182; // 10 / ln 10
    constexpr double LN2 = 0.69314718055994531;
    const double inf = std::numeric_limits<double>::infinity();
    for (int k = 0; k < n; k++) {
        const double raw = p[k] * scale;
        const double v = std::max(raw, POWER_FLOOR); // NaN stays NaN (first argument)
        uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        // split into exponent and mantissa in [1, 2), then move the mantissa to [sqrt(.5), sqrt(2))
        const uint64_t mbits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
        double m;
        std::memcpy(&m, &mbits, sizeof m);
        // exponent as a double without an int64 -> double conversion (SSE2 has none):
        // 2^52 + biased exponent, read as a double, minus (2^52 + 1023)
        const uint64_t ebits = ((bits >> 52) & 0x7ff) | 0x4330000000000000ULL;
        double e;
        std::memcpy(&e, &ebits, sizeof e);
        e -= 4503599627370496.0 + 1023.0;
        const bool high = m > 1.4142135623730951;
        m = high ? 0.5 * m : m;
        e = high ? e + 1.0 : e;
        const double s = (m - 1.0) / (m + 1.0);
        const double s2 = s * s;
        const double ln_m =
            2.0 * s *
            (1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9)))));
        const double db = DB_PER_LN * (e * LN2 + ln_m);
        out[k] = static_cast<float>(v < inf ? db : v);
    }
}

// Periodic (DFT-even) windows, computed in double as dsp.window() does.
std::vector<double> make_window(const std::string& name, int nfft)
{
    std::vector<double> w(nfft);
    for (int n = 0; n < nfft; n++) {
        const double x = 2.0 * M_PI * n / nfft;
        if (name == "hann")
            w[n] = 0.5 - 0.5 * std::cos(x);
        else if (name == "hamming")
            w[n] = 0.54 - 0.46 * std::cos(x);
        else if (name == "blackmanharris")
            w[n] = 0.35875 - 0.48829 * std::cos(x) + 0.14128 * std::cos(2 * x) -
                   0.01168 * std::cos(3 * x);
        else if (name == "rectangular")
            w[n] = 1.0;
        else
            throw std::invalid_argument("unknown window '" + name +
                                        "'; choose one of hann, rectangular, hamming, "
                                        "blackmanharris");
    }
    return w;
}

// Shortest text that reads back as v: "overlap=0.9000001", not the "0.9" of six digits.
std::string num(double v)
{
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    return std::string(text, end);
}

// A PMT number as a double: pmt::to_double takes real and long, and throws on uint64 (a common
// rx_rate spelling) and anything else; false when it is not a real number.
bool number_of(const pmt::pmt_t& v, double& out)
{
    if (pmt::is_uint64(v))
        out = static_cast<double>(pmt::to_uint64(v));
    else if (pmt::is_integer(v) || pmt::is_real(v))
        out = pmt::to_double(v);
    else
        return false;
    return std::isfinite(out);
}

// An rx_time value as (whole seconds, fraction); false unless it is a pair of numbers with seconds in
// [0, 2^63) and a fraction under 2^52 in size. Real seconds (a double pair) give their fraction to
// `frac`; integer seconds stay exact.
bool time_of(const pmt::pmt_t& v, uint64_t& secs, double& frac)
{
    double s; // bounded so every later sum and cast stays in range
    if (!pmt::is_tuple(v) || pmt::length(v) != 2 || !number_of(pmt::tuple_ref(v, 0), s) ||
        !number_of(pmt::tuple_ref(v, 1), frac) || s < 0.0 || s >= 0x1p63 || std::fabs(frac) >= 0x1p52)
        return false;
    const pmt::pmt_t whole = pmt::tuple_ref(v, 0);
    if (pmt::is_uint64(whole))
        secs = pmt::to_uint64(whole);
    else if (pmt::is_integer(whole))
        secs = static_cast<uint64_t>(pmt::to_long(whole));
    else
        secs = static_cast<uint64_t>(std::floor(s));
    frac += s - std::floor(s);
    return true;
}

void checked_rate(double sample_rate)
{
    if (!(sample_rate >= 0.0 && std::isfinite(sample_rate)))
        throw std::invalid_argument("sample_rate=" + num(sample_rate) +
                                    " must be a finite rate >= 0 Hz (0 = unknown)");
}

int checked_hop(int nfft, double overlap, int average, double sample_rate)
{
    if (nfft < 64 || nfft > 65536 || (nfft & (nfft - 1)))
        throw std::invalid_argument("nfft=" + std::to_string(nfft) +
                                    " must be a power of two in 64..65536");
    if (!(overlap >= 0.0 && overlap <= 0.9))
        throw std::invalid_argument("overlap=" + num(overlap) +
                                    " must be in 0..0.9");
    if (average < 1)
        throw std::invalid_argument("average=" + std::to_string(average) +
                                    " must be >= 1");
    checked_rate(sample_rate);
    // nearbyint rounds half to even, as Python's round() in dsp.hop_size
    const int hop = nfft - static_cast<int>(std::nearbyint(overlap * nfft));
    // Bounded so sample counts stay far inside int (average 32768 at nfft 65536 wrapped and crashed)
    // and the upstream buffer that must hold one spectrum's samples stays a sane size.
    const int64_t span = static_cast<int64_t>(average - 1) * hop + nfft;
    if (span > MAX_SPAN)
        throw std::invalid_argument("average=" + std::to_string(average) + " with nfft=" +
                                    std::to_string(nfft) + " and overlap=" + num(overlap) +
                                    " reads " + std::to_string(span) +
                                    " samples per spectrum; at most " +
                                    std::to_string(MAX_SPAN) + " ((average-1) hop + nfft)");
    return hop;
}

} // namespace

psd::sptr psd::make(int nfft,
                    double overlap,
                    const std::string& window,
                    int average,
                    bool db,
                    double sample_rate)
{
    // Checked before the block exists: its output signature (sizeof(float) * nfft) would refuse an nfft <= 0 or
    // >= 2^29 first, with GNU Radio's "gr::io_signature(3)" instead of what is wrong.
    checked_hop(nfft, overlap, average, sample_rate);
    return gnuradio::make_block_sptr<psd_impl>(
        nfft, overlap, window, average, db, sample_rate);
}

psd_impl::psd_impl(int nfft,
                   double overlap,
                   const std::string& window,
                   int average,
                   bool db,
                   double sample_rate)
    : gr::block("psd",
                gr::io_signature::make(1, 1, sizeof(gr_complex)),
                gr::io_signature::make(1, 1, sizeof(float) * nfft)),
      d_nfft(nfft),
      d_hop(checked_hop(nfft, overlap, average, sample_rate)),
      d_average(average),
      d_db(db),
      d_rate(sample_rate),
      d_window(2 * nfft),
      d_power(nfft)
{
    const std::vector<double> w = make_window(window, nfft);
    double sum = 0.0;
    for (int n = 0; n < nfft; n++) {
        d_window[2 * n] = d_window[2 * n + 1] = w[n];
        sum += w[n];
    }
    d_scale = 1.0 / (average * sum * sum);
    d_fft_in = fftw_alloc_complex(nfft);
    d_fft_out = fftw_alloc_complex(nfft);
    {
        // FFTW planning is not thread safe; share GNU Radio's planner lock.
        std::lock_guard<std::mutex> lock(gr::fft::planner::mutex());
        d_plan = fftw_plan_dft_1d(nfft,
                                  d_fft_in,
                                  d_fft_out,
                                  FFTW_FORWARD,
                                  nfft <= 8192 ? FFTW_MEASURE : FFTW_ESTIMATE);
    }
    set_relative_rate(1, static_cast<uint64_t>(decimation()));
    // History only to size the upstream buffer: GNU Radio makes it >= 2 (decimation + history)
    // items, which must hold one spectrum's span. The history samples themselves are skipped.
    set_history((average - 1) * d_hop + nfft - decimation() + 1);
    // Tags are moved by hand: input sample n -> spectrum n / decimation().
    set_tag_propagation_policy(TPP_DONT);
}

psd_impl::~psd_impl()
{
    std::lock_guard<std::mutex> lock(gr::fft::planner::mutex());
    fftw_destroy_plan(d_plan);
    fftw_free(d_fft_in);
    fftw_free(d_fft_out);
}

void psd_impl::forecast(int noutput_items, gr_vector_int& ninput_items_required)
{
    // in int64: many outputs of a long average exceed int; the scheduler then asks for fewer
    const int64_t need = int64_t(history() - 1) + int64_t(noutput_items - 1) * decimation() +
                         int64_t(d_average - 1) * d_hop + d_nfft;
    ninput_items_required[0] = static_cast<int>(std::min<int64_t>(need, INT_MAX));
}

void psd_impl::compute_spectrum(const gr_complex* in, float* out)
{
    double* fft_in = reinterpret_cast<double*>(d_fft_in);
    const double* fft_out = reinterpret_cast<const double*>(d_fft_out);
    double* power = d_power.data();
    for (int k = 0; k < d_average; k++) {
        volk_32f_convert_64f(fft_in, reinterpret_cast<const float*>(in + k * d_hop), 2 * d_nfft);
        const double* w = d_window.data();
        for (int i = 0; i < 2 * d_nfft; i++)
            fft_in[i] *= w[i];
        fftw_execute(d_plan);
        if (k == 0) {
            for (int i = 0; i < d_nfft; i++)
                power[i] = fft_out[2 * i] * fft_out[2 * i] + fft_out[2 * i + 1] * fft_out[2 * i + 1];
        } else {
            for (int i = 0; i < d_nfft; i++)
                power[i] += fft_out[2 * i] * fft_out[2 * i] + fft_out[2 * i + 1] * fft_out[2 * i + 1];
        }
    }
    // fftshift: output bin 0 is FFT bin nfft/2 (the lowest frequency)
    const int half = d_nfft / 2;
    if (d_db) {
        power_to_db(power + half, out, half, d_scale);
        power_to_db(power, out + half, half, d_scale);
    } else {
        for (int i = 0; i < half; i++) {
            out[i] = static_cast<float>(power[half + i] * d_scale);
            out[half + i] = static_cast<float>(power[i] * d_scale);
        }
    }
}

void psd_impl::set_sample_rate(double sample_rate)
{
    checked_rate(sample_rate);
    // As spectrum_encoder.set_sample_rate: GRC calls both for one variable, and this one taking a 0 the encoder
    // then refused left the two on different rates.
    if (sample_rate == 0.0)
        throw std::invalid_argument("sample_rate=0 must be a rate > 0 Hz while running "
                                    "(0, unknown, is for the constructor)");
    gr::thread::scoped_lock guard(d_setlock); // move_tags reads d_rate under it, on the block's thread
    d_rate = sample_rate;
}

pmt::pmt_t psd_impl::spectrum_time(const gr::tag_t& tag, uint64_t secs, double frac, double back)
{
    // time of spectrum m's first sample = tag time - (n - m D) / rate, carried into whole seconds both ways
    // (a fraction >= 1 from an unnormalised tag moves seconds up)
    frac -= back;
    double carry = std::floor(frac);
    frac -= carry;
    if (frac >= 1.0) { // frac - floor(frac) rounds to 1.0 when frac is a hair below a whole second
        frac -= 1.0;
        carry += 1.0;
    }
    if (carry >= 0.0)
        return pmt::make_tuple(pmt::from_uint64(secs + static_cast<uint64_t>(carry)), pmt::from_double(frac));
    if (static_cast<double>(secs) < -carry) {
        // The spectrum starts before the clock's zero (a device clock just started): uint64 seconds
        // cannot say so, and wrapping round gave ~1.8e19 s. Time zero is the nearest that can.
        d_logger->warn("rx_time {} on sample {} is less than the {:.9f} s its spectrum starts before it; "
                       "tagged 0 s",
                       pmt::write_string(tag.value),
                       tag.offset,
                       back);
        return pmt::make_tuple(pmt::from_uint64(0), pmt::from_double(0.0));
    }
    return pmt::make_tuple(pmt::from_uint64(secs - static_cast<uint64_t>(-carry)), pmt::from_double(frac));
}

void psd_impl::move_tags(int nspectra)
{
    const uint64_t dec = static_cast<uint64_t>(decimation());
    const uint64_t start = nitems_read(0);
    gr::thread::scoped_lock guard(d_setlock);
    std::vector<gr::tag_t> tags;
    get_tags_in_range(tags, 0, start, start + nspectra * dec);
    // By offset; at equal offsets rx_rate first so an rx_time there is advanced with that rate.
    std::stable_sort(tags.begin(), tags.end(), [](const gr::tag_t& a, const gr::tag_t& b) {
        if (a.offset != b.offset)
            return a.offset < b.offset;
        return pmt::eqv(a.key, RX_RATE) && !pmt::eqv(b.key, RX_RATE);
    });
    for (gr::tag_t tag : tags) {
        const uint64_t m = tag.offset / dec;
        if (pmt::eqv(tag.key, RX_RATE)) {
            double rate;
            if (number_of(tag.value, rate) && rate > 0.0)
                d_rate = rate;
            else
                d_logger->warn("rx_rate {} on sample {} is not a rate in Hz > 0; the rate stays {} Hz",
                               pmt::write_string(tag.value),
                               tag.offset,
                               d_rate);
        } else if (pmt::eqv(tag.key, RX_TIME) && d_rate > 0) {
            uint64_t secs;
            double frac;
            if (time_of(tag.value, secs, frac))
                tag.value = spectrum_time(tag, secs, frac, static_cast<double>(tag.offset - m * dec) / d_rate);
            else
                d_logger->warn("rx_time {} on sample {} is not (uint64 seconds, double fraction); passed on "
                               "unchanged",
                               pmt::write_string(tag.value),
                               tag.offset);
        }
        tag.offset = m;
        add_item_tag(0, tag);
    }
}

int psd_impl::general_work(int noutput_items,
                           gr_vector_int& ninput_items,
                           gr_vector_const_void_star& input_items,
                           gr_vector_void_star& output_items)
{
    // in[history() - 1] is the first unconsumed sample (absolute index nitems_read(0))
    const int skip = history() - 1;
    const auto in = static_cast<const gr_complex*>(input_items[0]) + skip;
    const int avail = ninput_items[0] - skip;
    auto out = static_cast<float*>(output_items[0]);
    const int dec = decimation();
    const int span = (d_average - 1) * d_hop + d_nfft; // input samples one spectrum reads

    if (avail < span)
        return 0;
    const int n = std::min(noutput_items, (avail - span) / dec + 1);
    for (int m = 0; m < n; m++)
        compute_spectrum(in + m * dec, out + m * d_nfft);
    if (nitems_written(0) == 0 && n > 0) {
        pmt::pmt_t settings = pmt::make_dict();
        settings = pmt::dict_add(settings, pmt::intern("nfft"), pmt::from_long(d_nfft));
        settings = pmt::dict_add(settings, pmt::intern("hop"), pmt::from_long(d_hop));
        settings = pmt::dict_add(settings, pmt::intern("average"), pmt::from_long(d_average));
        add_item_tag(0, 0, PSD_SETTINGS, settings);
    }
    move_tags(n);
    consume_each(n * dec);
    return n;
}

} // namespace specenc
} // namespace gr
