"""Escalations, chargebacks, interventions and incidents arrive with the disputes issues (D-5)."""
