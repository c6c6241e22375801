"""Before a command relies on the Kubernetes API: load its credentials, and ask the server once.

Every command that talks to the API (``check``, ``reconciler run``, ``webhook serve``,
``exporter serve``, ``certs install``) comes here first, so an unusable kubeconfig or an API
server that cannot be reached is one line naming the file or the server address, within about
:data:`CONNECT_TIMEOUT` + :data:`READ_TIMEOUT` seconds, with no retries and no traceback.

The question is ``GET /version``, which every kube-apiserver answers (to anyone, by default).  Any
HTTP answer but 401 means the server is there; 401 means it refused the credentials.  What happens
after a successful start is not decided here: the watch loops retry an API outage in the
background, with backoff, and the webhook reports a cache it cannot vouch for (``objectstore.kubewatch``).

A long-running server (``webhook serve``, ``exporter serve``, ``reconciler run``) that cannot reach
the API when it starts exits with status 2 and that line, instead of waiting: in a pod the kubelet
restarts it with back-off (CrashLoopBackOff), ``kubectl describe pod`` shows the reason, and the
container's last log line says which server was not reachable.  An API server that is merely slow
(answering within the timeouts) is not an error.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 5.0
# The flags that choose the API server, named at the start of every line about it.
FLAGS = "--kubeconfig/--in-cluster"


class ApiServerProblem(Exception):
    """The credentials cannot be loaded or the API server cannot be reached: one line, no flag prefix."""


@dataclass(frozen=True)
class Credentials:
    """Where the API server and the credentials come from, as a user would name it."""

    kubeconfig: str | None = None
    in_cluster: bool = False

    def origin(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        if self.kubeconfig:
            return f"kubeconfig {self.kubeconfig}"
        return f"kubeconfig {os.environ.get('KUBECONFIG') or '~/.kube/config'}"


def load_problem(error: Exception, credentials: Credentials) -> str:
    """One line for a kubeconfig (or in-cluster configuration) that cannot be loaded."""
    origin = credentials.origin()
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{origin} is not valid YAML{where}: {error.problem or error.context or 'cannot be parsed'}"
    if isinstance(error, yaml.YAMLError):
        return f"{origin} is not valid YAML: {error}"
    if isinstance(error, UnicodeDecodeError):
        return f"{origin} is not a text file (byte {error.object[error.start]:#04x} at offset {error.start})"
    if isinstance(error, OSError):
        return f"cannot read {origin}: {error.strerror or error}"
    text = str(error).strip() or type(error).__name__
    if isinstance(error, (TypeError, AttributeError, KeyError, IndexError)):
        # The client's loader indexes into the file's structure and fails with a bare Python error.
        return f"{origin} is not a kubeconfig (expected a mapping with clusters, users and contexts): {text}"
    return f"cannot load Kubernetes credentials from {origin}: {text}"


def _cause(error: BaseException) -> BaseException:
    """The exception underneath urllib3's wrappers (MaxRetryError, NewConnectionError)."""
    seen = 0
    while seen < 10:
        seen += 1
        reason = getattr(error, "reason", None)
        if isinstance(reason, BaseException):
            error = reason
            continue
        nested = error.__cause__ or error.__context__
        if isinstance(error, urllib3.exceptions.NewConnectionError) and nested is not None:
            error = nested
            continue
        break
    return error


def _describe(error: BaseException) -> str:
    cause = _cause(error)
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
        return f"the host name does not resolve ({getattr(cause, 'strerror', None) or cause})"
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return f"it accepted the connection but did not answer within {READ_TIMEOUT:.0f} s"
    if isinstance(cause, (urllib3.exceptions.ConnectTimeoutError, TimeoutError)):
        return f"no connection within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {cause.verify_message or cause.reason}"
    if isinstance(cause, (ssl.SSLError, urllib3.exceptions.SSLError)):
        return f"TLS handshake failed: {getattr(cause, 'reason', None) or cause}"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    text = str(cause).strip() or type(cause).__name__
    return text[:300]


def check_reachable(api_client: Any, credentials: Credentials) -> None:
    """Ask the server once (``GET /version``); raise ApiServerProblem naming it when that fails."""
    configuration = api_client.configuration
    host = str(configuration.host)
    where = f"the Kubernetes API server {host} ({credentials.origin()})"
    try:
        request = api_client.param_serialize(
            "GET", "/version", header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(*request, _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        status = int(response.status)
        response.read()
    except Exception as error:  # any failure to get an answer is the line, never a traceback
        raise ApiServerProblem(f"cannot reach {where}: {_describe(error)}") from None
    if status == 401:
        raise ApiServerProblem(
            f"{where} refused the credentials (HTTP 401 Unauthorized): renew the token or client certificate"
        )


def connect(credentials: Credentials) -> Any:
    """A ``kubernetes.client.ApiClient`` for these credentials, with no retries inside urllib3
    (it would log a warning per attempt); an unusable configuration is an ApiServerProblem."""
    from objectstore import kubeapi

    if credentials.kubeconfig and not Path(credentials.kubeconfig).is_file():
        raise ApiServerProblem(f"kubeconfig {credentials.kubeconfig}: no such file")
    try:
        return kubeapi.connect(credentials.kubeconfig, credentials.in_cluster)
    except Exception as error:  # the client's loaders raise anything from YAML errors to TypeError
        raise ApiServerProblem(load_problem(error, credentials)) from None


def verify(credentials: Credentials) -> None:
    """Load the credentials and ask the server once; ApiServerProblem names what went wrong."""
    api_client = connect(credentials)
    try:
        check_reachable(api_client, credentials)
    finally:
        api_client.close()
