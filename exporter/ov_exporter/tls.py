"""HTTPS for `serve`: a server SSL context whose certificate follows its files.

The certificate and key are loaded again when either file changes on disk (mtime, size
or inode of the file a path resolves to, so a Kubernetes Secret volume's `..data`
symlink swap counts). Each new TLS connection checks, at most once per `check_every`
seconds, with two stat calls; a new pair that does not load (unreadable, malformed, key
not matching) is logged with the file names and the previous pair keeps being served.

The swap uses the SNI callback, which OpenSSL calls for every ClientHello (with or
without a server name): it points the connection at the context of the current pair.
"""

from __future__ import annotations

import logging
import os
import ssl
import time

from .errors import OvError

log = logging.getLogger(__name__)

Stamp = tuple[tuple[int, int, int], tuple[int, int, int]]


def _context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


class ReloadingTLS:
    """`server_context` goes to the listening site; it serves the newest good pair."""

    def __init__(self, cert_file: str, key_file: str, check_every: float = 1.0) -> None:
        self.cert_file, self.key_file, self.check_every = cert_file, key_file, check_every
        self.reloads = 0
        self._stamp = self._stat()
        try:
            self._current = _context(cert_file, key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise OvError(
                f"--tls-cert-file {cert_file} / --tls-key-file {key_file}: "
                f"cannot load the certificate and key: {_why(exc)}"
            ) from exc
        self.server_context = _context(cert_file, key_file)
        self.server_context.sni_callback = self._on_hello
        self._checked = time.monotonic()

    def _stat(self) -> Stamp | None:
        try:
            stamps = [os.stat(p) for p in (self.cert_file, self.key_file)]  # follows symlinks
        except OSError:
            return None
        a, b = ((s.st_mtime_ns, s.st_size, s.st_ino) for s in stamps)
        return a, b

    def maybe_reload(self) -> None:
        """Loads the files again when they changed since the last look."""
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a broken pair is reported once, retried on the next change
        try:
            ctx = _context(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error(
                "TLS certificate %s / key %s changed but cannot be loaded: %s; still serving the previous certificate",
                self.cert_file,
                self.key_file,
                _why(exc),
            )
            return
        self._current = ctx
        self.reloads += 1
        log.info("TLS certificate %s and key %s loaded again", self.cert_file, self.key_file)

    def _on_hello(self, conn: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        try:
            now = time.monotonic()
            if now - self._checked >= self.check_every:
                self._checked = now
                self.maybe_reload()
            conn.context = self._current
        except Exception:  # noqa: BLE001 - an exception here would abort the handshake
            log.exception("TLS certificate reload failed; serving the previous certificate")
        return None
