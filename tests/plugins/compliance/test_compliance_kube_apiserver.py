"""The kubeApiserver input against a fake HTTPS API server on 127.0.0.1 (its own CA)."""

from __future__ import annotations

import ssl
import textwrap
from http.server import ThreadingHTTPServer

import pytest
from compliance_test_support import JSONHandler, agent_with_list_sink, serving
from support import FakeReactor, entry_point, make_agent

import plugins.compliance
from host.lifecycle import AgentService
from plugins.compliance.benchmark import RuleInput
from plugins.compliance.environment import HostEnv
from plugins.compliance.jitter import benchmark_jitter
from plugins.compliance.kube_apiserver import KubeTarget
from plugins.compliance.resolvers import IncompatibleEnvironment, ResolveError, Resolver
from plugins.ipc_api.certificate import generate

TOKEN = "test-token-0123456789"

APISERVER_POD = {
    "metadata": {"name": "kube-apiserver-cp1", "namespace": "kube-system"},
    "spec": {
        "containers": [
            {"name": "kube-apiserver", "command": ["kube-apiserver", "--anonymous-auth=false"]}
        ]
    },
}
PODS = {"kind": "PodList", "apiVersion": "v1", "items": [APISERVER_POD]}
BINDINGS = {
    "kind": "ClusterRoleBindingList",
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "items": [
        {
            "metadata": {"name": "cluster-admin"},
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters"}],
        }
    ],
}
SA = {
    "kind": "ServiceAccount",
    "apiVersion": "v1",
    "metadata": {"name": "default", "namespace": "default"},
    "automountServiceAccountToken": False,
}


def make_ca_and_server(directory):
    """A self-signed CA certificate for IP 127.0.0.1 (the agent's own API certificate) that
    both serves and is the cluster CA; returns the PEM paths (CA, certificate, key)."""
    cert_pem, key_pem = generate(("127.0.0.1",))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(cert_pem)
    key_path = directory / "server-key.pem"
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, cert_path, key_path


ROUTES = {
    "/api/v1/namespaces/kube-system/pods?labelSelector=component%3Dkube-apiserver": PODS,
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": BINDINGS,
    "/api/v1/namespaces/default/serviceaccounts/default": SA,
}


class APIServer(JSONHandler):
    def do_GET(self):
        self.server.seen.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.reply(401, {"kind": "Status", "message": "Unauthorized"})
        elif self.path == "/api/v1/secrets":
            self.reply(
                403,
                {
                    "kind": "Status",
                    "message": 'secrets is forbidden: User "system:serviceaccount:dd:agent" '
                    'cannot list resource "secrets"',
                },
            )
        elif self.path in ROUTES:
            self.reply(200, ROUTES[self.path])
        else:
            self.reply(404, {"kind": "Status", "message": "the server could not find it"})


@pytest.fixture
def kube(tmp_path):
    """The fake API server and a service-account directory for it: (port, sa_dir)."""
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_path, cert_path, key_path = make_ca_and_server(pki)
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "ca.crt").write_bytes(ca_path.read_bytes())
    (sa_dir / "token").write_text(TOKEN + "\n")
    (sa_dir / "token").chmod(0o600)
    server = ThreadingHTTPServer(("127.0.0.1", 0), APIServer)
    server.daemon_threads = True
    server.seen = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server, sa_dir


def resolver(server, sa_dir, host="127.0.0.1"):
    port = str(server.server_address[1])
    target = KubeTarget(host=host, port=port, service_account_dir=str(sa_dir))
    return Resolver(HostEnv("h", kubernetes=bool(host), kube_target=target))


def kinput(**spec):
    return RuleInput(kind="kubeApiserver", spec=spec, tag="kube", array=True)


def test_compliance_kube_list_with_selector(kube):
    server, sa_dir = kube
    got = resolver(server, sa_dir).kube_apiserver(
        kinput(
            kind="pods",
            namespace="kube-system",
            labelSelector="component=kube-apiserver",
            apiRequest={"verb": "list"},
        )
    )
    assert got == [
        {
            "kind": "Pod",
            "group": "",
            "version": "v1",
            "namespace": "kube-system",
            "name": "kube-apiserver-cp1",
            "resource": {**APISERVER_POD, "kind": "Pod", "apiVersion": "v1"},
        }
    ]


def test_compliance_kube_list_in_a_group_and_get_by_name(kube):
    server, sa_dir = kube
    r = resolver(server, sa_dir)
    bindings = r.kube_apiserver(
        kinput(
            kind="clusterrolebindings",
            group="rbac.authorization.k8s.io",
            apiRequest={"verb": "list"},
        )
    )
    assert [(b["kind"], b["group"], b["version"], b["namespace"], b["name"]) for b in bindings] == [
        ("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "", "cluster-admin")
    ]
    got = r.kube_apiserver(
        kinput(
            kind="serviceaccounts",
            namespace="default",
            apiRequest={"verb": "get", "resourceName": "default"},
        )
    )
    assert got == [
        {
            "kind": "ServiceAccount",
            "group": "",
            "version": "v1",
            "namespace": "default",
            "name": "default",
            "resource": SA,
        }
    ]
    assert server.seen == [
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/api/v1/namespaces/default/serviceaccounts/default",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"apiRequest": {"verb": "list"}},
            "cannot run Kubeapiserver check, resource kind is empty",
        ),
        ({"kind": "pods"}, "cannot run Kubeapiserver check, action verb is empty"),
        (
            {"kind": "pods", "apiRequest": {"verb": "get"}},
            "unable to use 'get' apirequest without resource name",
        ),
        (
            {"kind": "secrets", "apiRequest": {"verb": "list"}},
            "unable to list Kube resources:'/v1, Resource=secrets', ns:'' name:'', err: "
            'HTTP 403: secrets is forbidden: User "system:serviceaccount:dd:agent" cannot list '
            'resource "secrets"',
        ),
        (
            {"kind": "nodes", "apiRequest": {"verb": "get", "resourceName": "n9"}},
            "unable to get Kube resource:'/v1, Resource=nodes', ns:'' name:'n9', err: "
            "HTTP 404: the server could not find it",
        ),
    ],
)
def test_compliance_kube_errors(kube, spec, message):
    server, sa_dir = kube
    with pytest.raises(ResolveError) as info:
        resolver(server, sa_dir).kube_apiserver(kinput(**spec))
    assert str(info.value) == message


def test_compliance_kube_token_is_sent_and_checked(kube):
    server, sa_dir = kube
    (sa_dir / "token").write_text("stale-token")
    with pytest.raises(ResolveError) as info:
        resolver(server, sa_dir).kube_apiserver(kinput(kind="pods", apiRequest={"verb": "list"}))
    assert str(info.value) == (
        "unable to list Kube resources:'/v1, Resource=pods', ns:'' name:'', err: "
        "HTTP 401: Unauthorized"
    )


def test_compliance_kube_server_certificate_is_verified(kube, tmp_path):
    server, sa_dir = kube
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _cert, _key = make_ca_and_server(other)
    (sa_dir / "ca.crt").write_bytes(other_ca.read_bytes())
    with pytest.raises(ResolveError) as info:
        resolver(server, sa_dir).kube_apiserver(kinput(kind="pods", apiRequest={"verb": "list"}))
    assert str(info.value).startswith(
        "unable to list Kube resources:'/v1, Resource=pods', ns:'' name:'', err: "
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    assert server.seen == []


def test_compliance_kube_skipped_without_credentials(kube):
    server, sa_dir = kube
    (sa_dir / "token").unlink()
    with pytest.raises(IncompatibleEnvironment) as info:
        resolver(server, sa_dir).kube_apiserver(kinput(kind="pods", apiRequest={"verb": "list"}))
    assert str(info.value) == f"no service-account token at {sa_dir}/token"
    with pytest.raises(IncompatibleEnvironment) as info:
        resolver(server, sa_dir, host="").kube_apiserver(
            kinput(kind="pods", apiRequest={"verb": "list"})
        )
    assert str(info.value) == "not running on Kubernetes"
    assert server.seen == []


BENCH = """\
name: CIS Kubernetes (test)
framework: test-k8s
version: 1.0.0
rules:
  - id: test-anonymous-auth
    scope: [kubernetesCluster]
    input:
      - kubeApiserver:
          kind: pods
          namespace: kube-system
          labelSelector: component=kube-apiserver
          apiRequest: {verb: list}
        type: array
        tag: pods
"""
ANON_REGO = """\
package datadog

import data.datadog as dd

findings contains f if {
\tpod := input.pods[_]
\t"--anonymous-auth=false" in pod.resource.spec.containers[0].command
\tf := dd.passed_finding("kube_apiserver", pod.name, {"namespace": pod.namespace})
}

findings contains f if {
\tpod := input.pods[_]
\tnot "--anonymous-auth=false" in pod.resource.spec.containers[0].command
\tf := dd.failing_finding("kube_apiserver", pod.name, {"namespace": pod.namespace})
}
"""


def test_compliance_kube_rule_in_the_agent(kube, tmp_path):
    """Inside Kubernetes (KUBERNETES_SERVICE_HOST/PORT set), a cluster rule queries the API
    server with the service account and its finding reaches the sinks."""
    server, sa_dir = kube
    bench_dir = tmp_path / "compliance.d"
    bench_dir.mkdir()
    (bench_dir / "k8s.yaml").write_text(BENCH)
    (bench_dir / "test-anonymous-auth.rego").write_text(ANON_REGO)
    config = textwrap.dedent(
        f"""\
        hostname: test-host
        compliance_config:
          enabled: true
          dir: {bench_dir}
          builtin_benchmarks: false
          kubernetes:
            service_account_dir: {sa_dir}
        """
    )
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(server.server_address[1]),
    }
    agent, reactor, sink = agent_with_list_sink(tmp_path, config, env)
    service = AgentService(agent, install_signal_handlers=False)
    service.startService()
    job = agent.scheduler.jobs["compliance"]
    reactor.advance(job.next_run - reactor.seconds())
    reactor.advance(benchmark_jitter(0, agent.hostname, "test-k8s", 20 * 60.0))
    assert [
        (
            e.payload["agent_rule_id"],
            e.payload["result"],
            e.payload["resource_id"],
            e.payload["data"],
        )
        for e in sink.events
    ] == [("test-anonymous-auth", "passed", "kube-apiserver-cp1", {"namespace": "kube-system"})]
    service.stopService()


def test_compliance_kube_rule_filtered_out_of_kubernetes(tmp_path):
    bench_dir = tmp_path / "compliance.d"
    bench_dir.mkdir()
    (bench_dir / "k8s.yaml").write_text(BENCH)
    (bench_dir / "test-anonymous-auth.rego").write_text(ANON_REGO)
    agent = make_agent(
        FakeReactor(),
        [entry_point("compliance", plugins.compliance)],
        f"compliance_config:\n  enabled: true\n  dir: {bench_dir}\n  builtin_benchmarks: false\n",
        tmp_path=tmp_path,
    )
    service = plugins.compliance.service_for(agent)
    assert service.env.kubernetes is False
    assert service.load().benchmarks == []
