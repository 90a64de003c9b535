"""Object: an astrophysical object, built by associating sources across source lists.

The running catalogue is three tables: `Object` (position, number of detections,
variability of its most variable filter, new-object flag, and its light curve as the
list of its `Source` rows), `ObjectPhotometry` (per object and filter: running flux
sums, weighted mean flux and magnitude, V and η) and `Association` (one row per source
list associated, with the parameters used). `associate` adds one source list in one
transaction: it reads the objects near the list's footprint, pairs its sources with
them (`targets.imaging.association`: de Ruiter gate, one-to-one nearest first), updates
the matched objects' running sums, starts new objects for the rest, and appends every
source to its object's light curve. Old lists are never redone, and an interrupted
association leaves the catalogue as it was before that list.

A new object is flagged `Object.is_new` (a transient candidate) when earlier source lists
in the same filter covered its position (at least ``new_edge`` inside their footprint)
and were deep enough to have seen it: their 5-sigma limiting magnitude fainter than its
magnitude by at least ``new_margin``. Only clean, significant, isolated detections
qualify: no blending, truncation or saturation flag (`SUSPECT_FLAGS`), S/N of at least
``new_min_snr``, and no earlier object within ``new_isolation`` (a bright star split in
two by a cosmic ray or a bad column is not a transient). Faint detections are excluded
because their first detection is the one noise pushed up (the Eddington bias), and the
point-source limit overstates the depth for faint galaxies. Lists without earlier
coverage start objects that are not new (the first epoch of a field is not a field of
transients).

>>> objects = Object.get(ra=150.1, dec=2.2, radius=5 / 3600)   # doctest: +SKIP
>>> variables = (Object.eta > 2) & (Object.v > 0.1)            # doctest: +SKIP
"""

import numpy as np
from astropy.table import MaskedColumn, Table

from persistence import (DBObject, current_database, insert_links, insert_many, persistent,
                         update_many)

from .imaging.association import FluxSums, PositionSums
from .imaging.association import associate as pair_sources
from .imaging.extraction import AB_MICROJANSKY
from .imaging.skymatch import crossmatch, footprint_contains, separation_arcsec
from .parameters import ProcessParameters
from .process import project_parameters
from .raw import RawScienceFrame
from .sky import SkyIndexed, sky_columns
from .source_list import Source, SourceList

__all__ = ["Association", "AssociationParameters", "Object", "ObjectPhotometry",
           "associate"]

SUSPECT_FLAGS = 0x1F
"""Source flags that keep a detection from being flagged new: sep's blended (1),
truncated (2), overflow or saturated (4), singular (8) and aperture truncated (16)."""


PHOTOMETRY_FLAGS = 0x04 | 0x10 | 0x20 | 0x40
"""Source flags that keep a detection's flux out of its object's photometry and
variability (it stays in the light curve and the position): saturated (4), aperture
truncated by the image edge (16), masked pixels in the aperture (32: a saturated core, a
bad column) and an aperture all masked (64). Such a flux is wrong by an unknown amount,
and one of them made a constant star the most variable object of a night."""


class AssociationParameters(ProcessParameters):
    radius = persistent("Gate on the de Ruiter radius (normalised distance)", float, 5.68)
    max_separation = persistent("Largest separation ever associated [arcsec]", float, 5.0)
    systematic_error = persistent(
        "Position error added in quadrature to each source's [arcsec]: the exposure's "
        "astrometric rms where larger", float, 0.1)
    calibration_error = persistent(
        "Flux calibration error added in quadrature to each source's flux error [mag]: "
        "the exposure's zeropoint error where larger", float, 0.0)
    new_margin = persistent("A new object is flagged if earlier lists' limiting "
                            "magnitude was fainter than its magnitude by this [mag]",
                            float, 1.0)
    new_edge = persistent("... and they covered it at least this far inside [arcsec]",
                          float, 5.0)
    new_min_snr = persistent("... and it was detected at this signal to noise or more",
                             float, 20.0)
    new_isolation = persistent("... and no earlier object is this close [arcsec]", float,
                               2.0)


class Object(SkyIndexed, DBObject):
    """An astrophysical object: its sources across source lists, their mean position,
    and the variability of its light curve."""

    INDEXES = (("zone", "ra"),)
    Parameters = AssociationParameters
    """The association's process parameters (``pars=`` of `get` and `associate`; the
    project sets them under the name ``Object``)."""

    ra = persistent("Weighted mean right ascension [deg]", float, None, mutable=True)
    dec = persistent("Weighted mean declination [deg]", float, None, mutable=True)
    ra_err = persistent("Error of ra, along the great circle [arcsec]", float, None,
                        mutable=True)
    dec_err = persistent("Error of dec [arcsec]", float, None, mutable=True)
    zone = persistent("Declination zone (the sky index; see targets.sky)", int, None,
                      mutable=True)
    cx = persistent("Unit vector x (the sky index)", float, None, mutable=True)
    cy = persistent("Unit vector y (the sky index)", float, None, mutable=True)
    cz = persistent("Unit vector z (the sky index)", float, None, mutable=True)
    ref_ra = persistent("Tangent point of the position sums: the first detection [deg]",
                        float, None)
    ref_dec = persistent("Tangent point of the position sums [deg]", float, None)
    w_xi = persistent("Running sum of 1/ra_err² [arcsec⁻²]", float, 0.0, mutable=True)
    s_xi = persistent("Running sum of east offset / ra_err² [arcsec⁻¹]", float, 0.0,
                      mutable=True)
    w_eta = persistent("Running sum of 1/dec_err² [arcsec⁻²]", float, 0.0, mutable=True)
    s_eta = persistent("Running sum of north offset / dec_err² [arcsec⁻¹]", float, 0.0,
                       mutable=True)
    n_detections = persistent("Number of sources associated", int, 0, mutable=True)
    first_mjd = persistent("MJD of the first detection", float, None)
    last_mjd = persistent("MJD of the latest detection", float, None, mutable=True)
    v = persistent("Coefficient of variation V of the flux, in variability_filter", float,
                   0.0, mutable=True)
    eta = persistent("Reduced chi-squared η of the flux, in variability_filter", float,
                     0.0, mutable=True)
    variability_filter = persistent("The filter with the largest η", str, "",
                                    mutable=True)
    is_new = persistent("First seen where earlier lists were deep enough to have seen "
                        "it: a transient candidate", bool, False)
    new_significance = persistent("Signal to noise of the first detection, if is_new",
                                  float, None)
    sources = persistent("Its sources: the light curve", [Source], [], mutable=True)

    def photometry(self):
        """Its per-filter photometry (`ObjectPhotometry`), by filter."""
        return {p.filter: p for p in ObjectPhotometry.object == self}

    def lightcurve(self):
        """Its sources in time order: an `astropy.table.Table` with ``mjd``, ``filter``,
        ``flux`` and ``flux_err`` (µJy), ``mag``, ``mag_err`` (AB, aperture corrected
        to total), ``snr``, ``flags``, and the ids of the ``source``, its
        ``sourcelist`` and the ``exposure`` it came from. The errors are the
        measurements'; the photometry adds the zeropoint's (`flux_calibration_error`)."""
        link = type(self)._link_tables["sources"]
        ids = [row[0] for row in current_database().execute(
            link.select().with_only_columns(link.c.ref_id)
            .where(link.c.object_id == self.object_id))]
        rows = (Source.object_id.is_in(ids)).columns(
            "sourcelist", "mjd", "filter", "flux", "flux_err", "mag_aper", "mag_aper_err",
            "snr", "flags")
        lists = (SourceList.object_id.is_in(sorted(set(rows["sourcelist"].tolist())))
                 ).columns("exposure")
        exposure_of = dict(zip(lists["object_id"].tolist(), lists["exposure"].tolist()))
        order = np.lexsort((rows["object_id"], rows["mjd"]))
        table = Table({
            "mjd": rows["mjd"][order], "filter": rows["filter"][order].astype(str),
            "flux": rows["flux"][order], "flux_err": rows["flux_err"][order],
            "mag": rows["mag_aper"][order], "mag_err": rows["mag_aper_err"][order],
            "snr": rows["snr"][order], "flags": rows["flags"][order],
            "source": rows["object_id"][order], "sourcelist": rows["sourcelist"][order],
            "exposure": MaskedColumn(
                [exposure_of[s] or 0 for s in rows["sourcelist"][order]], dtype=np.int64,
                mask=[exposure_of[s] is None for s in rows["sourcelist"][order]])})
        for name, unit in (("mjd", "d"), ("flux", "uJy"), ("flux_err", "uJy"),
                           ("mag", "mag"), ("mag_err", "mag")):
            table[name].unit = unit
        table.meta["OBJECT"] = self.object_id
        return table

    @classmethod
    def get(cls, *, ra, dec, radius, pars=None, dpu=None, progress=None):
        """The objects within ``radius`` degrees of ``(ra, dec)``, nearest first, with
        everything they are built from made first: the raw science frames covering
        the position are found, their `SourceList` s got (making calibrated exposures
        and calibrations that are missing or outdated, down to the raw data), and the
        lists not yet associated are associated, in time order.

        Parameters
        ----------
        pars : `dict`, optional
            `AssociationParameters` overriding the defaults.
        dpu : DPU, optional
            Executes the source lists' plans (`targets.SerialDPU` by default).
        progress : callable, optional
            Called with ``(done, total)`` after each raw frame.
        """
        # A minute of arc more, for the telescope's pointing error.
        frames = RawScienceFrame.covering(ra, dec, radius + 1 / 60)
        lists = []
        for done, frame in enumerate(frames, 1):
            lists.append(SourceList.get(raw=frame, dpu=dpu))
            if progress is not None:
                progress(done, len(frames))
        for source_list in sorted(lists, key=lambda s: (s.mjd, s.object_id)):
            associate(source_list, pars=pars)
        found = list(cls.cone(ra, dec, radius))
        distance = separation_arcsec([o.ra for o in found], [o.dec for o in found], ra, dec)
        return [found[k] for k in np.lexsort(([o.object_id for o in found], distance))]


class ObjectPhotometry(DBObject):
    """An object's photometry in one filter: running sums of its fluxes (see
    `targets.imaging.association`), their weighted mean and the variability indices."""

    object = persistent("The object (indexed)", Object, None)
    filter = persistent("Filter name", str, "")
    n = persistent("Number of measurements", int, 0, mutable=True)
    shift = persistent("The first flux, subtracted in the sums [µJy]", float, 0.0)
    s1 = persistent("Σ(f - shift) [µJy]", float, 0.0, mutable=True)
    s2 = persistent("Σ(f - shift)² [µJy²]", float, 0.0, mutable=True)
    sw = persistent("Σw, w = 1/flux_err² [µJy⁻²]", float, 0.0, mutable=True)
    swf = persistent("Σw(f - shift) [µJy⁻¹]", float, 0.0, mutable=True)
    swff = persistent("Σw(f - shift)²", float, 0.0, mutable=True)
    flux = persistent("Weighted mean flux [µJy]", float, None, mutable=True)
    flux_err = persistent("Error of flux [µJy]", float, None, mutable=True)
    mag = persistent("AB magnitude of the weighted mean flux", float, None, mutable=True)
    mag_err = persistent("Error of mag", float, None, mutable=True)
    v = persistent("Coefficient of variation V of the flux (0 for one measurement)",
                   float, 0.0, mutable=True)
    eta = persistent("Reduced chi-squared η of the flux about its weighted mean (0 for "
                     "one measurement)", float, 0.0, mutable=True)


class Association(DBObject):
    """The record that a source list has been associated, and how."""

    sourcelist = persistent("The source list", SourceList, None)
    parameters = persistent("The association parameters used", AssociationParameters, None)
    n_sources = persistent("Sources associated", int, 0)
    n_matched = persistent("Sources that joined an existing object", int, 0)
    n_new = persistent("Objects started", int, 0)
    n_flagged_new = persistent("Objects started and flagged new", int, 0)


def associate(source_list, *, pars=None):
    """Add ``source_list`` to the running catalogue, in one transaction; a list
    associated before is left alone.

    Returns
    -------
    record : `Association`
        What was done (the earlier record for a list associated before).
    """
    pars = Object.Parameters.in_force({**project_parameters("Object"), **(pars or {})})
    db = current_database()
    with db.named_lock("Object association"):
        done = (Association.sourcelist == source_list).first()
        if done is not None:
            return done
        sources = _sources(source_list, pars)
        objects = _objects_near(source_list, pars)
        matched, _ = pair_sources(objects, sources, radius=pars.radius,
                                  max_separation=pars.max_separation)
        old = matched >= 0
        flagged = _flag_new(source_list, sources, ~old, objects, pars)
        photometry = (ObjectPhotometry.object.is_in(objects["object_id"][matched[old]].tolist())
                      ).columns("object", "filter", "v", "eta", *_SUMS)
        with db.transaction() as connection:
            object_ids = np.empty(len(matched), np.int64)
            object_ids[old] = objects["object_id"][matched[old]]
            object_ids[~old] = _start_objects(source_list, sources, ~old, flagged,
                                              connection)
            _update_objects(source_list, sources, old, objects, matched[old], photometry,
                            connection)
            positions = np.zeros(len(matched), np.int64)
            positions[old] = objects["n_detections"][matched[old]]
            insert_links(Object, "sources", object_ids, positions, sources["object_id"],
                         connection=connection)
            parameters = insert_many(AssociationParameters, {
                name: [value] for name, value in pars.as_dict().items()},
                connection=connection)
            record_id = insert_many(Association, {
                "sourcelist": [source_list.object_id], "parameters": parameters,
                "n_sources": [len(matched)], "n_matched": [int(old.sum())],
                "n_new": [int((~old).sum())], "n_flagged_new": [int(flagged.sum())]},
                connection=connection)[0]
    return Association.load(int(record_id))


def _sources(source_list, pars):
    """The list's sources with usable positions, by number, with the errors the
    association uses: position errors with the systematic error, flux errors with the
    calibration's (`flux_calibration_error`)."""
    rows = source_list.sources().columns("ra", "dec", "ra_err", "dec_err", "flux",
                                         "flux_err", "mag_aper", "snr", "flags")
    exposure = source_list.exposure
    systematic = max(pars.systematic_error, (exposure.astrometric_rms or 0.0)
                     if exposure is not None else 0.0)
    usable = np.isfinite(rows["ra"]) & np.isfinite(rows["dec"])
    rows = {name: values[usable] for name, values in rows.items()}
    for axis in ("ra_err", "dec_err"):
        stat = np.nan_to_num(rows[axis], nan=0.0)
        rows[axis] = np.sqrt(stat ** 2 + systematic ** 2)
    rows["flux_err"] = flux_calibration_error(
        rows["flux"], rows["flux_err"],
        max(pars.calibration_error, (exposure.zeropoint_error or 0.0)
            if exposure is not None else 0.0))
    rows["measured"] = (np.isfinite(rows["flux"]) & (rows["flux_err"] > 0)
                        & ((rows["flags"] & PHOTOMETRY_FLAGS) == 0))
    return rows


def flux_calibration_error(flux, flux_err, zeropoint_error):
    """The error of a calibrated flux: its measurement error and the zeropoint's error
    (mag) in quadrature. Without the zeropoint's, every bright constant star would look
    variable: its exposures' zeropoints scatter by far more than its photon noise."""
    return np.hypot(flux_err, 0.4 * np.log(10) * zeropoint_error * np.abs(flux))


def _objects_near(source_list, pars):
    """The objects that any source of the list could pair with, by object id."""
    corners = np.reshape(source_list.footprint, (-1, 2))
    radius = (np.max(separation_arcsec(corners[:, 0], corners[:, 1], source_list.ra,
                                       source_list.dec)) + pars.max_separation) / 3600.0
    return Object.cone(source_list.ra, source_list.dec, radius).order_by("object_id").columns(
        "ra", "dec", "ra_err", "dec_err", "ref_ra", "ref_dec", "w_xi", "s_xi", "w_eta",
        "s_eta", "n_detections")


_SUMS = ("n", "shift", "s1", "s2", "sw", "swf", "swff")


def _update_objects(source_list, sources, old, objects, rows, photometry, connection):
    """Add the matched sources to their objects: position sums, photometry in the
    list's filter (rows started for objects new to it), detection count, and the
    variability of each object's filter with the largest η."""
    mine = {name: values[old] for name, values in sources.items()}
    ids = objects["object_id"][rows]
    sums = PositionSums(*(objects[k][rows] for k in ("ref_ra", "ref_dec", "w_xi", "s_xi",
                                                     "w_eta", "s_eta")))
    sums = sums.add(mine["ra"], mine["dec"], mine["ra_err"], mine["dec_err"])
    ra, dec, ra_err, dec_err = sums.position()

    # This filter's sums, where the object has them.
    here = photometry["filter"] == source_list.filter
    row_of = dict(zip(photometry["object"][here].tolist(), np.flatnonzero(here).tolist()))
    have = np.array([i in row_of for i in ids.tolist()], bool) & mine["measured"]
    start = ~np.isin(ids, photometry["object"][here]) & mine["measured"]
    index = np.array([row_of[i] for i in ids[have].tolist()], np.int64)
    v, eta = np.zeros(ids.size), np.zeros(ids.size)
    if have.any():
        flux_sums = FluxSums(*(photometry[k][index] for k in _SUMS)).add(
            mine["flux"][have], mine["flux_err"][have])
        statistics = _photometry_statistics(flux_sums)
        v[have], eta[have] = statistics["v"], statistics["eta"]
        update_many(ObjectPhotometry, photometry["object_id"][index],
                    {k: getattr(flux_sums, k) for k in _SUMS if k != "shift"} | statistics,
                    connection=connection)
    if start.any():
        _insert_photometry(ids[start], source_list.filter, mine["flux"][start],
                           mine["flux_err"][start], connection)

    # Each object's most variable filter, with this one's indices updated just now.
    by_filter = {}
    for i, name, e, w in zip(photometry["object"].tolist(), photometry["filter"].tolist(),
                             photometry["eta"].tolist(), photometry["v"].tolist()):
        by_filter.setdefault(i, {})[name] = (e, w)
    for i, e, w, updated in zip(ids.tolist(), eta.tolist(), v.tolist(),
                                (have | start).tolist()):
        if updated:
            by_filter.setdefault(i, {})[source_list.filter] = (e, w)
    chosen = [max(((e, name, w) for name, (e, w) in by_filter.get(i, {}).items()),
                  default=(0.0, "", 0.0)) for i in ids.tolist()]
    update_many(Object, ids, {
        "ra": ra, "dec": dec, "ra_err": ra_err, "dec_err": dec_err, **sky_columns(ra, dec),
        "w_xi": sums.w_xi, "s_xi": sums.s_xi, "w_eta": sums.w_eta, "s_eta": sums.s_eta,
        "n_detections": objects["n_detections"][rows] + 1,
        "last_mjd": np.full(ids.size, source_list.mjd),
        "eta": [c[0] for c in chosen], "variability_filter": [c[1] for c in chosen],
        "v": [c[2] for c in chosen]}, connection=connection)


def _start_objects(source_list, sources, new, flagged, connection):
    """Insert an object (and its photometry) for each new source; return their ids."""
    mine = {name: values[new] for name, values in sources.items()}
    n = int(new.sum())
    sums = PositionSums.start(mine["ra"], mine["dec"], mine["ra_err"], mine["dec_err"])
    ids = insert_many(Object, {
        "ra": mine["ra"], "dec": mine["dec"], "ra_err": mine["ra_err"],
        "dec_err": mine["dec_err"], **sky_columns(mine["ra"], mine["dec"]),
        "ref_ra": sums.ref_ra, "ref_dec": sums.ref_dec, "w_xi": sums.w_xi,
        "s_xi": sums.s_xi, "w_eta": sums.w_eta, "s_eta": sums.s_eta,
        "n_detections": np.ones(n, np.int64), "first_mjd": np.full(n, source_list.mjd),
        "last_mjd": np.full(n, source_list.mjd), "is_new": flagged,
        "new_significance": np.where(flagged, mine["snr"], np.nan),
        "variability_filter": np.where(mine["measured"], source_list.filter, ""),
    }, connection=connection)
    measured = mine["measured"]
    _insert_photometry(ids[measured], source_list.filter, mine["flux"][measured],
                       mine["flux_err"][measured], connection)
    return ids


def _insert_photometry(object_ids, filter_name, flux, flux_err, connection):
    """Start the photometry of ``object_ids`` in ``filter_name`` with one measurement."""
    if object_ids.size == 0:
        return
    sums = FluxSums.start(flux, flux_err)
    insert_many(ObjectPhotometry, {"object": object_ids,
                                   "filter": [filter_name] * object_ids.size,
                                   **{k: getattr(sums, k) for k in _SUMS},
                                   **_photometry_statistics(sums)}, connection=connection)


def _photometry_statistics(sums):
    mean, mean_err, v, eta = sums.statistics()
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = np.where(mean > 0, AB_MICROJANSKY - 2.5 * np.log10(mean), np.nan)
        mag_err = np.where(mean > 0, 2.5 / np.log(10) * mean_err / mean, np.nan)
    return {"flux": mean, "flux_err": mean_err, "mag": mag, "mag_err": mag_err, "v": v,
            "eta": eta}


def _flag_new(source_list, sources, new, objects, pars):
    """Which of the new sources (``new``) start objects flagged new: clean,
    significant, isolated, and where earlier lists were deep enough to have seen them."""
    ra, dec = sources["ra"][new], sources["dec"][new]
    crowded = np.zeros(ra.size, bool)
    crowded[crossmatch(ra, dec, objects["ra"], objects["dec"], pars.new_isolation)[0]] = True
    candidate = (~crowded & (sources["snr"][new] >= pars.new_min_snr)
                 & ((sources["flags"][new] & SUSPECT_FLAGS) == 0))
    flagged = np.zeros(ra.size, bool)
    if candidate.any():
        flagged[candidate] = _unseen_before(source_list, ra[candidate], dec[candidate],
                                            sources["mag_aper"][new][candidate], pars)
    return flagged


def _unseen_before(source_list, ra, dec, mag, pars):
    """Which positions earlier lists in the same filter covered, deep enough to have
    detected a source of magnitude ``mag`` there."""
    unseen = np.zeros(ra.size, bool)
    earlier = ((SourceList.filter == source_list.filter) & (SourceList.mjd < source_list.mjd)
               & (SourceList.dec >= source_list.dec - 1.0)
               & (SourceList.dec <= source_list.dec + 1.0)).columns("footprint",
                                                                    "limiting_mag")
    for footprint, limit in zip(earlier["footprint"], earlier["limiting_mag"]):
        if not footprint or not np.isfinite(limit):
            continue
        deep = np.nan_to_num(mag, nan=np.inf) <= limit - pars.new_margin
        unseen |= deep & footprint_contains(np.reshape(footprint, (-1, 2)), ra, dec,
                                            -pars.new_edge / 3600.0)
    return unseen
