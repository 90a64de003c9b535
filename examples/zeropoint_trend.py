"""The photometric zeropoint of every calibrated exposure, per night and filter.

Run it after ``awe demo --nights 3``: ``python examples/zeropoint_trend.py`` writes
``zeropoint_trend.png``.
"""

import matplotlib.pyplot as plt

import awe
from targets import CalibratedExposure

awe.connect()
for band in sorted({f.filter for f in CalibratedExposure.all()}):
    frames = (CalibratedExposure.filter == band).order_by("date_obs")
    plt.errorbar([f.date_obs for f in frames], [f.zeropoint for f in frames],
                 [f.zeropoint_error for f in frames], fmt="o", label=band)
plt.ylabel("zeropoint [mag]")
plt.legend(title="filter")
plt.gcf().autofmt_xdate()
plt.savefig("zeropoint_trend.png", dpi=100)
print(f"zeropoint_trend.png: {CalibratedExposure.all().count()} exposures")
