"""Import of old data: CSV with a column mapping, GeoJSON, Darwin Core Archives and iNaturalist
CSV exports, with media from a folder or the archive (``observatory import``, docs/importing.md).

Each row becomes a draft that goes through the same checks and enrichments as any other
observation (``core.lifecycle.submit_many``); the source's own id becomes the client id
(``<source>:<id>``), so a second run stores nothing twice. People get an account only where the
source says they consented; otherwise their observations carry a keyed hash of the source's user
id (``core.importing.people``), never a name.
"""

from core.importing.mapping import Column, Mapping, SourceError, load_mapping
from core.importing.run import FORMATS, ImportSummary, ReportLine, detect_format, import_file, write_report

__all__ = ["FORMATS", "Column", "ImportSummary", "Mapping", "ReportLine", "SourceError", "detect_format",
           "import_file", "load_mapping", "write_report"]
