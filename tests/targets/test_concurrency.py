"""Two processes asking for the same target at once produce one product."""

import datetime
import subprocess
import sys
from pathlib import Path

import dataserver
import targets
from tests.targets.engine_models import ToyBias, ToySensor, ingest

ROOT = Path(__file__).resolve().parents[2]

ASK = """
import datetime, sys
import dataserver, persistence, targets
from tests.targets.engine_models import ToyBias, ToySensor
url, files, chip_id, when = sys.argv[1:]
persistence.connect(url)
targets.set_data_client(dataserver.Client(files))
ToyBias.make_seconds = 1.0  # long enough for the other process to ask meanwhile
bias = ToyBias.get(chip=ToySensor.load(int(chip_id)),
                   time=datetime.datetime.fromisoformat(when))
print(bias.object_id)
"""


def test_two_processes_asking_at_once_get_one_product(db, tmp_path):
    files = tmp_path / "files"
    targets.set_data_client(dataserver.Client(files))
    try:
        chip = ToySensor(name="ccd50")
        chip.commit()
        night = datetime.datetime(2024, 3, 17)
        for i in range(3):
            ingest(tmp_path, "bias", chip, night + datetime.timedelta(minutes=i), 100 + i)
    finally:
        targets.set_data_client(None)
    url = db.url.render_as_string(hide_password=False)
    askers = [subprocess.Popen(
        [sys.executable, "-c", ASK, url, str(files), str(chip.object_id), night.isoformat()],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    answers = [asker.communicate(timeout=120) for asker in askers]
    for asker, (out, err) in zip(askers, answers):
        assert asker.returncode == 0, err
    ids = {int(out) for out, _ in answers}
    assert len(ids) == 1, f"two products were made: {ids}"
    assert [b.object_id for b in ToyBias.all()] == list(ids)
