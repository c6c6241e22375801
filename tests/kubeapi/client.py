"""The real ``kubernetes`` client pointed at the test double, speaking plain JSON dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.kubeapi.server import KubeApiDouble

Response = tuple[int, Any, Any]
# The generated client is typed for its models; these tests speak plain JSON dicts to it.
Api = Any


def api_for(double: KubeApiDouble, tmp_path: Path, username: str = "kubernetes-admin") -> Api:
    # The kubeconfig loader splits its path on ":" (the KUBECONFIG list separator): keep it out of names.
    path = tmp_path / f"kubeconfig-{username.replace(':', '_')}"
    double.write_kubeconfig(path, username)
    configuration = client.Configuration()
    load: Any = config.load_kube_config
    load(config_file=str(path), client_configuration=configuration)
    return client.ApiClient(configuration)


def call(
    api_client: Api,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> Response:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    request = api_client.param_serialize(
        method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response: Any = api_client.call_api(*request, _request_timeout=10)
    data = response.read()
    return response.status, json.loads(data) if data else None, response.response.headers
