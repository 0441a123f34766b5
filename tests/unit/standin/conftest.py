# -*- coding: utf-8 -*-
# Tests of the TEST STAND-IN (tests/standin), which is NOT Kubernetes: they prove the stand-in behaves the way the
# collection's roles rely on (real kubernetes client, real kubernetes.core modules, real kubeadm/crictl syntax).
# Everything listens on 127.0.0.1 only; every process a test starts is stopped by its pid at teardown.
"""Fixtures for the stand-in tests (helpers live in standin_testlib.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from standin_testlib import ApiServer, Pki  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def apiserver(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    srv = ApiServer(pki, str(d / "data"), ["--node-monitor-grace-period", "2s", "--pod-gc-quarantine", "1"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin_kubeconfig(apiserver, pki, tmp_path_factory):
    return pki.kubeconfig(apiserver.server, str(tmp_path_factory.mktemp("kc") / "admin.conf"))


@pytest.fixture(scope="module")
def dyn(admin_kubeconfig):
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.dynamic import DynamicClient
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=admin_kubeconfig, client_configuration=cfg)
    return DynamicClient(kubernetes.client.ApiClient(configuration=cfg))
