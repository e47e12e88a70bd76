"""The disputes API (D-10): escalations, chargebacks, suspensions and the processor webhook."""
