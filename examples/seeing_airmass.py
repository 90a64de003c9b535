"""Seeing against airmass, per filter, for every calibrated exposure.

Run it after ``awe demo --nights 3``: ``python examples/seeing_airmass.py`` writes
``seeing_airmass.png``.
"""

import matplotlib.pyplot as plt

import awe
from targets import CalibratedExposure

awe.connect()
for band in sorted({f.filter for f in CalibratedExposure.all()}):
    frames = CalibratedExposure.filter == band
    plt.plot([f.airmass for f in frames], [f.seeing for f in frames], "o", label=band)
plt.xlabel("airmass")
plt.ylabel("seeing [arcsec]")
plt.legend(title="filter")
plt.savefig("seeing_airmass.png", dpi=100)
print(f"seeing_airmass.png: {CalibratedExposure.all().count()} exposures")
