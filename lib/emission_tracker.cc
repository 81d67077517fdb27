/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/specenc/emission_tracker.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace gr {
namespace specenc {

namespace {
[[noreturn]] void refuse(const std::string& what)
{
    throw std::invalid_argument("emission_tracker: " + what);
}
} // namespace

emission_tracker::emission_tracker(int max_gap, int max_spectra)
    : d_max_gap(max_gap), d_max_spectra(max_spectra)
{
    if (max_gap < 0) {
        refuse("max_gap=" + std::to_string(max_gap) + " must be >= 0");
    }
    if (max_spectra < 1) {
        refuse("max_spectra=" + std::to_string(max_spectra) + " must be >= 1");
    }
}

emission_tracker::result
emission_tracker::update(int64_t first, int64_t n, const std::vector<detection>& detections)
{
    if (n < 0 || first > INT64_MAX - n) { // first + n, the end of the spectra, must not wrap
        refuse("n=" + std::to_string(n) + " must be >= 0 and first + n within int64 (first=" +
               std::to_string(first) + ")");
    }
    if (first < d_next_index) {
        refuse("spectrum " + std::to_string(first) + " was given already (spectra up to " +
               std::to_string(d_next_index - 1) + " were): spectra must come in order");
    }
    int64_t previous = first;
    for (const auto& det : detections) { // messages are built only on failure: this runs per detection
        if (det.index < previous || det.index >= first + n) {
            refuse("detection at spectrum " + std::to_string(det.index) +
                   " is out of order or outside spectra " + std::to_string(first) + ".." +
                   std::to_string(first + n - 1));
        }
        if (det.bin_start < 0) { // bins count from the spectrum's first: an emission there has no frequency
            refuse("detection bins [" + std::to_string(det.bin_start) + ", " + std::to_string(det.bin_stop) +
                   ") start before bin 0");
        }
        if (det.bin_start >= det.bin_stop) {
            refuse("detection bins [" + std::to_string(det.bin_start) + ", " + std::to_string(det.bin_stop) +
                   ") are empty");
        }
        if (det.family < 0 || det.family > MAX_FAMILY) { // an emission holds a sum per family code
            refuse("family code " + std::to_string(det.family) + " must be in 0.." + std::to_string(MAX_FAMILY));
        }
        if (!(det.confidence >= 0.0 && std::isfinite(det.confidence))) { // the family is the one with the most
            refuse("detection confidence " + std::to_string(det.confidence) + " must be finite and >= 0");
        }
        previous = det.index;
    }
    result out;
    if (first > d_next_index && first - 1 >= d_next_sweep) {
        sweep(first - 1, out.ended); // spectra skipped since the last call held no detections
    }
    auto det = detections.begin();
    for (int64_t index = first; index < first + n; ++index) {
        for (; det != detections.end() && det->index == index; ++det) {
            join(index, *det, out.opened);
        }
        if (index >= d_next_sweep) {
            sweep(index, out.ended);
        }
    }
    d_next_index = first + n;
    by_start(out.ended);
    return out;
}

void emission_tracker::join(int64_t index, const detection& det, std::vector<emission>& opened)
{
    // The oldest open emission of the detection's family whose reach it overlaps; failing that, the oldest of
    // another family whose latest detection it mostly covers (IoU >= 0.5: the label flickered on one emitter).
    // Across families the reach would let a wide burst over a carrier, or a neighbour a wide detection once
    // touched, take over an emission of another emitter.
    bool nested = false;
    track* other = nullptr;
    for (auto& t : d_open) {
        const emission& em = t.em;
        if (det.bin_start >= em.reach_stop || em.reach_start >= det.bin_stop) {
            continue;
        }
        if (family_of(t) != det.family) {
            const int shared = std::min(det.bin_stop, t.stops.back()) - std::max(det.bin_start, t.starts.back());
            const int spread = std::max(det.bin_stop, t.stops.back()) - std::min(det.bin_start, t.starts.back());
            if (!other && em.last < index && 2 * shared >= spread) {
                other = &t;
            }
            continue;
        }
        nested = nested || em.last == index; // overlaps one this spectrum already joined
        if (em.last < index) {
            extend(t, index, det);
            return;
        }
    }
    if (other) {
        extend(*other, index, det);
        return;
    }
    const bool level = std::isfinite(det.level);
    track t;
    t.em = emission{ d_next_id++,   det.family,   index, index,          det.bin_start, det.bin_stop,
                     det.bin_start, det.bin_stop, 1,     det.confidence, det.evidence, level ? det.level : 0.0,
                     level ? 1 : 0, nested };
    t.starts.push_back(det.bin_start);
    t.stops.push_back(det.bin_stop);
    t.family_confidence.assign(det.family + 1, 0.0);
    t.family_confidence[det.family] = det.confidence;
    opened.push_back(t.em);
    d_open.push_back(std::move(t));
    d_next_sweep = std::min({ d_next_sweep,
                              index + d_max_gap + 1,
                              index + static_cast<int64_t>(d_max_spectra) - 1 });
}

void emission_tracker::extend(track& t, int64_t index, const detection& det)
{
    emission& em = t.em;
    em.last = index;
    em.reach_start = std::min(em.reach_start, det.bin_start);
    em.reach_stop = std::max(em.reach_stop, det.bin_stop);
    em.count += 1;
    if (det.family >= static_cast<int>(t.family_confidence.size())) {
        t.family_confidence.resize(det.family + 1, 0.0);
    }
    t.family_confidence[det.family] += det.confidence;
    em.evidence_sum += det.evidence;
    if (std::isfinite(det.level)) {
        em.level_sum += det.level;
        em.level_count += 1;
    }
    t.starts.push_back(det.bin_start);
    t.stops.push_back(det.bin_stop);
    if (index - em.first + 1 >= d_max_spectra) {
        d_next_sweep = std::min(d_next_sweep, index); // long enough: report it now
    }
}

int emission_tracker::family_of(const track& t)
{
    // The family with the most confidence summed over its detections; on a tie the one it opened with.
    int best = t.em.family;
    for (int f = 0; f < static_cast<int>(t.family_confidence.size()); ++f) {
        if (t.family_confidence[f] > t.family_confidence[best]) {
            best = f;
        }
    }
    return best;
}

void emission_tracker::sweep(int64_t index, std::vector<emission>& ended)
{
    const int64_t oldest_open = index - d_max_gap;
    int64_t next_sweep = std::numeric_limits<int64_t>::max();
    size_t kept = 0; // d_open[0, kept) stay open, in their order
    for (auto& t : d_open) {
        const emission& em = t.em;
        if (em.last >= oldest_open && em.last - em.first + 1 < d_max_spectra) {
            next_sweep = std::min({ next_sweep,
                                    em.last + d_max_gap + 1,
                                    em.first + static_cast<int64_t>(d_max_spectra) - 1 });
            if (&t != &d_open[kept]) {
                d_open[kept] = std::move(t);
            }
            ++kept;
        } else {
            ended.push_back(report(t));
        }
    }
    d_open.resize(kept);
    d_next_sweep = next_sweep;
}

emission emission_tracker::report(track& t) const
{
    // Lower median of the starts and upper median of the stops (statistics.median_low/high).
    emission em = t.em;
    auto lo = t.starts.begin() + (t.starts.size() - 1) / 2;
    std::nth_element(t.starts.begin(), lo, t.starts.end());
    auto hi = t.stops.begin() + t.stops.size() / 2;
    std::nth_element(t.stops.begin(), hi, t.stops.end());
    em.bin_start = *lo;
    em.bin_stop = *hi;
    // its family's summed confidence, over all the detections, is the emission's: a mixed one reads less sure
    em.family = family_of(t);
    em.confidence_sum = t.family_confidence[em.family];
    return em;
}

void emission_tracker::by_start(std::vector<emission>& ems)
{
    std::sort(ems.begin(), ems.end(), [](const emission& a, const emission& b) {
        return a.first != b.first ? a.first < b.first : a.bin_start < b.bin_start;
    });
}

std::vector<emission> emission_tracker::flush()
{
    std::vector<emission> rest;
    for (auto& t : d_open) {
        rest.push_back(report(t));
    }
    d_open.clear();
    d_next_sweep = 0;
    by_start(rest);
    return rest;
}

} // namespace specenc
} // namespace gr
