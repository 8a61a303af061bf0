"""Typed errors of terralab.

Every error says what is wrong and what to do about it. Each class also derives from the closest
built-in exception, so ``except ValueError`` and friends keep working for callers who prefer them.
"""

from __future__ import annotations


class TerralabError(Exception):
    """Base class of every error terralab raises on purpose."""


# --- catalog and data access ---------------------------------------------------------------------
class CatalogError(TerralabError, ValueError):
    """The data catalog (data_catalog.yaml) is malformed or an entry cannot be used."""


class UnknownDatasetError(CatalogError, KeyError):
    """A catalog name that does not exist. The message suggests close names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ChecksumError(TerralabError, OSError):
    """A file's sha256 differs from the catalog's. The bad file has been removed."""


class DataNotAvailableError(TerralabError, FileNotFoundError):
    """A dataset could be found neither in the mirror nor the cache, nor downloaded."""


class CredentialsError(TerralabError, PermissionError):
    """A service (Earth Engine, cloud storage) needs credentials that are not configured."""


class MissingDependencyError(TerralabError, ImportError):
    """An optional dependency is not installed. The message names the extra to install."""


# --- input data ------------------------------------------------------------------------------------
class InvalidInputError(TerralabError, ValueError):
    """Input data has the wrong shape, dims, coordinates, units, values or type."""


class FileFormatError(TerralabError, ValueError):
    """A file is empty, corrupt, or in a format that is not supported."""


# --- notebooks, runs and sweeps ------------------------------------------------------------------
class NotebookNotFoundError(TerralabError, FileNotFoundError):
    """The notebook path does not exist."""


class ParameterError(TerralabError, ValueError):
    """A run parameter is undeclared in the notebook, has the wrong type, or a parameter file is invalid."""


class KernelNotFoundError(TerralabError, LookupError):
    """The Jupyter kernel terralab runs notebooks on is not registered."""


class NotebookExecutionError(TerralabError, RuntimeError):
    """A notebook failed while running. The output notebook and HTML were still written."""


class OutputLocationError(TerralabError, OSError):
    """An output directory or URL cannot be written."""


class SchedulerError(TerralabError, ConnectionError):
    """A Dask scheduler could not be reached in time."""
