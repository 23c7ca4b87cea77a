"""The ``kubeApiserver`` input: Kubernetes API objects read with the pod's in-cluster credentials.

Inside a pod, Kubernetes sets ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and mounts
the service account's token and the cluster CA under
``/var/run/secrets/kubernetes.io/serviceaccount``; that is all a client needs. The input names
a resource the way the reference's dynamic client does (``kind`` is the plural resource name,
``group`` empty for the core API, ``version`` defaulting to ``v1``) and either lists it
(``labelSelector``, ``fieldSelector``) or gets one object by ``apiRequest.resourceName``.

The token is read again for every client (one per compliance run): projected service-account
tokens are rotated by the kubelet, so a token cached at start would expire.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TIMEOUT = 10.0


class KubeUnavailable(Exception):
    """No in-cluster credentials here: the input does not apply (the rule is skipped)."""


class KubeError(Exception):
    """The request was made and failed; the message becomes the finding's error."""


@dataclass(frozen=True)
class KubeTarget:
    """Where the API server is and where the pod's credentials are mounted."""

    host: str = ""
    port: str = "443"
    service_account_dir: str = DEFAULT_SERVICE_ACCOUNT_DIR


@dataclass(frozen=True)
class KubeQuery:
    """One ``kubeApiserver`` input, checked (see :func:`parse_query`)."""

    kind: str
    version: str
    group: str
    namespace: str
    verb: str
    resource_name: str
    label_selector: str
    field_selector: str

    def gvr(self) -> str:
        """The resource as the reference's messages print it (Go ``GroupVersionResource``)."""
        return f"{self.group}/{self.version}, Resource={self.kind}"

    def path(self) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespace:
            base += f"/namespaces/{_seg(self.namespace)}"
        base += f"/{_seg(self.kind)}"
        if self.verb == "get":
            return f"{base}/{_seg(self.resource_name)}"
        params = {
            k: v
            for k, v in (
                ("labelSelector", self.label_selector),
                ("fieldSelector", self.field_selector),
            )
            if v
        }
        return base + ("?" + urllib.parse.urlencode(params) if params else "")


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def parse_query(spec: Mapping[str, Any]) -> KubeQuery:
    """The input's fields, with the reference's messages for a missing kind, verb or name."""
    kind = str(spec.get("kind") or "")
    if not kind:
        raise KubeError("cannot run Kubeapiserver check, resource kind is empty")
    api = spec.get("apiRequest") or {}
    if not isinstance(api, Mapping):
        raise KubeError("cannot run Kubeapiserver check, apiRequest must be a mapping")
    verb = str(api.get("verb") or "")
    if not verb:
        raise KubeError("cannot run Kubeapiserver check, action verb is empty")
    if verb not in ("get", "list"):
        raise KubeError(f"cannot run Kubeapiserver check, unknown action verb {verb!r}")
    name = str(api.get("resourceName") or "")
    if verb == "get" and not name:
        raise KubeError("unable to use 'get' apirequest without resource name")
    return KubeQuery(
        kind=kind,
        version=str(spec.get("version") or "v1"),
        group=str(spec.get("group") or ""),
        namespace=str(spec.get("namespace") or ""),
        verb=verb,
        resource_name=name,
        label_selector=str(spec.get("labelSelector") or ""),
        field_selector=str(spec.get("fieldSelector") or ""),
    )


class KubeClient:
    """A minimal API server client: bearer token, TLS verified against the cluster CA."""

    def __init__(self, target: KubeTarget) -> None:
        if not target.host:
            raise KubeUnavailable("not running on Kubernetes")
        token_path = os.path.join(target.service_account_dir, "token")
        ca_path = os.path.join(target.service_account_dir, "ca.crt")
        try:
            with open(token_path, encoding="utf-8") as f:
                self._token = f.read().strip()
        except FileNotFoundError:
            raise KubeUnavailable(f"no service-account token at {token_path}") from None
        except OSError as exc:
            raise KubeError(f"cannot read {token_path}: {exc.strerror}") from None
        if not self._token:
            raise KubeError(f"{token_path} is empty")
        try:
            self._tls = ssl.create_default_context(cafile=ca_path)
        except FileNotFoundError:
            raise KubeUnavailable(f"no cluster CA at {ca_path}") from None
        except (OSError, ssl.SSLError) as exc:
            raise KubeError(f"cannot load the cluster CA {ca_path}: {exc}") from None
        self._host = target.host
        try:
            self._port = int(target.port or "443")
        except ValueError:
            raise KubeError(f"bad Kubernetes API port {target.port!r}") from None

    def get_json(self, path: str) -> Any:
        """GET ``path``; raises :class:`KubeError` with the server's message on failure."""
        conn = http.client.HTTPSConnection(
            self._host, self._port, timeout=TIMEOUT, context=self._tls
        )
        try:
            conn.request(
                "GET",
                path,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise KubeError(str(exc) or type(exc).__name__) from None
        finally:
            conn.close()
        if response.status != 200:
            raise KubeError(_status_message(response.status, body))
        try:
            return json.loads(body)
        except ValueError as exc:
            raise KubeError(f"bad JSON from the API server: {exc}") from None

    def resolve(self, query: KubeQuery) -> list[dict[str, Any]]:
        """The input's value: one entry per object, in the reference's shape."""
        try:
            found = self.get_json(query.path())
        except KubeError as exc:
            if query.verb == "get":
                raise KubeError(
                    f"unable to get Kube resource:'{query.gvr()}', ns:'{query.namespace}' "
                    f"name:'{query.resource_name}', err: {exc}"
                ) from None
            raise KubeError(
                f"unable to list Kube resources:'{query.gvr()}', ns:'{query.namespace}' "
                f"name:'{query.resource_name}', err: {exc}"
            ) from None
        if query.verb == "get":
            items = [found]
            list_kind = ""
        else:
            items = list(found.get("items") or [])
            list_kind = str(found.get("kind") or "").removesuffix("List")
        list_api = str(found.get("apiVersion") or "")
        return [_entry(item, list_kind, list_api) for item in items if isinstance(item, dict)]


def _entry(item: dict[str, Any], list_kind: str, list_api: str) -> dict[str, Any]:
    # Items of a list carry no kind/apiVersion of their own; like client-go's unstructured
    # decoding, take them from the list ("PodList" -> "Pod").
    item.setdefault("kind", list_kind)
    item.setdefault("apiVersion", list_api)
    group, _, version = str(item["apiVersion"]).rpartition("/")
    meta = item.get("metadata") or {}
    return {
        "kind": item["kind"],
        "group": group,
        "version": version,
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "resource": item,
    }


def _status_message(status: int, body: bytes) -> str:
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {status}: {message}" if message else f"HTTP {status}"
