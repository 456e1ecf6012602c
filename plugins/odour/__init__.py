"""The ``odour`` service: OdourCollect-style odour observations.

Pure domain logic, no database and no web, so that the plugin wiring (hooks, routes, CLI) sits
on top of it:

* :mod:`.catalogue`: categories, subtypes, intensity and hedonic-tone scales, durations, colours;
* :mod:`.schema`: the ``odour`` kind and the JSON Schema of its fields;
* :mod:`.validation`: field checks with messages that name the value and the allowed range;
* :mod:`.enrichment`: local time, distance and bearing to points of interest, zones;
* :mod:`.quality`: bursts, reports outside the zones, implausible combinations;
* :mod:`.events`: event detection (near-linear) and its plain pairwise reference;
* :mod:`.simulate`: synthetic data with planted episodes;
* :mod:`.analyses`: counts by hour and weekday, daily intensity, heat map (GeoJSON and PNG);
* :mod:`.compat`: an OdourCollect-compatible list response.
"""
