"""The light curve of the most variable object: the one with the largest reduced
chi-squared (eta) among those detected at least four times.

Run it after ``awe demo --nights 3``: ``python examples/lightcurve.py`` writes
``lightcurve.png``.
"""

import matplotlib.pyplot as plt

import awe
from targets import Object

awe.connect()
star = (Object.n_detections >= 4).order_by("eta", descending=True).first()
curve = star.lightcurve()
for band in sorted(set(curve["filter"])):
    points = curve[curve["filter"] == band]
    plt.errorbar(points["mjd"], points["mag"], points["mag_err"], fmt="o", label=band)
plt.gca().invert_yaxis()
plt.xlabel("MJD")
plt.ylabel("AB magnitude")
plt.title(f"Object {star.object_id}: eta {star.eta:.1f}, V {star.v:.2f}")
plt.legend(title="filter")
plt.savefig("lightcurve.png", dpi=100)
print(f"lightcurve.png: Object {star.object_id}, {len(curve)} detections")
