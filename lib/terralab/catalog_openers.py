"""Openers for the catalog entries that are not files: synthetic generators, Earth Engine assets, STAC APIs.

A ``synthetic`` entry names a ``module:function`` that makes the data; an ``earthengine`` entry is handed to
:mod:`terralab.earthengine` (credentials needed); a ``stac`` entry opens the collection, or searches it when
given search arguments, tried again after passing network failures like a download.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .catalog_fetch import RetriesExhausted, retry
from .catalog_schema import Entry
from .errors import CatalogError, CredentialsError, DataNotAvailableError, MissingDependencyError

__all__ = ["call_generator", "open_earthengine", "open_stac"]


def call_generator(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    """The data a synthetic entry's ``generator`` makes, called with its ``params`` updated by ``kwargs``.

    >>> from terralab.catalog_schema import parse_entry
    >>> fields = {"kind": "synthetic", "generator": "fractions:Fraction", "params": {"numerator": 3}}
    >>> entry = parse_entry("three_halves", {**fields, "description": "a number"}, "-")
    >>> call_generator(entry, {"denominator": 2})
    Fraction(3, 2)
    """
    module_name, _, func_name = entry.generator.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{entry.name}: generator module {module_name!r} cannot be imported: {exc}"
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise CatalogError(
            f"{entry.name}: {module_name} has no function {func_name!r} (generator {entry.generator})"
        )
    return func(**{**dict(entry.params), **dict(kwargs)})


_EE_HOWTO = (
    "Earth Engine needs credentials. Either set EE_SERVICE_ACCOUNT and EE_PRIVATE_KEY_FILE (a "
    "service-account JSON key) and optionally EE_PROJECT, or run `earthengine authenticate` once; install "
    "the client with `pip install -e '.[ee]'`. Then build requests with terralab.earthengine (or the "
    "workflow's request builders)."
)


def _ee_credentials_found() -> bool:
    if os.environ.get("EE_SERVICE_ACCOUNT") and os.environ.get("EE_PRIVATE_KEY_FILE"):
        return True
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    default = Path(
        os.environ.get("EARTHENGINE_CREDENTIALS", "~/.config/earthengine/credentials")
    ).expanduser()
    return default.is_file()


def open_earthengine(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    """Open an Earth Engine entry through :func:`terralab.earthengine.open_catalog_entry`."""
    if not _ee_credentials_found():
        raise CredentialsError(f"{entry.name} ({entry.asset}) is an Earth Engine asset. {_EE_HOWTO}")
    earthengine = importlib.import_module("terralab.earthengine")
    return earthengine.open_catalog_entry(entry, **kwargs)


def open_stac(entry: Entry, kwargs: Mapping[str, Any]) -> Any:
    """The STAC collection (no kwargs) or the items of a search (``bbox``, ``datetime``, ``query``, ...)."""
    try:
        from pystac_client import Client
    except ImportError as exc:
        raise MissingDependencyError(
            f"{entry.name} is a STAC collection; searching it needs pystac-client: pip install -e '.[cloud]'"
        ) from exc

    def attempt() -> Any:
        client = Client.open(entry.url)
        if not kwargs:
            return client.get_collection(entry.collection)
        return client.search(collections=[entry.collection], **kwargs).item_collection()

    try:
        return retry(attempt, f"searching STAC API {entry.url} for {entry.name}")
    except RetriesExhausted as failed:
        exc = failed.error
        raise DataNotAvailableError(
            f"{entry.name}: STAC API {entry.url} could not be reached or searched{failed.tries} "
            f"({type(exc).__name__}: {exc}). Check the network, or search again later."
        ) from exc
