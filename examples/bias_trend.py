"""Master bias level and read noise per chip over the nights.

Run it after ``awe demo --nights 3``: ``python examples/bias_trend.py`` writes
``bias_trend.png``.
"""

import matplotlib.pyplot as plt

import awe
from targets import Chip, MasterBias

awe.connect()
figure, (level, noise) = plt.subplots(2, 1, sharex=True, figsize=(7, 6))
for chip in Chip.all().order_by("name"):
    biases = (MasterBias.chip == chip).order_by("timestamp_start")
    nights = [b.timestamp_start for b in biases]
    level.plot(nights, [b.level for b in biases], "o-", label=chip.name)
    noise.plot(nights, [b.read_noise for b in biases], "o-", label=chip.name)
level.set_ylabel("bias level [ADU]")
noise.set_ylabel("read noise [e-]")
level.legend()
figure.autofmt_xdate()
figure.savefig("bias_trend.png", dpi=100)
print(f"bias_trend.png: {MasterBias.all().count()} master biases")
