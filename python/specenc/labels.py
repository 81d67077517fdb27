"""Label vocabularies shared by the generator, the model, the blocks and the files they write.

These names are public surfaces (SigMF `core:label`, stream tag values, alert `kind`): README documents them.
"""

# Spectral emission families a power spectrum can tell apart (phase is gone, so PSK vs QAM is not
# a PSD question). Index order is the model's class order; never reorder, only append.
FAMILIES = (
    "noise",
    "tone",
    "am",
    "fm",
    "fsk",
    "ask",
    "single_carrier",
    "ofdm",
    "chirp",
)

# "Ghost" anomaly kinds injected by the generator and named in alerts.
ANOMALY_KINDS = (
    "frequency_shift",
    "band_erasure",
    "spoofing",
    "stealth",
    "hopping",
    "jamming",
)

FAMILY_INDEX = {name: i for i, name in enumerate(FAMILIES)}
ANOMALY_INDEX = {name: i for i, name in enumerate(ANOMALY_KINDS)}
