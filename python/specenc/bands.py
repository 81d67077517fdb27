"""Band plan: which band a centre frequency belongs to.

Dynamic RoPE learns one theta per band, and the generator uses the same table to decide which
emitters are expected where. Ranges are inclusive of the lower edge, exclusive of the upper, in Hz.
"""

# Index order is the model's band-embedding order; never reorder, only append.
BANDS = ("ism", "cellular", "gnss", "aero", "other")
BAND_INDEX = {name: i for i, name in enumerate(BANDS)}

# (band, lower Hz, upper Hz). First match wins, so narrower allocations come first.
BAND_PLAN = (
    ("gnss", 1_164e6, 1_300e6),  # L5/E5, L2, E6
    ("gnss", 1_559e6, 1_610e6),  # L1/E1/B1, GLONASS G1
    ("aero", 108e6, 137e6),  # VOR/ILS and VHF air band
    ("aero", 960e6, 1_215e6),  # DME, SSR/ADS-B at 1030/1090 MHz
    ("ism", 26.957e6, 27.283e6),
    ("ism", 40.66e6, 40.70e6),
    ("ism", 433.05e6, 434.79e6),
    ("ism", 863e6, 870e6),  # SRD 868
    ("ism", 902e6, 928e6),
    ("ism", 2_400e6, 2_500e6),
    ("ism", 5_725e6, 5_875e6),
    ("cellular", 698e6, 960e6),  # LTE/GSM 700-900
    ("cellular", 1_710e6, 2_200e6),  # DCS/PCS/AWS/UMTS
    ("cellular", 2_300e6, 2_400e6),
    ("cellular", 2_500e6, 2_690e6),
    ("cellular", 3_300e6, 3_800e6),  # n77/n78
)


def band_for_frequency(freq_hz):
    """Name of the band holding `freq_hz`; "other" when none does or the frequency is unknown."""
    if freq_hz is None:
        return "other"
    for name, lower, upper in BAND_PLAN:
        if lower <= freq_hz < upper:
            return name
    return "other"
