"""Make the network fail, not merely be absent, in this process and in every Python process started below it.

The offline notebook test (tests/test_notebooks.py) copies this file as ``sitecustomize.py`` into a folder put
first on the kernel's ``PYTHONPATH``; Python imports ``sitecustomize`` at start-up, so the notebook's kernel
(and anything it starts, such as dask workers) runs with:

* ``socket.socket.connect`` / ``connect_ex`` / ``sendto`` refusing any address that is not loopback
  (127.0.0.0/8, ::1) or a unix socket, with ``OSError(ENETUNREACH)``;
* ``socket.getaddrinfo`` / ``gethostbyname`` / ``gethostbyname_ex`` refusing any name but the local ones,
  with ``socket.gaierror``;
* reads (``open``, ``os.listdir``, ``os.scandir``) below the folders listed in ``TERRALAB_OFFLINE_FORBID``
  (``os.pathsep``-separated: the real-data folder) refused with ``PermissionError``, through an audit hook, so
  a notebook cannot find ``../shared/data`` by a side route either.

The kernel talks to the notebook runner over ZMQ on loopback, which stays allowed. C libraries that open their
own sockets (GDAL's curl) bypass Python's socket module; the test points their proxy variables at a closed
loopback port so those fail too. The error message always contains :data:`MESSAGE`.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys

MESSAGE = "network access is disabled (terralab offline test)"
FORBID_ENV = "TERRALAB_OFFLINE_FORBID"
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_local_host(host) -> bool:
    """True for loopback addresses, the wildcard address and the names of this machine."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", errors="replace")
    host = str(host).strip().strip("[]").split("%", 1)[0].lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        if host == socket.gethostname().lower():
            return True
    except OSError:
        pass
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_loopback or ip.is_unspecified


def is_allowed_address(family, address) -> bool:
    """True for unix sockets and loopback (host, port, ...) addresses."""
    if family == getattr(socket, "AF_UNIX", object()):
        return True
    if isinstance(address, tuple) and address:
        return is_local_host(address[0])
    return isinstance(address, (str, bytes))  # a unix-socket path


def block_network(patch=setattr) -> None:
    """Replace the socket functions that reach other machines; ``patch`` is ``setattr`` or a monkeypatch's."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex

    def refused(address) -> OSError:
        return OSError(errno.ENETUNREACH, f"{MESSAGE}: connection to {address!r} refused")

    def connect(self, address):
        if not is_allowed_address(self.family, address):
            raise refused(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if not is_allowed_address(self.family, address):
            return errno.ENETUNREACH
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        if args and not is_allowed_address(self.family, args[-1]):
            raise refused(args[-1])
        return real_sendto(self, data, *args)

    def lookup_refused(host) -> socket.gaierror:
        return socket.gaierror(socket.EAI_NONAME, f"{MESSAGE}: name lookup of {host!r} refused")

    def getaddrinfo(host, *args, **kwargs):
        if not is_local_host(host):
            raise lookup_refused(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):
        if not is_local_host(host):
            raise lookup_refused(host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host):
        if not is_local_host(host):
            raise lookup_refused(host)
        return real_gethostbyname_ex(host)

    patch(socket.socket, "connect", connect)
    patch(socket.socket, "connect_ex", connect_ex)
    patch(socket.socket, "sendto", sendto)
    patch(socket, "getaddrinfo", getaddrinfo)
    patch(socket, "gethostbyname", gethostbyname)
    patch(socket, "gethostbyname_ex", gethostbyname_ex)


def forbid_reading(folders) -> None:
    """Refuse ``open``/``listdir``/``scandir`` below ``folders`` in this process (an audit hook: for good)."""
    roots = []
    for folder in folders:
        if folder:
            roots.append(os.path.abspath(folder))
            roots.append(os.path.realpath(folder))
    roots = sorted(set(roots))
    if not roots:
        return

    def below(path) -> bool:
        if isinstance(path, int):
            return False
        try:
            text = os.fsdecode(path)
        except TypeError:
            return False
        for candidate in {os.path.abspath(text), os.path.realpath(text)}:
            for root in roots:
                if candidate == root or candidate.startswith(root + os.sep):
                    return True
        return False

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir") and args and below(args[0]):
            raise PermissionError(errno.EACCES, f"{MESSAGE}: the real-data folder is off limits", args[0])

    sys.addaudithook(hook)


if __name__ == "sitecustomize":  # imported at start-up from the offline test's PYTHONPATH
    block_network()
    forbid_reading(os.environ.get(FORBID_ENV, "").split(os.pathsep))
