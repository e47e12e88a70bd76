"""The API's JSON parser (REST_FRAMEWORK's default): `core.safe_json` behind DRF's interface."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.safe_json import UnsafeJson, safe_json_loads


class SafeJSONParser(JSONParser):
    """`application/json` bodies through `safe_json_loads`.

    Errors: 400 `invalid_json` for a body nested deeper than `MAX_JSON_DEPTH` or holding a
    lone surrogate; 400 `parse_error` for anything that is not JSON in the request's encoding.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read()
        try:
            return safe_json_loads(raw.decode(encoding))
        except UnsafeJson as error:
            raise ParseError(error.detail, code=error.code) from error
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
