"""schemathesis against ingest's own OpenAPI document, on a running ingest: generated valid and
invalid requests for every operation; no 5xx, responses as documented.

The write key is given to schemathesis as the document's basic-auth credentials (not added to
every request), so that its negative cases can leave it out and expect 401.

Two checks are left out because the document is looser than the service, by design or not yet
described (docs/reliability.md): ``positive_data_acceptance`` (the document cannot say "userId
or anonymousId, non-empty", so schema-valid events without either are refused with 400) and
``negative_data_rejection`` (numeric ids are accepted as Segment does, the document says
string). Server errors, status codes, content types and response bodies are all checked.
"""

from __future__ import annotations

import schemathesis
from hypothesis import settings
from schemathesis import checks

from services.ingest.openapi import openapi_document
from tests.reliability.services import WRITE_KEY
from tests.support.stack import ServiceProcess

# A quarter of the suites' examples: every example is several requests.
EXAMPLES = max(1, settings.get_profile("lumen-fuzz").max_examples // 4)
config = schemathesis.Config.from_dict({"auth": {"basic": {"username": WRITE_KEY, "password": ""}}})
schema = schemathesis.openapi.from_dict(openapi_document(), config=config)


@schema.parametrize()
@settings(settings.get_profile("lumen-fuzz"), max_examples=EXAMPLES)
def test_ingest_conforms_to_its_openapi_document(
    case: schemathesis.Case, ingest: ServiceProcess
) -> None:
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{ingest.ports['http']}",
        timeout=15,
        excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection],
    )
