"""Pure imaging algorithms: numpy arrays and astropy objects in, the same out.

Nothing here touches the database or the data servers, so each algorithm can be
tested against the simulator's truth and the field's reference implementations
(ccdproc, astropy, sep), and benchmarked, on its own.
"""
