"""The OpenAPI schema a client team generates code from (D-10, issue 10 parts 6 and 7): each body
under the content types the endpoint really takes, inputs apart from outputs, every operation
with its errors (each 4xx and 5xx it can answer, as the one error body, `core.api_schema`),
the `Idempotency-Key` as long as the API takes it, integer ids in paths, the main ones with
examples."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import MAX_KEY_LENGTH

# The endpoints that take files: JSON without them, multipart with them (or only multipart).
MULTIPART = {
    ("post", "/api/refund-requests/"),
    ("post", "/api/refund-requests/{id}/reply/"),
    ("post", "/api/refund-requests/{id}/escalate/"),
    ("post", "/api/orders/{id}/escalate/"),
    ("post", "/api/refund-requests/{id}/evidence/"),
}
ANONYMOUS = {("get", "/api/restaurants/"), ("get", "/api/restaurants/{id}/menu/")}
WITH_EXAMPLES = [
    ("post", "/api/auth/token/"),
    ("post", "/api/orders/"),
    ("post", "/api/orders/{id}/cancel/"),
    ("post", "/api/refund-requests/"),
    ("post", "/api/refund-requests/{id}/reply/"),
    ("post", "/api/refund-requests/{id}/escalate/"),
    ("post", "/api/seller/orders/{id}/cancel/"),
    ("post", "/api/seller/orders/{id}/delay/"),
    ("post", "/api/seller/cancellation-requests/{order_id}/deny/"),
    ("post", "/api/seller/refund-requests/{id}/verify/"),
    ("post", "/api/support/refund-requests/{id}/approve/"),
    ("post", "/api/support/refund-requests/{id}/partially-approve/"),
    ("post", "/api/support/refund-requests/{id}/deny/"),
    ("post", "/api/support/refund-requests/{id}/request-info/"),
    ("post", "/api/support/escalations/{id}/decide/"),
    ("post", "/api/support/chargebacks/"),
    ("post", "/api/support/incidents/"),
]


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_bodies_come_under_the_content_types_each_endpoint_takes(schema):
    seen = set()
    for method, path, operation in operations(schema):
        content = operation.get("requestBody", {}).get("content", {})
        if not content:
            continue
        seen.add((method, path))
        if path == "/api/refund-requests/{id}/evidence/":
            assert set(content) == {"multipart/form-data"}
        elif (method, path) in MULTIPART:
            assert set(content) == {"application/json", "multipart/form-data"}, path
            refs = {body["schema"]["$ref"] for body in content.values()}
            assert len(refs) == 2, f"{path}: one component for two bodies"
        else:
            assert set(content) == {"application/json"}, path
    assert seen >= MULTIPART


def test_inputs_are_components_of_their_own_without_read_only_fields(schema):
    components = schema["components"]["schemas"]
    token_request = components["TokenRequest"]
    assert set(token_request["properties"]) == {"username", "password"}
    assert set(token_request["required"]) == {"username", "password"}
    assert set(components["Token"]["properties"]) == {"token"}
    inputs = {
        body["schema"]["$ref"].rsplit("/", 1)[-1]
        for _, _, operation in operations(schema)
        for body in operation.get("requestBody", {}).get("content", {}).values()
        if "$ref" in body["schema"]
    }
    assert len(inputs) > 20
    for name in inputs:
        assert name.endswith("Request"), name
        properties = components[name].get("properties", {})
        assert [p for p, s in properties.items() if s.get("readOnly")] == [], name


def test_every_operation_documents_its_errors(schema):
    for method, path, operation in operations(schema):
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), path
        if (method, path) not in ANONYMOUS and path != "/api/gateway/webhooks/":
            assert "401" in codes or path == "/api/auth/token/", (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if operation.get("requestBody"):
            assert "400" in codes, (method, path)
        if operation.get("requestBody") and path != "/api/gateway/webhooks/":
            assert "415" in codes, (method, path)  # the webhook reads any body as bytes
        assert {"500", "503"} <= codes, (method, path)
        for code in codes - {"200", "201", "202"}:
            response = operation["responses"][code]
            body = response["content"]["application/json"]["schema"]
            # The D-10 error body; a refused cancellation also carries the new terms.
            assert body["$ref"].rsplit("/", 1)[-1] in {"ApiError", "CancellationRefusal"}, path
            assert response["description"], (method, path, code)


def test_the_idempotency_key_is_declared_as_the_api_reads_it(schema):
    keyed = 0
    for method, path, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == IDEMPOTENCY_HEADER:
                keyed += 1
                assert parameter["in"] == "header"
                assert parameter["schema"] == {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                }
                # refused key, key still running, key reused for another request
                assert {"400", "409", "422"} <= set(operation["responses"]), (method, path)
    assert keyed > 40


def test_ids_in_paths_are_integers(schema):
    ids = [
        (path, parameter["schema"])
        for _, path, operation in operations(schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    ]
    assert len(ids) > 40
    assert [(path, s) for path, s in ids if s != {"type": "integer"}] == []


@pytest.mark.parametrize(("method", "path"), WITH_EXAMPLES)
def test_main_operations_show_example_bodies(schema, method, path):
    operation = schema["paths"][path][method]
    examples = operation["requestBody"]["content"]["application/json"].get("examples", {})
    assert examples, path
    for example in examples.values():
        assert isinstance(example["value"], dict)


def test_the_catalogue_needs_no_credentials(schema):
    for method, path in ANONYMOUS:
        assert "security" not in schema["paths"][path][method]
    assert schema["paths"]["/api/orders/"]["get"]["security"] == [
        {"tokenAuth": []},
        {"cookieAuth": []},
    ]


def test_every_field_has_a_type_a_generated_client_can_use(schema):
    """An untyped field becomes `Any` in a generated client (as the refunds' `clauses` did)."""
    typed = {"type", "$ref", "allOf", "oneOf", "anyOf", "enum"}
    untyped = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        for field, spec in component.get("properties", {}).items()
        if not typed & set(spec)
    ]
    assert untyped == []
