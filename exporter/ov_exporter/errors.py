"""Errors the exporter reports to users. Each names the file or object and the field."""


class OvError(Exception):
    """Base class; the CLI turns these into exit code 2."""


class ConfigError(OvError):
    pass


class SourceError(OvError):
    pass
