"""The Astro-WISE classic: the sky noise of the calibrated exposures of one chip and
filter against the noise of the master flat each was flat-fielded with.

Run it after ``awe demo --nights 3`` (or on any reduced data): ``python
examples/flat_noise.py [CHIP] [FILTER]`` writes ``flat_noise.png``.
"""

import sys

import matplotlib.pyplot as plt

import awe
from targets import CalibratedExposure

awe.connect()
chip = sys.argv[1] if len(sys.argv) > 1 else "ccd1"
band = sys.argv[2] if len(sys.argv) > 2 else "r"
frames = (CalibratedExposure.chip.name == chip) & (CalibratedExposure.filter == band)
x = [f.flat.stdev * 100 for f in frames]
y = [f.background_rms for f in frames]
plt.plot(x, y, "o")
plt.xlabel("master flat noise [%]")
plt.ylabel("sky noise of the calibrated exposure [ADU]")
plt.title(f"{chip}, filter {band}: {len(x)} exposures")
plt.savefig("flat_noise.png", dpi=100)
print(f"flat_noise.png: {len(x)} exposures of {chip} in {band}")
