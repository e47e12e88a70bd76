"""The project's base `ModelSerializer`: DRF's, with the fields it infers from the model built
once per class instead of once per instance.

DRF's `ModelSerializer.get_fields` introspects the model on every instantiation (every nested
serializer of every response): for an order with its lines, payments, refunds and timeline
that was a third of the API's time per request. What it builds depends only on the class
(`Meta` and the declared fields), so the result is kept on the class and deep-copied for each
instance, as DRF itself does with declared fields. A subclass that overrides `get_fields` (fields
that depend on the instance or the context) is left alone.
"""

import copy

from rest_framework import serializers


class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self):
        cls = type(self)
        if cls.get_fields is not ModelSerializer.get_fields:
            return super().get_fields()
        fields = cls.__dict__.get("_model_fields")
        if fields is None:
            fields = super().get_fields()
            cls._model_fields = fields
        return copy.deepcopy(fields)
