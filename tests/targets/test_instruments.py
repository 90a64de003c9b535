"""Instruments as data files: loading, classifying frames, nights, and clear errors."""

import datetime
import os
import shutil

import ccdproc
import numpy as np
import pytest
from astropy.io import fits

from targets import InstrumentError, TargetError
from targets.instruments import (FrameInfo, Instrument, builtin_instruments,
                                 instrument_for, read_frames)
from targets.simulator import simulate

A8280271 = os.path.join(os.path.dirname(ccdproc.__file__), "tests", "data", "a8280271.fits")

MY_CAMERA = """
name: MYCAM
match:
  - {TELESCOP: "T80*", INSTRUME: "mycam"}
site: {latitude: 40.04, longitude: -1.02, height: 1957, timezone: Europe/Madrid}
keywords:
  obstype: OBSTYPE
  date_obs: DATE-OBS
  exptime: EXPTIME
  filter: FILTER
required: {obstype: all, date_obs: all, exptime: all, filter: [science]}
obstypes: {bias: [zero], science: [sci]}
detectors:
  extensions: image
  keywords: {name: EXTNAME, gain: GAIN}
  default: {gain: 1.3, read_noise: 3.5, saturation: 60000,
            overscan: "[1:8,1:20]", data: "[9:40,1:20]"}
filters:
  rSDSS: {aliases: ["r sdss"]}
"""


def _mef(header=None, chips=2, shape=(20, 40), ext_header=None):
    primary = fits.PrimaryHDU(header=fits.Header(header or {}))
    images = []
    for k in range(chips):
        h = fits.Header({"EXTNAME": f"amp{k + 1}", **(ext_header or {})})
        images.append(fits.ImageHDU(np.zeros(shape, np.uint16), header=h))
    return fits.HDUList([primary] + images)


def test_builtins_load():
    assert builtin_instruments() == ["generic", "simcam"]
    simcam = Instrument.load("simcam")
    assert simcam.name == "SIMCAM"
    assert simcam.site["timezone"] == "America/Santiago"
    assert {"g", "r"} <= set(simcam.filters)
    assert Instrument.load("GENERIC").name == "GENERIC"


def test_user_file_loads_and_reads_frames(tmp_path):
    path = tmp_path / "mycam.yaml"
    path.write_text(MY_CAMERA)
    camera = Instrument.load(path)
    hdul = _mef({"TELESCOP": "T80-South", "INSTRUME": "MyCam", "OBSTYPE": "sci",
                 "DATE-OBS": "2024-07-01T22:00:00", "EXPTIME": 30.0, "FILTER": "r SDSS"},
                ext_header={"GAIN": 1.1})
    assert instrument_for(hdul, "x.fits", instruments=[str(path)]).name == "MYCAM"
    frames = camera.frames(hdul, "x.fits")
    assert [f.detector for f in frames] == ["amp1", "amp2"]
    assert [f.extension for f in frames] == [1, 2]
    first = frames[0]
    assert isinstance(first, FrameInfo)
    assert first.obstype == "science" and first.filter == "rSDSS"
    assert first.gain == 1.1  # header wins
    assert first.read_noise == 3.5 and first.saturation == 60000  # the file's defaults
    assert first.overscan == (slice(0, 20), slice(0, 8))
    assert first.data == (slice(0, 20), slice(8, 40))
    assert first.date_obs == datetime.datetime(2024, 7, 1, 22, 0)
    assert first.night == datetime.date(2024, 7, 1)  # 00:00 local (CEST) on 2 July
    assert first.airmass is None and first.ra is None  # not required, not present


@pytest.mark.parametrize("text, message, keyword", [
    ("name: X\nkeywords: {obstype: IMAGETYP}\n", "key 'detectors' is missing", "detectors"),
    ("name: X\nkeywords: {obstype: IMAGETYP, colour: C}\ndetectors: {}\n",
     "'keywords.colour' is not one of", "keywords.colour"),
    ("name: X\nkeywords: {obstype: IMAGETYP}\ndetectors: {}\nsite: {timezone: Mars/Olympus}\n",
     "'site.timezone' 'Mars/Olympus' is not an IANA time zone", "site.timezone"),
    ("name: X\nkeywords: {obstype: IMAGETYP}\ndetectors: {default: {data: '[0:5,1:5]'}}\n",
     "'detectors.default.data'", "detectors.default.data"),
    ("name: [unclosed\n", "is not valid YAML", None),
])
def test_bad_instrument_file_fails(tmp_path, text, message, keyword):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InstrumentError, match=message) as info:
        Instrument.load(path)
    assert str(path) in str(info.value)
    assert "docstring of targets.instruments" in str(info.value)
    assert info.value.keyword == keyword and info.value.filename == str(path)
    assert isinstance(info.value, TargetError) and isinstance(info.value, ValueError)


def test_unknown_instrument_fails():
    with pytest.raises(InstrumentError, match="neither a built-in instrument"):
        Instrument.load("hubble")


def test_generic_reads_ccdproc_frame():
    instrument, (frame,) = read_frames(A8280271)
    assert instrument.name == "GENERIC"
    assert frame.obstype == "science"
    assert frame.date_obs == datetime.datetime(2013, 7, 13, 0, 57, 33)  # DATE-OBS + UT
    assert frame.exptime == 150.04
    assert frame.airmass == 1.176  # from SECZ
    assert frame.ra == pytest.approx(331.0334, abs=2e-4)  # RA '22:04:08' hours
    assert frame.dec == pytest.approx(-0.9253, abs=2e-4)
    assert frame.filter == "48" and frame.object == "rf0420"
    assert frame.gain == 1.9 and frame.read_noise == 5.0 and frame.saturation == 65535
    assert frame.overscan == (slice(0, 520), slice(3, 13))  # BIASSEC [4:13,1:520]
    assert frame.data == (slice(0, 520), slice(16, 528))  # TRIMSEC [17:528,1:520]
    assert frame.shape == (520, 536)
    assert frame.night == datetime.date(2013, 7, 12)  # no site: noon to noon UTC


def test_simcam_frames_are_classified(tmp_path):
    sim = simulate(tmp_path, chips=2, size=(64, 64), fields=1, dithers=1, biases=1, flats=1,
                   filters=("r",), seed=2)
    seen = {}
    for path in sim.raw:
        instrument, frames = read_frames(path)
        assert instrument.name == "SIMCAM"
        assert [f.detector for f in frames] == ["ccd1", "ccd2"]
        for f in frames:
            assert f.overscan == (slice(0, 64), slice(64, 96))
            assert f.data == (slice(0, 64), slice(0, 64))
            assert 1.5 <= f.gain <= 2.5 and 4 <= f.read_noise <= 6
            assert f.night == datetime.date(2024, 3, 11)
        seen[frames[0].obstype] = frames[0]
    assert set(seen) == {"bias", "dark", "flat", "science"}
    science = seen["science"]
    assert science.filter == "r" and science.object == "SIMF01"
    assert 1.0 <= science.airmass < 2.0 and science.exptime == 120.0
    start, end = Instrument.load("simcam").night_window(science.night)
    assert start <= science.date_obs < end


def test_night_runs_noon_to_noon_local_time():
    simcam = Instrument.load("simcam")  # America/Santiago: UTC-3 in summer, UTC-4 in winter
    utc = datetime.datetime
    assert simcam.night(utc(2024, 3, 12, 14, 59)) == datetime.date(2024, 3, 11)  # 11:59
    assert simcam.night(utc(2024, 3, 12, 15, 0)) == datetime.date(2024, 3, 12)   # noon
    assert simcam.night_window(datetime.date(2024, 3, 11)) == (
        utc(2024, 3, 11, 15), utc(2024, 3, 12, 15))
    # Chile left daylight saving time on 7 April 2024: that night lasts 25 hours
    start, end = simcam.night_window(datetime.date(2024, 4, 6))
    assert (start, end) == (utc(2024, 4, 6, 15), utc(2024, 4, 7, 16))
    assert simcam.night(utc(2024, 4, 7, 15, 30)) == datetime.date(2024, 4, 6)  # 11:30 local
    assert simcam.night_window(datetime.date(2024, 6, 1))[0] == utc(2024, 6, 1, 16)
    aware = datetime.datetime(2024, 3, 12, 1, tzinfo=datetime.timezone.utc)
    assert simcam.night(aware) == datetime.date(2024, 3, 11)


def test_generic_night_uses_header_longitude():
    generic = Instrument.load("generic")
    header = fits.Header({"SITELONG": 20.81})  # SAAO: local mean time UTC+1:23
    assert generic.night(datetime.datetime(2013, 7, 13, 10, 40), header) == datetime.date(
        2013, 7, 13)
    assert generic.night(datetime.datetime(2013, 7, 13, 10, 40)) == datetime.date(2013, 7, 12)


def test_missing_keyword_fails(tmp_path):
    path = tmp_path / "frame.fits"
    with fits.open(A8280271) as hdul:
        del hdul[0].header["EXPTIME"]
        hdul.writeto(path)
    with pytest.raises(InstrumentError) as info:
        read_frames(path)
    message = str(info.value)
    assert f"{path}[0]" in message
    assert "keyword EXPTIME or EXPOSURE" in message and "is missing" in message
    assert "add it to the header, or write an instrument file" in message
    assert (info.value.filename, info.value.extension, info.value.keyword) == (
        str(path), 0, "EXPTIME")


def test_date_without_time_needs_time_keyword(tmp_path):
    path = tmp_path / "frame.fits"
    with fits.open(A8280271) as hdul:
        del hdul[0].header["UT"]
        hdul.writeto(path)
    with pytest.raises(InstrumentError, match=r"keyword TIME-OBS or UT .* is missing "
                                              r"\(the time of day, since DATE-OBS = "
                                              r"'2013-07-13' holds a date only\)"):
        read_frames(path)


def test_unknown_observation_type_fails():
    hdul = _mef({"IMAGETYP": "focus", "DATE-OBS": "2024-01-01T00:00:00", "EXPTIME": 1.0},
                chips=0)
    hdul[0] = fits.PrimaryHDU(np.zeros((4, 4), np.uint16), header=hdul[0].header)
    with pytest.raises(InstrumentError, match="IMAGETYP = 'focus' is not an observation "
                                              "type GENERIC knows; add it under 'obstypes'"):
        instrument_for(hdul).frames(hdul, "focus.fits")


def test_unclaimed_mosaic_fails():
    hdul = _mef({"INSTRUME": "WFI", "TELESCOP": "MPG/ESO-2.2"}, chips=8)
    with pytest.raises(InstrumentError, match="no instrument file claims this file of 8 "
                                              "images .*INSTRUME = 'WFI'"):
        instrument_for(hdul, "wfi.fits")


def test_not_fits_and_truncated_fail(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("observing log\n" * 300)
    with pytest.raises(InstrumentError, match="not a readable FITS file"):
        read_frames(text)
    truncated = tmp_path / "truncated.fits"
    shutil.copy(A8280271, truncated)
    with open(truncated, "r+b") as stream:
        stream.truncate(os.path.getsize(A8280271) // 2)
    with pytest.raises(InstrumentError, match=r"truncated.fits\[0\]: the file is truncated"):
        read_frames(truncated)
    with pytest.raises(InstrumentError, match="no such file"):
        read_frames(tmp_path / "missing.fits")
