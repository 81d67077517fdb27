/* -*- c++ -*- */
/*
 * Copyright 2026 gr-specenc authors.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_SPECENC_EMISSION_TRACKER_H
#define INCLUDED_SPECENC_EMISSION_TRACKER_H

#include <gnuradio/specenc/api.h>
#include <cstdint>
#include <vector>

namespace gr {
namespace specenc {

//! One detection: a run of bins [bin_start, bin_stop) of one family in spectrum \p index.
struct SPECENC_API detection {
    int64_t index;
    int family; //!< the caller's family code, 0 .. emission_tracker::MAX_FAMILY
    int bin_start;
    int bin_stop; //!< exclusive
    double confidence;
    double evidence; //!< the caller's measure of how clearly it stands out; summed per emission
    double level;    //!< the caller's level (e.g. dB over the floor); averaged per emission where finite
};

//! An emission as emission_tracker reports it.
struct SPECENC_API emission {
    int64_t id; //!< unique per tracker, in the order emissions open
    int family; //!< at report: the family with the most confidence summed over its detections
    int64_t first; //!< spectrum index of the first detection
    int64_t last;  //!< spectrum index of the latest detection
    int bin_start; //!< lower median of the detections' first bins
    int bin_stop;  //!< upper median of the detections' end bins (exclusive)
    int reach_start; //!< lowest bin any detection reached
    int reach_stop;  //!< highest end bin any detection reached (exclusive)
    int count;       //!< detections joined
    double confidence_sum; //!< at report: the summed confidence of its detections of that family
    double evidence_sum;
    double level_sum; //!< sum of the finite levels of its detections
    int level_count;  //!< how many of its detections had a finite level
    //! opened by a detection inside the reach of an emission of its family that this spectrum had
    //! already joined: a piece of one cut in two, or a neighbour under a wide one
    bool nested;
};

/*!
 * \brief Joins per-spectrum detections into emissions (the spectrum_encoder block's `detections`).
 * \ingroup specenc
 *
 * \details
 * An emission is a run of detections whose bins overlap, in spectra at most \p max_gap apart; its
 * family is the one with the most confidence summed over its detections (on a tie, the first's). A
 * detection joins the oldest open emission of its family not yet joined in this spectrum whose reach
 * (every bin an earlier detection covered) it overlaps; failing that, the oldest of another family
 * whose latest detection it mostly covers (IoU >= 0.5: the model's label flickered on one emitter);
 * otherwise it opens one (marked nested when it overlaps one of its family that this spectrum
 * already joined). An emission
 * ends once \p max_gap spectra pass without it, or when it has lasted \p max_spectra spectra (a
 * long one is then reported in pieces). Its reported edges are the median detection's, so a few
 * wider detections (skirts, a neighbour) do not widen it.
 *
 * Spectra must come in order: every spectrum index is visited, with or without detections, so
 * emissions end on time. Tuning is the caller's business (flush() before a retune).
 */
class SPECENC_API emission_tracker
{
public:
    //! the largest family code (an emission keeps a confidence sum per code up to its own)
    static constexpr int MAX_FAMILY = 1023;

    //! \throws std::invalid_argument on max_gap < 0 or max_spectra < 1.
    emission_tracker(int max_gap = 8, int max_spectra = 1024);

    struct result {
        std::vector<emission> opened; //!< emissions opened in these spectra (at their first)
        std::vector<emission> ended;  //!< emissions that ended, by (first, bin_start)
    };

    /*!
     * \brief Visit spectra \p first .. \p first + \p n - 1 with their detections.
     *
     * Spectra skipped since the previous call count as visited without detections.
     *
     * \param detections sorted by index, each in [first, first + n).
     * \throws std::invalid_argument when spectra go backwards, a detection lies outside the
     *         spectra or out of order, has bin_start < 0, bin_stop <= bin_start, a family outside
     *         0 .. MAX_FAMILY or a confidence that is negative, infinite or NaN.
     */
    result update(int64_t first, int64_t n, const std::vector<detection>& detections);

    //! Every emission still open (end of stream, retune), by (first, bin_start); the tracker empties.
    std::vector<emission> flush();

private:
    struct track {
        emission em;
        std::vector<int> starts; // each detection's first bin
        std::vector<int> stops;  // each detection's end bin
        std::vector<double> family_confidence; // confidence summed per family code
    };

    void join(int64_t index, const detection& det, std::vector<emission>& opened);
    void sweep(int64_t index, std::vector<emission>& ended);
    emission report(track& t) const;
    void extend(track& t, int64_t index, const detection& det);
    static int family_of(const track& t);
    static void by_start(std::vector<emission>& ems);

    int d_max_gap;
    int d_max_spectra;
    std::vector<track> d_open; // oldest first
    int64_t d_next_id = 0;
    int64_t d_next_index = 0;
    // No open emission can end before this index (extending one only delays its end), so most
    // spectra skip the sweep over every open emission.
    int64_t d_next_sweep = 0;
};

} // namespace specenc
} // namespace gr

#endif /* INCLUDED_SPECENC_EMISSION_TRACKER_H */
