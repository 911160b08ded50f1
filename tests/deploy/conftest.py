"""Session fixtures of the deployment tests: Helm (pinned, fetched once) and rendered charts."""

from __future__ import annotations

import pytest

from tests.deploy.tooling import MINIMAL_VALUES, PRODUCTION_VALUES, Helm, Manifests, fetch_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        return Helm(fetch_helm())
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def default_render(helm: Helm) -> Manifests:
    """The defaults: the chart renders nothing without credentials, so only those are given."""
    return helm.render([MINIMAL_VALUES])


@pytest.fixture(scope="session")
def production_render(helm: Helm) -> Manifests:
    return helm.render([PRODUCTION_VALUES])


@pytest.fixture(scope="session", params=["default", "production"])
def rendered(
    request: pytest.FixtureRequest, default_render: Manifests, production_render: Manifests
) -> Manifests:
    return default_render if request.param == "default" else production_render
